"""The node-name rule: one check for every place a node name enters kubesalt.

A node name is at once the Kubernetes Node object's name, the Salt minion ID, a certificate
subject and SAN, and a file name (the inventory's `<name>.yaml`). Kubernetes is the
strictest of these: a node name is a lowercase RFC 1123 subdomain (Kubernetes'
`IsDNS1123Subdomain`). Holding every name to it means `CP2` or `../bootstrap` is refused
where it is typed, never half-way through a deployment, and never becomes a path.
"""

from __future__ import annotations

import re

from kubesalt.errors import KubesaltError

MAX_LENGTH = 253
LABEL_MAX_LENGTH = 63
RULE = (
    "a node name is a lowercase RFC 1123 name, as Kubernetes requires: lowercase letters, "
    "digits, '-' and '.', each dot-separated part starting and ending with a letter or "
    f"digit, at most {MAX_LENGTH} characters"
)
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_LABEL = re.compile(_LABEL)
_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")


class NodeNameError(KubesaltError):
    """A node name breaks the node-name rule."""


def is_dns_label(value) -> bool:
    """Whether `value` is a lowercase RFC 1123 label (no dot) of at most 63 characters."""
    return (
        isinstance(value, str)
        and len(value) <= LABEL_MAX_LENGTH
        and _DNS_LABEL.fullmatch(value) is not None
    )


def is_dns_subdomain(value) -> bool:
    """Whether `value` is a lowercase RFC 1123 subdomain of at most 253 characters."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_LENGTH
        and _SUBDOMAIN.fullmatch(value) is not None
    )


def is_node_name(value) -> bool:
    """Whether `value` follows the node-name rule."""
    return is_dns_subdomain(value)


def check_node_name(value, what: str = "node name") -> str:
    """`value` when it follows the node-name rule, else a NodeNameError naming `what`,
    the value and the rule."""
    if not is_node_name(value):
        raise NodeNameError(f"{what}: {value!r} is not a valid node name; {RULE}")
    return value
