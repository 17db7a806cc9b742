"""The bootstrap node's Salt virtualenv as one archive, for the other nodes.

Every node runs Salt from the same Debian python at the same path (`services.VENV`), so a
new node unpacks the bootstrap node's own virtualenv instead of resolving and installing
its wheels with pip. bootstrap.sh (phase salt-install) makes the archive once per installed
wheelhouse, under `ARCHIVE_DIR` (not in an archive tree: those are read-only and their
SHA256SUMS refuses unlisted files), with its sha256 beside it; nginx serves it, the minion
pillar carries its URL and sha256 (kubesalt.orchestrate.minionpillar).

It holds only public packages (Salt, its dependencies, kubesalt), no key or configuration:
it is root's, mode 0644, and readable by nginx.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import tempfile

from kubesalt.bootstrap.phases import BootstrapError
from kubesalt.digests import file_sha256

ARCHIVE_DIR = "/var/lib/kubesalt/salt-venv"
# Where a new node keeps the download until it is unpacked (kubesalt.salt.minion.remote).
NODE_DOWNLOAD = "/var/cache/kubesalt/salt-venv.tar.gz"
# Bytecode is rebuilt by each node's Python where it imports a module; the bootstrap
# node's would only add size (and the venv writes its own under a pycache prefix).
LEFT_OUT_DIRS = ("__pycache__",)
LEFT_OUT_SUFFIXES = (".pyc",)
SHA256_LENGTH = 64


def archive_path(saltenv: str, directory: str = ARCHIVE_DIR) -> str:
    """The archive of the virtualenv that runs `saltenv`'s kubesalt."""
    return os.path.join(directory, f"{saltenv}.tar.gz")


def sha256_path(saltenv: str, directory: str = ARCHIVE_DIR) -> str:
    """Its sha256, in sha256sum's format (`sha256sum -c` checks the archive with it)."""
    return archive_path(saltenv, directory) + ".sha256"


def stamp_path(saltenv: str, directory: str = ARCHIVE_DIR) -> str:
    """The wheelhouse digest the archive was made from (bootstrap.sh's wheel stamp)."""
    return archive_path(saltenv, directory) + ".wheels"


def _travels(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """The member as every node gets it (root's), or None when it stays behind."""
    name = os.path.basename(info.name)
    if (info.isdir() and name in LEFT_OUT_DIRS) or name.endswith(LEFT_OUT_SUFFIXES):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = int(info.mtime)
    return info


def _write_tar(venv: str, stream) -> None:
    """The venv's entries with names relative to it (sorted: the same venv gives the same
    bytes), symlinks kept as links (bin/python3 -> /usr/bin/python3)."""
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=stream, compresslevel=6, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(os.listdir(venv)):
            tar.add(os.path.join(venv, name), arcname=name, filter=_travels)


def _write_public(path: str, write) -> None:
    """Write `path` through `write(stream)` in a temporary file beside it, then rename it
    into place (0644): a reader never sees half a file."""
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            os.fchmod(stream.fileno(), 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except OSError:
        return ""


def is_current(saltenv: str, stamp: str, directory: str = ARCHIVE_DIR) -> bool:
    """Whether the archive and its sha256 exist and were made from wheelhouse `stamp`."""
    return (
        _read(stamp_path(saltenv, directory)).strip() == stamp
        and os.path.isfile(archive_path(saltenv, directory))
        and bool(_read(sha256_path(saltenv, directory)).strip())
    )


def _let_nginx_through(directory: str) -> None:
    """`directory` 0755 and its parent (kubesalt's /var/lib/kubesalt) open to others:
    nginx's workers read the archive. A restore onto a fresh machine made that parent
    0700 (nginx then answered 403 to every node that downloads the virtualenv)."""
    os.makedirs(directory, mode=0o755, exist_ok=True)
    os.chmod(directory, 0o755)
    parent = os.path.dirname(directory)
    mode = os.stat(parent).st_mode & 0o7777
    if mode & 0o055 != 0o055:
        os.chmod(parent, mode | 0o055)


def make(venv: str, saltenv: str, stamp: str, directory: str = ARCHIVE_DIR) -> bool:
    """Archive `venv` for `saltenv`'s nodes unless the archive of wheelhouse `stamp` is
    there already; return whether it was made. The stamp is written last: an interrupted
    run makes the archive again. Either way the directories let nginx through."""
    try:
        _let_nginx_through(directory)
    except OSError as err:
        raise BootstrapError(
            f"cannot open {err.filename or directory} to nginx ({err.strerror}); check "
            f"the modes of {directory} and its parent, then run bootstrap.sh again"
        ) from err
    if is_current(saltenv, stamp, directory):
        return False
    if not os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        raise BootstrapError(
            f"{venv} is not a virtualenv (no pyvenv.cfg): run bootstrap.sh without "
            "--skip-phases salt-install"
        )
    archive = archive_path(saltenv, directory)
    try:
        _write_public(archive, lambda stream: _write_tar(venv, stream))
        line = f"{file_sha256(archive)[0]}  {os.path.basename(archive)}\n"
        _write_public(sha256_path(saltenv, directory), lambda s: s.write(line.encode()))
        _write_public(stamp_path(saltenv, directory), lambda s: s.write(f"{stamp}\n".encode()))
    except OSError as err:
        raise BootstrapError(
            f"cannot archive {venv} into {archive} for the other nodes: "
            f"{err.filename or archive}: {err.strerror}; free space under {directory} (the "
            "archive takes about a fifth of the venv's size) and run bootstrap.sh again"
        ) from err
    return True


def parse_sha256(text: str, path: str) -> str:
    """The digest of a .sha256 file (`<hex>  <name>`), or an error naming the file."""
    digest = (text.split() or [""])[0].lower()
    if len(digest) != SHA256_LENGTH or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(
            f"{path} does not start with a sha256 (64 hex digits): {text[:80]!r}; "
            "delete it and run bootstrap.sh again to make the Salt virtualenv archive anew"
        )
    return digest
