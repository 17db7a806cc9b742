"""Growing and shrinking the lab, measured: the first `deploy_node` of cp2, cp3 and worker1
together during `lab.sh up`; then every declared node but the bootstrap node removed with
`remove_node`, deployed again one at a time, removed again, and deployed again together:
the two redeploys start from the same state, so they compare. Last, a second `deploy_node`
of the three (nothing to change) and a no-op highstate on every node. It leaves the lab as
`lab.sh up` did; in the same session, tests/lab (run after tests/benchmarks) then test a
cluster grown, shrunk and grown again.

It takes about 11 minutes only to measure, so it is marked `slow_benchmark`: CI leaves it
out, and `sudo scripts/test.sh --run-slow-benchmarks tests/benchmarks/test_grow_times.py`
runs it. Results replace the "Grow the cluster" section of docs/benchmarks.md. No timed
assertions: this measures; the behaviour checks are that each run succeeds and that the
re-runs change nothing."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from datetime import UTC, datetime

import pytest

from kubesalt_lab import cli as labcli
from kubesalt_lab import model
from tests.benchmarks.docs_section import write_section

pytestmark = [pytest.mark.benchmark, pytest.mark.slow_benchmark, pytest.mark.lab]

SECTION = "Grow the cluster"
DEPLOY_LINE = re.compile(
    r"^lab: deploy_node (?P<nodes>[^:]+): done in (?P<s>[0-9.]+)s \((?P<what>[^)]*)\)"
)
WORKERS_LAST = [n.name for n in model.NODES if not n.bootstrap]
# Removal order: workers first, then control-plane nodes, so etcd keeps its quorum.
REMOVE_ORDER = sorted(WORKERS_LAST, key=lambda n: "etcd" in model.node(n).roles)


def deployed(output: str) -> list[tuple[str, float, str]]:
    found = []
    for line in output.splitlines():
        match = DEPLOY_LINE.match(line)
        if match:
            found.append((match["nodes"], float(match["s"]), match["what"]))
    return found


def salt_run_timed(lab, command, what):
    start = time.monotonic()
    result = lab.run("bootstrap", "salt-run", "--out=json", "--out-indent=-1", *command,
                     timeout=1800, check=False)  # fmt: skip
    seconds = time.monotonic() - start
    failed = model.failed_states(result.stdout)
    assert result.returncode == 0 and not failed, f"{what}: {failed or result.stderr[-3000:]}"
    return seconds, model.summary(result.stdout)


def declared(lab) -> set[str]:
    out = lab.run("bootstrap", "salt-run", "--out=json", "kubesalt_inventory.list_nodes").stdout
    return set(json.loads(out))


def remove_all(lab, saltenv) -> list[tuple[str, float, str]]:
    times = []
    for name in [n for n in REMOVE_ORDER if n in declared(lab)]:
        command = model.orchestrate_command("remove_node", name, saltenv)
        seconds, what = salt_run_timed(lab, command, f"remove_node {name}")
        times.append((f"remove_node {name}", seconds, what))
    return times


def test_grow_and_shrink_times(lab):
    first = deployed(lab.up_output)
    assert [nodes for nodes, _s, _w in first] == [", ".join(WORKERS_LAST)]
    saltenv = lab.archive()["saltenv"]

    removed = remove_all(lab, saltenv)
    one_at_a_time = labcli.deploy(WORKERS_LAST, together=False)
    removed_again = remove_all(lab, saltenv)
    together = labcli.deploy(WORKERS_LAST, together=True)
    command = model.orchestrate_command("deploy_node", WORKERS_LAST, saltenv)
    again = salt_run_timed(lab, command, "second deploy_node")
    assert again[1].endswith(" 0 changed"), again

    highstate = []
    for node in model.NODES:
        start = time.monotonic()
        result = lab.run("bootstrap", "salt", node.name, "state.highstate", f"saltenv={saltenv}",
                         "--out=json", "--out-indent=-1", timeout=900)  # fmt: skip
        states = json.loads(result.stdout)[node.name]
        changed = sum(1 for item in states.values() if item.get("changes"))
        highstate.append((node.name, time.monotonic() - start, len(states), changed))

    sum_one = sum(s for _w, s, _x in one_at_a_time)
    sum_together = sum(s for _w, s, _x in together)
    lines = [
        "<!-- Written by tests/benchmarks/test_grow_times.py; rerun it to refresh: "
        "sudo scripts/test.sh --run-slow-benchmarks tests/benchmarks/test_grow_times.py -->",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.node()} ({os.cpu_count()} CPUs, "
        f"Linux {platform.release()}): the four-node lab, `salt-run state.orchestrate "
        "kubesalt.orchestrate.deploy_node` and `remove_node` on the bootstrap node (phases "
        f"{', '.join(model.SKIP_PHASES)} of deploy_node and {', '.join(model.SKIP_REMOVE_PHASES)} "
        "of remove_node skipped: no Kubernetes binaries here). Each time is one `salt-run`; the "
        "nodes were declared before (`kubesalt_inventory.declare`, not counted).",
        "",
        "| run | seconds | states |",
        "|---|---|---|",
    ]
    lines += [
        f"| first deploy (lab.sh up, fresh nodes): {w} | {s:.1f} | {x} |" for w, s, x in first
    ]
    lines += [f"| {w} | {s:.1f} | {x} |" for w, s, x in removed]
    lines += [f"| redeploy one at a time: {w} | {s:.1f} | {x} |" for w, s, x in one_at_a_time]
    lines += [f"| {w} (again) | {s:.1f} | {x} |" for w, s, x in removed_again]
    lines += [f"| redeploy together: {w} | {s:.1f} | {x} |" for w, s, x in together]
    lines += [f"| second deploy_node of the three (no-op) | {again[0]:.1f} | {again[1]} |"]
    lines += [
        "",
        f"Three nodes one at a time: **{sum_one:.1f} s**; together in one `deploy_node`: "
        f"**{sum_together:.1f} s** ({sum_one / sum_together:.1f} x faster). Both redeploy the "
        "same removed nodes (packages already on them), so they compare; the first deploy "
        "also installs the packages. Together, every phase acts on the three nodes at once "
        "(salt-ssh in parallel, one state job for all targets); only the etcd joins run one "
        "after the other, as etcd admits one learner at a time.",
        "",
        "No-op highstate through the master, per node (after the redeploys):",
        "",
        "| node | seconds | states | changed |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {s:.1f} | {count} | {changed} |" for n, s, count, changed in highstate]
    write_section(SECTION, "\n".join(lines))
    assert all(changed == 0 for _n, _s, _c, changed in highstate)
