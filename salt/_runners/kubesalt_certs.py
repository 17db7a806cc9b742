"""The certificate expiry report of the whole cluster, on the bootstrap node.

A thin wrapper over ``kubesalt.certreport``: every declared node is asked for its
certificates (``kubesalt_certs.certificates``, one job), the configuration gives the
renewal window, the scheduled renewal's record says when it last ran
(docs/pki.md#the-expiry-report).
"""

import datetime

import salt.client

try:
    from kubesalt import certreport as _report
    from kubesalt import config as _config
    from kubesalt import inventory as _inventory
    from kubesalt.errors import KubesaltError

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the master's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_certs"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def _failed(err):
    return {"result": False, "retcode": 1, "comment": f"{type(err).__name__}: {err}"}


def _ask(nodes, timeout):
    """{node: its certificates, or why there are none} (one job for all)."""
    client = salt.client.get_local_client(__opts__["conf_file"])  # noqa: F821
    answer = client.cmd(list(nodes), "kubesalt_certs.certificates", timeout=timeout,
                        tgt_type="list", full_return=True)  # fmt: skip
    result = {}
    for node in nodes:
        reply = answer.get(node) or {}
        ret = reply.get("ret")
        # Salt gives a minion that did not answer this text instead of a return.
        if not reply or (isinstance(ret, str) and ret.startswith("Minion did not return")):
            result[node] = f"did not answer within {timeout}s (salt {node} test.ping)"
        elif not isinstance(ret, list) or reply.get("retcode"):
            result[node] = f"kubesalt_certs.certificates failed: {str(ret)[:300]}"
        else:
            result[node] = reply["ret"]
    return result


def expiry(nodes=None, timeout=30, config=None, inventory=None, record=None):
    """
    Print the expiry of every certificate of the cluster, one table: node, certificate
    (files and kubeconfig-embedded ones), expiry, days left, issuing CA, whether it is due
    (within ``pki.renewBeforeDays``); then the CAs, with a warning for a CA within
    ``pki.certificateValidityDays`` of its end; a node that does not answer is a row that
    says so; and the last scheduled renewal. ``--out=json`` prints the same data.

    CLI Example:

    .. code-block:: bash

        salt-run kubesalt_certs.expiry
        salt-run kubesalt_certs.expiry nodes=cp2,worker1 --out=json
    """
    opts = __opts__  # noqa: F821
    try:
        cfg = _config.load_file(config or opts.get("kubesalt_config", _config.DEFAULT_PATH))
        declared = _inventory.load(inventory or opts.get("kubesalt_inventory",
                                                         _inventory.DEFAULT_DIR))  # fmt: skip
        wanted = nodes.split(",") if isinstance(nodes, str) else list(nodes or declared)
        unknown = [n for n in wanted if n not in declared]
        if unknown:
            return _failed(
                KubesaltError(
                    f"nodes: {', '.join(unknown)} not declared; declared: {', '.join(declared)}"
                )
            )
        last_run = _report.read_last_run(record or _report.LAST_RUN_FILE)
        now = datetime.datetime.now(tz=datetime.UTC)
        report = _report.build(_ask(sorted(wanted), int(timeout)), cfg, now, last_run)
    except KubesaltError as err:
        return _failed(err)
    return {"data": report, "outputter": "kubesalt_certs"}
