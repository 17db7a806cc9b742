"""One kubesalt orchestration at a time on the bootstrap node (docs/orchestrations.md).

Two orchestrations at once would race: etcd admits one learner at a time, and state runs on
the same minions collide. Salt does not prevent it (an orchestration is not a state job of a
minion; the lab test proved two run side by side). The first phase of each orchestration
takes an exclusive flock(2) on LOCK_FILE and keeps it until its salt-run process ends (the
kernel releases it even when the process is killed), or until `release`. The file says who
holds it, for the message the second one prints.
"""

from __future__ import annotations

import fcntl
import os
import time

from kubesalt.errors import KubesaltError

LOCK_FILE = "/run/kubesalt/orchestrate.lock"

# Held locks of this process, {path: fd}: module state outside Salt's loader, so a
# reloaded loader module still finds the lock its process holds.
_HELD: dict[str, int] = {}


class LockBusy(KubesaltError):
    """Another orchestration holds the lock; the message says which and what to do."""


# What a deploy_node refused by the lock can do instead of waiting.
TOGETHER_HINT = 'To add several nodes at once, give them to one deploy_node: pillar=\'{"nodes": ["cp2", "cp3"]}\''


def acquire(what: str, path: str | None = None, hint: str = "") -> bool:
    """Hold the lock for `what` (e.g. "deploy_node cp2"); False when this process already
    held it. LockBusy when another process holds it; its message ends with `hint`."""
    path = path or LOCK_FILE
    if path in _HELD:
        _describe(_HELD[path], what)
        return False
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise LockBusy(
            f"another kubesalt orchestration is running: {holder} (lock {path}); wait for it "
            f"to end{'. ' + hint if hint else ''}"
        ) from None
    _HELD[path] = fd
    _describe(fd, what)
    return True


def probe(what: str, path: str | None = None) -> None:
    """LockBusy when another process holds the lock; the lock is not kept."""
    if acquire(what, path):
        release(path)


def _describe(fd: int, what: str) -> None:
    text = f"{what} (PID {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S %Z')})\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def release(path: str | None = None) -> bool:
    """Release the lock if this process holds it; False when it did not."""
    fd = _HELD.pop(path or LOCK_FILE, None)
    if fd is None:
        return False
    os.ftruncate(fd, 0)
    os.close(fd)  # closing the only descriptor releases the flock
    return True
