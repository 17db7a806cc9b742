"""The pinned container images (`kubesalt/data/images.yaml`), read in one place.

The file holds one image set per supported Kubernetes release. The archive carries one of
them: the release `iso/build` was told to carry, written into the kubesalt wheel as
`kubesalt/data/archive-release.yaml` (ARCHIVE_RELEASE); a source checkout has no such file
and carries the file's default release.

Static pod manifests reference images by canonical name and tag, as kubeadm does
(`registry.k8s.io/kube-apiserver:v1.33.5`), plus the digest the archive's registry serves
when the installed package knows it (`pinned_reference`): the ISO build pins and verifies
each upstream digest, and writes `kubesalt/data/archive-images.yaml` (the digest of each
image as stored in the ISO's layout, hence served by the bootstrap registry) into the
kubesalt wheel every node installs. A source checkout has no such file: tag only. Images of
another release than the archive's are never in this archive: tag only too.
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
ARCHIVE_RELEASE = "data/archive-release.yaml"
_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")


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
    if not isinstance(version, str) or not _VERSION.match(version):
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


def parse_releases(data: object, source: str = "images.yaml") -> dict[str, dict[str, Image]]:
    """Every release's images of the parsed images.yaml `data`, by version, the default
    release (`kubernetesVersion`, `images`) first, then each one of `releases`."""
    default, images = parse_images(data, source)
    result = {default: images}
    others = data.get("releases") or {}
    if not isinstance(others, dict):
        raise RenderError(f"{source}: releases must be a mapping of version to its images")
    for version, entry in others.items():
        if version in result:
            raise RenderError(f"{source}: release {version} is listed twice; keep one")
        body = {"kubernetesVersion": version, **(entry if isinstance(entry, dict) else {})}
        result[version] = parse_images(body, f"{source}: releases.{version}")[1]
    return result


def archive_release_text(version: str) -> str:
    """The content of ARCHIVE_RELEASE: the Kubernetes release this archive carries."""
    header = "# Written by iso/build: the Kubernetes release this archive carries.\n"
    return header + yaml.safe_dump({"kubernetesVersion": version})


def parse_archive_release(
    data: object, supported: tuple[str, ...], source: str = ARCHIVE_RELEASE
) -> str:
    """Validate the parsed ARCHIVE_RELEASE `data`; return the release it names."""
    version = data.get("kubernetesVersion") if isinstance(data, dict) else None
    if version not in supported:
        raise RenderError(
            f"{source}: kubernetesVersion is {version!r}, not one of the releases this "
            f"kubesalt supports ({', '.join(supported)}); reinstall kubesalt from the "
            "archive's wheel"
        )
    return version


@functools.cache
def _releases() -> dict[str, dict[str, Image]]:
    package = resources.files("kubesalt")
    return parse_releases(yaml.safe_load(package.joinpath("data/images.yaml").read_text()))


@functools.cache
def _load() -> tuple[str, dict[str, Image]]:
    """The archive's release and its images, with the digests the archive serves."""
    package = resources.files("kubesalt")
    releases = _releases()
    version = next(iter(releases))
    recorded = package.joinpath(ARCHIVE_RELEASE)
    if recorded.is_file():
        version = parse_archive_release(yaml.safe_load(recorded.read_text()), tuple(releases))
    images = releases[version]
    archived = package.joinpath(ARCHIVE_DIGESTS)
    if archived.is_file():
        digests = parse_archive_digests(yaml.safe_load(archived.read_text()))
        images = with_archive_digests(images, digests)
    return version, images


def kubernetes_version() -> str:
    """The Kubernetes release the archive carries (for example `v1.33.5`)."""
    return _load()[0]


def default_version() -> str:
    """The release an archive carries unless `iso/build` is told another one."""
    return next(iter(_releases()))


def supported_versions() -> tuple[str, ...]:
    """Every Kubernetes release this kubesalt renders, in images.yaml's order."""
    return tuple(_releases())


def supported(version: str) -> str:
    """`version` (`v1.34.2`, or `1.34.2`) in its `v` form when it is a supported release;
    else a RenderError that lists them."""
    canonical = "v" + str(version).lstrip("v")
    if canonical not in _releases():
        raise RenderError(
            f"Kubernetes version {version!r} is not a release this kubesalt supports; "
            f"supported: {', '.join(supported_versions())}"
        )
    return canonical


def _release_images(version: str | None) -> dict[str, Image]:
    archive, images = _load()
    if version is None or supported(version) == archive:
        return images
    return _releases()[supported(version)]


def all_images(version: str | None = None) -> dict[str, Image]:
    """Every pinned image of release `version` (default: the archive's) by name (a copy:
    callers may not change the pinned list)."""
    return dict(_release_images(version))


def image(name: str, version: str | None = None) -> Image:
    """The pinned image called `name` (`kube-apiserver`, `etcd`, `pause`, ...) of release
    `version` (default: the archive's)."""
    images = _release_images(version)
    if name not in images:
        raise RenderError(f"image {name!r} is not pinned; pinned images: {', '.join(images)}")
    return images[name]


def sandbox_image(version: str | None = None) -> str:
    """The pause image reference of release `version`, for containerd `sandbox_image` and
    kubelet `--pod-infra-container-image` alike (so both always agree)."""
    return image("pause", version).reference


def check_version(cfg: dict) -> str:
    """The cluster's Kubernetes release: `kubernetes.version` when set (it must be a
    supported release), else the archive's."""
    wanted = cfg.get("kubernetes", {}).get("version")
    if wanted is None:
        return kubernetes_version()
    try:
        return supported(wanted)
    except RenderError:
        raise RenderError(
            f"kubernetes.version is {wanted!r} but this kubesalt carries "
            f"{kubernetes_version()} and supports {', '.join(supported_versions())}; set it "
            "to one of them, remove it to use the archive's, or use the kubesalt release "
            f"that carries {wanted}"
        ) from None
