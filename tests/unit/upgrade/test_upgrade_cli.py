"""`upgrade.sh` / `downgrade.sh`: the command in Python (exit status, output), and the
shell scripts running the archive's own kubesalt wheel with another python."""

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest
from salt.exceptions import SaltClientError

from kubesalt.upgrade import cli
from kubesalt_isobuild import build
from tests.unit.upgrade.archive_fixtures import ROOT, make_archive

SCRIPTS = ("upgrade.sh", "downgrade.sh", "kubesalt-upgrade.sh")


@pytest.fixture
def as_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)


def run(site, *argv):
    cluster, backend, sources, old, new = site
    return cli.main(list(argv), client_factory=lambda: backend.client, sources=sources)


def test_dry_run_prints_the_plan_and_exits_0_when_the_verdict_allows(site, as_root, capsys):
    assert run(site, "upgrade", site[4].root, "--dry-run") == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"Upgrade plan: kubesalt 0.1.0 -> 0.2.0 (archive {site[4].root})\n")
    assert out.out.endswith("Verdict: the upgrade can proceed\n")
    assert out.err == ""


def test_a_refused_verdict_exits_1(site, as_root, capsys):
    site[0].kill("cp2")
    assert run(site, "downgrade", site[3].root, "--dry-run") == 1
    out = capsys.readouterr().out
    assert "Downgrade plan: kubesalt 0.1.0 -> ?" in out
    assert "  - [nodes] no answer from cp2: every node changes during the downgrade" in out
    assert "  - [archive] no registered archive is older than kubesalt 0.1.0 (this archive" in out


def test_facts_that_cannot_be_gathered_exit_1_naming_why(site, as_root, capsys, tmp_path):
    os.remove(site[2].config)
    assert run(site, "upgrade", site[4].root, "--dry-run") == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"upgrade.sh: error: the plan's facts cannot be gathered: {site[2].config}"
    )


def test_a_master_that_does_not_answer_is_named_without_a_traceback(site, as_root, capsys):
    def no_master():
        raise SaltClientError("Salt request timed out. The master is not responding.")

    found = cli.main(
        ["upgrade", site[4].root, "--dry-run"], client_factory=no_master, sources=site[2]
    )
    assert found == 1
    assert capsys.readouterr().err == (
        "upgrade.sh: error: Salt: SaltClientError: Salt request timed out. The master is not "
        "responding.; check that salt-master runs on this node (systemctl status salt-master)\n"
    )


def test_it_must_run_as_root(site, monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert run(site, "upgrade", site[4].root, "--dry-run") == 1
    assert capsys.readouterr().err == (
        "upgrade.sh: error: run it as root on the bootstrap node (it asks the salt-master and "
        "reads /etc/kubesalt)\n"
    )


@pytest.mark.parametrize("argv", [[], ["sideways", "/srv/x"], ["upgrade"]])
def test_the_module_wants_a_direction_and_a_root(argv, capsys):
    assert cli.main(argv) == 2
    assert "run upgrade.sh or downgrade.sh instead" in capsys.readouterr().err


# -- the scripts ---------------------------------------------------------------------------


@pytest.fixture
def shipped(tmp_path):
    """An archive holding the project's real kubesalt wheel and the scripts, and a python
    that sees the project's dependencies but no kubesalt: only the wheel can give it."""
    wheel = build.build_kubesalt_wheel(ROOT, "0.2.0", tmp_path / "built")
    found = make_archive(tmp_path / "isos", "0.2.0", wheel=wheel)
    (tmp_path / "isos" / "kubesalt-0.2.0" / "scripts").mkdir()
    for name in SCRIPTS:
        shutil.copy2(ROOT / "scripts" / name, os.path.join(found.root, "scripts", name))
    python = tmp_path / "salt-python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    python.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "KUBESALT_SALT_PYTHON": str(python),
           "PYTHONPATH": sysconfig.get_paths()["purelib"]}  # fmt: skip
    return found, env


def script(found, name, env, *args):
    return subprocess.run([os.path.join(found.root, "scripts", name), *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_the_python_alone_has_no_kubesalt(shipped):
    found, env = shipped
    alone = subprocess.run([env["KUBESALT_SALT_PYTHON"], "-c", "import kubesalt"], env=env,
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert "No module named 'kubesalt'" in alone.stderr


@pytest.mark.parametrize("name", ["upgrade.sh", "downgrade.sh"])
def test_each_script_runs_the_archives_wheel(shipped, name):
    found, env = shipped
    done = script(found, name, env, "--help")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"usage: {name} [-h] [--dry-run] [--skip-phases A,B]")


def test_a_wheel_that_differs_from_sha256sums_is_refused(shipped):
    found, env = shipped
    wheel = next(p for p in os.scandir(os.path.join(found.root, "wheels")))
    with open(wheel.path, "ab") as stream:
        stream.write(b"changed")
    done = script(found, "upgrade.sh", env, "--dry-run")
    assert done.returncode == 1
    assert done.stderr == (
        f"upgrade.sh: {found.root}/wheels/{wheel.name} differs from SHA256SUMS; the archive "
        "is damaged or was changed: copy or extract the ISO again\n"
    )


def test_a_script_outside_an_archive_is_refused(shipped, tmp_path):
    found, env = shipped
    os.remove(os.path.join(found.root, "SHA256SUMS"))
    done = script(found, "downgrade.sh", env, "--dry-run")
    assert done.returncode == 1
    assert done.stderr.startswith(f"downgrade.sh: {found.root} is not a kubesalt archive")
