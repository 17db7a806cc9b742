"""salt-ssh from the bootstrap node: the command line, the host-key refusal, the reply.

The kubesalt roster checks the SSH host key recorded at preflight (no
--ignore-host-keys); salt-ssh prints its JSON reply on one line, maybe after other text.
`run(argv, timeout)` is subprocess.run's shape (tests give a fake one).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from kubesalt import hostkeys
from kubesalt.bootstrap import services
from kubesalt.bootstrap.services import MINION_CONFIG, VENV
from kubesalt.orchestrate.model import StepFailed

SALT_SSH = f"{VENV}/bin/salt-ssh"
# salt-ssh parses a flat roster file whenever the target resolves as a host name
# (salt.client.ssh.SSH._expand_target), even with another roster: give it an empty one.
EMPTY_ROSTER = "/etc/kubesalt/salt-ssh/roster"
EMPTY_ROSTER_TEXT = "# Empty on purpose: salt-ssh reaches nodes through the kubesalt roster.\n"
MINION_FILES = (MINION_CONFIG, "/etc/systemd/system/salt-minion.service",
                "/etc/salt/pki/minion/minion.pem", services.MINION_PUB)  # fmt: skip


def command(node: str, args, roster_file: str = EMPTY_ROSTER, program: str = SALT_SSH):
    return [program, "--roster", "kubesalt", "--roster-file", roster_file,
            "--out", "json", "--out-indent", "-1", node, *args]  # fmt: skip


def reply_of(stdout: str, node: str):
    """`node`'s answer in salt-ssh's JSON output: the last line holding a JSON object with
    that key, or None. salt-ssh may print other text first, even on that line
    (ssh-keygen's "Overwrite (y/n)? " prompt has no newline)."""
    for line in reversed((stdout or "").splitlines()):
        start = line.find("{")
        if start < 0:
            continue
        try:
            data = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(data, dict) and node in data:
            return data[node]
    return None


def read_key_script(path: str = services.MINION_PUB) -> str:
    """Wait (30 s) for the minion to write its public key, print it base64-encoded."""
    return f"for i in $(seq 60); do test -s {path} && break; sleep 0.5; done; base64 -w0 {path}"


def stop_script(check_only: bool, files=MINION_FILES) -> str:
    """Stop and disable salt-minion and remove its files; prints changed=0|1. With
    `check_only`, nothing is done: changed=1 says something would be."""
    act = lambda command: "" if check_only else f"{command}; "  # noqa: E731
    return (
        "changed=0; if systemctl is-enabled -q salt-minion 2>/dev/null || "
        f"systemctl is-active -q salt-minion; then {act('systemctl disable --now -q salt-minion')}"
        "changed=1; fi; for f in " + " ".join(files) + f"; do if [ -e $f ]; then {act('rm -f $f')}"
        "changed=1; fi; done; " + ("" if check_only else "systemctl daemon-reload; ")
        + "echo changed=$changed"
    )  # fmt: skip


class SaltSsh:
    """One salt-ssh process per call, bounded by its timeout."""

    def __init__(self, run: Callable, roster_file: str = EMPTY_ROSTER, program: str = SALT_SSH):
        self.run = run
        self.roster_file = roster_file
        self.program = program

    def call(self, node: str, entry, args, timeout: int, what: str):
        """(node's reply, exit code); StepFailed on a timeout, a refused host key, or no
        reply. `entry` is the node's inventory entry (host, port, host keys)."""
        argv = command(node, args, self.roster_file, self.program)
        try:
            result = self.run(argv, timeout)
        except subprocess.TimeoutExpired as err:
            raise StepFailed(
                f"{what}: salt-ssh to {node} did not finish within {timeout}s; check that sshd "
                f"on {node} has an sftp subsystem and accepts the declared key "
                "(ssh -i KEY root@HOST)",
                [node],
            ) from err
        if hostkeys.refused(result.stdout + result.stderr):
            prints = ", ".join(hostkeys.fingerprint(k) for k in entry.host_keys) or "none"
            raise StepFailed(
                f"{what}: the SSH host key of {node} ({entry.host}:{entry.port}) is not the one "
                f"recorded ({prints}); if the node was reinstalled, declare it again with "
                "replace=True host_key='...' (cat /etc/ssh/ssh_host_ed25519_key.pub on it); "
                "otherwise another machine answers on its address",
                [node],
            )
        reply = reply_of(result.stdout, node)
        if reply is None:
            out = result.stdout.strip()
            shown = out if len(out) <= 1500 else f"{out[:700]} [...] {out[-700:]}"
            raise StepFailed(
                f"{what}: salt-ssh to {node} gave no answer for {node} (exit "
                f"{result.returncode}); stdout: {shown or '(empty)'}; stderr: "
                f"{result.stderr.strip()[-700:] or '(empty)'}",
                [node],
            )
        return reply, result.returncode

    def shell(self, node: str, entry, script: str, timeout: int, what: str) -> str:
        """Run `script` with salt-ssh -r; its stdout, or StepFailed with its stderr."""
        reply, code = self.call(node, entry, ["-r", script], timeout, what)
        out = reply.get("stdout", "") if isinstance(reply, dict) else ""
        if code or (isinstance(reply, dict) and reply.get("retcode")):
            err = reply.get("stderr", "") if isinstance(reply, dict) else reply
            raise StepFailed(f"{what} on {node} failed: {str(err).strip()[-300:]}", [node])
        return out
