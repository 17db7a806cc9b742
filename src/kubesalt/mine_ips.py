"""The IPs the nodes published to the Salt mine, checked one entry at a time.

Each minion writes its own mine entries (its grains `kubesalt:control_plane_ip` and
`kubesalt:workload_plane_ip`), so one bad entry must not stop what the other entries feed:
the CA's signing policies, every node's firewall peers, keepalived's peers, etcd member
lists. A bad entry is left out of all of them; only the node that published it is told (its
own states fail with the problem).
"""

from __future__ import annotations

import ipaddress

from kubesalt import mine
from kubesalt.errors import ConfigError

CONTROL_PLANE = "controlPlane"
WORKLOAD_PLANE = "workloadPlane"
# The mine function that publishes each plane's IP (pillar/kubesalt/mine.sls).
MINE_FUNCTIONS = {CONTROL_PLANE: mine.CONTROL_PLANE_IP, WORKLOAD_PLANE: mine.WORKLOAD_PLANE_IP}


def _mine_function(plane: str) -> str:
    if plane not in MINE_FUNCTIONS:
        raise ConfigError(f"plane {plane!r} is unknown; use one of {', '.join(MINE_FUNCTIONS)}")
    return MINE_FUNCTIONS[plane]


def _networks(config: dict, plane: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        cidrs = config["networks"][plane]["cidr"]
    except (KeyError, TypeError) as err:
        raise ConfigError(f"networks.{plane}.cidr: missing from the configuration") from err
    cidrs = [cidrs] if isinstance(cidrs, str) else list(cidrs)
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def _fix(name: str, plane: str) -> str:
    return (
        f"on {name} run state.apply kubesalt.node (it chooses the IP again from "
        f"networks.{plane}.cidr) and mine.update; until then {name} is left out of "
        "certificates, firewalls and peer lists"
    )


def problem(name: str, value, config: dict, plane: str = CONTROL_PLANE) -> str | None:
    """What is wrong with `value`, the mine entry of node `name` for `plane`; None when it
    is usable or not published yet (empty)."""
    function = _mine_function(plane)
    if value is None or value == "":
        return None
    where = f"mine {function} of {name}: {value!r}"
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None:
        return f"{where} is not an IP address; {_fix(name, plane)}"
    networks = _networks(config, plane)
    if not any(address in network for network in networks):
        listing = ", ".join(map(str, networks))
        return f"{where} is outside networks.{plane}.cidr ({listing}); {_fix(name, plane)}"
    return None


def usable(ips: dict, config: dict, plane: str = CONTROL_PLANE) -> dict[str, str]:
    """The entries of `ips` (`{node: ip}`, the mine of `plane`) that are usable, normalized
    (`FD00::A` -> `fd00::a`); bad and empty ones are left out."""
    return {
        name: str(ipaddress.ip_address(value))
        for name, value in sorted((ips or {}).items())
        if value not in (None, "") and problem(name, value, config, plane) is None
    }


def problems(ips: dict, config: dict, plane: str = CONTROL_PLANE) -> dict[str, str]:
    """`{node: problem}` for every bad entry of `ips` (the mine of `plane`)."""
    found = {
        name: problem(name, value, config, plane) for name, value in sorted((ips or {}).items())
    }
    return {name: text for name, text in found.items() if text}


def check_own(name: str, ips: dict, config: dict, plane: str = CONTROL_PLANE) -> None:
    """Raise the problem of node `name`'s own entry in `ips` (the mine of `plane`), if it has
    one: the node that published a bad entry is the one told, every other node goes on
    without it."""
    found = problem(name, (ips or {}).get(name), config, plane)
    if found:
        raise ConfigError(found)
