"""etcd membership as states, for the deploy_node and remove_node orchestrations.

Each state reads the member list (``kubesalt_etcd.members``), decides with
``kubesalt.etcd``'s planners whether anything is to do, and calls the execution module to
do it. ``member_absent`` checks health and quorum in test mode too, so that ``test=True``
says whether the removal would be refused.

.. code-block:: yaml

    Add cp2 to etcd as a learner:
      kubesalt_etcd.member_present:
        - name: cp2
        - peer_url: https://10.0.0.11:2380
"""

import os
import shutil
import time

from salt.exceptions import CommandExecutionError

try:
    from kubesalt import etcd as _etcd
    from kubesalt.errors import KubesaltError

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_etcd"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    if "kubesalt_etcd.members" not in __salt__:  # noqa: F821
        return (False, "the kubesalt_etcd execution module is not available (etcdctl?)")
    return __virtualname__


def _ret(name):
    return {"name": name, "result": False, "changes": {}, "comment": ""}


def _members(endpoints):
    listed = __salt__["kubesalt_etcd.members"](endpoints=endpoints)  # noqa: F821
    return [
        _etcd.Member(
            id=m["id"],
            name=m["name"],
            peer_urls=tuple(m["peer_urls"]),
            client_urls=tuple(m["client_urls"]),
            is_learner=m["is_learner"],
        )
        for m in listed
    ]


def _failed(ret, err):
    ret["result"] = False
    ret["changes"] = {}
    ret["comment"] = f"{type(err).__name__}: {err}" if isinstance(err, KubesaltError) else str(err)
    return ret


def member_present(name, peer_url, endpoints=None):
    """
    Make ``name`` an etcd member with ``peer_url``: add it as a learner when no member has
    that peer URL (it is promoted by ``member_promoted`` once its etcd runs).

    name
        The member name (the node name).
    peer_url
        Its peer URL, ``https://<control-plane IP>:2380``.
    endpoints
        Client URLs of the cluster; default this node's etcd.
    """
    ret = _ret(name)
    try:
        plan = _etcd.plan_add(_members(endpoints), name, peer_url)
        if plan.action == "none":
            ret["result"] = True
            ret["comment"] = f"etcd member {name} is in the correct state: {plan.reason}"
            return ret
        if __opts__["test"]:  # noqa: F821
            ret["result"] = None
            ret["comment"] = f"etcd member {name} ({peer_url}) would have been added as a learner"
            return ret
        added = __salt__["kubesalt_etcd.add_learner"](  # noqa: F821
            name, peer_url, endpoints=endpoints
        )
    except (KubesaltError, CommandExecutionError) as err:
        return _failed(ret, err)
    ret["result"] = True
    ret["comment"] = f"{added['comment']}; --initial-cluster={added['initial_cluster']}"
    if added["changed"]:
        ret["changes"] = {
            "added": {"id": added["member"]["id"], "peer_url": peer_url, "learner": True},
        }
    return ret


def member_promoted(name, timeout=60, peer_url=None, endpoints=None):
    """
    Make the etcd member ``name`` a voter: promote the learner once it has caught up with
    the leader, waiting at most ``timeout`` seconds.

    name
        The member name, or its ID.
    timeout
        Seconds to wait for the learner to be in sync.
    peer_url
        Its peer URL, to find it before it has started (and has no name yet).
    endpoints
        Client URLs of the cluster; default this node's etcd.
    """
    ret = _ret(name)
    try:
        plan = _etcd.plan_promote(_members(endpoints), name, peer_url)
        if plan.action == "none":
            ret["result"] = True
            ret["comment"] = f"etcd member {name} is in the correct state: {plan.reason}"
            return ret
        if __opts__["test"]:  # noqa: F821
            ret["result"] = None
            ret["comment"] = f"etcd learner {plan.member.label()} would have been promoted"
            return ret
        promoted = __salt__["kubesalt_etcd.promote"](  # noqa: F821
            name, timeout=timeout, peer_url=peer_url, endpoints=endpoints
        )
    except (KubesaltError, CommandExecutionError) as err:
        return _failed(ret, err)
    ret["result"] = True
    ret["comment"] = promoted["comment"]
    if promoted["changed"]:
        ret["changes"] = {"promoted": {"id": promoted["member"]["id"], "voter": True}}
    return ret


def member_absent(name, force=False, peer_url=None, endpoints=None):
    """
    Make sure ``name`` is not an etcd member: remove it, refusing to remove the last voting
    member, or (unless ``force``) one whose removal would leave the cluster without a
    healthy quorum.

    name
        The member name, or its ID.
    force
        Remove it even when the health seen from here says quorum would be lost.
    peer_url
        Its peer URL, to find it if it never started (and has no name).
    endpoints
        Client URLs of the cluster; default this node's etcd.
    """
    ret = _ret(name)
    try:
        current = _members(endpoints)
        member = _etcd.find(current, name, peer_url)
        if member is None:
            ret["result"] = True
            ret["comment"] = f"etcd member {name} is in the correct state: it is not a member"
            return ret
        if __opts__["test"]:  # noqa: F821
            healthy = set()
            if member.voter and not force:
                state = __salt__["kubesalt_etcd.health"](  # noqa: F821
                    endpoints=endpoints, cluster=True
                )
                healthy = _etcd.healthy_members(current, state)
            plan = _etcd.plan_remove(current, name, healthy, force, peer_url)
            ret["result"] = None
            ret["comment"] = f"etcd member {plan.member.label()} would have been removed"
            return ret
        removed = __salt__["kubesalt_etcd.remove"](  # noqa: F821
            name, force=force, peer_url=peer_url, endpoints=endpoints
        )
    except (KubesaltError, CommandExecutionError) as err:
        return _failed(ret, err)
    ret["result"] = True
    ret["comment"] = removed["comment"]
    if removed["changed"]:
        ret["changes"] = {"removed": {"id": removed["member"]["id"], "name": name}}
    return ret


def _guard_endpoints():
    """This node's client URL and those of the other etcd nodes (the pillar's roles, the
    mine's control-plane IPs): once this member is removed its own etcd stops answering, and
    the others say whether it is still listed."""
    own = (__grains__.get("kubesalt") or {}).get("control_plane_ip")  # noqa: F821
    peers = __salt__["kubesalt_firewall.peers"]().get("etcd") or []  # noqa: F821
    ips = dict.fromkeys(ip for ip in (*peers, own) if ip)
    return [_etcd.client_url(ip) for ip in ips]


def not_a_member(name, endpoints=None):
    """
    Check, changing nothing, that etcd no longer lists ``name``: the guard before this
    node's etcd is stopped (``kubesalt.etcd.left``, required by ``kubesalt.etcd.absent`` and
    ``kubesalt.roles.etcd-absent``). A member stopped while still listed is a voter lost
    without being removed: two such nodes lose quorum. Fails while ``name`` is listed, and
    when no endpoint answers (nothing then says it left).

    name
        The member name (the node's minion ID).
    endpoints
        Client URLs to ask; default this node's and its etcd peers'.
    """
    ret = _ret(name)
    try:
        member = _etcd.find(_members(endpoints or _guard_endpoints()), name)
    except (KubesaltError, CommandExecutionError) as err:
        ret["comment"] = (
            f"cannot tell whether {name} is still an etcd member ({err}); its etcd is left "
            "running: make an etcd member answer (kubesalt_etcd.health), then apply again"
        )
        return ret
    if member is not None:
        ret["comment"] = (
            f"etcd still lists {name} as member {member.label()}: stopping its etcd would take "
            "a voter from the cluster without removing it (two such nodes lose quorum). Remove "
            "the node with salt-run state.orchestrate kubesalt.orchestrate.remove_node "
            f'pillar=\'{{"node": "{name}"}}\' (without skipping its etcd phase), or remove '
            f"the member first (kubesalt_etcd.remove {name} on the CA minion); nothing was "
            "changed"
        )
        return ret
    ret["result"] = True
    ret["comment"] = f"etcd does not list {name}: its etcd may stop"
    return ret


def data_absent(name="/var/lib/etcd", wait=60):
    """
    Remove etcd's data directory ``name`` once no etcd runs from it (bounded by ``wait``
    seconds: the kubelet stops the pod after its manifest is removed). For a node whose
    member was removed from the cluster: a member ID cannot rejoin, so its data must go
    before the node joins again. Fails, removing nothing, while etcd still runs from it.
    """
    ret = _ret(name)
    if not os.path.lexists(name):
        ret["result"] = True
        ret["comment"] = f"etcd data directory {name} is in the correct state (absent)"
        return ret
    deadline = time.monotonic() + float(wait)
    running = _etcd.processes_using(name)
    while running and time.monotonic() < deadline:
        time.sleep(1)
        running = _etcd.processes_using(name)
    if running:
        ret["comment"] = (
            f"etcd still runs from {name} after {wait}s (PID {', '.join(map(str, running))}); "
            "remove its static pod manifest first (kubesalt.etcd.absent) so the kubelet stops "
            "it; nothing was removed"
        )
        return ret
    if __opts__["test"]:  # noqa: F821
        ret["result"] = None
        ret["comment"] = f"etcd data directory {name} would have been removed"
        return ret
    if os.path.isdir(name) and not os.path.islink(name):
        shutil.rmtree(name)
    else:
        os.remove(name)
    ret["result"] = True
    ret["comment"] = f"etcd data directory {name} removed"
    ret["changes"] = {"removed": name}
    return ret
