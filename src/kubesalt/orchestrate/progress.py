"""Live progress of an orchestration: one line when a phase starts, one when it ends,
written as it happens to the salt-run process's stderr and appended to a log file on the
bootstrap node (0600). Lines carry names, times and counts: never a diff, never a secret.
"""

from __future__ import annotations

import os
import sys
import time

from kubesalt.bootstrap.phases import done_line, start_line

LOG_FILE = "/var/log/kubesalt/orchestrate.log"


class Progress:
    def __init__(self, label: str, stream=None, log_file: str | None = LOG_FILE, now=time.time):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.log_file = log_file
        self.now = now

    def line(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed terminal must not stop the run
            pass
        if self.log_file:
            self._append(text)

    def _append(self, text: str) -> None:
        directory = os.path.dirname(self.log_file)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.now()))
        with os.fdopen(fd, "a", encoding="utf-8") as stream:
            stream.write(f"{stamp} {self.label}: {text}\n")

    def started(self, index: int, total: int, name: str, summary: str, nodes) -> None:
        where = f" [{', '.join(nodes)}]" if nodes else ""
        self.line(start_line(index, total, name, summary + where))

    def skipped(self, index: int, total: int, name: str, summary: str, why: str) -> None:
        self.line(f"{start_line(index, total, name, summary)} {why}")

    def ended(self, name: str, seconds: float, per_node: dict, test: bool = False) -> None:
        changed = any(_count(changes) for changes in per_node.values())
        word = "would change" if test else "changed"
        self.line(done_line(name, seconds, changed, node_summary(per_node, word), word))

    def failed(self, name: str, seconds: float, message: str) -> None:
        self.line(f"      {name} FAILED after {seconds:.1f}s: {message}")


def _count(changes) -> int:
    if isinstance(changes, dict):
        return sum(_count(v) for v in changes.values()) or 0
    if isinstance(changes, list | tuple | set):
        return len(changes)
    return 1 if changes else 0


def node_summary(per_node: dict, word: str = "changed") -> str:
    """`cp2: 3 changed, cp3: ok`: each node's result, counted (no content)."""
    parts = []
    for node, changes in per_node.items():
        count = _count(changes)
        parts.append(f"{node}: {count} {word}" if count else f"{node}: ok")
    return ", ".join(parts)
