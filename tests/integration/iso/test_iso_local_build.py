"""A small ISO built offline from local artifacts: its content against the manifest."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import isofactory
import pytest
import yaml

from kubesalt.bootstrap import archive
from kubesalt_isobuild import oci, tree
from kubesalt_isobuild.build import Options, build
from kubesalt_isobuild.debs import parse_deb822
from kubesalt_isobuild.util import sha256_file

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def test_the_iso_holds_exactly_the_tree(built):
    assert built.iso.name == "kubesalt-1.2.3.iso"
    assert tree.all_files(built.extracted) == tree.all_files(built.tree)
    for rel in tree.all_files(built.tree):
        assert sha256_file(built.extracted / rel) == sha256_file(built.tree / rel), rel


def test_the_volume_id_and_rock_ridge_names(built):
    out = subprocess.run(["xorriso", "-indev", str(built.iso), "-pvd_info"], capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert "KUBESALT_1_2_3" in out.stdout + out.stderr
    # Rock Ridge keeps long, mixed-case names and the executable bit.
    assert (built.extracted / "deb/pool/ks-hello_1.2-3_amd64.deb").is_file()
    assert os.access(built.extracted / "bootstrap.sh", os.X_OK)


def test_sha256sums_lists_every_file_and_sha256sum_agrees(built):
    assert tree.check_sums(built.extracted) == []
    proc = subprocess.run(["sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS"],
                          cwd=built.extracted, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = [
        line.split("  ", 1)[1] for line in (built.extracted / "SHA256SUMS").read_text().splitlines()
    ]
    assert listed == sorted(listed)
    # Every file but SHA256SUMS and its signature, made with the repositories' key.
    assert len(listed) == len(tree.all_files(built.extracted)) - 2
    signer = archive.verify(str(built.extracted), built.result.fingerprint)
    assert signer == built.result.fingerprint


def test_product_txt(built):
    product = tree.parse_product((built.extracted / "product.txt").read_text())
    assert product["NAME"] == "kubesalt"
    assert product["VERSION"] == "1.2.3"
    assert product["FLAVOUR"] == "test"
    assert product["GIT_REVISION"]
    assert product["BUILD_DATE"].endswith("Z")


def test_project_files_and_bootstrap_at_the_root(built, project):
    for rel in (
        "salt/top.sls",
        "salt/kubesalt/node/init.sls",
        "pillar/top.sls",
        "scripts/bootstrap.sh",
    ):
        assert (built.extracted / rel).read_bytes() == (project / rel).read_bytes()
    assert (built.extracted / "bootstrap.sh").read_bytes() == (
        project / "scripts/bootstrap.sh"
    ).read_bytes()


def test_packages_match_the_manifest_pins(built):
    flavour = built.manifest["flavours"]["test"]
    lock = yaml.safe_load((built.extracted / "manifest.lock.yaml").read_text())
    for pkg in flavour["packages"]:
        kind = "deb" if pkg["source"].startswith("apt") else "rpm"
        (entry,) = [e for e in lock[kind] if e["name"] == pkg["name"]]
        assert entry["version"] == pkg["version"]
        assert entry["sha256"] == pkg["sha256"] == sha256_file(built.extracted / entry["file"])
    packages = (built.extracted / "deb/dists/kubesalt/main/binary-amd64/Packages").read_bytes()
    paras = {p["Package"]: p for p in parse_deb822(packages.decode())}
    assert set(paras) == {"ks-dep", "ks-hello"}
    assert paras["ks-hello"]["Depends"] == "ks-dep (>= 1.0)"
    gz = built.extracted / "deb/dists/kubesalt/main/binary-amd64/Packages.gz"
    assert gzip.decompress(gz.read_bytes()) == packages
    for entry in lock["deb"]:
        assert paras[entry["name"]]["SHA256"] == entry["sha256"]
    primary = list((built.extracted / "rpm/repodata").glob("*primary.xml.gz"))
    assert len(primary) == 1
    text = gzip.decompress(primary[0].read_bytes()).decode()
    assert "ks-hello" in text and "ks-dep" in text


def test_the_release_file_is_signed_by_the_shipped_key(built):
    suite = built.extracted / "deb/dists/kubesalt"
    keyring = built.extracted / "kubesalt-archive-keyring.gpg"
    for args in (["InRelease"], ["Release.gpg", "Release"]):
        proc = subprocess.run(["gpgv", "--keyring", str(keyring), *args], cwd=suite, capture_output=True,
                              text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(["gpgv", "--keyring", str(keyring), "repomd.xml.asc", "repomd.xml"],
                          cwd=built.extracted / "rpm/repodata", capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # The secret key stays outside the ISO.
    assert (built.out / "signing-key.asc").is_file()
    assert not any("PRIVATE KEY" in (built.extracted / f).read_text(errors="replace")
                   for f in tree.all_files(built.extracted) if f.endswith(".asc"))  # fmt: skip


def test_images_are_in_one_layout_and_the_shared_layer_is_stored_once(built, artifacts):
    layout = built.extracted / "images"
    images = built.manifest["flavours"]["test"]["images"]
    assert oci.refs(layout) == sorted(f"{i['name']}:{i['tag']}" for i in images)
    layers = {}
    for img in images:
        desc = oci.find_ref(layout, f"{img['name']}:{img['tag']}")
        assert desc["digest"] == img["digest"]
        oci.verify_image(layout, desc, img["name"])
        manifest = json.loads(oci.blob_path(layout, desc["digest"]).read_bytes())
        layers[img["name"]] = [layer["digest"] for layer in manifest["layers"]]
    base, app = layers["kubesalt.test/base"], layers["kubesalt.test/tools/app"]
    assert app[: len(base)] == base and len(app) == len(base) + 1
    blobs = sorted(p.name for p in (layout / "blobs/sha256").iterdir())
    assert len(blobs) == len(set(blobs)) == len(oci.unique_blobs(layout))
    # 2 manifests + 2 configs + 2 distinct layers: the base layer appears once.
    assert len(blobs) == 6
    assert built.result.image_stats.reused == 1


def test_wheels_match_their_pins_and_install_offline(built, tmp_path):
    flavour = built.manifest["flavours"]["test"]
    wheels = built.extracted / "wheels"
    by_sha = {sha256_file(p): p.name for p in wheels.iterdir()}
    for wheel in flavour["wheels"]:
        assert wheel["sha256"] in by_sha
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--no-index", "--quiet",
                           "--find-links", str(wheels), "--target", str(target), "ks-alpha", "ks_beta"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (target / "ks_alpha/__init__.py").read_text() == 'VERSION = "0.1.0"\n'


def test_a_second_build_gives_the_same_artifacts(built, artifacts, project, tmp_path):
    """Reproducible order and content: only the signatures, dates and key differ."""
    cache = tmp_path / "cache"
    isofactory.fill_cache(artifacts, cache)
    opts = Options(manifest=Path(built.result.tree).parents[1] / "iso/manifest.yaml", flavour="test",
                   out=tmp_path / "out", project=project, version="1.2.3", cache=cache,
                   date=datetime(2030, 1, 1, tzinfo=UTC),
                   iso=False)  # fmt: skip
    again = build(opts)
    varying = ("InRelease", "Release.gpg", "Release", "repomd.xml", "repomd.xml.asc", "product.txt",
               "SHA256SUMS", "SHA256SUMS.asc", "kubesalt-archive-keyring.gpg", "kubesalt-archive-key.asc")  # fmt: skip

    def digests(root: Path) -> dict[str, str]:
        # createrepo_c names metadata files after their content, which holds the build time.
        return {r: sha256_file(root / r) for r in tree.all_files(root)
                if Path(r).name not in varying and not r.startswith("rpm/repodata/")}  # fmt: skip

    assert digests(built.tree) == digests(again.tree)
