"""Side effects of bootstrap.sh: commands, files and facts of this machine, all logged.

Everything goes to the log file; `-v` also prints the commands. Command output is logged,
file contents are not (they may hold keys), and callers never pass secrets as arguments.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubesalt import network
from kubesalt.bootstrap.phases import BootstrapError


class Log:
    """The log file (mode 0600, appended) and the console."""

    def __init__(self, path: str, verbose: bool):
        self.path = path
        self.verbose = verbose
        os.makedirs(os.path.dirname(path) or ".", mode=0o750, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.stream = os.fdopen(fd, "a", encoding="utf-8", buffering=1)

    def _stamp(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S")

    def file(self, text: str) -> None:
        for line in text.rstrip("\n").splitlines() or [""]:
            self.stream.write(f"{self._stamp()} {line}\n")

    def say(self, text: str) -> None:
        """A line for the operator (and the log)."""
        print(text, flush=True)
        self.file(text)

    def detail(self, text: str) -> None:
        """A line for the log, and the console with -v."""
        if self.verbose:
            print(f"      {text}", flush=True)
        self.file(text)

    def close(self) -> None:
        self.stream.close()


def open_log(prog: str, path: str, verbose: bool) -> Log | None:
    """The log of command `prog` at `path`; None, once said on stderr, when it cannot be
    written (the caller exits with its usage status)."""
    try:
        return Log(path, verbose)
    except OSError as err:
        print(f"{prog}: --log-file {path}: cannot be written ({err.strerror})", file=sys.stderr)
        return None


class System:
    """Runs commands and writes files on this machine, logging each action."""

    def __init__(self, log: Log):
        self.log = log

    def run(self, cmd: list[str], what: str, check: bool = True, env: dict | None = None,
            timeout: float = 1800, quiet_output: bool = False) -> subprocess.CompletedProcess:  # fmt: skip
        self.log.detail(f"$ {shlex.join(cmd)}")
        full_env = dict(os.environ, LC_ALL="C.UTF-8", DEBIAN_FRONTEND="noninteractive")
        full_env.update(env or {})
        try:
            result = subprocess.run(
                cmd, capture_output=True, text=True, env=full_env, timeout=timeout, check=False
            )
        except FileNotFoundError as err:
            raise BootstrapError(f"{what}: {cmd[0]} is not installed ({err})") from err
        except subprocess.TimeoutExpired as err:
            raise BootstrapError(
                f"{what}: {shlex.join(cmd)} did not finish in {timeout:.0f}s"
            ) from err
        if not quiet_output:
            for stream in (result.stdout, result.stderr):
                if stream.strip():
                    self.log.file(stream)
        if check and result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
            raise BootstrapError(
                f"{what} failed (exit {result.returncode}): {shlex.join(cmd)}\n{tail}\n"
                f"(full output in {self.log.path})"
            )
        return result

    def write(self, path: str, content: str | bytes, mode: int = 0o644) -> bool:
        """Write a file atomically when its content differs; return whether it changed."""
        data = content.encode() if isinstance(content, str) else content
        target = Path(path)
        try:
            if target.read_bytes() == data and (target.stat().st_mode & 0o7777) == mode:
                return False
        except FileNotFoundError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.log.detail(f"wrote {path}")
        return True


def host_addresses() -> list[network.HostAddress]:
    """This host's addresses on interfaces that are up (`ip -j addr`)."""
    result = subprocess.run(
        ["ip", "-j", "addr", "show", "up"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BootstrapError(
            f"cannot list this host's addresses: ip -j addr: {result.stderr.strip()}"
        )
    found = []
    for link in json.loads(result.stdout or "[]"):
        for info in link.get("addr_info", []):
            if info.get("family") in ("inet", "inet6") and info.get("scope") != "link":
                found.append(
                    network.HostAddress(link["ifname"], info["local"], int(info["prefixlen"]))
                )
    return found


def free_bytes(paths) -> dict[str, int]:
    """Free bytes on the filesystem of each path (its nearest existing parent)."""
    out = {}
    for path in paths:
        probe = path
        while not os.path.exists(probe):
            probe = os.path.dirname(probe) or "/"
        stat = os.statvfs(probe)
        out[path] = stat.f_bavail * stat.f_frsize
    return out


def unit_of_pid(pid: int) -> str | None:
    from kubesalt.bootstrap.preflight import unit_of_cgroup

    try:
        return unit_of_cgroup(Path(f"/proc/{pid}/cgroup").read_text())
    except OSError:
        return None


def mount_of(where: str) -> tuple[str, str] | None:
    """(source, filesystem type) of the mount at `where`, or None when nothing is mounted."""
    target = os.path.realpath(where)
    with open("/proc/self/mounts", encoding="utf-8") as stream:
        for line in stream:
            fields = line.split()
            if len(fields) > 2 and fields[1].replace("\\040", " ") == target:
                return fields[0], fields[2]
    return None


def python() -> str:
    return sys.executable
