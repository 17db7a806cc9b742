"""The pinned container images (`kubesalt/data/images.yaml`), read in one place.

Static pod manifests reference images by canonical name and tag, as kubeadm does
(`registry.k8s.io/kube-apiserver:v1.33.5`), plus the digest the archive's registry serves
when the installed package knows it (`pinned_reference`): the ISO build pins and verifies
each upstream digest, and writes `kubesalt/data/archive-images.yaml` (the digest of each
image as stored in the ISO's layout, hence served by the bootstrap registry) into the
kubesalt wheel every node installs. A source checkout has no such file: tag only.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from importlib import resources

import yaml

from kubesalt.kubeadm import RenderError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_FIELDS = ("repository", "tag", "digest")
ARCHIVE_DIGESTS = "data/archive-images.yaml"


@dataclass(frozen=True)
class Image:
    """One pinned image: repository, tag, the upstream digest (once verified) and the
    digest the archive's registry serves (known in a package built by the ISO build)."""

    name: str
    repository: str
    tag: str
    digest: str | None
    archive_digest: str | None = None

    @property
    def reference(self) -> str:
        """`repository:tag`, the form kubeadm writes into manifests."""
        return f"{self.repository}:{self.tag}"

    @property
    def pinned_reference(self) -> str:
        """`repository:tag@digest` with the digest the archive's registry serves, when the
        package knows it, else `repository:tag`. (The upstream digest may name a manifest
        list the archive does not hold whole: it is not a pullable pin.)"""
        if self.archive_digest:
            return f"{self.reference}@{self.archive_digest}"
        return self.reference


def parse_images(data: object, source: str = "images.yaml") -> tuple[str, dict[str, Image]]:
    """Validate the parsed images.yaml `data`; return (kubernetesVersion, images by name)."""
    if not isinstance(data, dict):
        raise RenderError(f"{source}: expected a mapping with kubernetesVersion and images")
    version = data.get("kubernetesVersion")
    if not isinstance(version, str) or not re.match(r"^v\d+\.\d+\.\d+$", version):
        raise RenderError(
            f"{source}: kubernetesVersion is {version!r}; write it as v<major>.<minor>.<patch>"
        )
    entries = data.get("images")
    if not isinstance(entries, dict) or not entries:
        raise RenderError(f"{source}: images must be a non-empty mapping of name to image")
    images = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or set(entry) != set(_FIELDS):
            raise RenderError(
                f"{source}: images.{name} must have exactly the keys {', '.join(_FIELDS)}"
            )
        for key in ("repository", "tag"):
            if not isinstance(entry[key], str) or not entry[key]:
                raise RenderError(
                    f"{source}: images.{name}.{key} is {entry[key]!r}; give a non-empty string"
                )
        digest = entry["digest"]
        if digest is not None and (not isinstance(digest, str) or not _DIGEST.match(digest)):
            raise RenderError(
                f"{source}: images.{name}.digest is {digest!r}; give sha256:<64 hex digits> or null"
            )
        images[name] = Image(name, entry["repository"], entry["tag"], digest)
    return version, images


def archive_digests_text(digests: dict[str, str]) -> str:
    """The content of ARCHIVE_DIGESTS: `repository:tag` -> digest served by the archive."""
    header = (
        "# Written by iso/build: the digest of each pinned image in the archive's OCI layout,\n"
        "# which the bootstrap registry serves. Static pods pin their image with it.\n"
    )
    return header + yaml.safe_dump({"images": dict(sorted(digests.items()))}, sort_keys=False)


def parse_archive_digests(data: object, source: str = ARCHIVE_DIGESTS) -> dict[str, str]:
    """Validate the parsed ARCHIVE_DIGESTS `data`; return `repository:tag` -> digest."""
    entries = data.get("images") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise RenderError(f"{source}: expected a mapping 'images' of repository:tag to digest")
    for ref, digest in entries.items():
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise RenderError(
                f"{source}: images.{ref} is {digest!r}, not sha256:<64 hex digits>; "
                "reinstall kubesalt from the archive's wheel"
            )
    return dict(entries)


def with_archive_digests(images: dict[str, Image], digests: dict[str, str]) -> dict[str, Image]:
    """`images` with the archive's digest of each one that `digests` names."""
    return {
        name: replace(img, archive_digest=digests.get(img.reference))
        for name, img in images.items()
    }


@functools.cache
def _load() -> tuple[str, dict[str, Image]]:
    package = resources.files("kubesalt")
    version, images = parse_images(yaml.safe_load(package.joinpath("data/images.yaml").read_text()))
    archived = package.joinpath(ARCHIVE_DIGESTS)
    if archived.is_file():
        digests = parse_archive_digests(yaml.safe_load(archived.read_text()))
        images = with_archive_digests(images, digests)
    return version, images


def kubernetes_version() -> str:
    """The Kubernetes version these images belong to (for example `v1.33.5`)."""
    return _load()[0]


def all_images() -> dict[str, Image]:
    """Every pinned image by name (a copy: callers may not change the pinned list)."""
    return dict(_load()[1])


def image(name: str) -> Image:
    """The pinned image called `name` (`kube-apiserver`, `etcd`, `pause`, ...)."""
    images = _load()[1]
    if name not in images:
        raise RenderError(f"image {name!r} is not pinned; pinned images: {', '.join(images)}")
    return images[name]


def sandbox_image() -> str:
    """The pause image reference, for containerd `sandbox_image` and kubelet
    `--pod-infra-container-image` alike (so both always agree)."""
    return image("pause").reference


def check_version(cfg: dict) -> str:
    """Return the Kubernetes version to deploy; `kubernetes.version` must match the pinned one."""
    pinned = kubernetes_version()
    wanted = cfg.get("kubernetes", {}).get("version")
    if wanted is not None and wanted.lstrip("v") != pinned.lstrip("v"):
        raise RenderError(
            f"kubernetes.version is {wanted!r} but this kubesalt carries {pinned}; set it to "
            f"{pinned}, remove it, or use the kubesalt release that carries {wanted}"
        )
    return pinned
