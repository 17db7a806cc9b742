"""Certificate renewal times on the lab: `renew_certificates` with every leaf certificate due
(a window wider than their validity), then a run with nothing due. Per node, the time the
engine reports ("<node> done in ...s"). Results replace the "Certificate renewal" section of
docs/benchmarks.md. No timed assertions: this measures, tests/lab/test_renew_certificates.py checks
behaviour."""

from __future__ import annotations

import os
import platform
import re
import time
from datetime import UTC, datetime

import pytest

from kubesalt_lab import model
from tests.benchmarks.docs_section import write_section
from tests.lab.test_cluster import salt_json
from tests.lab.test_renew_certificates import renew_command

pytestmark = [pytest.mark.benchmark, pytest.mark.lab]

SECTION = "Certificate renewal"
NODE_DONE = re.compile(r"(?P<node>[\w.-]+) done in (?P<seconds>[\d.]+)s")


def timed_run(lab, **pillar) -> tuple[float, str]:
    start = time.monotonic()
    result, out = salt_json(lab, "salt-run", *renew_command(lab, **pillar))
    seconds = time.monotonic() - start
    assert result.returncode == 0, out[-3000:]
    assert model.failed_states(out) == []
    return seconds, out


def test_renewal_times(lab):
    every, every_out = timed_run(lab, renew_before_days=400)
    nothing, nothing_out = timed_run(lab)
    per_node = {m["node"]: float(m["seconds"]) for m in NODE_DONE.finditer(every_out)}
    lines = [
        "<!-- Written by tests/benchmarks/test_renewal_times.py; rerun it to refresh. -->",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.node()} ({os.cpu_count()} CPUs, "
        f"Linux {platform.release()}): `salt-run state.orchestrate "
        "kubesalt.orchestrate.renew_certificates` on the four-node lab (phases kubelet and "
        "wait-control-plane skipped: no Kubernetes binaries here).",
        "",
        "| run | seconds | states |",
        "|---|---|---|",
        f"| every leaf certificate due (`renew_before_days: 400`) | {every:.1f} | "
        f"{model.summary(every_out)} |",
        f"| nothing due | {nothing:.1f} | {model.summary(nothing_out)} |",
        "",
        "Control-plane and etcd nodes renew one after the other (each healthy before the next); "
        "the time of each, as the engine reports it:",
        "",
        "| node | seconds |",
        "|---|---|",
        *[f"| {node} | {seconds:.1f} |" for node, seconds in per_node.items()],
    ]
    write_section(SECTION, "\n".join(lines))
