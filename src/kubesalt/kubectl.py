"""Node objects through kubectl, decided in pure Python: build command lines, read answers.

The loader module `kubesalt_kubectl` runs these commands on the CA (bootstrap) node, which
has `/etc/kubernetes/admin.conf`, for remove_node (drain, delete); an orchestration's dry
run reads the Node with `get_node_command`. Node labels and taints are not kubectl's:
kubesalt.cluster applies them by server-side apply, with the labels of `role_label`.
Nothing here runs a program or touches Salt.

The kubectl output read here (kubectl 1.2x/1.33):

- `get node N -o json --ignore-not-found`: the Node as JSON, or nothing when it does not exist.
- `drain N`: stdout `node/N cordoned` (or `node/N already cordoned`), then per pod
  `evicting pod NS/NAME` (repeated while an eviction is retried) and `pod/NAME evicted`,
  then `node/N drained`; warnings and refused evictions go to stderr.
- `delete node N --ignore-not-found`: `node "N" deleted`, or nothing when it did not exist.
- `annotate node N KEY=VALUE --overwrite` / `KEY-`: `node/N annotated`.

A drain that cordons a schedulable Node first marks it with the annotation `CORDONED_BY`;
uncordon makes schedulable only a Node that carries it, so a Node an operator cordoned by
hand (maintenance) stays cordoned through an upgrade.
"""

from __future__ import annotations

import json
import re

from kubesalt.errors import KubesaltError
from kubesalt.names import check_node_name

ROLE_PREFIX = "node-role.kubernetes.io/"
# The annotation on a Node that kubesalt cordoned (its drain), removed when it uncordons it.
CORDONED_BY = "kubesalt.io/cordoned-by"
CORDONED_BY_VALUE = "kubesalt"
STDERR_LINES = 3  # stderr lines quoted in an error: kubectl's summary is at the end

_CORDONED = re.compile(r"^node/(?P<node>\S+) cordoned$")
_EVICTING = re.compile(r'^evicting pod "?(?P<pod>[^\s"]+)"?$')
_EVICTED = re.compile(r"^pod/(?P<pod>\S+) evicted$")
_DELETED = re.compile(r'^node "(?P<node>[^"]+)" deleted$')

# Text in kubectl's stderr -> what it means and what to do. The first match wins.
HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("x509: ",),
        "TLS between kubectl and the API server failed: admin.conf and the API server's "
        "certificate must both come from the cluster CA (kubesalt.pki)",
    ),
    (
        ("Unable to connect to the server", "connection refused", "was refused"),
        "the Kubernetes API server on the VIP does not answer: check that keepalived holds "
        "the VIP and that kube-apiserver runs on the control-plane nodes "
        "(crictl ps, journalctl -u kubelet)",
    ),
    (
        ("Cannot evict pod as it would violate the pod's disruption budget",),
        "a PodDisruptionBudget blocks the drain: raise the timeout, or scale the workload so "
        "that its budget allows one pod to go (kubectl get pdb -A)",
    ),
    (
        ("error when evicting pods",),
        "a pod could not be evicted in time (a PodDisruptionBudget blocks the drain, or a "
        "pod is slow to stop): raise the timeout, or scale the workload "
        "(kubectl get pdb -A)",
    ),
    (
        ("declare no controller",),
        "a pod without a controller (a bare pod) runs on the node: drain never deletes one, "
        "as nothing would start it again; move its workload, then delete the pod",
    ),
    (
        ("Forbidden",),
        "admin.conf lacks rights: its group kubeadm:cluster-admins has rights only through "
        "the ClusterRoleBinding kubeadm:cluster-admins (to cluster-admin) that kubeadm init "
        "creates with super-admin.conf; check it exists "
        "(kubectl get clusterrolebinding kubeadm:cluster-admins)",
    ),
    (
        ("Unauthorized",),
        "the API server does not accept admin.conf's client certificate (expired, or from "
        "another CA): regenerate it with kubesalt.kubeconfig on the CA node",
    ),
)


class KubectlError(KubesaltError):
    """A kubectl command cannot be built, failed, or printed something unexpected."""


def role_label(role: str) -> str:
    """`node-role.kubernetes.io/<role>`, the label `kubectl get nodes` shows as a role."""
    return ROLE_PREFIX + role


def check_timeout(seconds, what: str) -> int:
    """`seconds` as a whole number of seconds, at least 1."""
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        value = 0
    if isinstance(seconds, bool) or value < 1 or str(value) != str(seconds).strip():
        raise KubectlError(f"{what} {seconds!r}: give a whole number of seconds, at least 1")
    return value


def _base(kubeconfig: str) -> list[str]:
    if not isinstance(kubeconfig, str) or not kubeconfig:
        raise KubectlError(f"kubeconfig {kubeconfig!r}: give the path of a kubeconfig file")
    return ["kubectl", "--kubeconfig", kubeconfig]


def get_node_command(kubeconfig: str, node: str) -> list[str]:
    """`kubectl get node NODE -o json --ignore-not-found`: empty stdout when it is absent."""
    name = check_node_name(node)
    return [*_base(kubeconfig), "get", "node", name, "-o", "json", "--ignore-not-found"]


def drain_command(kubeconfig: str, node: str, timeout_seconds: int) -> list[str]:
    """`kubectl drain NODE`: cordons, then evicts (retrying evictions a PodDisruptionBudget
    refuses) until the timeout. DaemonSet pods are left (their controller ignores cordons);
    emptyDir data goes with its pod."""
    seconds = check_timeout(timeout_seconds, "drain timeout")
    return [
        *_base(kubeconfig),
        "drain",
        check_node_name(node),
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        f"--timeout={seconds}s",
    ]


def mark_cordoned_command(kubeconfig: str, node: str) -> list[str]:
    """Annotate the Node as cordoned by kubesalt, before its drain cordons it: a drain that
    stops halfway still leaves the mark."""
    return [*_base(kubeconfig), "annotate", "node", check_node_name(node),
            f"{CORDONED_BY}={CORDONED_BY_VALUE}", "--overwrite"]  # fmt: skip


def unmark_cordoned_command(kubeconfig: str, node: str) -> list[str]:
    """Remove the annotation once the Node is schedulable again."""
    return [*_base(kubeconfig), "annotate", "node", check_node_name(node), f"{CORDONED_BY}-"]


def uncordon_command(kubeconfig: str, node: str) -> list[str]:
    """`kubectl uncordon NODE`: schedulable again (after an upgrade's drain)."""
    return [*_base(kubeconfig), "uncordon", check_node_name(node)]


def delete_node_command(kubeconfig: str, node: str, timeout_seconds: int = 60) -> list[str]:
    """`kubectl delete node NODE`, waiting for it to be gone; nothing when it is absent."""
    seconds = check_timeout(timeout_seconds, "delete timeout")
    return [
        *_base(kubeconfig),
        "delete",
        "node",
        check_node_name(node),
        "--ignore-not-found",
        "--wait=true",
        f"--timeout={seconds}s",
    ]


def parse_node(stdout: str) -> dict | None:
    """The Node object printed by `get node -o json --ignore-not-found`; None when absent."""
    if not (stdout or "").strip():
        return None
    try:
        node = json.loads(stdout)
    except ValueError as err:
        raise KubectlError(
            f"kubectl get node did not print JSON ({err}): {stdout[:200]!r}"
        ) from None
    if not isinstance(node, dict) or node.get("kind") != "Node":
        raise KubectlError(f"kubectl get node printed no Node object: {stdout[:200]!r}")
    return node


def is_cordoned(node_json) -> bool:
    """Whether the Node (its JSON text or the parsed object) is unschedulable."""
    node = parse_node(node_json) if isinstance(node_json, str) else node_json
    return bool(node) and (node.get("spec") or {}).get("unschedulable") is True


def cordoned_by_kubesalt(node_json) -> bool:
    """Whether the Node carries kubesalt's cordon annotation (kubesalt's drain cordoned it)."""
    node = parse_node(node_json) if isinstance(node_json, str) else node_json
    annotations = ((node or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(CORDONED_BY) == CORDONED_BY_VALUE


# What uncordon does with a Node (uncordon_action): the module acts on it, a dry run says it.
UNCORDON, KEEP_CORDONED, UNMARK, NOTHING = "uncordon", "keep-cordoned", "unmark", "nothing"


def uncordon_action(node_json) -> str:
    """`UNCORDON` a Node kubesalt's drain cordoned (its mark); `KEEP_CORDONED` one
    cordoned by someone else; `UNMARK` a schedulable Node that still has the mark (uncordoned
    by hand after kubesalt's drain); `NOTHING` for a schedulable Node or none."""
    node = parse_node(node_json) if isinstance(node_json, str) else node_json
    if node is None:
        return NOTHING
    marked = cordoned_by_kubesalt(node)
    if is_cordoned(node):
        return UNCORDON if marked else KEEP_CORDONED
    return UNMARK if marked else NOTHING


def drain_changes(stdout: str) -> dict:
    """What `kubectl drain` changed: `cordoned` when it cordoned the node (not when it was
    cordoned already), `evicted` the pods it evicted, as `ns/name` in the order it started
    them (the bare name when only `pod/NAME evicted` was printed)."""
    cordoned = False
    started: list[str] = []
    evicted: list[str] = []
    for line in (stdout or "").splitlines():
        line = line.strip()
        if _CORDONED.match(line):
            cordoned = True
        elif match := _EVICTING.match(line):
            if match["pod"] not in started:  # retried evictions repeat the line
                started.append(match["pod"])
        elif (match := _EVICTED.match(line)) and match["pod"] not in evicted:
            evicted.append(match["pod"])
    named = [pod for pod in started if pod.rsplit("/", 1)[-1] in evicted]
    bare = [pod for pod in evicted if not any(p.rsplit("/", 1)[-1] == pod for p in named)]
    return {"cordoned": cordoned, "evicted": named + bare}


def deleted(stdout: str) -> bool:
    """Whether `kubectl delete node` deleted a Node (it prints nothing when there was none)."""
    return any(_DELETED.match(line.strip()) for line in (stdout or "").splitlines())


def describe(command) -> str:
    """The command as a person reads it: without the kubeconfig option (always admin.conf)."""
    if isinstance(command, str):
        return command
    words = list(command)
    if "--kubeconfig" in words:
        at = words.index("--kubeconfig")
        del words[at : at + 2]
    return " ".join(words)


def hint(stderr: str) -> str | None:
    """What to do about a kubectl failure, read from its whole stderr."""
    for needles, advice in HINTS:
        if any(needle in (stderr or "") for needle in needles):
            return advice
    return None


def kubectl_error(command, returncode: int, stderr: str) -> KubectlError:
    """The error of a failed kubectl run: the command, its exit code, the last lines of its
    stderr, and what to do when the cause is a known one."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    said = " / ".join(lines[-STDERR_LINES:]) or "no error output"
    message = f"{describe(command)} failed with exit code {returncode}: {said}"
    advice = hint(stderr)
    return KubectlError(f"{message}. Hint: {advice}" if advice else message)


def timeout_error(command, seconds: int) -> KubectlError:
    """The error of a kubectl run stopped because it outlived its time limit."""
    return KubectlError(
        f"{describe(command)} did not finish within {seconds}s and was stopped: the API "
        "server on the VIP may not answer (kubectl get --raw /readyz on the CA node)"
    )
