"""The port matrix: which ports each role listens on, and who may reach them.

One data file (``kubesalt/data/ports.yaml``) feeds the firewall (:mod:`kubesalt.firewall`),
the preflight check of free ports (:func:`ports_to_free`), every port the renderer writes
(:func:`port_number`) and the table in ``docs/ports.md`` (:func:`markdown_table`;
regenerate with ``python -m kubesalt.ports --write``). A port the configuration sets
(``apiServer.port``) is written as that key in the matrix: every consumer gets the
configured value, never a copy of the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import netaddr
import yaml

from kubesalt import mine_ips as _mine_ips
from kubesalt import roles as _roles
from kubesalt.config.schema import default_of
from kubesalt.errors import ConfigError, KubesaltError

ALL_ROLES = "all"
PROTOCOLS = ("tcp", "udp", "vrrp", "ipip")
# Protocols without ports, as the docs table names them. `ipip` is the IP-in-IP tunnel of
# the node's family: IP protocol 4 between IPv4 nodes, 41 (IPv6 in IPv6) between IPv6 ones.
PORTLESS = {"vrrp": "vrrp (IP proto 112)", "ipip": "ipip (IP proto 4; 41 over IPv6)"}
SOURCES = ("anyone", "local", "control-plane-cidrs", "workload-plane-cidrs", "pods")
PEER_PREFIX = "peers:"
# The workload-plane IPs of the nodes with a role: where they reach a node's InternalIP (the
# kubelet's --node-ip) from, when the planes differ.
WORKLOAD_PEER_PREFIX = "workload-peers:"
PEER_PREFIXES = (PEER_PREFIX, WORKLOAD_PEER_PREFIX)
SWITCHES = ("apiServer.keepalived.enabled",)
# Configuration keys that set a port: an entry's `port` may name one instead of a number.
SETTINGS = ("apiServer.port",)
ENTRY_KEYS = (
    "name",
    "roles",
    "protocol",
    "port",
    "listener",
    "bind",
    "from",
    "must_be_free",
    "when",
    "notes",
)
DOCS_PATH = "docs/ports.md"
DOCS_HEADER = (
    "# Ports\n\n"
    "<!-- Generated from src/kubesalt/data/ports.yaml by `python -m kubesalt.ports --write`."
    " Do not edit by hand: tests/unit/test_ports.py fails when this file is out of date. -->\n\n"
    "Every port a kubesalt node listens on, per role, and who may reach it. The firewall of\n"
    "each node (`docs/firewall.md`) opens exactly these; anything else is rejected, and\n"
    "loopback traffic is always accepted. Pods reach a node only on the ports that list\n"
    "`pods`.\n\n"
    "Sources: `anyone` (no restriction), `local` (loopback only, no rule opened),\n"
    "`control-plane-cidrs` / `workload-plane-cidrs` (`networks.*.cidr`), `pods` (the pod\n"
    "network, `networks.pods`), `peers:<role>` (the control-plane IPs of the nodes that\n"
    "have that role, from the Salt mine), `workload-peers:<role>` (their workload-plane\n"
    "IPs, from the Salt mine).\n"
    "*Free* says whether preflight requires the port to be unused before installing.\n"
    "A port followed by a configuration key (`apiServer.port`) is that key's default: the\n"
    "firewall and preflight use the configured value.\n\n"
)


class MatrixError(KubesaltError):
    """The port matrix data file is invalid."""


@dataclass(frozen=True)
class PortEntry:
    """One validated entry of the port matrix."""

    name: str
    roles: tuple[str, ...]
    protocol: str
    port: str | None  # "6443" or "30000-32767"; None for a protocol without ports
    listener: str
    bind: str
    sources: tuple[str, ...]
    must_be_free: bool = True
    when: str | None = None
    notes: str = ""
    setting: str | None = None  # the configuration key that sets `port` (its default here)

    @property
    def port_range(self) -> tuple[int, int] | None:
        """The first and last port, or None for a protocol without ports."""
        if self.port is None:
            return None
        first, _, last = self.port.partition("-")
        return int(first), int(last or first)


@dataclass(frozen=True)
class Rule:
    """One opening in a node's firewall.

    ``source`` is None for "anyone", else a CIDR or a single address; ``family`` is
    "ipv4"/"ipv6" when ``source`` is set. ``port`` is None for a protocol without ports.
    """

    protocol: str
    port: str | None
    source: str | None
    family: str | None
    entries: tuple[str, ...]


def _parse_port(value: Any, where: str, problems: list[str]) -> str | None:
    if value in SETTINGS:
        return str(default_of(value))
    if isinstance(value, bool) or not isinstance(value, int | str):
        problems.append(
            f"{where}.port: {value!r} is not a port; use a number (6443), a range "
            f"('30000-32767') or a configuration key ({', '.join(SETTINGS)})"
        )
        return None
    text = str(value).strip()
    first, sep, last = text.partition("-")
    try:
        low, high = int(first), int(last) if sep else int(first)
    except ValueError:
        problems.append(
            f"{where}.port: {value!r} is not a port; use a number (6443), a range "
            f"('30000-32767') or a configuration key ({', '.join(SETTINGS)})"
        )
        return None
    if not (1 <= low <= 65535 and 1 <= high <= 65535) or low > high:
        problems.append(
            f"{where}.port: {value!r} is out of range; ports are 1-65535 and a range is "
            "'low-high' with low <= high"
        )
        return None
    return f"{low}-{high}" if sep and low != high else str(low)


def _peer_role(token: str) -> str | None:
    """The role of a `peers:<role>` or `workload-peers:<role>` token, else None."""
    for prefix in PEER_PREFIXES:
        if token.startswith(prefix):
            return token[len(prefix) :]
    return None


def _check_entry(index: int, raw: Any, problems: list[str]) -> PortEntry | None:
    if not isinstance(raw, dict):
        problems.append(f"ports[{index}]: {raw!r} is not a mapping; each entry is a mapping")
        return None
    name = raw.get("name")
    where = f"ports[{index}] ({name})" if isinstance(name, str) and name else f"ports[{index}]"
    before = len(problems)
    if not isinstance(name, str) or not name:
        problems.append(f"{where}.name: {name!r} is missing or empty; give each entry a name")
    unknown = sorted(set(raw) - set(ENTRY_KEYS))
    if unknown:
        problems.append(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(ENTRY_KEYS)}"
        )
    roles = raw.get("roles")
    allowed_roles = (*_roles.ROLES, ALL_ROLES)
    if not isinstance(roles, list) or not roles:
        problems.append(
            f"{where}.roles: {roles!r} is not a non-empty list; use roles from "
            f"{', '.join(allowed_roles)}"
        )
        roles = []
    for role in roles:
        if role not in allowed_roles:
            problems.append(
                f"{where}.roles: {role!r} is not a role; allowed: {', '.join(allowed_roles)}"
            )
    protocol = raw.get("protocol")
    if protocol not in PROTOCOLS:
        problems.append(
            f"{where}.protocol: {protocol!r} is not supported; allowed: {', '.join(PROTOCOLS)}"
        )
    port = None
    if protocol in PORTLESS:
        if raw.get("port") is not None:
            problems.append(
                f"{where}.port: {raw.get('port')!r} given for protocol {protocol}, which has "
                "no ports; remove it"
            )
    elif protocol in PROTOCOLS:
        if raw.get("port") is None:
            problems.append(f"{where}.port: missing; protocol {protocol} needs a port or range")
        else:
            port = _parse_port(raw["port"], where, problems)
    sources = raw.get("from")
    if not isinstance(sources, list) or not sources:
        problems.append(
            f"{where}.from: {sources!r} is not a non-empty list; use sources from "
            f"{', '.join(SOURCES)}, peers:<role> or workload-peers:<role>"
        )
        sources = []
    for source in sources:
        if not isinstance(source, str) or not (
            source in SOURCES or _peer_role(source) in _roles.ROLES
        ):
            problems.append(
                f"{where}.from: {source!r} is not a source; allowed: {', '.join(SOURCES)}, "
                f"or peers:<role> / workload-peers:<role> with a role from {_roles.listing()}"
            )
    if "local" in sources and len(sources) > 1:
        problems.append(
            f"{where}.from: 'local' cannot be combined with other sources ({sources!r}); "
            "a local-only port is closed to every other address"
        )
    for key in ("listener", "bind"):
        if not isinstance(raw.get(key), str) or not raw.get(key):
            problems.append(f"{where}.{key}: {raw.get(key)!r} is missing or empty; describe it")
    must_be_free = raw.get("must_be_free", True)
    if not isinstance(must_be_free, bool):
        problems.append(f"{where}.must_be_free: {must_be_free!r} is not true or false")
    when = raw.get("when")
    if when is not None and when not in SWITCHES:
        problems.append(
            f"{where}.when: {when!r} is not a known switch; allowed: {', '.join(SWITCHES)}"
        )
    notes = raw.get("notes", "")
    if not isinstance(notes, str):
        problems.append(f"{where}.notes: {notes!r} is not text")
    if len(problems) > before:
        return None
    return PortEntry(
        name=name,
        roles=tuple(roles),
        protocol=protocol,
        port=port,
        listener=raw["listener"],
        bind=raw["bind"],
        sources=tuple(sources),
        must_be_free=must_be_free,
        when=when,
        notes=" ".join(notes.split()),
        setting=raw["port"] if raw.get("port") in SETTINGS else None,
    )


def _overlap(a: PortEntry, b: PortEntry) -> bool:
    if a.protocol != b.protocol:
        return False
    roles_a = set(_roles.ROLES) if ALL_ROLES in a.roles else set(a.roles)
    roles_b = set(_roles.ROLES) if ALL_ROLES in b.roles else set(b.roles)
    if not roles_a & roles_b:
        return False
    if a.port_range is None or b.port_range is None:
        return a.port_range is None and b.port_range is None
    return a.port_range[0] <= b.port_range[1] and b.port_range[0] <= a.port_range[1]


def validate_matrix(data: Any) -> tuple[PortEntry, ...]:
    """Validate parsed matrix data; raise MatrixError listing every problem at once."""
    if not isinstance(data, dict) or not isinstance(data.get("ports"), list):
        raise MatrixError(
            "port matrix: the top level must be a mapping with a 'ports' list; "
            f"got {type(data).__name__}"
        )
    problems: list[str] = []
    entries = []
    for index, raw in enumerate(data["ports"]):
        entry = _check_entry(index, raw, problems)
        if entry is not None:
            entries.append(entry)
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if entry.name in seen:
            problems.append(f"ports ({entry.name}): the name is used twice; names are unique")
        seen.setdefault(entry.name, index)
        for other in entries[:index]:
            if _overlap(entry, other):
                what = f"{entry.protocol} {entry.port}" if entry.port else entry.protocol
                problems.append(
                    f"ports ({entry.name}): {what} overlaps '{other.name}' on a shared role; "
                    "merge the two entries or change the port"
                )
    if problems:
        raise MatrixError("port matrix is invalid:\n- " + "\n- ".join(problems))
    return tuple(entries)


def load_matrix(path: str | Path | None = None) -> tuple[PortEntry, ...]:
    """Load and validate the matrix (the packaged ``ports.yaml`` unless ``path`` is given)."""
    if path is None:
        return _packaged_matrix()
    return _parse_matrix(Path(path).read_text(), str(path))


@functools.cache
def _packaged_matrix() -> tuple[PortEntry, ...]:
    # Read once per process: the renderer asks for a port many times per node.
    text = resources.files("kubesalt").joinpath("data/ports.yaml").read_text()
    return _parse_matrix(text, "kubesalt/data/ports.yaml")


def _parse_matrix(text: str, origin: str) -> tuple[PortEntry, ...]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise MatrixError(f"{origin}: not valid YAML: {err}") from err
    try:
        return validate_matrix(data)
    except MatrixError as err:
        raise MatrixError(f"{origin}: {err}") from err


def _setting(config: dict, path: str) -> Any:
    node: Any = config
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(
                f"{path}: missing from the configuration; the port matrix needs it "
                "(pass the normalized configuration from kubesalt.config)"
            )
        node = node[key]
    return node


def _switch(config: dict, path: str) -> bool:
    return bool(_setting(config, path))


def setting_clashes(
    setting: str, port: int, matrix: tuple[PortEntry, ...] | None = None
) -> list[PortEntry]:
    """The entries of other ports that `port`, given to `setting`, would collide with.

    Roles are not compared: the bootstrap node has every role, so a configured port must
    differ from every other port of its protocol.
    """
    matrix = load_matrix() if matrix is None else matrix
    own = [entry for entry in matrix if entry.setting == setting]
    return [
        other
        for entry in own
        for other in matrix
        if other.setting != setting
        and other.protocol == entry.protocol
        and other.port_range is not None
        and other.port_range[0] <= port <= other.port_range[1]
    ]


def _configured(entry: PortEntry, config: dict, matrix: tuple[PortEntry, ...]) -> PortEntry:
    """`entry` with the port the configuration gives it (unchanged without a setting)."""
    if entry.setting is None:
        return entry
    value = _setting(config, entry.setting)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(
            f"{entry.setting}: {value!r} is not a TCP port; use a port in 1-65535 "
            f"(default {default_of(entry.setting)})"
        )
    clashes = setting_clashes(entry.setting, value, matrix)
    if clashes:
        taken = ", ".join(f"{c.name} ({c.protocol} {c.port})" for c in clashes)
        raise ConfigError(
            f"{entry.setting}: {value} is already the port of {taken}; choose another port "
            f"(default {default_of(entry.setting)})"
        )
    return dataclasses.replace(entry, port=str(value))


def configured_matrix(
    config: dict, matrix: tuple[PortEntry, ...] | None = None
) -> tuple[PortEntry, ...]:
    """The matrix with every configured port (``apiServer.port``) taken from ``config``."""
    matrix = load_matrix() if matrix is None else matrix
    return tuple(_configured(entry, config, matrix) for entry in matrix)


def port_number(name: str, config: dict | None = None) -> int:
    """The port of the matrix entry ``name``: what the renderer writes for that listener.

    An entry whose port the configuration sets needs ``config``.
    """
    entries = [entry for entry in load_matrix() if entry.name == name]
    if not entries or entries[0].port_range is None:
        raise MatrixError(
            f"the port matrix (kubesalt/data/ports.yaml) has no entry {name!r} with a port; "
            "restore it"
        )
    entry = entries[0]
    if entry.setting is not None:
        if config is None:
            raise MatrixError(
                f"port of {name}: set by {entry.setting}; pass the configuration to read it"
            )
        entry = _configured(entry, config, load_matrix())
    first, last = entry.port_range
    if first != last:
        raise MatrixError(f"port of {name}: {entry.port} is a range, not one port")
    return first


def entries_for_roles(
    roles: list[str] | tuple[str, ...], config: dict, matrix: tuple[PortEntry, ...] | None = None
) -> list[PortEntry]:
    """The matrix entries that apply to a node with ``roles`` under ``config``."""
    bad = _roles.unknown(roles)
    if bad:
        raise ConfigError(
            f"node roles: {', '.join(map(repr, bad))} not known; allowed: {_roles.listing()}"
        )
    return [
        entry
        for entry in configured_matrix(config, matrix)
        if (ALL_ROLES in entry.roles or set(entry.roles) & set(roles))
        and (entry.when is None or _switch(config, entry.when))
    ]


def _family(address: str, what: str) -> str:
    try:
        return f"ipv{netaddr.IPNetwork(address).version}"
    except (netaddr.AddrFormatError, ValueError, TypeError) as err:
        raise ConfigError(f"{what}: {address!r} is not an IP address or CIDR") from err


def _cidrs(config: dict, plane: str) -> list[str]:
    try:
        cidrs = config["networks"][plane]["cidr"]
    except (KeyError, TypeError) as err:
        raise ConfigError(f"networks.{plane}.cidr: missing from the configuration") from err
    return [cidrs] if isinstance(cidrs, str) else list(cidrs)


def pod_cidrs(config: dict) -> list[str]:
    """The pod network(s) of `networks.pods` (one CIDR, or a dual-stack pair "v4,v6")."""
    try:
        value = config["networks"]["pods"]
    except (KeyError, TypeError) as err:
        raise ConfigError("networks.pods: missing from the configuration") from err
    items = value if isinstance(value, list) else str(value).split(",")
    cidrs = []
    for item in items:
        text = str(item).strip()
        try:
            cidrs.append(str(netaddr.IPNetwork(text, expand_partial=False).cidr))
        except (netaddr.AddrFormatError, ValueError, TypeError) as err:
            raise ConfigError(
                f"networks.pods: {text!r} is not a CIDR; use a network such as 10.233.0.0/16"
            ) from err
    return cidrs


def _sources(
    token: str, config: dict, peers: dict[str, list[str]], workload_peers: dict[str, list[str]]
) -> list[str | None]:
    """The addresses a `from` token of the matrix stands for (None: anyone)."""
    if token == "anyone":
        return [None]
    if token == "control-plane-cidrs":
        return list(_cidrs(config, "controlPlane"))
    if token == "workload-plane-cidrs":
        return list(_cidrs(config, "workloadPlane"))
    if token == "pods":
        return pod_cidrs(config)
    if token.startswith(WORKLOAD_PEER_PREFIX):
        return list(workload_peers.get(token[len(WORKLOAD_PEER_PREFIX) :], []))
    return list(peers.get(token[len(PEER_PREFIX) :], []))


def _sort_key(rule: Rule) -> tuple:
    first = rule.port.partition("-")[0] if rule.port else "0"
    source = netaddr.IPNetwork(rule.source) if rule.source else None
    # Port-less protocols (VRRP, IP-in-IP) after every port.
    return (
        rule.port is None,
        rule.protocol,
        int(first),
        rule.port or "",
        rule.source is not None,
        (source.version, source.first, source.prefixlen) if source else (0, 0, 0),
    )


def node_rules(
    roles: list[str] | tuple[str, ...],
    config: dict,
    peers: dict[str, list[str]],
    matrix: tuple[PortEntry, ...] | None = None,
    *,
    workload_peers: dict[str, list[str]] | None = None,
) -> list[Rule]:
    """The firewall openings of a node: one Rule per (protocol, port, source), sorted.

    ``peers`` maps a role to the control-plane IPs of the nodes that have it (this node
    included or not: a node always reaches itself through loopback), ``workload_peers``
    to their workload-plane IPs (None: the same as ``peers``, the planes being one
    network). A source already covered by "anyone" for the same port is dropped.
    """
    workload_peers = peers if workload_peers is None else workload_peers
    merged: dict[tuple, set[str]] = {}
    for entry in entries_for_roles(roles, config, matrix):
        for token in entry.sources:
            if token == "local":
                continue
            for source in _sources(token, config, peers, workload_peers):
                key = (entry.protocol, entry.port, source)
                merged.setdefault(key, set()).add(entry.name)
    open_to_all = {(proto, port) for proto, port, source in merged if source is None}
    rules = []
    for (protocol, port, source), names in merged.items():
        if source is not None and (protocol, port) in open_to_all:
            continue
        if source is None:
            family = None
        else:
            family = _family(source, f"source of port matrix entry {sorted(names)[0]}")
            source = str(netaddr.IPNetwork(source).cidr) if "/" in source else source
        rules.append(Rule(protocol, port, source, family, tuple(sorted(names))))
    return sorted(rules, key=_sort_key)


def peers_by_role(
    nodes: dict, ips: dict[str, str], config: dict, plane: str = _mine_ips.CONTROL_PLANE
) -> dict[str, list[str]]:
    """Map each role to the sorted IPs on ``plane`` of the nodes that have it.

    ``nodes`` is pillar ``kubesalt:nodes`` ({minion: {"roles": [...]}}), and ``ips`` the
    mine's entries of ``plane`` ({minion: ip}; ``control_plane_ip`` for ``controlPlane``,
    ``workload_plane_ip`` for ``workloadPlane``). A node not yet in the mine has no IP and
    is left out until it publishes one; so is a node whose entry is bad (not an IP, outside
    ``networks.<plane>.cidr``): one bad entry never stops the peer maps of the others
    (:mod:`kubesalt.mine_ips`).
    """
    ips = _mine_ips.usable(ips, config, plane)
    result: dict[str, list[str]] = {}
    for minion, data in sorted((nodes or {}).items()):
        address = ips.get(minion)
        if not address:
            continue
        for role in (data or {}).get("roles") or []:
            result.setdefault(role, [])
            if address not in result[role]:
                result[role].append(address)
    for role, addresses in result.items():
        addresses.sort(key=lambda ip: (netaddr.IPAddress(ip).version, int(netaddr.IPAddress(ip))))
        result[role] = addresses
    return result


def ports_to_free(
    roles: list[str] | tuple[str, ...], config: dict, matrix: tuple[PortEntry, ...] | None = None
) -> list[PortEntry]:
    """The entries whose ports must be unused on a node before kubesalt installs it."""
    return [
        entry
        for entry in entries_for_roles(roles, config, matrix)
        if entry.must_be_free and entry.port is not None
    ]


def markdown_table(matrix: tuple[PortEntry, ...] | None = None) -> str:
    """The docs/ports.md page: one row per matrix entry, in file order."""
    matrix = load_matrix() if matrix is None else matrix
    lines = [
        DOCS_HEADER.rstrip("\n"),
        "",
        "| Port | Protocol | Roles | Listener (bind) | Reachable from | Free | Notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in matrix:
        notes = entry.notes
        if entry.when:
            notes = f"Only when `{entry.when}` is true. {notes}".strip()
        protocol = PORTLESS.get(entry.protocol, entry.protocol)
        port = entry.port or "–"
        if entry.setting:
            port = f"{port} (`{entry.setting}`)"
        cells = [
            port,
            protocol,
            ", ".join(entry.roles),
            f"{entry.listener} ({entry.bind})",
            ", ".join(f"`{source}`" for source in entry.sources),
            "yes" if entry.must_be_free and entry.port else "no",
            notes.replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m kubesalt.ports [--write] [--path docs/ports.md]``: print or write the table."""
    parser = argparse.ArgumentParser(prog="python -m kubesalt.ports", description=main.__doc__)
    parser.add_argument("--write", action="store_true", help="write the table to --path")
    parser.add_argument("--path", default=DOCS_PATH, help=f"target file (default {DOCS_PATH})")
    args = parser.parse_args(argv)
    try:
        table = markdown_table()
    except KubesaltError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.write:
        Path(args.path).write_text(table)
        print(f"wrote {args.path}")
    else:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
