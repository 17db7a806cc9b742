"""One backup run on the bootstrap node: the files and an etcd snapshot into one archive,
checked once written, the old archives pruned, the new one copied to every control-plane
node (docs/backup.md). `kubesalt-backup` and the daily schedule item
(`kubesalt_backup.run`) both run `run_backup`.

The copy goes over SSH, with the inventory's credentials and host keys (the known_hosts
file salt-ssh uses, StrictHostKeyChecking=yes): point to point, to the control-plane nodes
only. Salt's own channels were not used: a file sent through the master's publish channel
(salt-cp, file.write) is encrypted with the key every accepted minion shares, so any minion
could read the archive's private keys, and `cp.push` needs file_recv on the master.
"""

from __future__ import annotations

import datetime
import os
import shlex
import shutil
import tempfile
import time

import yaml

from kubesalt import backup, digests, inventory, lock, roles
from kubesalt import backup_etcd as betcd
from kubesalt import config as kconfig
from kubesalt.bootstrap import archive as karchive
from kubesalt.bootstrap import services
from kubesalt.bootstrap.phases import BootstrapError
from kubesalt.kubeadm.model import Layout

COPY_TIMEOUT = 600  # seconds per node
SSH_CONNECT_TIMEOUT = 10


def probe_lock() -> None:
    """LockBusy when an orchestration runs (deploy_node, remove_node...): the inventory
    and the keys may be changing. The lock is not kept: the daily renewal must not skip
    because a backup runs."""
    lock.probe("kubesalt-backup (probing the lock)")


def copy_targets(nodes: dict[str, inventory.Node], this: str) -> list[inventory.Node]:
    """The control-plane nodes other than this one, by name."""
    return [node for name, node in sorted(nodes.items())
            if roles.CONTROL_PLANE in node.roles and name != this]  # fmt: skip


def remote_script(name: str, keep: int, directory: str = backup.BACKUP_DIR) -> str:
    """The shell script a control-plane node runs, the archive on its stdin: a 0700
    directory, the archive written 0600 under a temporary name then renamed, the archives
    beyond `keep` deleted, the sha256 of what was written printed."""
    if not backup.NAME_PATTERN.match(name):
        raise backup.BackupError(f"archive name {name!r} is not a kubesalt-backup name")
    folder, final = shlex.quote(directory), shlex.quote(f"{directory}/{name}")
    temporary = shlex.quote(f"{directory}/.{name}.tmp")
    pattern = shlex.quote(backup.NAME_PATTERN.pattern)
    return (
        f"set -eu; umask 077; mkdir -p {folder}; chmod 0700 {folder}; "
        f"cat > {temporary}; chmod 0600 {temporary}; sync; mv -f {temporary} {final}; "
        f"ls {folder} | grep -E {pattern} | sort | head -n -{int(keep)} | "
        f'while read -r old; do rm -f {folder}/"$old"; done; sha256sum {final}'
    )


def ssh_command(node: inventory.Node, known_hosts: str, script: str) -> list[str]:
    """ssh to `node` as the inventory says, its recorded host key required."""
    return ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT}", "-i", node.key,
            "-p", str(node.port), f"{node.user}@{node.host}", script]  # fmt: skip


def copy_result(result, sha256: str) -> str | None:
    """None when the node wrote the archive with the right sha256, else why not."""
    if result.returncode:
        lines = (result.stderr or result.stdout or "").strip().splitlines()
        return f"exit {result.returncode}: {lines[-1] if lines else 'no output'}"
    words = (result.stdout or "").strip().splitlines()[-1:]
    written = words[0].split()[0] if words and words[0].split() else ""
    if written != sha256:
        return f"the copy's sha256 is {written or 'not printed'}, not {sha256}"
    return None


def copy_to_nodes(path: str, sha256: str, nodes: dict[str, inventory.Node], this: str,
                  keep: int, known_hosts: str, run: betcd.Run) -> dict[str, str | None]:  # fmt: skip
    """Copy the archive to each control-plane node but this one: `{node: None or why the
    copy failed}`. A failed copy does not stop the others."""
    script = remote_script(os.path.basename(path), keep)
    return {
        node.name: copy_result(
            run(ssh_command(node, known_hosts, script), timeout=COPY_TIMEOUT, stdin=path), sha256
        )
        for node in copy_targets(nodes, this)
    }


def _archive_versions(root: str) -> list[str]:
    try:
        return [a.version for a in karchive.load_register(backup.under(root, karchive.REGISTER))]
    except BootstrapError as err:
        raise backup.BackupError(str(err)) from None


def run_backup(out: str = backup.BACKUP_DIR, keep: int = backup.DEFAULT_KEEP, copy: bool = True,
               root: str = "/", run: betcd.Run | None = None, tool: str | None = None,
               now: datetime.datetime | None = None) -> dict:  # fmt: skip
    """Write one backup archive into `out`, verify it, keep the `keep` newest, copy it to
    the control-plane nodes (unless not `copy`). Returns `path`, `size`, `seconds`,
    `etcd` (the snapshot's entry), `pruned`, `copies` ({node: None or the failure}).
    BackupError (or LockBusy) when no archive was written."""
    keep = backup.check_keep(keep)
    run = run or betcd.run_program
    started = time.monotonic()
    now = now or datetime.datetime.now(tz=datetime.UTC)
    probe_lock()
    config_path = backup.under(root, services.CONFIG_PATH)
    inventory_dir = backup.under(root, services.INVENTORY_DIR)
    try:
        cfg = kconfig.load_file(config_path)
    except kconfig.InvalidConfig as err:
        raise backup.BackupError(f"{err}\nfix it first (kubesalt-check-config)") from None
    nodes = inventory.load(inventory_dir)
    this = cfg["ca"]["minion"]
    files, directories = backup.collect(backup.sources(nodes, this=this), root)
    layout = Layout(root)
    backup.ensure_directory(out)
    scratch = tempfile.mkdtemp(dir=out, prefix=".kubesalt-backup-")
    try:
        snapshot = betcd.take_snapshot(betcd.candidate_endpoints(nodes, this),
                                       os.path.join(scratch, "snapshot.db"),
                                       betcd.tls_flags(layout), run, tool)  # fmt: skip
        digest, size = digests.file_sha256(snapshot.path)
        data = backup.manifest(files, directories, snapshot.to_dict(digest, size), now, this,
                               _archive_versions(root))  # fmt: skip
        path = backup.write_archive(out, backup.archive_name(now), data, files, snapshot.path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    verified = backup.verify(path, betcd.snapshot_status_with(run, tool))
    pruned = backup.prune(out, keep)
    known_hosts = inventory.known_hosts_path(inventory_dir)
    copies = copy_to_nodes(path, digests.file_sha256(path)[0], nodes, this, keep, known_hosts,
                           run) if copy else {}  # fmt: skip
    return {
        "path": path,
        "size": os.path.getsize(path),
        "seconds": round(time.monotonic() - started, 1),
        "files": verified.files,
        "etcd": {k: v for k, v in data["etcd"].items() if k != "members"},
        "snapshot_check": verified.snapshot_check,
        "pruned": pruned,
        "copies": copies,
    }


def summary(result: dict) -> str:
    """One line about a run: where, how big, how long, from which member, the copies."""
    etcd = result["etcd"]
    revision = etcd["revision"] if etcd["revision"] is not None else "unknown"
    copied = [node for node, failure in result["copies"].items() if failure is None]
    failed = {node: why for node, why in result["copies"].items() if why is not None}
    text = (
        f"backup written: {result['path']} ({result['size']} bytes, {result['files']} files "
        f"and the etcd snapshot of {etcd['member']} at revision {revision}) in "
        f"{result['seconds']}s; copied to {', '.join(copied) or 'no node'}"
    )
    if failed:
        text += "; copy FAILED to " + "; ".join(f"{n}: {why}" for n, why in failed.items())
    if result["pruned"]:
        text += f"; {len(result['pruned'])} older archive(s) deleted"
    return text


SCHEDULE_NAME = "kubesalt-backup"
SCHEDULE_FILE = "/etc/salt/minion.d/kubesalt-backup-schedule.conf"


# When the daily backup starts (the minion's local time), then within SPLAY seconds: a
# fixed time of day, as cron would, not 24 h after each start of the minion (an interval
# item also runs at every start, and would take the orchestration lock in the middle of
# maintenance that restarts the minion: an upgrade, kubesalt-iso add). Before the daily
# renewal (kubesalt.certreport.RENEW_CRON), so that the two do not wait on each other.
BACKUP_CRON = "15 2 * * *"
SPLAY = 900


def schedule_config(cron: str = BACKUP_CRON, splay: int = SPLAY) -> str:
    """The salt-minion configuration of the daily backup on the bootstrap node
    (`kubesalt_backup.run`, one run at a time, started within `splay` seconds after the
    `cron` time). Salt merges the `schedule` of every file of minion.d, so this item sits
    beside the daily renewal's."""
    item = {"function": "kubesalt_backup.run", "cron": cron, "splay": splay, "maxrunning": 1}
    header = (
        "# Managed by kubesalt (state kubesalt.backup.scheduled): the daily backup.\n"
        f"# Run it now: salt <this node> schedule.run_job {SCHEDULE_NAME}\n"
    )
    return header + yaml.safe_dump({"schedule": {SCHEDULE_NAME: item}}, sort_keys=False)
