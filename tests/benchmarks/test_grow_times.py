"""Growing and shrinking the lab, measured: the first `deploy_node` of cp2, cp3 and worker1
together during `lab.sh up`; then every declared node but the bootstrap node removed with
`remove_node`, deployed again one at a time, removed again, and deployed again together:
the two redeploys start from the same state, so they compare (cp2's own redeploy is "one
node alone"). Last, a second `deploy_node` of the three (nothing to change), its dry run,
and a no-op highstate on every node. Per-phase times come from the engine's progress lines
in the bootstrap node's orchestrate.log. It leaves the lab as `lab.sh up` did; in the same
session, tests/lab (run after tests/benchmarks) then test a cluster grown, shrunk and grown
again.

It takes minutes only to measure, so it is marked `slow_benchmark`: CI leaves it out, and
`sudo scripts/test.sh --run-slow-benchmarks tests/benchmarks/test_grow_times.py` runs it.
Results replace the "Grow the cluster" section of docs/benchmarks.md. No timed assertions:
this measures; the behaviour checks are that each run succeeds and that the re-runs change
nothing."""

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
ORCHESTRATE_LOG = "/var/log/kubesalt/orchestrate.log"
# One line of the engine's progress in orchestrate.log: "<time> <run>: <text>".
LOG_LINE = re.compile(r"^\S+ (?P<run>[^:]+): (?P<text>.*)$")
PHASE_DONE = re.compile(r"^\s+(?P<phase>[a-z-]+) (?:done in|FAILED after) (?P<s>[0-9.]+)s")
WORKERS_LAST = [n.name for n in model.NODES if not n.bootstrap]
# Removal order: workers first, then control-plane nodes, so etcd keeps its quorum.
REMOVE_ORDER = sorted(WORKERS_LAST, key=lambda n: "etcd" in model.node(n).roles)
ALONE = "cp2"  # the node deployed alone, against the three together


def phase_times(log_text: str, run: str) -> dict[str, float]:
    """{phase: seconds} of the last run labelled `run` in orchestrate.log's text."""
    runs: list[dict[str, float]] = []
    for line in log_text.splitlines():
        match = LOG_LINE.match(line)
        if not match or match["run"] != run:
            continue
        if match["text"].endswith(" phases"):
            runs.append({})
        done = PHASE_DONE.match(match["text"])
        if done and runs:
            runs[-1][done["phase"]] = float(done["s"])
    return runs[-1] if runs else {}


def orchestrate_log(lab) -> str:
    return lab.run("bootstrap", "cat", ORCHESTRATE_LOG).stdout


def salt_run_timed(lab, command, what):
    start = time.monotonic()
    result = lab.run("bootstrap", "salt-run", "--out=json", "--out-indent=-1",
                     "--log-level=error", *command, timeout=1800, check=False)  # fmt: skip
    seconds = time.monotonic() - start
    failed = model.failed_states(result.stdout)
    assert result.returncode == 0 and not failed, f"{what}: {failed or result.stdout[-3000:]}"
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


def no_op_highstates(lab, saltenv) -> list[tuple[str, float, int, int]]:
    found = []
    for node in model.NODES:
        start = time.monotonic()
        result = lab.run("bootstrap", "salt", node.name, "state.highstate", f"saltenv={saltenv}",
                         "--out=json", "--out-indent=-1", timeout=900)  # fmt: skip
        states = json.loads(result.stdout)[node.name]
        changed = sum(1 for item in states.values() if item.get("changes"))
        found.append((node.name, time.monotonic() - start, len(states), changed))
    return found


def test_grow_and_shrink_times(lab):
    three = ", ".join(WORKERS_LAST)
    first = [(w, s, x) for w, s, x in deployed(lab.up_output)]
    assert [nodes for nodes, _s, _w in first] == [three]
    saltenv = lab.archive()["saltenv"]
    phases = {"first deploy, fresh nodes (lab.sh up)": phase_times(
        orchestrate_log(lab), f"deploy_node {three}")}  # fmt: skip

    removed = remove_all(lab, saltenv)
    one_at_a_time = labcli.deploy(WORKERS_LAST, together=False)
    phases[f"{ALONE} alone (redeploy)"] = phase_times(orchestrate_log(lab), f"deploy_node {ALONE}")
    removed_again = remove_all(lab, saltenv)
    together = labcli.deploy(WORKERS_LAST, together=True)
    phases["the three together (redeploy)"] = phase_times(
        orchestrate_log(lab), f"deploy_node {three}")  # fmt: skip
    command = model.orchestrate_command("deploy_node", WORKERS_LAST, saltenv)
    again = salt_run_timed(lab, command, "second deploy_node")
    assert again[1].endswith(" 0 changed"), again
    phases["the three again (no-op)"] = phase_times(orchestrate_log(lab), f"deploy_node {three}")
    dry = salt_run_timed(lab, [*command, "test=True"], "dry-run deploy_node")
    highstate = no_op_highstates(lab, saltenv)

    write_section(SECTION, report(first, removed, one_at_a_time, removed_again, together, again,
                                  dry, phases, highstate))  # fmt: skip
    assert all(changed == 0 for _n, _s, _c, changed in highstate)


def deployed(output: str) -> list[tuple[str, float, str]]:
    found = []
    for line in output.splitlines():
        match = DEPLOY_LINE.match(line)
        if match:
            found.append((match["nodes"], float(match["s"]), match["what"]))
    return found


DEPLOY_LINE = re.compile(
    r"^lab: deploy_node (?P<nodes>[^:]+): done in (?P<s>[0-9.]+)s \((?P<what>[^)]*)\)"
)


def report(first, removed, one_at_a_time, removed_again, together, again, dry, phases,
           highstate) -> str:  # fmt: skip
    alone = next(s for w, s, _x in one_at_a_time if w == f"deploy_node {ALONE}")
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
    lines += [f"| dry run (test=True) of deploy_node of the three | {dry[0]:.1f} | {dry[1]} |"]
    lines += [
        "",
        f"Three nodes one at a time: **{sum_one:.1f} s**; together in one `deploy_node`: "
        f"**{sum_together:.1f} s**; {ALONE} alone: **{alone:.1f} s**, so the three together "
        f"take **{sum_together / alone:.2f} x** one node alone. The redeploys start from the "
        "same removed nodes (packages already on them), so they compare; the first deploy also "
        "installs the packages. Only the etcd joins run one node after the other (etcd admits "
        "one learner at a time).",
        "",
        "Per phase (seconds; from the engine's progress in /var/log/kubesalt/orchestrate.log):",
        "",
        "| phase | " + " | ".join(phases) + " |",
        "|---|" + "---|" * len(phases),
    ]
    names = []
    for times in phases.values():
        names += [name for name in times if name not in names]
    for name in names:
        cells = [f"{times[name]:.1f}" if name in times else "-" for times in phases.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "No-op highstate through the master, per node (after the redeploys):",
        "",
        "| node | seconds | states | changed |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {s:.1f} | {count} | {changed} |" for n, s, count, changed in highstate]
    return "\n".join(lines)
