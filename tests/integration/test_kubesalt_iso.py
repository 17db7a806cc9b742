"""kubesalt-iso add, list and remove with real programs: ISOs built from small signed trees
are mounted (loop, or fuseiso where the kernel has no ISO 9660), verified with gpgv against
the operator's fingerprint, written to an fstab and a register in a temporary directory,
served by a real nginx with kubesalt's server block written from the register
(services.nginx_config, as the state kubesalt.nginx writes it), then unmounted. The other
states of SERVE_STATES (apt sources, registry, salt-master) have their own tests and change
the host: here they are not run, and nothing needs salt-master.

Every mount point is under the test's temporary directory, named kbB-*."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kubesalt.bootstrap import archive, cli, isomanager, mounts, saltout
from kubesalt.bootstrap.isomanager import IsoError
from kubesalt.bootstrap.phases import BootstrapError
from kubesalt.bootstrap.system import Log, System, mount_of
from kubesalt_isobuild.signing import Signer
from tests.integration.archive_tree import make_iso, make_tree
from tests.integration.iso.iso_servers import free_port
from tests.integration.kubesalt_nginx import KubesaltNginx, nginx_front

pytestmark = pytest.mark.integration


class Served:
    """Stands for the salt-call of SERVE_STATES: nginx serves what the register holds;
    records the registered versions at each call."""

    def __init__(self, register: Path, nginx: KubesaltNginx):
        self.register = register
        self.nginx = nginx
        self.seen: list[list[str]] = []

    def __call__(self, ctx) -> saltout.StateSummary:
        archives = archive.load_register(str(self.register))
        self.nginx.serve(archives)
        self.seen.append([a.version for a in archives])
        return saltout.StateSummary(total=1)


@pytest.fixture
def node(tmp_path, monkeypatch, signer):
    """A bootstrap node whose current archive (9.8.7) is a directory; ISOs mount under
    tmp_path/kbB-mnt. Whatever stays mounted is unmounted at the end."""
    base = tmp_path / "kbB-mnt"
    monkeypatch.setattr(archive, "MOUNT_BASE", str(base))
    current = make_tree(tmp_path / "kbB-current", signer, "9.8.7")
    register = tmp_path / "archives.yaml"
    register.write_text(
        archive.register_text(
            [archive.Archive(str(current), str(current), "directory", "kubesalt", "9.8.7", "lab")]
        )
    )
    log = Log(str(tmp_path / "kubesalt-iso.log"), verbose=False)
    args = argparse.Namespace(archive_fingerprint=signer.fingerprint)
    ctx = cli.Context(args=args, log=log, system=System(log))
    fstab = tmp_path / "fstab"
    fstab.write_text("UUID=1 / ext4 defaults 0 1\n")
    registry_address = f"127.0.0.1:{free_port()}"  # nothing listens: no image is asked for
    try:
        with nginx_front(
            tmp_path / "kbB-nginx", registry_address, archive.load_register(str(register))
        ) as nginx:
            served = Served(register, nginx)
            manager = isomanager.Manager(
                ctx, register=str(register), fstab=str(fstab), serve=served
            )
            yield argparse.Namespace(
                tmp=tmp_path,
                base=base,
                register=register,
                fstab=fstab,
                manager=manager,
                served=served,
                nginx=nginx,
            )
    finally:
        for where in sorted(base.glob("*")) if base.exists() else []:
            mounts.unmount(ctx.system, str(where))
        log.close()


def iso_of(node, signer, name: str, version: str, content: str = "") -> Path:
    root = make_tree(node.tmp / f"{name}-tree", signer, version, content)
    return make_iso(root, node.tmp / f"{name}.iso")


def test_add_list_remove_an_iso(node, signer, capsys):
    iso = iso_of(node, signer, "kbB-kubesalt-9.9.0", "9.9.0")
    where = node.base / "kbB-kubesalt-9.9.0"

    assert node.manager.add(str(iso)) == isomanager.EXIT_OK
    assert mount_of(str(where)) is not None
    added = archive.load_register(str(node.register))[1]
    assert (added.source, added.root, added.kind, added.version) == (
        str(iso),
        str(where),
        "iso",
        "9.9.0",
    )
    assert archive.load_current(str(node.register)) == "9.8.7"
    line = node.fstab.read_text().splitlines()[1]
    assert line.split()[:2] in ([str(iso), str(where)], [f"fuseiso#{iso}", str(where)])
    assert node.served.seen == [["9.8.7", "9.9.0"]]
    product = (where / archive.PRODUCT).read_bytes()
    assert node.nginx.status("/kubesalt-9.9.0/product.txt", 200) == (200, product)
    assert node.nginx.status("/kubesalt-9.8.7/product.txt", 200)[0] == 200
    assert f"SHA256SUMS signed by {signer.fingerprint} (the fingerprint given)" in (
        capsys.readouterr().out
    )

    # Again: the same ISO, found mounted; nothing changes.
    register, fstab = node.register.read_text(), node.fstab.read_text()
    assert node.manager.add(str(iso)) == isomanager.EXIT_OK
    assert (node.register.read_text(), node.fstab.read_text()) == (register, fstab)
    assert "nothing changed" in capsys.readouterr().out

    assert node.manager.list() == isomanager.EXIT_OK
    rows = capsys.readouterr().out.splitlines()
    assert rows[2].split() == ["9.9.0", "kubesalt", "lab", "iso", "-", str(iso)]

    assert node.manager.remove("9.9.0") == isomanager.EXIT_OK
    assert node.served.seen[-1] == ["9.8.7"]
    assert node.nginx.status("/kubesalt-9.9.0/product.txt", 404)[0] == 404
    assert node.nginx.status("/kubesalt-9.8.7/product.txt", 200)[0] == 200
    assert mount_of(str(where)) is None and not where.exists()
    assert node.fstab.read_text() == "UUID=1 / ext4 defaults 0 1\n"
    assert [a.version for a in archive.load_register(str(node.register))] == ["9.8.7"]


def test_another_iso_of_a_registered_version_is_refused_and_unmounted(node, signer):
    node.manager.add(str(iso_of(node, signer, "kbB-first", "9.9.0")))
    other = iso_of(node, signer, "kbB-other", "9.9.0", content="changed")
    register, fstab = node.register.read_text(), node.fstab.read_text()
    with pytest.raises(IsoError, match=r"version 9.9.0 is already registered from .*kbB-first.iso"):
        node.manager.add(str(other))
    assert mount_of(str(node.base / "kbB-other")) is None
    assert not (node.base / "kbB-other").exists()
    assert (node.register.read_text(), node.fstab.read_text()) == (register, fstab)


def test_an_iso_signed_by_another_key_is_refused_and_unmounted(node):
    stranger = Signer()
    stranger.generate()
    try:
        iso = iso_of(node, stranger, "kbB-stranger", "9.9.1")
    finally:
        stranger.close()
    register = node.register.read_text()
    with pytest.raises(BootstrapError, match=r"not by [0-9A-F]{40} \(the fingerprint you gave\)"):
        node.manager.add(str(iso))
    assert mount_of(str(node.base / "kbB-stranger")) is None
    assert node.register.read_text() == register
    assert node.served.seen == []


def test_the_current_archive_cannot_be_removed(node):
    with pytest.raises(IsoError, match="VERSION 9.8.7: this is the current archive"):
        node.manager.remove("9.8.7")
    assert (node.tmp / "kbB-current").is_dir()
