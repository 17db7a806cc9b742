"""The archive's Kubernetes release: iso/build --kubernetes-version takes the manifest's sources
and packages of that release, its images, and records it in product.txt and the kubesalt wheel."""

from __future__ import annotations

import copy
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from kubesalt.bootstrap import archive
from kubesalt.kubeadm import images as pinned
from kubesalt_isobuild import build, tree
from kubesalt_isobuild.errors import IsoBuildError, ManifestError
from kubesalt_isobuild.manifest import for_kubernetes_release, load_manifest

ROOT = Path(__file__).resolve().parents[3]
MANIFEST = ROOT / "iso" / "manifest.yaml"
KUBE_PACKAGES = ("kubelet", "kubeadm", "kubectl")
DIGEST = "sha256:" + "f" * 64


def versions(manifest, flavour):
    return {p.name: p.version for p in manifest.flavours[flavour].packages}


def test_the_default_release_is_the_manifest_as_written():
    assert build.manifest_release("v1.33.5") is None
    manifest = load_manifest(MANIFEST)
    assert manifest.sources["kubernetes-deb"].url == "https://pkgs.k8s.io/core:/stable:/v1.33/deb"
    assert versions(manifest, "debian12")["kubelet"] == "1.33.5-1.1"


def test_1_34_takes_its_repository_and_packages():
    manifest = load_manifest(MANIFEST, build.manifest_release("v1.34.2"))
    assert manifest.sources["kubernetes-deb"].url == "https://pkgs.k8s.io/core:/stable:/v1.34/deb"
    assert manifest.sources["kubernetes-rpm"].url == "https://pkgs.k8s.io/core:/stable:/v1.34/rpm"
    assert manifest.sources["kubernetes-rpm"].keyring == (
        "https://pkgs.k8s.io/core:/stable:/v1.34/rpm/repodata/repomd.xml.key"
    )
    deb, rpm = versions(manifest, "debian12"), versions(manifest, "el9")
    assert {name: deb[name] for name in KUBE_PACKAGES} == dict.fromkeys(KUBE_PACKAGES, "1.34.2-1.1")
    assert {name: rpm[name] for name in KUBE_PACKAGES} == dict.fromkeys(
        KUBE_PACKAGES, "1.34.2-150500.1.1"
    )
    assert (deb["cri-tools"], rpm["cri-tools"]) == ("1.34.0-1.1", "1.34.0-150500.1.1")
    # Everything else is the default release's.
    default = load_manifest(MANIFEST)
    assert manifest.sources["debian-bookworm"] == default.sources["debian-bookworm"]
    assert manifest.flavours["debian12"].resolve == default.flavours["debian12"].resolve
    assert manifest.flavours["lab"] == default.flavours["lab"]


@pytest.mark.parametrize("release", pinned.supported_versions()[1:])
def test_every_other_supported_release_has_its_packages(release):
    manifest = load_manifest(MANIFEST, release)
    patch = release.lstrip("v")
    for flavour in ("debian12", "el9"):
        for name in KUBE_PACKAGES:
            assert versions(manifest, flavour)[name].startswith(patch + "-"), (flavour, name)


def test_the_flavour_carries_the_images_of_the_release():
    manifest = load_manifest(MANIFEST, "v1.34.2")
    flavour = build.selected_flavour(manifest, "debian12", "v1.34.2")
    refs = {image.ref for image in flavour.images}
    assert {"registry.k8s.io/etcd:3.6.5-0", "registry.k8s.io/pause:3.10.1"} <= refs
    assert "registry.k8s.io/etcd:3.5.21-0" not in refs


def overlay(**changes):
    data = yaml.safe_load(MANIFEST.read_text())
    data = copy.deepcopy(data)
    data["kubernetes_releases"]["v1.34.2"].update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "release", "message"),
    [
        (overlay(), "v1.35.0", r"kubernetes_releases.v1.35.0: missing; add its sources"),
        (
            overlay(sources={"nope": {"url": "x"}}),
            "v1.34.2",
            r"kubernetes_releases.v1.34.2.sources.nope: not a source's fields",
        ),
        (
            overlay(packages={"nope": []}),
            "v1.34.2",
            r"kubernetes_releases.v1.34.2.packages.nope: no such flavour",
        ),
        (
            overlay(packages={"el9": [{"name": "kubelat", "version": "1"}]}),
            "v1.34.2",
            r"packages.el9: 'kubelat' is not a package of the flavour",
        ),
    ],
)
def test_a_bad_release_overlay_is_named(data, release, message):
    with pytest.raises(ManifestError, match=message):
        for_kubernetes_release(data, release)


def test_an_unsupported_kubernetes_version_is_refused():
    with pytest.raises(IsoBuildError, match=r"--kubernetes-version: .*'v1.32.1'.*v1.33.5, v1.34.2"):
        build.checked_kubernetes_version("v1.32.1")
    assert build.checked_kubernetes_version("1.34.2") == "v1.34.2"
    assert build.parser(ROOT).parse_args(["--flavour", "x", "--out", "o"]).kubernetes_version == (
        "v1.33.5"
    )


def test_product_txt_names_the_release():
    text = tree.product_text("kubesalt", "1.2.3", "abc", datetime(2025, 1, 1, tzinfo=UTC), "lab",
                             kubernetes_version="v1.34.2")  # fmt: skip
    assert text.endswith("FLAVOUR=lab\nKUBERNETES_VERSION=v1.34.2\n")
    assert archive.parse_product(text, "p")[archive.KUBERNETES_VERSION] == "v1.34.2"


def test_the_wheel_records_the_release_and_its_digests(tmp_path):
    lock = [
        {"ref": "registry.k8s.io/etcd:3.6.5-0", "digest": DIGEST},
        {"ref": "registry.k8s.io/etcd:3.5.21-0", "digest": "sha256:" + "0" * 64},
    ]
    digests = build.archive_digests(lock, "v1.34.2")
    assert digests == {"registry.k8s.io/etcd:3.6.5-0": DIGEST}
    wheel = build.build_kubesalt_wheel(ROOT, "1.2.3", tmp_path, digests, "v1.34.2")
    with zipfile.ZipFile(wheel) as zf:
        recorded = yaml.safe_load(zf.read(f"kubesalt/{pinned.ARCHIVE_RELEASE}"))
        record = zf.read("kubesalt-1.2.3.dist-info/RECORD").decode()
    assert pinned.parse_archive_release(recorded, pinned.supported_versions()) == "v1.34.2"
    assert f"kubesalt/{pinned.ARCHIVE_RELEASE}," in record
