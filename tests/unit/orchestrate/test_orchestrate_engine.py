"""The engine against a fake cluster: the full, ordered sequence of backend calls of every
orchestration, fresh and converged; the dry run; errors naming phase and node; the lock;
progress lines and the log file. Removing any step of any phase changes a sequence here.
"""

import io
import os
import pathlib
import stat
import subprocess
import sys

import pytest
import yaml

from kubesalt import hostkeys, inventory, lock
from kubesalt.orchestrate import engine, options
from kubesalt.orchestrate.progress import Progress
from tests.unit.orchestrate.fakes import (
    APPLY_ADMIN,
    APPLY_SUPER_ADMIN,
    HOST_KEY,
    IPS,
    ROLLOUT,
    SALTENV,
    Cluster,
    FakeBackend,
    lab_config,
)

THREE = ["cp2", "cp3", "worker1"]
# The lab's configuration, validated as the ext_pillar gives it to the orchestrations.
CONFIG = lab_config()
FINGERPRINT = hostkeys.fingerprint(HOST_KEY).split(":", 1)[-1]


def run(backend, orchestration, test=False, **pillar):
    pillar.setdefault("kubesalt", CONFIG)
    opts = options.from_pillar(orchestration, pillar, SALTENV)
    stream = io.StringIO()
    report = engine.execute(opts, backend, test=test, progress=Progress(opts.label, stream, None))
    report.lines = stream.getvalue().splitlines()
    return report


@pytest.fixture
def fresh(tmp_path):
    return FakeBackend(Cluster(deployed=("bootstrap",), fresh=THREE), tmp_path)


@pytest.fixture
def converged(tmp_path):
    """Four deployed nodes whose API objects were applied."""
    return FakeBackend(Cluster(deployed=("bootstrap", *THREE)).apply_addons(), tmp_path)


FRESH_DEPLOY = [
    # preflight
    "connect 198.51.100.11:22", "connect 198.51.100.12:22", "connect 198.51.100.21:22",
    # minion: no minion answers, salt-ssh installs them (its key and thin made first)
    "prepare salt-ssh",
    "salt-ssh cp2 state.sls", "salt-ssh cp2 -r read the minion key",
    "salt-ssh cp3 state.sls", "salt-ssh cp3 -r read the minion key",
    "salt-ssh worker1 state.sls", "salt-ssh worker1 -r read the minion key",
    "write /etc/kubesalt/minion-keys/cp2.pub", "write /etc/kubesalt/minion-keys/cp3.pub",
    "write /etc/kubesalt/minion-keys/worker1.pub",
    # key
    "keys.accept cp2", "keys.accept cp3", "keys.accept worker1",
    "cp2,cp3,worker1 test.ping",
    # grains (no survey: the new nodes are not settled)
    "cp2,cp3,worker1 saltutil.sync_all",
    "cp2,cp3,worker1 state.sls kubesalt.node",
    "bootstrap saltutil.refresh_pillar",
    # firewall: the other nodes first, then the nodes, whose minion restarts itself
    # after firewalld's first start: waited for once it began
    "bootstrap state.sls kubesalt.firewall",
    "cp2,cp3,worker1 state.sls kubesalt.firewall",
    "cp2,cp3,worker1 test.ping",
    # certs
    "cp2,cp3,worker1 state.sls kubesalt.pki",
    # control-plane, then containerd and the kubelet that runs the static pods
    "cp2,cp3 state.sls kubesalt.roles.control-plane",
    "cp2,cp3,worker1 state.sls kubesalt.containerd,kubesalt.kubelet",
    # etcd: the CA minion's own member answers; one member list, then one node at a time
    "bootstrap kubesalt_etcd.health",
    "bootstrap kubesalt_etcd.members",
    "cp2,cp3 grains.get kubesalt",
    "bootstrap kubesalt_etcd.wait_healthy",
    "bootstrap kubesalt_etcd.add_learner cp2 https://198.51.100.11:2380",
    "cp2 grains.set kubesalt:etcd_initial_cluster",
    "cp2 state.sls kubesalt.roles.etcd",
    "bootstrap kubesalt_etcd.promote cp2",
    "bootstrap kubesalt_etcd.wait_healthy",
    "bootstrap kubesalt_etcd.add_learner cp3 https://198.51.100.12:2380",
    "cp3 grains.set kubesalt:etcd_initial_cluster",
    "cp3 state.sls kubesalt.roles.etcd",
    "bootstrap kubesalt_etcd.promote cp3",
    "bootstrap kubesalt_etcd.wait_healthy",
    # keepalived (the other control-plane nodes first)
    "bootstrap state.sls kubesalt.keepalived",
    "cp2,cp3 state.sls kubesalt.keepalived",
    # wait-control-plane, addons, highstate
    "GET https://198.51.100.11:6443/readyz", "GET https://198.51.100.12:6443/readyz",
    APPLY_SUPER_ADMIN, APPLY_ADMIN, ROLLOUT,
    "cp2,cp3,worker1 state.highstate",
]  # fmt: skip

CONVERGED_DEPLOY = [
    "connect 198.51.100.11:22", "connect 198.51.100.12:22", "connect 198.51.100.21:22",
    # the running minions are asked; nothing would change: no salt-ssh
    "cp2,cp3,worker1 test.ping",
    "cp2,cp3,worker1 state.sls kubesalt.salt.minion.remote test=True",
    "cp2,cp3,worker1 saltutil.sync_all",
    "cp2,cp3,worker1 state.sls kubesalt.node",
    "bootstrap saltutil.refresh_pillar",
    # the survey: every node settled, so no state phase applies anything again
    "cp2,cp3,worker1 state.highstate test=True",
    "bootstrap kubesalt_etcd.health",
    "bootstrap kubesalt_etcd.members",
    "cp2,cp3 grains.get kubesalt",
    "cp2,cp3 file.directory_exists /var/lib/etcd/member",
    "GET https://198.51.100.11:6443/readyz", "GET https://198.51.100.12:6443/readyz",
    APPLY_SUPER_ADMIN, APPLY_ADMIN, ROLLOUT,
]  # fmt: skip


def test_deploy_node_of_fresh_nodes_calls_every_step_in_order(fresh):
    report = run(fresh, "deploy_node", nodes=THREE)
    assert report.ok, report.error
    assert fresh.calls == FRESH_DEPLOY
    cluster = fresh.cluster
    assert [(m["name"], m["is_learner"]) for m in cluster.members] == [
        ("bootstrap", False), ("cp2", False), ("cp3", False)]  # fmt: skip
    assert cluster.grains["cp3"]["kubesalt:etcd_initial_cluster"] == [
        ["bootstrap", IPS["bootstrap"]], ["cp2", IPS["cp2"]], ["cp3", IPS["cp3"]]]  # fmt: skip
    assert all(not cluster.drift[n] for n in ("bootstrap", *THREE))
    changes = report.changes
    assert changes["key"] == {n: {"accepted": n} for n in THREE}
    assert changes["firewall"]["bootstrap"] == {
        "states": ["Allow cp2", "Allow cp3", "Allow worker1"]}  # fmt: skip
    assert changes["etcd"]["cp2"] == {
        "learner": "abc",
        "initial_cluster": "bootstrap=https://198.51.100.10:2380,cp2=https://198.51.100.11:2380",
        "states": ["Write the etcd static pod"],
        "promoted": "cp2",
    }
    assert {n: changes["addons"][n] for n in THREE} == {
        n: {"node": "Node object configured"} for n in THREE}  # fmt: skip
    created = changes["addons"]["bootstrap"]["objects"]
    assert created[:2] == ["ClusterRoleBinding kubeadm:cluster-admins: created",
                           "ConfigMap kube-system/kubeadm-config: created"]  # fmt: skip
    assert "Deployment kube-system/coredns: created" in created
    assert fresh.cluster.applied_with[0] == "/etc/kubernetes/super-admin.conf"
    assert set(fresh.cluster.applied_with[1:]) == {"admin.conf"}
    assert "highstate" not in changes  # the earlier phases left it nothing


def test_deploy_node_again_changes_nothing_and_applies_nothing_twice(fresh):
    run(fresh, "deploy_node", nodes=THREE)
    fresh.calls.clear()
    again = run(fresh, "deploy_node", nodes=THREE)
    assert again.ok and again.changes == {}
    assert fresh.calls == CONVERGED_DEPLOY


def test_converged_deploy_node(converged):
    report = run(converged, "deploy_node", nodes=THREE)
    assert (report.ok, report.changes) == (True, {})
    assert converged.calls == CONVERGED_DEPLOY
    assert "grains: no changes" in report.comment()
    assert "settled: cp2, cp3, worker1" in report.comment()


def test_a_drifted_node_gets_its_phases_and_its_highstate_the_others_nothing(converged):
    converged.cluster.drift["cp3"] = {"kubesalt.pki": ["Renew apiserver.crt"],
                                      "kubesalt.keepalived": ["Write keepalived.conf"]}  # fmt: skip
    report = run(converged, "deploy_node", nodes=THREE)
    assert report.changes == {
        "certs": {"cp3": {"states": ["Renew apiserver.crt"]}},
        "keepalived": {"cp3": {"states": ["Write keepalived.conf"]}},
    }
    applied = [c for c in converged.calls if "state." in c and "test=True" not in c]
    assert applied == [
        "cp2,cp3,worker1 state.sls kubesalt.node",
        "bootstrap state.sls kubesalt.firewall",
        "cp3 state.sls kubesalt.firewall",
        "cp3 state.sls kubesalt.pki",
        "cp3 state.sls kubesalt.roles.control-plane",
        "cp3 state.sls kubesalt.containerd,kubesalt.kubelet",
        "cp3 state.sls kubesalt.roles.etcd",  # a voter: only its state, no join
        "bootstrap state.sls kubesalt.keepalived",  # the others: not in this run
        "cp3 state.sls kubesalt.keepalived",
        "cp3 state.highstate",
    ]
    assert not any("add_learner" in c or "promote" in c for c in converged.calls)


def test_a_minion_whose_install_would_change_is_reinstalled_with_salt_ssh(converged):
    converged.cluster.drift["cp2"] = {"kubesalt.salt.minion.remote": ["Write the unit"]}
    report = run(converged, "deploy_node", node="cp2")
    assert converged.calls[:6] == [
        "connect 198.51.100.11:22",
        "cp2 test.ping",
        "cp2 state.sls kubesalt.salt.minion.remote test=True",
        "salt-ssh cp2 state.sls",
        "salt-ssh cp2 -r read the minion key",
        "cp2 test.ping",  # the install restarted it: asked again
    ]
    assert report.ok


DRY_CONVERGED = [
    "connect 198.51.100.11:22", "connect 198.51.100.12:22", "connect 198.51.100.21:22",
    "cp2,cp3,worker1 test.ping",
    "cp2,cp3,worker1 state.sls kubesalt.salt.minion.remote test=True",
    "cp2,cp3,worker1 saltutil.sync_all",
    "cp2,cp3,worker1 state.sls kubesalt.node test=True",
    "bootstrap saltutil.refresh_pillar",
    "cp2,cp3,worker1 state.highstate test=True",
    "bootstrap kubesalt_etcd.health",
    "bootstrap kubesalt_etcd.members",
    "cp2,cp3 grains.get kubesalt",
    "cp2,cp3 file.directory_exists /var/lib/etcd/member",
    "GET https://198.51.100.11:6443/readyz", "GET https://198.51.100.12:6443/readyz",
    f"{APPLY_SUPER_ADMIN} test=True", f"{APPLY_ADMIN} test=True", ROLLOUT,
]  # fmt: skip


def test_a_dry_run_of_a_converged_cluster_reports_nothing_and_changes_nothing(converged):
    report = run(converged, "deploy_node", test=True, nodes=THREE)
    assert (report.ok, report.changes) == (True, {})
    assert converged.calls == DRY_CONVERGED
    assert "(dry run)" in report.comment()


def test_a_dry_run_reports_exactly_the_drifted_node(converged):
    converged.cluster.drift["worker1"] = {"kubesalt.kubelet": ["Write the kubelet unit"]}
    report = run(converged, "deploy_node", test=True, nodes=THREE)
    assert report.changes == {
        "kubelet": {"worker1": {"states": ["Write the kubelet unit"]}},
        "highstate": {"worker1": {"states": ["Write the kubelet unit"]}},
    }
    assert converged.cluster.drift["worker1"]  # still there: nothing was applied
    assert "worker1 state.sls kubesalt.containerd,kubesalt.kubelet test=True" in converged.calls
    assert not [c for c in converged.calls if "state." in c and "test=True" not in c]
    assert ("      kubelet done in 0.5s (would change; cp2: ok, cp3: ok, worker1: 1 would "
            "change)") in report.lines  # fmt: skip


def test_a_dry_run_of_a_fresh_node_says_what_would_be_done_without_asking_it(fresh):
    report = run(fresh, "deploy_node", test=True, node="worker1")
    assert report.changes["minion"] == {
        "worker1": {"salt-ssh": "would install salt-minion (no minion answers)"}}  # fmt: skip
    assert report.changes["key"] == {
        "worker1": {"accepted": "would accept once its minion submits its key"}}  # fmt: skip
    assert report.changes["kubelet"] == {
        "worker1": {"states": ["would apply kubesalt.containerd, kubesalt.kubelet (no minion yet)"]}}  # fmt: skip
    assert not [c for c in fresh.calls if c.startswith(("worker1 ", "salt-ssh", "keys."))]


REMOVE = [
    # preflight: the machine is up, its minion answers
    "connect 198.51.100.12:22",
    "cp3 test.ping",
    "bootstrap kubesalt_kubectl.drain cp3",
    # etcd: through the CA minion, whose own member answers healthy
    "bootstrap kubesalt_etcd.health",
    "bootstrap kubesalt_etcd.remove cp3",
    "cp3 state.sls kubesalt.keepalived.absent,kubesalt.roles.etcd-absent,"
    "kubesalt.etcd.data-absent,kubesalt.roles.control-plane-absent,kubesalt.kubelet.absent,"
    "kubesalt.containerd.absent,kubesalt.kubeconfig.absent,kubesalt.pki.absent,"
    "kubesalt.firewall.absent",
    "bootstrap kubesalt_kubectl.delete_node cp3",
    "salt-ssh cp3 -r stop salt-minion",
    "keys.delete cp3",
    "remove /etc/kubesalt/minion-keys/cp3.pub",
    "bootstrap saltutil.refresh_pillar",
    "bootstrap,cp2 state.sls kubesalt.keepalived",
    "bootstrap,cp2,worker1 state.sls kubesalt.firewall",
]


def test_remove_node_calls_every_step_in_order(converged, tmp_path):
    converged.cluster.drift["cp3"] = {"kubesalt.pki.absent": ["Remove the certificates"]}
    report = run(converged, "remove_node", node="cp3")
    assert report.ok, report.error
    assert converged.calls == REMOVE
    assert report.changes == {
        "drain": {"cp3": {"cordoned": True, "evicted": []}},
        "etcd": {"cp3": {"removed": {"name": "cp3"}}},
        "cleanup": {"cp3": {"states": ["Remove the certificates"]}},
        "delete-node": {"cp3": {"deleted": "cp3"}},
        "minion": {"cp3": {"minion": "stopped, disabled, configuration and keys removed"}},
        "key": {"cp3": {"key": "deleted (minions)"}},
        "inventory": {"cp3": {"inventory": "forgotten"}},
    }
    assert "cp3" not in inventory.load(converged.inventory_dir)
    assert "cp3" not in [m["name"] for m in converged.cluster.members]


def test_remove_node_of_a_worker_skips_etcd_and_keeps_its_data_state(converged):
    report = run(converged, "remove_node", node="worker1", skip_phases=["drain"])
    assert report.ok
    assert not any("kubesalt_etcd" in c or "drain" in c for c in converged.calls)
    cleanup = next(c for c in converged.calls if "absent" in c)
    assert "kubesalt.etcd.data-absent" not in cleanup
    assert "etcd: not for this node (roles node)" in report.comment()
    assert "drain: skipped (pillar skip_phases)" in report.comment()


def test_a_dry_run_of_remove_node_changes_nothing_and_says_what_it_would(converged):
    report = run(converged, "remove_node", test=True, node="cp3")
    assert set(report.changes) == {"drain", "etcd", "delete-node", "minion", "key", "inventory"}
    assert report.changes["etcd"]["cp3"]["etcd"].startswith("would remove member cp3 (")
    assert report.changes["etcd"]["cp3"]["etcd"].endswith(") (through bootstrap)")
    # the quorum rules decided from the member list and every voter's health
    assert converged.calls[converged.calls.index("bootstrap kubesalt_etcd.health"):][:3] == [
        "bootstrap kubesalt_etcd.health", "bootstrap kubesalt_etcd.members",
        "bootstrap kubesalt_etcd.health"]  # fmt: skip
    assert not [c for c in converged.calls if c.startswith(("keys.", "remove ", "write "))]
    assert "salt-ssh cp3 -r stop salt-minion (check)" in converged.calls
    assert "cp3" in inventory.load(converged.inventory_dir)


def test_remove_node_refuses_the_ca_minion_before_any_change(converged):
    report = run(converged, "remove_node", node="bootstrap")
    assert report.error == (
        "phase preflight on bootstrap: bootstrap is the CA minion and the bootstrap node "
        "(ca.minion); it cannot be removed with remove_node"
    )
    assert converged.calls == []


def test_remove_node_skipping_etcd_is_refused_while_the_node_is_a_member(converged):
    """Issue 16, item 5: the cleanup would stop a member the cluster still counts."""
    report = run(converged, "remove_node", node="cp3", skip_phases=["etcd"])
    assert report.error.startswith("phase preflight on cp3: node cp3 is still etcd member cp3 ("), (
        report.error
    )
    assert "Run remove_node without skipping etcd, or remove the member first (salt " \
        "bootstrap kubesalt_etcd.remove cp3)" in report.error  # fmt: skip
    assert converged.calls == ["bootstrap kubesalt_etcd.members"]
    assert "cp3" in [m["name"] for m in converged.cluster.members]


def test_remove_node_may_skip_etcd_once_the_member_is_gone(converged):
    converged.cluster.members = [m for m in converged.cluster.members if m["name"] != "cp3"]
    report = run(converged, "remove_node", node="cp3", skip_phases=["etcd"])
    assert report.ok, report.error
    assert "cp3: not an etcd member, phase etcd may be skipped" in report.comment()
    assert "etcd: skipped (pillar skip_phases)" in report.comment()


def test_bootstrap_orchestration(tmp_path):
    cluster = Cluster(deployed=("bootstrap",))
    cluster.minions["bootstrap"]["key"] = "minions_pre"
    cluster.drift["bootstrap"] = {"kubesalt.roles.etcd": ["Write the etcd static pod"]}
    backend = FakeBackend(cluster, tmp_path)
    report = run(backend, "bootstrap", kubesalt_bootstrap={"minion": "bootstrap"})
    assert backend.calls == [
        "keys.accept bootstrap",
        "bootstrap test.ping",
        "bootstrap saltutil.sync_all",
        "bootstrap state.highstate",
    ]
    assert report.changes == {
        "key": {"bootstrap": {"accepted": "bootstrap"}},
        "highstate": {"bootstrap": {"states": ["Write the etcd static pod"]}},
    }
    backend.calls.clear()
    assert run(backend, "bootstrap").changes == {}


def test_an_impostor_key_is_refused(tmp_path):
    cluster = Cluster(deployed=("bootstrap",))
    cluster.minions["bootstrap"]["key"] = "minions_pre"
    backend = FakeBackend(cluster, tmp_path)
    backend.read_text_or_none = lambda path: "another key"
    report = run(backend, "bootstrap")
    assert report.error.startswith(
        "phase key on bootstrap: the minions_pre key of minion bootstrap is not the expected "
        "key: refusing it. Delete it (salt-key -d bootstrap)"
    )
    assert backend.calls == []


# -- errors ----------------------------------------------------------------------------


def test_a_failed_state_names_phase_node_and_the_exception_line_and_stops(converged):
    converged.cluster.drift["cp2"] = {"kubesalt.pki": ["Issue"]}
    converged.cluster.failures[("cp2", "kubesalt.pki")] = (
        "An exception occurred in this state: Traceback (most recent call last):\n"
        '  File "/opt/x.py", line 3, in f\n    raise X\n'
        "salt.exceptions.CommandExecutionError: ca_server did not respond\n"
    )
    report = run(converged, "deploy_node", nodes=THREE)
    assert report.error == (
        "phase certs on cp2: state.sls kubesalt.pki on cp2: 1 state(s) failed: kubesalt.pki "
        "fails: An exception occurred in this state: salt.exceptions.CommandExecutionError: "
        "ca_server did not respond"
    )
    assert [o.name for o in report.outcomes][-1] == "certs"  # stopped there
    assert "      certs FAILED after 0.5s: phase certs on cp2: " in report.lines[-2]
    assert report.lines[-1].startswith("deploy_node cp2, cp3, worker1: FAILED in ")


def test_an_etcd_failure_names_the_node_and_who_joined_before(fresh):
    original = fresh.cluster._kubesalt_etcd_promote

    def promote(node, name, timeout):
        if name == "cp3":
            return "ERROR: EtcdError: etcd learner cp3 was not promoted within 120s"
        return original(node, name, timeout)

    fresh.cluster._kubesalt_etcd_promote = promote
    fresh.client.failing = True
    report = run(fresh, "deploy_node", nodes=THREE)
    assert report.error == (
        "phase etcd on cp3: promote the etcd learner cp3 on bootstrap failed: ERROR: "
        "EtcdError: etcd learner cp3 was not promoted within 120s (joined before the "
        "failure: cp2 (https://198.51.100.11:2380))"
    )


def test_a_silent_minion_is_named(converged):
    converged.cluster.minions["worker1"]["running"] = False
    report = run(converged, "deploy_node", nodes=THREE)
    assert report.error.startswith("phase key on worker1: waited 90s for minion(s) worker1 to ")


def test_an_undeclared_node_stops_preflight(converged):
    report = run(converged, "deploy_node", nodes=["cp2", "cp9"])
    assert report.error.startswith(
        "phase preflight on cp9: node cp9 is not declared; declare it first: salt-run "
        "kubesalt_inventory.declare cp9"
    )
    assert converged.calls == []


def test_a_closed_ssh_port_is_named_with_its_bound(converged):
    def refuse(host, port, timeout):
        converged.calls.append(f"connect {host}:{port}")
        if host == IPS["cp3"]:
            raise OSError("Connection refused")

    converged.connect = refuse
    report = run(converged, "deploy_node", nodes=THREE)
    assert report.error == (
        "phase preflight on cp3: node cp3: SSH port 198.51.100.12:22 did not answer within "
        "10s (Connection refused); check that the node is up and sshd runs, and the address "
        "declared (salt-run kubesalt_inventory.list_nodes)"
    )
    assert converged.calls.count("connect 198.51.100.12:22") > 5  # retried for 10 s


@pytest.mark.parametrize("orchestration", ["deploy_node", "remove_node"])
def test_a_node_without_host_key_gets_it_read_and_recorded(converged, tmp_path, orchestration):
    entry = inventory.Node("cp2", IPS["cp2"], ("control-plane", "etcd", "node"))
    (tmp_path / "nodes" / "cp2.yaml").write_text(yaml.safe_dump(entry.to_document()))
    dry = run(converged, orchestration, test=True, node="cp2")
    assert dry.changes["preflight"] == {
        "cp2": {"host_keys": "would read with ssh-keyscan and record"}}  # fmt: skip
    assert not inventory.load(converged.inventory_dir)["cp2"].host_keys
    assert "keyscan 198.51.100.11:22" not in converged.calls
    report = run(converged, orchestration, node="cp2")
    assert report.changes["preflight"] == {
        "cp2": {"host_keys": ["SHA256:" + FINGERPRINT]}}  # fmt: skip
    assert "keyscan 198.51.100.11:22" in converged.calls
    if orchestration == "deploy_node":  # remove_node forgets the node at its end
        assert inventory.load(converged.inventory_dir)["cp2"].host_keys == (HOST_KEY,)


# -- lock, skip, progress --------------------------------------------------------------


HOLDER = (
    "import sys; from kubesalt import lock; lock.acquire('deploy_node cp9', sys.argv[1]); "
    "print('held', flush=True); sys.stdin.read()"
)


def test_a_second_orchestration_is_refused_while_another_process_holds_the_lock(converged):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, converged.lock_path], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        report = run(converged, "remove_node", node="cp3")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert report.error.startswith(
        "phase preflight: another kubesalt orchestration is running: deploy_node cp9 (PID "
    )
    assert converged.calls == [] and report.changes == {}


def test_the_lock_is_held_during_the_run_and_released_after(converged):
    seen = []
    original = converged.connect

    def connect(host, port, timeout):
        seen.append(pathlib.Path(converged.lock_path).read_text())
        original(host, port, timeout)

    converged.connect = connect
    run(converged, "deploy_node", node="cp2")
    assert seen[0].startswith("deploy_node cp2 (PID ")
    assert pathlib.Path(converged.lock_path).read_text() == ""
    assert lock.acquire("next", converged.lock_path)
    lock.release(converged.lock_path)


def test_skipped_phases_run_nothing_and_say_why(converged):
    report = run(converged, "deploy_node", node="worker1",
                 skip_phases=["kubelet", "wait-control-plane", "addons"])  # fmt: skip
    assert ("[8/13] kubelet: containerd, the kubelet and its configuration ... skipped "
            "(pillar skip_phases)") in report.lines  # fmt: skip
    assert "etcd: not for this node (roles node)" in report.comment()
    assert not any("kubesalt_cluster" in c or "readyz" in c for c in converged.calls)


def test_progress_lines_go_to_the_log_file_0600_without_diffs(tmp_path):
    backend = FakeBackend(Cluster(deployed=("bootstrap",), fresh=["cp2"]), tmp_path)
    opts = options.from_pillar("deploy_node", {"node": "cp2", "kubesalt": {
        "ca": {"minion": "bootstrap"}}}, SALTENV)  # fmt: skip
    stream = io.StringIO()
    engine.execute(opts, backend, progress=Progress(opts.label, stream, backend.log_file))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "deploy_node cp2: 13 phases"
    assert lines[1] == ("[1/13] preflight: no other orchestration runs; the nodes are declared "
                        "and their SSH port answers [cp2] ...")  # fmt: skip
    assert lines[2] == "      preflight done in 1.0s (no changes; cp2: ok)"
    assert "      firewall done in 5.0s (changed; cp2: 2 changed, bootstrap: 1 changed)" in lines
    logged = pathlib.Path(backend.log_file).read_text().splitlines()
    assert len(logged) == len(lines)
    assert all(line.split(" ", 1)[1] == f"deploy_node cp2: {shown}"
               for line, shown in zip(logged, lines, strict=True))  # fmt: skip
    assert stat.S_IMODE(os.stat(backend.log_file).st_mode) == 0o600
    assert "secret" not in pathlib.Path(backend.log_file).read_text()  # the fake's diffs


def test_plan_lists_phases_their_nodes_and_why_not(converged):
    opts = options.from_pillar("deploy_node", {"nodes": ["worker1", "cp9"], "skip_phases":
                               "addons", "kubesalt": {"ca": {"minion": "b"}}}, SALTENV)  # fmt: skip
    phases = {p["name"]: p for p in engine.plan(opts, inventory.load(converged.inventory_dir))}
    assert phases["preflight"]["nodes"] == ["worker1", "cp9"]
    assert phases["etcd"]["why"] == "not for these nodes (worker1: node; cp9: none)"
    assert phases["addons"] == {"name": "addons", "summary": phases["addons"]["summary"],
                                "nodes": [], "run": False, "why": "skipped (pillar skip_phases)"}  # fmt: skip


def test_a_file_error_on_the_master_names_its_phase_and_releases_the_lock(fresh):
    def full(path, text):
        raise OSError(28, "No space left on device", path)

    fresh.write_private = full
    report = run(fresh, "deploy_node", node="cp2")
    assert report.error == (
        "phase minion: OSError: [Errno 28] No space left on device: "
        "'/etc/kubesalt/minion-keys/cp2.pub'"
    )
    assert pathlib.Path(fresh.lock_path).read_text() == ""
