"""Phases declared as data: an ordered list of named steps, each timed and skippable.

The shape of kubeadm's workflow runner: `--skip-phases` is validated against the declared
names ("unknown phase"), each phase is printed with its duration, and an error carries the
phase's name ("error in phase preflight: ...").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubesalt.errors import KubesaltError


class BootstrapError(KubesaltError):
    """A phase of bootstrap.sh failed; the message says what and how to fix it."""


class PhaseError(BootstrapError):
    """A phase failed: `phase` names it, the message is the phase's own error."""

    def __init__(self, phase: str, message: str):
        self.phase = phase
        self.message = message
        super().__init__(f"error in phase {phase}: {message}")


class UsageError(BootstrapError):
    """Bad command-line arguments (exit code 2)."""


@dataclass(frozen=True)
class Phase:
    """One named step: `run(context)` returns a PhaseResult (or raises BootstrapError)."""

    name: str
    summary: str
    run: Callable[[object], PhaseResult]


@dataclass
class PhaseResult:
    """What a phase did: `changed` is False when it found everything already in place."""

    changed: bool
    detail: str = ""


@dataclass
class Outcome:
    """One phase as it ran: its result, or `skipped`, and its duration in seconds."""

    name: str
    seconds: float
    skipped: bool = False
    result: PhaseResult | None = None


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(o.result is not None and o.result.changed for o in self.outcomes)

    @property
    def seconds(self) -> float:
        return sum(o.seconds for o in self.outcomes)


def split_names(value) -> list[str]:
    """Phase names as given: a comma-separated string, a list, or nothing (blanks dropped).
    Shared by bootstrap.sh's `--skip-phases` and the orchestrations' pillar `skip_phases`."""
    if value in (None, "", [], ()):
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


def unknown_names(wanted: Iterable[str], declared: Iterable[str]) -> list[str]:
    """The names of `wanted` that are not declared phase names, in the order given."""
    names = set(declared)
    return [name for name in wanted if name not in names]


def start_line(index: int, total: int, name: str, summary: str) -> str:
    """`[3/8] name: summary ...`: a phase starts (bootstrap.sh and the orchestrations)."""
    return f"[{index}/{total}] {name}: {summary} ..."


def done_line(
    name: str, seconds: float, changed: bool, detail: str = "", changed_word: str = "changed"
) -> str:
    """`      name done in 1.2s (changed; detail)`: a phase ended (a dry run says `would
    change`)."""
    state = changed_word if changed else "no changes"
    return f"      {name} done in {seconds:.1f}s ({state}{f'; {detail}' if detail else ''})"


def parse_skip(text: str | None, phases: Iterable[Phase]) -> set[str]:
    """Validate a comma-separated `--skip-phases` value against the declared phase names."""
    names = [p.name for p in phases]
    wanted = split_names(text)
    unknown = unknown_names(wanted, names)
    if unknown:
        raise UsageError(
            f"--skip-phases: unknown phase {', '.join(map(repr, unknown))}; "
            f"valid phases, in order: {', '.join(names)}"
        )
    return set(wanted)


def run_phases(
    phases: Iterable[Phase],
    context: object,
    skip: set[str] | None = None,
    announce: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> Report:
    """Run `phases` in order; stop at the first failure with a PhaseError naming it."""
    skip = skip or set()
    report = Report()
    phases = list(phases)
    for index, phase in enumerate(phases, start=1):
        head = start_line(index, len(phases), phase.name, phase.summary)
        if phase.name in skip:
            announce(f"{head} skipped (--skip-phases)")
            report.outcomes.append(Outcome(phase.name, 0.0, skipped=True))
            continue
        announce(head)
        start = clock()
        try:
            result = phase.run(context)
        except PhaseError:
            raise
        except BootstrapError as err:
            raise PhaseError(phase.name, str(err)) from err
        except KubesaltError as err:
            raise PhaseError(phase.name, f"{type(err).__name__}: {err}") from err
        seconds = clock() - start
        report.outcomes.append(Outcome(phase.name, seconds, result=result))
        announce(done_line(phase.name, seconds, result.changed, result.detail))
    return report
