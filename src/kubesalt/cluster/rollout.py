"""Whether the DaemonSets and Deployments kubesalt applied have rolled out, decided from
their status as `kubectl rollout status` decides (kubectl's polymorphichelpers
rollout_status.go), and a bounded wait for it.

A rollout is complete once its controller has observed the object's latest generation
(status.observedGeneration) and every pod it wants runs the latest template and is
available. Other kinds have no rollout and are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from kubesalt.cluster.apply import ApplyError, Ref, check_objects, read_object

ROLLOUT_KINDS = ("DaemonSet", "Deployment")
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


class RolloutError(ApplyError):
    """A rollout failed for good (a Deployment past its progress deadline), or did not
    finish in the time given."""


def _counts(obj: dict) -> tuple[dict, dict, bool]:
    """(spec, status, observed): whether the controller has seen the latest generation."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation") or 0
    return spec, status, generation <= (status.get("observedGeneration") or 0)


def deployment_pending(obj: dict) -> str | None:
    """What a Deployment's rollout waits for, or None when it is complete. A Deployment past
    its progress deadline is a RolloutError: waiting longer does not help."""
    spec, status, observed = _counts(obj)
    if not observed:
        return "waiting for the controller to observe the latest spec"
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == PROGRESS_DEADLINE_EXCEEDED
        ):
            name = (obj.get("metadata") or {}).get("name")
            raise RolloutError(
                f"Deployment {name} exceeded its progress deadline ({condition.get('message')}); "
                f"see why its pods do not start: kubectl -n {obj['metadata'].get('namespace')} "
                f"describe deployment {name}, and the pods' events"
            )
    updated = status.get("updatedReplicas") or 0
    if spec.get("replicas") is not None and updated < spec["replicas"]:
        return f"{updated} out of {spec['replicas']} new replicas have been updated"
    if (status.get("replicas") or 0) > updated:
        return f"{status['replicas'] - updated} old replicas are pending termination"
    available = status.get("availableReplicas") or 0
    if available < updated:
        return f"{available} of {updated} updated replicas are available"
    return None


def daemonset_pending(obj: dict) -> str | None:
    """What a DaemonSet's rollout waits for, or None when it is complete (an OnDelete
    DaemonSet has no rollout to wait for)."""
    spec, status, observed = _counts(obj)
    if ((spec.get("updateStrategy") or {}).get("type") or "RollingUpdate") != "RollingUpdate":
        return None
    if not observed:
        return "waiting for the controller to observe the latest spec"
    desired = status.get("desiredNumberScheduled") or 0
    updated = status.get("updatedNumberScheduled") or 0
    if updated < desired:
        return f"{updated} out of {desired} new pods have been updated"
    available = status.get("numberAvailable") or 0
    if available < desired:
        return f"{available} of {desired} updated pods are available"
    return None


PENDING_OF = {"Deployment": deployment_pending, "DaemonSet": daemonset_pending}


def _rollout_refs(objects: Sequence[dict]) -> list[Ref]:
    return [ref for ref in check_objects(objects) if ref.kind.kind in ROLLOUT_KINDS]


def _pending(client, refs: Sequence[Ref]) -> list[str]:
    pending = []
    for ref in refs:
        live = read_object(client, ref)
        if live is None:
            pending.append(f"{ref}: does not exist (apply it first)")
            continue
        waiting = PENDING_OF[ref.kind.kind](live)
        if waiting:
            pending.append(f"{ref}: {waiting}")
    return pending


def rollout_pending(client, objects: Sequence[dict]) -> list[str]:
    """The DaemonSets and Deployments among `objects` whose rollout is incomplete, each as
    "<Kind> <namespace>/<name>: what it waits for", in the order given; [] when all are done."""
    return _pending(client, _rollout_refs(objects))


def wait_for_rollout(
    client,
    objects: Sequence[dict],
    timeout: float,
    interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Ask `rollout_pending` every `interval` seconds until nothing is pending or `timeout`
    seconds have passed (0: ask once); what is still pending ([] when all rolled out)."""
    refs = _rollout_refs(objects)
    deadline = clock() + timeout
    pending = _pending(client, refs)
    while pending:
        left = deadline - clock()
        if left <= 0:
            break
        sleep(min(interval, left))
        pending = _pending(client, refs)
    return pending
