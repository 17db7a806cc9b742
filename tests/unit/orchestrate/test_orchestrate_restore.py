"""A node that lost its etcd data rejoins: the bootstrap node restored from a backup
(orchestration restore), and a control-plane node whose etcd disk was replaced, deployed
again."""

import pytest

from tests.unit.orchestrate.fakes import IPS, Cluster, FakeBackend
from tests.unit.orchestrate.test_orchestrate_engine import THREE, run

BOOTSTRAP_PILLAR = {"minion": "bootstrap"}

RESTORE = [
    # key: already accepted (the backup restored it), the minion answers
    "bootstrap test.ping",
    "bootstrap saltutil.sync_all",
    # grains: the restored master's mine filled again
    "bootstrap test.ping", "bootstrap mine.update",
    "cp2,cp3,worker1 test.ping", "cp2,cp3,worker1 mine.update",
    "bootstrap saltutil.refresh_pillar",
    "bootstrap state.sls kubesalt.firewall",
    "bootstrap state.sls kubesalt.pki",
    # kubelet: it runs the etcd static pod the join writes
    "bootstrap state.sls kubesalt.containerd,kubesalt.kubelet",
    # etcd: the bootstrap node's own member is gone; cp2's answers
    "bootstrap kubesalt_etcd.health", "cp2,cp3 kubesalt_etcd.health",
    "cp2 kubesalt_etcd.members",
    "bootstrap grains.get kubesalt",
    "bootstrap file.directory_exists /var/lib/etcd/member",
    "cp2 kubesalt_etcd.health",
    "cp2 kubesalt_etcd.remove bootstrap",
    "cp2 kubesalt_etcd.wait_healthy",
    "cp2 kubesalt_etcd.add_learner bootstrap https://198.51.100.10:2380",
    "bootstrap grains.set kubesalt:etcd_initial_cluster",
    "bootstrap state.sls kubesalt.roles.etcd",
    "cp2 kubesalt_etcd.promote bootstrap",
    "cp2 kubesalt_etcd.wait_healthy",
    "bootstrap state.highstate",
]  # fmt: skip


@pytest.fixture
def restored(tmp_path):
    """Four deployed nodes; the bootstrap node's machine replaced and restored."""
    cluster = Cluster(deployed=("bootstrap", *THREE)).apply_addons()
    cluster.reinstall("bootstrap")
    return FakeBackend(cluster, tmp_path)


def test_the_restored_bootstrap_node_replaces_its_stale_member_and_joins(restored):
    report = run(restored, "restore", kubesalt_bootstrap=BOOTSTRAP_PILLAR)
    assert report.ok, report.error
    assert restored.calls == RESTORE
    cluster = restored.cluster
    assert [m["is_learner"] for m in cluster.members if m["name"] == "bootstrap"] == [False]
    assert cluster.grains["bootstrap"]["kubesalt:etcd_initial_cluster"] == [
        ["cp2", IPS["cp2"]], ["cp3", IPS["cp3"]], ["bootstrap", IPS["bootstrap"]]]  # fmt: skip
    etcd = report.changes["etcd"]["bootstrap"]
    assert (etcd["stale_member_removed"], etcd["promoted"]) == ("bootstrap", "bootstrap")


def test_a_dry_run_names_the_stale_member_and_changes_nothing(restored):
    before = [dict(m) for m in restored.cluster.members]
    report = run(restored, "restore", test=True, kubesalt_bootstrap=BOOTSTRAP_PILLAR)
    assert report.ok, report.error
    assert report.changes["etcd"] == {"bootstrap": {"etcd": (
        "stale: would remove-stale-member, wait-healthy, add-learner, record-initial-cluster, "
        "write-static-pod, promote, wait-healthy")}}  # fmt: skip
    assert restored.cluster.members == before
    assert not [c for c in restored.calls if c.endswith("mine.update")]


def test_a_second_restore_run_changes_nothing(restored):
    assert run(restored, "restore", kubesalt_bootstrap=BOOTSTRAP_PILLAR).ok
    restored.calls.clear()
    again = run(restored, "restore", kubesalt_bootstrap=BOOTSTRAP_PILLAR)
    assert (again.ok, again.changes) == (True, {})
    assert not [c for c in restored.calls if "remove" in c or "add_learner" in c]


def test_a_silent_minion_is_named_and_the_restore_goes_on(restored):
    restored.cluster.kill("worker1")
    report = run(restored, "restore", kubesalt_bootstrap=BOOTSTRAP_PILLAR)
    assert report.ok, report.error
    notes = " ".join(n for o in report.outcomes if o.name == "grains" for n in o.notes)
    assert "worker1 did not answer test.ping: their addresses are not in the mine" in notes


def test_a_member_without_data_that_answers_healthy_is_never_taken_for_stale(restored):
    """One missing directory is not enough to remove a voter: its health is asked too."""
    cluster = restored.cluster
    cluster.etcd_down.discard("bootstrap")
    report = run(restored, "restore", kubesalt_bootstrap=BOOTSTRAP_PILLAR)
    assert report.ok, report.error
    assert not [c for c in restored.calls if "remove" in c or "add_learner" in c]


def test_a_control_plane_node_that_lost_its_etcd_data_is_deployed_again(tmp_path):
    cluster = Cluster(deployed=("bootstrap", *THREE)).apply_addons()
    cluster.reinstall("cp3")  # its keys kept, its etcd data gone
    backend = FakeBackend(cluster, tmp_path)
    report = run(backend, "deploy_node", nodes=["cp3"])
    assert report.ok, report.error
    etcd_calls = [c for c in backend.calls if "kubesalt_etcd" in c]
    assert etcd_calls == [
        "bootstrap kubesalt_etcd.health", "bootstrap kubesalt_etcd.members",
        "bootstrap kubesalt_etcd.health", "bootstrap kubesalt_etcd.remove cp3",
        "bootstrap kubesalt_etcd.wait_healthy",
        "bootstrap kubesalt_etcd.add_learner cp3 https://198.51.100.12:2380",
        "bootstrap kubesalt_etcd.promote cp3", "bootstrap kubesalt_etcd.wait_healthy",
    ]  # fmt: skip
