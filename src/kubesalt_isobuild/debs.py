"""DEB packages: resolution in an apt ``Packages`` index, download, and apt closures."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

from kubesalt_isobuild.cache import FILL_HINT, Store, closure_key
from kubesalt_isobuild.errors import ArtifactError, DigestMismatchError, MissingArtifactError
from kubesalt_isobuild.manifest import Package, Resolve, Source
from kubesalt_isobuild.util import http_download, http_get, run, sha256_file, url_join

INDEX_SUFFIXES = ((".xz", lzma.decompress), (".gz", gzip.decompress), (".bz2", bz2.decompress))


def parse_deb822(text: str) -> list[dict[str, str]]:
    """Parse deb822 paragraphs (``Packages``, ``Release``, control files)."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, key = {}, None
        elif line[0] in " \t":
            if key is not None:
                current[key] += "\n" + line[1:]
        elif ":" in line:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def deb_filename(name: str, version: str, arch: str) -> str:
    """The pool file name, as Debian names it: without the epoch."""
    return f"{name}_{version.split(':', 1)[-1]}_{arch}.deb"


def index_urls(source: Source, arch: str) -> list[str]:
    """Candidate ``Packages`` index URLs of ``source``, most compressed first per component."""
    if source.flat:
        bases = [url_join(source.url, source.suite.rstrip("/") + "/Packages")]
    else:
        bases = [
            url_join(source.url, f"dists/{source.suite}/{comp}/binary-{arch}/Packages")
            for comp in source.components
        ]
    return bases


class AptIndex:
    """The ``Packages`` indexes of apt sources, fetched once per build."""

    def __init__(self, sources: dict[str, Source], arch: str):
        self.sources = sources
        self.arch = arch
        self._entries: dict[str, dict[tuple[str, str, str], dict[str, str]]] = {}

    def entries(self, source_name: str) -> dict[tuple[str, str, str], dict[str, str]]:
        if source_name in self._entries:
            return self._entries[source_name]
        source = self.sources[source_name]
        table: dict[tuple[str, str, str], dict[str, str]] = {}
        for base in index_urls(source, self.arch):
            text = self._fetch_index(source, base)
            for para in parse_deb822(text):
                if "Package" in para and "Version" in para:
                    key = (para["Package"], para["Version"], para.get("Architecture", ""))
                    table[key] = para
        self._entries[source_name] = table
        return table

    @staticmethod
    def _fetch_index(source: Source, base: str) -> str:
        errors = []
        for suffix, decompress in (*INDEX_SUFFIXES, ("", None)):
            try:
                data = http_get(base + suffix, cafile=source.cafile)
            except FileNotFoundError as err:
                errors.append(str(err))
                continue
            except OSError as err:
                raise MissingArtifactError(
                    f"apt source {source.name}",
                    f"cannot fetch its index: {err}",
                    "check the source URL and the network, or build offline with --from",
                ) from err
            return (decompress(data) if decompress else data).decode("utf-8", "replace")
        raise MissingArtifactError(
            f"apt source {source.name}",
            f"no Packages index at {base}[.xz|.gz|.bz2]",
            "check the source's url, suite and components in the manifest",
        )

    def find(self, pkg: Package) -> dict[str, str]:
        table = self.entries(pkg.source)
        entry = table.get((pkg.name, pkg.version, pkg.arch))
        if entry is None:
            versions = sorted(v for (n, v, a) in table if n == pkg.name)
            known = (
                f"versions there: {', '.join(versions)}" if versions else "no such package there"
            )
            raise MissingArtifactError(
                pkg.label,
                f"not in the index of {pkg.source} ({known})",
                "fix the pinned version or architecture in the manifest",
            )
        return entry


def fetch_deb(pkg: Package, store: Store, index: AptIndex, workdir: Path) -> tuple[Path, str]:
    """A verified local copy of ``pkg`` and its sha256 (from the cache or the upstream)."""
    filename = deb_filename(pkg.name, pkg.version, pkg.arch)
    cached = store.lookup(pkg.label, "deb", filename, pkg.sha256)
    if cached is not None:
        return cached, pkg.sha256 or sha256_file(cached)
    entry = index.find(pkg)
    listed = entry.get("SHA256")
    if pkg.sha256 and listed and listed != pkg.sha256:
        raise DigestMismatchError(pkg.label, pkg.sha256, listed, f"the index of {pkg.source}")
    expected = pkg.sha256 or listed
    if not expected:
        raise ArtifactError(pkg.label, f"the index of {pkg.source} gives no SHA256 for it")
    source = index.sources[pkg.source]
    tmp = workdir / filename
    try:
        http_download(url_join(source.url, quote(entry["Filename"])), tmp, cafile=source.cafile)
    except OSError as err:
        raise MissingArtifactError(pkg.label, f"download failed: {err}") from err
    actual = sha256_file(tmp)
    if actual != expected:
        tmp.unlink()
        raise DigestMismatchError(pkg.label, expected, actual, f"the download from {pkg.source}")
    return store.store("deb", filename, tmp), actual


def deb_fields(path: Path) -> dict[str, str]:
    """The control fields of a .deb file."""
    out = run(["dpkg-deb", "--field", str(path)], what=f"read control fields of {path.name}")
    return parse_deb822(out)[0]


APT_CONF = """\
Dir "{root}/";
Dir::State::status "{root}/var/lib/dpkg/status";
Dir::Etc::SourceParts "{root}/etc/apt/sources.list.d";
Dir::Etc::TrustedParts "{root}/etc/apt/trusted.gpg.d";
Dir::Etc::Parts "{root}/etc/apt/apt.conf.d";
Dir::Etc::PreferencesParts "{root}/etc/apt/preferences.d";
APT::Architecture "{arch}";
APT::Architectures "{arch}";
APT::Install-Recommends "false";
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::Retries "2";
"""


def resolve_deb_closure(
    req: Resolve, sources: dict[str, Source], arch: str, store: Store, workdir: Path
) -> list[tuple[Package, Path]]:
    """Every package needed to install ``req.roots`` on an empty Debian system.

    apt does the resolution (with the sources' keyrings, so the indexes are verified), in a
    throwaway root with an empty dpkg status: the closure has everything the site needs.
    """
    what = {
        "kind": "deb",
        "arch": arch,
        "roots": sorted(req.roots),
        "sources": [
            [sources[s].url, sources[s].suite, list(sources[s].components)] for s in req.sources
        ],
    }
    key = closure_key(what)
    listed = store.load_closure("deb", key)
    if listed is not None:
        out = []
        for item in listed:
            pkg = Package("deb", item["name"], item["version"], item["arch"], item["sha256"], "")
            path = store.lookup(
                pkg.label, "deb", deb_filename(pkg.name, pkg.version, pkg.arch), pkg.sha256
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
    root = Path(tempfile.mkdtemp(prefix="apt-", dir=workdir))
    try:
        packages = _apt_download(req, sources, arch, root)
        out = []
        for deb in sorted(packages):
            fields = deb_fields(deb)
            sha = sha256_file(deb)
            pkg = Package(
                "deb", fields["Package"], fields["Version"], fields["Architecture"], sha, ""
            )
            path = store.store("deb", deb_filename(pkg.name, pkg.version, pkg.arch), deb)
            out.append((pkg, path))
        items = [
            {"name": p.name, "version": p.version, "arch": p.arch, "sha256": p.sha256}
            for p, _ in out
        ]
        store.save_closure("deb", key, what, items)
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _apt_download(req: Resolve, sources: dict[str, Source], arch: str, root: Path) -> list[Path]:
    for sub in (
        "etc/apt/sources.list.d",
        "etc/apt/trusted.gpg.d",
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "var/lib/dpkg",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text("")
    lines = []
    for name in req.sources:
        src = sources[name]
        if not src.keyring:
            raise ArtifactError(
                req.label,
                f"apt source {name} has no keyring, so its index cannot be verified",
                f"set sources.{name}.keyring to the repository's public key file",
            )
        if src.keyring.startswith(("https://", "http://")):
            keyring = root / "etc/apt/keyrings" / f"{name}.asc"
            keyring.parent.mkdir(parents=True, exist_ok=True)
            try:
                http_download(src.keyring, keyring, cafile=src.cafile)
            except OSError as err:
                raise ArtifactError(
                    req.label, f"cannot fetch the keyring of {name}: {err}"
                ) from err
        else:
            keyring = Path(src.keyring)
        if not keyring.is_file():
            raise ArtifactError(req.label, f"keyring {keyring} of apt source {name} does not exist")
        opts = f"[signed-by={keyring} arch={arch}]"
        comps = "" if src.flat else " " + " ".join(src.components)
        lines.append(f"deb {opts} {src.url} {src.suite}{comps}")
    (root / "etc/apt/sources.list").write_text("\n".join(lines) + "\n")
    conf = root / "etc/apt/apt.conf"
    conf.write_text(APT_CONF.format(root=root, arch=arch))
    env = {"APT_CONFIG": str(conf), "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], what=f"{req.label}: apt-get update", env=env)
    run(
        ["apt-get", "install", "-q", "-y", "--download-only", *req.roots],
        what=f"{req.label}: apt-get install --download-only",
        env=env,
    )
    return list((root / "var/cache/apt/archives").glob("*.deb"))
