"""Address arithmetic and selection of a node's IPs from CIDR lists."""

from __future__ import annotations

from dataclasses import dataclass

import netaddr

from kubesalt.errors import AddressError


def nth_address(cidr: str, n: int) -> str:
    """Return the n-th address of `cidr` (1 = first usable, as kubeadm counts).

    kubeadm's kubernetes service IP is the 1st, the cluster DNS IP the 10th.
    """
    network = netaddr.IPNetwork(cidr)
    if n < 0 or n >= network.size:
        raise AddressError(
            f"{cidr} has {network.size} addresses: it has no address number {n}; "
            "use a larger network"
        )
    return str(netaddr.IPAddress(network.first + n, network.version))


@dataclass(frozen=True)
class HostAddress:
    """One address configured on one interface of a host."""

    interface: str
    address: str
    prefixlen: int

    def __str__(self) -> str:
        return f"{self.interface} {self.address}/{self.prefixlen}"


def _ip(text: str) -> netaddr.IPAddress | None:
    try:
        return netaddr.IPAddress(text.split("%", 1)[0])
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None


def select_ip(
    cidrs: list[str],
    host_addresses: list[HostAddress],
    current_ip: str | None = None,
    exclude: tuple[str, ...] = (),
    key: str = "cidr",
) -> str:
    """Choose this host's IP for a plane from its CIDR list.

    The CIDRs are tried in order; within one CIDR the host's addresses are taken in
    interface-name then numeric order, so the choice is stable. An IP chosen before
    (`current_ip`) stays chosen while the host still has it and a CIDR still holds it.
    `exclude` holds addresses never to choose (the API VIP that keepalived may have
    put on this host). `key` names the configuration key in the error message.
    """
    networks = [netaddr.IPNetwork(cidr) for cidr in cidrs]
    excluded = {_ip(item) for item in exclude} - {None}
    candidates = sorted(
        (
            (entry.interface, ip)
            for entry in host_addresses
            if (ip := _ip(entry.address)) is not None and ip not in excluded
        ),
        key=lambda pair: (pair[0], pair[1].version, int(pair[1])),
    )
    current = _ip(current_ip) if current_ip else None
    still_here = current is not None and any(ip == current for _, ip in candidates)
    if still_here and any(current in network for network in networks):
        return str(current)
    for network in networks:
        for _, ip in candidates:
            if ip in network:
                return str(ip)
    tried = ", ".join(cidrs) or "(none)"
    have = ", ".join(str(entry) for entry in host_addresses) or "(none)"
    raise AddressError(
        f"No address of this host is in {key} [{tried}]. Host addresses: {have}. "
        f"Fix: add a CIDR that holds one of them to {key} in bootstrap.yaml, "
        "or give this host an address in one of those networks."
    )


def interface_of(ip: str, host_addresses: list[HostAddress]) -> str:
    """Return the name of the interface that holds `ip`."""
    wanted = _ip(ip)
    for entry in host_addresses:
        if _ip(entry.address) == wanted:
            return entry.interface
    have = ", ".join(str(entry) for entry in host_addresses) or "(none)"
    raise AddressError(f"No interface of this host holds {ip}. Host addresses: {have}.")


def network_of(ip: str, cidrs: list[str]) -> str:
    """Return the first CIDR of `cidrs` that holds `ip`, e.g. to give a VIP its prefix."""
    address = _ip(ip)
    for cidr in cidrs:
        if address is not None and address in netaddr.IPNetwork(cidr):
            return cidr
    raise AddressError(f"{ip} is in none of {', '.join(cidrs)}")
