"""Fill an OCI registry from an OCI image layout, byte for byte, skipping what is there.

The bootstrap node's registry (distribution, on loopback) is filled from the archive's
`images/` layout. Blobs and manifests are pushed as stored, so every digest is kept; an
image whose manifest is already in the registry under its tag with the same digest is
left alone, so a second run pushes nothing. Standard library only (see docs/decisions.md:
the registry is filled without skopeo).

Images are named in the layout by their canonical name (`registry.k8s.io/pause:3.10`) and
stored in the registry under that same name, the upstream host being the first path
component (repository `registry.k8s.io/pause`): two upstreams never collide, and
containerd reaches them with `override_path` (docs/decisions.md, "One registry, images kept
under their upstream host").
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from kubesalt.bootstrap.phases import BootstrapError

REF_NAME = "org.opencontainers.image.ref.name"
INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
ACCEPT = ", ".join(sorted(INDEX_TYPES | MANIFEST_TYPES))


class RegistryError(BootstrapError):
    """The registry refused or failed a request."""


@dataclass(frozen=True)
class LayoutImage:
    """An image of the layout: canonical ref, repository and tag in the registry, and
    the descriptor (digest, media type) of its top manifest or index."""

    ref: str
    repository: str
    tag: str
    digest: str
    media_type: str


@dataclass
class LoadReport:
    pushed: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    blobs_pushed: int = 0
    bytes_pushed: int = 0


def split_ref(ref: str) -> tuple[str, str]:
    """`registry.k8s.io/pause:3.10` -> (`registry.k8s.io/pause`, `3.10`): the repository in
    the registry (the canonical name, upstream host first) and the tag."""
    host, _, rest = ref.partition("/")
    if not rest or "." not in host:
        raise RegistryError(
            f"image name {ref!r} is not canonical (host.domain/path:tag); rebuild the archive"
        )
    if ":" in host:
        raise RegistryError(
            f"image name {ref!r}: an upstream host with a port cannot be a repository path; "
            "name the image without the port in the archive manifest"
        )
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        raise RegistryError(f"image name {ref!r} has no tag; rebuild the archive")
    return name, tag


def layout_images(layout: str) -> list[LayoutImage]:
    """The images named in the layout's index.json, in ref order."""
    path = os.path.join(layout, "index.json")
    try:
        with open(path, encoding="utf-8") as stream:
            index = json.load(stream)
    except (OSError, ValueError) as err:
        raise RegistryError(f"{path}: cannot be read as an OCI image index ({err})") from err
    images = []
    for desc in index.get("manifests", []):
        ref = desc.get("annotations", {}).get(REF_NAME)
        if not ref:
            continue
        repository, tag = split_ref(ref)
        images.append(LayoutImage(ref, repository, tag, desc["digest"], desc["mediaType"]))
    return sorted(images, key=lambda i: i.ref)


def blob_path(layout: str, digest: str) -> str:
    algo, _, hexa = digest.partition(":")
    if algo != "sha256" or len(hexa) != 64:
        raise RegistryError(f"unsupported digest {digest!r} in {layout}")
    return os.path.join(layout, "blobs", "sha256", hexa)


def read_blob(layout: str, digest: str) -> bytes:
    path = blob_path(layout, digest)
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as err:
        raise RegistryError(
            f"{path}: blob {digest} missing from the layout ({err.strerror})"
        ) from err
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise RegistryError(
            f"{path}: content does not match its digest {digest}; the archive is damaged"
        )
    return data


class Client:
    """A minimal OCI distribution client over HTTP(S) (`base` like http://127.0.0.1:5000)."""

    def __init__(self, base: str, cafile: str | None = None, timeout: float = 60.0):
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.context = None
        if base.startswith("https://"):
            import ssl

            self.context = ssl.create_default_context(cafile=cafile)

    def request(
        self, method: str, url: str, data: bytes | None = None, headers: dict | None = None
    ):
        if not url.startswith("http"):
            url = self.base + url
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()
        except (urllib.error.URLError, OSError) as err:
            raise RegistryError(
                f"{method} {url}: {getattr(err, 'reason', err)}; is the registry running "
                f"(systemctl status docker-registry)?"
            ) from err

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.5) -> None:
        """Wait (bounded) until the registry answers `GET /v2/` (it may just have restarted)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, _, _ = self.request("GET", "/v2/")
                if status in (200, 401):
                    return
                problem = f"HTTP {status}"
            except RegistryError as err:
                problem = str(err)
            if time.monotonic() > deadline:
                raise RegistryError(
                    f"waited {timeout:.0f}s for the registry at {self.base}: {problem}"
                )
            time.sleep(interval)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        status, headers, _ = self.request(
            "HEAD", f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT}
        )
        if status == 404:
            return None
        if status != 200:
            raise RegistryError(f"HEAD manifest {repository}:{reference}: HTTP {status}")
        return {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")

    def has_blob(self, repository: str, digest: str) -> bool:
        status, _, _ = self.request("HEAD", f"/v2/{repository}/blobs/{digest}")
        return status == 200

    def push_blob(self, repository: str, digest: str, data: bytes) -> None:
        status, headers, body = self.request("POST", f"/v2/{repository}/blobs/uploads/", data=b"")
        location = {k.lower(): v for k, v in headers.items()}.get("location")
        if status != 202 or not location:
            raise RegistryError(
                f"start upload of {digest} to {repository}: HTTP {status} {body[:200]!r}"
            )
        if not location.startswith("http"):
            location = self.base + location
        sep = "&" if "?" in location else "?"
        url = f"{location}{sep}digest={urllib.parse.quote(digest)}"
        status, _, body = self.request(
            "PUT", url, data=data, headers={"Content-Type": "application/octet-stream"}
        )
        if status != 201:
            raise RegistryError(f"upload of {digest} to {repository}: HTTP {status} {body[:200]!r}")

    def push_manifest(self, repository: str, reference: str, media_type: str, data: bytes) -> None:
        status, _, body = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            data=data,
            headers={"Content-Type": media_type},
        )
        if status != 201:
            raise RegistryError(
                f"push manifest {repository}:{reference}: HTTP {status} {body[:300]!r}"
            )


def _push_tree(client: Client, layout: str, repository: str, digest: str, media_type: str,
               report: LoadReport) -> None:  # fmt: skip
    """Push a manifest (or index) by digest, after everything it references."""
    data = read_blob(layout, digest)
    body = json.loads(data)
    if media_type in INDEX_TYPES:
        for child in body.get("manifests", []):
            if os.path.exists(blob_path(layout, child["digest"])):
                _push_tree(client, layout, repository, child["digest"], child["mediaType"], report)
    elif media_type in MANIFEST_TYPES:
        for desc in [body["config"], *body.get("layers", [])]:
            if client.has_blob(repository, desc["digest"]):
                continue
            blob = read_blob(layout, desc["digest"])
            client.push_blob(repository, desc["digest"], blob)
            report.blobs_pushed += 1
            report.bytes_pushed += len(blob)
    else:
        raise RegistryError(f"{digest} in {layout} has unsupported media type {media_type!r}")
    client.push_manifest(repository, digest, media_type, data)


def missing_images(client: Client, images: list[LayoutImage]) -> list[LayoutImage]:
    """The images whose tag is absent from the registry or points at another digest."""
    return [i for i in images if client.manifest_digest(i.repository, i.tag) != i.digest]


def load_layout(client: Client, layout: str, dry_run: bool = False) -> LoadReport:
    """Push every image of `layout` not already in the registry with the same digest."""
    report = LoadReport()
    images = layout_images(layout)
    client.wait_ready()
    missing = {i.ref for i in missing_images(client, images)}
    for image in images:
        if image.ref not in missing:
            report.present.append(image.ref)
            continue
        report.pushed.append(image.ref)
        if dry_run:
            continue
        _push_tree(client, layout, image.repository, image.digest, image.media_type, report)
        data = read_blob(layout, image.digest)
        client.push_manifest(image.repository, image.tag, image.media_type, data)
        got = client.manifest_digest(image.repository, image.tag)
        if got != image.digest:
            raise RegistryError(
                f"{image.ref}: the registry serves digest {got} after the push, expected {image.digest}"
            )
    return report
