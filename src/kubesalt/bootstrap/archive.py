"""The kubesalt archive (an ISO file, or a directory holding an extracted ISO).

The ISO tree is laid out by `kubesalt_isobuild` (docs/iso.md); this module names the parts
bootstrap.sh and the Salt states use, decides where an ISO is mounted, and keeps the
register of archives (`/etc/kubesalt/archives.yaml`) that the Salt configuration, the
repository definitions and nginx read. A registered archive gives one saltenv
(`kubesalt-<version>`), one repository path and one set of images.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from kubesalt.bootstrap.phases import BootstrapError

REGISTER = "/etc/kubesalt/archives.yaml"
MOUNT_BASE = "/srv/kubesalt"

# Parts of the ISO tree: the one definition, which the ISO build (kubesalt_isobuild) lays out.
PRODUCT = "product.txt"
SUMS = "SHA256SUMS"
LOCK = "manifest.lock.yaml"  # every artifact of the archive, packages with their versions
APT_DIR = "deb"
APT_SUITE = "kubesalt"
APT_COMPONENT = "main"
YUM_DIR = "rpm"
KEYRING = "kubesalt-archive-keyring.gpg"
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
}


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


def parse_product(text: str, source: str) -> dict[str, str]:
    """`product.txt` (KEY=value lines); NAME and VERSION are required."""
    fields = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            fields[key.strip()] = value.strip().strip("'\"")
    missing = [key for key in ("NAME", "VERSION") if not fields.get(key)]
    if missing:
        raise BootstrapError(
            f"{source}: {', '.join(missing)} missing; this is not a kubesalt archive "
            "(rebuild it with iso/build)"
        )
    return fields


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


def fstab_line(iso: str, where: str, fuse: bool) -> str:
    """The /etc/fstab line that mounts an ISO read-only again at boot."""
    if fuse:
        return f"fuseiso#{iso} {where} fuse ro,nofail,allow_other 0 0"
    return f"{iso} {where} iso9660 loop,ro,nofail 0 0"


def fstab_with(text: str, line: str, where: str) -> str | None:
    """fstab content with `line` for mount point `where` (replacing an older one), or
    None when the file already holds exactly that line."""
    kept = []
    for current in text.splitlines():
        fields = current.split()
        if len(fields) >= 2 and not current.lstrip().startswith("#") and fields[1] == where:
            if current.strip() == line:
                return None
            continue
        kept.append(current)
    kept.append(line)
    return "\n".join(kept) + "\n"


def register_text(archives: list[Archive]) -> str:
    """The content of /etc/kubesalt/archives.yaml."""
    data = {"archives": [dict(asdict(a), saltenv=a.saltenv) for a in archives]}
    header = (
        "# Managed by bootstrap.sh: the kubesalt archives of this bootstrap node.\n"
        "# Each one is a saltenv (kubesalt-<version>), a repository path and a set of images.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False)


def load_register(path: str = REGISTER) -> list[Archive]:
    """The registered archives (empty when the register does not exist yet)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return []
    except (OSError, yaml.YAMLError) as err:
        raise BootstrapError(f"{path}: cannot be read ({err}); run bootstrap.sh again") from err
    fields = {"source", "root", "kind", "name", "version", "flavour"}
    return [
        Archive(**{k: v for k, v in item.items() if k in fields})
        for item in data.get("archives", [])
    ]


def apt_keyring_path(archive: Archive) -> str:
    return f"/etc/apt/keyrings/{archive.saltenv}.gpg"


def apt_sources_path(archive: Archive) -> str:
    return f"/etc/apt/sources.list.d/{archive.saltenv}.sources"


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
