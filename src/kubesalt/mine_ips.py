"""The control-plane IPs the nodes published to the Salt mine, checked one entry at a time.

Each minion writes its own mine entry (its grain `kubesalt:control_plane_ip`), so one bad
entry must not stop what the other entries feed: the CA's signing policies, every node's
firewall peers, keepalived's peers, etcd member lists. A bad entry is left out of all of
them; only the node that published it is told (its own states fail with the problem).
"""

from __future__ import annotations

import ipaddress

from kubesalt.errors import ConfigError


def _control_plane_networks(config: dict) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        cidrs = config["networks"]["controlPlane"]["cidr"]
    except (KeyError, TypeError) as err:
        raise ConfigError("networks.controlPlane.cidr: missing from the configuration") from err
    cidrs = [cidrs] if isinstance(cidrs, str) else list(cidrs)
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def _fix(name: str) -> str:
    return (
        f"on {name} run state.apply kubesalt.node (it chooses the IP again from "
        f"networks.controlPlane.cidr) and mine.update; until then {name} is left out of "
        "certificates, firewalls and peer lists"
    )


def problem(name: str, value, config: dict) -> str | None:
    """What is wrong with `value`, the mine entry of node `name`; None when it is usable
    or not published yet (empty)."""
    if value is None or value == "":
        return None
    where = f"mine control_plane_ip of {name}: {value!r}"
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None:
        return f"{where} is not an IP address; {_fix(name)}"
    networks = _control_plane_networks(config)
    if not any(address in network for network in networks):
        listing = ", ".join(map(str, networks))
        return f"{where} is outside networks.controlPlane.cidr ({listing}); {_fix(name)}"
    return None


def usable(ips: dict, config: dict) -> dict[str, str]:
    """The entries of `ips` (`{node: ip}`, the mine) that are usable, normalized
    (`FD00::A` -> `fd00::a`); bad and empty ones are left out."""
    return {
        name: str(ipaddress.ip_address(value))
        for name, value in sorted((ips or {}).items())
        if value not in (None, "") and problem(name, value, config) is None
    }


def problems(ips: dict, config: dict) -> dict[str, str]:
    """`{node: problem}` for every bad entry of `ips`."""
    found = {name: problem(name, value, config) for name, value in sorted((ips or {}).items())}
    return {name: text for name, text in found.items() if text}


def check_own(name: str, ips: dict, config: dict) -> None:
    """Raise the problem of node `name`'s own entry in `ips`, if it has one: the node
    that published a bad entry is the one told, every other node goes on without it."""
    found = problem(name, (ips or {}).get(name), config)
    if found:
        raise ConfigError(found)
