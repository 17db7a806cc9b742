"""keepalived configuration of a control-plane node: the API server virtual IP.

Pure: no Salt, no keepalived. The Salt states write :func:`render_conf` to
``/etc/keepalived/keepalived.conf`` and :func:`render_check_script` to
``/etc/keepalived/kubesalt-check-apiserver``, then reload keepalived (docs/keepalived.md).

Choices (measured in tests/benchmarks/test_vip_failover.py, see docs/benchmarks.md):

- unicast VRRP, version 3, ``advert_int`` 0.25 s: a crashed holder is replaced after
  3 adverts plus the skew time (under 1 s). ``check_unicast_src`` drops adverts from
  addresses that are not listed peers.
- every node starts ``BACKUP`` with ``nopreempt``: once a node holds the VIP, nothing but
  its own failure moves it, so a reload with a new peer list (or new priorities) keeps the
  VIP where it is. Priorities still differ (highest for the lowest IP, spread over
  250..10) so that two backups never take over at the same instant.
- authentication: VRRPv3 has none. When ``apiServer.keepalived.authPassword`` is set the
  instance falls back to VRRPv2 with ``auth_type PASS`` and whole-second adverts (1 s):
  failover is then about 3 s. The password is clear text on the wire; the firewall
  (VRRP accepted only from control-plane peers) is the real protection.
- the track script asks the local kube-apiserver for ``/livez`` with Python's standard
  library (curl may be missing; ``/usr/bin/python3`` exists on every node because Salt's
  virtualenv is built from it). Two failures in a row (1 s apart) put the instance in
  FAULT: it drops the VIP and announces priority 0, and a peer takes over at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import netaddr

from kubesalt import urls
from kubesalt.errors import AddressError, ConfigError

CONF_PATH = "/etc/keepalived/keepalived.conf"
CHECK_SCRIPT_PATH = "/etc/keepalived/kubesalt-check-apiserver"
INSTANCE = "kubesalt_apiserver"
SCRIPT_NAME = "kubesalt_apiserver_health"
SCRIPT_USER = "nobody"
ADVERT_INT_V3 = 0.25
ADVERT_INT_V2 = 1
PRIORITY_TOP = 250
PRIORITY_SPAN = 240
CHECK_INTERVAL = 1
CHECK_TIMEOUT = 1
CHECK_FALL = 2
CHECK_RISE = 2
CHECK_HTTP_TIMEOUT = 0.8
GARP_MASTER_DELAY = 1
GARP_MASTER_REPEAT = 3
AUTH_PASS_MAX = 8
LOOPBACK = {4: "127.0.0.1", 6: "::1"}
AUTH_PASS_FORBIDDEN = set(" \t\n\r\"'#!{}\\")


@dataclass(frozen=True)
class Settings:
    """Every value of one node's keepalived.conf."""

    router_id: str
    interface: str
    src_ip: str
    peers: tuple[str, ...]  # the other control-plane nodes; loopback for a lone node
    vip: str  # address/prefix
    virtual_router_id: int
    priority: int
    version: int
    advert_int: float
    auth_pass: str | None
    check_script: str


def _address(value: object, what: str) -> netaddr.IPAddress:
    try:
        return netaddr.IPAddress(str(value))
    except (netaddr.AddrFormatError, ValueError) as err:
        raise AddressError(f"{what}: {value!r} is not an IP address") from err


def _interface(name: object) -> str:
    text = str(name or "")
    if not text or len(text) > 15 or any(c.isspace() or c in "/{}#!\"'" for c in text):
        raise AddressError(
            f"interface of the control-plane IP: {name!r} is not an interface name; "
            "check kubesalt_network.interface_of on this node"
        )
    return text


def vip_with_prefix(vip: str, cidrs: list[str]) -> str:
    """``vip/prefix`` using the first control-plane CIDR that contains ``vip``."""
    address = _address(vip, "apiServer.host")
    for cidr in cidrs:
        network = netaddr.IPNetwork(cidr)
        if address in network:
            return f"{address}/{network.prefixlen}"
    raise ConfigError(
        f"apiServer.host: {vip} is in none of networks.controlPlane.cidr "
        f"({', '.join(cidrs)}); with apiServer.keepalived.enabled the VIP must be a free "
        "address of a control-plane network"
    )


def priority_of(ip: str, all_ips: list[str]) -> int:
    """VRRP priority of ``ip``: 250 for the lowest address, then evenly down to 10."""
    ordered = sorted({_address(a, "control-plane IP") for a in all_ips})
    address = _address(ip, "control-plane IP")
    if address not in ordered:
        ordered = sorted({*ordered, address})
    if len(ordered) > PRIORITY_SPAN:
        raise ConfigError(
            f"control-plane nodes: {len(ordered)} is more than keepalived can rank "
            f"({PRIORITY_SPAN}); use fewer control-plane nodes"
        )
    step = PRIORITY_SPAN // len(ordered)
    return PRIORITY_TOP - ordered.index(address) * step


def _check_auth(password: object) -> str | None:
    if password is None or password == "":
        return None
    text = str(password)
    bad = sorted(set(text) & AUTH_PASS_FORBIDDEN)
    if len(text) > AUTH_PASS_MAX or bad or not text.isprintable() or not text.isascii():
        raise ConfigError(
            "apiServer.keepalived.authPassword: must be 1 to 8 printable ASCII characters "
            "without spaces, quotes, '#', '!', braces or backslashes (keepalived uses only "
            f"8 characters); got {len(text)} characters"
            + (f" including {' '.join(map(repr, bad))}" if bad else "")
            + "; choose another password or leave it empty (VRRPv3, faster failover)"
        )
    return text


def settings(
    config: dict,
    node_id: str,
    node_ip: str,
    interface: str,
    control_plane_ips: list[str],
    check_script: str = CHECK_SCRIPT_PATH,
) -> Settings:
    """Compute a control-plane node's keepalived settings.

    ``interface`` holds ``node_ip`` (``kubesalt_network.interface_of``); the VIP goes
    there too. ``control_plane_ips`` are the IPs of every control-plane node (from the
    mine; this node's own IP may be in it or not). The peers are all of them but ``node_ip``.
    """
    api = config.get("apiServer") or {}
    keepalived = api.get("keepalived") or {}
    if not keepalived.get("enabled"):
        raise ConfigError(
            "apiServer.keepalived.enabled: false; keepalived is not managed on this cluster "
            "(set it to true to have kubesalt hold the API server VIP)"
        )
    host = api.get("host")
    if not netaddr.valid_ipv4(str(host)) and not netaddr.valid_ipv6(str(host)):
        raise ConfigError(
            f"apiServer.host: {host!r} is not an IP address; keepalived needs the VIP as an "
            "address (use a DNS name only with apiServer.keepalived.enabled: false)"
        )
    vrid = keepalived.get("virtualRouterId")
    if isinstance(vrid, bool) or not isinstance(vrid, int) or not 1 <= vrid <= 255:
        raise ConfigError(
            f"apiServer.keepalived.virtualRouterId: {vrid!r} is not an integer from 1 to 255"
        )
    try:
        cidrs = config["networks"]["controlPlane"]["cidr"]
    except (KeyError, TypeError) as err:
        raise ConfigError("networks.controlPlane.cidr: missing from the configuration") from err
    cidrs = [cidrs] if isinstance(cidrs, str) else list(cidrs)
    vip = vip_with_prefix(str(host), cidrs)
    own = _address(node_ip, f"control-plane IP of {node_id}")
    vip_address = netaddr.IPNetwork(vip).ip
    if own.version != vip_address.version:
        raise ConfigError(
            f"apiServer.host: {vip_address} is IPv{vip_address.version} but the control-plane "
            f"IP of {node_id} is IPv{own.version} ({own}); VRRP carries one family: pick a VIP "
            "of the control-plane family"
        )
    if own == vip_address:
        raise ConfigError(
            f"apiServer.host: {vip_address} is the control-plane IP of {node_id}; the VIP "
            "must be an address no node owns"
        )
    others = set()
    for ip in control_plane_ips:
        address = _address(ip, "control-plane IP from the mine")
        if address == vip_address:
            raise ConfigError(
                f"apiServer.host: {vip_address} is also the control-plane IP of a node; "
                "the VIP must be an address no node owns"
            )
        if address.version != own.version:
            raise ConfigError(
                f"control-plane IP {address} (from the mine) is not IPv{own.version} like "
                f"{own}; every control-plane node needs an IP of the same family"
            )
        if address != own:
            others.add(address)
    # keepalived 2.2.7 falls back to multicast when the peer list is empty: a lone
    # control-plane node lists loopback, so its adverts never leave the host.
    peers = tuple(str(a) for a in sorted(others)) or (LOOPBACK[own.version],)
    auth = _check_auth(keepalived.get("authPassword"))
    if auth and own.version == 6:
        raise ConfigError(
            "apiServer.keepalived.authPassword: set, but VRRP authentication needs VRRPv2, "
            "which has no IPv6; leave it empty for an IPv6 VIP"
        )
    return Settings(
        router_id=node_id,
        interface=_interface(interface),
        src_ip=str(own),
        peers=peers,
        vip=vip,
        virtual_router_id=vrid,
        priority=priority_of(str(own), [str(own), *others]),
        version=2 if auth else 3,
        advert_int=ADVERT_INT_V2 if auth else ADVERT_INT_V3,
        auth_pass=auth,
        check_script=check_script,
    )


def render_conf(s: Settings) -> str:
    """keepalived.conf for ``s`` (stable: same settings, same bytes)."""
    lines = [
        "# Managed by kubesalt (state kubesalt.keepalived); local changes are overwritten.",
        "# See docs/keepalived.md.",
        "",
        "global_defs {",
        f"    router_id {s.router_id}",
        "    enable_script_security",
        f"    script_user {SCRIPT_USER}",
        "}",
        "",
        f"vrrp_script {SCRIPT_NAME} {{",
        f'    script "{s.check_script}"',
        f"    interval {CHECK_INTERVAL}",
        f"    timeout {CHECK_TIMEOUT}",
        f"    fall {CHECK_FALL}",
        f"    rise {CHECK_RISE}",
        "}",
        "",
        f"vrrp_instance {INSTANCE} {{",
        "    state BACKUP",
        "    nopreempt",
        f"    interface {s.interface}",
        f"    virtual_router_id {s.virtual_router_id}",
        f"    version {s.version}",
        f"    priority {s.priority}",
        f"    advert_int {s.advert_int:g}",
        f"    garp_master_delay {GARP_MASTER_DELAY}",
        f"    garp_master_repeat {GARP_MASTER_REPEAT}",
        f"    unicast_src_ip {s.src_ip}",
        "    check_unicast_src",
        "    unicast_peer {",
        *(f"        {peer}" for peer in s.peers),
        "    }",
    ]
    if s.auth_pass:
        lines += [
            "    authentication {",
            "        auth_type PASS",
            f"        auth_pass {s.auth_pass}",
            "    }",
        ]
    lines += [
        "    virtual_ipaddress {",
        f"        {s.vip} dev {s.interface}",
        "    }",
        "    track_script {",
        f"        {SCRIPT_NAME}",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_check_script(port: int, host: str = "127.0.0.1") -> str:
    """The track script: exit 0 when https://host:port/livez answers 200, else 1.

    TLS is not verified (like ``curl -k``): the check is about liveness of the local
    process, not about who it is. So the context loads no CA certificates: keepalived runs
    this every CHECK_INTERVAL seconds, and reading the system's CA bundle doubled its cost.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"apiServer.port: {port!r} is not a port from 1 to 65535")
    livez = urls.https(host, port, "/livez", what="keepalived track script")
    return f'''#!/usr/bin/python3 -I
"""keepalived track script (kubesalt): is the local kube-apiserver live?

Managed by kubesalt (state kubesalt.keepalived); local changes are overwritten.
Exit 0 when {livez} answers 200 within {CHECK_HTTP_TIMEOUT} s, else 1.
"""
import http.client
import ssl
import sys

context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
try:
    connection = http.client.HTTPSConnection(
        "{host}", {port}, timeout={CHECK_HTTP_TIMEOUT}, context=context
    )
    connection.request("GET", "/livez")
    status = connection.getresponse().status
except (OSError, http.client.HTTPException):
    sys.exit(1)
sys.exit(0 if status == 200 else 1)
'''
