"""The lab as data: its nodes, addresses, rootfs package list, and the files each node gets.

Pure functions only (tested in tests/unit/test_lab.py); `kubesalt_lab.host` acts on them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass

from kubesalt import roles as kroles
from kubesalt.columns import aligned
from kubesalt.inventory import parse_roles
from kubesalt.kubeadm import skip

NAME = "kubesalt-lab"
STATE_DIR = "/var/lib/kubesalt-lab"
CACHE_DIR = "/var/cache/kubesalt-lab"
BRIDGE = "ksbr0"
SUBNET = "198.51.100.0/24"  # TEST-NET-2: never the host's network (192.0.2.0/24)
VIP = "198.51.100.100"
# `lab.sh add` gives a new node the lowest free host address from this one up.
ADD_FROM = "198.51.100.10"
# A node name: a minion ID and a Kubernetes node name (lowercase), and short enough for the
# host side of its veth, vb-NAME (15 characters at most).
NODE_NAME = re.compile(r"[a-z0-9]{1,11}")
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
# explicitly (docs/lab.md) to what a real server does, start them. mmdebstrap removes its
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
    Node(
        "bootstrap",
        "198.51.100.10",
        ("bootstrap", "ca", "control-plane", "etcd", "node"),
        bootstrap=True,
    ),
    Node("cp2", "198.51.100.11", ("control-plane", "etcd", "node")),
    Node("cp3", "198.51.100.12", ("control-plane", "etcd", "node")),
    Node("worker1", "198.51.100.20", ("node",)),
)

# Services expected active on a node, by role (shown in the table, checked by the tests).
# The kubesalt-lab-* units are the lab's stand-ins (docs/lab.md), not kubesalt's.
SERVICES = {
    "bootstrap": ("salt-master", "nginx", "docker-registry"),
    "control-plane": ("keepalived", "kubesalt-lab-apiserver"),
    "etcd": ("kubesalt-lab-staticpods",),
    "node": ("salt-minion", "firewalld"),
}

# What this machine cannot run (docs/lab.md): skipped by every orchestration of the lab
# (pillar skip_phases), and, per node, by the states (grain kubesalt_skip_phases).
SKIP_PHASES = ("kubelet", "wait-control-plane", "addons")
# remove_node's phases that need a Kubernetes API server.
SKIP_REMOVE_PHASES = ("drain", "delete-node")
# bootstrap.sh's phase that needs an API server (--skip-phases).
SKIP_BOOTSTRAP_PHASES = ("addons",)
SKIP_PHASES_GRAIN = skip.NODE_PHASES
# The SSH key the bootstrap node's salt-ssh uses to reach the other nodes (made per lab).
SSH_KEY = "/root/.ssh/kubesalt-lab"
# The lab's stand-ins (src/kubesalt_lab/standins): installed here in every node, run by
# the units below, enabled from boot; each waits for what kubesalt writes.
STANDIN_DIR = "/usr/local/lib/kubesalt-lab"
STANDINS = {
    "kubesalt-lab-staticpods": (
        "staticpods.py",
        "kubesalt lab stand-in for the kubelet: runs etcd from its static pod manifest",
    ),
    "kubesalt-lab-apiserver": (
        "apiserver.py",
        "kubesalt lab stand-in for kube-apiserver's /livez (keepalived's health target)",
    ),
}


def standin_unit(name: str) -> str:
    script, description = STANDINS[name]
    return (
        f"# kubesalt lab only (docs/lab.md): {description}.\n"
        f"[Unit]\nDescription={description}\nAfter=network-online.target\n\n"
        f"[Service]\nExecStart=/usr/bin/python3 {STANDIN_DIR}/{script}\n"
        "Restart=always\nRestartSec=1\nKillMode=mixed\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def grains_file() -> str:
    """/etc/salt/grains of a lab node: the phases the states skip on this machine."""
    return (
        "# kubesalt lab: this machine cannot run containers or Kubernetes binaries.\n"
        f"{skip.GRAIN}:\n" + "".join(f"  - {p}\n" for p in SKIP_PHASES_GRAIN)
    )


class LabError(Exception):
    """A lab step failed; the message says what and what to do."""


def check_nodes(nodes=NODES, subnet: str = SUBNET, vip: str = VIP) -> list[str]:
    """Problems in the node list: names, addresses inside the subnet, no duplicates."""
    problems = []
    network = ipaddress.ip_network(subnet)
    seen_names, seen_ips = set(), {vip}
    for node in nodes:
        if not NODE_NAME.fullmatch(node.name):
            problems.append(
                f"node name {node.name!r}: use 1 to 11 lowercase letters or digits (a minion "
                "ID, a Kubernetes node name, and the veth vb-NAME)"
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
    --keep-unit (docs/lab.md); the launcher is put in the node's own cgroup first."""
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
    """The `lab.sh up/status` table: node, roles, IPs, state, VIP, etcd, services up."""
    head = ("NODE", "ROLES", "IPS", "STATE", "VIP", "ETCD", "SERVICES UP")
    data = [
        (
            r["name"],
            ",".join(r["roles"]) or "-",
            " ".join(r.get("ips") or [r["ip"]]),
            r["state"],
            "holder" if r.get("vip") else "-",
            r.get("etcd") or "-",
            " ".join(r["services"]) or "-",
        )
        for r in rows
    ]
    return "\n".join(aligned(head, data))


def bootstrap_command(*extra: str) -> list[str]:
    """bootstrap.sh from the extracted ISO, with the phases this machine cannot run skipped."""
    return [f"{ARCHIVE_DIR}/bootstrap.sh", "--skip-phases", ",".join(SKIP_BOOTSTRAP_PHASES),
            *extra]  # fmt: skip


def orchestrate_command(orchestration: str, name, saltenv: str, skip=None, **extra) -> list[str]:
    """salt-run arguments running an orchestration on one node (`name` a string) or on
    several together (a list: pillar nodes), with the phases this machine cannot run
    skipped (by default: SKIP_PHASES for deploy_node, SKIP_REMOVE_PHASES for remove_node)."""
    data = {"node": name} if isinstance(name, str) else {"nodes": list(name)}
    data.update(extra)
    if skip is None:
        skip = SKIP_PHASES if orchestration == "deploy_node" else SKIP_REMOVE_PHASES
    if skip:
        data["skip_phases"] = list(skip)
    pillar = json.dumps(data, separators=(",", ":"))
    return [
        "state.orchestrate",
        f"kubesalt.orchestrate.{orchestration}",
        f"saltenv={saltenv}",
        f"pillar={pillar}",
    ]


def saltenv_of(product_txt: str) -> str:
    """`kubesalt-<VERSION>` from the ISO's product.txt."""
    for line in product_txt.splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION" and value:
            return f"kubesalt-{value}"
    raise LabError("product.txt of the lab ISO has no VERSION=; rebuild the ISO")


def _state_results(data, key=None):
    """Every state result ({result, comment, changes, ...}) inside salt-run's JSON output,
    with its ID (`__id__`, else the key it was found under)."""
    if isinstance(data, dict):
        if "result" in data and "comment" in data:
            yield dict(data, __id__=data.get("__id__") or key)
            return
        for name, value in data.items():
            yield from _state_results(value, name)


def _load_json(output: str):
    try:
        return json.loads(output)
    except ValueError:
        return None


def failed_states(output: str) -> list[str]:
    """`ID: comment` of each failed state in salt-run --out=json output (orchestrations)."""
    data = _load_json(output)
    failed = []
    for item in _state_results(data):
        if item.get("result") is False:
            failed.append(f"{item.get('__id__') or item.get('name')}: {item.get('comment')}")
    return failed


def pending_states(output: str) -> list[str]:
    """`ID: comment` of each state that changed, or would change (test=True: result None)."""
    return [
        f"{item.get('__id__') or item.get('name')}: {item.get('comment')}"
        for item in _state_results(_load_json(output))
        if item.get("result") is None or item.get("changes")
    ]


def summary(output: str) -> str:
    """`N states, M changed` of salt-run --out=json output."""
    items = list(_state_results(_load_json(output)))
    changed = sum(1 for item in items if item.get("changes"))
    return f"{len(items)} states, {changed} changed"


def ipv4_addresses(ip_json: str) -> list[str]:
    """The IPv4 addresses in `ip -j -4 addr show` output."""
    found = []
    for link in _load_json(ip_json) or []:
        found += [a["local"] for a in link.get("addr_info", []) if a.get("family") == "inet"]
    return found


# -- nodes killed, started again, added (lab.sh kill | start | add) --------------------

RUNNING, KILLED, DOWN = "running", "killed", "down"


def lab_nodes(state: dict) -> tuple[Node, ...]:
    """NODES, then the nodes `lab.sh add` recorded in the state, by address."""
    added = [
        Node(name, entry["ip"], tuple(entry["roles"]))
        for name, entry in state.get("nodes", {}).items()
        if entry.get("added")
    ]
    return NODES + tuple(sorted(added, key=lambda n: ipaddress.ip_address(n.ip)))


def power(entry: dict | None, running: bool) -> str:
    """RUNNING when any process of the node lives; KILLED after `lab.sh kill`; else DOWN
    (never booted, or its systemd-nspawn is gone on its own)."""
    if running:
        return RUNNING
    return KILLED if entry and entry.get("killed") else DOWN


def entry_of(state: dict, name: str) -> dict:
    """The state entry of lab node `name`; LabError for a name that is no lab node, or a
    node that was never booted."""
    node(name, lab_nodes(state))
    entry = state.get("nodes", {}).get(name)
    if not entry:
        raise LabError(f"node {name} was never booted: no lab is up (lab.sh up)")
    return entry


def killed_entry(name: str, entry: dict, now: str) -> dict:
    """The entry of `name` once `lab.sh kill` pulled its plug: no process, overlay kept.
    `now` is the node's power state before."""
    if now == KILLED:
        raise LabError(f"node {name} is already killed; boot it again with: lab.sh start {name}")
    if now == DOWN:
        raise LabError(
            f"node {name} is not running (its systemd-nspawn is gone): nothing to kill; "
            f"boot it with: lab.sh start {name}"
        )
    return {**entry, "killed": True, "launcher": None, "leader": None}


def started_entry(name: str, entry: dict, now: str) -> dict:
    """The entry of `name` about to boot again from its overlay (its launcher recorded once
    started). `now` is the node's power state before."""
    if now == RUNNING:
        raise LabError(
            f"node {name} is already running; power it off first with: lab.sh kill {name}"
        )
    fresh = {key: value for key, value in entry.items() if key != "killed"}
    return {**fresh, "launcher": None, "leader": None}


def added_entry(node_: Node, root: str) -> dict:
    """The entry `lab.sh add` records before it makes anything, so `down` finds it."""
    return {"added": True, "ip": node_.ip, "roles": list(node_.roles), "root": root,
            "launcher": None, "leader": None}  # fmt: skip


def next_free_ip(nodes, subnet: str = SUBNET, vip: str = VIP, first: str = ADD_FROM) -> str:
    """The lowest host address of `subnet`, from `first` up, that no node and not the VIP
    has. The lab uses no other range: a full subnet is an error."""
    network = ipaddress.ip_network(subnet)
    taken = {vip, *(n.ip for n in nodes)}
    start = ipaddress.ip_address(first)
    for address in network.hosts():
        if address >= start and str(address) not in taken:
            return str(address)
    raise LabError(
        f"the lab subnet {subnet} is full: every host address from {first} on is taken by a "
        f"node or the VIP {vip} ({len(taken)} in all); the lab uses no other range: "
        "lab.sh down, then up, for a fresh lab"
    )


def role_problems(name: str, wanted: tuple[str, ...]) -> list[str]:
    """What kubesalt_inventory.declare would refuse in the roles of an added node."""
    problems = []
    unknown = kroles.unknown(wanted)
    if unknown:
        problems.append(f"unknown role(s) {', '.join(unknown)}: use {kroles.listing()}")
    held = [role for role in wanted if role in kroles.CA_NODE_ROLES]
    if held:
        problems.append(f"{', '.join(held)}: only the bootstrap node holds them")
    for role, needs in kroles.REQUIRES.items():
        if role in wanted and not needs <= set(wanted):
            problems.append(f"{role} needs {', '.join(sorted(needs - set(wanted)))} too")
    return [f"roles of {name}: {problem}" for problem in problems]


def new_node(name: str, roles_text: str, state: dict) -> Node:
    """The node `lab.sh add NAME ROLES` makes: a free name, roles kubesalt accepts (or none
    yet), and the next free address of the lab subnet."""
    nodes = lab_nodes(state)
    if name in {n.name for n in nodes}:
        raise LabError(
            f"node name {name!r} is taken (lab.sh status shows it); choose another; "
            f"nodes: {', '.join(n.name for n in nodes)}"
        )
    wanted = parse_roles(roles_text)
    candidate = Node(name, next_free_ip(nodes), wanted)
    problems = role_problems(name, wanted) + check_nodes((*nodes, candidate))
    if problems:
        raise LabError(f"cannot add node {name!r}: " + "; ".join(problems))
    return candidate


def declare_args(node_: Node) -> list[str]:
    """salt-run's arguments declaring a lab node with its recorded roles and the lab's key."""
    if not node_.roles:
        raise LabError(
            f"node {node_.name} has no roles recorded (lab.sh add {node_.name} gave none): "
            f"declare it by hand: salt-run kubesalt_inventory.declare {node_.name} {node_.ip} "
            f"ROLES key={SSH_KEY}"
        )
    return ["kubesalt_inventory.declare", node_.name, node_.ip, ",".join(node_.roles),
            f"key={SSH_KEY}"]  # fmt: skip


# -- lab.sh upgrade / downgrade (kubesalt_lab.upgrade) ---------------------------------
MINION_CONFIG = "/etc/salt/minion.d/kubesalt.conf"
SITE_PACKAGES = "/opt/kubesalt/salt/lib/python3.11/site-packages"
MANIFESTS = {"etcd": "/etc/kubernetes/manifests/etcd.yaml",
             "apiserver": "/etc/kubernetes/manifests/kube-apiserver.yaml"}  # fmt: skip
# What the lab cannot run, in the upgrade orchestration (as in deploy_node and remove_node).
SKIP_UPGRADE_PHASES = ("wait-control-plane", "drain", "addons")


def bootstrap_node(nodes=NODES) -> Node:
    return next(n for n in nodes if n.bootstrap)


def next_version(version: str) -> str:
    """The lab's newer archive version: the next minor of `version` (0.1.0 -> 0.2.0)."""
    match = re.match(r"^(\d+)\.(\d+)\.\d+", version)
    if not match:
        raise LabError(f"the lab archive's version {version!r} is not <major>.<minor>.<patch>")
    return f"{match.group(1)}.{int(match.group(2)) + 1}.0"


def local_addresses(fib_trie: str) -> set[str]:
    """The host addresses of a network namespace, from its /proc/net/fib_trie: each one
    is the line before a `/32 host LOCAL` line."""
    found, previous = set(), ""
    for line in fib_trie.splitlines():
        if "/32 host LOCAL" in line:
            found.add(previous.rsplit(" ", 1)[-1])
        previous = line.strip()
    return found


def image_tag(manifest: str | None) -> str | None:
    """The tag of a static pod manifest's image (`repo:tag[@digest]`)."""
    match = re.search(r"^[\s-]*image:\s*\S+?:([^:@\s]+)(?:@\S+)?\s*$", manifest or "", re.M)
    return match.group(1) if match else None


def minion_saltenv(config: str | None) -> str | None:
    match = re.search(r"^saltenv:\s*(\S+)\s*$", config or "", re.M)
    return match.group(1) if match else None


def dist_version(names: list[str]) -> str | None:
    """The kubesalt version installed, from the names in site-packages."""
    for name in names:
        match = re.fullmatch(r"kubesalt-(.+)\.dist-info", name)
        if match:
            return match.group(1)
    return None


def upgrade_options() -> list[str]:
    """upgrade.sh / downgrade.sh's options in the lab: the phases it cannot run skipped."""
    return ["--skip-phases", ",".join(SKIP_UPGRADE_PHASES)]


@dataclass
class MoveReport:
    ok: bool
    text: str
    record: dict


def version_problems(versions: dict, target: str, release: dict, nodes=NODES) -> list[str]:
    """Each node's versions against the target archive's: kubesalt and saltenv everywhere,
    the recorded release everywhere, etcd's image on etcd nodes, the API server's on
    control-plane nodes."""
    problems = []
    for node in nodes:
        got = versions.get(node.name, {})
        wanted = {"kubesalt": target, "saltenv": f"kubesalt-{target}",
                  "recorded": release["kubernetes"]}  # fmt: skip
        if "etcd" in node.roles:
            wanted["etcd"] = release["etcd"]
        if "control-plane" in node.roles:
            wanted["apiserver"] = release["kubernetes"]
        for key, value in wanted.items():
            if got.get(key) != value:
                problems.append(f"{node.name}: {key} is {got.get(key)!r}, not {value!r}")
    return problems


def move_report(
    direction, written, samples, versions, target, release, timings, nodes=NODES
) -> MoveReport:
    """The verdict of an upgrade or downgrade run in the lab, as text and as a record."""
    not_one = [(round(t, 1), list(h)) for t, h in samples if len(h) != 1]
    problems = version_problems(versions, target, release, nodes)
    checks = [
        (f"etcd writes: {written['acknowledged']} of {written['tried']} acknowledged, "
         f"{len(written['unacknowledged'])} refused by every member, {len(written['lost'])} "
         "lost", not written["unacknowledged"] and not written["lost"]),
        (f"VIP samples: {len(samples)}, {len(not_one)} without exactly one holder"
         + (f" (first: {not_one[:5]})" if not_one else ""), bool(samples) and not not_one),
        (f"every node on kubesalt {target}, Kubernetes {release['kubernetes']}, etcd "
         f"{release['etcd']}" + (": " + "; ".join(problems) if problems else ""), not problems),
    ]  # fmt: skip
    ok = all(passed for _, passed in checks)
    lines = [f"lab {direction} to {target}: {'passed' if ok else 'FAILED'}"]
    lines += [f"  [{'ok' if passed else 'FAIL'}] {what}" for what, passed in checks]
    lines += [f"  {name}: {seconds:.1f}s" for name, seconds in timings]
    record = {"direction": direction, "target": target, "ok": ok, "written": written,
              "vip_samples": len(samples), "vip_not_one": not_one, "versions": versions,
              "timings": timings}  # fmt: skip
    return MoveReport(ok, "\n".join(lines), record)
