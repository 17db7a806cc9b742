"""The step kinds of the upgrade and downgrade orchestrations (tables.UPGRADE): the plan's
checks of the cluster asked again, the other minions moved to the new Salt tree, each
node's Kubernetes release recorded as the target, and checked at the end.

Same contract as `steps`: `kind(run, step, nodes, targets) -> StepResult`; a dry run
reads and reports what would change. The recorded releases are the inventory's
(`backend.kubernetes_versions`, `backend.record_kubernetes_version`).
"""

from __future__ import annotations

from kubesalt.errors import KubesaltError
from kubesalt.orchestrate.model import StepFailed, StepResult
from kubesalt.orchestrate.steps import minion_installed
from kubesalt.upgrade import facts, plan


def verdict(run, step, nodes, targets):
    """The plan's checks of the nodes and of etcd (kubesalt.upgrade.plan.recheck), asked
    again through the master: every declared node answers, every etcd member is a healthy
    voter of a declared node. The other checks are upgrade.sh's: the archives, the lock
    (this run's now), the backup, and the Salt tree each node runs (the bootstrap node's
    moved since)."""
    reports = facts.node_reports(run.rpc, run.inventory)
    etcd = facts.etcd_state(run.rpc, run.options.ca_minion)
    problems = plan.recheck(run.options.orchestration, run.options.ca_minion, reports, etcd)
    if problems:
        raise StepFailed(
            "the plan's verdict refuses now, nothing was changed: "
            + "; ".join(f"[{p.check}] {p.message}" for p in problems)
        )
    return StepResult(notes=[f"{len(reports)} node(s) answer; etcd: {len(etcd.members)} "
                             "healthy member(s)"])  # fmt: skip


def minions_moved(run, step, nodes, targets):
    """The minions of every node but the CA minion moved to the run's saltenv and its
    Salt virtualenv (steps.minion_installed: asked first, installed only where something
    would change). The CA minion moved with upgrade.sh, through bootstrap.sh's phases."""
    others = [n for n in nodes if n != run.options.ca_minion]
    if not others:
        return StepResult(notes=["no minion but the CA minion's, moved by upgrade.sh"])
    return minion_installed(run, step, others, others)


def release_recorded(run, step, nodes, targets):
    """Each node's Kubernetes release recorded in the inventory as the run's target: from
    then on its files render at that release. A dry run says which records would change,
    and its later state runs render the node at the target (Run.dry_run_pillar)."""
    target = run.options.kubernetes_version
    recorded = run.backend.kubernetes_versions()
    changes = {}
    for node in nodes:
        before = recorded.get(node)
        if before == target:
            continue
        if run.test:
            run.would_record[node] = target
        else:
            try:
                run.backend.record_kubernetes_version(node, target)
            except KubesaltError as err:
                raise StepFailed(f"cannot record Kubernetes {target} for {node}: {err}",
                                 [node]) from err  # fmt: skip
        verb = "would record" if run.test else "recorded"
        changes[node] = {"release": f"{verb} {target} (was {before or 'not recorded'})"}
    return StepResult(changes)


def release_checked(run, step, nodes, targets):
    """Every node of the run records the target release: the cluster runs it. A node
    left behind (a skipped phase) fails the run, named; a dry run notes it."""
    target = run.options.kubernetes_version
    recorded = run.backend.kubernetes_versions()
    behind = [n for n in nodes if recorded.get(n) != target]
    if not behind:
        return StepResult(notes=[f"every node records Kubernetes {target}"])
    said = ", ".join(f"{n} ({recorded.get(n) or 'not recorded'})" for n in behind)
    if run.test:
        return StepResult(notes=[f"not at Kubernetes {target} yet: {said}"])
    raise StepFailed(
        f"not at Kubernetes {target}: {said}; a phase that moves them was skipped (pillar "
        f"skip_phases) or stopped: run {run.options.orchestration} again without skipping it",
        behind,
    )


KINDS = {
    "verdict": verdict, "minions_moved": minions_moved,
    "release_recorded": release_recorded, "release_checked": release_checked,
}  # fmt: skip
