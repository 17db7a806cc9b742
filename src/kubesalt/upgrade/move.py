"""What `upgrade.sh` and `downgrade.sh` do once the plan's verdict allows it: move the
cluster (docs/upgrade.md#what-upgradesh-does). Its own phases, as bootstrap.sh's: each
printed with its duration, each idempotent, so that a run after a failure continues.

1. `release`: every declared node's Kubernetes release recorded where none is, so that
   the nodes not moved yet keep rendering the release they run once the target's code runs;
2. the bootstrap node's Salt moved to the target archive with bootstrap.sh's own phases
   `repository`, `salt-install` (the Salt virtualenv, archived for the other nodes) and
   `salt-minion`; then `salt-restart`: the salt-master's configuration for the target
   archive (kubesalt.bootstrap.services, as its state writes it), salt-master and
   salt-minion restarted on it and on the new virtualenv; bootstrap.sh's `salt-master`;
   `register`: the register's current archive is the target;
3. `orchestrate`: `salt-run state.orchestrate kubesalt.orchestrate.<direction>` on the
   target's saltenv, with the target release and the plan's nodes.

The bootstrap node's control plane and etcd move in their turn, in the orchestration. The
move holds the orchestration lock until it hands over to the orchestration, which takes it
in its own process: no other orchestration, and no kubesalt-iso, starts in between.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from kubesalt import inventory, lock
from kubesalt.bootstrap import archive as karchive
from kubesalt.bootstrap import cli as bootstrap
from kubesalt.bootstrap import services
from kubesalt.bootstrap.phases import Phase, PhaseResult
from kubesalt.orchestrate import progress
from kubesalt.upgrade.facts import RESTART_PENDING
from kubesalt.upgrade.plan import Plan, members_order

SALT_DAEMONS = ("salt-master", "salt-minion")
# What bootstrap.sh does that moves the bootstrap node's Salt, by phase name (its
# bootstrap-states and orchestrate phases would move its control plane and etcd too).
BOOTSTRAP_PHASES = ("repository", "salt-install", "salt-minion")
RESTART_AFTER = ("salt-install", "salt-minion")  # the daemons run that virtualenv and config
WAIT_FOR_THE_KEY = "salt-master"


@dataclass
class MoveContext(bootstrap.Context):
    """bootstrap.sh's context (its phases run on it), and what the move adds: the
    direction, the plan, the release the cluster runs now, the phases the orchestration
    skips, and the files it writes (tests put them elsewhere)."""

    direction: str = ""
    plan: Plan | None = None
    current_release: str = ""
    target_release: str = ""
    skip: list[str] = field(default_factory=list)
    inventory_dir: str = services.INVENTORY_DIR
    register: str = karchive.REGISTER
    master_config: str = services.MASTER_CONFIG
    restart_pending: str = RESTART_PENDING
    lock_path: str = lock.LOCK_FILE


def record_releases(nodes: dict[str, inventory.Node], release: str, record) -> list[str]:
    """`record(name, release)` for every node with no release recorded; the names."""
    missing = [name for name, node in sorted(nodes.items()) if not node.kubernetes_version]
    for name in missing:
        record(name, release)
    return missing


def phase_release(ctx: MoveContext) -> PhaseResult:
    recorded = record_releases(
        inventory.load(ctx.inventory_dir),
        ctx.current_release,
        lambda name, release: inventory.record_kubernetes_version(name, release, ctx.inventory_dir),
    )
    if not recorded:
        return PhaseResult(False, "every node has its release recorded")
    return PhaseResult(True, f"{ctx.current_release} recorded for {', '.join(recorded)}")


def _restart_due(ctx: MoveContext) -> None:
    """A marker keeps the daemons' restart due until phase salt-restart did it: a run
    stopped before it restarts them at the next run."""
    ctx.system.write(ctx.restart_pending, " ".join(SALT_DAEMONS) + "\n", 0o600)


def _restarting(phase: Phase) -> Phase:
    """`phase`, after which a change makes the Salt daemons' restart due."""

    def run(ctx: MoveContext) -> PhaseResult:
        result = phase.run(ctx)
        if result.changed:
            _restart_due(ctx)
        return result

    return Phase(phase.name, phase.summary, run)


def phase_salt_restart(ctx: MoveContext) -> PhaseResult:
    """The salt-master's configuration for the target archive; salt-master and salt-minion
    restarted when it, the minion's configuration or the Salt virtualenv changed."""
    text = services.master_config(ctx.control_plane_ip, ctx.minion_id, ctx.archives,
                                  ctx.current, ctx.args.config)  # fmt: skip
    if ctx.system.write(ctx.master_config, text):
        _restart_due(ctx)
    if not os.path.exists(ctx.restart_pending):
        return PhaseResult(False, f"{ctx.master_config} in place, nothing to restart")
    for daemon in SALT_DAEMONS:
        ctx.system.run(["systemctl", "restart", daemon], what=f"restart {daemon}")
    os.unlink(ctx.restart_pending)
    return PhaseResult(True, f"{', '.join(SALT_DAEMONS)} restarted on {ctx.current.saltenv}")


def phase_register(ctx: MoveContext) -> PhaseResult:
    changed = karchive.set_current(ctx.current.version, ctx.system.write, ctx.register)
    return PhaseResult(changed, f"current archive {ctx.current.version} ({ctx.current.saltenv})")


def orchestrate_command(ctx: MoveContext) -> list[str]:
    """salt-run of the orchestration, with the target release, the declared nodes in the
    plan's order and the phases to skip."""
    pillar = {"kubernetes_version": ctx.target_release,
              "nodes": list(members_order([r.name for r in ctx.plan.nodes], ctx.minion_id))}  # fmt: skip
    if ctx.skip:
        pillar["skip_phases"] = list(ctx.skip)
    return [ctx.salt("salt-run"), "--out=json", "--log-level=quiet", "state.orchestrate",
            f"kubesalt.orchestrate.{ctx.direction}", f"saltenv={ctx.current.saltenv}",
            f"pillar={json.dumps(pillar)}"]  # fmt: skip


def phase_orchestrate(ctx: MoveContext) -> PhaseResult:
    # The orchestration takes the lock in its own process: the move hands it over.
    lock.release(ctx.lock_path)
    summary = bootstrap.salt_json(ctx, orchestrate_command(ctx),
                                  f"salt-run state.orchestrate kubesalt.orchestrate.{ctx.direction}")  # fmt: skip
    return PhaseResult(bool(summary.changed), f"{summary.total} states, "
                       f"{len(summary.changed)} changed (each phase: {progress.LOG_FILE})")  # fmt: skip


def bootstrap_phases(names) -> tuple[Phase, ...]:
    """bootstrap.sh's phases of these names."""
    by_name = {phase.name: phase for phase in bootstrap.PHASES}
    return tuple(by_name[name] for name in names)


def phases(direction: str, borrowed=bootstrap_phases) -> tuple[Phase, ...]:
    """The move's phases in order; `borrowed(names)` gives bootstrap.sh's (tests replace
    them: they install packages and Salt)."""
    return (
        Phase("release", "each node's Kubernetes release recorded where none is",
              phase_release),
        *(_restarting(p) if p.name in RESTART_AFTER else p for p in borrowed(BOOTSTRAP_PHASES)),
        Phase("salt-restart", "salt-master's configuration for the target archive; "
              "salt-master and salt-minion restarted on it", phase_salt_restart),
        *borrowed([WAIT_FOR_THE_KEY]),
        Phase("register", "the register's current archive: the target", phase_register),
        Phase("orchestrate", f"salt-run state.orchestrate kubesalt.orchestrate.{direction}: "
              "the other minions, etcd, control-plane, workers, addons", phase_orchestrate),
    )  # fmt: skip
