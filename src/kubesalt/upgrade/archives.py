"""What an archive carries, and which archive an upgrade or a downgrade goes to.

An archive's versions come from its own files, never from the code that reads them, so the
running kubesalt can describe an older or a newer archive: `product.txt` (VERSION, and
KUBERNETES_VERSION, the Kubernetes release it deploys), `manifest.lock.yaml` (the Salt
wheel's version) and the `kubesalt/data/images.yaml` inside its kubesalt wheel (the image
tags: etcd, the control plane, the addons).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from kubesalt.bootstrap import archive as karchive
from kubesalt.errors import KubesaltError
from kubesalt.kubeadm import images as kimages
from kubesalt.upgrade import UpgradeError

# product.txt: the Kubernetes release the archive deploys (written by iso/build).
IMAGES_IN_WHEEL = "kubesalt/data/images.yaml"
SALT_WHEEL = "salt"  # the name of Salt's entry in manifest.lock.yaml's wheels
_KUBERNETES = re.compile(r"^v?([0-9]+)\.([0-9]+)\.([0-9]+)$")
UPGRADE = "upgrade"
DOWNGRADE = "downgrade"
DIRECTIONS = (UPGRADE, DOWNGRADE)


@dataclass(frozen=True)
class Versions:
    """What one archive carries: the product version, Kubernetes (`v1.33.5`), Salt, and
    the tag of each image by name (`etcd`, `kube-apiserver`, `coredns`...)."""

    kubesalt: str
    kubernetes: str
    salt: str
    images: dict

    @property
    def etcd(self) -> str:
        return self.images.get("etcd", "")


def kubernetes_version(fields: dict, source: str) -> str:
    """The Kubernetes release a product.txt names, as `v<major>.<minor>.<patch>`."""
    value = fields.get(karchive.KUBERNETES_VERSION, "")
    if not value:
        raise UpgradeError(
            f"{source}: no {karchive.KUBERNETES_VERSION}: this archive does not say which Kubernetes "
            "release it carries (it was built before iso/build recorded it); rebuild it with "
            "a current iso/build"
        )
    match = _KUBERNETES.match(value)
    if not match:
        raise UpgradeError(
            f"{source}: {karchive.KUBERNETES_VERSION} is {value[:80]!r}, not a Kubernetes version like "
            "v1.34.1; rebuild the archive with iso/build"
        )
    return "v" + ".".join(match.groups())


def minor(version: str) -> tuple[int, int]:
    """(major, minor) of a Kubernetes version (`v1.33.5` -> (1, 33))."""
    match = _KUBERNETES.match(version)
    if not match:
        raise UpgradeError(f"{version!r} is not a Kubernetes version like v1.34.1")
    return int(match.group(1)), int(match.group(2))


def image_tags(data, kubernetes: str, source: str) -> dict[str, str]:
    """{image name: tag} of the release `kubernetes` (the one product.txt names) in a parsed
    images.yaml, which may hold several releases (kubesalt.kubeadm.images.parse_releases)."""
    try:
        releases = kimages.parse_releases(data, source)
    except KubesaltError as err:
        raise UpgradeError(
            f"{err}; the archive's kubesalt wheel is damaged: copy the ISO again"
        ) from err
    if kubernetes not in releases:
        raise UpgradeError(
            f"{source} has no images of Kubernetes {kubernetes} (it has {', '.join(releases)}), "
            f"but product.txt says {karchive.KUBERNETES_VERSION}={kubernetes}; rebuild the "
            "archive with iso/build"
        )
    return {name: image.tag for name, image in releases[kubernetes].items()}


def salt_version(lock, source: str) -> str:
    """The version of the Salt wheel a parsed manifest.lock.yaml lists."""
    wheels = lock.get("wheels") if isinstance(lock, dict) else None
    found = [w.get("version") for w in wheels or () if isinstance(w, dict)
             and w.get("name") == SALT_WHEEL]  # fmt: skip
    if len(found) != 1 or not found[0]:
        raise UpgradeError(
            f"{source}: lists {len(found)} Salt wheel(s), not one with its version; "
            "rebuild the archive with iso/build"
        )
    return str(found[0])


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise UpgradeError(
            f"{path}: cannot be read ({err.strerror}); is the archive still mounted? "
            "(kubesalt-iso list shows where each archive is)"
        ) from err


def _wheel_images(wheel: str) -> tuple[object, str]:
    """The parsed images.yaml inside the kubesalt wheel `wheel`, and where it was read."""
    source = f"{wheel}:{IMAGES_IN_WHEEL}"
    try:
        with zipfile.ZipFile(wheel) as zipped:
            return yaml.safe_load(zipped.read(IMAGES_IN_WHEEL)), source
    except (OSError, KeyError, zipfile.BadZipFile, yaml.YAMLError) as err:
        raise UpgradeError(
            f"{source}: cannot be read ({err}); the archive's kubesalt wheel is damaged: "
            "copy the ISO again"
        ) from err


def read_versions(found: karchive.Archive) -> Versions:
    """Every version the archive at `found.root` carries; UpgradeError naming the file
    that lacks one."""
    product = found.path(karchive.PRODUCT)
    fields = karchive.parse_product(_read(product), product)
    kubernetes = kubernetes_version(fields, product)
    data, source = _wheel_images(karchive.kubesalt_wheel(found))
    lock = found.path(karchive.LOCK)
    try:
        parsed_lock = yaml.safe_load(_read(lock))
    except yaml.YAMLError as err:
        raise UpgradeError(f"{lock}: not YAML ({err}); copy the ISO again") from err
    return Versions(
        kubesalt=fields["VERSION"],
        kubernetes=kubernetes,
        salt=salt_version(parsed_lock, lock),
        images=image_tags(data, kubernetes, source),
    )


def version_key(version: str) -> tuple:
    """A kubesalt version's sort key: its three numbers, then the rest (`-rc1`, `+lab`)."""
    numbers, rest = re.match(r"^([0-9]+(?:\.[0-9]+)*)(.*)$", version).groups()
    return tuple(int(n) for n in numbers.split(".")), rest


def target_archive(direction: str, registered: list[karchive.Archive],
                   shipped: str) -> karchive.Archive | None:  # fmt: skip
    """The archive to go to: for an upgrade, the registered archive of version `shipped`
    (the one upgrade.sh comes from); for a downgrade, the newest registered archive older
    than `shipped` (downgrade.sh comes from the archive the cluster runs, or ran before a
    downgrade that stopped). None when there is none."""
    if direction == UPGRADE:
        return next((a for a in registered if a.version == shipped), None)
    older = [a for a in registered if version_key(a.version) < version_key(shipped)]
    return max(older, key=lambda a: version_key(a.version), default=None)
