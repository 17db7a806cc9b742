"""The lab as data: its nodes, addresses, rootfs package list, and the files each node gets.

Pure functions only (tested in tests/unit/test_lab.py); `kubesalt.lab.host` acts on them.
Issue 6 adds cp2, cp3 and gives worker1 its role by extending NODES.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

NAME = "kubesalt-lab"
STATE_DIR = "/var/lib/kubesalt-lab"
CACHE_DIR = "/var/cache/kubesalt-lab"
BRIDGE = "ksbr0"
SUBNET = "198.51.100.0/24"  # TEST-NET-2: never the host's network (192.0.2.0/24)
VIP = "198.51.100.100"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What a freshly installed server has (Debian's "important" netbase included: firewalld
# needs its /etc/protocols); nothing of kubesalt's.
ROOTFS_PACKAGES = (
    "ca-certificates",
    "dbus",
    "iproute2",
    "netbase",
    "openssh-server",
    "python3",
    "systemd",
    "systemd-sysv",
)
ROOTFS_FORMAT = 1  # bump when the rootfs customisation below changes
ARCHIVE_DIR = "/srv/kubesalt/kubesalt-lab"  # where the lab ISO is extracted on the bootstrap node
CONFIG_DEST = "/etc/kubesalt/bootstrap.yaml"
NETWORK_FILE = "/etc/systemd/network/10-lab.network"
# Debian's policy-rc.d decides whether installing a package starts its service: set it
# explicitly (lab-host.md) to what a real server does, start them. mmdebstrap removes its
# own at the end of the build, so each node gets this one.
POLICY_RC_D = "#!/bin/sh\n# kubesalt lab: services start on install, as on a real server.\nexit 0\n"


@dataclass(frozen=True)
class Node:
    """One lab node: its name (hostname and minion ID), IP, and kubesalt roles.

    `bootstrap` marks the node bootstrap.sh runs on; a node with no roles is a plain
    server (used to check what any new node sees).
    """

    name: str
    ip: str
    roles: tuple[str, ...] = ()
    bootstrap: bool = False


NODES = (
    Node("bootstrap", "198.51.100.10", ("bootstrap", "ca"), bootstrap=True),
    Node("worker1", "198.51.100.20"),
)

# Services expected active on a node, by role (shown in the table, checked by the tests).
SERVICES = {
    "bootstrap": ("salt-master", "salt-minion", "nginx", "docker-registry", "firewalld"),
}


class LabError(Exception):
    """A lab step failed; the message says what and what to do."""


def check_nodes(nodes=NODES, subnet: str = SUBNET, vip: str = VIP) -> list[str]:
    """Problems in the node list: names, addresses inside the subnet, no duplicates."""
    problems = []
    network = ipaddress.ip_network(subnet)
    seen_names, seen_ips = set(), {vip}
    for node in nodes:
        if not node.name.isalnum() or len(node.name) > 11:
            problems.append(
                f"node name {node.name!r}: use at most 11 letters or digits (veth names)"
            )
        if node.name in seen_names:
            problems.append(f"node name {node.name!r} is used twice")
        address = ipaddress.ip_address(node.ip)
        if address not in network or address in (
            network.network_address,
            network.broadcast_address,
        ):
            problems.append(f"node {node.name}: {node.ip} is not a host address of {subnet}")
        if node.ip in seen_ips:
            problems.append(f"node {node.name}: {node.ip} is used twice (or is the VIP)")
        seen_names.add(node.name)
        seen_ips.add(node.ip)
    if sum(1 for n in nodes if n.bootstrap) != 1:
        problems.append("exactly one node must be the bootstrap node")
    return problems


def node(name: str, nodes=NODES) -> Node:
    for item in nodes:
        if item.name == name:
            return item
    raise LabError(f"no lab node {name!r}; nodes: {', '.join(n.name for n in nodes)}")


def rootfs_key(packages=ROOTFS_PACKAGES, suite: str = SUITE, mirror: str = MIRROR) -> str:
    """The cache key of the rootfs: its package list, suite, mirror and format."""
    text = "\n".join([f"format={ROOTFS_FORMAT}", suite, mirror, *sorted(packages)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def mmdebstrap_command(
    target: str, packages=ROOTFS_PACKAGES, suite: str = SUITE, mirror: str = MIRROR
) -> list[str]:
    return [
        "mmdebstrap",
        "--quiet",
        "--variant=apt",
        "--include=" + ",".join(sorted(packages)),
        '--customize-hook=systemctl --root="$1" enable systemd-networkd.service',
        '--customize-hook=rm -f "$1/etc/machine-id" "$1/etc/hostname"',
        suite,
        target,
        f"deb {mirror} {suite} main",
    ]


def network_file(ip: str, subnet: str = SUBNET) -> str:
    """systemd-networkd file of a node: a static address on host0, no gateway (no route
    out), no DHCP, no IPv6 autoconfiguration. Named 10-* so the image's
    80-container-host0.network (DHCP) does not win."""
    prefix = ipaddress.ip_network(subnet).prefixlen
    return (
        "# kubesalt lab: static address, no default route (the lab has no way out).\n"
        "[Match]\nName=host0\n\n"
        f"[Network]\nAddress={ip}/{prefix}\nDHCP=no\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    )


def hosts_file(nodes=NODES) -> str:
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{n.ip} {n.name}" for n in nodes]
    return "\n".join(lines) + "\n"


def machine_id(name: str, seed: str) -> str:
    """A stable machine ID per node and lab instance."""
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:32]


def nspawn_command(name: str, root: str, bridge: str = BRIDGE) -> list[str]:
    """systemd-nspawn booting a node. PID 1 of the host is not systemd: --register=no and
    --keep-unit (lab-host.md); the launcher is put in the node's own cgroup first."""
    return [
        "systemd-nspawn",
        "--quiet",
        "--boot",
        "--register=no",
        "--keep-unit",
        f"--directory={root}",
        f"--machine={name}",
        f"--hostname={name}",
        f"--network-bridge={bridge}",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
    ]


def table(rows: list[dict]) -> str:
    """The `lab.sh up/status` table: node, roles, IP, state, services up."""
    head = ("NODE", "ROLES", "IP", "STATE", "SERVICES UP")
    data = [
        (
            r["name"],
            ",".join(r["roles"]) or "-",
            r["ip"],
            r["state"],
            " ".join(r["services"]) or "-",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *data, strict=False)]
    lines = [
        "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip()
        for row in [head, *data]
    ]
    return "\n".join(lines)
