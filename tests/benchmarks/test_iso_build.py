"""ISO build benchmark: time per step, and ISO size against the sum of its artifacts.

Always measures the small ISO built from local artifacts (offline, seconds). With
KUBESALT_BENCH_ISO_LAB=1 it also builds the ``lab`` flavour from its real sources (Debian
packages through apt, wheels from PyPI) twice: once filling a fresh cache (online), once
from that cache (offline). Results replace the "ISO build" section of docs/benchmarks.md.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.benchmarks.docs_section import read_section, write_section

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "iso"))

import isofactory  # noqa: E402

from kubesalt_isobuild.build import Options, Result, build  # noqa: E402
from kubesalt_isobuild.util import Steps  # noqa: E402

pytestmark = pytest.mark.benchmark
SECTION = "ISO build"
NOTE = (
    "An ISO 9660 image has a fixed cost of about 0.5 MB (system area, volume descriptors, Rock "
    "Ridge and Joliet trees), which dominates the small ISO; for the `lab` flavour the ISO is "
    "within 1-2 % of the sum of its artifacts. Most of an online `lab` build is pip: the "
    "wheels, and building Salt's and timelib's wheels from their sdists.\n"
)


class Quiet(Steps):
    def __init__(self) -> None:
        super().__init__(stream=open(os.devnull, "w"))  # noqa: SIM115


def measure(opts: Options) -> tuple[Result, float]:
    steps = Quiet()
    start = time.monotonic()
    try:
        result = build(opts, steps)
    finally:
        steps.stream.close()
    return result, time.monotonic() - start


def table(title: str, result: Result, wall: float) -> str:
    iso = result.iso.stat().st_size if result.iso else 0
    tree = sum(p.stat().st_size for p in result.tree.rglob("*") if p.is_file())
    lines = [f"### {title}", "", "| step | seconds |", "|---|---:|"]
    lines += [f"| {name} | {took:.2f} |" for name, took in result.timings]
    lines += [f"| **total (wall clock)** | **{wall:.2f}** |", ""]
    stats = result.image_stats
    lines += [
        f"- artifacts: {len(result.lock['deb'])} DEB, {len(result.lock['rpm'])} RPM, "
        f"{len(result.lock['images'])} images, {len(result.lock['wheels'])} wheels",
        f"- sum of the artifacts' sizes: {result.artifact_bytes:,} bytes "
        f"(images counted whole, as if stored separately)",
        f"- image blobs: {stats.copied} stored, {stats.reused} shared and stored once "
        f"({stats.bytes_reused:,} bytes saved)",
        f"- ISO tree: {tree:,} bytes; ISO: {iso:,} bytes "
        f"({iso / max(result.artifact_bytes, 1):.2f} x the artifacts)",
        "",
    ]
    return "\n".join(lines)


def previous_lab_tables() -> str:
    """The `lab` tables of the current section, kept when this run does not measure them."""
    body = read_section(SECTION)
    if body is None:
        return ""
    lab = re.search(r"^### `lab`.*", body, re.S | re.M)
    return lab.group(0).rstrip() + "\n" if lab else ""


def test_iso_build_benchmark(tmp_path):
    art = isofactory.make_artifacts(tmp_path / "art")
    cache = tmp_path / "cache"
    isofactory.fill_cache(art, cache)
    manifest = isofactory.write_manifest(
        tmp_path / "iso/manifest.yaml", isofactory.manifest_data(art)
    )
    project = isofactory.make_project(tmp_path / "project")
    small, small_wall = measure(Options(manifest=manifest, flavour="test", out=tmp_path / "small",
                                        project=project, version="0.0.0", cache=cache))  # fmt: skip
    assert small.iso and small.iso.is_file()
    host = f"{platform.node() and 'this machine'}: {os.cpu_count()} cores, Python {platform.python_version()}"
    parts = [
        f"Measured by `tests/benchmarks/test_iso_build.py` on {datetime.now(UTC):%Y-%m-%d} ({host}).",
        "",
        table("Small ISO from local artifacts (offline, from a cache)", small, small_wall),
        NOTE,
    ]
    if os.environ.get("KUBESALT_BENCH_ISO_LAB") == "1":
        lab_cache = tmp_path / "lab-cache"
        online, online_wall = measure(Options(manifest=ROOT / "iso/manifest.yaml", flavour="lab",
                                              out=tmp_path / "lab1", project=ROOT, version="0.1.0",
                                              cache=lab_cache, fill_cache=True))  # fmt: skip
        offline, offline_wall = measure(Options(manifest=ROOT / "iso/manifest.yaml", flavour="lab",
                                                out=tmp_path / "lab2", project=ROOT, version="0.1.0",
                                                cache=lab_cache))  # fmt: skip
        assert online.lock["deb"] == offline.lock["deb"]
        parts.append(table("`lab` flavour from its real sources, filling an empty cache (online)", online,
                           online_wall))  # fmt: skip
        parts.append(table("`lab` flavour again, from that cache (offline)", offline, offline_wall))
    else:
        kept = previous_lab_tables()
        parts.append(kept or "The `lab` flavour is measured with `KUBESALT_BENCH_ISO_LAB=1` "
                     "(needs Debian's mirror and PyPI).\n")  # fmt: skip
    write_section(SECTION, "\n".join(parts))
