"""Certificates on a node: what the expiry report reads, the wait for a server to serve
a renewed certificate, and the scheduled renewal run by the bootstrap node.

Thin wrappers over ``kubesalt.certreport`` (docs/pki.md#the-expiry-report).
"""

import datetime
import socket
import ssl
import time

from salt.exceptions import CommandExecutionError

try:
    from cryptography import x509

    from kubesalt import certreport as _report
    from kubesalt import lock as _lock
    from kubesalt import renewal as _renewal
    from kubesalt import saltglue as _glue
    from kubesalt.kubeadm.model import Layout
    from kubesalt.orchestrate import progress as _progress

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_certs"

RENEW_SLS = "kubesalt.orchestrate.renew_certificates"
# The client certificate the served-certificate check presents (etcd asks for one).
HEALTHCHECK_CLIENT = "etcd/healthcheck-client"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def _layout():
    return Layout(__grains__.get("kubesalt_root") or "/")  # noqa: F821


def certificates():
    """
    Return every certificate of this node: the files under /etc/kubernetes/pki (CAs
    included) and the client certificate embedded in each kubeconfig of /etc/kubernetes,
    each with its serial, subject, issuer, dates and whether it is a CA. No key is read.
    ``salt-run kubesalt_certs.expiry`` asks every node for it.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_certs.certificates
    """
    return _glue.call(_report.read_node, _layout())


def _served_der(port, client):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only the certificate served is compared
    context.load_cert_chain(f"{client}.crt", f"{client}.key")
    with (
        socket.create_connection(("127.0.0.1", int(port)), timeout=5) as sock,
        context.wrap_socket(sock) as tls,
    ):
        return tls.getpeercert(binary_form=True)


def wait_serving(port, certificate, timeout=120, interval=2):
    """
    Wait until the server on ``127.0.0.1:<port>`` serves the certificate now in the file
    ``certificate`` (a server restarted by the kubelet after a renewal): ``serial`` of
    the certificate served. The error gives the serial still served after ``timeout``
    seconds. The etcd health-check client certificate is presented.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_certs.wait_serving 2379 /etc/kubernetes/pki/etcd/server.crt
    """
    with open(certificate, "rb") as stream:
        wanted = x509.load_pem_x509_certificate(stream.read())
    client = _layout().pki(HEALTHCHECK_CLIENT)
    deadline = time.monotonic() + float(timeout)
    last = "nothing answered"
    while True:
        try:
            served = x509.load_der_x509_certificate(_served_der(port, client))
            if served == wanted:
                return {"serial": format(served.serial_number, "x"), "port": int(port)}
            last = f"serial {served.serial_number:x}"
        except (OSError, ValueError) as err:
            last = f"no TLS answer ({err})"
        if time.monotonic() + float(interval) > deadline:
            raise CommandExecutionError(
                f"127.0.0.1:{port} does not serve {certificate} (serial "
                f"{wanted.serial_number:x}) after {timeout}s; last: {last}. The kubelet has "
                "not restarted the static pod from its new manifest: check the kubelet's log "
                "and crictl ps on this node"
            )
        time.sleep(float(interval))


def _log(line):
    """One line to stderr (the minion's journal) and to the orchestrations' log file."""
    _progress.Progress("renew_certificates (schedule)", log_file=_progress.LOG_FILE).line(line)


def renew_scheduled(saltenv, record_file=None):
    """
    The daily renewal (the bootstrap node's schedule item ``kubesalt-renew-certificates``):
    run ``state.orchestrate kubesalt.orchestrate.renew_certificates`` on this node's
    master, unless another orchestration holds the lock (then skip, and say who holds
    it); log one line to /var/log/kubesalt/orchestrate.log and record the run (time,
    outcome, what it renewed) in /var/lib/kubesalt/renewal/last-run.json (0600), which
    the expiry report shows.

    CLI Example:

    .. code-block:: bash

        salt <bootstrap node> schedule.run_job kubesalt-renew-certificates
        salt-call kubesalt_certs.renew_scheduled kubesalt-0.1.0
    """
    started = datetime.datetime.now(tz=datetime.UTC)
    try:
        acquired = _lock.acquire("renew_certificates (schedule, probing the lock)")
    except _lock.LockBusy as err:
        outcome = {"outcome": "skipped", "message": f"{err}", "renewed": {}}
    else:
        if acquired:
            _lock.release()
        ret = __salt__["saltutil.runner"](  # noqa: F821
            "state.orchestrate", arg=[RENEW_SLS], saltenv=saltenv
        )
        outcome = _report.orchestrate_outcome(ret)
    ended = datetime.datetime.now(tz=datetime.UTC)
    result = {
        "started": _renewal.timestamp(started),
        "ended": _renewal.timestamp(ended),
        "saltenv": saltenv,
        **outcome,
    }
    _glue.call(_report.write_last_run, result, record_file or _report.LAST_RUN_FILE)
    _log(f"scheduled renewal {result['outcome']}: {result['message']}")
    return result


def schedule_config(saltenv):
    """
    Return the salt-minion configuration of the daily renewal on the bootstrap node (the
    schedule item ``kubesalt-renew-certificates`` running ``renew_scheduled`` on
    ``saltenv``), as ``kubesalt.pki.scheduled`` writes it.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_certs.schedule_config kubesalt-0.1.0
    """
    return _report.schedule_config(str(saltenv))
