"""The kubesalt_orchestrate loader modules (the plan module and the master-side phase
states), with Salt's loader dunders given directly: what they decide without a master."""

import socket

import pytest
import yaml
from salt.exceptions import CommandExecutionError

from kubesalt import inventory
from tests.unit.loader import load

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
plan_module = load("_modules", "kubesalt_orchestrate")
states = load("_states", "kubesalt_orchestrate")


@pytest.fixture
def nodes_dir(tmp_path):
    directory = tmp_path / "nodes"
    directory.mkdir()
    for node in (
        inventory.Node("cp2", "127.0.0.1", ("control-plane", "etcd", "node"), port=1),
        inventory.Node("worker1", "127.0.0.1", ("node",)),
    ):
        (directory / f"{node.name}.yaml").write_text(yaml.safe_dump(node.to_document()))
    opts = {"kubesalt_inventory": str(directory), "test": False}
    plan_module.__opts__ = opts
    states.__opts__ = opts
    return directory


def test_plan_of_a_declared_worker(nodes_dir):
    plan = plan_module.plan("deploy_node", {"node": "worker1", "skip_phases": ["addons"]})
    assert plan["nodes"] == ["worker1"]
    assert plan["label"] == "worker1"
    assert plan["roles"] == {"worker1": ["node"]}
    assert plan["force"] is False
    assert "etcd: not for this node (roles node)" in plan["skipped"]
    assert "addons: skipped (pillar skip_phases)" in plan["skipped"]


def test_plan_refuses_an_unknown_phase_naming_the_valid_ones(nodes_dir):
    with pytest.raises(CommandExecutionError, match=r"OrchestrateError: .*valid phases: preflight"):
        plan_module.plan("deploy_node", {"node": "cp2", "skip_phases": "kubelte"})


def test_plan_without_node(nodes_dir):
    with pytest.raises(CommandExecutionError, match="pillar node = None: give the node to act on"):
        plan_module.plan("remove_node", {})


def test_plan_of_several_nodes_one_undeclared(nodes_dir):
    plan = plan_module.plan("deploy_node", {"nodes": ["cp2", "worker1", "cp9"]})
    assert plan["label"] == "cp2, worker1, cp9"
    assert plan["roles"] == {
        "cp2": ["control-plane", "etcd", "node"],
        "worker1": ["node"],
        "cp9": [],
    }
    phases = {p["name"]: p for p in plan["phases"]}
    assert phases["preflight"]["nodes"] == ["cp2", "worker1", "cp9"]
    assert phases["etcd"]["nodes"] == ["cp2"]


def test_plan_of_remove_node_with_force(nodes_dir):
    assert plan_module.plan("remove_node", {"node": "cp2", "force": True})["force"] is True


def test_skipped_reports_no_change():
    ret = states.skipped("Phase kubelet", "kubelet", "skipped (pillar skip_phases)")
    assert ret == {
        "name": "Phase kubelet",
        "result": True,
        "changes": {},
        "comment": "phase kubelet: skipped (pillar skip_phases)",
    }


def test_node_declared_refuses_an_undeclared_node(nodes_dir):
    ret = states.node_declared("Phase preflight", ["worker1", "cp9"])
    assert ret["result"] is False
    assert ret["changes"] == {}
    assert ret["comment"].startswith("phase preflight: node cp9 is not declared; declare it first")


def test_node_declared_checks_the_ssh_port_with_a_bound(nodes_dir):
    ret = states.node_declared("Phase preflight", "cp2", wait=0)
    assert ret["result"] is False
    assert "SSH port 127.0.0.1:1 did not answer within 0s" in ret["comment"]


def test_node_declared_when_the_ssh_port_answers(nodes_dir):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        node = inventory.Node("cp3", "127.0.0.1", ("node",), port=port, host_keys=(HOST_KEY,))
        (nodes_dir / "cp3.yaml").write_text(yaml.safe_dump(node.to_document()))
        ret = states.node_declared("Phase preflight", ["cp3"])
    assert ret["result"] is True
    assert ret["changes"] == {}
    assert ret["comment"] == (
        f"phase preflight: node cp3 is declared (roles node) and its SSH port 127.0.0.1:{port} answers"
    )
    # Its recorded key is what salt-ssh will check.
    assert (nodes_dir / "known_hosts").read_text() == f"[127.0.0.1]:{port} {HOST_KEY}\n"


def test_a_host_key_that_cannot_be_read_says_how_to_give_it(nodes_dir):
    node = inventory.Node("cp3", "127.0.0.1", ("node",), port=1)
    with pytest.raises(states.PhaseFailed) as err:
        states._read_host_keys("cp3", node)
    assert str(err.value).startswith("node cp3: ssh-keyscan read no host key from 127.0.0.1:1 (")
    assert "declare the node again with host_key='ssh-ed25519 AAAA...'" in str(err.value)


def test_applied_refuses_an_unknown_scope(nodes_dir):
    ret = states.applied("Phase x", ["cp2"], "kubesalt-0.1.0", scope="everyone", phase="firewall")
    assert ret["result"] is False
    assert ret["comment"] == "phase firewall: scope = 'everyone': use node or others"


def test_state_summary_lists_failed_and_changed_states():
    result = {
        "a": {"__id__": "Write x", "result": True, "changes": {"diff": "..."}},
        "b": {"__id__": "Run y", "result": False, "changes": {}, "comment": "boom"},
        "c": {"__id__": "Keep z", "result": True, "changes": {}},
    }
    assert states._state_summary("cp2", result, "state.sls x") == (["Write x"], ["Run y: boom"])
    with pytest.raises(states.PhaseFailed, match="state.sls x on cp2 did not render"):
        states._state_summary("cp2", ["Rendering SLS failed"], "state.sls x")


def test_node_declared_checks_every_node_and_names_each_failure(nodes_dir):
    node = inventory.Node("cp3", "127.0.0.1", ("node",), port=2)
    (nodes_dir / "cp3.yaml").write_text(yaml.safe_dump(node.to_document()))
    ret = states.node_declared("Phase preflight", ["cp2", "cp3"], wait=0)
    assert ret["result"] is False
    assert "cp2: node cp2: SSH port 127.0.0.1:1 did not answer within 0s" in ret["comment"]
    assert "cp3: node cp3: SSH port 127.0.0.1:2 did not answer within 0s" in ret["comment"]


class FakeClient:
    """LocalClient.cmd answers as a master gives them: full returns for the minions that
    answered; a silent minion is missing."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def cmd(self, tgt, fun, arg=(), kwarg=None, timeout=None, tgt_type="glob", full_return=False):
        self.calls.append((tgt, fun, tgt_type))
        return {m: a for m, a in self.answers.items() if m in tgt}


def test_states_run_on_all_nodes_in_one_job_and_every_failure_is_named(monkeypatch):
    ok = {"ret": {"file_|-a": {"__id__": "Write a", "result": True, "changes": {"x": 1}}},
          "retcode": 0}  # fmt: skip
    bad = {"ret": {"file_|-b": {"__id__": "Write b", "result": False, "changes": {},
                                "comment": "disk full"}}, "retcode": 2}  # fmt: skip
    client = FakeClient({"cp2": ok, "cp3": bad})
    monkeypatch.setattr(states, "_client", lambda: client)
    assert states._apply(["cp2"], ["kubesalt.pki"], "kubesalt-0.1.0", 60) == {"cp2": ["Write a"]}
    with pytest.raises(states.PhaseFailed) as err:
        states._apply(["cp2", "cp3", "worker1"], ["kubesalt.pki"], "kubesalt-0.1.0", 60)
    assert str(err.value) == (
        "state.sls kubesalt.pki on worker1: no answer within 60s; check that salt-minion runs "
        "there (salt -L worker1 test.ping)"
    )
    with pytest.raises(
        states.PhaseFailed,
        match=r"state.sls kubesalt.pki on cp3: 1 state\(s\) failed: Write b: disk full",
    ):
        states._apply(["cp2", "cp3"], ["kubesalt.pki"], "kubesalt-0.1.0", 60)
    assert client.calls[-1] == (["cp2", "cp3"], "state.sls", "list")


def test_each_runs_in_parallel_and_collects_every_failure():
    import threading

    barrier = threading.Barrier(3, timeout=5)  # would time out if run one after the other

    def action(node):
        barrier.wait()
        if node != "cp2":
            raise states.PhaseFailed(f"broke on {node}")
        return node.upper()

    with pytest.raises(states.PhaseFailed) as err:
        states._each(["cp2", "cp3", "worker1"], action)
    assert str(err.value) == "cp3: broke on cp3 | worker1: broke on worker1"


def test_etcd_joins_one_node_after_the_other_and_says_which_joined(monkeypatch):
    order = []

    def join(node, member, saltenv, timeout):
        order.append(node)
        if node == "etcd4":
            raise states.PhaseFailed("add etcd4 as an etcd learner on bootstrap failed: boom")
        return f"https://{node}:2380", {"learner": node}

    monkeypatch.setattr(states, "_join_etcd", join)
    states.__opts__ = {"test": False}
    ret = states.etcd_joined("Phase etcd", ["cp2", "cp3", "etcd4", "cp5"], "bootstrap", "s")
    assert order == ["cp2", "cp3", "etcd4"]
    assert ret["result"] is False
    assert ret["comment"] == (
        "phase etcd: add etcd4 as an etcd learner on bootstrap failed: boom (joined before the "
        "failure: cp2 (https://cp2:2380), cp3 (https://cp3:2380))"
    )


def ca_answers(monkeypatch, answers):
    """The CA minion answers kubesalt_kubectl calls with `answers[function]`."""
    calls = []

    class Client:
        def cmd(
            self, tgt, fun, arg=(), kwarg=None, timeout=None, tgt_type="glob", full_return=False
        ):
            calls.append((tgt, fun, list(arg), kwarg))
            answer = answers[fun]
            if isinstance(answer, Exception):
                return {"bootstrap": {"ret": f"ERROR: {answer}", "retcode": 1}}
            return {"bootstrap": {"ret": answer, "retcode": 0}}

    monkeypatch.setattr(states, "_client", Client)
    states.__opts__ = {"test": False}
    return calls


def test_node_labelled_reports_only_the_labels_added(monkeypatch):
    calls = ca_answers(monkeypatch, {"kubesalt_kubectl.label_node": {
        "changed": True, "added": ["node-role.kubernetes.io/etcd"], "labels": []}})  # fmt: skip
    roles = {"cp2": ["control-plane", "etcd"]}
    ret = states.node_labelled("Phase addons", ["cp2"], "bootstrap", roles)
    assert ret["changes"] == {"cp2": ["node-role.kubernetes.io/etcd"]}
    assert calls == [(["bootstrap"], "kubesalt_kubectl.label_node", ["cp2", roles["cp2"]], {})]
    calls = ca_answers(monkeypatch, {"kubesalt_kubectl.label_node": {"changed": False}})
    again = states.node_labelled("Phase addons", ["cp2"], "bootstrap", roles)
    assert (again["result"], again["changes"]) == (True, {})
    assert again["comment"] == (
        "phase addons: the Node objects of cp2 are in the correct state (labelled)"
    )


def test_node_drained_names_the_phase_and_what_is_left_unchanged(monkeypatch):
    error = "KubectlError: kubectl drain cp3 failed with exit code 1: ... PodDisruptionBudget"
    ca_answers(monkeypatch, {"kubesalt_kubectl.drain": RuntimeError(error)})
    ret = states.node_drained("Phase drain", "cp3", "bootstrap", timeout=10)
    assert ret["result"] is False
    assert ret["comment"] == (
        f"phase drain: drain the Node object cp3 on bootstrap failed: ERROR: {error}; nothing "
        "else was changed"
    )
    ca_answers(monkeypatch, {"kubesalt_kubectl.drain": {
        "changed": True, "cordoned": True, "evicted": ["default/web-1"], "comment": "drained"}})  # fmt: skip
    ok = states.node_drained("Phase drain", "cp3", "bootstrap")
    assert ok["changes"] == {"cordoned": True, "evicted": ["default/web-1"]}


def test_node_deleted_twice(monkeypatch):
    calls = ca_answers(monkeypatch, {"kubesalt_kubectl.delete_node": {"changed": True,
                                                                       "comment": "deleted"}})  # fmt: skip
    assert states.node_deleted("Phase delete-node", "cp3", "bootstrap")["changes"] == {
        "deleted": "cp3"
    }
    assert calls[0][3] == {"timeout": 60}
    ca_answers(monkeypatch, {"kubesalt_kubectl.delete_node": {"changed": False, "comment": "none"}})
    assert states.node_deleted("Phase delete-node", "cp3", "bootstrap")["changes"] == {}


def test_the_orchestration_lock_state(monkeypatch, tmp_path):
    from kubesalt import lock

    monkeypatch.setattr(lock, "LOCK_FILE", str(tmp_path / "orchestrate.lock"))
    ret = states.locked("Phase preflight", "deploy_node", ["cp2", "cp3"])
    assert (ret["result"], ret["changes"]) == (True, {})
    assert ret["comment"] == (
        f"phase preflight: no other orchestration runs; deploy_node cp2, cp3 holds {lock.LOCK_FILE}"
    )
    assert states.unlocked("end")["comment"] == f"{lock.LOCK_FILE} released"
    assert states.unlocked("end")["comment"] == "this run held no orchestration lock"
