"""kubesalt.backup_etcd: etcdctl's answers read, the snapshot tool chosen, and restore-etcd
(refused while quorum exists, its steps on this node) with a fake etcdctl."""

from __future__ import annotations

import datetime
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from kubesalt import backup, backup_etcd
from kubesalt.backup_etcd import QuorumExists
from kubesalt.kubeadm import manifests
from kubesalt.kubeadm.model import Layout, Node
from tests.unit.backup_fixtures import CONTROL_PLANE, RECORDED, FakeEtcd, write

NOW = datetime.datetime(2026, 12, 5, 3, 0, 0, tzinfo=datetime.UTC)
CP = frozenset(CONTROL_PLANE)
OWN = "https://198.51.100.11:2379"


def test_run_program_turns_a_missing_program_and_a_timeout_into_failures(tmp_path):
    missing = backup_etcd.run_program(["kubesalt-no-such-program"], timeout=5)
    assert (missing.returncode, missing.stderr) == (127, "kubesalt-no-such-program: not found")
    slow = backup_etcd.run_program(["sleep", "5"], timeout=0.2)
    assert (slow.returncode, slow.stderr) == (124, "no answer within 0.2s")
    (tmp_path / "in").write_text("hello")
    echoed = backup_etcd.run_program(["cat"], timeout=5, stdin=str(tmp_path / "in"))
    assert echoed.stdout == "hello"


def test_the_snapshot_tool_is_etcdutl_else_etcdctl_else_none():
    assert backup_etcd.snapshot_tool(lambda tool: f"/usr/bin/{tool}") == "etcdutl"
    assert backup_etcd.snapshot_tool(lambda tool: tool == "etcdctl" or None) == "etcdctl"
    assert backup_etcd.snapshot_tool(lambda tool: None) is None


def test_status_outputs_are_read():
    status = (
        '[{"Endpoint":"x","Status":{"header":{"member_id":13195394291058371180,"revision":9}}}]'
    )
    assert backup_etcd.parse_endpoint_status(status) == {
        "member_id": "b71f75320dc06a6c",
        "revision": 9,
    }
    snapshot = '{"hash":3,"revision":9,"totalKey":4,"totalSize":20480,"version":"3.5.0"}'
    assert backup_etcd.parse_snapshot_status(snapshot) == {
        "hash": 3,
        "revision": 9,
        "totalKey": 4,
        "totalSize": 20480,
    }
    with pytest.raises(backup.BackupError, match="snapshot status printed no status"):
        backup_etcd.parse_snapshot_status("Error: bad")


def test_without_a_client_certificate_the_error_says_where_to_run(tmp_path):
    with pytest.raises(backup.BackupError) as info:
        backup_etcd.tls_flags(Layout(str(tmp_path)))
    assert "no etcd client certificate on this node" in str(info.value)
    assert str(tmp_path / "etc/kubernetes/pki/apiserver-etcd-client.crt") in str(info.value)


# -- restore-etcd -------------------------------------------------------------------------


@pytest.fixture
def cp2(tmp_path):
    """cp2 (198.51.100.11), an etcd member that joined bootstrap and cp3: its rendered etcd
    manifest, client certificates and a data directory, under tmp_path."""
    layout = Layout(str(tmp_path))
    node = Node("cp2", "198.51.100.11", CP,
                etcd_members=(("bootstrap", "198.51.100.10"), ("cp2", "198.51.100.11"),
                              ("cp3", "198.51.100.12")))  # fmt: skip
    pod = manifests.etcd_pod({}, node, layout=layout)
    write(tmp_path, "/etc/kubernetes/manifests/etcd.yaml", yaml.safe_dump(pod).encode())
    for client in ("apiserver-etcd-client", "etcd/healthcheck-client"):
        write(tmp_path, f"/etc/kubernetes/pki/{client}.crt", b"cert\n")
        write(tmp_path, f"/etc/kubernetes/pki/{client}.key", b"key\n")
    write(tmp_path, "/var/lib/etcd/member/snap/db", b"old data")
    return layout


def empty(tmp_path):
    """A /proc without processes: no etcd runs on the data directory."""
    (tmp_path / "proc").mkdir(exist_ok=True)
    return tmp_path / "proc"


def verified(members=RECORDED) -> backup.Verified:
    return backup.Verified("backup.tar.gz", {"etcd": {"members": members}}, 3, "sha256")


def test_this_nodes_etcd_is_read_from_its_manifest(cp2):
    local = backup_etcd.local_etcd(cp2)
    assert (local.name, local.peer_url) == ("cp2", "https://198.51.100.11:2380")
    assert local.client_urls == (OWN,)
    assert local.data_dir == cp2.etcd_data_dir
    assert local.initial_cluster[0] == ("bootstrap", "https://198.51.100.10:2380")


def test_a_node_without_an_etcd_manifest_is_told_where_to_run(tmp_path):
    with pytest.raises(backup.BackupError, match="restore-etcd runs on an etcd node"):
        backup_etcd.local_etcd(Layout(str(tmp_path)))


def test_every_member_recorded_or_known_here_is_asked(cp2):
    local = backup_etcd.local_etcd(cp2)
    recorded = [*RECORDED, {"name": "", "peer_urls": ["https://198.51.100.13:2380"]}]
    assert backup_etcd.endpoints_to_ask(local, recorded) == [
        OWN,
        "https://198.51.100.10:2379",
        "https://198.51.100.12:2379",
        "https://198.51.100.13:2379",
    ]


def test_restore_etcd_is_refused_while_a_member_answers_healthy(cp2, tmp_path):
    etcd = FakeEtcd(healthy={"https://198.51.100.12:2379"})
    with pytest.raises(QuorumExists) as info:
        backup_etcd.restore_etcd(verified(), "snap.db", cp2, etcd, "etcdutl", NOW, log=print)
    assert str(info.value).startswith(
        "refusing to restore etcd: https://198.51.100.12:2379 answer(s) healthy, so the cluster "
        "has quorum"
    )
    assert os.path.exists(cp2.path("/etc/kubernetes/manifests/etcd.yaml"))
    assert not [call for call in etcd.calls if "restore" in call]


def test_a_dry_run_prints_the_steps_and_changes_nothing(cp2):
    lines = []
    after = backup_etcd.restore_etcd(verified(), "/tmp/snap.db", cp2, FakeEtcd(), "etcdctl",
                                     NOW, dry_run=True, log=lines.append)  # fmt: skip
    steps = [line for line in lines if "would" in line]
    assert len(steps) == 6
    assert "https://198.51.100.10:2379 does not answer healthy" in lines[1]
    assert f"would 3. move {cp2.etcd_data_dir} to {cp2.etcd_data_dir}.before-restore-" in steps[2]
    assert os.path.exists(cp2.path("/var/lib/etcd/member/snap/db"))
    assert os.path.exists(cp2.path("/etc/kubernetes/manifests/etcd.yaml"))
    assert "join it again with deploy_node" in after[-1]
    assert "(bootstrap, cp3)" in after[-1]


def test_restore_etcd_restores_one_member_and_keeps_the_old_data(cp2, tmp_path):
    etcd = FakeEtcd()
    manifest = cp2.path("/etc/kubernetes/manifests/etcd.yaml")
    before = Path(manifest).read_text()
    backup_etcd.restore_etcd(verified(), "/tmp/snap.db", cp2, etcd, "etcdutl", NOW,
                             proc=str(empty(tmp_path)), log=lambda line: None)  # fmt: skip
    restore = next(call for call in etcd.calls if "restore" in call)
    assert restore == [
        "etcdutl", "snapshot", "restore", "/tmp/snap.db", "--name=cp2",
        "--initial-cluster=cp2=https://198.51.100.11:2380",
        "--initial-advertise-peer-urls=https://198.51.100.11:2380",
        f"--data-dir={cp2.etcd_data_dir}",
    ]  # fmt: skip
    aside = f"{cp2.etcd_data_dir}.before-restore-20261205T030000Z"
    assert Path(f"{aside}/member/snap/db").read_bytes() == b"old data"
    assert os.stat(cp2.etcd_data_dir).st_mode & 0o777 == 0o700
    assert Path(manifest).read_text() == before


def test_a_failed_restore_leaves_etcd_stopped_and_says_where_everything_is(cp2, tmp_path):
    def failing(argv, timeout, env=None, stdin=None):
        if "restore" in argv:
            return subprocess.CompletedProcess(argv, 1, "", "Error: snapshot missing hash")
        return FakeEtcd()(argv, timeout, env)

    with pytest.raises(backup.BackupError) as info:
        backup_etcd.restore_etcd(verified(), "/tmp/snap.db", cp2, failing, "etcdutl", NOW,
                                 proc=str(empty(tmp_path)), log=lambda line: None)  # fmt: skip
    parked = cp2.path("/etc/kubernetes/etcd.yaml.restore-20261205T030000Z")
    assert str(info.value) == (
        f"etcdutl snapshot restore failed: snapshot missing hash; etcd stays stopped: its "
        f"manifest is at {parked}, the old data at "
        f"{cp2.etcd_data_dir}.before-restore-20261205T030000Z"
    )
    assert os.path.exists(parked)


def test_restore_etcd_needs_a_snapshot_tool(cp2):
    with pytest.raises(backup.BackupError, match="neither etcdutl nor etcdctl is on the PATH"):
        backup_etcd.restore_etcd(verified(), "s.db", cp2, FakeEtcd(), None, NOW)


def test_the_wait_for_etcd_to_stop_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(backup_etcd._etcd, "processes_using", lambda data_dir, proc: [4242])
    clock = iter(range(0, 1000, 60))
    with pytest.raises(backup.BackupError, match=r"etcd still runs on /var/lib/etcd \(PID 4242\)"):
        backup_etcd.wait_stopped("/var/lib/etcd", sleep=lambda s: None, clock=lambda: next(clock))


def test_a_crash_of_the_snapshot_tool_is_reported_by_its_panic_line():
    traceback = ("panic: freepages: failed to get all reachable pages (page -1: out of bounds)\n\n"
                 "goroutine 103 [running]:\ngo.etcd.io/bbolt.(*DB).freepages.func2()\n"
                 "created by go.etcd.io/bbolt.(*DB).freepages\n")  # fmt: skip

    def crashing(argv, timeout, env=None, stdin=None):
        return subprocess.CompletedProcess(argv, 2, "", traceback)

    found = backup_etcd.snapshot_status_with(crashing, "etcdctl")("/tmp/s.db")
    assert found == {"tool": "etcdctl", "error": "etcdctl snapshot status crashed: panic: "
                     "freepages: failed to get all reachable pages (page -1: out of bounds)"}  # fmt: skip
