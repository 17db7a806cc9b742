"""The backup run's copies to the control-plane nodes (the remote script run by a real
shell), the daily schedule item and its state, the kubesalt_backup loader module and the
kubesalt-backup command line."""

from __future__ import annotations

import datetime
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubesalt import backup, backup_cli, backup_job, inventory, lock
from tests.unit.backup_fixtures import (
    SSH_KEY,
    FakeEtcd,
    mode_of,
    node_fixture,  # noqa: F401  (the fixture `node`)
)
from tests.unit.loader import load
from tests.unit.test_backup import held_lock
from tests.unit.test_keepalived import render_sls

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kubesalt-backup"
NAME = "kubesalt-backup-20261204T020000Z.tar.gz"
HEALTHY = {"https://198.51.100.10:2379"}

module = load("_modules", "kubesalt_backup")


def nodes_of(root) -> dict[str, inventory.Node]:
    return inventory.load(str(root / "etc/kubesalt/nodes"))


# -- copies -----------------------------------------------------------------------------


def run_remote(script: str, archive: Path) -> subprocess.CompletedProcess:
    with open(archive, "rb") as stream:
        return subprocess.run(["sh", "-c", script], stdin=stream, capture_output=True,
                              text=True, check=False)  # fmt: skip


def test_the_remote_script_writes_a_0600_copy_in_a_0700_directory_and_prunes(tmp_path):
    archive = tmp_path / NAME
    archive.write_bytes(b"archive bytes")
    copies = tmp_path / "copies"
    copies.mkdir(mode=0o755)
    for day in range(1, 4):
        (copies / f"kubesalt-backup-2026120{day}T020000Z.tar.gz").write_text("old")
    (copies / "notes.txt").write_text("mine")
    result = run_remote(backup_job.remote_script(NAME, 2, str(copies)), archive)
    assert result.returncode == 0, result.stderr
    assert backup_job.copy_result(result, hashlib.sha256(b"archive bytes").hexdigest()) is None
    assert mode_of(copies) == 0o700
    assert mode_of(copies / NAME) == 0o600
    assert sorted(os.listdir(copies)) == ["kubesalt-backup-20261203T020000Z.tar.gz", NAME,
                                          "notes.txt"]  # fmt: skip


def test_the_remote_script_takes_only_a_backup_name():
    with pytest.raises(backup.BackupError, match="is not a kubesalt-backup name"):
        backup_job.remote_script("x; rm -rf /", 7)


def test_a_copy_goes_over_ssh_with_the_recorded_host_key(node):
    cp2 = nodes_of(node)["cp2"]
    argv = backup_job.ssh_command(cp2, "/etc/kubesalt/nodes/known_hosts", "true")
    assert argv[:9] == ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o",
                        "UserKnownHostsFile=/etc/kubesalt/nodes/known_hosts", "-o",
                        "ConnectTimeout=10"]  # fmt: skip
    assert argv[9:] == ["-i", SSH_KEY, "-p", "22", "root@198.51.100.11", "true"]


def test_copies_go_to_every_control_plane_node_but_this_one_and_failures_are_named(node, tmp_path):
    archive = tmp_path / NAME
    archive.write_bytes(b"archive bytes")
    digest = hashlib.sha256(b"archive bytes").hexdigest()
    calls = []

    def ssh(argv, timeout, env=None, stdin=None):
        calls.append((argv[-2], stdin))
        if argv[-2] == "root@198.51.100.12":
            return subprocess.CompletedProcess(argv, 255, "", "Host key verification failed.\n")
        return subprocess.CompletedProcess(argv, 0, f"{digest}  /var/lib/kubesalt/backups/x\n", "")

    copies = backup_job.copy_to_nodes(str(archive), digest, nodes_of(node), "bootstrap", 7,
                                      "/k", ssh)  # fmt: skip
    assert copies == {"cp2": None, "cp3": "exit 255: Host key verification failed."}
    assert calls == [("root@198.51.100.11", str(archive)), ("root@198.51.100.12", str(archive))]


def test_a_copy_with_another_sha256_is_a_failure():
    done = subprocess.CompletedProcess([], 0, "abc  /var/lib/kubesalt/backups/x\n", "")
    assert backup_job.copy_result(done, "def") == "the copy's sha256 is abc, not def"


def test_the_summary_names_the_archive_the_member_and_each_failed_copy():
    result = {"path": "/b/x.tar.gz", "size": 10, "files": 3, "seconds": 1.5, "pruned": ["/b/old"],
              "etcd": {"member": "cp2", "revision": None},
              "copies": {"cp2": None, "cp3": "exit 255: refused"}}  # fmt: skip
    assert backup_job.summary(result) == (
        "backup written: /b/x.tar.gz (10 bytes, 3 files and the etcd snapshot of cp2 at "
        "revision unknown) in 1.5s; copied to cp2; copy FAILED to cp3: exit 255: refused; "
        "1 older archive(s) deleted"
    )


# -- the daily schedule item --------------------------------------------------------------


def test_the_schedule_item_runs_the_backup_daily_one_at_a_time():
    text = backup_job.schedule_config()
    assert yaml.safe_load(text) == {"schedule": {"kubesalt-backup": {
        "function": "kubesalt_backup.run", "cron": "15 2 * * *", "splay": 900, "maxrunning": 1}}}  # fmt: skip
    assert "salt <this node> schedule.run_job kubesalt-backup" in text


def test_salt_merges_the_backup_item_with_the_renewals(tmp_path):
    """Two files of minion.d, each with a `schedule`: salt-minion runs both items."""
    import salt.config

    from kubesalt import certreport

    (tmp_path / "minion").write_text("id: bootstrap\n")
    (tmp_path / "minion.d").mkdir()
    (tmp_path / "minion.d/kubesalt-schedule.conf").write_text(
        certreport.schedule_config("kubesalt-0.1.0")
    )
    (tmp_path / "minion.d/kubesalt-backup-schedule.conf").write_text(backup_job.schedule_config())
    opts = salt.config.minion_config(str(tmp_path / "minion"))
    assert sorted(opts["schedule"]) == ["kubesalt-backup", "kubesalt-renew-certificates"]


def test_salt_runs_the_backup_and_the_renewal_at_their_time_of_day_never_at_start(tmp_path):
    """Salt's own scheduler, fed the two files: nothing runs when the minion starts (at
    06:00 here); the backup fires next at 02:15, the renewal at 02:45 (croniter)."""
    import datetime

    import salt.config
    import salt.utils.schedule

    from kubesalt import certreport

    (tmp_path / "minion").write_text("id: bootstrap\nfile_client: local\n")
    (tmp_path / "minion.d").mkdir()
    (tmp_path / "minion.d/a.conf").write_text(backup_job.schedule_config())
    (tmp_path / "minion.d/b.conf").write_text(certreport.schedule_config("kubesalt-0.1.0"))
    opts = salt.config.minion_config(str(tmp_path / "minion"))
    ran = []
    schedule = salt.utils.schedule.Schedule(opts, {}, returners={}, standalone=True,
                                            new_instance=True)  # fmt: skip
    schedule._run_job = lambda *args, **kwargs: ran.append(args)
    schedule.eval(now=datetime.datetime(2026, 12, 5, 6, 0, 0))
    assert ran == []
    items = schedule.opts["schedule"]
    assert items["kubesalt-backup"]["_next_fire_time"] == datetime.datetime(2026, 12, 6, 2, 15)
    assert items["kubesalt-renew-certificates"]["_next_fire_time"] == datetime.datetime(
        2026, 12, 6, 2, 45
    )


def test_the_state_writes_the_schedule_item_beside_the_renewals():
    functions = {"kubesalt_backup.schedule_file": module.schedule_file,
                 "kubesalt_backup.schedule_config": module.schedule_config}  # fmt: skip
    high = render_sls("kubesalt.backup.scheduled", {}, functions)
    state = dict(kv for item in high["Schedule the daily backup on the bootstrap node"]["file.managed"]
                 for kv in item.items())  # fmt: skip
    assert state["name"] == "/etc/salt/minion.d/kubesalt-backup-schedule.conf"
    assert state["contents"] == backup_job.schedule_config()
    assert state["mode"] == "0644"  # a schedule, no secret
    assert state["watch_in"] == [{"service": "Run salt-minion"}]
    assert high["include"] == ["kubesalt.salt.minion"]


# -- the loader module ------------------------------------------------------------------


@pytest.fixture
def configure_loader_modules():
    return {module: {"__salt__": {}, "__grains__": {}}}


@pytest.fixture
def module_on(node, tmp_path, monkeypatch):
    """kubesalt_backup on the node under tmp_path, with the fake etcdctl and ssh."""
    module.__grains__["kubesalt_root"] = str(node)
    monkeypatch.setattr(module._progress, "LOG_FILE", str(tmp_path / "log" / "orchestrate.log"))
    monkeypatch.setattr(module._backup, "BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setattr(module._etcd, "snapshot_tool", lambda: "etcdctl")
    etcd = FakeEtcd(healthy=HEALTHY)

    def run(argv, timeout, env=None, stdin=None):
        if argv[0] == "ssh":
            with open(stdin, "rb") as stream:
                digest = hashlib.sha256(stream.read()).hexdigest()
            return subprocess.CompletedProcess(argv, 0, f"{digest}  x\n", "")
        return etcd(argv, timeout, env)

    monkeypatch.setattr(backup_job.betcd, "run_program", run)
    return tmp_path


def test_the_module_writes_copies_and_logs_one_line(module_on):
    result = module.run()
    assert result["outcome"] == "written"
    assert os.path.dirname(result["path"]) == str(module_on / "backups")
    assert result["copies"] == {"cp2": None, "cp3": None}
    log = (module_on / "log" / "orchestrate.log").read_text()
    assert "kubesalt-backup: backup written: " in log
    assert "copied to cp2, cp3" in log
    assert module.verify(result["path"])["files"] == result["files"]


def test_the_module_skips_while_an_orchestration_runs(module_on):
    with held_lock("remove_node cp3 (PID 9)"):
        result = module.run()
    assert result["outcome"] == "skipped"
    assert "remove_node cp3 (PID 9)" in result["message"]
    assert (
        "backup skipped: another kubesalt orchestration is running"
        in (module_on / "log" / "orchestrate.log").read_text()
    )


def test_the_module_reports_a_failure_and_logs_it(module_on, node):
    from salt.exceptions import CommandExecutionError

    os.unlink(node / "etc/kubernetes/pki/sa.key")
    with pytest.raises(CommandExecutionError, match="BackupError: cannot back up this node"):
        module.run()
    assert (
        "backup FAILED: cannot back up this node"
        in (module_on / "log" / "orchestrate.log").read_text()
    )


# -- the command line -------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    # No etcdutl or etcdctl on the PATH: the stand-in snapshot is no etcd database (the
    # integration test reads real snapshots with them).
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PATH": "/nonexistent"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)  # fmt: skip


@pytest.fixture
def archive(node, tmp_path):
    return backup_job.run_backup(out=str(tmp_path / "backups"), copy=False, root=str(node),
                                 run=FakeEtcd(healthy=HEALTHY), tool="etcdctl",
                                 now=datetime.datetime(2026, 12, 4, 2, tzinfo=datetime.UTC)
                                 )["path"]  # fmt: skip


def test_verify_says_what_the_archive_holds(archive):
    result = cli("--verify", archive)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"kubesalt-backup: {archive}: valid: kubesalt ")
    assert "backup of bootstrap made 2026-12-04T02:00:00Z" in result.stdout
    assert "sha256 as recorded at save (no etcdutl or etcdctl" in result.stdout


def test_a_damaged_archive_fails_verify_with_exit_1(archive):
    with open(archive, "r+b") as stream:
        stream.seek(200)
        stream.write(b"\0" * 64)
    result = cli("--verify", archive)
    assert result.returncode == 1
    assert result.stderr.startswith(f"kubesalt-backup: error: {archive} fails verification")
    assert "This archive cannot be trusted" in result.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (["--keep", "0"], "argument --keep: value '0': give how many archives to keep"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["restore-etcd"], "the following arguments are required: FILE"),
    ],
)
def test_bad_usage_exits_2_and_says_what_to_give(args, words):
    result = cli(*args)
    assert result.returncode == 2
    assert words in result.stderr


def test_a_copy_failure_exits_3_and_names_the_node(node, tmp_path, monkeypatch, capsys):
    def written(**kwargs):
        return {"path": "/b/x", "size": 1, "files": 2, "seconds": 0.1, "pruned": [],
                "etcd": {"member": "bootstrap", "revision": 5},
                "copies": {"cp2": None, "cp3": "exit 255: Connection refused"}}  # fmt: skip

    monkeypatch.setattr(backup_job, "run_backup", written)
    assert backup_cli.main(["--keep", "3"]) == backup_cli.COPY_FAILED
    assert "copy FAILED to cp3: exit 255: Connection refused" in capsys.readouterr().err


def test_a_backup_without_bootstrap_yaml_is_an_error_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lock, "LOCK_FILE", str(tmp_path / "orchestrate.lock"))
    monkeypatch.setattr(backup_job.services, "CONFIG_PATH", str(tmp_path / "none.yaml"))
    assert backup_cli.main(["--out", str(tmp_path / "b"), "--no-copy"]) == 1
    err = capsys.readouterr().err
    assert f"kubesalt-backup: error: {tmp_path}/none.yaml: 1 problem" in err
    assert "cannot be read" in err
