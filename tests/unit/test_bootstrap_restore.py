"""bootstrap.sh --restore: the usage rules, phase restore (verify, the machine's address,
the files put back) and the orchestration it runs."""

from __future__ import annotations

import argparse
import json
import subprocess
import types

import pytest

from kubesalt import network
from kubesalt.bootstrap import cli
from kubesalt.bootstrap.phases import BootstrapError, UsageError, parse_skip
from kubesalt.bootstrap.system import Log
from tests.unit.backup_fixtures import (
    archive_fixture,  # noqa: F401  (the fixture `archive`)
    mode_of,
    node_fixture,  # noqa: F401  (the fixture `node`)
)

BOOTSTRAP_IP = "198.51.100.10"


def addresses(*ips):
    return lambda: [network.HostAddress("eth0", ip, 24) for ip in ips]


@pytest.fixture
def restore(tmp_path, monkeypatch):
    """phase_restore of `archive` onto tmp_path/fresh, as root, on a machine with the
    addresses given."""

    def run(archive, *ips):
        monkeypatch.setattr(cli, "host_addresses", addresses(*ips))
        monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
        # A fresh machine has no etcd tools yet: the snapshot is checked by its sha256.
        monkeypatch.setattr(cli.backup_etcd, "snapshot_tool", lambda: None)
        log = Log(str(tmp_path / "bootstrap.log"), verbose=False)
        args = argparse.Namespace(restore=archive)
        ctx = cli.Context(args=args, log=log, system=None, root=str(tmp_path / "fresh"))
        try:
            return cli.phase_restore(ctx)
        finally:
            log.close()

    return run


def test_the_files_go_back_onto_a_machine_with_the_nodes_address(restore, archive, tmp_path):
    result = restore(archive, "192.0.2.7", BOOTSTRAP_IP)
    assert result.changed and result.detail.startswith(f"node bootstrap ({BOOTSTRAP_IP}), ")
    assert (tmp_path / "fresh" / cli.RESTORE_PENDING.lstrip("/")).read_text() == f"{archive}\n"
    key = tmp_path / "fresh/etc/kubernetes/pki/ca.key"
    assert key.read_bytes() == (tmp_path / "node/etc/kubernetes/pki/ca.key").read_bytes()
    assert mode_of(key) == 0o600
    assert (tmp_path / "fresh/etc/salt/pki/master/master.pem").exists()
    again = restore(archive, BOOTSTRAP_IP)
    assert (again.changed, again.detail) == (
        False,
        f"node bootstrap ({BOOTSTRAP_IP}), 0 paths put back",
    )


def test_a_machine_without_the_nodes_address_is_refused_before_any_write(
    restore, archive, tmp_path
):
    with pytest.raises(BootstrapError) as raised:
        restore(archive, "198.51.100.99")
    assert f"the backup is of bootstrap node bootstrap at {BOOTSTRAP_IP}" in str(raised.value)
    assert "does not have (198.51.100.99)" in str(raised.value)
    assert not (tmp_path / "fresh").exists()


def test_a_damaged_archive_is_refused_before_any_write(restore, archive, tmp_path):
    with open(archive, "r+b") as stream:
        stream.seek(200)
        stream.write(b"garbage")
    with pytest.raises(Exception, match="refusing to restore"):
        restore(archive, BOOTSTRAP_IP)
    assert not (tmp_path / "fresh").exists()


def test_without_restore_the_phase_does_nothing(restore):
    assert restore(None).changed is False


def usage(*argv):
    args = cli.parser().parse_args(list(argv))
    cli.check_restore_usage(args, parse_skip(args.skip_phases, cli.PHASES))
    return args


def test_restore_takes_bootstrap_yaml_from_the_backup():
    with pytest.raises(UsageError, match=r"--config /root/b.yaml with --restore: .* drop --config"):
        usage("--restore", "b.tar.gz", "--config", "/root/b.yaml")
    with pytest.raises(UsageError, match="--restore with --skip-phases restore"):
        usage("--restore", "b.tar.gz", "--skip-phases", "restore")


def test_the_restore_phase_comes_first():
    assert [phase.name for phase in cli.PHASES][:2] == ["restore", "preflight"]


@pytest.mark.parametrize(
    "restore, pending, sls",
    [(None, False, "bootstrap"), ("b.tar.gz", True, "restore"), (None, True, "restore")],
)
def test_phase_orchestrate_runs_the_orchestration_and_names_it(tmp_path, restore, pending, sls):
    """bootstrap, or restore: with --restore, and without it while a restore that put the
    files back has not ended (a plain bootstrap would start etcd alone); its end is recorded."""
    ran = []
    orchestrate = {"bootstrap_master": {"salt_|-x_|-x_|-state": {
        "__id__": "Run it", "result": True, "changes": {"ok": 1}, "comment": "", "__run_num__": 0}}}  # fmt: skip

    class System:
        def run(self, cmd, what, check, quiet_output):
            ran.append(cmd)
            return subprocess.CompletedProcess(cmd, 0, stdout=json.dumps(orchestrate), stderr="")

    log = Log(str(tmp_path / "bootstrap.log"), verbose=False)
    ctx = cli.Context(args=argparse.Namespace(restore=restore), log=log, system=System(),
                      root=str(tmp_path))  # fmt: skip
    marker = tmp_path / cli.RESTORE_PENDING.lstrip("/")
    if pending:
        marker.parent.mkdir(parents=True)
        marker.write_text("/root/b.tar.gz\n")
    ctx.cfg = {"ca": {"minion": "bootstrap"}}
    ctx.current = types.SimpleNamespace(saltenv="kubesalt-0.1.0")
    result = cli.phase_orchestrate(ctx)
    log.close()
    assert ran == [[f"{cli.services.VENV}/bin/salt-run", "--out=json", "--log-level=quiet",
                    "state.orchestrate", f"kubesalt.orchestrate.{sls}", "saltenv=kubesalt-0.1.0",
                    'pillar={"kubesalt_bootstrap": {"minion": "bootstrap"}}']]  # fmt: skip
    assert result.detail == f"kubesalt.orchestrate.{sls}: 1 states, 1 changed"
    assert not marker.exists()
