"""The kubesalt_kubectl execution module against a real (fake) `kubectl` program.

`kubectl` here is a small Python script put first on the PATH: it keeps a tiny cluster in a
JSON file (Nodes with their cordon state and pods), answers the four commands the module
runs the way kubectl 1.33 does (stdout, stderr, exit code), records every argv, and fails a
command when a test tells it to. The module runs it through Salt's real `cmd.run_all`, so
argv quoting, exit codes and the time limit are those of production.
"""

import copy
import json
import sys
import textwrap

import pytest
import salt.config
import salt.modules.cmdmod
import salt.utils.path
from salt.exceptions import CommandExecutionError

from kubesalt import names
from tests.unit.loader import load
from tests.unit.test_kubectl import (
    FORBIDDEN_STDERR,
    PDB_STDERR,
    REFUSED_STDERR,
)

kubesalt_kubectl = load("_modules", "kubesalt_kubectl")

SECRET = "client-key-data: c2VjcmV0LWtleQ=="  # must never leave the kubeconfig
MARK = "kubesalt.io/cordoned-by"  # kubesalt's cordon annotation (kubesalt.kubectl.CORDONED_BY)

FAKE_KUBECTL = textwrap.dedent(
    """\
    #!{python}
    # A fake kubectl: the cluster and the failures to inject are in {state}.
    import json, sys, time

    STATE = {state!r}
    CALLS = {calls!r}

    def node_json(name, node):
        spec = {{"unschedulable": True}} if node["unschedulable"] else {{}}
        metadata = {{"name": name, "labels": node["labels"]}}
        if node["annotations"]:
            metadata["annotations"] = node["annotations"]
        obj = {{"apiVersion": "v1", "kind": "Node", "spec": spec, "metadata": metadata}}
        return json.dumps(obj, indent=4) + "\\n"

    def main(argv):
        with open(CALLS, "a") as calls:
            calls.write(json.dumps(argv) + "\\n")
        with open(STATE) as f:
            state = json.load(f)
        assert argv[0] == "--kubeconfig", argv
        with open(argv[1]):  # kubectl reads it
            pass
        verb, args = argv[2], argv[3:]
        fail = state["fail"].get(verb)
        if fail:
            time.sleep(fail.get("sleep", 0))
            sys.stdout.write(fail.get("stdout", ""))
            sys.stderr.write(fail.get("stderr", ""))
            return fail.get("rc", 1)
        nodes = state["nodes"]
        if verb == "get":
            name = args[1]
            if name in nodes:
                sys.stdout.write(node_json(name, nodes[name]))
            return 0
        if verb == "drain":
            name = args[0]
            node = nodes[name]
            if node["unschedulable"]:
                print(f"node/{{name}} already cordoned")
            else:
                node["unschedulable"] = True
                print(f"node/{{name}} cordoned")
            if node["daemonset_pods"]:
                sys.stderr.write("Warning: ignoring DaemonSet-managed Pods: "
                                 + ", ".join(node["daemonset_pods"]) + "\\n")
            for pod in node["pods"]:
                print(f"evicting pod {{pod}}")
            for pod in node["pods"]:
                print(f"pod/{{pod.split('/')[1]}} evicted")
            node["pods"] = []
            print(f"node/{{name}} drained")
        elif verb == "annotate":
            name, change = args[1], args[2]
            if change.endswith("-"):
                nodes[name]["annotations"].pop(change[:-1], None)
            else:
                key, value = change.split("=", 1)
                nodes[name]["annotations"][key] = value
            print(f"node/{{name}} annotated")
        elif verb == "uncordon":
            nodes[args[0]]["unschedulable"] = False
            print(f"node/{{args[0]}} uncordoned")
        elif verb == "delete":
            name = args[1]
            if nodes.pop(name, None) is not None:
                print(f'node "{{name}}" deleted')
        with open(STATE, "w") as f:
            json.dump(state, f)
        return 0

    sys.exit(main(sys.argv[1:]))
    """
)


class FakeKubectl:
    """The fake kubectl's cluster, failures and recorded calls."""

    def __init__(self, directory):
        self.state = directory / "cluster.json"
        self.calls_file = directory / "calls.jsonl"
        self.bin = directory / "bin"
        self.bin.mkdir()
        program = self.bin / "kubectl"
        program.write_text(
            FAKE_KUBECTL.format(
                python=sys.executable, state=str(self.state), calls=str(self.calls_file)
            )
        )
        program.chmod(0o755)
        self.save({"nodes": {}, "fail": {}})

    def save(self, state):
        self.state.write_text(json.dumps(state))

    def load(self):
        return json.loads(self.state.read_text())

    def add_node(self, name, unschedulable=False, pods=(), daemonset_pods=(), annotations=None):
        state = self.load()
        state["nodes"][name] = {
            "labels": {"kubernetes.io/hostname": name},
            "annotations": dict(annotations or {}),
            "unschedulable": unschedulable,
            "pods": list(pods),
            "daemonset_pods": list(daemonset_pods),
        }
        self.save(state)

    def fail(self, verb, stderr, rc=1, stdout="", sleep=0):
        state = self.load()
        state["fail"][verb] = {"stderr": stderr, "rc": rc, "stdout": stdout, "sleep": sleep}
        self.save(state)

    def node(self, name):
        return self.load()["nodes"].get(name)

    @property
    def calls(self):
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    kubectl = FakeKubectl(tmp_path)
    monkeypatch.setenv("PATH", f"{kubectl.bin}:/usr/bin:/bin")
    return kubectl


@pytest.fixture
def root(tmp_path):
    conf = tmp_path / "root" / "etc" / "kubernetes" / "admin.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(f"apiVersion: v1\nkind: Config\nusers:\n- user:\n    {SECRET}\n")
    return tmp_path / "root"


@pytest.fixture
def admin_conf(root):
    return str(root / "etc" / "kubernetes" / "admin.conf")


@pytest.fixture
def configure_loader_modules(fake, root):
    return {
        kubesalt_kubectl: {
            "__grains__": {"kubesalt_root": str(root)},
            "__salt__": {"cmd.run_all": salt.modules.cmdmod.run_all},
        },
        salt.modules.cmdmod: {
            "__opts__": copy.deepcopy(salt.config.DEFAULT_MINION_OPTS),
            "__grains__": {},
            "__salt__": {},
            "__context__": {},
            "__pillar__": {},
        },
    }


def _error(function, *args, **kwargs):
    with pytest.raises(CommandExecutionError) as error:
        function(*args, **kwargs)
    assert SECRET not in str(error.value)
    return str(error.value)


def test_virtual_needs_kubectl_on_the_path(fake, monkeypatch):
    assert salt.utils.path.which("kubectl") == str(fake.bin / "kubectl")
    assert kubesalt_kubectl.__virtual__() == "kubesalt_kubectl"
    # which() also looks in default directories, which may hold a real kubectl.
    monkeypatch.setattr(salt.utils.path, "which", lambda name: None)
    assert kubesalt_kubectl.__virtual__() == (
        False,
        "kubectl is not on the PATH (package kubectl, from the kubesalt archive)",
    )


def test_virtual_needs_the_kubesalt_package(monkeypatch):
    monkeypatch.setattr(kubesalt_kubectl, "HAS_KUBESALT", False)
    assert kubesalt_kubectl.__virtual__() == (
        False,
        "the kubesalt Python package is not installed in Salt's virtualenv",
    )


# Shared paths: arguments, kubeconfig, RBAC


def test_refused_by_rbac(fake):
    # kubectl drain cordons by patching the Node: the patch RBAC refuses.
    fake.add_node("cp3")
    fake.fail("drain", FORBIDDEN_STDERR)
    message = _error(kubesalt_kubectl.drain, "cp3")
    assert message.startswith(
        "KubectlError: kubectl drain cp3 --ignore-daemonsets --delete-emptydir-data "
        '--timeout=300s failed with exit code 1: Error from server (Forbidden): nodes "cp3" '
        "is forbidden"
    )
    assert message.endswith("(kubectl get clusterrolebinding kubeadm:cluster-admins)")
    assert fake.node("cp3")["unschedulable"] is False


def test_bad_arguments_run_nothing(fake):
    assert _error(kubesalt_kubectl.drain, "CP2") == (
        f"NodeNameError: node name: 'CP2' is not a valid node name; {names.RULE}"
    )
    assert _error(kubesalt_kubectl.drain, "cp2", timeout=0) == (
        "KubectlError: drain timeout 0: give a whole number of seconds, at least 1"
    )
    assert _error(kubesalt_kubectl.delete_node, "cp2", timeout="5m") == (
        "KubectlError: delete timeout '5m': give a whole number of seconds, at least 1"
    )
    assert _error(kubesalt_kubectl.delete_node, "cp2 --all") == (
        f"NodeNameError: node name: 'cp2 --all' is not a valid node name; {names.RULE}"
    )
    assert fake.calls == []


def test_missing_kubeconfig_is_named(fake, tmp_path):
    missing = tmp_path / "nowhere.conf"
    assert _error(kubesalt_kubectl.drain, "cp3", kubeconfig=str(missing)) == (
        f"KubectlError: kubeconfig {missing} does not exist: run this on the CA (bootstrap) "
        "node, where kubesalt.kubeconfig writes admin.conf, or pass kubeconfig=<path>"
    )
    assert fake.calls == []


def test_an_explicit_kubeconfig_is_used_as_given(fake, tmp_path):
    other = tmp_path / "other.conf"
    other.write_text("apiVersion: v1\n")
    fake.add_node("cp2", unschedulable=True)
    assert kubesalt_kubectl.drain("cp2", kubeconfig=str(other))["changed"] is False
    assert kubesalt_kubectl.delete_node("cp2", kubeconfig=str(other))["changed"] is True
    assert [call[2] for call in fake.calls] == ["get", "drain", "delete"]
    assert {tuple(call[:2]) for call in fake.calls} == {("--kubeconfig", str(other))}


# drain


def test_drain_cordons_and_evicts_then_changes_nothing(fake, admin_conf):
    fake.add_node(
        "cp3",
        pods=["kube-system/coredns-674b8bbfcf-7xk2p", "default/web-5d9c8b7f4-q8zlm"],
        daemonset_pods=["kube-system/kube-proxy-8h2vw"],
    )
    ret = kubesalt_kubectl.drain("cp3", timeout=120)
    assert ret == {
        "changed": True,
        "cordoned": True,
        "evicted": ["kube-system/coredns-674b8bbfcf-7xk2p", "default/web-5d9c8b7f4-q8zlm"],
        "comment": "node cp3 cordoned and drained, evicted 2 pod(s): "
        "kube-system/coredns-674b8bbfcf-7xk2p, default/web-5d9c8b7f4-q8zlm",
    }
    assert fake.calls == [
        ["--kubeconfig", admin_conf, "get", "node", "cp3", "-o", "json", "--ignore-not-found"],
        # marked before kubectl drain cordons it, so that uncordon gives it back
        ["--kubeconfig", admin_conf, "annotate", "node", "cp3", f"{MARK}=kubesalt", "--overwrite"],
        [
            "--kubeconfig",
            admin_conf,
            "drain",
            "cp3",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=120s",
        ],
    ]
    assert fake.node("cp3")["unschedulable"] is True
    assert fake.node("cp3")["annotations"] == {MARK: "kubesalt"}
    again = kubesalt_kubectl.drain("cp3", timeout=120)
    assert again == {
        "changed": False,
        "cordoned": False,
        "evicted": [],
        "comment": "node cp3 is in the correct state: cordoned, no pod to evict",
    }


def test_drain_of_a_cordoned_node_with_pods_left_evicts_them(fake):
    fake.add_node("cp3", unschedulable=True, pods=["default/web-1"])
    assert kubesalt_kubectl.drain("cp3") == {
        "changed": True,
        "cordoned": False,
        "evicted": ["default/web-1"],
        "comment": "node cp3 drained, evicted 1 pod(s): default/web-1",
    }
    assert fake.calls[-1][-1] == "--timeout=300s"
    # cordoned by someone else: not marked, so uncordon leaves it cordoned
    assert [call[2] for call in fake.calls] == ["get", "drain"]
    assert fake.node("cp3")["annotations"] == {}


def test_drain_of_an_empty_schedulable_node_cordons_it(fake):
    fake.add_node("cp3")
    assert kubesalt_kubectl.drain("cp3") == {
        "changed": True,
        "cordoned": True,
        "evicted": [],
        "comment": "node cp3 cordoned and drained, no pod to evict",
    }


def test_drain_of_an_absent_node_changes_nothing(fake):
    assert kubesalt_kubectl.drain("cp3") == {
        "changed": False,
        "cordoned": False,
        "evicted": [],
        "comment": "node cp3 has no Node object: nothing to drain",
    }
    assert [call[2] for call in fake.calls] == ["get"]


def test_drain_blocked_by_a_pod_disruption_budget(fake):
    fake.add_node("cp3", pods=["default/web-5d9c8b7f4-q8zlm"])
    stdout = "node/cp3 cordoned\nevicting pod default/web-5d9c8b7f4-q8zlm\n" * 2
    fake.fail("drain", PDB_STDERR, stdout=stdout)
    assert _error(kubesalt_kubectl.drain, "cp3", timeout=10) == (
        "KubectlError: kubectl drain cp3 --ignore-daemonsets --delete-emptydir-data "
        "--timeout=10s failed with exit code 1: There are pending nodes to be drained: / "
        'cp3 / error when evicting pods/"web-5d9c8b7f4-q8zlm" -n "default": global timeout '
        "reached: 10s. Hint: a PodDisruptionBudget blocks the drain: raise the timeout, or "
        "scale the workload so that its budget allows one pod to go (kubectl get pdb -A)"
    )


def test_unreachable_api_server(fake):
    fake.fail("get", REFUSED_STDERR)
    message = _error(kubesalt_kubectl.drain, "cp3")
    assert message.startswith(
        "KubectlError: kubectl get node cp3 -o json --ignore-not-found failed with exit code "
        "1: E0612 10:04:11.218035"
    )
    assert message.endswith(
        "The connection to the server 10.0.0.100:6443 was refused - did you specify the "
        "right host or port?. Hint: the Kubernetes API server on the VIP does not answer: "
        "check that keepalived holds the VIP and that kube-apiserver runs on the "
        "control-plane nodes (crictl ps, journalctl -u kubelet)"
    )
    fake.fail("delete", REFUSED_STDERR)
    deleting = _error(kubesalt_kubectl.delete_node, "cp3")
    assert deleting.startswith(
        "KubectlError: kubectl delete node cp3 --ignore-not-found --wait=true --timeout=60s "
        "failed with exit code 1: E0612 10:04:11.218035"
    )
    assert deleting.endswith(message[message.index(". Hint: ") :])
    assert [call[2] for call in fake.calls] == ["get", "delete"]


def test_kubectl_that_hangs_is_stopped(fake, monkeypatch):
    monkeypatch.setattr(kubesalt_kubectl, "READ_TIMEOUT", 1)
    fake.fail("get", "", sleep=5)
    assert _error(kubesalt_kubectl.drain, "cp3") == (
        "KubectlError: kubectl get node cp3 -o json --ignore-not-found did not finish within "
        "1s and was stopped: the API server on the VIP may not answer (kubectl get --raw "
        "/readyz on the CA node)"
    )


# uncordon


def test_uncordon_a_node_kubesalt_drained_then_changes_nothing(fake, admin_conf):
    fake.add_node("worker1")
    kubesalt_kubectl.drain("worker1")
    assert kubesalt_kubectl.uncordon("worker1") == {
        "changed": True,
        "action": "uncordon",
        "kept_cordoned": False,
        "comment": "node worker1 uncordoned",
    }
    assert fake.calls[-2:] == [
        ["--kubeconfig", admin_conf, "uncordon", "worker1"],
        ["--kubeconfig", admin_conf, "annotate", "node", "worker1", f"{MARK}-"],
    ]
    assert fake.node("worker1")["unschedulable"] is False
    assert fake.node("worker1")["annotations"] == {}
    assert kubesalt_kubectl.uncordon("worker1") == {
        "changed": False,
        "action": "nothing",
        "kept_cordoned": False,
        "comment": "node worker1 is in the correct state: schedulable",
    }
    assert [call[2] for call in fake.calls] == [
        "get", "annotate", "drain", "get", "uncordon", "annotate", "get"]  # fmt: skip


def test_a_node_cordoned_by_hand_stays_cordoned_through_drain_and_uncordon(fake):
    fake.add_node("worker1", unschedulable=True, pods=["default/web-1"])  # maintenance
    kubesalt_kubectl.drain("worker1")
    assert kubesalt_kubectl.uncordon("worker1") == {
        "changed": False,
        "action": "keep-cordoned",
        "kept_cordoned": True,
        "comment": "node worker1 stays cordoned: it was cordoned before kubesalt drained it "
        f"(no annotation {MARK}); once its maintenance is over, run: kubectl uncordon worker1",
    }
    assert fake.node("worker1")["unschedulable"] is True
    assert "uncordon" not in [call[2] for call in fake.calls]


def test_uncordon_by_hand_after_a_drain_leaves_only_the_mark_to_remove(fake):
    fake.add_node("worker1", annotations={MARK: "kubesalt"})
    assert kubesalt_kubectl.uncordon("worker1") == {
        "changed": True,
        "action": "unmark",
        "kept_cordoned": False,
        "comment": f"node worker1 is in the correct state: schedulable (annotation {MARK} removed)",
    }
    assert fake.node("worker1")["annotations"] == {}


def test_uncordon_of_an_absent_node_changes_nothing(fake):
    assert kubesalt_kubectl.uncordon("worker1") == {
        "changed": False,
        "action": "nothing",
        "kept_cordoned": False,
        "comment": "node worker1 has no Node object: nothing to uncordon",
    }


def test_uncordon_refused_by_rbac_names_the_command(fake):
    fake.add_node("worker1", unschedulable=True, annotations={MARK: "kubesalt"})
    fake.fail("uncordon", FORBIDDEN_STDERR)
    assert _error(kubesalt_kubectl.uncordon, "worker1").startswith(
        "KubectlError: kubectl uncordon worker1 failed with exit code 1: Error from server "
        "(Forbidden)"
    )


# delete_node


def test_delete_node_then_changes_nothing(fake, admin_conf):
    fake.add_node("cp3", unschedulable=True)
    assert kubesalt_kubectl.delete_node("cp3", timeout=30) == {
        "changed": True,
        "comment": "Node object cp3 deleted",
    }
    assert fake.calls == [
        [
            "--kubeconfig",
            admin_conf,
            "delete",
            "node",
            "cp3",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=30s",
        ]
    ]
    assert fake.node("cp3") is None
    assert kubesalt_kubectl.delete_node("cp3") == {
        "changed": False,
        "comment": "node cp3 has no Node object: nothing to delete",
    }
    assert fake.calls[-1][-1] == "--timeout=60s"


def test_delete_node_refused_by_rbac(fake):
    fake.add_node("cp3")
    fake.fail("delete", FORBIDDEN_STDERR.replace("patch", "delete"))
    assert _error(kubesalt_kubectl.delete_node, "cp3").startswith(
        "KubectlError: kubectl delete node cp3 --ignore-not-found --wait=true --timeout=60s "
        'failed with exit code 1: Error from server (Forbidden): nodes "cp3" is forbidden: '
        'User "kubernetes-admin" cannot delete resource "nodes" in API group "" at the '
        "cluster scope. Hint: admin.conf lacks rights"
    )
    assert fake.node("cp3") is not None


def test_returns_never_hold_the_kubeconfig(fake):
    fake.add_node("cp3", pods=["default/web-1"])
    results = [
        kubesalt_kubectl.drain("cp3"),
        kubesalt_kubectl.delete_node("cp3"),
    ]
    assert SECRET not in json.dumps(results)
