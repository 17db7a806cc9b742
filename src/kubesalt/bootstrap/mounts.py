"""Where an archive's tree is: an ISO file mounted read-only at /srv/kubesalt/<name> and kept
in /etc/fstab, or a directory used as is. bootstrap.sh (phase archive) and kubesalt-iso
(add, remove) both attach and detach archives with these functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kubesalt.bootstrap import archive as karchive
from kubesalt.bootstrap.phases import BootstrapError
from kubesalt.bootstrap.system import System, mount_of

FSTAB = "/etc/fstab"


@dataclass(frozen=True)
class Attached:
    """An archive's tree, ready to be read: `mounted_now` when this run mounted it (a
    refused archive is unmounted again)."""

    source: str
    root: str
    kind: str
    fuse: bool = False
    mounted_now: bool = False


def mount_iso(system: System, iso: str, where: str) -> bool:
    """Mount an ISO read-only (loop, else fuseiso); return whether fuseiso was used."""
    os.makedirs(where, exist_ok=True)
    loop = system.run(["mount", "-o", "loop,ro", iso, where], what=f"mount {iso}", check=False)
    if loop.returncode == 0:
        return False
    fuse = system.run(["fuseiso", iso, where], what=f"fuseiso {iso}", check=False)
    if fuse.returncode == 0:
        return True
    raise BootstrapError(
        f"cannot mount {iso} at {where}: mount -o loop,ro said {loop.stderr.strip() or loop.returncode!r}; "
        f"fuseiso said {fuse.stderr.strip() or fuse.returncode!r}. Install fuseiso, or extract the ISO "
        f"(xorriso -osirrox on -indev {iso} -extract / DIR) and use DIR instead"
    )


def attach(system: System, source: str) -> Attached:
    """An ISO file mounted at its mount point (unless it already is), a directory as is."""
    kind = karchive.kind_of(source)
    if kind == "directory":
        return Attached(source, os.path.realpath(source), kind)
    iso = os.path.realpath(source)
    root = karchive.mount_point(iso)
    mounted = mount_of(root)
    if mounted is not None:
        return Attached(source, root, kind, fuse=mounted[1].startswith("fuse"))
    return Attached(source, root, kind, fuse=mount_iso(system, iso, root), mounted_now=True)


def _fstab_text(fstab: str) -> str:
    path = Path(fstab)
    return path.read_text(encoding="utf-8") if path.exists() else ""


def persist(system: System, attached: Attached, fstab: str = FSTAB) -> bool:
    """The fstab line that mounts an ISO again at boot; whether fstab changed."""
    if attached.kind != "iso":
        return False
    line = karchive.fstab_line(os.path.realpath(attached.source), attached.root, attached.fuse)
    new = karchive.fstab_with(_fstab_text(fstab), line, attached.root)
    return new is not None and system.write(fstab, new)


def unmount(system: System, root: str) -> bool:
    """Unmount `root` (fusermount for a fuseiso mount) and remove the empty mount point;
    whether something was mounted there."""
    mounted = mount_of(root)
    if mounted is not None:
        command = ["fusermount", "-u", root] if mounted[1].startswith("fuse") else ["umount", root]
        result = system.run(command, what=f"unmount {root}", check=False)
        if result.returncode != 0:
            raise BootstrapError(
                f"{' '.join(command)} failed: {result.stderr.strip() or result.returncode}; "
                f"find what still uses it (fuser -vm {root}), stop it, then run "
                f"`{' '.join(command)}` yourself"
            )
    if os.path.isdir(root) and not os.listdir(root):
        os.rmdir(root)
    return mounted is not None


def detach(system: System, archive: karchive.Archive, fstab: str = FSTAB) -> bool:
    """Undo attach and persist for a registered archive: its fstab line goes, the ISO is
    unmounted. A directory archive is left where it is. Whether something changed."""
    if archive.kind != "iso":
        return False
    new = karchive.fstab_without(_fstab_text(fstab), archive.root)
    changed = new is not None and system.write(fstab, new)
    return unmount(system, archive.root) or changed
