"""A node of the cluster as the renderer sees it, built from the inventory and the mine.

Salt gives three things: the roles of every node (pillar `kubesalt:nodes`), the control-plane
IP each node chose (the mine, `control_plane_ip`), and the configuration; a node renders its
own kubelet with the workload-plane IP it chose (grain `kubesalt:workload_plane_ip`). The node that plays
`kubeadm init` is recorded once in the inventory (pillar `kubesalt:first_node`, see
`kubesalt.inventory.first_node`); from them this module builds the `Node` of any member, with
its etcd member list. The signing-policy generation (on the master) and the
execution module (on each minion) both use it, so they agree on every node's identity.
"""

from __future__ import annotations

from kubesalt import mine_ips as _mine_ips
from kubesalt import roles as _roles
from kubesalt.kubeadm import RenderError
from kubesalt.kubeadm.model import Node


def roles_by_node(pillar_nodes: dict | None) -> dict[str, frozenset[str]]:
    """`{name: frozenset(roles)}` from pillar `kubesalt:nodes` (`{name: {"roles": [...]}}`)."""
    result = {}
    for name, data in (pillar_nodes or {}).items():
        roles = (data or {}).get("roles") if isinstance(data, dict) else None
        if not isinstance(roles, list | tuple) or _roles.unknown(roles):
            raise RenderError(
                f"pillar kubesalt:nodes:{name}:roles is {roles!r}; give a list of roles "
                f"({_roles.listing()}): declare the node again with kubesalt_inventory.declare"
            )
        result[name] = frozenset(roles)
    return result


def recorded_version(pillar_nodes: dict | None, name: str) -> str | None:
    """The Kubernetes release the inventory records for node `name` (pillar
    `kubesalt:nodes:<name>:kubernetes_version`), or None: it runs the cluster's."""
    data = (pillar_nodes or {}).get(name)
    return data.get("kubernetes_version") if isinstance(data, dict) else None


def first_node(cfg: dict, roles: dict[str, frozenset[str]]) -> str | None:
    """The node that plays `kubeadm init`: the one the inventory recorded (pillar
    `kubesalt:first_node`) while it has control-plane and etcd in `roles`; else None (the
    cluster exists: every etcd member joins it). Never chosen here from the names, so that
    declaring another node can never move it."""
    name = cfg.get("first_node")
    if name in roles and roles[name] >= _roles.INIT_ROLES:
        return name
    return None


def etcd_members(
    cfg: dict, roles: dict[str, frozenset[str]], ips: dict[str, str]
) -> tuple[tuple[str, str], ...]:
    """Every etcd node that published its IP, the first node first, then by name."""
    first = first_node(cfg, roles)
    names = sorted(n for n, r in roles.items() if _roles.ETCD in r and ips.get(n))
    names.sort(key=lambda n: n != first)
    return tuple((n, ips[n]) for n in names)


WORKLOAD_IP_GRAIN = "kubesalt:workload_plane_ip"


def own_workload_ip(cfg: dict, name: str, value: str | None) -> str:
    """The workload-plane IP node `name` chose (`value`, its grain), checked: it must be
    there and inside `networks.workloadPlane.cidr`, or the kubelet would announce the
    wrong InternalIP."""
    if not value:
        raise RenderError(
            f"node {name} has no workload-plane IP (grain {WORKLOAD_IP_GRAIN}); apply "
            "kubesalt.node first, which chooses and publishes it"
        )
    _mine_ips.check_own(name, {name: value}, cfg, _mine_ips.WORKLOAD_PLANE)
    return value


def build_node(
    cfg: dict,
    name: str,
    roles: dict[str, frozenset[str]],
    ips: dict[str, str],
    hostname: str | None = None,
    workload_ip: str | None = None,
    kubernetes_version: str | None = None,
) -> Node:
    """The `Node` for `name`: its roles, its IP (from `ips`), `first` when it plays
    `kubeadm init`, and, for a joining etcd member, every etcd member known.
    `workload_ip` is its workload-plane IP (the kubelet's `--node-ip`); None leaves it
    equal to the control-plane IP, for callers that never render the kubelet (the
    signing policies). `kubernetes_version` is the release the inventory records for it
    (`recorded_version`); None renders the cluster's."""
    if name not in roles:
        raise RenderError(
            f"node {name} is not in the inventory (pillar kubesalt:nodes); declare it with "
            "kubesalt_inventory.declare, then refresh the pillar"
        )
    ip = ips.get(name)
    if not ip:
        raise RenderError(
            f"node {name} has no control-plane IP in the mine (control_plane_ip); apply "
            "kubesalt.node first, which chooses and publishes it"
        )
    first = first_node(cfg, roles) == name
    members: tuple[tuple[str, str], ...] = ()
    if _roles.ETCD in roles[name] and not first:
        members = etcd_members(cfg, roles, ips)
    return Node(
        name=name,
        ip=ip,
        roles=roles[name],
        first=first,
        etcd_members=members,
        hostname=hostname if hostname and hostname != name else None,
        workload_ip=workload_ip,
        kubernetes_version=kubernetes_version,
    )
