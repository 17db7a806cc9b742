"""The kubesalt_orchestrate loader modules (the plan module and the master-side phase
states), with Salt's loader dunders given directly: what they decide without a master."""

import socket

import pytest
import yaml
from salt.exceptions import CommandExecutionError

from kubesalt import inventory
from tests.unit.loader import load

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
    assert plan["node"] == "worker1"
    assert plan["roles"] == ["node"]
    assert plan["force"] is False
    assert "etcd: not for this node (roles node)" in plan["skipped"]
    assert "addons: skipped (pillar skip_phases)" in plan["skipped"]


def test_plan_refuses_an_unknown_phase_naming_the_valid_ones(nodes_dir):
    with pytest.raises(CommandExecutionError, match=r"OrchestrateError: .*valid phases: preflight"):
        plan_module.plan("deploy_node", {"node": "cp2", "skip_phases": "kubelte"})


def test_plan_without_node(nodes_dir):
    with pytest.raises(CommandExecutionError, match="pillar node = None: give the node to act on"):
        plan_module.plan("remove_node", {})


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
    ret = states.node_declared("Phase preflight", "cp9")
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
        node = inventory.Node("cp3", "127.0.0.1", ("node",), port=port)
        (nodes_dir / "cp3.yaml").write_text(yaml.safe_dump(node.to_document()))
        ret = states.node_declared("Phase preflight", "cp3")
    assert ret["result"] is True
    assert ret["changes"] == {}
    assert ret["comment"] == (
        f"phase preflight: node cp3 is declared (roles node) and its SSH port 127.0.0.1:{port} answers"
    )


def test_applied_refuses_an_unknown_scope(nodes_dir):
    ret = states.applied("Phase x", "cp2", "kubesalt-0.1.0", scope="everyone", phase="firewall")
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
