"""The orchestrations as data (tables) and their pillar (options): order, skip
validation, node names, timeouts."""

import pytest

from kubesalt.bootstrap import phases as bootstrap_phases
from kubesalt.orchestrate import OrchestrateError, options, tables

DEPLOY = [p.name for p in tables.DEPLOY_NODE]
CA = {"kubesalt": {"ca": {"minion": "bootstrap"}}}


def test_deploy_phases_in_order():
    assert DEPLOY == [
        "preflight", "minion", "key", "grains", "firewall", "certs", "control-plane", "kubelet",
        "etcd", "keepalived", "wait-control-plane", "addons", "highstate",
    ]  # fmt: skip


@pytest.mark.parametrize("orchestration", ["deploy_node", "restore"])
def test_the_kubelet_runs_on_etcd_nodes_before_their_member_joins(orchestration):
    """The etcd join writes the member's static pod, then waits for the learner to
    start before it promotes it: only a running kubelet starts it (kubeadm join's
    kubelet-start comes before control-plane-join's etcd member)."""
    names = [p.name for p in tables.phases_of(orchestration)]
    starts_kubelet = [
        p for p in tables.phases_of(orchestration)
        if (not p.roles or "etcd" in p.roles)
        and any("kubesalt.kubelet" in s.args.get("sls", ()) for s in p.steps)
    ]  # fmt: skip
    assert starts_kubelet, f"{orchestration}: no phase starts the kubelet of etcd nodes"
    assert names.index(starts_kubelet[0].name) < names.index("etcd")


def _steps(phases):
    """Every step in run order, those of nested phases (in_turn, together) included."""
    for phase in phases:
        for step in phase.steps:
            yield from _steps(step.args.get("phases", ()))
            yield step


STATE_RUNS = ("applied", "surveyed", "highstate", "etcd_joined")


@pytest.mark.parametrize("orchestration", ["bootstrap", "deploy_node", "restore", "upgrade",
                                           "downgrade"])  # fmt: skip
def test_what_brings_a_minion_or_a_salt_tree_syncs_before_its_first_state_run(orchestration):
    """Minions do not sync their loader modules at each highstate (autoload_dynamic_modules
    is off, kubesalt.bootstrap.services.minion_config): a new minion or a new Salt tree
    gets them from the orchestration that brings it, before any state renders."""
    kinds = [step.kind for step in _steps(tables.phases_of(orchestration))]
    first_state_run = min(kinds.index(kind) for kind in STATE_RUNS if kind in kinds)
    assert "synced" in kinds[:first_state_run]


def test_remove_phases_drain_first_and_end_with_peers():
    assert [p.name for p in tables.REMOVE_NODE] == [
        "preflight", "drain", "etcd", "cleanup", "delete-node", "minion", "key", "inventory",
        "peers",
    ]  # fmt: skip


def test_bootstrap_phases():
    assert [p.name for p in tables.BOOTSTRAP] == ["preflight", "key", "grains", "highstate"]


@pytest.mark.parametrize("orchestration", list(tables.ORCHESTRATIONS))
def test_every_table_is_well_formed(orchestration):
    from kubesalt.orchestrate.engine import KINDS

    phases = tables.phases_of(orchestration)
    names = [p.name for p in phases]
    assert len(names) == len(set(names))
    assert names[0] == "preflight"
    for phase in phases:
        for step in phase.steps:
            assert step.kind in KINDS, (phase.name, step.kind)
            assert isinstance(step.timeout, int) or step.timeout in options.TIMEOUTS


def test_a_step_with_an_unknown_target_is_refused():
    with pytest.raises(OrchestrateError, match="target 'everyone'"):
        tables.Step("applied", "everyone", "x")


def test_unknown_orchestration():
    with pytest.raises(OrchestrateError, match="valid: bootstrap, deploy_node, remove_node"):
        tables.phases_of("upgrade_node")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, []), ("", []), ([], []), ("kubelet, addons,", ["kubelet", "addons"]),
     (["kubelet", " addons "], ["kubelet", "addons"])],
)  # fmt: skip
def test_parse_skip(value, expected):
    assert options.parse_skip(value) == expected


def test_parse_skip_refuses_a_mapping():
    with pytest.raises(OrchestrateError, match=r"pillar skip_phases = \{'a': 1\}: give a list"):
        options.parse_skip({"a": 1})


def test_unknown_phase_is_refused_with_the_valid_names():
    with pytest.raises(OrchestrateError) as err:
        options.check_skip("deploy_node", ["kubelet", "kubelte"])
    assert str(err.value) == (
        "pillar skip_phases: invalid phase name(s) kubelte for deploy_node; valid phases: "
        + ", ".join(DEPLOY)
    )


@pytest.mark.parametrize("orchestration", list(tables.ORCHESTRATIONS))
def test_preflight_cannot_be_skipped(orchestration):
    with pytest.raises(OrchestrateError, match="preflight cannot be skipped"):
        options.check_skip(orchestration, "preflight")


def test_bootstrap_sh_and_the_orchestrations_share_the_name_check():
    assert bootstrap_phases.split_names(" a, b ,") == options.parse_skip(" a, b ,") == ["a", "b"]
    assert bootstrap_phases.unknown_names(["a", "x"], ["a", "b"]) == ["x"]


@pytest.mark.parametrize("pillar", [{}, {"node": ""}, {"node": 3}, None])
def test_node_pillar_is_required(pillar):
    with pytest.raises(OrchestrateError, match=r"pillar node = .*: give the node to act on"):
        options.check_nodes_pillar("deploy_node", pillar)


@pytest.mark.parametrize("name", ["cp*", "cp2,cp3", "cp[23]"])
def test_node_pillar_is_one_node(name):
    with pytest.raises(OrchestrateError, match="give node names, not a target expression"):
        options.check_nodes_pillar("remove_node", {"node": name})


def test_one_node_or_a_list_of_nodes():
    assert options.check_nodes_pillar("deploy_node", {"node": "cp2"}) == ["cp2"]
    pillar = {"nodes": ["cp3", "cp2", "worker1"]}
    assert options.check_nodes_pillar("deploy_node", pillar) == ["cp3", "cp2", "worker1"]


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
        options.check_nodes_pillar("deploy_node", pillar)


def test_remove_node_takes_one_node_at_a_time():
    with pytest.raises(OrchestrateError, match="remove_node acts on one node at a time"):
        options.check_nodes_pillar("remove_node", {"nodes": ["cp2", "cp3"]})


def test_options_from_the_pillar():
    pillar = {"node": "cp3", "force": True, "drain_timeout": 600, "skip_phases": "drain",
              "kubesalt": {"ca": {"minion": "bootstrap"}, "apiServer": {"port": 7443}}}  # fmt: skip
    opts = options.from_pillar("remove_node", pillar, "kubesalt-0.1.0")
    assert opts == options.Options(
        orchestration="remove_node", nodes=("cp3",), saltenv="kubesalt-0.1.0",
        ca_minion="bootstrap", skip=frozenset({"drain"}), drain_timeout=600, force=True,
        api_port=7443,
    )  # fmt: skip
    assert opts.label == "remove_node cp3"
    assert (opts.timeout, opts.state_timeout) == (120, 300)


@pytest.mark.parametrize(
    ("pillar", "message"),
    [
        ({"node": "cp2", "timeout": "soon"}, r"pillar timeout = 'soon': give a number of seconds"),
        ({"node": "cp2", "state_timeout": 0}, r"pillar state_timeout = 0: give a number"),
        ({"node": "cp2", "force": "yes"}, r"pillar force = 'yes': give true or false"),
    ],
)
def test_bad_options_name_the_key(pillar, message):
    with pytest.raises(OrchestrateError, match=message):
        options.from_pillar("deploy_node", {**pillar, **CA}, "s")


def test_without_the_ca_minion_the_configuration_is_named():
    with pytest.raises(OrchestrateError, match="pillar kubesalt:ca:minion is not set"):
        options.from_pillar("deploy_node", {"node": "cp2"}, "s")


def test_bootstrap_acts_on_the_minion_bootstrap_sh_gives_else_the_ca_minion():
    given = options.from_pillar("bootstrap", {"kubesalt_bootstrap": {"minion": "b1"}, **CA}, "s")
    assert given.nodes == ("b1",)
    assert options.from_pillar("bootstrap", CA, "s").nodes == ("bootstrap",)
    alone = options.from_pillar("bootstrap", {"kubesalt_bootstrap": {"minion": "b1"}}, "s")
    assert (alone.nodes, alone.ca_minion) == (("b1",), "b1")
    with pytest.raises(OrchestrateError, match="pillar kubesalt:ca:minion is not set"):
        options.from_pillar("bootstrap", {}, "s")


@pytest.mark.parametrize("name", ["../bootstrap", "CP2", "cp2."])
def test_a_node_name_that_breaks_the_node_name_rule_is_refused(name):
    with pytest.raises(OrchestrateError, match=f"pillar node: {name!r} is not a valid node name"):
        options.check_nodes_pillar("remove_node", {"node": name})


def test_without_a_configuration_the_api_port_is_unknown():
    assert (
        options.from_pillar("bootstrap", {"kubesalt_bootstrap": {"minion": "b1"}}, "s").api_port
        is None
    )
