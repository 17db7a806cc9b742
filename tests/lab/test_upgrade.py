"""Upgrade and downgrade between two archives side by side (issue 15, item 5): `lab.sh
upgrade` builds the next lab archive (Kubernetes 1.34), adds it with kubesalt-iso and runs
its upgrade.sh; `lab.sh downgrade` runs that archive's downgrade.sh back to the first one.
During each, a probe writes into etcd every 100 ms through the members' own client URLs and
the host samples the VIP holders every 100 ms: no write lost or refused, exactly one holder
at every sample, every node on the target versions at the end. A second upgrade.sh of the
same archive changes nothing.

Runs after the other lab tests (file order), on the nodes they leave."""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime

import pytest

from kubesalt.kubeadm import images
from kubesalt_lab import host as labhost
from kubesalt_lab import model, upgrade
from tests.benchmarks.docs_section import write_section
from tests.lab.session import LAB_SH, parse_phase_times
from tests.lab.test_cluster import wait_for
from tests.lab.test_replace_node import healthy

pytestmark = pytest.mark.lab

MOVE_TIMEOUT = 1500


def lab_sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(LAB_SH), *args], capture_output=True, text=True,
                          timeout=MOVE_TIMEOUT, check=False)  # fmt: skip


def last_move() -> dict:
    return labhost.load_state()["moves"][-1]


@pytest.fixture(scope="module")
def moves(lab) -> dict:
    """lab.sh upgrade, the same upgrade.sh once more, then lab.sh downgrade: what each
    printed and, for the two moves, their records."""
    found = {}
    result = lab_sh("upgrade")
    assert result.returncode == 0, f"lab.sh upgrade:\n{result.stdout}\n{result.stderr}"
    found["upgrade"] = dict(last_move(), output=result.stdout)
    script = f"{upgrade.archive_dir(found['upgrade']['target'])}/scripts/upgrade.sh"
    again = lab.run("bootstrap", script, *model.upgrade_options(), check=False)
    found["again"] = {"code": again.returncode, "output": again.stdout + again.stderr}
    result = lab_sh("downgrade")
    assert result.returncode == 0, f"lab.sh downgrade:\n{result.stdout}\n{result.stderr}"
    found["downgrade"] = dict(last_move(), output=result.stdout)
    write_benchmarks({k: v for k, v in found.items() if k != "again"})
    return found


def write_benchmarks(found: dict) -> None:
    lines = [
        "<!-- Written by tests/lab/test_upgrade.py; rerun it to refresh: scripts/test.sh "
        "tests/lab/test_upgrade.py (KUBESALT_LAB_KEEP=1 on a lab that is up) -->",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.node()} (2 CPUs, Linux "
        f"{platform.release()}): the lab's cluster (the nodes the other lab tests leave) "
        "moved by `lab.sh upgrade` (the next lab archive, Kubernetes "
        f"{images.supported_versions()[-1]}) and `lab.sh downgrade`, with an etcd write and a "
        "VIP sample every 100 ms (phases wait-control-plane, drain and addons skipped: no "
        "Kubernetes binaries here).",
        "",
        "| run | step | seconds |",
        "|---|---|---|",
    ]
    for direction, record in found.items():
        for name, seconds in record["timings"]:
            lines.append(f"| {direction} to {record['target']} | {name} | {seconds:.1f} |")
        # The script's own phases (its last one runs the orchestration).
        for phase, seconds, _state in parse_phase_times(record["output"]):
            lines.append(f"| {direction} to {record['target']} | {phase} | {seconds:.1f} |")
    lines += [
        "",
        "| run | etcd writes acknowledged | refused | lost | VIP samples | not exactly one holder |",
        "|---|---|---|---|---|---|",
    ]
    for direction, record in found.items():
        written = record["written"]
        lines.append(
            f"| {direction} | {written['acknowledged']} of {written['tried']} | "
            f"{len(written['unacknowledged'])} | {len(written['lost'])} | "
            f"{record['vip_samples']} | {len(record['vip_not_one'])} |"
        )
    write_section("Upgrade and downgrade", "\n".join(lines))


@pytest.mark.parametrize("direction", ["upgrade", "downgrade"])
def test_no_write_is_lost_and_the_vip_has_one_holder_throughout(moves, direction):
    record = moves[direction]
    written = record["written"]
    assert written["tried"] > 0 and written["acknowledged"] == written["tried"], written
    assert written["unacknowledged"] == [] and written["lost"] == [], written
    assert record["vip_samples"] > 0 and record["vip_not_one"] == [], record["vip_not_one"]


def test_the_upgrade_moves_every_node_to_the_newer_archive_and_kubernetes(moves):
    upgrade, downgrade = moves["upgrade"], moves["downgrade"]
    newest = images.supported_versions()[-1]
    assert upgrade["ok"] and upgrade["target"] != downgrade["target"]
    for node, versions in upgrade["versions"].items():
        assert versions["kubesalt"] == upgrade["target"], (node, versions)
        assert versions["saltenv"] == f"kubesalt-{upgrade['target']}", (node, versions)
        assert versions["recorded"] == newest, (node, versions)
        if versions["etcd"] is not None:
            assert versions["etcd"] == images.image("etcd", newest).tag, (node, versions)
        if versions["apiserver"] is not None:
            assert versions["apiserver"] == newest, (node, versions)


def test_upgrade_sh_again_changes_nothing(moves):
    again = moves["again"]
    assert again["code"] == 0, again["output"]
    assert "nothing to do" in again["output"], again["output"]


def test_the_downgrade_brings_every_node_back(lab, moves):
    downgrade = moves["downgrade"]
    first = images.default_version()
    assert downgrade["ok"]
    for node, versions in downgrade["versions"].items():
        assert versions["kubesalt"] == downgrade["target"], (node, versions)
        assert versions["recorded"] == first, (node, versions)
        if versions["etcd"] is not None:
            assert versions["etcd"] == images.image("etcd", first).tag, (node, versions)
    assert wait_for("a healthy etcd", lambda: healthy(lab), 60)
