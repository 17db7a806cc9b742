"""OCI image layouts: one layout holds every image; a blob shared by images is stored once.

Images are named in ``index.json`` by the ``org.opencontainers.image.ref.name`` annotation,
with their canonical name (``registry.k8s.io/pause:3.10``), so the registry filled from the
layout serves them as a mirror of their upstream.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kubesalt_isobuild.errors import ArtifactError, DigestMismatchError, IsoBuildError
from kubesalt_isobuild.util import run, sha256_file

REF_NAME = "org.opencontainers.image.ref.name"
SOURCE_DIGEST = "io.kubesalt.image.source-digest"
INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}


@dataclass
class CopyStats:
    copied: int = 0
    reused: int = 0
    bytes_copied: int = 0
    bytes_reused: int = 0
    images: list[str] = field(default_factory=list)


def init_layout(layout: Path) -> None:
    """Create an empty layout (no-op if it exists)."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    marker = layout / "oci-layout"
    if not marker.exists():
        marker.write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    if not (layout / "index.json").exists():
        write_index(layout, [])


def read_index(layout: Path) -> list[dict]:
    """The descriptors of ``index.json`` (empty for a missing layout)."""
    path = layout / "index.json"
    if not path.is_file():
        return []
    return json.loads(path.read_text()).get("manifests", [])


def write_index(layout: Path, manifests: list[dict]) -> None:
    """Write ``index.json``, ordered by ref name then digest, so builds are reproducible."""
    ordered = sorted(
        manifests, key=lambda d: (d.get("annotations", {}).get(REF_NAME, ""), d["digest"])
    )
    data = {"schemaVersion": 2, "manifests": ordered}
    tmp = layout / "index.json.part"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, layout / "index.json")


def blob_path(layout: Path, digest: str) -> Path:
    algo, _, hexa = digest.partition(":")
    if algo != "sha256" or len(hexa) != 64:
        raise IsoBuildError(f"unsupported digest {digest!r} in {layout}")
    return layout / "blobs" / "sha256" / hexa


def find_ref(layout: Path, ref: str) -> dict | None:
    for desc in read_index(layout):
        if desc.get("annotations", {}).get(REF_NAME) == ref:
            return desc
    return None


def refs(layout: Path) -> list[str]:
    return sorted(
        d["annotations"][REF_NAME]
        for d in read_index(layout)
        if REF_NAME in d.get("annotations", {})
    )


def reachable(layout: Path, desc: dict) -> list[dict]:
    """Every descriptor reachable from ``desc`` (itself included), depth first, no repeats.

    Children of an index that are absent from the layout (other platforms, when only one
    was copied) are skipped; a missing config or layer of a present manifest is an error.
    """
    seen: dict[str, dict] = {}

    def walk(d: dict, optional: bool) -> None:
        if d["digest"] in seen:
            return
        path = blob_path(layout, d["digest"])
        if not path.is_file():
            if optional:
                return
            raise IsoBuildError(f"blob {d['digest']} is missing from {layout}")
        seen[d["digest"]] = d
        media = d.get("mediaType", "")
        if media in INDEX_TYPES or media in MANIFEST_TYPES:
            body = json.loads(path.read_bytes())
            for child in body.get("manifests", []):
                walk(child, optional=True)
            if "config" in body:
                walk(body["config"], optional=False)
            for layer in body.get("layers", []):
                walk(layer, optional=False)

    walk(desc, optional=False)
    return list(seen.values())


def verify_image(layout: Path, desc: dict, artifact: str) -> None:
    """Check that every blob of the image matches its digest."""
    for d in reachable(layout, desc):
        actual = "sha256:" + sha256_file(blob_path(layout, d["digest"]))
        if actual != d["digest"]:
            raise DigestMismatchError(artifact, d["digest"], actual, f"blob in {layout}")


def copy_image(
    src: Path,
    ref: str,
    dst: Path,
    as_ref: str | None = None,
    stats: CopyStats | None = None,
    annotations: dict | None = None,
) -> dict:
    """Copy image ``ref`` of layout ``src`` into layout ``dst`` as ``as_ref``.

    Blobs already in ``dst`` are not copied again (hard-linked when possible otherwise).
    Returns the descriptor written into ``dst``'s index.
    """
    desc = find_ref(src, ref)
    if desc is None:
        raise IsoBuildError(f"{ref} is not in the OCI layout {src}")
    init_layout(dst)
    stats = stats if stats is not None else CopyStats()
    for d in reachable(src, desc):
        source = blob_path(src, d["digest"])
        target = blob_path(dst, d["digest"])
        size = source.stat().st_size
        if target.exists():
            stats.reused += 1
            stats.bytes_reused += size
            continue
        tmp = target.with_name(target.name + ".part")
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        stats.copied += 1
        stats.bytes_copied += size
    new = {k: v for k, v in desc.items() if k != "annotations"}
    notes = dict(desc.get("annotations", {}))
    notes.update(annotations or {})
    notes[REF_NAME] = as_ref or ref
    new["annotations"] = notes
    others = [
        d
        for d in read_index(dst)
        if d.get("annotations", {}).get(REF_NAME) != new["annotations"][REF_NAME]
    ]
    write_index(dst, [*others, new])
    stats.images.append(new["annotations"][REF_NAME])
    return new


def unique_blobs(layout: Path) -> dict[str, int]:
    """Digest → size of every blob referenced from the index."""
    out = {}
    for desc in read_index(layout):
        for d in reachable(layout, desc):
            out[d["digest"]] = blob_path(layout, d["digest"]).stat().st_size
    return out


def gc_layout(layout: Path) -> int:
    """Remove blobs no image references; return how many were removed."""
    keep = {d.split(":", 1)[1] for d in unique_blobs(layout)}
    removed = 0
    for blob in (layout / "blobs" / "sha256").iterdir():
        if blob.name not in keep:
            blob.unlink()
            removed += 1
    return removed


def registry_destination(ref: str, registry: str) -> str:
    """``docker://`` destination of canonical ``ref`` in the bootstrap registry at ``registry``.

    The upstream host stays the first path component (``registry.k8s.io/pause:3.10`` →
    ``REGISTRY/registry.k8s.io/pause:3.10``), so two upstreams never collide; containerd
    reaches it through a per-upstream mirror with ``override_path`` (docs/decisions.md).
    """
    host, _, rest = ref.partition("/")
    if not rest:
        raise IsoBuildError(f"{ref!r} is not a canonical image name (host/path:tag)")
    return f"docker://{registry}/{host}/{rest}"


def load_layout_into_registry(
    layout: str | Path,
    registry: str,
    tls_verify: bool = True,
    cert_dir: str | Path | None = None,
    creds: str | None = None,
    only: list[str] | None = None,
) -> list[str]:
    """Push every image of the OCI ``layout`` into ``registry`` (``host:port``), digests kept.

    This is how the bootstrap node fills its registry from the ISO. Returns the destinations.
    """
    layout = Path(layout)
    wanted = refs(layout) if only is None else list(only)
    if not wanted:
        raise IsoBuildError(f"no image in the OCI layout {layout}")
    done = []
    for ref in wanted:
        if find_ref(layout, ref) is None:
            raise ArtifactError(f"image {ref}", f"not in the OCI layout {layout}")
        dest = registry_destination(ref, registry)
        cmd = ["skopeo", "copy", "--all", "--preserve-digests", "--quiet",
               f"--dest-tls-verify={'true' if tls_verify else 'false'}"]  # fmt: skip
        if cert_dir:
            cmd.append(f"--dest-cert-dir={cert_dir}")
        if creds:
            cmd.append(f"--dest-creds={creds}")
        cmd += [f"oci:{layout}:{ref}", dest]
        run(cmd, what=f"push image {ref} to {registry}")
        done.append(dest)
    return done
