"""Package repositories on the ISO: an apt repository (signed Release) and a yum repository.

apt: ``deb/dists/<suite>/main/binary-<arch>/Packages{,.gz}``, ``deb/dists/<suite>/{Release,
InRelease,Release.gpg}``, ``deb/pool/*.deb``; a client uses
``deb [signed-by=<iso>/kubesalt-archive-keyring.gpg] <url>/deb kubesalt main``.
yum: ``rpm/Packages/*.rpm`` and ``rpm/repodata/`` (createrepo_c), ``repomd.xml.asc`` signed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from kubesalt.bootstrap import archive
from kubesalt_isobuild.debs import deb_fields, deb_filename
from kubesalt_isobuild.signing import Signer
from kubesalt_isobuild.util import run

SUITE = archive.APT_SUITE
COMPONENT = archive.APT_COMPONENT
# Field order of a Packages paragraph: control fields first (as in the .deb), then these.
FILE_FIELDS = ("Filename", "Size", "MD5sum", "SHA256")


def packages_paragraph(
    fields: dict[str, str],
    filename: str,
    data: bytes | None = None,
    size: int = 0,
    md5: str = "",
    sha256: str = "",
) -> str:
    """One ``Packages`` paragraph: the control fields, then the file's location and hashes."""
    if data is not None:
        size, md5, sha256 = (
            len(data),
            hashlib.md5(data).hexdigest(),
            hashlib.sha256(data).hexdigest(),
        )  # noqa: S324
    lines = []
    for key, value in fields.items():
        if key in FILE_FIELDS:
            continue
        # deb822: every continuation line of a multi-line field starts with a space.
        lines.append(f"{key}: " + value.replace("\n", "\n "))
    lines += [f"Filename: {filename}", f"Size: {size}", f"MD5sum: {md5}", f"SHA256: {sha256}"]
    return "\n".join(lines) + "\n"


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no name and no time in the header, so the output is reproducible."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def release_file(
    files: dict[str, bytes],
    date: datetime,
    arches: list[str],
    version: str,
    suite: str = SUITE,
    components: tuple[str, ...] = (COMPONENT,),
) -> str:
    """The ``Release`` file of a suite; ``files`` maps paths relative to the suite to contents."""
    head = [
        "Origin: kubesalt",
        "Label: kubesalt",
        f"Suite: {suite}",
        f"Codename: {suite}",
        f"Version: {version}",
        f"Date: {format_datetime(date.astimezone(UTC), usegmt=True)}",
        f"Architectures: {' '.join(arches)}",
        f"Components: {' '.join(components)}",
        "Description: kubesalt offline package repository",
    ]
    width = max((len(str(len(d))) for d in files.values()), default=1)
    md5 = ["MD5Sum:"]
    sha = ["SHA256:"]
    for path in sorted(files):
        data = files[path]
        size = str(len(data)).rjust(width)
        md5.append(f" {hashlib.md5(data).hexdigest()} {size} {path}")  # noqa: S324
        sha.append(f" {hashlib.sha256(data).hexdigest()} {size} {path}")
    return "\n".join(head + md5 + sha) + "\n"


def build_apt_repo(
    debs: list[tuple[Path, str]],
    root: Path,
    arch: str,
    date: datetime,
    version: str,
    signer: Signer,
) -> dict[str, int]:
    """Lay out an apt repository under ``root`` from ``(file, sha256)`` pairs; sign it."""
    pool = root / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    paragraphs = []
    for path, sha in debs:
        fields = deb_fields(path)
        key = (fields["Package"], fields["Version"], fields["Architecture"])
        dest = pool / deb_filename(*key)
        shutil.copyfile(path, dest)
        data = dest.read_bytes()
        paragraphs.append((key, packages_paragraph(fields, f"pool/{dest.name}", data)))
        if hashlib.sha256(data).hexdigest() != sha:
            raise RuntimeError(f"{path} changed while building the repository")
    paragraphs.sort(key=lambda kp: kp[0])
    packages = "\n".join(p for _, p in paragraphs).encode()
    suite_dir = root / "dists" / SUITE
    rel = f"{COMPONENT}/binary-{arch}"
    files = {f"{rel}/Packages": packages, f"{rel}/Packages.gz": gzip_bytes(packages)}
    comp_release = (
        f"Archive: {SUITE}\nOrigin: kubesalt\nLabel: kubesalt\nComponent: {COMPONENT}\n"
        f"Architecture: {arch}\n"
    ).encode()
    files[f"{rel}/Release"] = comp_release
    for rel_path, data in files.items():
        (suite_dir / rel_path).parent.mkdir(parents=True, exist_ok=True)
        (suite_dir / rel_path).write_bytes(data)
    release = suite_dir / "Release"
    release.write_text(
        release_file(files, date, [arch, "all"] if arch != "all" else [arch], version)
    )
    signer.clearsign(release, suite_dir / "InRelease")
    signer.detach_sign(release, suite_dir / "Release.gpg")
    return {"packages": len(paragraphs)}


def build_yum_repo(rpms: list[Path], root: Path, date: datetime, signer: Signer) -> dict[str, int]:
    """Lay out a yum repository under ``root`` with createrepo_c; sign ``repomd.xml``."""
    dest = root / "Packages"
    dest.mkdir(parents=True, exist_ok=True)
    for path in rpms:
        shutil.copyfile(path, dest / path.name)
    stamp = str(int(date.timestamp()))
    run(["createrepo_c", "--quiet", "--no-database", "--general-compress-type=gz",
         f"--revision={stamp}", "--set-timestamp-to-revision", str(root)],
        what="createrepo_c")  # fmt: skip
    signer.detach_sign(root / "repodata" / "repomd.xml", root / "repodata" / "repomd.xml.asc")
    return {"packages": len(rpms)}
