"""The lab for tests: brought up once per pytest session by `scripts/lab.sh up`, shared by
tests/lab and tests/benchmarks (reference-counted), and removed by `lab.sh down`.

Commands run inside a node with `nsenter -t <node's PID 1> -a` (the nodes are booted with
--register=no, so `machinectl`/`systemd-run -M` cannot reach them): `Lab.run` for plain
commands, and `Lab.host(node)` for a testinfra Host whose backend does the same
(`NodeBackend`), so testinfra's modules (service, socket, file, package) work in a node.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import time

import testinfra.host
from testinfra.backend.local import LocalBackend

from kubesalt_lab import host as labhost
from kubesalt_lab import model

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAB_SH = ROOT / "scripts" / "lab.sh"
PHASE_LINE = re.compile(r"^\s+(?P<phase>[a-z-]+) done in (?P<seconds>[0-9.]+)s \((?P<state>[^;)]+)")
UP_TIMEOUT = 1500
# KUBESALT_LAB_KEEP=1: reuse a lab that is up and leave it up (for developing the tests).
KEEP = os.environ.get("KUBESALT_LAB_KEEP") == "1"


class NodeBackend(LocalBackend):
    """testinfra backend running each command in a lab node through nsenter."""

    NAME = "kubesalt-lab"

    def __init__(self, node: str, leader: int):
        super().__init__()
        self.node = node
        self.leader = leader

    def get_pytest_id(self) -> str:
        return f"lab://{self.node}"

    def get_hostname(self) -> str:
        return self.node

    def run(self, command: str, *args: str, **kwargs) -> testinfra.backend.base.CommandResult:
        inner = self.get_command(command, *args)
        outer = labhost.nsenter_command(self.leader, ["/bin/sh", "-c", inner])
        return self.run_local(" ".join(_quote(part) for part in outer))


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def parse_phase_times(output: str) -> list[tuple[str, float, str]]:
    """(phase, seconds, 'changed'|'no changes') for each phase line of bootstrap.sh."""
    found = []
    for line in output.splitlines():
        match = PHASE_LINE.match(line)
        if match:
            found.append((match["phase"], float(match["seconds"]), match["state"].strip()))
    return found


class Lab:
    def __init__(self):
        self.up_output = ""
        self.up_seconds = 0.0
        self.timings: list = []
        self.users = 0
        self.bootstrap_reruns: list[subprocess.CompletedProcess] = []

    def up(self) -> None:
        if KEEP and labhost.load_state().get("nodes"):
            # Developer mode: test the lab that is up (its first bootstrap output is gone).
            self.up_output = (ROOT / ".pytest_cache" / "lab-up.log").read_text()
            self.timings = labhost.load_state().get("timings", [])
            return
        subprocess.run([str(LAB_SH), "down"], capture_output=True, text=True, check=False)
        start = time.monotonic()
        result = subprocess.run(
            [str(LAB_SH), "up"], capture_output=True, text=True, timeout=UP_TIMEOUT, check=False
        )
        self.up_seconds = time.monotonic() - start
        self.up_output = result.stdout + result.stderr
        (ROOT / ".pytest_cache").mkdir(exist_ok=True)
        (ROOT / ".pytest_cache" / "lab-up.log").write_text(self.up_output)
        if result.returncode != 0:
            tail = "\n".join(self.up_output.splitlines()[-60:])
            log = self.run_quiet("bootstrap", "tail", "-n", "80", "/var/log/kubesalt/bootstrap.log")
            self.down()
            raise RuntimeError(
                f"lab.sh up failed (exit {result.returncode}):\n{tail}\n--- bootstrap.log:\n{log}"
            )
        self.timings = labhost.load_state().get("timings", [])

    def down(self) -> str:
        if KEEP:
            return "kept (KUBESALT_LAB_KEEP)"
        result = subprocess.run([str(LAB_SH), "down"], capture_output=True, text=True, check=False)
        return result.stdout + result.stderr

    def leader(self, node: str) -> int:
        entry = labhost.load_state()["nodes"][node]
        pid = labhost.leader(entry["launcher"])
        assert pid, f"node {node} is not running"
        return pid

    def run(
        self,
        node: str,
        *cmd: str,
        check: bool = True,
        timeout: float = 600,
        stdin: str | None = None,
    ):
        result = subprocess.run(
            labhost.nsenter_command(self.leader(node), list(cmd)),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{node}: {' '.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def run_quiet(self, node: str, *cmd: str) -> str:
        try:
            return self.run(node, *cmd, check=False).stdout
        except Exception as err:  # noqa: BLE001 (diagnostics only)
            return f"(cannot read: {err})"

    def write(self, node: str, path: str, content: str) -> None:
        self.run(
            node, "sh", "-c", f"mkdir -p \"$(dirname '{path}')\" && cat > '{path}'", stdin=content
        )

    def host(self, node: str) -> testinfra.host.Host:
        return testinfra.host.Host(NodeBackend(node, self.leader(node)))

    def archive(self) -> dict:
        """The lab archive as registered on the bootstrap node."""
        import yaml

        text = self.run("bootstrap", "cat", "/etc/kubesalt/archives.yaml").stdout
        return yaml.safe_load(text)["archives"][0]

    def iso(self) -> str:
        return labhost.load_state()["iso"]

    def node_root(self, node: str) -> str:
        return labhost.load_state()["nodes"][node]["root"]

    def bootstrap_node(self) -> str:
        return next(n.name for n in model.NODES if n.bootstrap)

    def first_bootstrap_phases(self) -> list[tuple[str, float, str]]:
        """bootstrap.sh's phases in `lab.sh up`'s output (which then shows deploy_node's
        phases, in the same format)."""
        end = self.up_output.find("bootstrap.sh: done in")
        return parse_phase_times(self.up_output[: end if end >= 0 else None])

    def rerun_bootstrap(self, count: int) -> list[tuple[subprocess.CompletedProcess, float]]:
        """The first `count` runs of bootstrap.sh after `lab.sh up`, each with its wall time:
        run here as needed, shared by the lab test that runs it again and again and by the
        bootstrap benchmark, so that neither pays for runs the other made."""
        while len(self.bootstrap_reruns) < count:
            start = time.monotonic()
            result = self.run(
                self.bootstrap_node(), *model.bootstrap_command(), check=False, timeout=900
            )
            self.bootstrap_reruns.append((result, time.monotonic() - start))
        return self.bootstrap_reruns[:count]


_LAB = Lab()


def acquire() -> Lab:
    if _LAB.users == 0:
        _LAB.up()
    _LAB.users += 1
    return _LAB


def release() -> None:
    _LAB.users -= 1
    if _LAB.users == 0:
        _LAB.down()
