"""The kubesalt archive (an ISO file, or a directory holding an extracted ISO).

The ISO tree is laid out by `kubesalt_isobuild` (docs/iso.md); this module names the parts
bootstrap.sh and the Salt states use, decides where an ISO is mounted, and keeps the
register of archives (`/etc/kubesalt/archives.yaml`) that the Salt configuration, the
repository definitions and nginx read. A registered archive gives one saltenv
(`kubesalt-<version>`), one repository path and one set of images.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from kubesalt.bootstrap.phases import BootstrapError

REGISTER = "/etc/kubesalt/archives.yaml"
MOUNT_BASE = "/srv/kubesalt"

# Parts of the ISO tree: the one definition, which the ISO build (kubesalt_isobuild) lays out.
PRODUCT = "product.txt"
SUMS = "SHA256SUMS"
# The detached signature of SHA256SUMS, made with the key that signs the repositories.
SUMS_SIGNATURE = "SHA256SUMS.asc"
LOCK = "manifest.lock.yaml"  # every artifact of the archive, packages with their versions
APT_DIR = "deb"
APT_SUITE = "kubesalt"
APT_COMPONENT = "main"
YUM_DIR = "rpm"
KEYRING = "kubesalt-archive-keyring.gpg"
ARMORED_KEY = "kubesalt-archive-key.asc"
IMAGES_DIR = "images"
WHEELS_DIR = "wheels"
SALT_DIR = "salt"
PILLAR_DIR = "pillar"
# What a usable archive must hold (relative paths), with what each is for.
REQUIRED = {
    PRODUCT: "the product name and version",
    f"{SALT_DIR}/top.sls": "the Salt tree",
    f"{PILLAR_DIR}/top.sls": "the pillar tree",
    WHEELS_DIR: "Salt and kubesalt as Python wheels",
    f"{APT_DIR}/dists/{APT_SUITE}/InRelease": "the signed apt repository",
    KEYRING: "the key that signs the repositories",
    SUMS: "the sha256 of every file",
    SUMS_SIGNATURE: "the signature of SHA256SUMS",
}
# product.txt: the wheels bootstrap.sh runs, named by this signed metadata (SHA256SUMS lists
# product.txt) rather than found by a glob that an added file could win.
KUBESALT_WHEEL = "KUBESALT_WHEEL"
LIBRARY_WHEELS = "LIBRARY_WHEELS"
# product.txt: the Kubernetes version the archive carries (kubesalt-iso list shows it).
KUBERNETES_VERSION = "KUBERNETES_VERSION"
# A version becomes part of paths (mount points, nginx locations, apt files), of Salt
# environments and of shell commands (pip's `kubesalt==<version>`): digits and dots, then
# optional [-+.] segments of letters and digits. bootstrap.sh holds the same pattern.
VERSION_PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+([-+.][0-9A-Za-z]+)*$"
VERSION_MAX = 64
WHEEL_PATTERN = r"^wheels/[A-Za-z0-9_.+-]+\.whl$"
# The operator's fingerprint of the archive key, from --archive-fingerprint or this variable.
FINGERPRINT_ENV = "KUBESALT_ARCHIVE_FINGERPRINT"
_SUM_LINE = re.compile(r"^([0-9a-f]{64})  (\S.*)$")
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """One registered archive: where it comes from, where its tree is, what it holds."""

    source: str  # the ISO file or the directory, as configured
    root: str  # the directory holding the ISO tree (mount point or the directory)
    kind: str  # "iso" or "directory"
    name: str
    version: str
    flavour: str = ""

    @property
    def saltenv(self) -> str:
        return saltenv(self.version)

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)


def saltenv(version: str) -> str:
    """The saltenv (and pillarenv) of an archive version: `kubesalt-<version>`."""
    return f"kubesalt-{version}"


def check_version(
    version: str, source: str, hint: str = "rebuild the archive with iso/build"
) -> str:
    """`version` when it matches VERSION_PATTERN (at most VERSION_MAX characters)."""
    if len(version) > VERSION_MAX or not re.fullmatch(VERSION_PATTERN, version):
        raise BootstrapError(
            f"{source}: VERSION {version[:80]!r} is not a kubesalt version (digits like "
            "1.2.3, then optional -rc1, +lab or .dev2 parts; letters, digits and . + - only, "
            f"at most {VERSION_MAX} characters); {hint}"
        )
    return version


def check_wheel_path(path: str, key: str, source: str) -> str:
    """`path` when it names a wheel directly in wheels/ (no other directory, no quoting)."""
    if not re.fullmatch(WHEEL_PATTERN, path):
        raise BootstrapError(
            f"{source}: {key} names {path[:120]!r}, not a file wheels/<name>.whl; "
            "rebuild the archive with iso/build"
        )
    return path


def parse_product(text: str, source: str) -> dict[str, str]:
    """`product.txt` (KEY=value lines); NAME and VERSION are required, VERSION must match
    VERSION_PATTERN and the wheel fields, when present, must name files of wheels/."""
    fields = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            if key.strip() in fields:
                # bootstrap.sh reads one line per key: two could make it and this differ.
                raise BootstrapError(
                    f"{source}: {key.strip()} is given twice; rebuild the archive with iso/build"
                )
            fields[key.strip()] = value.strip().strip("'\"")
    missing = [key for key in ("NAME", "VERSION") if not fields.get(key)]
    if missing:
        raise BootstrapError(
            f"{source}: {', '.join(missing)} missing; this is not a kubesalt archive "
            "(rebuild it with iso/build)"
        )
    check_version(fields["VERSION"], source)
    if KUBESALT_WHEEL in fields:
        check_wheel_path(fields[KUBESALT_WHEEL], KUBESALT_WHEEL, source)
    for path in fields.get(LIBRARY_WHEELS, "").split():
        check_wheel_path(path, LIBRARY_WHEELS, source)
    return fields


def normalize_fingerprint(text: str) -> str:
    """An OpenPGP v4 fingerprint as 40 upper-case hex digits (spaces and 0x removed)."""
    value = text.replace(" ", "").upper().removeprefix("0X")
    if not re.fullmatch(r"[0-9A-F]{40}", value):
        raise BootstrapError(
            f"archive key fingerprint {text[:80]!r} is not 40 hex digits; give the full "
            f"fingerprint the ISO build printed (--archive-fingerprint or {FINGERPRINT_ENV})"
        )
    return value


def valid_signers(status: str) -> list[str]:
    """The primary-key fingerprints of the good signatures in gpgv's --status-fd output."""
    signers = []
    for line in status.splitlines():
        fields = line.split()
        if fields[:2] == ["[GNUPG:]", "VALIDSIG"] and len(fields) >= 12:
            signers.append(fields[11].upper())
    return signers


def verify_signature(root: str, fingerprint: str | None = None) -> str:
    """Check SUMS_SIGNATURE over SUMS with the archive's keyring (gpgv); with `fingerprint`
    (the operator's), the signing key must be that one. Returns the signer's fingerprint."""
    paths = {name: os.path.join(root, name) for name in (KEYRING, SUMS, SUMS_SIGNATURE)}
    absent = [name for name, path in paths.items() if not os.path.isfile(path)]
    if absent:
        raise BootstrapError(
            f"archive {root} lacks {', '.join(absent)}: it cannot be verified; use an archive "
            "built by an iso/build that signs SHA256SUMS"
        )
    result = subprocess.run(
        ["gpgv", "--status-fd", "1", "--keyring", paths[KEYRING], paths[SUMS_SIGNATURE],
         paths[SUMS]],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    signers = valid_signers(result.stdout)
    if result.returncode != 0 or not signers:
        said = "; ".join((result.stderr.strip() or result.stdout.strip()).splitlines())[-600:]
        raise BootstrapError(
            f"{paths[SUMS_SIGNATURE]} is not a good signature of {SUMS} by the key in {KEYRING} "
            f"(gpgv said: {said}); the archive is damaged or was changed: copy or extract "
            "the ISO again"
        )
    if fingerprint is not None:
        wanted = normalize_fingerprint(fingerprint)
        if wanted not in signers:
            raise BootstrapError(
                f"{paths[SUMS]} of {root} is signed by key {', '.join(signers)}, not by "
                f"{wanted} (the fingerprint you gave): this archive was not built with the "
                "key you expect; get the ISO from its builder again, or check the fingerprint"
            )
    return signers[0]


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_sums(text: str, source: str) -> dict[str, str]:
    """SHA256SUMS as relative path -> hex digest; a line that is not `<64 hex>  <path>`
    with a plain relative path is an error (nothing is skipped)."""
    listed = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _SUM_LINE.match(line)
        rel = match.group(2) if match else ""
        parts = rel.split("/")
        if not match or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise BootstrapError(
                f"{source} line {number}: {line[:120]!r} is not '<sha256>  <relative path>'; "
                "the archive is damaged or was changed: copy or extract the ISO again"
            )
        listed[rel] = match.group(1)
    return listed


def archive_files(root: str) -> list[str]:
    """Every entry under `root` that is not a directory (files, symlinks, others), as sorted
    relative POSIX paths."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        entries = filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in entries:
            found.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return sorted(found)


def sums_problems(root: str, listed: dict[str, str]) -> list[str]:
    """Files that differ from `listed`, are missing, are not regular files, or are not
    listed at all (SUMS and its signature excepted)."""
    problems = []
    for rel, digest in sorted(listed.items()):
        path = os.path.join(root, rel)
        if os.path.islink(path) or not os.path.isfile(path):
            problems.append(f"{rel}: missing or not a regular file")
        elif _sha256(path) != digest:
            problems.append(f"{rel}: sha256 differs")
    unsigned = {SUMS, SUMS_SIGNATURE}
    problems += [
        f"{rel}: not listed in {SUMS}"
        for rel in archive_files(root)
        if rel not in listed and rel not in unsigned
    ]
    return problems


def verify(root: str, fingerprint: str | None = None) -> str:
    """Verify an archive tree: the signature of SHA256SUMS, then every file against it, no
    file left unlisted. Returns the signing key's fingerprint."""
    signer = verify_signature(root, fingerprint)
    sums = os.path.join(root, SUMS)
    problems = sums_problems(root, parse_sums(Path(sums).read_text(encoding="utf-8"), sums))
    if problems:
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise BootstrapError(
            f"archive {root} does not match its signed {SUMS} ({len(problems)} problem(s)):"
            f"\n  {shown}{more}\nThe archive is damaged or was changed: copy or extract "
            "the ISO again"
        )
    return signer


def kind_of(source: str) -> str:
    """`iso` for a file, `directory` for a directory; an error for anything else."""
    if os.path.isdir(source):
        return "directory"
    if os.path.isfile(source):
        return "iso"
    raise BootstrapError(
        f"archive {source} does not exist; give the path of the kubesalt ISO or of a "
        "directory holding an extracted ISO (archives in bootstrap.yaml, or --archive)"
    )


def mount_point(iso: str) -> str:
    """Where an ISO file is mounted: /srv/kubesalt/<file name without .iso>."""
    name = os.path.basename(iso)
    if name.lower().endswith(".iso"):
        name = name[:-4]
    return os.path.join(MOUNT_BASE, name)


def missing_parts(root: str) -> list[str]:
    """The required parts absent from an archive tree, each with what it is for."""
    return [
        f"{rel} ({what})"
        for rel, what in REQUIRED.items()
        if not os.path.exists(os.path.join(root, rel))
    ]


def describe(source: str, root: str, kind: str) -> Archive:
    """Read an archive tree's product.txt and check it holds what bootstrap needs."""
    product_path = os.path.join(root, PRODUCT)
    try:
        text = Path(product_path).read_text(encoding="utf-8")
    except OSError as err:
        raise BootstrapError(
            f"{product_path}: cannot be read ({err.strerror}); {source} is not a kubesalt "
            "archive (an ISO built by iso/build, or a directory holding one extracted)"
        ) from err
    fields = parse_product(text, product_path)
    missing = missing_parts(root)
    if missing:
        raise BootstrapError(
            f"archive {source} lacks {'; '.join(missing)}; rebuild it with iso/build "
            "or extract the whole ISO again"
        )
    return Archive(
        source=source,
        root=root,
        kind=kind,
        name=fields["NAME"],
        version=fields["VERSION"],
        flavour=fields.get("FLAVOUR", ""),
    )


def kubesalt_wheel(found: Archive) -> str:
    """The path of the kubesalt wheel that product.txt names (KUBESALT_WHEEL)."""
    product = found.path(PRODUCT)
    fields = parse_product(Path(product).read_text(encoding="utf-8"), product)
    if KUBESALT_WHEEL not in fields:
        raise BootstrapError(
            f"{product} names no {KUBESALT_WHEEL}; rebuild the archive with an iso/build that "
            "records it"
        )
    return found.path(fields[KUBESALT_WHEEL])


def fstab_line(iso: str, where: str, fuse: bool) -> str:
    """The /etc/fstab line that mounts an ISO read-only again at boot."""
    if fuse:
        return f"fuseiso#{iso} {where} fuse ro,nofail,allow_other 0 0"
    return f"{iso} {where} iso9660 loop,ro,nofail 0 0"


def _mounts_at(line: str, where: str) -> bool:
    """Whether an fstab line (not a comment) mounts something at `where`."""
    fields = line.split()
    return len(fields) >= 2 and not line.lstrip().startswith("#") and fields[1] == where


def fstab_with(text: str, line: str, where: str) -> str | None:
    """fstab content with `line` for mount point `where` (replacing an older one), or
    None when the file already holds exactly that line."""
    kept = []
    for current in text.splitlines():
        if _mounts_at(current, where):
            if current.strip() == line:
                return None
            continue
        kept.append(current)
    kept.append(line)
    return "\n".join(kept) + "\n"


def fstab_without(text: str, where: str) -> str | None:
    """fstab content without the lines that mount at `where`, or None when it has none."""
    lines = text.splitlines()
    kept = [line for line in lines if not _mounts_at(line, where)]
    if len(kept) == len(lines):
        return None
    return "".join(f"{line}\n" for line in kept)


def register_text(archives: list[Archive], current: str | None = None) -> str:
    """The content of /etc/kubesalt/archives.yaml; `current` is the version of the archive
    the cluster runs (the first archive's when not given)."""
    if current is None and archives:
        current = archives[0].version
    if current is not None and current not in {a.version for a in archives}:
        raise BootstrapError(
            f"{current!r} cannot be the current archive: it is not one of the registered "
            f"versions ({', '.join(a.version for a in archives) or 'none'})"
        )
    data = {
        "current": current,
        "archives": [dict(asdict(a), saltenv=a.saltenv) for a in archives],
    }
    header = (
        "# Managed by bootstrap.sh and kubesalt-iso: the kubesalt archives of this bootstrap\n"
        "# node. Each one is a saltenv (kubesalt-<version>), a repository path and a set of\n"
        "# images; `current` is the one the cluster runs (its saltenv is the master's and the\n"
        "# minions').\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False)


def _register_data(path: str) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as err:
        raise BootstrapError(f"{path}: cannot be read ({err}); run bootstrap.sh again") from err
    if not isinstance(data, dict):
        raise BootstrapError(f"{path}: not a mapping of archives; run bootstrap.sh again")
    return data


def load_register(path: str = REGISTER) -> list[Archive]:
    """The registered archives (empty when the register does not exist yet)."""
    fields = {"source", "root", "kind", "name", "version", "flavour"}
    archives = [
        Archive(**{k: v for k, v in item.items() if k in fields})
        for item in _register_data(path).get("archives", [])
    ]
    for found in archives:
        check_version(str(found.version), path)
    return archives


def load_current(path: str = REGISTER) -> str | None:
    """The version of the archive the cluster runs: the register's `current`, else (a
    register written before it was recorded) its first archive's; None when it is empty."""
    data = _register_data(path)
    archives = data.get("archives") or []
    current = data.get("current") or (archives[0].get("version") if archives else None)
    return None if current is None else str(current)


def set_current(version: str, write, path: str = REGISTER) -> bool:
    """Record `version` (a registered one) as the archive the cluster runs; `write(path,
    text) -> changed` writes the register (bootstrap's System.write). Returns whether the
    register changed. The upgrade moves the cluster with it once every node runs `version`."""
    return write(path, register_text(load_register(path), version))


APT_KEYRINGS_DIR = "/etc/apt/keyrings"
APT_SOURCES_DIR = "/etc/apt/sources.list.d"


def apt_keyring_path(archive: Archive) -> str:
    return f"{APT_KEYRINGS_DIR}/{archive.saltenv}.gpg"


def apt_sources_path(archive: Archive) -> str:
    return f"{APT_SOURCES_DIR}/{archive.saltenv}.sources"


def apt_file_patterns() -> tuple[str, str]:
    """Globs matching every archive's apt source and key, registered or not."""
    return (f"{APT_SOURCES_DIR}/{saltenv('*')}.sources", f"{APT_KEYRINGS_DIR}/{saltenv('*')}.gpg")


def stale_apt_files(archives: list[Archive], found: list[str]) -> list[str]:
    """Of the apt sources and keys `found` (apt_file_patterns), those of no registered
    archive: kubesalt-iso remove took the archive away, its repository must go too."""
    kept = {apt_sources_path(a) for a in archives} | {apt_keyring_path(a) for a in archives}
    return sorted(path for path in found if path not in kept)


def apt_sources(archive: Archive, base_url: str | None = None) -> str:
    """The deb822 source of an archive's apt repository: `file://` on the node that holds
    the archive, else `base_url` (nginx on the bootstrap node)."""
    uri = base_url or f"file://{archive.path(APT_DIR)}"
    return (
        f"# Managed by kubesalt: the apt repository of {archive.name} {archive.version}.\n"
        "Types: deb\n"
        f"URIs: {uri}\n"
        f"Suites: {APT_SUITE}\n"
        f"Components: {APT_COMPONENT}\n"
        f"Signed-By: {apt_keyring_path(archive)}\n"
    )


def apt_only_archive_options(archive: Archive) -> list[str]:
    """apt options that make this archive's source file the only source apt reads."""
    return [
        "-o",
        f"Dir::Etc::sourcelist={apt_sources_path(archive)}",
        "-o",
        "Dir::Etc::sourceparts=-",
    ]


def apt_update_command(archive: Archive) -> list[str]:
    """apt-get update of this archive's source only: an air-gapped node cannot reach the
    others, and their failures must not hide ours."""
    return [
        "apt-get",
        "update",
        "-q",
        *apt_only_archive_options(archive),
        "-o",
        "APT::Get::List-Cleanup=0",
    ]
