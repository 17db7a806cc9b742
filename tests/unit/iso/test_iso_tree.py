"""The ISO tree: SHA256SUMS, product.txt, volume id, project files, the wheel builder."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from kubesalt_isobuild import pywheel, tree

ROOT = Path(__file__).resolve().parents[3]


def test_sha256sums_lists_every_other_file_sorted_and_sha256sum_agrees(tmp_path):
    (tmp_path / "b/c").mkdir(parents=True)
    (tmp_path / "b/c/z.txt").write_text("z")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "name with space").write_text("s")
    assert tree.write_sums(tmp_path) == 3
    lines = (tmp_path / "SHA256SUMS").read_text().splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == ["a.txt", "b/c/z.txt", "name with space"]
    assert lines[0] == f"{hashlib.sha256(b'a').hexdigest()}  a.txt"
    proc = subprocess.run(
        ["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=tmp_path, capture_output=True
    )
    assert proc.returncode == 0
    assert tree.check_sums(tmp_path) == []


def test_check_sums_finds_changed_missing_and_unlisted_files(tmp_path):
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    tree.write_sums(tmp_path)
    (tmp_path / "a").write_text("changed")
    (tmp_path / "b").unlink()
    (tmp_path / "c").write_text("new")
    assert tree.check_sums(tmp_path) == [
        "a: sha256 differs",
        "b: missing or not a regular file",
        "c: not listed in SHA256SUMS",
    ]


def test_product_txt_round_trips():
    date = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
    text = tree.product_text("kubesalt", "0.1.0", "abc123", date, "lab")
    assert text == (
        "NAME=kubesalt\nVERSION=0.1.0\nGIT_REVISION=abc123\nBUILD_DATE=2025-06-01T12:00:00Z\nFLAVOUR=lab\n"
    )
    assert tree.parse_product(text)["FLAVOUR"] == "lab"


def test_volume_id():
    assert tree.volume_id("kubesalt", "0.1.0") == "KUBESALT_0_1_0"
    assert len(tree.volume_id("kubesalt", "1.2.3-rc.1+" + "x" * 40)) == 32


def test_copy_project_puts_bootstrap_at_the_root_and_skips_caches(tmp_path):
    project = tmp_path / "p"
    (project / "salt/_modules/__pycache__").mkdir(parents=True)
    (project / "salt/_modules/__pycache__/m.cpython-311.pyc").write_bytes(b"x")
    (project / "salt/top.sls").write_text("base: {}\n")
    (project / "scripts").mkdir()
    (project / "scripts/bootstrap.sh").write_text("#!/bin/sh\n")
    out = tmp_path / "tree"
    out.mkdir()
    assert tree.copy_project(project, out) == ["salt", "scripts", "bootstrap.sh"]
    assert (out / "bootstrap.sh").stat().st_mode & 0o111
    assert not (out / "salt/_modules/__pycache__").exists()


def test_copy_project_without_bootstrap(tmp_path):
    (tmp_path / "p/pillar").mkdir(parents=True)
    (tmp_path / "t").mkdir()
    assert tree.copy_project(tmp_path / "p", tmp_path / "t") == ["pillar"]


def test_git_revision_outside_a_repository(tmp_path):
    assert tree.git_revision(tmp_path) == "unknown"


def test_the_pure_python_wheel_is_valid_and_reproducible(tmp_path):
    pkg = tmp_path / "src/demo_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("X = 1\n")
    first = pywheel.build_wheel("demo-pkg", "1.0", pkg, tmp_path / "a", requires=["pyyaml"])
    second = pywheel.build_wheel("demo-pkg", "1.0", pkg, tmp_path / "b", requires=["pyyaml"])
    assert first.name == "demo_pkg-1.0-py3-none-any.whl"
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as zf:
        names = zf.namelist()
        assert "demo_pkg/__init__.py" in names
        meta = zf.read("demo_pkg-1.0.dist-info/METADATA").decode()
        assert "Requires-Dist: pyyaml" in meta
        record = zf.read("demo_pkg-1.0.dist-info/RECORD").decode().splitlines()
        digest = base64.urlsafe_b64encode(hashlib.sha256(b"X = 1\n").digest()).rstrip(b"=").decode()
        assert f"demo_pkg/__init__.py,sha256={digest},6" in record


def test_make_pause_writes_a_static_elf_that_pauses(tmp_path):
    subprocess.run(["python3", str(ROOT / "images/pause/make_pause.py"), str(tmp_path)], check=True)
    binary = (tmp_path / "pause").read_bytes()
    assert binary[:4] == b"\x7fELF"
    assert len(binary) == 129
    assert binary.endswith(bytes.fromhex("b8220000000f05ebf7"))  # pause(2) in a loop
    assert (tmp_path / "pause").stat().st_mode & 0o111
