"""The pinned container images (`kubesalt/data/images.yaml`), read in one place.

Static pod manifests reference images by canonical name and tag, as kubeadm does
(`registry.k8s.io/kube-apiserver:v1.33.5`); containerd resolves those names through the
bootstrap registry mirror, and the ISO build pins and verifies each digest.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

import yaml

from kubesalt.kubeadm import RenderError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_FIELDS = ("repository", "tag", "digest")


@dataclass(frozen=True)
class Image:
    """One pinned image: repository, tag and (once verified) digest."""

    name: str
    repository: str
    tag: str
    digest: str | None

    @property
    def reference(self) -> str:
        """`repository:tag`, the form kubeadm writes into manifests."""
        return f"{self.repository}:{self.tag}"

    @property
    def pinned_reference(self) -> str:
        """`repository:tag@digest` when the digest is known, else `repository:tag`."""
        if self.digest:
            return f"{self.reference}@{self.digest}"
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


@functools.cache
def _load() -> tuple[str, dict[str, Image]]:
    text = resources.files("kubesalt").joinpath("data/images.yaml").read_text()
    return parse_images(yaml.safe_load(text))


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
