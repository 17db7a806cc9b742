"""Packages come from the archive only, at the versions the archive pins.

An air-gapped node may still list other sources (an installer's mirror, a proxy): a plain
`pkg.installed` would refresh every source (Salt refreshes the package database once per
run) and take the newest version any of them offers. So every package kubesalt installs
gets: the version the archive's `manifest.lock.yaml` records for it (the ISO build writes
that file: every package of the archive's repository, name and version), the archive's
repository as the one to install from (apt: `-t kubesalt`, the archive's suite; dnf:
`--disablerepo=* --enablerepo=<saltenv>`), no recommends (the archive's closure has none),
and no refresh (only the archive's own index is refreshed, by kubesalt.repo and
kubesalt.salt.minion.remote, with `archive.apt_update_command`).

The node learns the pins through the pillar key `kubesalt_packages` (the ext_pillar of the
same name reads the lock of the node's saltenv on the bootstrap node).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from kubesalt.bootstrap import archive as _archive
from kubesalt.errors import KubesaltError

# The package kinds of the lock, by Salt's os_family grain.
KINDS = {"Debian": "deb", "RedHat": "rpm"}


class PackageError(KubesaltError):
    """A package cannot be installed from the archive as pinned."""


def pins_from_lock(lock, source: str) -> dict[str, dict[str, str]]:
    """{"deb": {name: version}, "rpm": {name: version}} from a parsed manifest.lock.yaml.
    A name with two versions is an error: the archive must pin one."""
    if not isinstance(lock, dict):
        raise PackageError(f"{source}: not a manifest lock (a mapping with deb and rpm lists)")
    pins: dict[str, dict[str, str]] = {}
    for kind in sorted(set(KINDS.values())):
        found: dict[str, str] = {}
        for entry in lock.get(kind) or ():
            if not isinstance(entry, dict) or not entry.get("name") or not entry.get("version"):
                raise PackageError(
                    f"{source}: a {kind} entry without name and version ({entry!r}); "
                    "rebuild the archive with iso/build"
                )
            name, version = str(entry["name"]), str(entry["version"])
            if found.get(name, version) != version:
                raise PackageError(
                    f"{source}: {kind} package {name} is listed at two versions "
                    f"({found[name]} and {version}); the archive must pin one: rebuild it "
                    "with one version of each package in iso/manifest.yaml"
                )
            found[name] = version
        pins[kind] = found
    return pins


# {lock path: ((inode, size, mtime), pins)}: the master compiles a node's pillar on every
# state run, and parsing the lock with PyYAML was most of that (8 of the master's 22 CPU
# seconds while three nodes deploy together); a rewritten lock has another stat.
_PINS_READ: dict[str, tuple[tuple[int, int, int], dict]] = {}


def read_pins(root: str) -> dict[str, dict[str, str]]:
    """The pins of the archive whose tree is at `root` (parsed once while the lock is
    unchanged; each call gets its own copy)."""
    path = Path(root, _archive.LOCK)
    try:
        info = path.stat()
        stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
        cached = _PINS_READ.get(str(path))
        if cached is None or cached[0] != stamp:
            lock = yaml.safe_load(path.read_text(encoding="utf-8"))
            cached = _PINS_READ[str(path)] = (stamp, pins_from_lock(lock, str(path)))
    except FileNotFoundError:
        raise PackageError(
            f"{path} is missing: the archive records no package versions; rebuild it with iso/build"
        ) from None
    except (OSError, yaml.YAMLError) as err:
        raise PackageError(
            f"{path}: cannot be read ({err}); copy or extract the ISO again"
        ) from err
    return {kind: dict(versions) for kind, versions in cached[1].items()}


def kind_of(os_family: str) -> str:
    try:
        return KINDS[os_family]
    except KeyError:
        raise PackageError(
            f"os_family {os_family!r}: kubesalt installs packages on {' and '.join(KINDS)} "
            "systems only"
        ) from None


def pinned(pins: dict, names: Iterable[str], os_family: str, saltenv: str) -> dict[str, str]:
    """{name: pinned version} for `names`; a name the archive does not pin is an error."""
    kind = kind_of(os_family)
    known = (pins or {}).get(kind) or {}
    missing = [name for name in names if name not in known]
    if missing:
        raise PackageError(
            f"the archive of {saltenv} pins no version of {', '.join(missing)} ({kind}): "
            f"it is not in the archive's {_archive.LOCK} (pillar kubesalt_packages, "
            f"{len(known)} {kind} packages). Use an archive built for this system, or check "
            "that the master runs the kubesalt_packages ext_pillar (kubesalt.salt.master)"
        )
    return {name: known[name] for name in names}


def install_options(pins: dict, names: Iterable[str], os_family: str, saltenv: str) -> dict:
    """The arguments of a `pkg.installed` state that installs `names` from the archive only:
    `pkgs` [{name: version}], `fromrepo`, `refresh` false, `install_recommends` false."""
    names = list(names)
    if not names:
        raise PackageError("install_options: give at least one package name")
    versions = pinned(pins, names, os_family, saltenv)
    # apt: -t <the archive's suite> makes every package the archive has win over other
    # sources, dependencies included; yum/dnf: only the archive's repository is enabled.
    repo = _archive.APT_SUITE if kind_of(os_family) == "deb" else saltenv
    return {
        "pkgs": [{name: versions[name]} for name in names],
        "fromrepo": repo,
        "refresh": False,
        "install_recommends": False,
    }


# Packages that are one Kubernetes release. A kubelet must never be newer than the API
# servers (Kubernetes' version skew policy), and an archive pins the release it was built
# for. In an upgrade, every minion moves to the new archive first, while each node's files
# keep rendering its recorded release until its own stage (docs/upgrade.md); a highstate
# run in between must not move its kubelet early.
RELEASE_BOUND = ("kubelet", "kubectl")


def upstream(version: str) -> str:
    """The upstream part of a package version: `1:1.34.2-150500.1.1` gives `1.34.2`."""
    return version.split(":", 1)[-1].split("-", 1)[0]


def release_hold(pins, names, os_family, saltenv, release, installed_version) -> dict | None:
    """None when the archive pins every release-bound package of `names` at `release` (the
    node's, `v1.33.5`): install them as pinned. Otherwise what the package state does
    instead, {"result", "comment"}: the packages stay as they are, which is right (result
    True) when each is installed at `release`, and a failure saying what to do when one is
    missing or at another release. `installed_version(name)`: "" when not installed.
    Meant for a state that installs only release-bound packages (kubesalt.kubelet)."""
    names = list(names)
    versions = pinned(pins, names, os_family, saltenv)
    wanted = release.lstrip("v")
    off = {n: v for n, v in versions.items() if n in RELEASE_BOUND and upstream(v) != wanted}
    if not off:
        return None
    bound = [name for name in names if name in RELEASE_BOUND]
    installed = {name: installed_version(name) or "" for name in bound}
    why = (
        f"this node runs Kubernetes {release} (its files render it) and the archive of "
        f"{saltenv} pins {', '.join(f'{n} {v}' for n, v in off.items())}"
    )
    wrong = [n for n in bound if upstream(installed[n]) != wanted]
    if not wrong:
        kept = ", ".join(f"{n} {installed[n]}" for n in bound)
        return {
            "result": True,
            "comment": f"kept {kept}: {why}; the upgrade or downgrade moves them when it "
            "records the node's new release (docs/upgrade.md)",
        }
    found = ", ".join(f"{n} {installed[n] or 'not installed'}" for n in wrong)
    return {
        "result": False,
        "comment": f"{found}, not {release}: {why}, so nothing was installed (a kubelet "
        "newer than the API servers breaks the cluster). Finish the upgrade or downgrade "
        "that moves this node (docs/upgrade.md); on a new cluster, set kubernetes.version "
        "in bootstrap.yaml to the archive's release or use an archive built for "
        f"{release} (iso/build --kubernetes-version {release})",
    }


def apt_install_command(archive: _archive.Archive, pins: dict, names: Iterable[str]) -> list[str]:
    """apt-get install of `names` at the archive's versions, seeing the archive's source
    alone (no other source can give a package or a dependency), leaving apt's cache files
    as they were (the restricted view is built in memory)."""
    versions = pinned(pins, list(names), "Debian", archive.saltenv)
    return [
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        *_archive.apt_only_archive_options(archive),
        "-o",
        "Dir::Cache::pkgcache=",
        "-o",
        "Dir::Cache::srcpkgcache=",
        *(f"{name}={version}" for name, version in versions.items()),
    ]
