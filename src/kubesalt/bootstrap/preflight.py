"""Preflight: named checks run before bootstrap.sh changes anything.

Each check takes the facts it needs as arguments and returns a list of problems (one
line each: what is wrong, the value, the fix), so every check is a pure function and the
phase reports all problems at once. The shape of kubeadm's preflight checkers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubesalt import network, ports
from kubesalt.errors import KubesaltError
from kubesalt.roles import BOOTSTRAP_NODE_ROLES, CA_NODE_ROLES

# Preflight checks only the ports of the roles whose services bootstrap.sh starts itself
# (etcd and the control plane come later, from the highstate).
BOOTSTRAP_ROLES = CA_NODE_ROLES
# The roles bootstrap.sh declares the bootstrap node with (the first node has all of them).
FIRST_NODE_ROLES = BOOTSTRAP_NODE_ROLES

# A port a kubesalt role needs may already be in use by the systemd unit kubesalt runs on
# it (a second run of bootstrap.sh): port-matrix entry -> that unit.
PORT_OWNERS = {
    "salt-publish": "salt-master.service",
    "salt-request": "salt-master.service",
    "repository": "nginx.service",
    "registry": "docker-registry.service",
}

# Free space needed before anything is installed: directory -> bytes.
DISK_NEEDS = {
    "/opt": 1 << 30,  # the Salt virtualenv (~200 MB) and room to upgrade it
    "/var": 2 << 30,  # the registry's copy of the images, packages' files, logs
    "/etc": 16 << 20,
}

SUPPORTED_OS = {"debian": ("12",)}
RPM_FAMILY = {"rhel", "centos", "rocky", "almalinux", "fedora", "ol"}


@dataclass(frozen=True)
class Listener:
    """A listening socket: protocol, local address, port, and its processes' PIDs."""

    protocol: str
    address: str
    port: int
    pids: tuple[int, ...]


def check_root(euid: int) -> list[str]:
    if euid != 0:
        return [f"bootstrap.sh runs as uid {euid}; run it as root (sudo bootstrap.sh ...)"]
    return []


def parse_os_release(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"').strip("'")
    return fields


def check_os(os_release: dict[str, str]) -> list[str]:
    """Debian 12 is supported; the RPM family is refused with a clear message for now."""
    os_id = os_release.get("ID", "")
    version = os_release.get("VERSION_ID", "")
    like = set(os_release.get("ID_LIKE", "").split())
    pretty = os_release.get("PRETTY_NAME", f"{os_id} {version}".strip() or "unknown")
    if os_id in SUPPORTED_OS and version.split(".")[0] in SUPPORTED_OS[os_id]:
        return []
    if os_id in RPM_FAMILY or like & RPM_FAMILY:
        return [
            f"operating system {pretty!r}: the RPM family cannot be a bootstrap node yet "
            "(its repositories are served, but bootstrap.sh installs with apt); use a "
            "Debian 12 machine as the bootstrap node"
        ]
    return [f"operating system {pretty!r} is not supported; the bootstrap node must run Debian 12"]


def check_addresses(cfg: dict, host_addresses: list[network.HostAddress]) -> tuple[list[str], dict]:
    """Each plane's CIDRs must hold an address of this host; returns (problems, chosen IPs)."""
    problems, chosen = [], {}
    for plane in ("controlPlane", "workloadPlane"):
        try:
            chosen[plane] = network.select_ip(
                cfg["networks"][plane]["cidr"],
                host_addresses,
                exclude=(cfg["apiServer"]["host"],),
                key=f"networks.{plane}.cidr",
            )
        except KubesaltError as err:
            problems.append(str(err))
    return problems, chosen


_SS_USERS = re.compile(r"pid=(\d+)")


def parse_ss(text: str, protocol: str) -> list[Listener]:
    """Parse `ss -H -l -n -p -t|-u` output into listeners."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        local = fields[3]
        address, _, port = local.rpartition(":")
        if not port.isdigit():
            continue
        address = address.strip("[]").split("%", 1)[0]
        pids = tuple(sorted({int(pid) for pid in _SS_USERS.findall(line)}))
        found.append(Listener(protocol, address, int(port), pids))
    return found


def unit_of_cgroup(text: str) -> str | None:
    """The systemd unit in /proc/PID/cgroup content (the name=systemd or unified line)."""
    for line in text.splitlines():
        _, _, path = line.partition(":")
        controllers, _, path = path.partition(":")
        if controllers in ("name=systemd", ""):
            for part in reversed(path.split("/")):
                if part.endswith((".service", ".scope")):
                    return part
    return None


def check_ports(
    cfg: dict, listeners: list[Listener], units: dict[int, str | None], roles=BOOTSTRAP_ROLES
) -> list[str]:
    """The bootstrap role's ports must be free, or held by the unit kubesalt runs there.

    `units` maps a PID to its systemd unit (from /proc/PID/cgroup).
    """
    problems = []
    for entry in ports.ports_to_free(list(roles), cfg):
        first, last = entry.port_range
        owner = PORT_OWNERS.get(entry.name)
        for listener in listeners:
            if listener.protocol != entry.protocol or not first <= listener.port <= last:
                continue
            held_by = {units.get(pid) for pid in listener.pids}
            if owner and held_by == {owner}:
                continue
            who = (
                ", ".join(sorted(str(u or "an unknown process") for u in held_by))
                or "an unknown process"
            )
            problems.append(
                f"port {entry.protocol}/{listener.port} ({entry.name}, for {entry.listener}) is "
                f"already in use on {listener.address} by {who} (pids {list(listener.pids)}); "
                "stop that program or move it to another port"
            )
    return problems


def check_disk(free_bytes: dict[str, int], needs: dict[str, int] = DISK_NEEDS) -> list[str]:
    """Each directory must have its free space; `free_bytes` maps it to what is free."""
    problems = []
    for path, need in needs.items():
        free = free_bytes.get(path)
        if free is not None and free < need:
            problems.append(
                f"{path} has {free / (1 << 20):.0f} MiB free, bootstrap needs {need / (1 << 20):.0f} MiB; "
                f"free space on the filesystem holding {path}"
            )
    return problems
