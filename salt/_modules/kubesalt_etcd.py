"""etcd membership for the deploy_node and remove_node orchestrations: list, add as a
learner, promote, remove, health (kubeadm 1.33's join flow, ``docs/etcd.md``).

Runs ``etcdctl`` (API v3) against this node's etcd (``https://<control-plane IP>:2379``,
the grain ``kubesalt:control_plane_ip``) or the given ``endpoints``, with the etcd CA and
the client certificate kubeadm uses for membership changes
(``/etc/kubernetes/pki/apiserver-etcd-client``; the etcd healthcheck client on a node
without it), under the grain ``kubesalt_root`` (default ``/``). The decisions (is it a
member, may it be removed) are in ``kubesalt.etcd``; every wait is bounded and says what
it waited for. See ``docs/etcd.md``.
"""

import logging
import os
import time

import salt.utils.path

try:
    from kubesalt import etcd as _etcd
    from kubesalt import saltglue as _glue
    from kubesalt.kubeadm.model import Layout
    from kubesalt.names import check_node_name

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

log = logging.getLogger(__name__)

__virtualname__ = "kubesalt_etcd"

ETCD_CA = "etcd/ca.crt"
# Client certificates (under the PKI directory, without .crt/.key), in order of preference.
MEMBERSHIP_CLIENTS = ("apiserver-etcd-client", "etcd/healthcheck-client")
HEALTH_CLIENTS = ("etcd/healthcheck-client", "apiserver-etcd-client")
DIAL_TIMEOUT = 2  # seconds, etcdctl --dial-timeout
COMMAND_TIMEOUT = 5  # seconds, etcdctl --command-timeout (etcd's own request timeout)
# Changes etcd refuses for a while after a member (re)starts: retried for this long.
CHANGE_TIMEOUT = 30


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    if not salt.utils.path.which("etcdctl"):
        return (False, "etcdctl is not on the PATH (Debian: etcd-client; RHEL: etcd)")
    return __virtualname__


def _layout():
    return Layout(__grains__.get("kubesalt_root") or "/")  # noqa: F821


def _endpoints(endpoints):
    """The endpoints as a list: the given ones (a list or a comma-separated string), else
    this node's client URL."""
    if endpoints:
        if isinstance(endpoints, str):
            endpoints = endpoints.split(",")
        found = [str(url).strip() for url in endpoints if str(url).strip()]
        if found:
            return found
    own = (__grains__.get("kubesalt") or {}).get("control_plane_ip")  # noqa: F821
    if not own:
        raise _etcd.EtcdError(
            "no etcd endpoint: endpoints is not given and the grain "
            "kubesalt:control_plane_ip is not set; apply kubesalt.node on this node first "
            "(it chooses the control-plane IP), or pass endpoints=https://<IP>:2379"
        )
    return [_etcd.client_url(own)]


def _tls(clients):
    layout = _layout()
    tried = []
    for client in clients:
        base = layout.pki(client)
        tried.append(f"{base}.crt")
        if os.path.isfile(f"{base}.crt") and os.path.isfile(f"{base}.key"):
            return [
                f"--cacert={layout.pki(ETCD_CA)}",
                f"--cert={base}.crt",
                f"--key={base}.key",
            ]
    raise _etcd.EtcdError(
        f"no etcd client certificate on this node (looked for {' and '.join(tried)} with "
        "their keys); apply kubesalt.pki on this node first, or run this on a control-plane "
        "or etcd node"
    )


def _etcdctl(args, endpoints, clients=MEMBERSHIP_CLIENTS, check=True):
    """Run ``etcdctl <args>``; raise the typed error of a failure when ``check``."""
    command = [
        "etcdctl",
        f"--endpoints={','.join(endpoints)}",
        *_tls(clients),
        f"--dial-timeout={DIAL_TIMEOUT}s",
        f"--command-timeout={COMMAND_TIMEOUT}s",
        *args,
    ]
    result = __salt__["cmd.run_all"](  # noqa: F821
        command,
        env={"ETCDCTL_API": "3"},
        python_shell=False,
        ignore_retcode=True,
        timeout=DIAL_TIMEOUT + COMMAND_TIMEOUT + 10,
    )
    if check and result.get("retcode"):
        raise _etcd.etcdctl_error(
            result.get("stderr", ""), result.get("stdout", ""), f"etcdctl {' '.join(args)}"
        )
    return result


def _members(endpoints):
    listing = _etcdctl(["member", "list", "-w", "json"], endpoints)
    return _etcd.parse_member_list(listing["stdout"])


def _health(endpoints):
    result = _etcdctl(["endpoint", "health", "-w", "json"], endpoints, HEALTH_CLIENTS, False)
    stdout = (result.get("stdout") or "").strip()
    if not stdout.startswith("["):
        # No JSON at all: etcdctl failed before checking (a certificate, a flag).
        error = _etcd.etcdctl_error(result.get("stderr", ""), stdout, "etcdctl endpoint health")
        return {url: {"health": False, "error": error.message} for url in endpoints}
    health = _etcd.parse_endpoint_health(stdout)
    for url in endpoints:
        health.setdefault(url, {"health": False, "error": "etcdctl gave no answer for it"})
    return {url: health[url] for url in endpoints}


def _voter_endpoints(endpoints):
    urls = _etcd.client_endpoints(_members(endpoints), voters_only=True)
    if not urls:
        raise _etcd.EtcdError(
            f"the etcd member list read from {', '.join(endpoints)} has no started voting "
            "member with a client URL"
        )
    return urls


def _check_name(name):
    check_node_name(name, "etcd member name")


def _check_peer_url(peer_url):
    if not isinstance(peer_url, str) or not peer_url.startswith(("https://", "http://")):
        raise _etcd.EtcdError(
            f"peer URL {peer_url!r} is not a URL; give the member's peer URL, for example "
            "https://10.0.0.11:2380 (kubeadm: https://<control-plane IP>:2380)"
        )


def members(endpoints=None):
    """
    Return the etcd members: a list of ``{id, name, peer_urls, client_urls, is_learner}``
    in etcd's order. ``id`` is the hex ID etcdctl prints and takes (``%x``); ``name`` is
    empty for a member that has not started yet.

    endpoints
        Client URLs to ask (a list or comma-separated); default this node's etcd.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_etcd.members
    """
    return [member.to_dict() for member in _glue.call(lambda: _members(_endpoints(endpoints)))]


def _add_learner(name, peer_url, endpoints, timeout, interval):
    _check_name(name)
    _check_peer_url(peer_url)
    endpoints = _endpoints(endpoints)
    deadline = time.monotonic() + float(timeout)
    while True:
        current = _members(endpoints)
        plan = _etcd.plan_add(current, name, peer_url)
        if plan.action == "none":
            return {
                "changed": False,
                "member": plan.member.to_dict(),
                "initial_cluster": _etcd.initial_cluster(current, name, peer_url),
                "comment": f"etcd member {name} ({peer_url}) is in the correct state: "
                f"{plan.reason}",
            }
        args = ["member", "add", name, f"--peer-urls={peer_url}", "--learner", "-w", "json"]
        try:
            added = _etcdctl(args, endpoints)
        except (_etcd.UnhealthyCluster, _etcd.PeerURLExists) as err:
            # etcd refuses changes until every voter has been connected for 5 s; or a
            # concurrent call added it (listed again at the top of the loop).
            if time.monotonic() + float(interval) > deadline:
                raise _etcd.EtcdError(
                    f"etcd did not accept {name} ({peer_url}) as a learner within {timeout}s; "
                    f"last etcd error: {err.message}. Check that every member is up "
                    "(kubesalt_etcd.health cluster=True)"
                ) from err
            time.sleep(float(interval))
            continue
        member, every = _etcd.parse_member_add(added["stdout"])
        return {
            "changed": True,
            "member": member.to_dict(),
            "initial_cluster": _etcd.initial_cluster(every, name, peer_url),
            "comment": f"etcd member {name} ({peer_url}) added as learner {member.id}; start "
            "etcd on it with --initial-cluster-state=existing, then promote it",
        }


def add_learner(name, peer_url, endpoints=None, timeout=CHANGE_TIMEOUT, interval=0.5):
    """
    Add ``name`` as a learner (a non-voting member) with ``peer_url``, as ``kubeadm join``
    does; nothing when a member has that peer URL already. Returns ``changed``, the
    ``member``, ``initial_cluster`` (the ``--initial-cluster`` of the joining member: every
    member ``name=peerURL`` in etcd's order, itself included) and a ``comment``.

    Refused when the peer URL belongs to another member, when ``name`` exists with another
    peer URL, or while another learner waits for its promotion (etcd takes one at a time).
    etcd's transient refusal right after a member started ("not healthy for reconfigure":
    it admits a member only once every voter has been connected for 5 s) is retried for
    ``timeout`` seconds, every ``interval`` (half a second: the second of two joins in a
    row waits out most of those 5 s).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_etcd.add_learner cp2 https://10.0.0.11:2380
    """
    return _glue.call(_add_learner, name, peer_url, endpoints, timeout, interval)


def _promote(name, timeout, interval, endpoints, peer_url):
    endpoints = _endpoints(endpoints)
    start = time.monotonic()
    deadline = start + float(timeout)
    while True:
        current = _members(endpoints)
        try:
            plan = _etcd.plan_promote(current, name, peer_url)
        except _etcd.MembershipError as err:
            # A learner gets its name when it starts: wait for an unstarted one.
            if not [m for m in current if not m.started]:
                raise
            last, plan = str(err), None
        if plan is not None and plan.action == "none":
            return {
                "changed": False,
                "member": plan.member.to_dict(),
                "comment": f"etcd member {name} is in the correct state: {plan.reason}",
            }
        if plan is not None:
            try:
                _etcdctl(["member", "promote", plan.member.id], endpoints)
            except (_etcd.LearnerNotReady, _etcd.UnhealthyCluster, _etcd.Unreachable) as err:
                last = err.message
            except _etcd.NotALearner:
                continue  # promoted meanwhile: the next listing says so
            else:
                member = _etcd.find(_members(endpoints), name, peer_url) or plan.member
                return {
                    "changed": True,
                    "member": member.to_dict(),
                    "comment": f"etcd member {member.label()} promoted to voter after "
                    f"{time.monotonic() - start:.1f}s",
                }
        if time.monotonic() + float(interval) > deadline:
            raise _etcd.EtcdError(
                f"etcd learner {name} was not promoted within {timeout}s: waited for it to "
                f"start and catch up with the leader; last etcd error: {last}. Check that "
                f"etcd runs on {name} (its static pod and log) and reaches the other members "
                "on port 2380"
            )
        time.sleep(float(interval))


# A started learner catches up within a second or two here: asking every 2 s cost up to
# 2 s per join, and joins go one after the other (etcd admits one learner at a time).
PROMOTE_INTERVAL = 0.5


def promote(name, timeout=60, interval=PROMOTE_INTERVAL, endpoints=None, peer_url=None):
    """
    Promote the learner ``name`` to a voting member once it has caught up with the leader
    (kubeadm's ``MemberPromote``): ``member promote`` is retried every ``interval`` seconds
    while etcd answers that the learner is not in sync yet, for at most ``timeout``
    seconds. Nothing when it votes already. ``name`` may also be the member ID; with
    ``peer_url``, a learner that has not started yet (and has no name) is found too.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_etcd.promote cp2 timeout=60
    """
    if peer_url is not None:
        _glue.call(_check_peer_url, peer_url)
    return _glue.call(_promote, name, timeout, interval, endpoints, peer_url)


def _remove(name, force, endpoints, peer_url, timeout, interval):
    endpoints = _endpoints(endpoints)
    deadline = time.monotonic() + float(timeout)
    while True:
        current = _members(endpoints)
        member = _etcd.find(current, name, peer_url)
        healthy = set()
        if member is not None and member.voter and not force:
            urls = _etcd.client_endpoints(current, voters_only=True)
            healthy = _etcd.healthy_members(current, _health(urls) if urls else {})
        plan = _etcd.plan_remove(current, name, healthy, force, peer_url)
        if plan.action == "none":
            return {
                "changed": False,
                "member": None,
                "comment": f"etcd member {name} is in the correct state: {plan.reason}",
            }
        try:
            _etcdctl(["member", "remove", plan.member.id], endpoints)
        except _etcd.MemberNotFound:
            continue  # removed meanwhile: the next listing says so
        except _etcd.UnhealthyCluster as err:
            if time.monotonic() + float(interval) > deadline:
                raise _etcd.EtcdError(
                    f"etcd refused to remove {plan.member.label()} for {timeout}s: "
                    f"{err.message} (etcd's own check: the voters left must have been "
                    "connected for 5 s and keep a quorum). Start the down members first"
                ) from err
            time.sleep(float(interval))
            continue
        return {
            "changed": True,
            "member": plan.member.to_dict(),
            "comment": f"etcd member {plan.member.label()} removed: {plan.reason}",
        }


def remove(name, force=False, endpoints=None, peer_url=None, timeout=CHANGE_TIMEOUT, interval=1):
    """
    Remove the member ``name`` (or member ID; with ``peer_url``, also an unstarted member
    with that peer URL); nothing when it is not a member. Refuses to remove the last
    voting member, and, unless ``force``, a voter when the cluster has no healthy quorum or
    the voters left would have none (health from ``etcdctl endpoint health`` on every
    voter). etcd's own transient refusal is retried for ``timeout`` seconds. Returns
    ``changed``, the removed ``member`` and a ``comment``.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_etcd.remove cp3
        salt-call kubesalt_etcd.remove cp3 force=True
    """
    if peer_url is not None:
        _glue.call(_check_peer_url, peer_url)
    return _glue.call(_remove, name, force, endpoints, peer_url, timeout, interval)


def _checked_health(endpoints, cluster):
    endpoints = _endpoints(endpoints)
    return _health(_voter_endpoints(endpoints) if cluster else endpoints)


def health(endpoints=None, cluster=False):
    """
    Check etcd endpoints with ``etcdctl endpoint health`` (a quorum read through each):
    ``{endpoint: {"health": bool, "error": str or None}}``. With ``cluster=True``, every
    voting member's client URLs are checked (the member list read through ``endpoints``);
    learners answer no health check and are left out.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_etcd.health
        salt-call kubesalt_etcd.health cluster=True
    """
    return _glue.call(_checked_health, endpoints, cluster)


def _wait_healthy(endpoints, timeout, interval, cluster):
    base = _endpoints(endpoints)
    _tls(HEALTH_CLIENTS)  # a missing certificate is no reason to wait
    start = time.monotonic()
    deadline = start + float(timeout)
    unhealthy_since = {}
    while True:
        now = time.monotonic()
        try:
            result = _health(_voter_endpoints(base) if cluster else base)
        except _etcd.EtcdError as err:  # the member list, with cluster=True
            error = err.message if isinstance(err, _etcd.EtcdctlError) else str(err)
            result = {f"member list from {','.join(base)}": {"health": False, "error": error}}
        bad = {url: state for url, state in result.items() if not state["health"]}
        if not bad:
            return {"healthy": True, "endpoints": result, "waited": round(now - start, 1)}
        for url in list(unhealthy_since):
            if url not in bad:
                del unhealthy_since[url]
        for url in bad:
            unhealthy_since.setdefault(url, now)
        if now + float(interval) > deadline:
            detail = "; ".join(
                f"{url} unhealthy for {now - unhealthy_since[url]:.0f}s "
                f"({state['error'] or 'not healthy'})"
                for url, state in bad.items()
            )
            raise _etcd.EtcdError(
                f"etcd not healthy after waiting {timeout}s: {detail}. Check that etcd runs "
                "on those members (static pod, log) and that port 2379 is open to this node"
            )
        time.sleep(float(interval))


def wait_healthy(endpoints=None, timeout=60, interval=2, cluster=False):
    """
    Wait until every endpoint (with ``cluster=True``: every voting member) answers healthy,
    checking every ``interval`` seconds for at most ``timeout`` seconds; the error names
    each unhealthy endpoint, for how long it was, and etcd's last error. Returns
    ``healthy``, ``endpoints`` (as ``health`` gives them) and ``waited`` (seconds).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_etcd.wait_healthy cluster=True timeout=40
    """
    return _glue.call(_wait_healthy, endpoints, timeout, interval, cluster)
