"""The deploy_node and remove_node orchestrations as data (kubesalt.orchestrate)."""

import json

import pytest

from kubesalt import orchestrate
from kubesalt.orchestrate import OrchestrateError

DEPLOY = [p.name for p in orchestrate.DEPLOY_PHASES]
REMOVE = [p.name for p in orchestrate.REMOVE_PHASES]


def test_deploy_phases_in_order():
    assert DEPLOY == [
        "preflight", "minion", "key", "grains", "firewall", "certs", "etcd", "control-plane",
        "keepalived", "kubelet", "wait-control-plane", "addons", "highstate",
    ]  # fmt: skip


def test_remove_phases_drain_first_and_end_with_peers():
    assert REMOVE == [
        "preflight", "drain", "etcd", "cleanup", "delete-node", "minion", "key", "inventory",
        "peers",
    ]  # fmt: skip


@pytest.mark.parametrize("orchestration", ["deploy_node", "remove_node"])
def test_phase_names_are_unique(orchestration):
    names = [p.name for p in orchestrate.phases_of(orchestration)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("", []),
        ([], []),
        ("kubelet, addons,", ["kubelet", "addons"]),
        (["kubelet", " addons "], ["kubelet", "addons"]),
    ],
)
def test_parse_skip(value, expected):
    assert orchestrate.parse_skip(value) == expected


def test_parse_skip_refuses_a_mapping():
    with pytest.raises(OrchestrateError, match=r"pillar skip_phases = \{'a': 1\}: give a list"):
        orchestrate.parse_skip({"a": 1})


def test_unknown_phase_is_refused_with_the_valid_names():
    with pytest.raises(OrchestrateError) as err:
        orchestrate.check_skip("deploy_node", ["kubelet", "kubelte"])
    message = str(err.value)
    assert "invalid phase name(s) kubelte for deploy_node" in message
    assert "valid phases: " + ", ".join(DEPLOY) in message


def test_preflight_cannot_be_skipped():
    with pytest.raises(OrchestrateError, match="preflight cannot be skipped"):
        orchestrate.check_skip("remove_node", "preflight")


def test_unknown_orchestration():
    with pytest.raises(OrchestrateError, match="valid: deploy_node, remove_node"):
        orchestrate.phases_of("upgrade_node")


def test_plan_of_a_worker_skips_the_control_plane_phases_and_says_why():
    plan = {p["name"]: p for p in orchestrate.plan("deploy_node", {"w1": ["node"]}, ["addons"])}
    assert plan["minion"]["run"] and plan["kubelet"]["run"] and plan["firewall"]["run"]
    assert plan["minion"]["nodes"] == ["w1"]
    for name in ("etcd", "control-plane", "keepalived", "wait-control-plane"):
        assert not plan[name]["run"]
        assert plan[name]["nodes"] == []
        assert plan[name]["why"] == "not for this node (roles node)"
    assert plan["addons"]["why"] == "skipped (pillar skip_phases)"


def test_plan_of_a_control_plane_node_runs_everything_not_skipped():
    roles = {"cp2": ["control-plane", "etcd", "node"]}
    plan = orchestrate.plan("deploy_node", roles, ["kubelet", "wait-control-plane", "addons"])
    assert [p["name"] for p in plan if p["run"]] == [
        "preflight", "minion", "key", "grains", "firewall", "certs", "etcd", "control-plane",
        "keepalived", "highstate",
    ]  # fmt: skip


def test_plan_of_several_nodes_gives_each_phase_the_nodes_of_its_roles_in_order():
    roles = {
        "cp3": ["control-plane", "etcd", "node"],
        "worker1": ["node"],
        "etcd4": ["etcd"],
    }
    plan = {p["name"]: p for p in orchestrate.plan("deploy_node", roles, ["addons"])}
    assert plan["minion"]["nodes"] == ["cp3", "worker1", "etcd4"]
    assert plan["etcd"]["nodes"] == ["cp3", "etcd4"]
    assert plan["control-plane"]["nodes"] == ["cp3"]
    assert plan["keepalived"]["nodes"] == ["cp3"]
    assert plan["addons"] == {
        "name": "addons",
        "description": orchestrate.DEPLOY_PHASES[11].description,
        "nodes": [],
        "run": False,
        "why": "skipped (pillar skip_phases)",
    }


def test_plan_of_several_nodes_names_every_nodes_roles_when_a_phase_is_for_none():
    plan = {p["name"]: p for p in orchestrate.plan("deploy_node", {"w1": ["node"], "w2": []}, [])}
    assert plan["etcd"]["why"] == "not for these nodes (w1: node; w2: none)"


def test_plan_of_an_undeclared_node_runs_preflight_which_fails_there():
    plan = orchestrate.plan("deploy_node", {"cp9": []}, None)
    assert plan[0] == {
        "name": "preflight",
        "description": orchestrate.DEPLOY_PHASES[0].description,
        "nodes": ["cp9"],
        "run": True,
        "why": "",
    }


@pytest.mark.parametrize("pillar", [{}, {"node": ""}, {"node": 3}, None])
def test_node_pillar_is_required(pillar):
    with pytest.raises(OrchestrateError, match=r"pillar node = .*: give the node to act on"):
        orchestrate.check_nodes_pillar("deploy_node", pillar)


@pytest.mark.parametrize("name", ["cp*", "cp2,cp3", "cp[23]"])
def test_node_pillar_is_one_node(name):
    with pytest.raises(OrchestrateError, match="give node names, not a target expression"):
        orchestrate.check_nodes_pillar("remove_node", {"node": name})


def test_one_node_or_a_list_of_nodes():
    assert orchestrate.check_nodes_pillar("deploy_node", {"node": "cp2"}) == ["cp2"]
    pillar = {"nodes": ["cp3", "cp2", "worker1"]}
    assert orchestrate.check_nodes_pillar("deploy_node", pillar) == ["cp3", "cp2", "worker1"]


@pytest.mark.parametrize(
    ("pillar", "message"),
    [
        ({"nodes": []}, r"pillar nodes = \[\]: give a list of node names"),
        ({"nodes": "cp2,cp3"}, r"pillar nodes = 'cp2,cp3': give a list of node names"),
        ({"nodes": ["cp2", ""]}, r"pillar nodes: '' is not a node name"),
        ({"nodes": ["cp2", "w*"]}, r"pillar nodes: 'w\*': give node names, not a target"),
        ({"nodes": ["cp2", "cp3", "cp2"]}, r"pillar nodes: cp2 given more than once"),
        ({"nodes": ["cp2"], "node": "cp3"}, r"pillar node and nodes are both given"),
    ],
)
def test_a_bad_list_of_nodes_is_refused_naming_the_key(pillar, message):
    with pytest.raises(OrchestrateError, match=message):
        orchestrate.check_nodes_pillar("deploy_node", pillar)


def test_remove_node_takes_one_node_at_a_time():
    with pytest.raises(OrchestrateError, match="remove_node acts on one node at a time"):
        orchestrate.check_nodes_pillar("remove_node", {"nodes": ["cp2", "cp3"]})


def test_parse_initial_cluster():
    text = "bootstrap=https://198.51.100.10:2380,cp2=https://198.51.100.11:2380"
    assert orchestrate.parse_initial_cluster(text) == [
        ["bootstrap", "198.51.100.10"],
        ["cp2", "198.51.100.11"],
    ]


def test_parse_initial_cluster_ipv6():
    assert orchestrate.parse_initial_cluster("a=https://[fd00::10]:2380") == [["a", "fd00::10"]]


@pytest.mark.parametrize("text", ["", "cp2", "cp2=https://cp2.example:2380"])
def test_parse_initial_cluster_refuses_garbage(text):
    with pytest.raises(OrchestrateError):
        orchestrate.parse_initial_cluster(text)


def test_urls():
    assert orchestrate.etcd_peer_url("fd00::1") == "https://[fd00::1]:2380"
    assert orchestrate.wheel_url("198.51.100.10", "kubesalt-0.1.0") == (
        "https://198.51.100.10:8443/kubesalt-0.1.0/wheels/"
    )
    assert orchestrate.apt_url("198.51.100.10", "kubesalt-0.1.0") == (
        "https://198.51.100.10:8443/kubesalt-0.1.0/deb"
    )


def test_salt_ssh_pillar_is_one_json_argument():
    arg = orchestrate.salt_ssh_pillar({"a": "line1\nline2"})
    assert arg.startswith("pillar=")
    assert json.loads(arg[len("pillar=") :]) == {"kubesalt_deploy": {"a": "line1\nline2"}}


def test_salt_ssh_reply_is_the_nodes_json_line_whatever_comes_before():
    out = 'deploying thin\n{"cp3": {"x": 1}}\n{"cp2": {"stdout": "ok"}}\n'
    assert orchestrate.salt_ssh_reply(out, "cp2") == {"stdout": "ok"}
    assert orchestrate.salt_ssh_reply(out, "cp3") == {"x": 1}
    assert orchestrate.salt_ssh_reply("{not json\n", "cp2") is None
    raced = (
        "/etc/salt/pki/master/ssh/salt-ssh.rsa already exists.\nOverwrite (y/n)? " + '{"cp2": 1}'
    )
    assert orchestrate.salt_ssh_reply(raced, "cp2") == 1
    assert orchestrate.salt_ssh_reply("", "cp2") is None
