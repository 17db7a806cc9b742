"""Fetching from upstream, against stand-ins on 127.0.0.1: nginx serving an apt repository,
a yum repository and a Python package index, and a real registry (distribution)."""

from __future__ import annotations

import copy
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import iso_servers as servers
import isofactory
import pytest
import yaml

from kubesalt_isobuild import oci, repos
from kubesalt_isobuild.build import Options, build
from kubesalt_isobuild.errors import (
    ArtifactError,
    DigestMismatchError,
    MissingArtifactError,
    UnpinnedArtifactError,
)
from kubesalt_isobuild.signing import Signer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
WRONG = "0" * 64


def serve_as_upstream(layout: Path, registry: str) -> None:
    """Push each image where its upstream serves it: `kubesalt.test/base:1` -> REGISTRY/base:1.

    (The bootstrap registry keeps the upstream host in the path; an upstream does not.)
    """
    for ref in oci.refs(layout):
        path = ref.partition("/")[2]
        subprocess.run(
            ["skopeo", "copy", "--all", "--preserve-digests", "--quiet", "--dest-tls-verify=false",
             f"oci:{layout}:{ref}", f"docker://{registry}/{path}"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip


@pytest.fixture(scope="module")
def upstream(artifacts, tmp_path_factory):
    """Yield the manifest sources of the stand-in upstreams."""
    up = tmp_path_factory.mktemp("upstream")
    served = up / "www"
    signer = Signer()  # a short home in /tmp: gpg-agent socket paths are limited
    signer.generate()
    keyring = up / "upstream-keyring.gpg"
    signer.export_public(keyring, armor=False)
    date = datetime(2025, 1, 1, tzinfo=UTC)
    debs = [(p, isofactory.sha256_file(p)) for p in artifacts.debs.values()]
    repos.build_apt_repo(debs, served / "apt", "amd64", date, "1", signer)
    repos.build_yum_repo(list(artifacts.rpms.values()), served / "yum", date, signer)
    for name, path in artifacts.wheels.items():
        project = served / "simple" / name.replace("_", "-")
        project.mkdir(parents=True)
        (project / path.name).write_bytes(path.read_bytes())
    signer.close()
    with servers.registry(up / "registry") as reg_port, servers.nginx(up / "nginx", served) as url:
        serve_as_upstream(artifacts.layout, f"127.0.0.1:{reg_port}")
        yield {
            "apt-upstream": {"type": "apt", "url": f"{url}/apt", "suite": "kubesalt",
                             "components": ["main"], "keyring": str(keyring)},
            "yum-upstream": {"type": "yum", "url": f"{url}/yum"},
            "pypi-upstream": {"type": "pypi", "url": f"{url}/simple"},
            "test-registry": {"type": "registry", "host": "kubesalt.test",
                              "url": f"127.0.0.1:{reg_port}", "tls_verify": False},
        }  # fmt: skip


@pytest.fixture
def make(artifacts, upstream, project, tmp_path):
    """Build with a manifest changed by ``edit``; returns the build Result."""

    def run(edit=None, cache: Path | None = None, fill: bool = False, allow_unpinned: bool = False,
            name: str = "b"):  # fmt: skip
        data = isofactory.manifest_data(artifacts, sources=copy.deepcopy(upstream))
        if edit:
            edit(data["flavours"]["test"])
        manifest = isofactory.write_manifest(tmp_path / name / "iso/manifest.yaml", data)
        opts = Options(manifest=manifest, flavour="test", out=tmp_path / name / "out", project=project,
                       version="0.0.1", cache=cache, fill_cache=fill, allow_unpinned=allow_unpinned,
                       iso=False)  # fmt: skip
        return build(opts)

    return run


def entry(flavour: dict, name: str, kind: str) -> dict:
    source = "apt-upstream" if kind == "deb" else "yum-upstream"
    return next(p for p in flavour["packages"] if p["name"] == name and p["source"] == source)


def test_everything_comes_from_the_upstreams_with_digests_kept(make, artifacts):
    result = make()
    lock = result.lock
    assert {e["name"] for e in lock["deb"]} == {"ks-dep", "ks-hello"}
    assert {e["name"] for e in lock["rpm"]} == {"ks-dep", "ks-hello"}
    assert {e["name"] for e in lock["wheels"]} == {"ks-alpha", "ks_beta"}
    for img in lock["images"]:
        assert img["digest"] == img["source_digest"] == artifacts.image_digests[img["ref"]]
    assert oci.refs(result.tree / "images") == sorted(artifacts.image_digests)


def closure_flavour(flavour: dict) -> None:
    """Only roots: apt and dnf find ks-dep themselves."""
    flavour["packages"] = []
    flavour["resolve"] = [
        {"sources": ["apt-upstream"], "roots": ["ks-hello"]},
        {"sources": ["yum-upstream"], "roots": ["ks-hello"], "release": "9"},
    ]


def test_closures_fill_the_cache_and_an_offline_build_uses_it(make, tmp_path):
    cache = tmp_path / "cache"
    online = make(closure_flavour, cache=cache, fill=True, name="online")
    for kind in ("deb", "rpm"):
        assert sorted(e["name"] for e in online.lock[kind]) == ["ks-dep", "ks-hello"]
    assert len(list((cache / "resolved").glob("*.yaml"))) == 2
    assert len(list((cache / "deb").iterdir())) == 2
    offline = make(closure_flavour, cache=cache, name="offline")
    for kind in ("deb", "rpm", "wheels", "images"):
        assert offline.lock[kind] == online.lock[kind]


@pytest.mark.parametrize(
    ("label", "edit", "error"),
    [
        ("deb ks-hello 2:1.2-3", lambda f: entry(f, "ks-hello", "deb").update(sha256=WRONG),
         DigestMismatchError),
        ("rpm ks-dep 1.0-1", lambda f: entry(f, "ks-dep", "rpm").update(sha256=WRONG), DigestMismatchError),
        ("wheel ks-alpha==0.1.0", lambda f: f["wheels"][0].update(sha256=WRONG), DigestMismatchError),
        ("deb ks-hello 9.9-1", lambda f: entry(f, "ks-hello", "deb").update(version="9.9-1"),
         MissingArtifactError),
        ("rpm ks-hello 1.2-4", lambda f: entry(f, "ks-hello", "rpm").update(version="1.2-4"),
         MissingArtifactError),
        ("wheel ks-alpha==7.0", lambda f: f["wheels"][0].update(version="7.0"), MissingArtifactError),
        ("image kubesalt.test/base:1",
         lambda f: f["images"][0].update(digest=f["images"][1]["digest"]), MissingArtifactError),
        ("image kubesalt.test/base:nope", lambda f: f["images"][0].update(tag="nope", digest=None),
         MissingArtifactError),
    ],
)  # fmt: skip
def test_a_bad_artifact_stops_the_build_naming_it(make, label, edit, error):
    with pytest.raises(error) as info:
        make(edit, allow_unpinned=True)
    assert info.value.artifact.startswith(label)
    assert label in str(info.value)


def test_an_offline_cache_without_the_artifact_stops_the_build(make, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingArtifactError) as info:
        make(cache=tmp_path / "empty")
    assert "--fill-cache" in str(info.value)
    assert "not in the offline cache" in str(info.value)


def test_a_cached_image_with_another_digest_is_a_mismatch(make, tmp_path):
    cache = tmp_path / "cache"
    make(cache=cache, fill=True, name="fill")

    def repin(flavour):
        flavour["images"][0]["digest"] = "sha256:" + WRONG

    with pytest.raises(DigestMismatchError) as info:
        make(repin, cache=cache, name="offline")
    assert info.value.artifact == "image kubesalt.test/base:1"


def test_unpinned_artifacts_need_allow_unpinned_and_get_recorded(make, artifacts):
    def unpin(flavour):
        entry(flavour, "ks-hello", "deb")["sha256"] = None
        flavour["images"][1]["digest"] = None

    with pytest.raises(UnpinnedArtifactError) as info:
        make(unpin)
    assert info.value.artifacts == [
        "deb ks-hello 2:1.2-3 (amd64)",
        "image kubesalt.test/tools/app:0.1",
    ]
    result = make(unpin, allow_unpinned=True, name="allowed")
    resolved = yaml.safe_load((result.tree.parent / "resolved.yaml").read_text())
    deb = next(e for e in resolved["deb"] if e["name"] == "ks-hello")
    assert deb["sha256"] == isofactory.sha256_file(artifacts.debs["ks-hello"])
    app = next(e for e in resolved["images"] if e["ref"] == "kubesalt.test/tools/app:0.1")
    assert app["digest"] == artifacts.image_digests["kubesalt.test/tools/app:0.1"]


def test_the_command_exits_1_naming_the_artifact_and_what_to_do(
    artifacts, upstream, project, tmp_path
):
    data = isofactory.manifest_data(artifacts, sources=copy.deepcopy(upstream))
    entry(data["flavours"]["test"], "ks-dep", "deb")["sha256"] = WRONG
    manifest = isofactory.write_manifest(tmp_path / "iso/manifest.yaml", data)
    proc = subprocess.run([str(ROOT / "iso/build"), "--flavour", "test", "--out", str(tmp_path / "out"),
                           "--manifest", str(manifest), "--project", str(project), "--no-iso"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "artifact deb ks-dep 1.0-1 (amd64): digest mismatch" in proc.stderr
    assert "what to do:" in proc.stderr
    assert "==> Fetch DEB packages" in proc.stdout
    assert "FAILED in" in proc.stdout


def test_the_error_base_is_kubesalts():
    from kubesalt.errors import KubesaltError

    assert issubclass(ArtifactError, KubesaltError)
