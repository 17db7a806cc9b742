"""Backups of the bootstrap node: the daily schedule item ``kubesalt-backup`` runs
``kubesalt_backup.run`` (docs/backup.md).

Thin wrappers over ``kubesalt.backup_job`` (the run: snapshot, archive, retention, copies),
``kubesalt.backup`` (verify) and ``kubesalt.backup_etcd`` (etcdctl), the code
``kubesalt-backup`` runs. Paths are under the grain ``kubesalt_root`` (default ``/``).
"""

import logging

try:
    from kubesalt import backup as _backup
    from kubesalt import backup_etcd as _etcd
    from kubesalt import backup_job as _job
    from kubesalt import errors as _errors
    from kubesalt import lock as _lock
    from kubesalt import saltglue as _glue
    from kubesalt.orchestrate import progress as _progress

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

log = logging.getLogger(__name__)

__virtualname__ = "kubesalt_backup"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def _root():
    return __grains__.get("kubesalt_root") or "/"  # noqa: F821


def _log(line):
    """One line to stderr (the minion's journal) and to the orchestrations' log file."""
    _progress.Progress("kubesalt-backup", log_file=_progress.LOG_FILE).line(line)


def run(out=None, keep=None, copy=True):
    """
    Write one backup archive of this bootstrap node (bootstrap.yaml, the archives
    register, the inventory and its known_hosts, the nodes' SSH keys, the minion keys read
    back at deploy, the cluster CAs and the service-account key, the salt-master's keys and
    the accepted minion keys, this node's minion key, an etcd snapshot from a healthy
    member) into ``out`` (default /var/lib/kubesalt/backups, 0700; the archive 0600),
    verify it, keep the ``keep`` newest (default 7) and copy it to every control-plane node
    over SSH. Skipped (``outcome: skipped``, saying who holds it) while an orchestration
    holds the lock. Logs one line to
    /var/log/kubesalt/orchestrate.log. Returns ``path``, ``size``, ``seconds``, ``files``,
    ``etcd``, ``snapshot_check``, ``pruned`` and ``copies`` (``{node: None or why the copy
    failed}``); a failed copy is an error too, after the others were tried.

    CLI Example:

    .. code-block:: bash

        salt <bootstrap node> schedule.run_job kubesalt-backup
        salt-call kubesalt_backup.run keep=14
    """
    result = _glue.call(_backup_or_skip, out, keep, copy)
    if result["outcome"] == "skipped":
        return result
    _log(_job.summary(result))
    failed = {node: why for node, why in result["copies"].items() if why is not None}
    if failed:
        _glue.call(_raise_copy_failed, result, failed)
    return result


def _backup_or_skip(out, keep, copy):
    try:
        result = _job.run_backup(
            out=out or _backup.BACKUP_DIR,
            keep=_backup.DEFAULT_KEEP if keep is None else keep,
            copy=bool(copy),
            root=_root(),
            tool=_etcd.snapshot_tool(),
        )
    except _lock.LockBusy as err:
        # Like the daily renewal: never beside a deploy_node or remove_node; tomorrow again.
        _log(f"backup skipped: {err}")
        return {"outcome": "skipped", "message": str(err)}
    except _errors.KubesaltError as err:
        _log(f"backup FAILED: {err}")
        raise
    return dict(result, outcome="written")


def _raise_copy_failed(result, failed):
    raise _backup.BackupError(
        f"{result['path']} was written and verified, but copying it failed for "
        + "; ".join(f"{node}: {why}" for node, why in sorted(failed.items()))
        + ". Check SSH from this node to them (the inventory's ssh settings and host keys)"
    )


def verify(path):
    """
    Check the backup archive ``path``: every file present with the sha256 and mode its
    manifest records and nothing else, the manifest consistent, the etcd snapshot's sha256
    and etcd's own reading of it (``etcdutl`` or ``etcdctl snapshot status``, when one is
    on the PATH). Returns ``path``, ``version``, ``created``, ``host``, ``files`` and
    ``snapshot_check``; the error lists every problem.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_backup.verify /var/lib/kubesalt/backups/kubesalt-backup-20261204T020000Z.tar.gz
    """
    status = _etcd.snapshot_status_with(_etcd.run_program, _etcd.snapshot_tool())
    verified = _glue.call(_backup.verify, path, status)
    data = verified.manifest
    return {
        "path": path,
        "version": data["product"]["version"],
        "created": data["created"],
        "host": data["host"],
        "files": verified.files,
        "snapshot_check": verified.snapshot_check,
    }


def schedule_config():
    """
    Return the salt-minion configuration of the daily backup (the schedule item
    ``kubesalt-backup`` running ``kubesalt_backup.run`` every 24 hours, one run at a time),
    as ``kubesalt.backup.scheduled`` writes it.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_backup.schedule_config
    """
    return _job.schedule_config()


def schedule_file():
    """
    Return the path of the daily backup's salt-minion configuration file.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_backup.schedule_file
    """
    return _job.SCHEDULE_FILE
