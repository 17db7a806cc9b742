"""This node's addresses: the control-plane and workload-plane IPs chosen from CIDRs.

A thin wrapper over `kubesalt.network`: it reads the host's interfaces and the
pillar, the package decides.
"""

import os

import salt.utils.network
from salt.exceptions import CommandExecutionError

try:
    from kubesalt import network as _network
    from kubesalt import saltglue as _glue

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_network"

# Pillar key of each plane, and the grain that keeps its chosen IP.
PLANES = {
    "controlPlane": "kubesalt:control_plane_ip",
    "workloadPlane": "kubesalt:workload_plane_ip",
}


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def _host_addresses():
    """Every address of every interface that is up, as kubesalt.network.HostAddress."""
    addresses = []
    for name, info in sorted(salt.utils.network.interfaces().items()):
        if not info.get("up", False):
            continue
        for entry in info.get("inet", []) + info.get("secondary", []):
            if entry.get("type", "inet") != "inet" or "address" not in entry:
                continue
            prefix = salt.utils.network.get_net_size(entry["netmask"])
            addresses.append(_network.HostAddress(name, entry["address"], int(prefix)))
        for entry in info.get("inet6", []):
            addresses.append(_network.HostAddress(name, entry["address"], int(entry["prefixlen"])))
    return addresses


def _as_list(cidrs):
    if isinstance(cidrs, str):
        return [part.strip() for part in cidrs.split(",") if part.strip()]
    return list(cidrs or [])


def host_addresses():
    """
    List the addresses of this host's interfaces that are up, as "iface address/prefix".

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_network.host_addresses
    """
    return [str(entry) for entry in _host_addresses()]


def get_ip_from_cidrs(cidrs, current_ip=None, exclude=None):
    """
    Return this host's IP from the first CIDR (in order) that holds one of its addresses.

    cidrs
        A list of CIDRs (or one CIDR, or a comma-separated string).
    current_ip
        The IP chosen before: it stays chosen while the host still has it and a
        CIDR still holds it.
    exclude
        Addresses never to choose (for example the API virtual IP).

    No match is an error listing the CIDRs tried and the host's addresses.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_network.get_ip_from_cidrs '["198.51.100.0/24", "10.1.0.0/16"]'
    """
    return _glue.call(
        _network.select_ip,
        _as_list(cidrs),
        _host_addresses(),
        current_ip=current_ip,
        exclude=tuple(_as_list(exclude)),
    )


def plane_ip(plane="controlPlane"):
    """
    Return this node's IP for a plane (``controlPlane`` or ``workloadPlane``),
    chosen from ``networks.<plane>.cidr`` in the pillar, keeping the IP already in
    the plane's grain while it is still valid, and never the API virtual IP.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_network.plane_ip workloadPlane
    """
    if plane not in PLANES:
        raise CommandExecutionError(f"Unknown plane {plane!r}: use one of {', '.join(PLANES)}")
    cfg = _glue.config_from_pillar(__pillar__)  # noqa: F821 (Salt dunder)
    return _glue.call(
        _network.select_ip,
        cfg["networks"][plane]["cidr"],
        _host_addresses(),
        current_ip=__salt__["grains.get"](PLANES[plane]) or None,  # noqa: F821
        exclude=(cfg["apiServer"]["host"],),
        key=f"networks.{plane}.cidr",
    )


def interface_of(ip):
    """
    Return the name of the interface that holds an IP of this host.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_network.interface_of 198.51.100.10
    """
    return _glue.call(_network.interface_of, ip, _host_addresses())


def mtu_of(ip):
    """
    Return the MTU of the interface that holds an IP of this host.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_network.mtu_of 198.51.100.10
    """
    interface = interface_of(ip)
    path = os.path.join("/sys/class/net", interface, "mtu")
    try:
        with open(path, encoding="ascii") as stream:
            return int(stream.read().strip())
    except (OSError, ValueError) as err:
        raise CommandExecutionError(
            f"Cannot read the MTU of {interface} from {path}: {err}"
        ) from err


def service_ip(n=1, cidr=None):
    """
    Return the n-th address of the service CIDR (1: the kubernetes API service,
    10: the cluster DNS), from ``networks.services`` in the pillar unless given.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_network.service_ip 10
    """
    if cidr is None:
        cidr = __pillar__.get("kubesalt", {}).get("networks", {}).get("services")  # noqa: F821
        if not cidr:
            raise CommandExecutionError("The pillar has no kubesalt:networks:services")
    return _glue.call(_network.nth_address, cidr, int(n))
