"""Fixtures of the ISO integration tests: local artifacts, a built ISO, real servers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import iso_servers as servers  # noqa: E402
import isofactory  # noqa: E402

from kubesalt_isobuild.build import Options, Result, build  # noqa: E402

TOOLS = ("xorriso", "createrepo_c", "dnf", "rpmbuild", "dpkg-deb", "apt-get", "gpg", "gpgv",
         "skopeo", "umoci", "docker-registry", "nginx", "openssl")  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def _tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"the ISO integration tests need {', '.join(missing)} (apt-get install them)")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> isofactory.Artifacts:
    return isofactory.make_artifacts(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    return isofactory.make_project(tmp_path_factory.mktemp("project"))


@dataclass
class Built:
    result: Result
    manifest: dict
    tree: Path
    iso: Path
    extracted: Path
    out: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory, artifacts, project) -> Built:
    """The small ISO, built offline from a cache holding the local artifacts."""
    base = tmp_path_factory.mktemp("built")
    cache = base / "cache"
    isofactory.fill_cache(artifacts, cache)
    data = isofactory.manifest_data(artifacts)
    manifest = isofactory.write_manifest(base / "iso" / "manifest.yaml", data)
    out = base / "out"
    opts = Options(manifest=manifest, flavour="test", out=out, project=project, version="1.2.3",
                   cache=cache)  # fmt: skip
    result = build(opts)
    extracted = base / "extracted"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(result.iso), "-extract", "/",
                    str(extracted)], check=True, capture_output=True)  # fmt: skip
    return Built(result, data, result.tree, result.iso, extracted, out)


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> dict[str, Path]:
    return servers.make_ca(tmp_path_factory.mktemp("tls"))
