"""The executor: runs one orchestration's phases in order, on a backend.

It validates nothing twice: the options come checked (options.from_pillar). It holds the
orchestration lock for the whole run, runs each phase's steps on their targets, times
each phase and says so as it happens (progress), stops at the first failing phase with
an error naming the phase and the nodes ("phase certs on cp2: ..."), and reports per
phase and per node what changed (with test=True: what would change).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from kubesalt import inventory as _inventory
from kubesalt import lock as _lock
from kubesalt.errors import KubesaltError
from kubesalt.orchestrate import addonsteps, clustersteps, minionpillar, steps, upgradesteps
from kubesalt.orchestrate.model import OrchestrateError, Phase, StepFailed
from kubesalt.orchestrate.options import Options
from kubesalt.orchestrate.progress import Progress
from kubesalt.orchestrate.rpc import Rpc
from kubesalt.orchestrate.saltssh import SaltSsh
from kubesalt.orchestrate.tables import FINISHES_UNDECLARED, phases_of

KUBESALT_GRAIN = "kubesalt"
KINDS = {**steps.KINDS, **clustersteps.KINDS, **addonsteps.KINDS, **upgradesteps.KINDS}


@dataclass
class PhaseOutcome:
    """One phase as it ran: `changes` {node: {reason: what}}, or `why` it did not run."""

    name: str
    seconds: float = 0.0
    nodes: tuple[str, ...] = ()
    changes: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    why: str = ""
    error: str = ""

    @property
    def ran(self) -> bool:
        return not self.why


@dataclass
class Report:
    """`left_behind`: {node: what stays on its disk}, for nodes given up as gone (pillar
    force of remove_node), whose own steps did not run."""

    label: str
    test: bool
    outcomes: list[PhaseOutcome] = field(default_factory=list)
    error: str = ""
    left_behind: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def changes(self) -> dict:
        """{phase: {node: {reason: what}}} of the phases that changed something."""
        return {o.name: o.changes for o in self.outcomes if o.changes}

    def comment(self) -> str:
        lines = []
        for o in self.outcomes:
            if not o.ran:
                lines.append(f"{o.name}: {o.why}")
            elif o.error:
                lines.append(f"{o.name}: FAILED after {o.seconds:.1f}s")
            else:
                verb = "would change" if self.test else "changed"
                what = f"{verb} on {', '.join(o.changes)}" if o.changes else "no changes"
                notes = f"; {'; '.join(o.notes)}" if o.notes else ""
                lines.append(f"{o.name}: {what} ({o.seconds:.1f}s){notes}")
        verb = "would not be cleaned" if self.test else "not cleaned"
        for node, items in self.left_behind.items():
            lines.append(f"{verb} on the node {node}: {'; '.join(items)}")
        head = f"{self.label}{' (dry run)' if self.test else ''}"
        if self.error:
            return f"{self.error}\n{head}:\n" + "\n".join(lines)
        return f"{head}:\n" + "\n".join(lines)


class Run:
    """What one run knows, each read or computed once: the inventory, the accepted keys,
    the minion pillar, the nodes' addresses, which nodes are settled."""

    def __init__(self, options: Options, backend, test: bool):
        self.options = options
        self.backend = backend
        self.test = test
        self.rpc = Rpc(backend.client, log=getattr(backend, "trace", None))
        self.ssh = SaltSsh(backend.ssh_run)
        self._inventory = None
        self._accepted = None
        self._minion_pillar = None
        self.grains: dict[str, dict] = {}  # node -> its grain `kubesalt`
        self.answering: set[str] = set()  # minions seen answering test.ping in this run
        self.changed: set[str] = set()  # nodes on which something changed (would change)
        self.settled: set[str] | None = None  # from the survey: nothing left to change
        self.survey: dict | None = None  # {node: StateRun} of the survey
        self.no_minion: set[str] = set()  # dry run: nodes whose minion cannot be asked
        self.ran_phases: list[str] = []
        # remove_node: nodes no longer declared (their removal is being finished), nodes
        # given up as gone (force), and per node what of it does not answer (NEEDS -> why).
        self.forgotten: set[str] = set()
        self.gone: set[str] = set()
        self.unreachable: dict[str, dict[str, str]] = {}
        self.left_behind: dict[str, list[str]] = {}
        # Dry run of an upgrade: {node: the release it would have recorded by now}.
        self.would_record: dict[str, str] = {}

    def dry_run_pillar(self) -> dict | None:
        """The pillar override of a dry run's state runs: the releases an upgrade would
        have recorded by now (kubesalt:nodes:<id>:kubernetes_version), so that its nodes
        render what the real run would apply. None when there is none."""
        if not self.would_record:
            return None
        nodes = {n: {"kubernetes_version": v} for n, v in sorted(self.would_record.items())}
        return {"kubesalt": {"nodes": nodes}}

    # -- read once per run ---------------------------------------------------------
    @property
    def inventory(self) -> dict:
        if self._inventory is None:
            self._inventory = _inventory.load(self.backend.inventory_dir)
        return self._inventory

    def entry(self, node: str):
        try:
            return self.inventory[node]
        except KeyError:
            raise StepFailed(
                f"node {node} is not declared; declare it first: salt-run "
                f"kubesalt_inventory.declare {node} <control-plane IP> <roles> "
                "(docs/inventory.md)",
                [node],
            ) from None

    def roles(self, node: str) -> tuple[str, ...]:
        entry = self.inventory.get(node)
        return tuple(entry.roles) if entry else ()

    @property
    def accepted(self) -> set[str]:
        if self._accepted is None:
            self._accepted = set(self.backend.keys.accepted())
        return self._accepted

    def minion_pillar(self) -> dict:
        """The pillar of the minion install for every node of the run, built once."""
        if self._minion_pillar is None:
            built = minionpillar.build(
                self.options.saltenv,
                self.backend.master_ip,
                self.backend.archives(),
                self.backend.ca_cert_path,
                self.backend.read_text,
                master_pub_path=self.backend.master_pub_path,
                hash_type=self.backend.hash_type,
                salt_venv_dir=self.backend.salt_venv_dir,
            )
            self._minion_pillar = built.for_nodes(self.options.nodes)
        return self._minion_pillar

    def call_on(self, minion, fun, args, kwargs, timeout, what):
        """`fun` on one minion: its return, or StepFailed naming the minion."""
        return self.rpc.call([minion], fun, args, kwargs, timeout, what=what)[minion]

    def ca_call(self, fun, args, kwargs, timeout, what):
        """`fun` on the CA minion (the bootstrap node, which holds the CA, the etcd client
        certificate and admin.conf): its return, or StepFailed naming the CA minion."""
        return self.call_on(self.options.ca_minion, fun, args, kwargs, timeout, what)

    def kubesalt_grains(self, nodes) -> dict[str, dict]:
        """{node: its grain `kubesalt`} (control-plane IP, recorded --initial-cluster),
        one job for the nodes not read yet in this run."""
        missing = [n for n in nodes if n not in self.grains and n not in self.no_minion]
        if missing:
            found = self.rpc.call(missing, "grains.get", [KUBESALT_GRAIN], {}, 30)
            self.grains.update({n: g if isinstance(g, dict) else {} for n, g in found.items()})
        return {n: self.grains[n] for n in nodes if n in self.grains}

    def control_plane_ips(self, nodes) -> dict[str, str]:
        """{node: its control-plane IP} (chosen by kubesalt.node in the grains phase)."""
        ips = {}
        for node, grain in self.kubesalt_grains(nodes).items():
            if not grain.get("control_plane_ip"):
                raise StepFailed(
                    f"{node} has no grain {KUBESALT_GRAIN}:control_plane_ip; run the grains "
                    "phase (kubesalt.node chooses the address)",
                    [node],
                )
            ips[node] = grain["control_plane_ip"]
        return ips

    # -- targets -------------------------------------------------------------------
    def is_settled(self, node: str) -> bool:
        return self.settled is not None and node in self.settled and node not in self.changed

    def all_settled(self) -> bool:
        return self.settled is not None and all(self.is_settled(n) for n in self.options.nodes)

    def others(self, roles=frozenset()) -> list[str]:
        """Accepted, declared minions not in this run (with one of `roles`), sorted."""
        return [
            name
            for name in sorted(self.inventory)
            if name not in self.options.nodes
            and name in self.accepted
            and (not roles or set(roles) & set(self.roles(name)))
        ]

    def phase_nodes(self, phase: Phase) -> list[str]:
        """The run's nodes with one of the phase's roles; a node no longer declared has no
        roles to tell, so every phase acts on it (each step finds what is left)."""
        return [
            n
            for n in self.options.nodes
            if not phase.roles or phase.roles & set(self.roles(n)) or n in self.forgotten
        ]

    def able(self, step, nodes, outcome: PhaseOutcome) -> list[str]:
        """The nodes that have what `step` needs; each other one is noted in the phase's
        outcome (a node no longer declared once, by preflight), and for a node given up as
        gone, what the step would have removed from it is recorded as left behind."""
        acting = []
        for node in nodes:
            why = self.unreachable.get(node, {}).get(step.needs) if step.needs else None
            if why is None:
                acting.append(node)
                continue
            if node not in self.forgotten:
                outcome.notes.append(f"{step.what}: not on {node} ({why})")
            if step.leaves and node in self.gone:
                self.left_behind.setdefault(node, []).append(step.leaves)
        return acting

    def targets(self, step, nodes) -> list[str]:
        if step.target == "nodes":
            return list(nodes)
        if step.target == "others":
            return self.others(step.roles)
        if step.target == "ca":
            return [self.options.ca_minion]
        return []

    def timeout(self, step) -> int:
        if isinstance(step.timeout, str):
            return getattr(self.options, step.timeout)
        return int(step.timeout)

    def each(self, nodes, action) -> dict:
        """`action(node)` for every node, in parallel threads when the backend allows it
        (each waits on a subprocess or a socket); StepFailed naming every failed node."""
        nodes = list(nodes)
        if not nodes:
            return {}
        if len(nodes) == 1 or not getattr(self.backend, "parallel", True):
            outcomes = {}
            for node in nodes:
                outcomes[node] = _attempt(action, node)
        else:
            with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
                futures = {node: pool.submit(_attempt, action, node) for node in nodes}
                outcomes = {node: future.result() for node, future in futures.items()}
        failed = {n: o for n, o in outcomes.items() if isinstance(o, StepFailed)}
        if failed:
            raise StepFailed(
                " | ".join(f"{n}: {err.message}" for n, err in failed.items()), list(failed)
            )
        return outcomes

    # -- phases --------------------------------------------------------------------
    def run_phase(self, phase: Phase, nodes) -> PhaseOutcome:
        outcome = PhaseOutcome(phase.name, nodes=tuple(nodes))
        for step in phase.steps:
            kind = KINDS[step.kind]
            acting = self.able(step, nodes, outcome)
            result = kind(self, step, acting, self.targets(step, acting))
            for node, changes in (result.changes or {}).items():
                if changes:
                    _merge(outcome.changes.setdefault(node, {}), changes)
                    if node in self.options.nodes:
                        self.changed.add(node)
            outcome.notes.extend(result.notes)
        self.ran_phases.append(phase.name)
        return outcome


def _attempt(action, node):
    try:
        return action(node)
    except StepFailed as err:
        return err


def _merge(into: dict, changes: dict) -> None:
    for reason, what in changes.items():
        if reason in into and isinstance(into[reason], list) and isinstance(what, list):
            into[reason] = into[reason] + [w for w in what if w not in into[reason]]
        else:
            into[reason] = what


def _why_not(nodes, roles_of) -> str:
    def text(node):
        return ", ".join(roles_of(node)) or "none"

    if len(nodes) == 1:
        return f"not for this node (roles {text(nodes[0])})"
    return "not for these nodes (" + "; ".join(f"{n}: {text(n)}" for n in nodes) + ")"


def _failure(phase: str, err: Exception) -> str:
    if isinstance(err, StepFailed):
        where = f" on {', '.join(err.nodes)}" if err.nodes else ""
        return f"phase {phase}{where}: {err.message}"
    if isinstance(err, OrchestrateError):
        return f"phase {phase}: {err}"
    return f"phase {phase}: {type(err).__name__}: {err}"


def plan(options: Options, inventory: dict) -> list[dict]:
    """Every phase with the nodes it acts on, `run` and `why` it would not: what
    `kubesalt_orchestrate.plan` shows before a run."""

    def roles_of(node):
        return tuple(inventory[node].roles) if node in inventory else ()

    def acts_on(phase, node):
        if options.orchestration in FINISHES_UNDECLARED and node not in inventory:
            return True  # as Run.phase_nodes: no roles to tell
        return not phase.roles or bool(phase.roles & set(roles_of(node)))

    result = []
    for phase in phases_of(options.orchestration):
        nodes = [n for n in options.nodes if acts_on(phase, n)]
        why = ""
        if phase.name in options.skip:
            why, nodes = "skipped (pillar skip_phases)", []
        elif not nodes:
            why = _why_not(options.nodes, roles_of)
        result.append({"name": phase.name, "summary": phase.summary, "nodes": nodes,
                       "run": not why, "why": why})  # fmt: skip
    return result


def execute(options: Options, backend, test: bool = False, progress=None) -> Report:
    """Run `options.orchestration` on `backend`; the Report of every phase."""
    phases = phases_of(options.orchestration)
    run = Run(options, backend, test)
    report = Report(options.label, test)
    progress = progress or Progress(options.label, log_file=backend.log_file)
    progress.line(f"{options.label}{' (dry run, test=True)' if test else ''}: "
                  f"{len(phases)} phases")  # fmt: skip
    try:
        hint = _lock.TOGETHER_HINT if options.orchestration == "deploy_node" else ""
        held = _lock.acquire(options.label, backend.lock_path, hint)
    except KubesaltError as err:
        report.error = f"phase {phases[0].name}: {err}"
        progress.line(report.error)
        return report
    try:
        _run_phases(run, phases, report, progress)
        report.left_behind = run.left_behind
    finally:
        if held:
            _lock.release(backend.lock_path)
    total = sum(o.seconds for o in report.outcomes)
    progress.line(f"{options.label}: {'FAILED' if report.error else 'done'} in {total:.1f}s")
    return report


def _run_phases(run: Run, phases, report: Report, progress) -> None:
    total = len(phases)
    for index, phase in enumerate(phases, start=1):
        nodes = run.phase_nodes(phase)
        why = ""
        if phase.name in run.options.skip:
            why = "skipped (pillar skip_phases)"
        elif not nodes:
            why = _why_not(run.options.nodes, run.roles)
        if why:
            progress.skipped(index, total, phase.name, phase.summary, why)
            report.outcomes.append(PhaseOutcome(phase.name, why=why))
            continue
        progress.started(index, total, phase.name, phase.summary, nodes)
        start = run.backend.clock()
        try:
            outcome = run.run_phase(phase, nodes)
        except (KubesaltError, OSError) as err:  # OSError: a file or socket on the master
            seconds = run.backend.clock() - start
            report.error = _failure(phase.name, err)
            report.outcomes.append(PhaseOutcome(phase.name, seconds, tuple(nodes),
                                                error=report.error))  # fmt: skip
            progress.failed(phase.name, seconds, report.error)
            return
        outcome.seconds = run.backend.clock() - start
        report.outcomes.append(outcome)
        per_node = {n: outcome.changes.get(n, {}) for n in nodes}
        per_node.update({n: c for n, c in outcome.changes.items() if n not in per_node})
        progress.ended(phase.name, outcome.seconds, per_node, run.test)
