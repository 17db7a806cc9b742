"""The facts an upgrade plan needs, gathered on the bootstrap node.

From files: the archive register, the configuration (the CA minion), the inventory, the
orchestration lock, the backups. From Salt, one LocalClient job per question
(kubesalt.orchestrate.rpc), every one bounded: which minions answer, their Salt version,
the saltenv their minion runs, their kubelet package, and etcd's members and health as
the CA minion's `kubesalt_etcd` reads them. A fact that cannot be read becomes a verdict
problem naming it, so the plan still prints what is known.
"""

from __future__ import annotations

import datetime
import os
import time
from dataclasses import dataclass

from kubesalt import backup, backup_job, inventory, lock
from kubesalt import config as kconfig
from kubesalt.bootstrap import archive as karchive
from kubesalt.bootstrap import services
from kubesalt.errors import KubesaltError
from kubesalt.etcd import healthy_members
from kubesalt.orchestrate.etcdjoin import members_from
from kubesalt.upgrade import archives
from kubesalt.upgrade.plan import BackupState, EtcdState, Facts, NodeReport, Problem

PING_TIMEOUT = 10
# How long the minions that do not answer are asked again: a salt-master restarted just
# before (kubesalt-iso add, an upgrade's salt phase) waits for its minions to reconnect,
# which takes them up to half a minute; a node that is down is named after this.
NODE_WAIT = 60
NODE_RETRY = 3
CALL_TIMEOUT = 30
ETCD_TIMEOUT = 60
KUBELET_PACKAGE = "kubelet"
# Written when the Salt daemons must restart, removed once they did (kubesalt.upgrade.move).
RESTART_PENDING = "/var/lib/kubesalt/salt-restart-pending"


@dataclass(frozen=True)
class Sources:
    """Where the bootstrap node keeps what the plan reads and what upgrade.sh writes
    (tests point them elsewhere)."""

    register: str = karchive.REGISTER
    config: str = services.CONFIG_PATH
    inventory_dir: str = services.INVENTORY_DIR
    lock: str = lock.LOCK_FILE
    backup_dir: str = backup.BACKUP_DIR
    backup_schedule: str = backup_job.SCHEDULE_FILE
    master_config: str = services.MASTER_CONFIG
    restart_pending: str = RESTART_PENDING


def current_archive(registered: list[karchive.Archive], register: str) -> karchive.Archive | None:
    """The archive the cluster runs: the one the register records as current
    (kubesalt.bootstrap.archive.load_current)."""
    version = karchive.load_current(register)
    return next((found for found in registered if found.version == version), None)


def _versions(found: karchive.Archive, problems: list[Problem]):
    try:
        return archives.read_versions(found)
    except KubesaltError as err:
        problems.append(Problem("archive", str(err)))
        return None


def _shipped(root: str) -> karchive.Archive:
    """The archive the script runs from (it need not be registered yet)."""
    return karchive.describe(root, root, karchive.kind_of(root))


def gather_archives(direction: str, shipped_root: str, sources: Sources, facts: Facts) -> None:
    """The current and the target archive, and their versions, into `facts`."""
    problems = facts.problems
    try:
        registered = karchive.load_register(sources.register)
        shipped = _shipped(shipped_root)
    except KubesaltError as err:
        problems.append(Problem("archive", str(err)))
        return
    facts.current = current_archive(registered, sources.register)
    if facts.current is None:
        problems.append(Problem("archive", f"{sources.register} lists no archive: run "
                                "bootstrap.sh first"))  # fmt: skip
        return
    facts.target = archives.target_archive(direction, registered, shipped.version)
    if facts.target is None and direction == archives.UPGRADE:
        problems.append(Problem("archive", f"kubesalt {shipped.version} (this archive, "
                                f"{shipped_root}) is not registered: register it with "
                                f"kubesalt-iso add {shipped.source}, then run the plan again"))  # fmt: skip
        facts.target = shipped  # described all the same, from where it is
    elif facts.target is None:
        listed = ", ".join(a.version for a in registered)
        problems.append(Problem("archive", f"no registered archive is older than kubesalt "
                                f"{shipped.version} (this archive; registered: {listed}): "
                                "there is nothing to go back to"))  # fmt: skip
    elif direction == archives.DOWNGRADE and facts.current.version not in (
        shipped.version,
        facts.target.version,
    ):
        problems.append(Problem("archive", f"this downgrade.sh comes with kubesalt "
                                f"{shipped.version}, but the cluster runs "
                                f"{facts.current.version}: run downgrade.sh of the "
                                f"{facts.current.version} archive"))  # fmt: skip
    facts.current_versions = _versions(facts.current, problems)
    if facts.target is not None:
        facts.target_versions = _versions(facts.target, problems)


def _answering(
    rpc, names: list[str], wait: float | None = None, clock=time.monotonic, sleep=time.sleep
) -> set[str]:
    """The minions of `names` that answer test.ping, those silent asked again every
    NODE_RETRY seconds for at most `wait` (NODE_WAIT) seconds."""
    deadline = clock() + (NODE_WAIT if wait is None else wait)
    answering = set(rpc.ping(names, PING_TIMEOUT))
    while len(answering) < len(names) and clock() < deadline:
        sleep(NODE_RETRY)
        answering |= set(rpc.ping([n for n in names if n not in answering], PING_TIMEOUT))
    return answering


def node_reports(rpc, nodes: dict[str, inventory.Node]) -> tuple[NodeReport, ...]:
    """Each declared node as its minion answers, by name."""
    names = sorted(nodes)
    answering = _answering(rpc, names)
    asked = sorted(answering)

    def ask(fun, arg) -> dict:
        return rpc.answers(asked, fun, [arg], None, CALL_TIMEOUT) if asked else {}

    grains = {n: g.get("saltversion") for n, g in ask("grains.item", "saltversion").items()
              if isinstance(g, dict)}  # fmt: skip
    envs = ask("config.get", "saltenv")
    kubelets = ask("pkg.version", KUBELET_PACKAGE)

    def text(answers, name):
        value = answers.get(name)
        return value if isinstance(value, str) else ""

    return tuple(
        NodeReport(
            name,
            tuple(nodes[name].roles),
            name in answering,
            salt=text(grains, name),
            saltenv=text(envs, name),
            kubelet=text(kubelets, name),
            release=nodes[name].kubernetes_version or "",
        )
        for name in names
    )


def etcd_state(rpc, ca_minion: str) -> EtcdState:
    """etcd's members and the healthy ones, asked on the CA minion."""
    listing = rpc.answers([ca_minion], "kubesalt_etcd.members", [], None, ETCD_TIMEOUT)
    if ca_minion not in listing:
        return EtcdState(error=f"kubesalt_etcd.members on {ca_minion} did not answer or failed "
                         f"(salt {ca_minion} kubesalt_etcd.members says why)")  # fmt: skip
    try:
        members = members_from(listing[ca_minion])
    except KubesaltError as err:
        return EtcdState(error=str(err))
    health = rpc.answers([ca_minion], "kubesalt_etcd.health", [], {"cluster": True},
                         ETCD_TIMEOUT).get(ca_minion)  # fmt: skip
    if not isinstance(health, dict):
        return EtcdState(members, error=f"kubesalt_etcd.health cluster=True on {ca_minion} "
                         "did not answer or failed")  # fmt: skip
    return EtcdState(members, frozenset(healthy_members(members, health)))


def lock_busy(path: str) -> str:
    """Empty when no orchestration holds the lock, else who does (LockBusy's message)."""
    try:
        lock.probe("upgrade plan (probing the lock)", path)
    except lock.LockBusy as err:
        return str(err)
    return ""


def backup_state(sources: Sources) -> BackupState:
    """Backup counts as enabled when its daily schedule item is installed."""
    names = backup.archives_in(sources.backup_dir)
    return BackupState(
        enabled=os.path.exists(sources.backup_schedule),
        newest=backup.archive_time(names[-1]) if names else None,
        directory=sources.backup_dir,
    )


def gather(direction: str, shipped_root: str, rpc, sources: Sources | None = None,
           now: datetime.datetime | None = None) -> Facts:  # fmt: skip
    """Every fact of the plan; `rpc` is a kubesalt.orchestrate.rpc.Rpc."""
    sources = sources or Sources()
    cfg = kconfig.load_file(sources.config)
    nodes = inventory.load(sources.inventory_dir)
    facts = Facts(
        direction=direction,
        ca_minion=cfg["ca"]["minion"],
        current=None,
        target=None,
        current_versions=None,
        target_versions=None,
        nodes=node_reports(rpc, nodes),
        etcd=etcd_state(rpc, cfg["ca"]["minion"]),
        lock_busy=lock_busy(sources.lock),
        backup=backup_state(sources),
        now=now or datetime.datetime.now(tz=datetime.UTC),
        config_version=(cfg.get("kubernetes") or {}).get("version") or "",
        pki_algorithm=(cfg.get("pki") or {}).get("algorithm") or "",
    )
    gather_archives(direction, shipped_root, sources, facts)
    return facts
