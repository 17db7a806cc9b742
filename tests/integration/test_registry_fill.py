"""kubesalt.bootstrap.registry against a real registry (distribution) on loopback: an OCI
layout is pushed byte for byte (digests kept), a second load pushes nothing, a tag that
points elsewhere is pushed again, and a damaged blob is refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kubesalt.bootstrap import registry
from tests.integration.iso.iso_servers import registry as run_registry

pytestmark = pytest.mark.integration

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _blob(layout: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _image(layout: Path, layer: bytes, config: dict) -> dict:
    config_desc = dict(
        _blob(layout, json.dumps(config).encode()),
        mediaType="application/vnd.oci.image.config.v1+json",
    )
    layer_desc = dict(_blob(layout, layer), mediaType="application/vnd.oci.image.layer.v1.tar")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc,
        "layers": [layer_desc],
    }
    return dict(_blob(layout, json.dumps(manifest).encode()), mediaType=OCI_MANIFEST)


def make_layout(layout: Path, variant: str = "") -> dict[str, str]:
    """Three images: two share a layer; one is an index over a manifest."""
    shared = b"shared layer" * 100
    base = _image(layout, shared, {"architecture": "amd64", "os": "linux", "v": variant})
    pause = _image(layout, shared, {"architecture": "amd64", "os": "linux", "cmd": ["/pause"]})
    inner = _image(
        layout, b"own layer" + variant.encode(), {"architecture": "amd64", "os": "linux"}
    )
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [dict(inner, platform={"architecture": "amd64", "os": "linux"})],
    }
    multi = dict(_blob(layout, json.dumps(index).encode()), mediaType=OCI_INDEX)
    refs = {
        "lab.kubesalt.invalid/base:1": base,
        "registry.k8s.io/pause:3.10": pause,
        "docker.io/library/multi:2": multi,
    }
    descriptors = [dict(d, annotations={registry.REF_NAME: ref}) for ref, d in refs.items()]
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": descriptors}))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return {ref: d["digest"] for ref, d in refs.items()}


@pytest.fixture
def client(tmp_path):
    with run_registry(tmp_path / "registry") as port:
        yield registry.Client(f"http://127.0.0.1:{port}")


def test_a_layout_is_pushed_with_its_digests_and_a_second_load_pushes_nothing(tmp_path, client):
    layout = tmp_path / "images"
    digests = make_layout(layout)
    first = registry.load_layout(client, str(layout))
    assert sorted(first.pushed) == sorted(digests)
    # A config and a layer per image: distribution links blobs per repository, so the layer
    # shared by base and pause (two repositories) is uploaded to each.
    assert first.blobs_pushed == 6
    for ref, digest in digests.items():
        name, tag = registry.split_ref(ref)
        assert client.manifest_digest(name, tag) == digest
    second = registry.load_layout(client, str(layout))
    assert second.pushed == [] and sorted(second.present) == sorted(digests)
    assert second.blobs_pushed == 0


def test_a_tag_pointing_elsewhere_is_pushed_again(tmp_path, client):
    make_layout(tmp_path / "v1")
    registry.load_layout(client, str(tmp_path / "v1"))
    digests = make_layout(tmp_path / "v2", variant="2")
    plan = registry.load_layout(client, str(tmp_path / "v2"), dry_run=True)
    assert sorted(plan.pushed) == ["docker.io/library/multi:2", "lab.kubesalt.invalid/base:1"]
    registry.load_layout(client, str(tmp_path / "v2"))
    assert (
        client.manifest_digest("lab.kubesalt.invalid/base", "1")
        == digests["lab.kubesalt.invalid/base:1"]
    )


def test_a_damaged_blob_is_refused(tmp_path, client):
    layout = tmp_path / "images"
    make_layout(layout)
    victim = next(
        p for p in (layout / "blobs" / "sha256").iterdir() if b"shared layer" in p.read_bytes()
    )
    victim.write_bytes(b"tampered")
    with pytest.raises(registry.RegistryError, match="does not match its digest"):
        registry.load_layout(client, str(layout))


def test_an_unreachable_registry_is_named_after_a_bounded_wait():
    client = registry.Client("http://127.0.0.1:9")
    with pytest.raises(
        registry.RegistryError, match=r"waited 1s for the registry at http://127.0.0.1:9"
    ):
        client.wait_ready(timeout=1, interval=0.2)
