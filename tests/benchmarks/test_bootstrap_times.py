"""Bootstrap times on the lab: `lab.sh up` per step, bootstrap.sh per phase on a fresh node,
and a second bootstrap.sh (nothing to change). Results replace the "Bootstrap" section of
docs/benchmarks.md. No timed assertions: this measures, the lab tests check behaviour."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime

import pytest

from kubesalt.bootstrap import cli
from kubesalt_lab import model
from tests.benchmarks.docs_section import write_section
from tests.lab import session

pytestmark = [pytest.mark.benchmark, pytest.mark.lab]

SECTION = "Bootstrap"


def report(lab, second: list, second_wall: float) -> str:
    first = dict((p, (s, st)) for p, s, st in lab.first_bootstrap_phases())
    again = dict((p, (s, st)) for p, s, st in second)
    lines = [
        "<!-- Written by tests/benchmarks/test_bootstrap_times.py; rerun it to refresh. -->",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.node()} ({os.cpu_count()} CPUs, "
        f"Linux {platform.release()}): the lab's bootstrap node (systemd-nspawn, Debian 12 rootfs "
        "with nothing of ours), `bootstrap.sh` from the extracted `lab` ISO.",
        "",
        "`bootstrap.sh` per phase, first run (fresh node) and second run (nothing to change):",
        "",
        "| phase | first run (s) | second run (s) | second run |",
        "|---|---|---|---|",
    ]
    for phase in first:
        s1, _ = first[phase]
        s2, state2 = again.get(phase, (float("nan"), "?"))
        lines.append(f"| {phase} | {s1:.1f} | {s2:.1f} | {state2} |")
    total1 = sum(s for s, _ in first.values())
    total2 = sum(s for s, _ in again.values())
    lines += [
        f"| **total** | **{total1:.1f}** | **{total2:.1f}** (wall {second_wall:.1f}) | |",
        "",
        "`lab.sh up` per step ("
        + (
            "ISO given by KUBESALT_LAB_ISO, not built; "
            if os.environ.get("KUBESALT_LAB_ISO")
            else "ISO built by iso/build from a warm artifact cache; "
        )
        + "rootfs from the cache when its package list has not changed; a cold mmdebstrap "
        "build takes 30-50 s here):",
        "",
        "| step | seconds |",
        "|---|---|",
    ]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in lab.timings]
    lines += [
        "",
        f"`lab.sh up` as run by the test session: {lab.up_seconds:.1f} s (includes `dev-env.sh`).",
        "The first run's time goes to installing packages from the archive, pip installing Salt "
        "from the wheelhouse, and the first `state.apply`; the second run does every check and "
        "one `state.apply` locally and through the master, and changes nothing.",
    ]
    return "\n".join(lines)


def test_bootstrap_times(lab):
    # The second run is the lab test's first re-run (whichever asks first runs it).
    result, wall = lab.rerun_bootstrap(1)[0]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    second = session.parse_phase_times(result.stdout)
    ran = len(cli.PHASES) - len(model.SKIP_BOOTSTRAP_PHASES)  # skipped ones print no time
    assert len(lab.first_bootstrap_phases()) == len(second) == ran
    write_section(SECTION, report(lab, second, wall))
