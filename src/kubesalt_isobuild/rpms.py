"""RPM packages: resolution in yum ``repodata`` (primary.xml), download, and dnf closures."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

from kubesalt_isobuild.cache import FILL_HINT, Store, closure_key
from kubesalt_isobuild.errors import ArtifactError, DigestMismatchError, MissingArtifactError
from kubesalt_isobuild.manifest import Package, Resolve, Source
from kubesalt_isobuild.util import http_download, http_get, run, sha256_bytes, sha256_file, url_join

NS = {
    "repo": "http://linux.duke.edu/metadata/repo",
    "common": "http://linux.duke.edu/metadata/common",
}


def rpm_filename(name: str, version: str, arch: str) -> str:
    """``name-version-release.arch.rpm``; ``version`` is ``[epoch:]version-release``."""
    return f"{name}-{version.split(':', 1)[-1]}.{arch}.rpm"


def evr(version: str, epoch: str, release: str) -> str:
    """The manifest's version string: ``[epoch:]version-release`` (epoch 0 omitted)."""
    head = f"{epoch}:" if epoch not in ("", "0") else ""
    return f"{head}{version}-{release}"


def decompress(name: str, data: bytes) -> bytes:
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    if name.endswith(".zst"):
        return run_zstd(data)
    return data


def run_zstd(data: bytes) -> bytes:
    with tempfile.NamedTemporaryFile(suffix=".zst") as fh:
        fh.write(data)
        fh.flush()
        proc = subprocess.run(["zstd", "-dc", fh.name], capture_output=True, check=False)
        if proc.returncode != 0:
            raise OSError(f"zstd -dc failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout


def primary_location(repomd: bytes) -> tuple[str, str | None]:
    """The href of primary metadata in ``repomd.xml`` and its sha256 when given."""
    root = ET.fromstring(repomd)
    for data in root.findall("repo:data", NS):
        if data.get("type") == "primary":
            href = data.find("repo:location", NS).get("href")
            checksum = data.find("repo:checksum", NS)
            sha = (
                checksum.text if checksum is not None and checksum.get("type") == "sha256" else None
            )
            return href, sha
    raise ValueError("repomd.xml has no primary metadata")


def parse_primary(xml: bytes) -> dict[tuple[str, str, str], dict[str, str]]:
    """``(name, [epoch:]version-release, arch)`` → ``{href, sha256}`` from primary.xml."""
    table = {}
    for pkg in ET.fromstring(xml).findall("common:package", NS):
        if pkg.get("type") != "rpm":
            continue
        name = pkg.find("common:name", NS).text
        arch = pkg.find("common:arch", NS).text
        ver = pkg.find("common:version", NS)
        checksum = pkg.find("common:checksum", NS)
        key = (name, evr(ver.get("ver"), ver.get("epoch", "0"), ver.get("rel")), arch)
        table[key] = {
            "href": pkg.find("common:location", NS).get("href"),
            "sha256": checksum.text if checksum.get("type") == "sha256" else "",
        }
    return table


class YumIndex:
    """The primary metadata of yum sources, fetched once per build."""

    def __init__(self, sources: dict[str, Source]):
        self.sources = sources
        self._entries: dict[str, dict] = {}

    def entries(self, name: str) -> dict:
        if name not in self._entries:
            src = self.sources[name]
            label = f"yum source {name}"
            try:
                repomd = http_get(url_join(src.url, "repodata/repomd.xml"), cafile=src.cafile)
                href, sha = primary_location(repomd)
                raw = http_get(url_join(src.url, href), cafile=src.cafile)
            except FileNotFoundError as err:
                raise MissingArtifactError(
                    label, f"no repodata: {err}", "check the source url"
                ) from err
            except (OSError, ValueError, ET.ParseError) as err:
                raise MissingArtifactError(label, f"cannot read its repodata: {err}") from err
            if sha and sha256_bytes(raw) != sha:
                raise DigestMismatchError(
                    label, sha, sha256_bytes(raw), f"{href} (against repomd.xml)"
                )
            self._entries[name] = parse_primary(decompress(href, raw))
        return self._entries[name]

    def find(self, pkg: Package) -> dict[str, str]:
        table = self.entries(pkg.source)
        entry = table.get((pkg.name, pkg.version, pkg.arch))
        if entry is None:
            versions = sorted(f"{v}.{a}" for (n, v, a) in table if n == pkg.name)
            known = (
                f"versions there: {', '.join(versions)}" if versions else "no such package there"
            )
            raise MissingArtifactError(
                pkg.label,
                f"not in the repodata of {pkg.source} ({known})",
                "fix the pinned version or architecture in the manifest",
            )
        return entry


def fetch_rpm(pkg: Package, store: Store, index: YumIndex, workdir: Path) -> tuple[Path, str]:
    """A verified local copy of ``pkg`` and its sha256 (from the cache or the upstream)."""
    filename = rpm_filename(pkg.name, pkg.version, pkg.arch)
    cached = store.lookup(pkg.label, "rpm", filename, pkg.sha256)
    if cached is not None:
        return cached, pkg.sha256 or sha256_file(cached)
    entry = index.find(pkg)
    listed = entry["sha256"]
    if pkg.sha256 and listed and listed != pkg.sha256:
        raise DigestMismatchError(pkg.label, pkg.sha256, listed, f"the repodata of {pkg.source}")
    expected = pkg.sha256 or listed
    if not expected:
        raise ArtifactError(pkg.label, f"the repodata of {pkg.source} gives no sha256 for it")
    src = index.sources[pkg.source]
    tmp = workdir / filename
    try:
        http_download(url_join(src.url, quote(entry["href"])), tmp, cafile=src.cafile)
    except OSError as err:
        raise MissingArtifactError(pkg.label, f"download failed: {err}") from err
    actual = sha256_file(tmp)
    if actual != expected:
        tmp.unlink()
        raise DigestMismatchError(pkg.label, expected, actual, f"the download from {pkg.source}")
    return store.store("rpm", filename, tmp), actual


def rpm_fields(path: Path) -> tuple[str, str, str]:
    """``(name, [epoch:]version-release, arch)`` of an .rpm file."""
    fmt = "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}"
    out = run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", fmt, str(path)], what=path.name)
    name, epoch, ver, rel, arch = out.strip().splitlines()[-1].split("\t")
    return name, evr(ver, epoch, rel), arch


def resolve_rpm_closure(
    req: Resolve, sources: dict[str, Source], arch: str, store: Store, workdir: Path
) -> list[tuple[Package, Path]]:
    """Every package needed to install ``req.roots`` into an empty root, resolved by dnf."""
    what = {
        "kind": "rpm",
        "arch": arch,
        "release": req.release,
        "roots": sorted(req.roots),
        "sources": [sources[s].url for s in req.sources],
    }
    key = closure_key(what)
    listed = store.load_closure("rpm", key)
    if listed is not None:
        out = []
        for item in listed:
            pkg = Package("rpm", item["name"], item["version"], item["arch"], item["sha256"], "")
            path = store.lookup(
                pkg.label, "rpm", rpm_filename(pkg.name, pkg.version, pkg.arch), pkg.sha256
            )
            if path is None:
                raise MissingArtifactError(pkg.label, "listed in the cached closure but not cached")
            out.append((pkg, path))
        return out
    if store.offline:
        raise MissingArtifactError(
            req.label,
            "this dependency closure is not in the offline cache",
            FILL_HINT.format(cache=store.label),
        )
    root = Path(tempfile.mkdtemp(prefix="dnf-", dir=workdir))
    try:
        rpms = _dnf_download(req, sources, arch, root)
        out = []
        for path in sorted(rpms):
            name, version, parch = rpm_fields(path)
            pkg = Package("rpm", name, version, parch, sha256_file(path), "")
            out.append((pkg, store.store("rpm", rpm_filename(name, version, parch), path)))
        items = [
            {"name": p.name, "version": p.version, "arch": p.arch, "sha256": p.sha256}
            for p, _ in out
        ]
        store.save_closure("rpm", key, what, items)
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _dnf_download(req: Resolve, sources: dict[str, Source], arch: str, root: Path) -> list[Path]:
    conf = root / "dnf.conf"
    conf.write_text("[main]\ninstall_weak_deps=False\nkeepcache=True\n")
    dest = root / "rpms"
    dest.mkdir()
    cmd = [
        "dnf", "-y", "-q", f"--config={conf}", f"--installroot={root / 'root'}",
        f"--releasever={req.release}", f"--forcearch={arch}", "--setopt=reposdir=/nonexistent",
        f"--setopt=cachedir={root / 'cache'}", "--disablerepo=*",
    ]  # fmt: skip
    for name in req.sources:
        src = sources[name]
        cmd += [f"--repofrompath={name},{src.url}", f"--enablerepo={name}"]
        if src.keyring:
            key = src.keyring
            if not key.startswith(("https://", "http://", "file://")):
                key = f"file://{Path(key).resolve()}"
            cmd += [f"--setopt={name}.gpgcheck=1", f"--setopt={name}.gpgkey={key}"]
        else:
            cmd += [f"--setopt={name}.gpgcheck=0"]
        if src.cafile:
            cmd += [f"--setopt={name}.sslcacert={src.cafile}"]
    cmd += ["install", "--downloadonly", f"--downloaddir={dest}", *req.roots]
    run(cmd, what=f"{req.label}: dnf install --downloadonly")
    return list(dest.glob("*.rpm"))
