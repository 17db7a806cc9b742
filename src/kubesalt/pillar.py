"""The configuration as one node's pillar holds it: only the secrets that node needs.

Every minion reads its own pillar, and a pillar travels to the minion (and into job
returns), so a secret is given only to the nodes whose states use it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from kubesalt import roles as _roles


def needs_vrrp_password(cfg: dict, roles: Iterable[str]) -> bool:
    """keepalived runs, with `apiServer.keepalived.authPassword`, on control-plane nodes
    only, and only while kubesalt manages keepalived."""
    return _roles.CONTROL_PLANE in roles and cfg["apiServer"]["keepalived"]["enabled"]


def for_node(cfg: dict, roles: Iterable[str]) -> dict:
    """`cfg` (the normalized configuration) for a node with `roles` (none for a minion
    missing from the inventory): `authPassword` left out where it is not needed."""
    roles = frozenset(roles)
    if needs_vrrp_password(cfg, roles):
        return cfg
    view = copy.deepcopy(cfg)
    view["apiServer"]["keepalived"].pop("authPassword", None)
    return view
