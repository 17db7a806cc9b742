"""bootstrap.sh's archive handling with real programs: an ISO is mounted read-only (loop, or
fuseiso where the kernel has no ISO 9660, as here), found mounted again, and read; its
SHA256SUMS are checked."""

from __future__ import annotations

import argparse
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kubesalt.bootstrap import archive, cli
from kubesalt.bootstrap.phases import BootstrapError
from kubesalt.bootstrap.system import Log, System, mount_of
from kubesalt_isobuild import tree

pytestmark = pytest.mark.integration


def make_tree(root: Path) -> None:
    for rel in archive.REQUIRED:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel == archive.WHEELS_DIR:
            path.mkdir()
            (path / "README").write_text("wheels\n")
        elif rel != archive.PRODUCT:
            path.write_text(f"{rel}\n")
    (root / archive.PRODUCT).write_text(
        tree.product_text("kubesalt", "9.8.7", "test", datetime.now(UTC), "lab")
    )
    tree.write_sums(root)


@pytest.fixture
def ctx(tmp_path):
    log = Log(str(tmp_path / "bootstrap.log"), verbose=False)
    yield cli.Context(args=argparse.Namespace(), log=log, system=System(log))
    log.close()


def test_an_iso_is_mounted_read_only_and_described(tmp_path, ctx):
    make_tree(tmp_path / "tree")
    iso = tmp_path / "kubesalt-9.8.7.iso"
    tree.make_iso(tmp_path / "tree", iso, "KUBESALT_9_8_7", datetime.now(UTC))
    where = tmp_path / "mnt"
    fuse = cli._mount_iso(ctx, str(iso), str(where))
    try:
        source, fstype = mount_of(str(where))
        assert fstype.startswith("fuse") == fuse
        found = archive.describe(str(iso), str(where), "iso")
        assert (found.version, found.saltenv) == ("9.8.7", "kubesalt-9.8.7")
        cli._verify_sums(ctx, str(where))
        with pytest.raises(OSError):
            (where / "new-file").write_text("x")
        line = archive.fstab_line(str(iso), str(where), fuse)
        assert line.split()[1] == str(where) and "ro" in line.split()[3]
    finally:
        subprocess.run(
            ["fusermount", "-u", str(where)] if fuse else ["umount", str(where)], check=True
        )
    assert mount_of(str(where)) is None


def test_a_changed_file_fails_the_sums_check(tmp_path, ctx):
    root = tmp_path / "tree"
    make_tree(root)
    (root / "salt" / "top.sls").write_text("changed\n")
    with pytest.raises(
        BootstrapError, match=r"(?s)files differ from SHA256SUMS.*salt/top.sls: FAILED"
    ):
        cli._verify_sums(ctx, str(root))
