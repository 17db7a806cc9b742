"""bootstrap.sh's archive handling with real programs: an ISO is mounted read-only (loop, or
fuseiso where the kernel has no ISO 9660, as here), found mounted again, and read; its
signed SHA256SUMS are checked (test_archive_signature.py tries the ways to break them)."""

from __future__ import annotations

import argparse
import subprocess

import pytest

from kubesalt.bootstrap import archive, cli, mounts
from kubesalt.bootstrap.phases import BootstrapError
from kubesalt.bootstrap.system import Log, System, mount_of
from tests.integration.archive_tree import make_iso, make_tree

pytestmark = pytest.mark.integration


@pytest.fixture
def ctx(tmp_path):
    log = Log(str(tmp_path / "bootstrap.log"), verbose=False)
    args = argparse.Namespace(archive_fingerprint=None, archive=None)
    yield cli.Context(args=args, log=log, system=System(log))
    log.close()


def test_an_iso_is_mounted_read_only_and_described(tmp_path, ctx, signer):
    make_tree(tmp_path / "tree", signer)
    iso = make_iso(tmp_path / "tree", tmp_path / "kubesalt-9.8.7.iso")
    where = tmp_path / "mnt"
    fuse = mounts.mount_iso(ctx.system, str(iso), str(where))
    try:
        source, fstype = mount_of(str(where))
        assert fstype.startswith("fuse") == fuse
        found = archive.describe(str(iso), str(where), "iso")
        assert (found.version, found.saltenv) == ("9.8.7", "kubesalt-9.8.7")
        cli.verify_archive(ctx, str(where))
        with pytest.raises(OSError):
            (where / "new-file").write_text("x")
        line = archive.fstab_line(str(iso), str(where), fuse)
        assert line.split()[1] == str(where) and "ro" in line.split()[3]
    finally:
        subprocess.run(
            ["fusermount", "-u", str(where)] if fuse else ["umount", str(where)], check=True
        )
    assert mount_of(str(where)) is None


def test_a_changed_file_fails_the_check(tmp_path, ctx, signer):
    root = tmp_path / "tree"
    make_tree(root, signer)
    (root / "salt" / "top.sls").write_text("changed\n")
    with pytest.raises(
        BootstrapError, match=r"(?s)does not match its signed SHA256SUMS.*salt/top.sls: sha256"
    ):
        cli.verify_archive(ctx, str(root))


def test_a_registered_archive_is_checked_again_on_every_run(tmp_path, ctx, signer, monkeypatch):
    monkeypatch.setattr(archive, "REGISTER", str(tmp_path / "archives.yaml"))
    root = tmp_path / "tree"
    make_tree(root, signer)
    ctx.archive_sources = [str(root)]
    cli.phase_archive(ctx)
    assert [a.root for a in archive.load_register(archive.REGISTER)] == [str(root)]
    (root / "salt" / "top.sls").write_text("changed later\n")
    with pytest.raises(BootstrapError, match="salt/top.sls: sha256 differs"):
        cli.phase_archive(ctx)
