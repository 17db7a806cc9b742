"""kubesalt.kubectl: kubectl command lines built, its answers read, its failures explained.

The outputs below follow kubectl 1.33 (`get node -o json`, `drain` on stdout and stderr,
`delete node`) and the error lines it prints; older formats kubectl still prints in the
field (`evicting pod "NAME"` without namespace) are covered too.
"""

import json

import pytest

from kubesalt import kubectl, names, roles
from kubesalt.errors import KubesaltError

K = "/etc/kubernetes/admin.conf"


def node_json(name="cp3", labels=None, unschedulable=False):
    """`kubectl get node NAME -o json` (kubectl indents with 4 spaces)."""
    spec = {"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"]}
    if unschedulable:
        spec["taints"] = [
            {
                "effect": "NoSchedule",
                "key": "node.kubernetes.io/unschedulable",
                "timeAdded": "2025-06-12T10:02:11Z",
            }
        ]
        spec["unschedulable"] = True
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            "creationTimestamp": "2025-06-12T09:41:03Z",
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                **(labels or {}),
            },
            "name": name,
            "resourceVersion": "4242",
            "uid": "0f6f9a43-5a0e-4a57-9d0c-1b8b2f1f6c11",
        },
        "spec": spec,
        "status": {"nodeInfo": {"kubeletVersion": "v1.33.1"}},
    }
    return json.dumps(node, indent=4) + "\n"


DRAIN_FIRST = """\
node/cp3 cordoned
evicting pod kube-system/coredns-674b8bbfcf-7xk2p
evicting pod default/web-5d9c8b7f4-q8zlm
pod/web-5d9c8b7f4-q8zlm evicted
pod/coredns-674b8bbfcf-7xk2p evicted
node/cp3 drained
"""
DRAIN_AGAIN = "node/cp3 already cordoned\nnode/cp3 drained\n"
# A PodDisruptionBudget refused the first evictions; kubectl retried every 5 s.
DRAIN_RETRIED = """\
node/cp3 already cordoned
evicting pod default/web-5d9c8b7f4-q8zlm
evicting pod default/web-5d9c8b7f4-q8zlm
evicting pod default/web-5d9c8b7f4-q8zlm
pod/web-5d9c8b7f4-q8zlm evicted
node/cp3 drained
"""
DRAIN_OLD_FORMAT = """\
node/cp3 cordoned
evicting pod "web-5d9c8b7f4-q8zlm"
pod/web-5d9c8b7f4-q8zlm evicted
node/cp3 drained
"""
# `kubectl drain cp3 --ignore-daemonsets --delete-emptydir-data --timeout=10s` (exit 1).
PDB_STDERR = """\
Warning: ignoring DaemonSet-managed Pods: kube-system/kube-proxy-8h2vw
error when evicting pods/"web-5d9c8b7f4-q8zlm" -n "default" (will retry after 5s): \
Cannot evict pod as it would violate the pod's disruption budget.
error when evicting pods/"web-5d9c8b7f4-q8zlm" -n "default" (will retry after 5s): \
Cannot evict pod as it would violate the pod's disruption budget.
There are pending pods in node "cp3" when an error occurred: [error when evicting \
pods/"web-5d9c8b7f4-q8zlm" -n "default": global timeout reached: 10s]
pod/web-5d9c8b7f4-q8zlm
error: unable to drain node "cp3" due to error: [error when evicting pods/\
"web-5d9c8b7f4-q8zlm" -n "default": global timeout reached: 10s], continuing command...
There are pending nodes to be drained:
 cp3
error when evicting pods/"web-5d9c8b7f4-q8zlm" -n "default": global timeout reached: 10s
"""
# A pod slow to stop: the same timeout, without a budget's refusal.
SLOW_STDERR = """\
There are pending pods in node "cp3" when an error occurred: [error when waiting for pod \
"db-0" in namespace "default" to terminate: global timeout reached: 10s]
pod/db-0
error: unable to drain node "cp3" due to error: error when waiting for pod "db-0" in \
namespace "default" to terminate: global timeout reached: 10s, continuing command...
There are pending nodes to be drained:
 cp3
error when evicting pods/"db-0" -n "default": global timeout reached: 10s
"""
BARE_POD_STDERR = """\
error: unable to drain node "cp3" due to error: cannot delete Pods declare no controller \
(use --force to override): default/debug, continuing command...
There are pending nodes to be drained:
 cp3
cannot delete Pods declare no controller (use --force to override): default/debug
"""
# kubectl 1.33 against a VIP nobody holds / an apiserver that is down.
REFUSED_STDERR = """\
E0612 10:04:11.218035   31337 memcache.go:265] "Unhandled Error" err="couldn't get current \
server API group list: Get \\"https://10.0.0.100:6443/api?timeout=32s\\": dial tcp \
10.0.0.100:6443: connect: connection refused"
E0612 10:04:11.219411   31337 memcache.go:265] "Unhandled Error" err="couldn't get current \
server API group list: Get \\"https://10.0.0.100:6443/api?timeout=32s\\": dial tcp \
10.0.0.100:6443: connect: connection refused"
The connection to the server 10.0.0.100:6443 was refused - did you specify the right host \
or port?
"""
NO_ROUTE_STDERR = (
    "Unable to connect to the server: dial tcp 10.0.0.100:6443: connect: no route to host\n"
)
FORBIDDEN_STDERR = (
    'Error from server (Forbidden): nodes "cp3" is forbidden: User "kubernetes-admin" cannot '
    'patch resource "nodes" in API group "" at the cluster scope\n'
)
UNAUTHORIZED_STDERR = "error: You must be logged in to the server (Unauthorized)\n"
X509_STDERR = (
    "Unable to connect to the server: tls: failed to verify certificate: x509: certificate "
    'signed by unknown authority (possibly because of "crypto/rsa: verification error" while '
    'trying to verify candidate authority certificate "kubernetes")\n'
)
NOT_FOUND_STDERR = 'Error from server (NotFound): nodes "cp3" not found\n'


# Command lines.


@pytest.mark.parametrize(
    "node",
    ["CP3", "cp_3", "-cp3", "cp3.", "", "a" * 254, None, "cp3 --all", "cp3/x", "cp3\n"],
)
def test_node_names_are_checked_by_every_command(node):
    message = f"node name: {node!r} is not a valid node name; {names.RULE}"
    builders = [
        lambda: kubectl.get_node_command(K, node),
        lambda: kubectl.drain_command(K, node, 300),
        lambda: kubectl.delete_node_command(K, node, 60),
        lambda: kubectl.uncordon_command(K, node),
    ]
    for build in builders:
        with pytest.raises(names.NodeNameError) as error:
            build()
        assert str(error.value) == message


def test_node_name_of_253_characters_is_valid():
    name = ".".join(["a" * 63] * 4)[:253]
    assert kubectl.get_node_command(K, name)[5] == name


def test_role_label():
    # The label kubeadm gives control-plane nodes; kubesalt.cluster labels every role so.
    assert kubectl.role_label(roles.CONTROL_PLANE) == "node-role.kubernetes.io/control-plane"


def test_get_node_command():
    assert kubectl.get_node_command(K, "cp3") == [
        "kubectl",
        "--kubeconfig",
        K,
        "get",
        "node",
        "cp3",
        "-o",
        "json",
        "--ignore-not-found",
    ]


def test_drain_command():
    assert kubectl.drain_command(K, "cp3", 300) == [
        "kubectl",
        "--kubeconfig",
        K,
        "drain",
        "cp3",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=300s",
    ]
    assert kubectl.drain_command(K, "cp3", "45")[-1] == "--timeout=45s"


def test_the_cordon_mark_commands():
    assert kubectl.mark_cordoned_command("/a.conf", "cp3") == [
        "kubectl", "--kubeconfig", "/a.conf", "annotate", "node", "cp3",
        "kubesalt.io/cordoned-by=kubesalt", "--overwrite"]  # fmt: skip
    assert kubectl.unmark_cordoned_command("/a.conf", "cp3") == [
        "kubectl", "--kubeconfig", "/a.conf", "annotate", "node", "cp3",
        "kubesalt.io/cordoned-by-"]  # fmt: skip
    with pytest.raises(KubesaltError):
        kubectl.mark_cordoned_command("/a.conf", "CP3; rm -rf /")


@pytest.mark.parametrize("annotations, marked", [
    (None, False), ({}, False), ({"kubesalt.io/cordoned-by": "kubesalt"}, True),
    ({"kubesalt.io/cordoned-by": "someone-else"}, False)])  # fmt: skip
def test_cordoned_by_kubesalt_reads_the_annotation(annotations, marked):
    node = {"kind": "Node", "metadata": {"name": "cp3"}, "spec": {"unschedulable": True}}
    if annotations is not None:
        node["metadata"]["annotations"] = annotations
    assert kubectl.cordoned_by_kubesalt(node) is marked
    assert kubectl.cordoned_by_kubesalt(json.dumps(node)) is marked


@pytest.mark.parametrize("unschedulable, annotations, action", [
    (True, {"kubesalt.io/cordoned-by": "kubesalt"}, kubectl.UNCORDON),
    (True, {}, kubectl.KEEP_CORDONED),  # an operator's cordon
    (False, {"kubesalt.io/cordoned-by": "kubesalt"}, kubectl.UNMARK),
    (False, {}, kubectl.NOTHING)])  # fmt: skip
def test_uncordon_action(unschedulable, annotations, action):
    node = {"kind": "Node", "metadata": {"name": "w1", "annotations": annotations},
            "spec": {"unschedulable": True} if unschedulable else {}}  # fmt: skip
    assert kubectl.uncordon_action(node) == action
    assert kubectl.uncordon_action(json.dumps(node)) == action
    assert kubectl.uncordon_action(None) == kubectl.NOTHING


def test_uncordon_command():
    assert kubectl.uncordon_command(K, "worker1") == [
        "kubectl", "--kubeconfig", K, "uncordon", "worker1"]  # fmt: skip


def test_delete_node_command():
    assert kubectl.delete_node_command(K, "cp3", 60) == [
        "kubectl",
        "--kubeconfig",
        K,
        "delete",
        "node",
        "cp3",
        "--ignore-not-found",
        "--wait=true",
        "--timeout=60s",
    ]
    assert kubectl.delete_node_command(K, "cp3")[-1] == "--timeout=60s"


@pytest.mark.parametrize("seconds", [0, -5, "5m", 2.5, None, True])
def test_timeouts_are_whole_seconds(seconds):
    with pytest.raises(kubectl.KubectlError) as error:
        kubectl.drain_command(K, "cp3", seconds)
    assert str(error.value) == (
        f"drain timeout {seconds!r}: give a whole number of seconds, at least 1"
    )
    with pytest.raises(kubectl.KubectlError) as error:
        kubectl.delete_node_command(K, "cp3", seconds)
    assert str(error.value) == (
        f"delete timeout {seconds!r}: give a whole number of seconds, at least 1"
    )


@pytest.mark.parametrize("kubeconfig", ["", None])
def test_kubeconfig_is_required(kubeconfig):
    with pytest.raises(kubectl.KubectlError) as error:
        kubectl.get_node_command(kubeconfig, "cp3")
    assert str(error.value) == (f"kubeconfig {kubeconfig!r}: give the path of a kubeconfig file")


# Reading answers.


def test_parse_node():
    node = kubectl.parse_node(node_json(labels={"node-role.kubernetes.io/control-plane": ""}))
    assert node["kind"] == "Node"
    assert node["metadata"]["name"] == "cp3"
    assert node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == ""


@pytest.mark.parametrize("stdout", ["", "\n", None])
def test_parse_node_of_an_absent_node_is_none(stdout):
    assert kubectl.parse_node(stdout) is None


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        (
            "No resources found\n",
            "kubectl get node did not print JSON (Expecting value: line 1 column 1 (char 0)): "
            "'No resources found\\n'",
        ),
        (
            '{"kind": "List", "items": []}',
            'kubectl get node printed no Node object: \'{"kind": "List", "items": []}\'',
        ),
        ("[1]", "kubectl get node printed no Node object: '[1]'"),
    ],
)
def test_parse_node_errors(stdout, message):
    with pytest.raises(kubectl.KubectlError) as error:
        kubectl.parse_node(stdout)
    assert str(error.value) == message


def test_is_cordoned():
    assert kubectl.is_cordoned(node_json(unschedulable=True)) is True
    assert kubectl.is_cordoned(node_json()) is False
    assert kubectl.is_cordoned(json.loads(node_json(unschedulable=True))) is True
    assert kubectl.is_cordoned("") is False
    assert kubectl.is_cordoned(None) is False


def test_drain_changes_first_drain():
    assert kubectl.drain_changes(DRAIN_FIRST) == {
        "cordoned": True,
        "evicted": ["kube-system/coredns-674b8bbfcf-7xk2p", "default/web-5d9c8b7f4-q8zlm"],
    }


def test_drain_changes_already_cordoned_and_empty_is_nothing():
    assert kubectl.drain_changes(DRAIN_AGAIN) == {"cordoned": False, "evicted": []}
    assert kubectl.drain_changes("") == {"cordoned": False, "evicted": []}


def test_drain_changes_retried_evictions_count_once():
    assert kubectl.drain_changes(DRAIN_RETRIED) == {
        "cordoned": False,
        "evicted": ["default/web-5d9c8b7f4-q8zlm"],
    }


def test_drain_changes_old_format_gives_the_bare_name():
    assert kubectl.drain_changes(DRAIN_OLD_FORMAT) == {
        "cordoned": True,
        "evicted": ["web-5d9c8b7f4-q8zlm"],
    }


def test_drain_changes_evicted_without_an_evicting_line():
    assert kubectl.drain_changes("pod/web-1 evicted\n") == {
        "cordoned": False,
        "evicted": ["web-1"],
    }


def test_drain_changes_ignores_pods_whose_eviction_did_not_finish():
    partial = "node/cp3 cordoned\nevicting pod default/web-1\nevicting pod default/db-0\n"
    assert kubectl.drain_changes(partial + "pod/web-1 evicted\n") == {
        "cordoned": True,
        "evicted": ["default/web-1"],
    }


def test_deleted():
    assert kubectl.deleted('node "cp3" deleted\n') is True
    assert kubectl.deleted("") is False
    assert kubectl.deleted(None) is False
    assert kubectl.deleted("No resources found\n") is False


# Failures.


def test_kubectl_error_is_a_kubesalt_error():
    assert issubclass(kubectl.KubectlError, KubesaltError)


def test_describe_leaves_out_the_kubeconfig():
    assert kubectl.describe(kubectl.get_node_command(K, "cp3")) == (
        "kubectl get node cp3 -o json --ignore-not-found"
    )
    assert kubectl.describe("kubectl version") == "kubectl version"


def _error(command, stderr, returncode=1):
    return str(kubectl.kubectl_error(command, returncode, stderr))


def test_error_of_a_pdb_blocking_the_drain():
    command = kubectl.drain_command(K, "cp3", 10)
    assert _error(command, PDB_STDERR) == (
        "kubectl drain cp3 --ignore-daemonsets --delete-emptydir-data --timeout=10s failed "
        "with exit code 1: There are pending nodes to be drained: / cp3 / error when evicting "
        'pods/"web-5d9c8b7f4-q8zlm" -n "default": global timeout reached: 10s. Hint: a '
        "PodDisruptionBudget blocks the drain: raise the timeout, or scale the workload so "
        "that its budget allows one pod to go (kubectl get pdb -A)"
    )


def test_error_of_a_pod_slow_to_stop():
    command = kubectl.drain_command(K, "cp3", 10)
    assert _error(command, SLOW_STDERR).endswith(
        '"default": global timeout reached: 10s. Hint: a pod could not be evicted in time '
        "(a PodDisruptionBudget blocks the drain, or a pod is slow to stop): raise the "
        "timeout, or scale the workload (kubectl get pdb -A)"
    )


def test_error_of_a_bare_pod():
    command = kubectl.drain_command(K, "cp3", 10)
    assert _error(command, BARE_POD_STDERR) == (
        "kubectl drain cp3 --ignore-daemonsets --delete-emptydir-data --timeout=10s failed "
        "with exit code 1: There are pending nodes to be drained: / cp3 / cannot delete Pods "
        "declare no controller (use --force to override): default/debug. Hint: a pod "
        "without a controller (a bare pod) runs on the node: drain never deletes one, as "
        "nothing would start it again; move its workload, then delete the pod"
    )


VIP_HINT = (
    "Hint: the Kubernetes API server on the VIP does not answer: check that keepalived "
    "holds the VIP and that kube-apiserver runs on the control-plane nodes "
    "(crictl ps, journalctl -u kubelet)"
)


def test_error_of_an_unreachable_api_server():
    command = kubectl.get_node_command(K, "cp3")
    message = _error(command, REFUSED_STDERR)
    assert message.startswith(
        "kubectl get node cp3 -o json --ignore-not-found failed with exit code 1: E0612 "
    )
    assert message.endswith(
        "The connection to the server 10.0.0.100:6443 was refused - did you specify the "
        f"right host or port?. {VIP_HINT}"
    )
    assert _error(command, NO_ROUTE_STDERR) == (
        "kubectl get node cp3 -o json --ignore-not-found failed with exit code 1: Unable to "
        "connect to the server: dial tcp 10.0.0.100:6443: connect: no route to host. "
        f"{VIP_HINT}"
    )


def test_error_of_missing_rights():
    command = kubectl.drain_command(K, "cp3", 300)
    assert _error(command, FORBIDDEN_STDERR) == (
        "kubectl drain cp3 --ignore-daemonsets --delete-emptydir-data --timeout=300s failed "
        'with exit code 1: Error from server (Forbidden): nodes "cp3" is forbidden: User '
        '"kubernetes-admin" cannot patch resource "nodes" in API group "" at the cluster '
        "scope. Hint: admin.conf lacks rights: its group kubeadm:cluster-admins has rights "
        "only through the ClusterRoleBinding kubeadm:cluster-admins (to cluster-admin) that "
        "kubeadm init creates with super-admin.conf; check it exists "
        "(kubectl get clusterrolebinding kubeadm:cluster-admins)"
    )


def test_error_of_a_rejected_certificate():
    command = kubectl.get_node_command(K, "cp3")
    assert _error(command, UNAUTHORIZED_STDERR) == (
        "kubectl get node cp3 -o json --ignore-not-found failed with exit code 1: error: You "
        "must be logged in to the server (Unauthorized). Hint: the API server does not "
        "accept admin.conf's client certificate (expired, or from another CA): regenerate it "
        "with kubesalt.kubeconfig on the CA node"
    )
    assert _error(command, X509_STDERR).endswith(
        'certificate "kubernetes"). Hint: TLS between kubectl and the API server failed: '
        "admin.conf and the API server's certificate must both come from the cluster CA "
        "(kubesalt.pki)"
    )


def test_error_without_a_known_cause_has_no_hint():
    command = kubectl.drain_command(K, "cp3", 300)
    assert _error(command, NOT_FOUND_STDERR) == (
        "kubectl drain cp3 --ignore-daemonsets --delete-emptydir-data --timeout=300s failed "
        'with exit code 1: Error from server (NotFound): nodes "cp3" not found'
    )
    assert _error(command, "", returncode=137) == (
        "kubectl drain cp3 --ignore-daemonsets --delete-emptydir-data --timeout=300s failed "
        "with exit code 137: no error output"
    )


def test_timeout_error():
    command = kubectl.get_node_command(K, "cp3")
    assert str(kubectl.timeout_error(command, 30)) == (
        "kubectl get node cp3 -o json --ignore-not-found did not finish within 30s and was "
        "stopped: the API server on the VIP may not answer (kubectl get --raw /readyz on the "
        "CA node)"
    )
