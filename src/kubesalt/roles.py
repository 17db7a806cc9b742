"""The roles a kubesalt node can have, and the role sets the code decides with.

Every module that names a role or a set of roles takes it from here (a unit test refuses
a literal list of role names anywhere else), so adding or renaming a role is one change.
See docs/inventory.md for what each role brings.
"""

from __future__ import annotations

from collections.abc import Iterable

BOOTSTRAP = "bootstrap"
CA = "ca"
CONTROL_PLANE = "control-plane"
ETCD = "etcd"
NODE = "node"

# Every role, in the order docs and errors list them.
ROLES = (BOOTSTRAP, CA, CONTROL_PLANE, ETCD, NODE)
# Roles only the CA minion (ca.minion, the bootstrap node) may hold; bootstrap.sh starts
# their services itself, so its preflight checks their ports.
CA_NODE_ROLES = (BOOTSTRAP, CA)
# The roles the bootstrap node is declared with: the first node has all of them.
BOOTSTRAP_NODE_ROLES = ROLES
# The roles of the node that plays `kubeadm init` (etcd alone, then the control plane).
INIT_ROLES = frozenset({CONTROL_PLANE, ETCD})
# Roles whose nodes run a kubelet (the control plane and etcd run as its static pods).
KUBELET_ROLES = frozenset({CONTROL_PLANE, ETCD, NODE})
# Roles a highstate undoes when the inventory no longer gives them (`<role>-absent`);
# the CA and bootstrap roles are only removed by an explicit operation.
REMOVABLE_ROLES = (ETCD, CONTROL_PLANE, NODE)
# A role that needs another one on the same node: kubesalt runs a stacked etcd member on
# every control-plane node.
REQUIRES = {CONTROL_PLANE: frozenset({ETCD})}


def listing() -> str:
    """`bootstrap, ca, control-plane, etcd, node`, for errors and hints."""
    return ", ".join(ROLES)


def unknown(roles: Iterable) -> list:
    """The members of `roles` that are not roles, in the given order."""
    return [role for role in roles if role not in ROLES]


def runs_kubelet(roles: Iterable[str]) -> bool:
    """Whether a node with `roles` runs a kubelet."""
    return bool(KUBELET_ROLES & set(roles))


def needed_by(role: str) -> frozenset[str]:
    """The roles that cannot stay on a node without `role` (control-plane without etcd)."""
    return frozenset(other for other, needs in REQUIRES.items() if role in needs)
