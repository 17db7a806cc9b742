"""The pillar of an orchestration, checked before anything runs: the nodes, the phases to
skip, the timeouts (docs/orchestrations.md, "Pillar options")."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from kubesalt import names, ports, renewal
from kubesalt.bootstrap.phases import split_names, unknown_names
from kubesalt.orchestrate.model import OrchestrateError
from kubesalt.orchestrate.tables import (
    EVERY_NODE_BY_DEFAULT,
    MOVES_THE_CLUSTER,
    MULTI_NODE,
    phase_names,
    phases_of,
)
from kubesalt.upgrade import UpgradeError
from kubesalt.upgrade.archives import minor
from kubesalt.upgrade.plan import members_order

UNSKIPPABLE = ("preflight",)
# Orchestrations that act on the CA minion alone (bootstrap.sh names it for bootstrap).
ON_THE_CA_MINION = ("bootstrap", "addons", "restore")
# Run by bootstrap.sh, which names its minion (the pillar may not say so yet).
BY_BOOTSTRAP_SH = ("bootstrap", "restore")
TIMEOUTS = {"timeout": 120, "state_timeout": 300, "drain_timeout": 300}


@dataclass(frozen=True)
class Options:
    """What one run acts on and how. `ca_minion` is the CA (bootstrap) node's minion ID,
    `api_port` kubesalt:apiServer:port (the readyz URL), `config` the validated
    configuration (pillar `kubesalt`; never shown: it may hold the VRRP password). `force`:
    for remove_node, the node is gone for good (do without it; etcd's quorum rules still
    hold); for renew_certificates, renew every certificate now."""

    orchestration: str
    nodes: tuple[str, ...]
    saltenv: str
    ca_minion: str
    skip: frozenset[str] = frozenset()
    timeout: int = TIMEOUTS["timeout"]
    state_timeout: int = TIMEOUTS["state_timeout"]
    drain_timeout: int = TIMEOUTS["drain_timeout"]
    force: bool = False
    api_port: int | None = None
    renewal: renewal.Override | None = None
    kubernetes_version: str | None = None
    config: dict | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        """`deploy_node cp2, cp3`: the run in messages and in the lock file."""
        return f"{self.orchestration} {', '.join(self.nodes)}"


def parse_skip(value) -> list[str]:
    """pillar skip_phases: a list of names, or a comma-separated string, or nothing."""
    if value is not None and not isinstance(value, str | list | tuple):
        raise OrchestrateError(
            f"pillar skip_phases = {value!r}: give a list of phase names, for example "
            '["kubelet", "addons"]'
        )
    return split_names(value)


def check_skip(orchestration: str, skip) -> list[str]:
    """The validated list of phases to skip; an unknown name is an error listing valid ones."""
    names = phase_names(orchestration)
    wanted = parse_skip(skip)
    unknown = unknown_names(wanted, names)
    if unknown:
        raise OrchestrateError(
            f"pillar skip_phases: invalid phase name(s) {', '.join(unknown)} for "
            f"{orchestration}; valid phases: {', '.join(names)}"
        )
    for name in UNSKIPPABLE:
        if name in wanted:
            raise OrchestrateError(
                f"pillar skip_phases: {name} cannot be skipped ({orchestration} checks the "
                "nodes and takes the orchestration lock before it changes anything); remove "
                "it from the list"
            )
    return wanted


def _one_name(value, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise OrchestrateError(
            f"pillar {key}: {value!r} is not a node name; each node is a minion ID, e.g. cp2"
        )
    if any(ch in value for ch in "*?[], "):
        raise OrchestrateError(f"pillar {key}: {value!r}: give node names, not a target expression")
    # The name becomes paths (its saved minion key, its inventory file): the one node-name rule.
    try:
        return names.check_node_name(value, f"pillar {key}")
    except names.NodeNameError as err:
        raise OrchestrateError(str(err)) from None


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


def _seconds(pillar: dict, key: str) -> int:
    value = pillar.get(key, TIMEOUTS[key])
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise OrchestrateError(
            f"pillar {key} = {value!r}: give a number of seconds above 0, for example "
            f"{TIMEOUTS[key]}"
        )
    return int(value)


def _ca_minion(pillar: dict) -> str:
    ca = _given_ca(pillar)
    if not isinstance(ca, str) or not ca:
        raise OrchestrateError(
            "pillar kubesalt:ca:minion is not set: the master's pillar lacks the kubesalt "
            "configuration; check /etc/kubesalt/bootstrap.yaml (kubesalt_config.validate)"
        )
    return ca


def _given_ca(pillar: dict):
    return ((pillar.get("kubesalt") or {}).get("ca") or {}).get("minion")


def _renew_nodes(pillar: dict, declared, ca_minion: str) -> list[str]:
    """renew_certificates' nodes: those given (`node` or `nodes`), else every declared
    node, the CA minion first (the first etcd member), then by name."""
    if "node" in pillar or "nodes" in pillar:
        return check_nodes_pillar("renew_certificates", pillar)
    _check_declared("renew_certificates", declared)
    return sorted(declared, key=lambda name: (name != ca_minion, name))


def _check_declared(orchestration: str, declared) -> None:
    if declared is None:
        raise OrchestrateError(
            f"{orchestration} acts on every declared node by default, and the inventory "
            "was not given; give pillar nodes"
        )


def _whole_cluster(orchestration: str, pillar: dict, declared, ca_minion: str) -> list[str]:
    """An upgrade's or a downgrade's nodes: every declared node (pillar `nodes`, when
    given, must name exactly those), the CA minion last, as the plan orders them
    (kubesalt.upgrade.plan.members_order)."""
    _check_declared(orchestration, declared)
    given = "node" in pillar or "nodes" in pillar
    nodes = check_nodes_pillar(orchestration, pillar) if given else list(declared)
    missing = sorted(set(declared) - set(nodes))
    extra = sorted(set(nodes) - set(declared))
    said = []
    if missing:
        said.append(f"not given: {', '.join(missing)}")
    if extra:
        said.append(f"not declared: {', '.join(extra)}")
    if said:
        raise OrchestrateError(
            f"pillar nodes: an {orchestration} moves every declared node, and only those "
            f"({'; '.join(said)}); leave pillar nodes out, or remove a node that is gone "
            "first (remove_node)"
        )
    return list(members_order(nodes, ca_minion))


def _kubernetes_version(orchestration: str, pillar: dict) -> str | None:
    """pillar kubernetes_version: the release an upgrade or a downgrade moves to."""
    value = pillar.get("kubernetes_version")
    if orchestration not in MOVES_THE_CLUSTER:
        if value is not None:
            raise OrchestrateError(
                f"pillar kubernetes_version: {orchestration} moves no node to another "
                "release; upgrade.sh and downgrade.sh give it to their orchestration"
            )
        return None
    try:
        if not isinstance(value, str):
            raise UpgradeError(f"{value!r} is not a string")
        minor(value)
    except UpgradeError:
        raise OrchestrateError(
            f"pillar kubernetes_version = {value!r}: give the Kubernetes release of the "
            "target archive, for example v1.34.1 (upgrade.sh and downgrade.sh give it)"
        ) from None
    return value


def _renewal(pillar: dict, now) -> renewal.Override:
    """The run's override for the certificate states: window, force, and the run's start
    (what this run issues is not due again within it)."""
    window = pillar.get("renew_before_days")
    if window is not None:
        try:
            window = renewal.check_window(window, "pillar renew_before_days")
        except renewal.RenewalError as err:
            raise OrchestrateError(str(err)) from None
    started = now or datetime.datetime.now(tz=datetime.UTC)
    return renewal.Override(window, pillar.get("force", False), renewal.timestamp(started))


def from_pillar(orchestration: str, pillar: dict, saltenv: str, declared=None,
                now: datetime.datetime | None = None) -> Options:  # fmt: skip
    """Every option of a run, checked: an error names the key, the bad value and the fix.
    `declared`: the inventory's node names (renew_certificates acts on all of them by
    default); `now`: the run's start (renew_certificates' issued_before)."""
    pillar = pillar or {}
    if not isinstance(pillar, dict):
        raise OrchestrateError(f"pillar = {pillar!r}: give a dictionary with the key node")
    phases_of(orchestration)
    given = (pillar.get("kubesalt_bootstrap") or {}).get("minion")
    if orchestration in BY_BOOTSTRAP_SH and given:
        # bootstrap.sh names its minion, the CA minion (its pillar may not say so yet).
        nodes = [_one_name(given, "kubesalt_bootstrap:minion")]
        ca_minion = _given_ca(pillar) or nodes[0]
    elif orchestration in ON_THE_CA_MINION:
        ca_minion = _ca_minion(pillar)
        nodes = [ca_minion]
    elif orchestration in MOVES_THE_CLUSTER:
        ca_minion = _ca_minion(pillar)
        nodes = _whole_cluster(orchestration, pillar, declared, ca_minion)
    elif orchestration in EVERY_NODE_BY_DEFAULT:
        ca_minion = _ca_minion(pillar)
        nodes = _renew_nodes(pillar, declared, ca_minion)
    else:
        ca_minion = _ca_minion(pillar)
        nodes = check_nodes_pillar(orchestration, pillar)
    force = pillar.get("force", False)
    if not isinstance(force, bool):
        raise OrchestrateError(f"pillar force = {force!r}: give true or false")
    renews = orchestration == "renew_certificates"
    if "renew_before_days" in pillar and not renews:
        raise OrchestrateError(
            f"pillar renew_before_days: {orchestration} renews nothing; give it to "
            "renew_certificates"
        )
    return Options(
        orchestration=orchestration,
        nodes=tuple(nodes),
        saltenv=saltenv,
        ca_minion=ca_minion,
        skip=frozenset(check_skip(orchestration, pillar.get("skip_phases"))),
        timeout=_seconds(pillar, "timeout"),
        state_timeout=_seconds(pillar, "state_timeout"),
        drain_timeout=_seconds(pillar, "drain_timeout"),
        force=force,
        api_port=_api_port(pillar.get("kubesalt")),
        renewal=_renewal(pillar, now) if renews else None,
        kubernetes_version=_kubernetes_version(orchestration, pillar),
        config=pillar.get("kubesalt") if isinstance(pillar.get("kubesalt"), dict) else None,
    )


def _api_port(cfg) -> int | None:
    """kube-apiserver's port (apiServer.port, through the port matrix); None when the pillar
    has no configuration (bootstrap.sh's first run: its orchestration waits on no API)."""
    if not isinstance(cfg, dict) or "apiServer" not in cfg:
        return None
    return ports.port_number("kube-apiserver", cfg)
