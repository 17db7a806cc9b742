"""The OCI layout merge: blobs shared between images are stored once; the index is ordered."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kubesalt_isobuild import oci
from kubesalt_isobuild.errors import DigestMismatchError, IsoBuildError

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def put(layout: Path, data: bytes, media: str = "application/octet-stream") -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = oci.blob_path(layout, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"mediaType": media, "digest": digest, "size": len(data)}


def image(layout: Path, ref: str, layers: list[bytes], config: bytes = b"{}") -> dict:
    oci.init_layout(layout)
    cfg = put(layout, config, "application/vnd.oci.image.config.v1+json")
    descs = [put(layout, data, "application/vnd.oci.image.layer.v1.tar+gzip") for data in layers]
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": MANIFEST, "config": cfg, "layers": descs}
    ).encode()
    desc = put(layout, body, MANIFEST)
    desc["annotations"] = {oci.REF_NAME: ref}
    oci.write_index(layout, [*oci.read_index(layout), desc])
    return desc


def test_merging_two_images_stores_their_shared_layer_once(tmp_path):
    a, b, dst = tmp_path / "a", tmp_path / "b", tmp_path / "dst"
    image(a, "registry.k8s.io/pause:3.10", [b"base layer", b"pause"])
    image(b, "registry.k8s.io/etcd:3.5", [b"base layer", b"etcd"], config=b'{"e":1}')
    stats = oci.CopyStats()
    oci.copy_image(a, "registry.k8s.io/pause:3.10", dst, stats=stats)
    oci.copy_image(b, "registry.k8s.io/etcd:3.5", dst, stats=stats)
    assert stats.copied == 7  # 2 manifests, 2 configs, 3 distinct layers
    assert stats.reused == 1 and stats.bytes_reused == len(b"base layer")
    assert len(list((dst / "blobs/sha256").iterdir())) == 7
    assert oci.refs(dst) == ["registry.k8s.io/etcd:3.5", "registry.k8s.io/pause:3.10"]
    assert json.loads((dst / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_the_index_is_sorted_and_a_ref_is_replaced_not_duplicated(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    image(src, "z/one:1", [b"1"])
    image(src, "a/two:1", [b"2"])
    oci.copy_image(src, "z/one:1", dst)
    oci.copy_image(src, "a/two:1", dst)
    oci.copy_image(src, "a/two:1", dst, as_ref="z/one:1", annotations={oci.SOURCE_DIGEST: "x"})
    index = oci.read_index(dst)
    assert [d["annotations"][oci.REF_NAME] for d in index] == ["a/two:1", "z/one:1"]
    assert index[1]["digest"] == index[0]["digest"]
    assert index[1]["annotations"][oci.SOURCE_DIGEST] == "x"
    # The first z/one image's manifest and layer; its config ({}) is a/two's too.
    assert oci.gc_layout(dst) == 2


def test_reachable_follows_an_index_and_skips_absent_platforms(tmp_path):
    lay = tmp_path / "l"
    amd = image(lay, "tmp:amd", [b"amd64 layer"])
    absent = {"mediaType": MANIFEST, "digest": "sha256:" + "f" * 64, "size": 1}
    body = json.dumps({"schemaVersion": 2, "manifests": [amd, absent]}).encode()
    top = put(lay, body, INDEX)
    digests = [d["digest"] for d in oci.reachable(lay, top)]
    assert digests[0] == top["digest"] and amd["digest"] in digests and len(digests) == 4


def test_a_missing_layer_is_an_error(tmp_path):
    lay = tmp_path / "l"
    desc = image(lay, "x/y:1", [b"layer"])
    body = json.loads(oci.blob_path(lay, desc["digest"]).read_bytes())
    oci.blob_path(lay, body["layers"][0]["digest"]).unlink()
    with pytest.raises(IsoBuildError, match="is missing"):
        oci.reachable(lay, desc)


def test_verify_image_names_the_artifact_of_a_corrupt_blob(tmp_path):
    lay = tmp_path / "l"
    desc = image(lay, "x/y:1", [b"layer"])
    body = json.loads(oci.blob_path(lay, desc["digest"]).read_bytes())
    oci.blob_path(lay, body["layers"][0]["digest"]).write_bytes(b"tampered")
    with pytest.raises(DigestMismatchError) as info:
        oci.verify_image(lay, desc, "image x/y:1")
    assert info.value.artifact == "image x/y:1"


def test_copying_an_unknown_ref_fails(tmp_path):
    image(tmp_path / "l", "x/y:1", [b"1"])
    with pytest.raises(IsoBuildError, match="x/y:2 is not in the OCI layout"):
        oci.copy_image(tmp_path / "l", "x/y:2", tmp_path / "d")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("registry.k8s.io/pause:3.10", "docker://127.0.0.1:5000/registry.k8s.io/pause:3.10"),
        (
            "registry.k8s.io/coredns/coredns:v1.12.0",
            "docker://127.0.0.1:5000/registry.k8s.io/coredns/coredns:v1.12.0",
        ),
        ("docker.io/library/busybox:1", "docker://127.0.0.1:5000/docker.io/library/busybox:1"),
    ],
)
def test_registry_destination_keeps_the_upstream_host(ref, expected):
    assert oci.registry_destination(ref, "127.0.0.1:5000") == expected


def test_registry_destination_needs_a_canonical_name():
    with pytest.raises(IsoBuildError, match="not a canonical image name"):
        oci.registry_destination("pause:3.10", "r:1")


def test_loading_an_empty_layout_is_an_error(tmp_path):
    oci.init_layout(tmp_path / "l")
    with pytest.raises(IsoBuildError, match="no image"):
        oci.load_layout_into_registry(tmp_path / "l", "127.0.0.1:1")
