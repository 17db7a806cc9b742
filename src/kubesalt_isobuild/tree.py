"""The ISO tree: the project's files, ``product.txt``, ``SHA256SUMS``, and the ISO image."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from kubesalt.bootstrap import archive
from kubesalt_isobuild.errors import IsoBuildError
from kubesalt_isobuild.util import run, sha256_file

PROJECT_DIRS = (archive.SALT_DIR, archive.PILLAR_DIR, "scripts")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache")
SUMS = archive.SUMS
# Neither file can list itself: the signature vouches for SHA256SUMS, which lists the rest.
UNLISTED = (archive.SUMS, archive.SUMS_SIGNATURE)


def copy_project(project: Path, tree: Path) -> list[str]:
    """Copy ``salt/``, ``pillar/`` and ``scripts/``; put ``scripts/bootstrap.sh`` at the root."""
    copied = []
    for name in PROJECT_DIRS:
        src = project / name
        if src.is_dir():
            shutil.copytree(src, tree / name, symlinks=False, ignore=IGNORE)
            copied.append(name)
    bootstrap = project / "scripts" / "bootstrap.sh"
    if bootstrap.is_file():
        shutil.copy2(bootstrap, tree / "bootstrap.sh")
        (tree / "bootstrap.sh").chmod(0o755)
        copied.append("bootstrap.sh")
    return copied


def git_revision(project: Path) -> str:
    """The project's git commit (``-dirty`` when the work tree has changes), else ``unknown``."""
    try:
        rev = subprocess.run(["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(project), "status", "--porcelain"], capture_output=True,
                               text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def product_text(
    name: str,
    version: str,
    revision: str,
    date: datetime,
    flavour: str,
    kubesalt_wheel: str = "",
    library_wheels: tuple[str, ...] = (),
    *,
    kubernetes_version: str = "",
) -> str:
    """``product.txt``: ``KEY=value`` lines (read, never sourced); the wheel fields name the
    wheels bootstrap.sh unpacks and installs (paths relative to the archive root);
    KUBERNETES_VERSION the Kubernetes release the archive carries."""
    stamp = date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = (
        f"NAME={name}\nVERSION={version}\nGIT_REVISION={revision}\n"
        f"BUILD_DATE={stamp}\nFLAVOUR={flavour}\n"
    )
    if kubernetes_version:
        text += f"{archive.KUBERNETES_VERSION}={kubernetes_version}\n"
    if kubesalt_wheel:
        text += f"{archive.KUBESALT_WHEEL}={kubesalt_wheel}\n"
    if library_wheels:
        text += f"{archive.LIBRARY_WHEELS}={' '.join(library_wheels)}\n"
    return text


def parse_product(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def all_files(tree: Path) -> list[str]:
    """Every regular file under ``tree`` as a sorted POSIX relative path."""
    out = []
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            full = Path(dirpath) / name
            if full.is_file() and not full.is_symlink():
                out.append(full.relative_to(tree).as_posix())
    return sorted(out)


def write_sums(tree: Path) -> int:
    """Write ``SHA256SUMS`` (``sha256sum -c`` format) of every other file but its signature;
    return the count."""
    lines = [
        f"{sha256_file(tree / rel)}  {rel}\n" for rel in all_files(tree) if rel not in UNLISTED
    ]
    (tree / SUMS).write_text("".join(lines))
    return len(lines)


def sign_sums(tree: Path, signer) -> None:
    """Sign ``SHA256SUMS`` (detached, armored) with the key that signs the repositories."""
    signer.detach_sign(tree / SUMS, tree / archive.SUMS_SIGNATURE)


def check_sums(tree: Path) -> list[str]:
    """Problems found checking ``SHA256SUMS`` as bootstrap.sh does: bad, missing and
    unlisted files."""
    listed = archive.parse_sums((tree / SUMS).read_text(), str(tree / SUMS))
    return archive.sums_problems(str(tree), listed)


def volume_id(product: str, version: str) -> str:
    """An ISO 9660 volume id: ``KUBESALT_<VERSION>``, at most 32 characters of [A-Z0-9_]."""
    vid = re.sub(r"[^A-Z0-9_]", "_", f"{product}_{version}".upper())
    return vid[:32]


def make_iso(tree: Path, iso: Path, volid: str, date: datetime) -> None:
    """Turn ``tree`` into ``iso`` with xorriso (Rock Ridge + Joliet, ISO level 3)."""
    stamp = date.astimezone(UTC).strftime("%Y%m%d%H%M%S00")
    tmp = iso.with_name(iso.name + ".part")
    tmp.unlink(missing_ok=True)
    run(["xorriso", "-as", "mkisofs", "-quiet", "-iso-level", "3", "-R", "-J", "-joliet-long",
         "-V", volid, "--modification-date=" + stamp, "-o", str(tmp), str(tree)],
        what="xorriso")  # fmt: skip
    if not tmp.is_file():
        raise IsoBuildError(f"xorriso wrote no {tmp}")
    os.replace(tmp, iso)
