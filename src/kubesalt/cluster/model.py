"""What rendering the cluster's API objects needs: the validated configuration and the
inventory's nodes with their roles. Nothing here talks to an API server."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kubesalt import roles as _roles

FIELD_MANAGER = "kubesalt"  # the one server-side apply field manager of every object


@dataclass(frozen=True)
class ClusterNode:
    """One node of the inventory: its name (the Node object's name) and its roles."""

    name: str
    roles: frozenset[str]

    @property
    def control_plane(self) -> bool:
        return _roles.CONTROL_PLANE in self.roles


def cluster_nodes(roles_by_node: dict[str, Iterable[str]]) -> tuple[ClusterNode, ...]:
    """The nodes, sorted by name, from {name: roles} (the inventory's shape)."""
    return tuple(
        ClusterNode(name, frozenset(roles)) for name, roles in sorted(roles_by_node.items())
    )
