"""The deploy_node and remove_node orchestrations as data (docs/orchestrations.md).

Each orchestration is an ordered list of named phases (kubeadm's workflow runner);
the SLS files loop over them, the state module `kubesalt_orchestrate` runs them on the master,
and every error names its phase. Pure functions only: tested in tests/unit/test_orchestrate.py.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubesalt.errors import KubesaltError


class OrchestrateError(KubesaltError):
    """An orchestration cannot run as asked; the message says which phase/key and the fix."""


@dataclass(frozen=True)
class Phase:
    name: str
    description: str
    roles: frozenset[str] = frozenset()  # empty: every node; else only nodes with one of them


def _phase(name: str, description: str, *roles: str) -> Phase:
    return Phase(name, description, frozenset(roles))


# The order is the order they run in. `firewall` runs before `certs` and `etcd`: the existing
# nodes must admit the new node's address (etcd peer port, ...) before it joins.
DEPLOY_PHASES = (
    _phase("preflight", "the node is declared and its SSH port answers"),
    _phase("minion", "salt-ssh installs and configures salt-minion from the bootstrap node"),
    _phase("key", "the minion's key is accepted and the minion answers test.ping"),
    _phase("grains", "modules synced, addresses in grains and mine, pillar refreshed"),
    _phase("firewall", "firewall sources updated on every node, then the new node's firewall"),
    _phase("certs", "the node's certificates, signed by the CA minion"),
    _phase("etcd", "member added as a learner, static pod written, member promoted", "etcd"),
    _phase("control-plane", "the control-plane static pods and kubeconfigs", "control-plane"),
    _phase(
        "keepalived",
        "peer lists updated on existing control-plane nodes, then this one",
        "control-plane",
    ),  # fmt: skip
    _phase("kubelet", "containerd, the kubelet and its configuration (role node)"),
    _phase("wait-control-plane", "the node's kube-apiserver answers /readyz", "control-plane"),
    _phase("addons", "the Node object labelled with the node's roles"),
    _phase(
        "highstate",
        "the node's full highstate: what no earlier phase applied (a skipped kubelet phase's files)",
    ),
)
REMOVE_PHASES = (
    _phase("preflight", "the node is declared, is not the CA minion, and its SSH port answers"),
    _phase("drain", "the Node object cordoned and its pods evicted (kubectl drain)"),
    _phase("etcd", "the node's etcd member removed from the cluster", "etcd"),
    _phase("cleanup", "the node's kubesalt files removed (the -absent states)"),
    _phase("delete-node", "the Node object deleted, once its kubelet is stopped"),
    _phase("minion", "the node's salt-minion stopped and disabled"),
    _phase("key", "the node's minion key deleted on the master"),
    _phase("inventory", "the node forgotten (kubesalt_inventory.forget)"),
    _phase("peers", "keepalived peers and firewall sources updated on the other nodes"),
)
ORCHESTRATIONS = {"deploy_node": DEPLOY_PHASES, "remove_node": REMOVE_PHASES}
# deploy_node takes several nodes (pillar nodes): phases run on all of them at once, but
# etcd members join one at a time (etcd admits one learner at a time).
MULTI_NODE = ("deploy_node",)


def phases_of(orchestration: str) -> tuple[Phase, ...]:
    try:
        return ORCHESTRATIONS[orchestration]
    except KeyError:
        raise OrchestrateError(
            f"unknown orchestration {orchestration!r}; valid: {', '.join(ORCHESTRATIONS)}"
        ) from None


def parse_skip(value) -> list[str]:
    """pillar skip_phases: a list of names, or a comma-separated string, or nothing."""
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    elif isinstance(value, list | tuple):
        items = [str(item).strip() for item in value]
    else:
        raise OrchestrateError(
            f"pillar skip_phases = {value!r}: give a list of phase names, for example "
            '["kubelet", "addons"]'
        )
    return [item for item in items if item]


def check_skip(orchestration: str, skip) -> list[str]:
    """The validated list of phases to skip; an unknown name is an error listing valid ones."""
    names = [p.name for p in phases_of(orchestration)]
    wanted = parse_skip(skip)
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise OrchestrateError(
            f"pillar skip_phases: invalid phase name(s) {', '.join(unknown)} for "
            f"{orchestration}; valid phases: {', '.join(names)}"
        )
    if "preflight" in wanted:
        raise OrchestrateError(
            f"pillar skip_phases: preflight cannot be skipped ({orchestration} checks the node "
            "before it changes anything); remove it from the list"
        )
    return wanted


def plan(orchestration: str, roles_by_node: dict, skip) -> list[dict]:
    """Every phase with `nodes` (the nodes it acts on, in the given order), `run` (bool)
    and `why` (the reason it does not run): skipped by the operator, or for none of the
    nodes' roles. `roles_by_node` maps each node to its declared roles (empty when it is
    not declared: preflight runs and fails there)."""
    skipped = set(check_skip(orchestration, skip))
    result = []
    for phase in phases_of(orchestration):
        nodes = [
            name
            for name, roles in roles_by_node.items()
            if not phase.roles or phase.roles & frozenset(roles or ())
        ]
        why = ""
        if phase.name in skipped:
            why, nodes = "skipped (pillar skip_phases)", []
        elif not nodes:
            why = "not for " + _roles_text(roles_by_node)
        result.append(
            {
                "name": phase.name,
                "description": phase.description,
                "nodes": nodes,
                "run": not why,
                "why": why,
            }
        )
    return result


def _roles_text(roles_by_node: dict) -> str:
    def roles_of(name):
        return ", ".join(sorted(roles_by_node[name] or ())) or "none"

    if len(roles_by_node) == 1:
        return f"this node (roles {roles_of(next(iter(roles_by_node)))})"
    return "these nodes (" + "; ".join(f"{n}: {roles_of(n)}" for n in roles_by_node) + ")"


def _one_name(value, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise OrchestrateError(
            f"pillar {key}: {value!r} is not a node name; each node is a minion ID, e.g. cp2"
        )
    if any(ch in value for ch in "*?[], "):
        raise OrchestrateError(f"pillar {key}: {value!r}: give node names, not a target expression")
    return value


def check_nodes_pillar(orchestration: str, pillar: dict) -> list[str]:
    """The nodes named by pillar `node` (one) or, for deploy_node, `nodes` (a list),
    checked to be plain, distinct minion IDs."""
    pillar = pillar or {}
    if "nodes" not in pillar:
        name = pillar.get("node")
        if not isinstance(name, str) or not name.strip():
            raise OrchestrateError(
                f"pillar node = {name!r}: give the node to act on, for example salt-run "
                f"state.orchestrate kubesalt.orchestrate.{orchestration} "
                'pillar=\'{"node": "cp2"}\''
            )
        return [_one_name(name, "node")]
    if orchestration not in MULTI_NODE:
        raise OrchestrateError(
            f"pillar nodes: {orchestration} acts on one node at a time (each removal checks "
            "etcd quorum on its own); give pillar node and run it once per node"
        )
    if "node" in pillar:
        raise OrchestrateError("pillar node and nodes are both given: give one of them")
    value = pillar["nodes"]
    if not isinstance(value, list | tuple) or not value:
        raise OrchestrateError(
            f"pillar nodes = {value!r}: give a list of node names, for example "
            '["cp2", "cp3", "worker1"]'
        )
    names = [_one_name(item, "nodes") for item in value]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise OrchestrateError(f"pillar nodes: {', '.join(repeated)} given more than once")
    return names


def parse_initial_cluster(text: str) -> list[list[str]]:
    """`--initial-cluster` (`a=https://10.0.0.1:2380,b=...`) as [[name, ip], ...]."""
    members = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, url = item.strip().partition("=")
        host = urlsplit(url).hostname if sep else None
        try:
            ip = str(ipaddress.ip_address(host or ""))
        except ValueError:
            raise OrchestrateError(
                f"--initial-cluster entry {item!r}: expected NAME=https://IP:2380 (from "
                "kubesalt_etcd.add_learner); check the etcd member list with "
                "kubesalt_etcd.members"
            ) from None
        members.append([name, ip])
    if not members:
        raise OrchestrateError(
            f"--initial-cluster {text!r} is empty; check kubesalt_etcd.add_learner's answer"
        )
    return members


def etcd_peer_url(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"https://{host}:2380"


def salt_ssh_pillar(data: dict) -> str:
    """The pillar given to salt-ssh on its command line (JSON, one argument)."""
    return "pillar=" + json.dumps({"kubesalt_deploy": data}, sort_keys=True)


def wheel_url(bootstrap_ip: str, saltenv: str, port: int = 8443) -> str:
    address = ipaddress.ip_address(bootstrap_ip)
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"https://{host}:{port}/{saltenv}/wheels/"


def apt_url(bootstrap_ip: str, saltenv: str, port: int = 8443) -> str:
    address = ipaddress.ip_address(bootstrap_ip)
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"https://{host}:{port}/{saltenv}/deb"


def salt_ssh_reply(stdout: str, node: str):
    """`node`'s answer in salt-ssh's `--out json --out-indent -1` output: the last line that
    holds a JSON object with that key, or None. salt-ssh may print other text first, even
    on that line (ssh-keygen's "Overwrite (y/n)? " prompt has no newline)."""
    for line in reversed((stdout or "").splitlines()):
        start = line.find("{")
        if start < 0:
            continue
        try:
            data = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(data, dict) and node in data:
            return data[node]
    return None
