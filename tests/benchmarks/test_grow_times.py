"""Growing the lab: `deploy_node` per node during `lab.sh up` (one at a time), a second
`deploy_node` (nothing to change) and a no-op highstate on every node. Results replace the
"Grow the cluster" section of docs/benchmarks.md. No timed assertions: this measures; the
lab tests (tests/lab/test_cluster.py) check behaviour."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from datetime import UTC, datetime

import pytest

from kubesalt.lab import model
from tests.benchmarks.docs_section import write_section

pytestmark = [pytest.mark.benchmark, pytest.mark.lab]

SECTION = "Grow the cluster"
DEPLOY_LINE = re.compile(
    r"^lab: deploy_node (?P<node>\S+): done in (?P<s>[0-9.]+)s \((?P<what>[^)]*)\)"
)


def deployed(output: str) -> list[tuple[str, float, str]]:
    found = []
    for line in output.splitlines():
        match = DEPLOY_LINE.match(line)
        if match:
            found.append((match["node"], float(match["s"]), match["what"]))
    return found


def test_grow_times(lab):
    first = deployed(lab.up_output)
    assert [n for n, _s, _w in first] == [n.name for n in model.NODES if not n.bootstrap]
    saltenv = lab.archive()["saltenv"]
    up = [n.name for n in model.NODES if lab.run(n.name, "systemctl", "is-active", "salt-minion",
                                                  check=False).stdout.strip() == "active"]  # fmt: skip
    again = []
    for name in [n for n, _s, _w in first if n in up]:
        start = time.monotonic()
        result = lab.run("bootstrap", "salt-run", "--out=json", "--out-indent=-1",
                         *model.orchestrate_command("deploy_node", name, saltenv), timeout=900)  # fmt: skip
        again.append((name, time.monotonic() - start, model.summary(result.stdout)))
    highstate = []
    for name in up:
        start = time.monotonic()
        result = lab.run("bootstrap", "salt", name, "state.highstate", f"saltenv={saltenv}",
                         "--out=json", "--out-indent=-1", timeout=900)  # fmt: skip
        states = json.loads(result.stdout)[name]
        changed = sum(1 for item in states.values() if item.get("changes"))
        highstate.append((name, time.monotonic() - start, len(states), changed))
    lines = [
        "<!-- Written by tests/benchmarks/test_grow_times.py; rerun it to refresh. -->",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.node()} ({os.cpu_count()} CPUs, "
        f"Linux {platform.release()}): the four-node lab, nodes deployed one at a time by "
        "`lab.sh up` with `salt-run state.orchestrate kubesalt.orchestrate.deploy_node` (phases "
        f"{', '.join(model.SKIP_PHASES)} skipped: no Kubernetes binaries here).",
        "",
        "| node | first deploy_node (s) | states | second deploy_node (s) | states |",
        "|---|---|---|---|---|",
    ]
    seconds_again = {n: (s, w) for n, s, w in again}
    for name, seconds, what in first:
        s2, w2 = seconds_again.get(name, (float("nan"), "not run (node removed by the lab tests)"))
        lines.append(f"| {name} | {seconds:.1f} | {what} | {s2:.1f} | {w2} |")
    lines += [
        "",
        "Deploying the three nodes together (one orchestration each, in parallel) was not "
        "measured: the nodes are deployed one at a time, which is what `lab.sh up` does.",
        "",
        "No-op highstate through the master, per node (after the lab tests):",
        "",
        "| node | seconds | states | changed |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {s:.1f} | {count} | {changed} |" for n, s, count, changed in highstate]
    write_section(SECTION, "\n".join(lines))
    assert all(changed == 0 for _n, _s, _c, changed in highstate)
