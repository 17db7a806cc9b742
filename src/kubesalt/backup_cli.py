"""`kubesalt-backup`: back up the bootstrap node, verify an archive, restore etcd after a
quorum loss (docs/backup.md). `scripts/kubesalt-backup` calls `main`.

Exit status: 0 done; 1 the backup, the check or the restore failed or was refused;
2 bad usage; 3 the archive was written and checked but a copy to a control-plane node
failed (the line names the node and why).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile

from kubesalt import backup, backup_job, lock
from kubesalt import backup_etcd as betcd
from kubesalt.errors import KubesaltError
from kubesalt.kubeadm.model import Layout

PROG = "kubesalt-backup"
COPY_FAILED = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}; see {PROG} --help\n")


def _keep(value: str) -> int:
    try:
        return backup.check_keep(value, what="value")
    except backup.BackupError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def backup_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Back up the bootstrap node (bootstrap.yaml, inventory, CAs, Salt keys, "
        "an etcd snapshot) into one archive, or check one. "
        f"Also: {PROG} restore-etcd FILE (see {PROG} restore-etcd --help).",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=backup.BACKUP_DIR,
        help=f"where to write the archive (default {backup.BACKUP_DIR})",
    )
    parser.add_argument(
        "--keep",
        metavar="N",
        type=_keep,
        default=backup.DEFAULT_KEEP,
        help=f"archives kept in DIR and on each copy (default {backup.DEFAULT_KEEP})",
    )
    parser.add_argument(
        "--no-copy", action="store_true", help="do not copy the archive to the control-plane nodes"
    )
    parser.add_argument("--verify", metavar="FILE", help="check the archive FILE; write nothing")
    return parser  # fmt: skip


def restore_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} restore-etcd",
        description="Restore this node's etcd from a backup's snapshot, as the one member of "
        "a new cluster, when the cluster lost quorum. Refused while any member answers healthy.",
    )
    parser.add_argument("file", metavar="FILE", help="a kubesalt-backup archive")
    parser.add_argument("--dry-run", action="store_true", help="print the steps, change nothing")
    return parser


def _say(text: str) -> None:
    print(f"{PROG}: {text}")


def _fail(text: str) -> int:
    print(f"{PROG}: error: {text}", file=sys.stderr)
    return 1


def _verify(path: str) -> int:
    status = betcd.snapshot_status_with(betcd.run_program, betcd.snapshot_tool())
    verified = backup.verify(path, status)
    data = verified.manifest
    _say(
        f"{path}: valid: kubesalt {data['product']['version']} backup of {data['host']} "
        f"made {data['created']}, {verified.files} files; etcd snapshot of "
        f"{data['etcd']['member']}: {verified.snapshot_check}"
    )
    return 0


def _backup(args) -> int:
    result = backup_job.run_backup(out=args.out, keep=args.keep, copy=not args.no_copy,
                                   tool=betcd.snapshot_tool())  # fmt: skip
    line = backup_job.summary(result)
    if any(why is not None for why in result["copies"].values()):
        print(f"{PROG}: {line}", file=sys.stderr)
        return COPY_FAILED
    _say(line)
    return 0


def _restore_etcd(args) -> int:
    tool = betcd.snapshot_tool()
    status = betcd.snapshot_status_with(betcd.run_program, tool)
    verified = backup.verify(args.file, status)
    with tempfile.TemporaryDirectory(prefix="kubesalt-restore-etcd-") as scratch:
        snapshot = betcd.extract_snapshot(args.file, scratch)
        steps = betcd.restore_etcd(verified, snapshot, Layout(), betcd.run_program, tool,
                                   datetime.datetime.now(tz=datetime.UTC), args.dry_run,
                                   log=print)  # fmt: skip
    verb = "would be done next" if args.dry_run else "done; next"
    _say(f"restore-etcd {verb}:")
    for index, line in enumerate(steps, start=1):
        print(f"  {index}. {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["restore-etcd"]:
        args = restore_parser().parse_args(argv[1:])
        action = _restore_etcd
    else:
        args = backup_parser().parse_args(argv)
        action = (lambda a: _verify(a.verify)) if args.verify else _backup
    try:
        return action(args)
    except backup.VerifyError as err:
        return _fail(f"{err}\nThis archive cannot be trusted: use another one (each control-plane "
                     f"node keeps copies in {backup.BACKUP_DIR})")  # fmt: skip
    except lock.LockBusy as err:
        return _fail(f"{err}; then run {PROG} again")
    except KubesaltError as err:
        return _fail(str(err))
    except OSError as err:
        return _fail(f"{err.filename or ''}: {err.strerror}; run {PROG} as root on the "
                     "bootstrap node (or, for restore-etcd, on an etcd node)")  # fmt: skip
