"""The addons phase (kubesalt.orchestrate.addonsteps) and the addons orchestration against
the fake cluster: what is applied with which kubeconfig, the wait for kubelets to register
their Nodes, the rollout wait, the dry run and the errors."""

import pytest

from kubesalt.orchestrate import options
from tests.unit.orchestrate.fakes import (
    APPLY_ADMIN,
    APPLY_SUPER_ADMIN,
    ROLLOUT,
    SALTENV,
    Cluster,
    FakeBackend,
)
from tests.unit.orchestrate.test_orchestrate_engine import CONFIG, THREE, run

NODE_PATCH = "bootstrap kubesalt_cluster.apply Node"


@pytest.fixture
def deployed(tmp_path):
    """Every node deployed, no API object applied yet."""
    return FakeBackend(Cluster(deployed=("bootstrap", *THREE)), tmp_path)


def test_the_addons_orchestration_waits_for_the_api_then_applies_and_rolls_out(deployed):
    report = run(deployed, "addons")
    assert report.ok, report.error
    assert deployed.calls == [
        "bootstrap test.ping",
        "bootstrap grains.get kubesalt",
        "GET https://198.51.100.10:6443/readyz",
        APPLY_SUPER_ADMIN,
        APPLY_ADMIN,
        ROLLOUT,
    ]
    cluster = deployed.cluster
    assert ("ClusterRoleBinding", "", "kubeadm:cluster-admins") in cluster.api
    assert ("Service", "kube-system", "kube-dns") in cluster.api
    # mark-control-plane on every control-plane node, whether in the run or not
    for node in ("bootstrap", "cp2", "cp3"):
        assert cluster.node_objects[node]["node-role.kubernetes.io/control-plane"] == ""
        assert cluster.node_objects[node][
            "node.kubernetes.io/exclude-from-external-load-balancers"] == ""  # fmt: skip
    assert "node-role.kubernetes.io/control-plane" not in cluster.node_objects["worker1"]
    deployed.calls.clear()
    again = run(deployed, "addons")
    assert (again.ok, again.changes) == (True, {})
    assert "addons: no changes" in again.comment()


def test_only_the_cluster_admins_binding_is_applied_with_super_admin_conf(deployed):
    run(deployed, "addons")
    cluster = deployed.cluster
    first = cluster.applied_with.index("admin.conf")
    assert cluster.applied_with[:first] == ["/etc/kubernetes/super-admin.conf"]
    assert set(cluster.applied_with[first:]) == {"admin.conf"}


def test_a_node_in_the_run_is_waited_for_until_its_kubelet_registers(deployed):
    run(deployed, "addons")
    cluster = deployed.cluster
    labels = cluster.node_objects.pop("worker1")
    answers = iter([False, False, True])
    original = cluster._kubesalt_cluster_apply

    def register_on_the_third_patch(node, objects, test=False, kubeconfig=None):
        if [o["kind"] for o in objects] == ["Node"] and next(answers):
            cluster.node_objects["worker1"] = {}
        return original(node, objects, test, kubeconfig)

    cluster._kubesalt_cluster_apply = register_on_the_third_patch
    deployed.calls.clear()
    report = run(deployed, "deploy_node", node="worker1")
    assert report.ok, report.error
    start = deployed.calls.index(APPLY_ADMIN)
    addons = deployed.calls[start : deployed.calls.index(ROLLOUT) + 1]
    assert addons == [APPLY_ADMIN, NODE_PATCH, NODE_PATCH, NODE_PATCH, ROLLOUT]
    assert cluster.node_objects["worker1"] == labels
    assert report.changes["addons"] == {"worker1": {"node": "Node object configured"}}


def test_a_kubelet_that_never_registers_fails_the_phase_naming_the_node(deployed):
    run(deployed, "addons")
    deployed.cluster.node_objects.pop("worker1")
    deployed.calls.clear()
    report = run(deployed, "deploy_node", node="worker1")
    assert not report.ok
    assert report.error == (
        "phase addons on worker1: the kubelet of worker1 did not register its Node within "
        "300s, so its labels and taint are not applied; check the kubelet there (systemctl "
        "status kubelet, journalctl -u kubelet), then run deploy_node again"
    )
    assert ROLLOUT not in deployed.calls


def test_an_unregistered_node_outside_the_run_is_noted_not_waited_for(deployed):
    deployed.cluster.node_objects.pop("cp3")
    report = run(deployed, "deploy_node", node="worker1")
    assert report.ok, report.error
    assert NODE_PATCH not in deployed.calls
    assert (
        "Node(s) cp3: the kubelet has not registered; deploy_node of the node labels and taints it"
    ) in report.comment()


def test_a_dry_run_sends_every_object_as_a_dry_run_and_stores_nothing(deployed):
    deployed.cluster.node_objects.pop("worker1")
    report = run(deployed, "deploy_node", test=True, node="worker1")
    assert report.ok, report.error
    assert deployed.cluster.api == {}
    addons = report.changes["addons"]
    assert addons["worker1"] == {
        "node": "Node object would be labelled (and tainted) once its kubelet registers"}  # fmt: skip
    assert "ConfigMap kube-system/kube-proxy: would be created" in addons["bootstrap"]["objects"]
    assert f"{APPLY_ADMIN} test=True" in deployed.calls
    assert NODE_PATCH not in deployed.calls  # a dry run waits for nothing


def test_the_rollout_is_waited_for_and_its_last_answer_named_when_it_never_completes(deployed):
    deployed.cluster.rollouts = [["DaemonSet kube-system/kube-router: 1 of 4 updated pods "
                                  "available"]] * 200  # fmt: skip
    report = run(deployed, "addons")
    assert not report.ok
    assert report.error.startswith(
        "phase addons: not rolled out within 600s: DaemonSet "
        "kube-system/kube-router: 1 of 4 updated pods available; see kubectl -n kube-system "
        "get pods -o wide"
    )
    assert 100 < deployed.calls.count(ROLLOUT) < 130  # every 5 s for 600 s


def test_a_rollout_that_completes_while_waited_for_passes(deployed):
    deployed.cluster.rollouts = [["Deployment kube-system/coredns: 0 of 2 available"]] * 3
    report = run(deployed, "addons")
    assert report.ok, report.error
    assert deployed.calls.count(ROLLOUT) == 4


def test_a_dry_run_notes_a_pending_rollout_without_waiting(deployed):
    run(deployed, "addons")
    deployed.cluster.rollouts = [["Deployment kube-system/coredns: 1 of 2 available"]] * 5
    deployed.calls.clear()
    report = run(deployed, "addons", test=True)
    assert (report.ok, report.changes) == (True, {})
    assert deployed.calls.count(ROLLOUT) == 1
    assert "rollout pending: Deployment kube-system/coredns: 1 of 2 available" in report.comment()


def test_without_a_configuration_the_phase_says_what_to_check(deployed):
    report = run(deployed, "addons", kubesalt={"ca": {"minion": "bootstrap"}},
                 skip_phases=["wait-control-plane"])  # fmt: skip
    assert not report.ok
    assert report.error == (
        "phase addons: the pillar has no kubesalt configuration: cannot "
        "render the cluster's objects; check /etc/kubesalt/bootstrap.yaml with "
        "kubesalt_config.validate"
    )
    assert not [c for c in deployed.calls if "kubesalt_cluster" in c]


def test_the_addons_orchestration_acts_on_the_ca_minion_and_never_shows_the_config():
    opts = options.from_pillar("addons", {"kubesalt": CONFIG}, SALTENV)
    assert opts.nodes == ("bootstrap",)
    assert "config" not in repr(opts)
    assert opts.config is CONFIG
