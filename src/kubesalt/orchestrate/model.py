"""The vocabulary of the engine: a Step, a Phase, the errors (docs/orchestrations.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubesalt.errors import KubesaltError


class OrchestrateError(KubesaltError):
    """An orchestration cannot run as asked; the message says which key and the fix."""


class StepFailed(OrchestrateError):
    """A step failed on `nodes` (empty: not on one node, e.g. the master's key store).
    The executor prefixes the message with the phase and the nodes."""

    def __init__(self, message: str, nodes=()):
        self.message = message
        self.nodes = tuple(nodes)
        super().__init__(message)


@dataclass
class StepResult:
    """What a step did (with test=True: would do): {node: {reason: what}}, and notes for
    the phase's comment."""

    changes: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# Where a step acts. The run's nodes are those given in the pillar (filtered by the
# phase's roles); `others` are the accepted, declared minions not in the run (filtered by
# the step's roles); `ca` is the CA minion (the bootstrap node); `master` is the master.
TARGETS = ("nodes", "others", "ca", "master")
# What a step may need of each node of the run: `ssh`, the machine up (its SSH port
# answers: salt-ssh, a drain's evictions), `minion`, its minion answering (state runs).
# remove_node's preflight says which nodes lack what (`Run.unreachable`).
NEEDS = ("ssh", "minion")


@dataclass(frozen=True)
class Step:
    """One call of a step kind (`steps.KINDS`) on its targets: `timeout` in seconds, or
    the name of an option (`timeout`, `state_timeout`, `drain_timeout`); `retry` the
    seconds between two attempts while a wait lasts (0: one attempt). `needs`: what the
    step needs of a node of the run (NEEDS); a node without it is left out, and for a node
    given up as gone (remove_node's force), `leaves` says what then stays on its disk."""

    kind: str
    target: str
    what: str
    args: dict = field(default_factory=dict)
    timeout: int | str = 120
    retry: float = 0
    roles: frozenset[str] = frozenset()
    needs: str = ""
    leaves: str = ""

    def __post_init__(self):
        if self.target not in TARGETS:
            raise OrchestrateError(f"step {self.kind}: target {self.target!r}; valid: {TARGETS}")
        if self.needs and self.needs not in NEEDS:
            raise OrchestrateError(f"step {self.kind}: needs {self.needs!r}; valid: {NEEDS}")


@dataclass(frozen=True)
class Phase:
    """A named list of steps, run in order. `roles`: the run's nodes it acts on (empty:
    every node). `why`: why it is there, for the docs and `kubesalt_orchestrate.plan`."""

    name: str
    summary: str
    steps: tuple[Step, ...]
    roles: frozenset[str] = frozenset()
    why: str = ""
