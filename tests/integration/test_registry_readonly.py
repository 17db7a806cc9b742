"""The bootstrap node's registry with the real distribution binary and nginx, on loopback:
the served registry (services.registry_config) refuses every write, on 127.0.0.1 and through
nginx (services.nginx_config); it is filled through a writable instance on a private unix
socket (registry.fill), a second archive's images are added the same way, and the served
registry answers every pushed digest."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from kubesalt.bootstrap import registry, services
from tests.integration.iso.iso_servers import free_port, stop, wait_port
from tests.integration.kubesalt_nginx import nginx_front
from tests.integration.test_registry_fill import make_layout

pytestmark = pytest.mark.integration

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@contextlib.contextmanager
def served_registry(workdir: Path, storage: Path):
    """distribution with kubesalt's served configuration, on a free loopback port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "config.yml"
    config.write_text(services.registry_config(f"127.0.0.1:{port}", str(storage)))
    log = workdir / "registry.log"
    with open(log, "w") as output:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_port(port, proc, log)
        client = registry.Client(f"http://127.0.0.1:{port}")
        client.wait_ready(timeout=10, interval=0.1)
        yield client
    finally:
        stop(proc)


@pytest.fixture
def storage(tmp_path):
    path = tmp_path / "storage"
    path.mkdir()
    return path


@pytest.fixture
def served(tmp_path, storage):
    with served_registry(tmp_path / "served", storage) as client:
        yield client


@pytest.fixture
def fill_instance(storage):
    # A short directory: a unix socket path holds at most 107 bytes.
    directory = tempfile.mkdtemp(prefix="ksfill-", dir="/tmp")
    socket_path = os.path.join(directory, "fill", "registry.sock")
    yield registry.FillInstance(
        config=services.registry_fill_config(socket_path, str(storage)),
        socket_path=socket_path,
        program=shutil.which("docker-registry"),
    )
    shutil.rmtree(directory)


def _writes(client: registry.Client) -> dict[str, int]:
    """The HTTP status of each kind of write: start a blob upload, put a manifest."""
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST}).encode()
    started = client.request("POST", "/v2/registry.k8s.io/kube-apiserver/blobs/uploads/", b"")
    put = client.request(
        "PUT",
        "/v2/registry.k8s.io/kube-apiserver/manifests/v1.33.5",
        data=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    return {"upload": started[0], "manifest": put[0]}


def test_the_served_registry_refuses_writes_on_loopback_and_through_nginx(tmp_path, served):
    assert _writes(served) == {"upload": 405, "manifest": 405}
    with nginx_front(tmp_path / "nginx", served.base.removeprefix("http://")) as front:
        assert _writes(front.client) == {"upload": 403, "manifest": 403}
        # Reads still pass through nginx.
        assert front.client.request("GET", "/v2/")[0] == 200


def test_a_fill_goes_through_a_private_socket_and_the_served_registry_serves_it(
    tmp_path, served, fill_instance
):
    first = make_layout(tmp_path / "v1")
    report = registry.fill(str(tmp_path / "v1"), served, fill_instance)
    assert sorted(report.pushed) == sorted(first)
    for ref, digest in first.items():
        assert served.manifest_digest(*registry.split_ref(ref)) == digest
    # The fill instance is gone with its socket; its directory is root's (and its user's).
    assert not os.path.exists(fill_instance.socket_path)
    directory = os.path.dirname(fill_instance.socket_path)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert _writes(served) == {"upload": 405, "manifest": 405}

    # A second archive: its images are added the same way, the first ones stay.
    second = make_layout(tmp_path / "v2", variant="2")
    again = registry.fill(str(tmp_path / "v2"), served, fill_instance)
    assert sorted(again.pushed) == ["docker.io/library/multi:2", "lab.kubesalt.invalid/base:1"]
    assert sorted(again.present) == ["registry.k8s.io/pause:3.10"]
    for ref, digest in second.items():
        assert served.manifest_digest(*registry.split_ref(ref)) == digest

    # Nothing missing: no fill instance is started at all.
    broken = registry.FillInstance("", fill_instance.socket_path, "/nonexistent/registry")
    assert registry.fill(str(tmp_path / "v2"), served, broken).pushed == []


def test_a_fill_instance_that_cannot_start_is_named_with_its_output(tmp_path, served, storage):
    directory = tempfile.mkdtemp(prefix="ksfill-", dir="/tmp")
    try:
        instance = registry.FillInstance(
            config="version: 0.1\nstorage: {}\n",
            socket_path=os.path.join(directory, "registry.sock"),
            program=shutil.which("docker-registry"),
            start_timeout=10,
        )
        make_layout(tmp_path / "v1")
        with pytest.raises(registry.RegistryError, match=r"fill instance .* exited with"):
            registry.fill(str(tmp_path / "v1"), served, instance)
    finally:
        shutil.rmtree(directory)
