"""Container images: pulled by digest with skopeo, or built locally from ``images/`` with umoci."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from kubesalt.errors import KubesaltError
from kubesalt_isobuild import oci
from kubesalt_isobuild.cache import FILL_HINT, Store
from kubesalt_isobuild.errors import (
    ArtifactError,
    DigestMismatchError,
    IsoBuildError,
    ManifestError,
    MissingArtifactError,
    ToolError,
)
from kubesalt_isobuild.manifest import Image, Manifest
from kubesalt_isobuild.util import run

EPOCH = "1970-01-01T00:00:00Z"


def kubernetes_images(version: str | None = None) -> list[Image]:
    """The pinned Kubernetes images of release ``version`` (default: the default release),
    from ``kubesalt.kubeadm.images`` (imported lazily)."""
    try:
        mod = importlib.import_module("kubesalt.kubeadm.images")
        pinned = mod.all_images(version or mod.default_version())
    except ImportError as err:
        raise ManifestError(
            [
                f"kubernetes_images: true needs kubesalt.kubeadm.images, which cannot be imported: {err}"
            ]
        ) from err
    except KubesaltError as err:
        raise ManifestError(
            [f"kubernetes_images: the pinned image list is invalid: {err}"]
        ) from err
    return [Image(i.repository, i.tag, i.digest) for _, i in sorted(pinned.items())]


def kubernetes_version() -> str | None:
    """The Kubernetes version of the pinned images (``v1.33.5``), or None if unavailable."""
    try:
        return importlib.import_module("kubesalt.kubeadm.images").kubernetes_version()
    except (ImportError, KubesaltError):
        return None


def unsourced_images(imgs: tuple[Image, ...] | list[Image], manifest: Manifest) -> list[str]:
    """A problem per pulled image whose registry no `type: registry` source declares.

    Every upstream the ISO copies from is declared once (and served by the nodes' containerd
    mirror under the same host), so an image never comes from a registry nobody chose.
    """
    return [
        f"{img.label}: its registry {img.registry} is not a source; add a source with "
        f"type: registry and host: {img.registry} (see registry-k8s-io)"
        for img in imgs
        if not img.build and manifest.registry_for(img.registry) is None
    ]


def pull_reference(img: Image, manifest: Manifest) -> tuple[str, bool, str | None]:
    """``(docker:// reference, tls verify, cert dir)`` to pull ``img`` from its upstream."""
    src = manifest.registry_for(img.registry)
    host = src.url if src is not None else img.registry
    tls = src.tls_verify if src is not None else True
    cert_dir = src.cafile if src is not None else None
    where = f"@{img.digest}" if img.digest else f":{img.tag}"
    return f"docker://{host}/{img.path}{where}", tls, cert_dir


def fetch_image(img: Image, manifest: Manifest, store: Store, arch: str, tmp: Path) -> dict:
    """Put ``img`` in the cache layout (pulling it by digest when needed); return its descriptor."""
    layout = store.images
    desc = oci.find_ref(layout, img.ref)
    if desc is not None:
        source = desc.get("annotations", {}).get(oci.SOURCE_DIGEST, desc["digest"])
        if img.digest is None or source == img.digest:
            oci.verify_image(layout, desc, img.label)
            return desc
        if store.offline:
            raise DigestMismatchError(img.label, img.digest, source, f"the cache layout {layout}")
    elif store.offline:
        raise MissingArtifactError(
            img.label, f"not in the cache layout {layout}", FILL_HINT.format(cache=store.label)
        )
    if img.build:
        raise MissingArtifactError(img.label, "a locally built image is not in the cache layout")
    ref, tls, cert_dir = pull_reference(img, manifest)
    stage = Path(tempfile.mkdtemp(prefix="pull-", dir=tmp))
    try:
        cmd = ["skopeo", "copy", "--quiet", "--preserve-digests", f"--src-tls-verify={str(tls).lower()}",
               "--override-os=linux", f"--override-arch={arch}"]  # fmt: skip
        if cert_dir:
            cmd.append(f"--src-cert-dir={cert_dir}")
        cmd += [ref, f"oci:{stage}:{img.ref}"]
        try:
            run(cmd, what=f"pull {img.label}")
        except ToolError as err:
            text = err.output.lower()
            if "manifest unknown" in text or "not found" in text or "name unknown" in text:
                raise MissingArtifactError(img.label, f"{ref} does not exist upstream") from err
            if "digest" in text and ("mismatch" in text or "does not match" in text):
                raise DigestMismatchError(img.label, img.digest or "", "?", ref) from err
            raise ArtifactError(
                img.label, f"skopeo failed pulling {ref}:\n{err.output.strip()}"
            ) from err
        oci.init_layout(layout)
        notes = {oci.SOURCE_DIGEST: img.digest or oci.find_ref(stage, img.ref)["digest"]}
        return oci.copy_image(stage, img.ref, layout, annotations=notes)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def load_definition(path: Path) -> dict:
    try:
        data = yaml.safe_load((path / "image.yaml").read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ManifestError([f"{path}/image.yaml: {err}"]) from err
    if not isinstance(data, dict):
        raise ManifestError([f"{path}/image.yaml: must be a mapping"])
    return data


def _fix_mtimes(root: Path) -> None:
    """Give every file of a layer the same time, so the layer's digest is reproducible."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (0, 0), follow_symlinks=False)
    os.utime(root, (0, 0))


def _layer_tree(defdir: Path, data: dict, copy: Path) -> Path:
    """The directory of an image's own layer: `rootfs` copied, then `generator` run into it.

    A generator (a Python script of the definition) writes built files, such as the lab's
    pause binary, so that no built file is kept in git.
    """
    copy.mkdir()
    if data.get("rootfs"):
        src = defdir / str(data["rootfs"])
        if not src.is_dir():
            raise ManifestError([f"{defdir}/image.yaml: rootfs {src} is not a directory"])
        shutil.copytree(src, copy, symlinks=True, dirs_exist_ok=True)
    if data.get("generator"):
        script = defdir / str(data["generator"])
        if not script.is_file():
            raise ManifestError([f"{defdir}/image.yaml: generator {script} is not a file"])
        run([sys.executable, str(script), str(copy)], what=f"generate the layer of {defdir.name}")
    _fix_mtimes(copy)
    return copy


def build_local_images(
    images: list[Image], base: Path, layout: Path, tmp: Path, arch: str = "amd64"
) -> dict[str, str]:
    """Build images from their ``images/<name>/image.yaml`` into ``layout``; return ref → digest.

    ``image.yaml``: ``from`` (another definition directory, whose layers this image
    shares), ``rootfs`` (a directory added as one layer) and/or ``generator`` (a script
    that writes into that layer) and ``config`` (entrypoint, cmd,
    user, env, workingdir, labels). Timestamps are fixed, so the digests are reproducible.
    """
    stage = Path(tempfile.mkdtemp(prefix="umoci-", dir=tmp))
    built: dict[Path, str] = {}  # definition dir -> tag in the staging layout
    run(["umoci", "init", "--layout", str(stage / "layout")], what="umoci init")
    lay = stage / "layout"

    def build(defdir: Path, chain: tuple[Path, ...]) -> str:
        defdir = defdir.resolve()
        if defdir in built:
            return built[defdir]
        if defdir in chain:
            raise ManifestError([f"{defdir}/image.yaml: 'from' loops back to itself"])
        data = load_definition(defdir)
        parent = build(defdir / str(data["from"]), (*chain, defdir)) if data.get("from") else None
        tag = f"t{len(built)}"
        if parent is not None:
            run(
                ["umoci", "tag", "--image", f"{lay}:{parent}", tag], what=f"umoci tag {defdir.name}"
            )
        else:
            run(["umoci", "new", "--image", f"{lay}:{tag}"], what=f"umoci new {defdir.name}")
        if data.get("rootfs") or data.get("generator"):
            copy = _layer_tree(defdir, data, stage / f"rootfs-{tag}")
            run(["umoci", "insert", "--rootless", "--no-history", "--image", f"{lay}:{tag}", str(copy), "/"],
                what=f"umoci insert {defdir.name}")  # fmt: skip
        cfg = data.get("config") or {}
        cmd = ["umoci", "config", "--no-history", "--image", f"{lay}:{tag}", f"--created={EPOCH}",
               "--os=linux", f"--architecture={arch}"]  # fmt: skip
        for key in ("entrypoint", "cmd", "env", "volume"):
            for value in cfg.get(key, []):
                cmd.append(f"--config.{key}={value}")
        for key in ("user", "workingdir", "stopsignal"):
            if cfg.get(key):
                cmd.append(f"--config.{key}={cfg[key]}")
        for key, value in sorted((cfg.get("labels") or {}).items()):
            cmd.append(f"--config.label={key}={value}")
        run(cmd, what=f"umoci config {defdir.name}")
        built[defdir] = tag
        return tag

    digests = {}
    try:
        for img in images:
            tag = build(base / img.build, ())
            desc = oci.copy_image(lay, tag, layout, as_ref=img.ref)
            if img.digest and desc["digest"] != img.digest:
                raise DigestMismatchError(
                    img.label, img.digest, desc["digest"], f"the build of {img.build}"
                )
            digests[img.ref] = desc["digest"]
    except ToolError as err:
        raise IsoBuildError(f"building local images failed: {err}") from err
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return digests
