"""remove_node of a node that does not answer, and a removal finished by a second run,
against the fake cluster: the full, ordered sequence of backend calls (nothing on the dead
node, the etcd member removed through a healthy member, the other nodes' peers updated),
the refusal without force, the quorum rules that force never overrides, the dry run of each.
Removing any step of the table, or a step's `needs`, changes a sequence or an outcome here.
"""

import pytest

from kubesalt import inventory
from kubesalt.orchestrate import OrchestrateError, engine, options, tables
from tests.unit.orchestrate.fakes import Cluster, FakeBackend
from tests.unit.orchestrate.test_orchestrate_engine import CONFIG, run

DEAD_SSH = "connect 198.51.100.12:22"
# What the other nodes still list of cp3 until the peers phase.
PEER_DRIFT = {
    "bootstrap": {"kubesalt.firewall": ["Drop cp3"], "kubesalt.keepalived": ["Drop peer cp3"]},
    "cp2": {"kubesalt.firewall": ["Drop cp3"], "kubesalt.keepalived": ["Drop peer cp3"]},
    "worker1": {"kubesalt.firewall": ["Drop cp3"]},
}
PEERS_UPDATED = {
    "bootstrap": {"states": ["Drop peer cp3", "Drop cp3"]},
    "cp2": {"states": ["Drop peer cp3", "Drop cp3"]},
    "worker1": {"states": ["Drop cp3"]},
}
PEERS = [
    "bootstrap saltutil.refresh_pillar",
    "bootstrap,cp2 state.sls kubesalt.keepalived",
    "bootstrap,cp2,worker1 state.sls kubesalt.firewall",
]
REFUSED = (
    "phase preflight on cp3: node cp3: SSH port 198.51.100.12:22 did not answer within 10s "
    "(No route to host). remove_node cleans the node through its minion and salt-ssh: start "
    "it, check sshd and the address declared (salt-run kubesalt_inventory.list_nodes); if the "
    "machine is gone for good, run again with pillar force: true (its etcd member, Node "
    "object, minion key and inventory entry are then removed without it, and what stays on "
    "its disk is listed)"
)
LEFT_ON_CP3 = (
    "not cleaned on the node cp3: kubesalt's files (its static pods and /var/lib/etcd, the "
    "certificates and keys under /etc/kubernetes/pki, the kubeconfigs, the kubelet and "
    "containerd, keepalived, the firewalld zone): if it starts again as it is, its kubelet "
    "registers its Node again and its keepalived may claim the VIP; salt-minion, enabled, "
    "with its configuration and keys under /etc/salt"
)


@pytest.fixture
def cluster():
    """Four deployed nodes whose API objects were applied; cp3 powered off."""
    cluster = Cluster(deployed=("bootstrap", "cp2", "cp3", "worker1")).apply_addons()
    cluster.kill("cp3")
    for node, drift in PEER_DRIFT.items():
        cluster.drift[node] = {sls: list(ids) for sls, ids in drift.items()}
    return cluster


@pytest.fixture
def backend(cluster, tmp_path):
    return FakeBackend(cluster, tmp_path)


def after_preflight(calls):
    """The calls after preflight's SSH port probes (retried every second for 10 s)."""
    probes = 0
    while probes < len(calls) and calls[probes] == DEAD_SSH:
        probes += 1
    assert probes > 5, calls  # the port was asked again and again, within its bound
    return calls[probes:]


def member_names(cluster):
    return [m["name"] for m in cluster.members]


# -- a dead node, with force -------------------------------------------------------------


def test_a_dead_node_with_force_is_removed_without_it(backend, cluster):
    report = run(backend, "remove_node", node="cp3", force=True)
    assert report.ok, report.error
    assert after_preflight(backend.calls) == [
        # drain: not for a dead node; etcd: through the CA minion's healthy member
        "bootstrap kubesalt_etcd.health",
        "bootstrap kubesalt_etcd.remove cp3",
        # cleanup: nothing on cp3; its Node object goes
        "bootstrap kubesalt_kubectl.delete_node cp3",
        # minion: no salt-ssh to cp3; key and inventory on the master
        "keys.delete cp3",
        "remove /etc/kubesalt/minion-keys/cp3.pub",
        *PEERS,
    ]
    assert report.changes == {
        "etcd": {"cp3": {"removed": {"name": "cp3"}}},
        "delete-node": {"cp3": {"deleted": "cp3"}},
        "key": {"cp3": {"key": "deleted (minions)"}},
        "inventory": {"cp3": {"inventory": "forgotten"}},
        "peers": PEERS_UPDATED,
    }
    assert member_names(cluster) == ["bootstrap", "cp2"]
    assert "cp3" not in cluster.node_objects and "cp3" not in cluster.minions
    assert "cp3" not in inventory.load(backend.inventory_dir)
    comment = report.comment()
    assert comment.splitlines()[-1] == LEFT_ON_CP3
    assert (
        "preflight: no changes (12.5s); node cp3: SSH port 198.51.100.12:22 did not answer "
        "within 10s (No route to host): taken as gone (pillar force): the steps that need it "
        "are skipped, what they leave on its disk is listed at the end; wipe the machine "
        "before it is started again on this network"
    ) in comment
    assert "drain: no changes (0.5s); drain the Node object: not on cp3 (gone)" in comment
    assert "cleanup: no changes (0.5s); the absent states: not on cp3 (gone)" in comment
    assert "minion: no changes (0.5s); stop salt-minion: not on cp3 (gone)" in comment


def test_a_dry_run_of_a_dead_node_with_force_changes_nothing(backend, cluster):
    report = run(backend, "remove_node", test=True, node="cp3", force=True)
    assert report.ok, report.error
    assert after_preflight(backend.calls) == [
        "bootstrap kubesalt_etcd.health",
        "bootstrap kubesalt_etcd.members",
        "bootstrap kubesalt_etcd.health",  # every voter's: the quorum rules, decided here
        "bootstrap cmd.run_all kubectl get node cp3",
        "bootstrap saltutil.refresh_pillar",
        "bootstrap,cp2 state.sls kubesalt.keepalived test=True",
        "bootstrap,cp2,worker1 state.sls kubesalt.firewall test=True",
    ]
    assert report.changes["etcd"]["cp3"]["etcd"].endswith(") (through bootstrap)")
    assert set(report.changes) == {"etcd", "delete-node", "key", "inventory", "peers"}
    assert report.comment().splitlines()[-1] == LEFT_ON_CP3.replace(
        "not cleaned", "would not be cleaned"
    )
    assert member_names(cluster) == ["bootstrap", "cp2", "cp3"]
    assert "cp3" in inventory.load(backend.inventory_dir) and "cp3" in cluster.minions


# -- a dead node, without force --------------------------------------------------------


@pytest.mark.parametrize("test", [False, True])
def test_a_dead_node_without_force_is_refused_before_any_change(backend, cluster, test):
    report = run(backend, "remove_node", test=test, node="cp3")
    assert report.error == REFUSED
    assert after_preflight(backend.calls) == []
    assert member_names(cluster) == ["bootstrap", "cp2", "cp3"]
    assert "cp3" in inventory.load(backend.inventory_dir) and "cp3" in cluster.minions


def test_a_silent_minion_without_force_is_refused_before_any_change(tmp_path):
    cluster = Cluster(deployed=("bootstrap", "cp2", "cp3", "worker1"))
    cluster.minions["cp3"]["running"] = False
    backend = FakeBackend(cluster, tmp_path)
    report = run(backend, "remove_node", node="cp3")
    assert report.error == (
        "phase preflight on cp3: node cp3: its minion did not answer test.ping within 20s. "
        "remove_node applies the cleanup states through it: start it (systemctl restart "
        "salt-minion on the node; journalctl -u salt-minion); if the machine is gone for good, "
        "run again with pillar force: true (its etcd member, Node object, minion key and "
        "inventory entry are then removed without it, and what stays on its disk is listed)"
    )
    assert set(backend.calls) == {DEAD_SSH, "cp3 test.ping"}
    assert backend.calls.count("cp3 test.ping") > 3  # asked again, within its bound


def test_a_silent_minion_with_force_leaves_the_cleanup_out_and_stops_it_over_ssh(tmp_path):
    cluster = Cluster(deployed=("bootstrap", "cp2", "cp3", "worker1")).apply_addons()
    cluster.minions["cp3"]["running"] = False
    backend = FakeBackend(cluster, tmp_path)
    report = run(backend, "remove_node", node="cp3", force=True)
    assert report.ok, report.error
    calls = [c for c in backend.calls if c != "cp3 test.ping"]
    assert calls == [
        "connect 198.51.100.12:22",
        "bootstrap kubesalt_kubectl.drain cp3",  # the machine is up: its pods are evicted
        "bootstrap kubesalt_etcd.health",
        "bootstrap kubesalt_etcd.remove cp3",
        "bootstrap kubesalt_kubectl.delete_node cp3",
        "salt-ssh cp3 -r stop salt-minion",
        "keys.delete cp3",
        "remove /etc/kubesalt/minion-keys/cp3.pub",
        *PEERS,
    ]
    assert "the absent states: not on cp3 (gone: its minion is silent)" in report.comment()
    assert report.left_behind == {"cp3": [tables.LEFT_BY_CLEANUP]}


# -- etcd: through a healthy member; the quorum rules hold with force --------------------


def test_the_member_is_removed_through_another_member_when_the_ca_member_is_down(tmp_path):
    nodes = ("bootstrap", "cp2", "cp3", "cp4", "worker1")
    cluster = Cluster(deployed=nodes).apply_addons()
    cluster.etcd_down.add("bootstrap")  # 3 of 4 voters healthy; 2 of 3 left
    backend = FakeBackend(cluster, tmp_path, declared=nodes)
    report = run(backend, "remove_node", node="cp3", skip_phases=["drain", "delete-node"])
    assert report.ok, report.error
    etcd = backend.calls[backend.calls.index("bootstrap kubesalt_etcd.health") :][:3]
    assert etcd == [
        "bootstrap kubesalt_etcd.health",
        "cp2,cp4 kubesalt_etcd.health",
        "cp2 kubesalt_etcd.remove cp3",
    ]
    assert member_names(cluster) == ["bootstrap", "cp2", "cp4"]


def test_no_healthy_member_is_named_with_each_answer(backend, cluster):
    cluster.etcd_down.update({"bootstrap", "cp2"})
    report = run(backend, "remove_node", node="cp3", force=True)
    assert report.error == (
        "phase etcd: no etcd member answers healthy through its own minion (bootstrap: "
        "https://198.51.100.10:2379 context deadline exceeded; cp2: "
        "https://198.51.100.11:2379 context deadline exceeded): etcd cannot change its "
        "membership now. Check etcd on those nodes (salt <node> kubesalt_etcd.health "
        "cluster=True, the etcd static pod's log); if the cluster lost its quorum for good, "
        "restore etcd from a snapshot"
    )
    assert member_names(cluster) == ["bootstrap", "cp2", "cp3"]


QUORUM_HINT = (
    "remove_node never overrides the quorum rules (pillar force means the node is gone: "
    "removing a gone member of three leaves two healthy of two); if the health seen is "
    "wrong (a member that votes while its client port is filtered), remove the member by "
    "hand, kubesalt_etcd.remove NODE force=True on an etcd node, then run remove_node again"
)


@pytest.mark.parametrize("test", [False, True])
def test_force_never_removes_a_member_the_quorum_needs(backend, cluster, test):
    """cp3 is dead: removing the healthy cp2 would leave bootstrap alone of two voters."""
    report = run(backend, "remove_node", test=test, node="cp2", force=True,
                 skip_phases=["drain"])  # fmt: skip
    refusal = "nothing was changed" if not test else "the run would refuse it"
    prefix = (
        "phase etcd on cp2: remove the etcd member cp2 on bootstrap failed: ERROR: " if not test
        else "phase etcd on cp2: "
    )  # fmt: skip
    assert report.error.startswith(prefix + "QuorumError: refusing to remove etcd member cp2 ("), (
        report.error
    )
    assert (
        "the 2 voting members left would have 1 healthy and need 2 for quorum (unhealthy: "
        "cp3 (" in report.error
    )
    assert report.error.endswith(f"; {refusal}. {QUORUM_HINT}")
    assert member_names(cluster) == ["bootstrap", "cp2", "cp3"]
    assert [o.name for o in report.outcomes][-1] == "etcd"  # nothing after it ran


def test_force_on_a_dead_node_refuses_when_the_cluster_has_no_quorum(backend, cluster):
    cluster.etcd_down.add("cp2")  # with the dead cp3: 1 of 3 voters healthy
    report = run(backend, "remove_node", node="cp3", force=True)
    assert "failed: ERROR: QuorumError: refusing to remove etcd member cp3 (" in report.error
    assert "the cluster has no quorum now, 1 of 3 voting members healthy and 2 needed" in (
        report.error
    )
    assert "cp3" in inventory.load(backend.inventory_dir) and "cp3" in cluster.minions


# -- a removal that stopped halfway ------------------------------------------------------


def fail_peers(cluster):
    cluster.failures[("cp2", "kubesalt.firewall")] = "firewalld is not running"


def test_a_removal_stopped_in_peers_finishes_when_run_again(backend, cluster):
    fail_peers(cluster)
    first = run(backend, "remove_node", node="cp3", force=True)
    assert first.error.startswith("phase peers on cp2: state.sls kubesalt.firewall on cp2: ")
    assert first.comment().splitlines()[-1] == LEFT_ON_CP3  # said even when a phase failed
    assert "cp3" not in inventory.load(backend.inventory_dir)  # forgotten before peers
    cluster.failures.clear()
    backend.calls.clear()
    # the node is no longer declared and no longer answers: no force needed to finish
    again = run(backend, "remove_node", node="cp3")
    assert again.ok, again.error
    assert backend.calls == [
        "bootstrap kubesalt_etcd.health",
        "bootstrap kubesalt_etcd.remove cp3",
        "bootstrap kubesalt_kubectl.delete_node cp3",
        *PEERS,
    ]
    assert again.changes == {"peers": {"cp2": {"states": ["Drop cp3"]}}}
    assert (
        "preflight: no changes (1.5s); cp3 is not declared: finishing its removal (what is "
        "left of it in etcd, the API, the key store and the other nodes' peers; nothing runs "
        "on the node)"
    ) in again.comment()
    assert "not on cp3" not in again.comment()  # said once, by preflight
    backend.calls.clear()
    assert run(backend, "remove_node", node="cp3").changes == {}  # done: nothing left


def test_a_dry_run_of_a_removal_to_finish_changes_nothing(backend, cluster):
    fail_peers(cluster)
    run(backend, "remove_node", node="cp3", force=True)
    cluster.failures.clear()
    backend.calls.clear()
    report = run(backend, "remove_node", test=True, node="cp3")
    assert report.ok, report.error
    assert backend.calls == [
        "bootstrap kubesalt_etcd.health",
        "bootstrap kubesalt_etcd.members",
        "bootstrap cmd.run_all kubectl get node cp3",
        "bootstrap saltutil.refresh_pillar",
        "bootstrap,cp2 state.sls kubesalt.keepalived test=True",
        "bootstrap,cp2,worker1 state.sls kubesalt.firewall test=True",
    ]
    assert report.changes == {"peers": {"cp2": {"states": ["Drop cp3"]}}}
    assert cluster.drift["cp2"] == {"kubesalt.firewall": ["Drop cp3"]}


def test_an_undeclared_node_with_an_etcd_member_left_has_it_removed(backend, cluster):
    """The node was forgotten by hand (kubesalt_inventory.forget) before its removal: every
    phase acts on it, roles unknown; nothing runs on the node, whose address is gone."""
    inventory.forget("cp3", backend.inventory_dir)
    report = run(backend, "remove_node", node="cp3")
    assert report.ok, report.error
    assert report.changes["etcd"] == {"cp3": {"removed": {"name": "cp3"}}}
    assert report.changes["key"] == {"cp3": {"key": "deleted (minions)"}}
    assert not [c for c in backend.calls if c.startswith(("connect", "salt-ssh", "cp3 "))]


def test_the_plan_of_an_undeclared_node_runs_every_phase(backend):
    inventory.forget("cp3", backend.inventory_dir)
    declared = inventory.load(backend.inventory_dir)
    opts = options.from_pillar("remove_node", {"node": "cp3", "kubesalt": CONFIG}, "base")
    assert all(p["run"] and p["nodes"] == ["cp3"] for p in engine.plan(opts, declared))


def test_a_step_needs_ssh_or_minion():
    with pytest.raises(OrchestrateError, match=r"needs 'disk'; valid: \('ssh', 'minion'\)"):
        tables.Step("applied", "nodes", "x", needs="disk")


def test_a_removal_stopped_after_its_key_went_finishes_without_its_minion(tmp_path):
    """Stopped after phase key (the inventory was not written): the node is still declared
    and up, its key is gone, so no state can run there; salt-ssh still checks its minion."""
    cluster = Cluster(deployed=("bootstrap", "cp2", "cp3", "worker1")).apply_addons()
    cluster.members = [m for m in cluster.members if m["name"] != "cp3"]
    del cluster.node_objects["cp3"]
    cluster.minions["cp3"] = {"running": False, "key": None}  # stopped, then its key deleted
    backend = FakeBackend(cluster, tmp_path)
    del backend.files["/etc/kubesalt/minion-keys/cp3.pub"]
    report = run(backend, "remove_node", node="cp3")
    assert report.ok, report.error
    assert backend.calls == [
        "connect 198.51.100.12:22",
        "bootstrap kubesalt_kubectl.drain cp3",
        "bootstrap kubesalt_etcd.health",
        "bootstrap kubesalt_etcd.remove cp3",
        "bootstrap kubesalt_kubectl.delete_node cp3",
        "salt-ssh cp3 -r stop salt-minion",
        *PEERS,
    ]
    assert report.changes == {"inventory": {"cp3": {"inventory": "forgotten"}}}
    assert "the absent states: not on cp3 (no accepted minion key)" in report.comment()
    assert report.left_behind == {}
