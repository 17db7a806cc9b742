"""The bootstrap node's Salt virtualenv archived for the other nodes (saltvenv), made in
tmp dirs from a small virtualenv-shaped tree, and unpacked as remote.sls does (tar)."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from kubesalt.bootstrap import saltvenv
from kubesalt.bootstrap.phases import BootstrapError
from kubesalt.digests import file_sha256

SALTENV = "kubesalt-0.1.0"
PYTHON = "lib/python3.11/site-packages"


@pytest.fixture
def venv(tmp_path):
    root = tmp_path / "venv"
    site = root / PYTHON
    (site / "kubesalt" / "__pycache__").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / "bin" / "python3").symlink_to("/usr/bin/python3")
    (root / "bin" / "python").symlink_to("python3")
    (root / "lib64").symlink_to("lib")
    (root / "bin" / "salt-call").write_text(f"#!{root}/bin/python3\n")
    (root / "bin" / "salt-call").chmod(0o755)
    (site / "kubesalt" / "__init__.py").write_text("VERSION = '0.1.0'\n")
    (site / "kubesalt" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0")
    (site / "stray.pyc").write_bytes(b"\0")
    (site / "kubesalt-pycache.pth").write_text("import sys\n")
    return root


def _names(path):
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_the_archive_holds_the_venv_without_bytecode_as_roots(venv, tmp_path):
    out = str(tmp_path / "out")
    assert saltvenv.make(str(venv), SALTENV, "stamp-1", out) is True
    members = _names(saltvenv.archive_path(SALTENV, out))
    assert f"{PYTHON}/kubesalt/__init__.py" in members
    assert f"{PYTHON}/kubesalt-pycache.pth" in members
    assert not [n for n in members if "__pycache__" in n or n.endswith(".pyc")]
    assert members["bin/python3"].issym() and members["bin/python3"].linkname == "/usr/bin/python3"
    assert members["lib64"].linkname == "lib"
    assert members["bin/salt-call"].mode & 0o777 == 0o755
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(0, 0, "root", "root")}


def test_the_archive_and_its_sha256_are_public_and_checkable(venv, tmp_path):
    out = tmp_path / "out"
    saltvenv.make(str(venv), SALTENV, "stamp-1", str(out))
    archive = saltvenv.archive_path(SALTENV, str(out))
    sha = saltvenv.sha256_path(SALTENV, str(out))
    assert os.stat(out).st_mode & 0o777 == 0o755
    for path in (archive, sha, saltvenv.stamp_path(SALTENV, str(out))):
        assert os.stat(path).st_mode & 0o777 == 0o644
    text = Path(sha).read_text()
    assert text == f"{file_sha256(archive)[0]}  {SALTENV}.tar.gz\n"
    assert saltvenv.parse_sha256(text, sha) == file_sha256(archive)[0]
    subprocess.run(["sha256sum", "-c", "--quiet", sha], cwd=out, check=True)
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]


def test_it_is_made_once_per_wheelhouse(venv, tmp_path):
    out = str(tmp_path / "out")
    archive = saltvenv.archive_path(SALTENV, out)
    assert saltvenv.make(str(venv), SALTENV, "stamp-1", out) is True
    first = os.stat(archive).st_ino
    assert saltvenv.make(str(venv), SALTENV, "stamp-1", out) is False
    assert os.stat(archive).st_ino == first
    assert saltvenv.make(str(venv), SALTENV, "stamp-2", out) is True
    assert Path(saltvenv.stamp_path(SALTENV, out)).read_text() == "stamp-2\n"


def test_a_missing_sha256_makes_it_again(venv, tmp_path):
    out = str(tmp_path / "out")
    saltvenv.make(str(venv), SALTENV, "stamp-1", out)
    os.unlink(saltvenv.sha256_path(SALTENV, out))
    assert saltvenv.is_current(SALTENV, "stamp-1", out) is False
    assert saltvenv.make(str(venv), SALTENV, "stamp-1", out) is True


def test_the_same_venv_gives_the_same_bytes(venv, tmp_path):
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    saltvenv.make(str(venv), SALTENV, "stamp-1", first)
    saltvenv.make(str(venv), SALTENV, "stamp-1", second)
    digests = {Path(saltvenv.sha256_path(SALTENV, out)).read_text() for out in (first, second)}
    assert len(digests) == 1


def test_a_node_unpacks_it_with_tar_as_remote_sls_does(venv, tmp_path):
    out = str(tmp_path / "out")
    saltvenv.make(str(venv), SALTENV, "stamp-1", out)
    unpacked = tmp_path / "node"
    unpacked.mkdir()
    subprocess.run(["tar", "-xzf", saltvenv.archive_path(SALTENV, out), "-C", str(unpacked),
                    "--no-same-owner"], check=True)  # fmt: skip
    assert os.readlink(unpacked / "bin" / "python3") == "/usr/bin/python3"
    assert (unpacked / PYTHON / "kubesalt" / "__init__.py").read_text() == "VERSION = '0.1.0'\n"
    assert os.access(unpacked / "bin" / "salt-call", os.X_OK)


def test_a_directory_that_is_no_venv_is_refused(tmp_path):
    with pytest.raises(BootstrapError, match=f"{tmp_path} is not a virtualenv .no pyvenv.cfg."):
        saltvenv.make(str(tmp_path), SALTENV, "stamp-1", str(tmp_path / "out"))


def test_an_unwritable_place_is_named(venv, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BootstrapError, match=f"cannot open {blocker}/out to nginx"):
        saltvenv.make(str(venv), SALTENV, "stamp-1", str(blocker / "out"))


@pytest.mark.parametrize("made", [False, True])
def test_a_parent_closed_to_others_is_opened_for_nginx(venv, tmp_path, made):
    """A restore onto a fresh machine made /var/lib/kubesalt 0700: nginx answered 403 to
    every node downloading the virtualenv. Opened again, also when the archive exists."""
    state_dir = tmp_path / "var-lib-kubesalt"
    out = str(state_dir / "salt-venv")
    if made:
        saltvenv.make(str(venv), SALTENV, "stamp-1", out)
    state_dir.mkdir(exist_ok=True)
    os.chmod(state_dir, 0o700)
    assert saltvenv.make(str(venv), SALTENV, "stamp-1", out) is not made
    assert os.stat(state_dir).st_mode & 0o777 == 0o755
    assert os.stat(out).st_mode & 0o777 == 0o755


@pytest.mark.parametrize("text", ["", "xyz  a.tar.gz\n", "ab" * 31 + "  a.tar.gz\n"])
def test_a_bad_sha256_file_is_named(text):
    with pytest.raises(ValueError, match="/x.sha256 does not start with a sha256"):
        saltvenv.parse_sha256(text, "/x.sha256")


def test_an_installed_minion_restarts_before_salt_ssh_returns():
    """The minion SLS (salt-ssh) restarts a running salt-minion itself, synchronously, on a
    new configuration, unit or virtualenv: Salt's own restart of salt-minion (a watch of
    service.running) is --no-block, and the orchestration's next job would reach the old
    process and be lost with it."""
    from tests.unit.test_keepalived import render_sls

    deploy = {
        "ca_pem": "PEM", "saltenv": "kubesalt-0.2.0", "sources_path": "/etc/apt/s.sources",
        "sources": "Types: deb", "keyring": "/etc/apt/keyrings/k.asc", "keyring_asc": "KEY",
        "apt_update": "apt-get update", "venv": "/opt/kubesalt/salt", "version": "0.2.0",
        "salt_venv": {"download": "/var/tmp/v.tar.gz", "url": "https://b/v.tar.gz",
                      "sha256": "0" * 64},
        "minion_configs": {"cp2": "id: cp2\n"}, "minion_unit": "[Unit]\n",
    }  # fmt: skip
    high = render_sls("kubesalt.salt.minion.remote", {"kubesalt_deploy": deploy}, {}, {"id": "cp2"})
    restart = dict(kv for item in high["Restart a running salt-minion on its new configuration "
                                      "or virtualenv"]["cmd.run"] for kv in item.items())  # fmt: skip
    assert restart["name"] == "systemctl daemon-reload && systemctl try-restart salt-minion"
    assert restart["onchanges"] == [
        {"file": "Write the salt-minion configuration"},
        {"file": "Write the salt-minion systemd unit"},
        {"cmd": "Install Salt and kubesalt 0.2.0 from the bootstrap node's Salt virtualenv"},
    ]
    running = dict(kv for item in high["Run salt-minion"]["service.running"] for kv in item.items())
    assert "watch" not in running
