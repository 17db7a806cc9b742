"""The step kinds that apply the cluster's API objects (kubesalt.cluster) through the CA
minion: kubeadm's API-side objects, the CNI, kube-proxy, CoreDNS and the Nodes' labels and
taints (`cluster_applied`), then the wait for their DaemonSets and Deployments
(`rolled_out`). See docs/addons.md.

Same contract as `steps`: `kind(run, step, nodes, targets) -> StepResult`. The objects are
rendered on the master from the run's configuration (pillar `kubesalt`) and the whole
inventory, so every run applies the same list; the CA minion (the bootstrap node, the only
node with the kubernetes client) sends them. A dry run sends them with the API's dry run:
the server checks every object and says what would change, and nothing is stored.
"""

from __future__ import annotations

from kubesalt import cluster
from kubesalt import roles as _roles
from kubesalt.cluster.kubeadm_objects import needs_super_admin
from kubesalt.kubeadm.model import Layout
from kubesalt.orchestrate.model import OrchestrateError, StepFailed, StepResult
from kubesalt.orchestrate.steps import wait, wait_for

SUPER_ADMIN_CONF = Layout().kubeconfig("super-admin.conf")
APPLY_SECONDS = 120  # one apply of every object (a few dozen requests)
CHANGED = ("created", "configured")


def rendered(run) -> list[dict]:
    """Every API object of the cluster, in apply order, for the declared nodes."""
    cfg = run.options.config
    if not isinstance(cfg, dict) or "apiServer" not in cfg:
        raise OrchestrateError(
            "the pillar has no kubesalt configuration: cannot render the cluster's objects; "
            "check /etc/kubesalt/bootstrap.yaml with kubesalt_config.validate"
        )
    declared = {name: run.roles(name) for name in sorted(run.inventory)}
    return cluster.render(cfg, cluster.cluster_nodes(declared))


def _apply(run, objects, kubeconfig=None) -> dict:
    """kubesalt_cluster.apply of `objects` on the CA minion (a dry run with run.test)."""
    kwargs = {"test": run.test}
    if kubeconfig:
        kwargs["kubeconfig"] = kubeconfig
    what = f"apply {len(objects)} API object(s) with {kubeconfig or 'admin.conf'}"
    return run.ca_call("kubesalt_cluster.apply", [objects], kwargs, APPLY_SECONDS, what)


def _node_name(outcome: dict) -> str | None:
    return outcome.get("name") if outcome.get("kind") == "Node" else None


def _record(run, result: StepResult, outcomes) -> None:
    """Changed objects as changes: a Node under its own name, the others under the CA
    minion (`ConfigMap kube-system/kube-proxy: created`)."""
    for outcome in outcomes:
        if outcome.get("outcome") not in CHANGED:
            continue
        node = _node_name(outcome)
        verb = ("would be " if run.test else "") + outcome["outcome"]
        if node:
            result.changes.setdefault(node, {})["node"] = f"Node object {verb}"
        else:
            objects = result.changes.setdefault(run.options.ca_minion, {}).setdefault("objects", [])
            objects.append(f"{outcome['object']}: {verb}")


def _must_register(run, nodes) -> list[str]:
    """The run's nodes whose kubelet must have registered its Node by now."""
    return [n for n in nodes if _roles.runs_kubelet(run.roles(n))]


def cluster_applied(run, step, nodes, targets):
    """Every object applied in order: the cluster-admins binding with super-admin.conf
    (admin.conf gets its rights from it), the rest with admin.conf. A Node whose kubelet
    has not registered is never created: the run's own nodes are waited for (every
    `retry` seconds, up to the step's timeout) and patched once they register; a declared
    node outside the run is left for its own deploy and noted."""
    objects = rendered(run)
    first = [obj for obj in objects if needs_super_admin(obj)]
    rest = [obj for obj in objects if not needs_super_admin(obj)]
    result = StepResult()
    outcomes = _apply(run, first, SUPER_ADMIN_CONF)["objects"] if first else []
    outcomes += _apply(run, rest)["objects"]
    pending = {_node_name(o) for o in outcomes if o.get("outcome") == "pending"}
    waiting = [n for n in _must_register(run, nodes) if n in pending]
    if waiting and run.test:
        for node in waiting:
            result.changes.setdefault(node, {})["node"] = (
                "Node object would be labelled (and tainted) once its kubelet registers"
            )
    elif waiting:
        outcomes += _wait_for_nodes(run, step, objects, waiting)
    _record(run, result, [o for o in outcomes if o.get("outcome") != "pending"])
    later = sorted(pending - set(nodes) - {None})
    if later:
        result.notes.append(
            f"Node(s) {', '.join(later)}: the kubelet has not registered; deploy_node of "
            "the node labels and taints it"
        )
    return result


def _wait_for_nodes(run, step, objects, waiting) -> list[dict]:
    """Apply the Node patches of `waiting` until their kubelets have registered; the
    outcomes of the patches that were applied. StepFailed names the nodes left."""
    patches = {obj["metadata"]["name"]: obj for obj in objects if obj.get("kind") == "Node"}
    applied: list[dict] = []

    def unregistered(pending):
        outcomes = _apply(run, [patches[n] for n in pending])["objects"]
        applied.extend(o for o in outcomes if o.get("outcome") != "pending")
        return [_node_name(o) for o in outcomes if o.get("outcome") == "pending"]

    left = wait(run, step, waiting, unregistered)
    if left:
        raise StepFailed(
            f"the kubelet of {', '.join(left)} did not register its Node within "
            f"{run.timeout(step)}s, so its labels and taint are not applied; check the "
            "kubelet there (systemctl status kubelet, journalctl -u kubelet), then run "
            "deploy_node again",
            left,
        )
    return applied


def rolled_out(run, step, nodes, targets):
    """Every DaemonSet and Deployment applied has rolled out (as `kubectl rollout status`
    decides), asked every `retry` seconds up to the step's timeout. A wait changes
    nothing: a dry run asks once and notes what is pending."""
    workloads = cluster.workloads(rendered(run))
    ca = run.options.ca_minion
    last: list[str] = []

    def incomplete(pending):
        answer = run.ca_call(
            "kubesalt_cluster.rollout_status",
            [workloads],
            {"timeout": 0},
            60,
            "ask the rollout status",
        )
        last[:] = answer.get("pending") or []
        return pending if last else []

    if run.test:
        incomplete(["rollout"])
        return StepResult(notes=[f"rollout pending: {p}" for p in last])
    if wait_for(run, ["rollout"], incomplete, run.timeout(step), step.retry):
        raise StepFailed(
            f"not rolled out within {run.timeout(step)}s: {'; '.join(last)}; see kubectl -n "
            "kube-system get pods -o wide and kubectl -n kube-system describe pod <pod> on "
            f"{ca}, then run the orchestration again"
        )
    return StepResult(notes=[f"rolled out: {', '.join(_ref(w) for w in workloads)}"])


def _ref(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}"


KINDS = {"cluster_applied": cluster_applied, "rolled_out": rolled_out}
