"""A node of the cluster as the renderer sees it, built from the inventory and the mine.

Salt gives three things: the roles of every node (pillar `kubesalt:nodes`), the control-plane
IP each node chose (the mine, `control_plane_ip`), and the configuration. From them this
module decides which node plays `kubeadm init` (`first_node`) and builds the `Node` of any
member, with its etcd member list. The signing-policy generation (on the master) and the
execution module (on each minion) both use it, so they agree on every node's identity.
"""

from __future__ import annotations

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


def first_node(cfg: dict, roles: dict[str, frozenset[str]]) -> str | None:
    """The node that plays `kubeadm init`: the CA minion when it has control-plane and etcd
    (the bootstrap node, declared with every role), else the first such node by name;
    None when no node has both roles."""
    candidates = sorted(
        name for name, node_roles in roles.items() if node_roles >= _roles.INIT_ROLES
    )
    ca_minion = cfg["ca"]["minion"]
    if ca_minion in candidates:
        return ca_minion
    return candidates[0] if candidates else None


def etcd_members(
    cfg: dict, roles: dict[str, frozenset[str]], ips: dict[str, str]
) -> tuple[tuple[str, str], ...]:
    """Every etcd node that published its IP, the first node first, then by name."""
    first = first_node(cfg, roles)
    names = sorted(n for n, r in roles.items() if _roles.ETCD in r and ips.get(n))
    names.sort(key=lambda n: n != first)
    return tuple((n, ips[n]) for n in names)


def build_node(
    cfg: dict,
    name: str,
    roles: dict[str, frozenset[str]],
    ips: dict[str, str],
    hostname: str | None = None,
) -> Node:
    """The `Node` for `name`: its roles, its IP (from `ips`), `first` when it plays
    `kubeadm init`, and, for a joining etcd member, every etcd member known."""
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
    )
