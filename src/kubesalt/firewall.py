"""The firewalld setup of a node, computed from the port matrix.

Pure: no Salt, no firewalld. The Salt states write :func:`render_zone_xml` to
``/etc/firewalld/zones/kubesalt.xml``, make ``kubesalt`` the default zone and reload
firewalld when the file changes (see docs/firewall.md).

The zone:

- target ``default``: whatever no rule accepts is rejected (``icmp-host-prohibited``), and
  ICMP is accepted so path-MTU discovery keeps working;
- ports open to anyone become ``<port>`` elements (both address families);
- ports open to some sources become rich rules, one per source address or CIDR (a peer's
  control-plane or workload-plane IP, a plane's CIDR, the pod network);
- VRRP (IP protocol 112) becomes a rich rule per control-plane peer, the CNI's IP-in-IP
  tunnels (protocol 4, or 41 over IPv6) a rich rule per workload-plane CIDR;
- pods (`networks.pods`) are a source like any other: they reach only the ports whose
  matrix entry lists `pods`, never salt-master, etcd or the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from kubesalt.ports import PortEntry, Rule, node_rules

ZONE = "kubesalt"
ZONE_PATH = f"/etc/firewalld/zones/{ZONE}.xml"
FIREWALLD_CONF = "/etc/firewalld/firewalld.conf"
ZONE_TARGET = "default"
# firewalld's protocol values of the matrix's port-less protocols, per source family (None:
# no source, both families). IP-in-IP is written as numbers: "ipip" in /etc/protocols is
# protocol 94, not the 4 Linux ipip tunnels use.
PROTOCOL_VALUES = {
    "vrrp": {"ipv4": ("vrrp",), "ipv6": ("vrrp",), None: ("vrrp",)},
    "ipip": {"ipv4": ("4",), "ipv6": ("41",), None: ("4", "41")},
}


@dataclass(frozen=True)
class Zone:
    """The desired content of the kubesalt zone."""

    target: str
    ports: tuple[tuple[str, str], ...]  # (port, protocol) open to anyone
    protocols: tuple[str, ...]  # protocols open to anyone
    rules: tuple[Rule, ...]  # source-restricted openings


def desired_zone(
    config: dict,
    roles: list[str] | tuple[str, ...],
    peers: dict[str, list[str]],
    matrix: tuple[PortEntry, ...] | None = None,
    *,
    workload_peers: dict[str, list[str]] | None = None,
) -> Zone:
    """The kubesalt zone of a node with ``roles``; ``peers`` maps role -> control-plane IPs,
    ``workload_peers`` role -> workload-plane IPs (None: the same, one network)."""
    rules = node_rules(roles, config, peers, matrix, workload_peers=workload_peers)
    ports = tuple((rule.port, rule.protocol) for rule in rules if rule.source is None and rule.port)
    protocols = tuple(
        value
        for rule in rules
        if rule.source is None and not rule.port
        for value in protocol_values(rule.protocol, None)
    )
    restricted = tuple(rule for rule in rules if rule.source is not None)
    return Zone(ZONE_TARGET, ports, protocols, restricted)


def protocol_values(protocol: str, family: str | None) -> tuple[str, ...]:
    """The firewalld `<protocol value>`s of a port-less matrix protocol for `family`."""
    return PROTOCOL_VALUES[protocol][family]


def _rich_rule(family: str, source: str, body: str, comment: str) -> list[str]:
    return [
        f"  <!-- {comment} -->",
        f"  <rule family={quoteattr(family)}>",
        f"    <source address={quoteattr(source)}/>",
        f"    {body}",
        "    <accept/>",
        "  </rule>",
    ]


def render_zone_xml(zone: Zone) -> str:
    """The firewalld zone file for ``zone`` (stable output: same input, same bytes)."""
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<!-- Managed by kubesalt (state kubesalt.firewall) from the port matrix;",
        "     local changes are overwritten. See docs/firewall.md. -->",
        f"<zone target={quoteattr(zone.target)}>",
        f"  <short>{ZONE}</short>",
        "  <description>kubesalt node: the ports of its roles, to the sources the port "
        "matrix gives, everything else rejected.</description>",
    ]
    for port, protocol in zone.ports:
        lines.append(f"  <port port={quoteattr(port)} protocol={quoteattr(protocol)}/>")
    for protocol in zone.protocols:
        lines.append(f"  <protocol value={quoteattr(protocol)}/>")
    for rule in zone.rules:
        if rule.port:
            body = f"<port port={quoteattr(rule.port)} protocol={quoteattr(rule.protocol)}/>"
        else:
            (value,) = protocol_values(rule.protocol, rule.family)
            body = f"<protocol value={quoteattr(value)}/>"
        lines += _rich_rule(rule.family, rule.source, body, ", ".join(rule.entries))
    lines.append("</zone>")
    return "\n".join(lines) + "\n"


def zone_xml(
    config: dict,
    roles: list[str] | tuple[str, ...],
    peers: dict[str, list[str]],
    matrix: tuple[PortEntry, ...] | None = None,
    *,
    workload_peers: dict[str, list[str]] | None = None,
) -> str:
    """Shortcut: the zone file content of a node."""
    return render_zone_xml(
        desired_zone(config, roles, peers, matrix, workload_peers=workload_peers)
    )


def default_zone_line() -> str:
    """The firewalld.conf line that makes the kubesalt zone the default one."""
    return f"DefaultZone={ZONE}"
