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

import contextlib
import hashlib
import http.client
import json
import os
import pwd
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
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


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (the fill instance listens on one)."""

    def __init__(self, socket_path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Client:
    """A minimal OCI distribution client over HTTP(S) (`base` like http://127.0.0.1:5000),
    or over the unix socket `socket_path` (then `base` only names it in messages)."""

    def __init__(
        self,
        base: str,
        cafile: str | None = None,
        timeout: float = 60.0,
        socket_path: str | None = None,
    ):
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.socket_path = socket_path
        self.context = None
        if base.startswith("https://"):
            import ssl

            self.context = ssl.create_default_context(cafile=cafile)

    def _unix_request(self, method: str, url: str, data: bytes | None, headers: dict):
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn = _UnixConnection(self.socket_path, self.timeout)
        try:
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.headers), resp.read()
        except OSError as err:
            raise RegistryError(
                f"{method} {target} on {self.socket_path}: {err}; is the fill instance running?"
            ) from err
        finally:
            conn.close()

    def request(
        self, method: str, url: str, data: bytes | None = None, headers: dict | None = None
    ):
        if self.socket_path:
            return self._unix_request(method, url, data, headers or {})
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
        if not location.startswith("http") and not self.socket_path:
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


@dataclass(frozen=True)
class FillInstance:
    """A writable registry over the served registry's storage, run only for a fill: its
    config.yml (listening on `socket_path`), its program and the user it runs as."""

    config: str
    socket_path: str
    program: str
    user: str | None = None
    start_timeout: float = 30.0


def _private_directory(path: str, user: str | None) -> None:
    """`path` exists, mode 0700, owned by `user` (who must create the socket in it)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _wait_for_socket(proc: subprocess.Popen, client: Client, timeout: float, log) -> None:
    deadline = time.monotonic() + timeout
    problem = "no socket yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace").strip()[-1500:]
            raise RegistryError(
                f"the registry fill instance ({client.socket_path}) exited with "
                f"{proc.returncode}: {output}"
            )
        if os.path.exists(client.socket_path):
            try:
                if client.request("GET", "/v2/")[0] == 200:
                    return
            except RegistryError as err:
                problem = str(err)
        time.sleep(0.1)
    raise RegistryError(
        f"waited {timeout:.0f}s for the registry fill instance on {client.socket_path}: {problem}"
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def running(instance: FillInstance) -> Iterator[Client]:
    """Run the fill instance; yield a client of its socket; stop it and remove the socket."""
    directory = os.path.dirname(instance.socket_path)
    _private_directory(directory, instance.user)
    # A socket left by a fill that was killed would stop the new instance from listening.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(instance.socket_path)
    config = os.path.join(directory, "config.yml")
    with open(config, "w", encoding="utf-8") as stream:
        stream.write(instance.config)
    user = {}
    if instance.user is not None:
        entry = pwd.getpwnam(instance.user)
        user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    client = Client(f"unix:{instance.socket_path}", socket_path=instance.socket_path)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [instance.program, "serve", config], stdout=log, stderr=subprocess.STDOUT, **user
        )
        try:
            _wait_for_socket(proc, client, instance.start_timeout, log)
            yield client
        finally:
            _stop(proc)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(instance.socket_path)


def fill(layout: str, served: Client, instance: FillInstance) -> LoadReport:
    """Push the images of `layout` that the (read-only) served registry lacks, through the
    fill instance; then check that the served registry serves each with its digest."""
    images = layout_images(layout)
    served.wait_ready()
    if not missing_images(served, images):
        return LoadReport(present=[i.ref for i in images])
    with running(instance) as writer:
        report = load_layout(writer, layout)
    for image in images:
        got = served.manifest_digest(image.repository, image.tag)
        if got != image.digest:
            raise RegistryError(
                f"{image.ref}: the served registry at {served.base} answers digest {got} after "
                f"the fill, expected {image.digest}; check that {instance.user or 'its user'} "
                "can read the registry's storage"
            )
    return report
