"""The upgrade (or downgrade) plan: versions from -> to, the ordered stages, the verdict.

Pure: `compute` takes the facts gathered on the bootstrap node (kubesalt.upgrade.facts)
and returns a Plan; `text` prints it like `kubeadm upgrade plan`. Each stage lists its
nodes in the order the upgrade orchestration takes them (`Plan.order`), and what changes
on each. The verdict is a list of problems, each naming its check and what to do; any
problem refuses the upgrade (docs/upgrade.md#the-verdict).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from kubesalt import keyalgorithms
from kubesalt import roles as _roles
from kubesalt.bootstrap.archive import Archive, saltenv
from kubesalt.columns import aligned
from kubesalt.etcd import Member
from kubesalt.upgrade.archives import DOWNGRADE, UPGRADE, Versions, minor, version_key

# A backup older than this does not count as taken before the upgrade (docs/upgrade.md).
BACKUP_MAX_AGE = datetime.timedelta(hours=1)
CONTROL_PLANE_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
ADDON_IMAGES = ("kube-proxy", "coredns", "kube-router")
KUBELET_PACKAGES = "kubelet, kubectl"
UNKNOWN = "?"
# Files whose content does not follow a version: the new tree changes them only where it
# renders them differently.
APPLIED = "applied from the new Salt tree (changed where it renders them differently)"


@dataclass(frozen=True)
class Problem:
    """One reason the verdict refuses: `check` (docs/upgrade.md names each) and a message
    that says what is wrong and what to do."""

    check: str
    message: str


@dataclass(frozen=True)
class NodeReport:
    """One declared node as it answered: its Salt version, its minion's saltenv (the
    Salt tree it runs), its kubelet package's version (empty: not installed), and the
    Kubernetes release the inventory records for it (empty: the cluster's)."""

    name: str
    roles: tuple[str, ...]
    answers: bool
    salt: str = ""
    saltenv: str = ""
    kubelet: str = ""
    release: str = ""


@dataclass(frozen=True)
class EtcdState:
    """The members as etcd lists them and the IDs of those that answered healthy;
    `error` when etcd could not be asked."""

    members: tuple[Member, ...] = ()
    healthy: frozenset[str] = frozenset()
    error: str = ""


@dataclass(frozen=True)
class BackupState:
    """Whether the daily backup is scheduled, and when the newest backup was taken."""

    enabled: bool
    newest: datetime.datetime | None
    directory: str


@dataclass
class Facts:
    """Everything the plan is computed from. `problems`: facts that could not be read
    (an archive, the register), already phrased as verdict problems."""

    direction: str
    ca_minion: str
    current: Archive | None
    target: Archive | None
    current_versions: Versions | None
    target_versions: Versions | None
    nodes: tuple[NodeReport, ...]
    etcd: EtcdState
    lock_busy: str  # empty, or who holds the orchestration lock (LockBusy's message)
    backup: BackupState
    now: datetime.datetime
    problems: list[Problem] = field(default_factory=list)
    config_version: str = ""  # bootstrap.yaml's kubernetes.version (empty: not set)
    pki_algorithm: str = ""  # bootstrap.yaml's pki.algorithm: every key's type and size


@dataclass(frozen=True)
class Stage:
    """One stage of the upgrade: its nodes in order, whether they go one at a time, and
    what changes on each node."""

    name: str
    summary: str
    nodes: tuple[str, ...]
    one_at_a_time: bool
    changes: dict


@dataclass
class Plan:
    direction: str
    current: Archive | None
    target: Archive | None
    versions: list[tuple[str, str, str]]  # (component, from, to)
    nodes: tuple[NodeReport, ...]
    stages: list[Stage]
    problems: list[Problem]
    behind: tuple[str, ...] = ()  # the nodes not on the target yet (nodes_behind)

    @property
    def refused(self) -> bool:
        return bool(self.problems)

    @property
    def continues(self) -> bool:
        """The register records the target already, some nodes are not there yet: a run
        that stopped after it moved the bootstrap node's Salt."""
        return self._same_archive and bool(self.behind)

    @property
    def nothing_to_do(self) -> bool:
        return not self.problems and self._same_archive and not self.behind

    @property
    def _same_archive(self) -> bool:
        return (self.current is not None and self.target is not None
                and self.current.version == self.target.version)  # fmt: skip

    def order(self) -> list[tuple[str, tuple[str, ...], bool]]:
        """(stage, its nodes in order, one at a time) for the upgrade orchestration."""
        return [(s.name, s.nodes, s.one_at_a_time) for s in self.stages if s.nodes]


def members_order(names, ca_minion: str) -> tuple[str, ...]:
    """The other nodes by name, the CA minion last (docs/upgrade.md#the-order): its
    etcd member and its API server serve the orchestration's checks, the backups'
    snapshots and the addons; they change once every other member is back and healthy."""
    return tuple(sorted(n for n in names if n != ca_minion)) + (
        (ca_minion,) if ca_minion in names else ()
    )


def _tag(versions: Versions | None, image: str) -> str:
    return versions.images.get(image, UNKNOWN) if versions else UNKNOWN


def _from_to(what: str, old: str, new: str) -> str:
    return f"{what} {old} (unchanged)" if old == new else f"{what} {old} -> {new}"


def version_rows(facts: Facts) -> list[tuple[str, str, str]]:
    """(component, from, to): kubesalt, Kubernetes, etcd, Salt, then each other image."""
    cur, tgt = facts.current_versions, facts.target_versions

    def get(versions, attr):
        return getattr(versions, attr) if versions else UNKNOWN

    rows = [
        ("kubesalt", facts.current.version if facts.current else UNKNOWN,
         facts.target.version if facts.target else UNKNOWN),
        ("Kubernetes", get(cur, "kubernetes"), get(tgt, "kubernetes")),
        ("etcd", get(cur, "etcd"), get(tgt, "etcd")),
        ("Salt", get(cur, "salt"), get(tgt, "salt")),
    ]  # fmt: skip
    names = sorted({*(cur.images if cur else ()), *(tgt.images if tgt else ())} - {"etcd"})
    rows += [(f"image {name}", _tag(cur, name), _tag(tgt, name)) for name in names]
    return rows


def _salt_changes(report: NodeReport, facts: Facts, tree: str) -> list[str]:
    target_salt = facts.target_versions.salt if facts.target_versions else UNKNOWN
    changes = [_from_to("Salt tree", report.saltenv or UNKNOWN, tree)]
    changes.append(_from_to("Salt (the Salt virtualenv)", report.salt or UNKNOWN, target_salt))
    return changes


def _kubelet_changes(facts: Facts) -> list[str]:
    old = facts.current_versions.kubernetes if facts.current_versions else UNKNOWN
    new = facts.target_versions.kubernetes if facts.target_versions else UNKNOWN
    return ["drained", _from_to(f"packages {KUBELET_PACKAGES}", old, new),
            f"kubelet configuration {APPLIED}, kubelet restarted", "uncordoned"]  # fmt: skip


def stages(facts: Facts) -> list[Stage]:
    """The stages in order: the salt-master's node and the other minions first; then, for
    an upgrade, etcd members one at a time, control-plane nodes one at a time, workers one
    at a time, the addons; for a downgrade, the same Kubernetes stages in reverse (no
    kubelet or kube-proxy may be newer than the API server, docs/upgrade.md#the-order)."""
    ca = facts.ca_minion
    tree = saltenv(facts.target.version) if facts.target else UNKNOWN
    by_name = {r.name: r for r in facts.nodes}
    cur, tgt = facts.current_versions, facts.target_versions

    def having(role):
        return [r.name for r in facts.nodes if role in r.roles]

    master = tuple(n for n in by_name if n == ca)
    minions = tuple(sorted(n for n in by_name if n != ca))
    etcd = members_order(having(_roles.ETCD), ca)
    control = members_order(having(_roles.CONTROL_PLANE), ca)
    # Every other node that runs a kubelet: workers, and etcd-only nodes (their etcd pod
    # moved in the etcd stage, their kubelet here; the orchestration's workers:
    # tables.UPGRADE).
    workers = tuple(sorted(n for n in by_name if _roles.runs_kubelet(by_name[n].roles)
                           and _roles.CONTROL_PLANE not in by_name[n].roles))  # fmt: skip
    etcd_change = [_from_to("etcd static pod: etcd", _tag(cur, "etcd"), _tag(tgt, "etcd")),
                   "every member healthy before the next"]  # fmt: skip
    pods = [
        _from_to(f"static pod {pod}", _tag(cur, pod), _tag(tgt, pod)) for pod in CONTROL_PLANE_PODS
    ]
    control_change = [*pods, f"kubeconfigs and keepalived {APPLIED}",
                      "kube-apiserver /readyz before the next", *_kubelet_changes(facts)]  # fmt: skip
    addons = [_from_to(name, _tag(cur, name), _tag(tgt, name)) for name in ADDON_IMAGES]
    addons.append("kubeadm's API objects (ClusterConfiguration kubernetesVersion)")
    master_change = ["salt-master configuration (file_roots, module_dirs)"]
    salt = [
        Stage("salt-master", "the salt-master and the bootstrap node's minion to the new "
              "Salt tree", master, False,
              {n: [*master_change, *_salt_changes(by_name[n], facts, tree)] for n in master}),
        Stage("salt-minions", "every other minion to the new Salt tree, together", minions,
              False, {n: _salt_changes(by_name[n], facts, tree) for n in minions}),
    ]  # fmt: skip
    kubernetes = [
        Stage("etcd", "etcd members, one at a time, the CA minion's last", etcd, True,
              {n: etcd_change for n in etcd}),
        Stage("control-plane", "control-plane nodes, one at a time, the CA minion last",
              control, True, {n: control_change for n in control}),
        Stage("workers", "the other nodes with a kubelet (etcd-only ones too), one at a time",
              workers, True,
              {n: _kubelet_changes(facts) for n in workers}),
        Stage("addons", "the cluster's API objects, applied from the CA minion", master,
              False, {n: addons for n in master}),
    ]  # fmt: skip
    return salt + (kubernetes[::-1] if facts.direction == DOWNGRADE else kubernetes)


# -- the verdict ------------------------------------------------------------------------


def direction_problems(facts: Facts) -> list[Problem]:
    if facts.current is None or facts.target is None:
        return []
    old, new = version_key(facts.current.version), version_key(facts.target.version)
    if facts.direction == UPGRADE and new < old:
        return [Problem("direction",
                        f"this upgrade.sh comes with kubesalt {facts.target.version}, older than "
                        f"the {facts.current.version} the cluster runs: to go back, run "
                        f"downgrade.sh of the {facts.current.version} archive")]  # fmt: skip
    return []


def kubernetes_problems(facts: Facts) -> list[Problem]:
    """One Kubernetes minor at a time, up or down (kubeadm's skew rule)."""
    if not facts.current_versions or not facts.target_versions:
        return []
    old, new = facts.current_versions.kubernetes, facts.target_versions.kubernetes
    (old_major, old_minor), (new_major, new_minor) = minor(old), minor(new)
    if old_major == new_major and abs(new_minor - old_minor) <= 1:
        return []
    return [Problem("kubernetes-minor",
                    f"Kubernetes {old} -> {new} skips a minor release: kubesalt moves one "
                    "minor at a time; register and run the archive that carries "
                    f"{old_major}.{old_minor + (1 if new_minor > old_minor else -1)} first "
                    "(kubesalt-iso list shows what is registered)")]  # fmt: skip


def node_problems(facts: Facts) -> list[Problem]:
    silent = [r.name for r in facts.nodes if not r.answers]
    problems = []
    if silent:
        problems.append(Problem(
            "nodes", f"no answer from {', '.join(silent)}: every node changes during the "
            f"{facts.direction}; start its salt-minion (salt -L {','.join(silent)} test.ping), or remove "
            "a node that is gone for good (remove_node with force) first"))  # fmt: skip
    known = {saltenv(a.version) for a in (facts.current, facts.target) if a}
    # One tree known: the move continues, and the nodes on the tree it left are those to move.
    astray = [f"{r.name} ({r.saltenv})" for r in facts.nodes
              if r.answers and r.saltenv and len(known) > 1 and r.saltenv not in known]  # fmt: skip
    if astray:
        problems.append(Problem(
            "salt-tree", f"{', '.join(astray)} run(s) a Salt tree that is neither the "
            f"current nor the target one ({', '.join(sorted(known))}); set the minion's "
            "saltenv back (state kubesalt.salt.minion of the current archive) first"))  # fmt: skip
    return problems


def etcd_problems(facts: Facts) -> list[Problem]:
    state = facts.etcd
    if state.error:
        return [Problem("etcd", f"etcd could not be asked: {state.error}; every member must "
                        "answer healthy first (docs/etcd.md)")]  # fmt: skip
    problems = []
    unhealthy = [m.label() for m in state.members if m.id not in state.healthy]
    learners = [m.label() for m in state.members if m.is_learner]
    if unhealthy:
        problems.append(Problem("etcd", f"etcd member(s) not healthy: {', '.join(unhealthy)}; "
                                "bring each back (its node's kubelet and etcd static pod) "
                                "or remove it (remove_node) first"))  # fmt: skip
    if learners:
        problems.append(Problem("etcd", f"etcd learner(s) {', '.join(learners)}: a join did "
                                "not finish; run deploy_node for that node again first"))  # fmt: skip
    listed = {m.name for m in state.members}
    missing = [r.name for r in facts.nodes if _roles.ETCD in r.roles and r.name not in listed]
    declared = {r.name for r in facts.nodes}
    strangers = [m.label() for m in state.members if m.name not in declared]
    if missing:
        problems.append(Problem("etcd", f"{', '.join(missing)} declared with role etcd but "
                                "not an etcd member: run deploy_node for it first"))  # fmt: skip
    if strangers:
        problems.append(Problem("etcd", f"etcd member(s) {', '.join(strangers)} belong to no "
                                "declared node: remove them (remove_node, or etcdctl member "
                                "remove) first"))  # fmt: skip
    return problems


def lock_problems(facts: Facts) -> list[Problem]:
    if not facts.lock_busy:
        return []
    return [Problem("lock", f"{facts.lock_busy}, then run the plan again")]


def backup_problems(facts: Facts) -> list[Problem]:
    backup = facts.backup
    if not backup.enabled:
        return []
    take = (
        "take one now: kubesalt-backup (on the bootstrap node), then run the plan again "
        "(docs/backup.md)"
    )
    if backup.newest is None:
        return [Problem("backup", f"no backup in {backup.directory}; {take}")]
    age = facts.now - backup.newest
    if age > BACKUP_MAX_AGE:
        minutes = int(age.total_seconds() // 60)
        return [Problem("backup", f"the newest backup in {backup.directory} is {minutes} "
                        f"minutes old, more than {int(BACKUP_MAX_AGE.total_seconds() // 60)}; "
                        f"{take}")]  # fmt: skip
    return []


def config_problems(facts: Facts) -> list[Problem]:
    """bootstrap.yaml's kubernetes.version, when set, is the cluster's release: the addons
    (and a node with none recorded) render it. Set to another release than the target's,
    it would hold them back after the move; set to the target's, the current kubesalt
    may not know that release."""
    wanted = facts.config_version
    target = facts.target_versions.kubernetes if facts.target_versions else ""
    if not wanted or not target or wanted.lstrip("v") == target.lstrip("v"):
        return []
    return [Problem("kubernetes-version",
                    f"bootstrap.yaml sets kubernetes.version {wanted}: once the cluster runs "
                    f"{target}, the addons would still render {wanted}; remove the key (each "
                    "archive then uses its own release), then run the plan again")]  # fmt: skip


def pki_problems(facts: Facts) -> list[Problem]:
    """Every key of the cluster is of pki.algorithm; a release whose kubeadm does not accept
    it (ECDSA-P384 before 1.34) cannot run them, and kubesalt does not replace them."""
    target = facts.target_versions.kubernetes if facts.target_versions else ""
    if not facts.pki_algorithm or not target:
        return []
    if keyalgorithms.accepts(facts.pki_algorithm, target):
        return []
    since = keyalgorithms.get(facts.pki_algorithm).first_minor
    return [Problem("pki-algorithm",
                    f"every key of this cluster is {facts.pki_algorithm} (bootstrap.yaml's "
                    f"pki.algorithm), which kubeadm accepts from Kubernetes {since} on: "
                    f"{target} cannot use them, and kubesalt does not replace every key of a "
                    "cluster; stay on the archive the cluster runs")]  # fmt: skip


CHECKS = (direction_problems, kubernetes_problems, config_problems, pki_problems,
          node_problems, etcd_problems, lock_problems, backup_problems)  # fmt: skip


# What the orchestration asks again when it starts (kubesalt.orchestrate.upgradesteps).
RECHECKED = (node_problems, etcd_problems)


def recheck(direction: str, ca_minion: str, nodes: tuple[NodeReport, ...],
            etcd: EtcdState) -> list[Problem]:  # fmt: skip
    """The verdict's checks of the cluster's own state (its nodes answer, etcd is healthy
    with every member), on facts gathered again."""
    facts = Facts(direction, ca_minion, None, None, None, None, nodes, etcd, "",
                  BackupState(False, None, ""), datetime.datetime.now(tz=datetime.UTC))  # fmt: skip
    return [problem for check in RECHECKED for problem in check(facts)]


def nodes_behind(facts: Facts) -> tuple[str, ...]:
    """The nodes not on the target yet: their minion runs another Salt tree, or the
    release recorded for them (none: the current archive's) is not the target's."""
    if facts.target is None or facts.target_versions is None:
        return ()
    tree = saltenv(facts.target.version)
    cluster = facts.current_versions.kubernetes if facts.current_versions else ""
    return tuple(r.name for r in facts.nodes
                 if (r.answers and r.saltenv != tree)
                 or (r.release or cluster) != facts.target_versions.kubernetes)  # fmt: skip


def compute(facts: Facts) -> Plan:
    problems = list(facts.problems)
    for check in CHECKS:
        problems += check(facts)
    return Plan(facts.direction, facts.current, facts.target, version_rows(facts),
                facts.nodes, stages(facts), problems, nodes_behind(facts))  # fmt: skip


# -- the text ---------------------------------------------------------------------------


def _stage_lines(stages: list[Stage]) -> list[str]:
    """Each stage with its nodes in order, then what changes, once for the nodes that get
    the same changes."""
    lines = ["Stages, in this order:"]
    for number, stage in enumerate((s for s in stages if s.nodes), start=1):
        lines.append(f"{number:2d}. {stage.name}: {stage.summary}: {', '.join(stage.nodes)}")
        groups: dict[tuple, list[str]] = {}
        for node in stage.nodes:
            groups.setdefault(tuple(stage.changes[node]), []).append(node)
        for changes, nodes in groups.items():
            lines.append(f"      {', '.join(nodes)}:")
            lines += [f"        - {change}" for change in changes]
    return [*lines, ""]


def text(plan: Plan) -> str:
    """The plan as `upgrade.sh --dry-run` prints it."""
    word = "Downgrade" if plan.direction == DOWNGRADE else "Upgrade"
    old = plan.current.version if plan.current else UNKNOWN
    new = plan.target.version if plan.target else UNKNOWN
    where = f" (archive {plan.target.root})" if plan.target else ""
    lines = [f"{word} plan: kubesalt {old} -> {new}{where}", ""]
    lines += aligned(("COMPONENT", "CURRENT", "TARGET"), plan.versions)
    lines.append("")
    rows = [(r.name, ",".join(r.roles), "yes" if r.answers else "NO", r.salt or "-",
             r.saltenv or "-", r.kubelet or "-", r.release or "-") for r in plan.nodes]  # fmt: skip
    lines += aligned(("NODE", "ROLES", "ANSWERS", "SALT", "SALT TREE", "KUBELET", "RELEASE"), rows)
    lines.append("")
    if not plan.nothing_to_do:
        lines += _stage_lines(plan.stages)
    if plan.problems:
        lines.append(f"Verdict: REFUSED, {len(plan.problems)} problem(s):")
        lines += [f"  - [{p.check}] {p.message}" for p in plan.problems]
    elif plan.nothing_to_do:
        lines.append(f"Verdict: nothing to do, the cluster runs kubesalt {new} already")
    elif plan.continues:
        lines.append(f"Verdict: the {word.lower()} can proceed: it continues (the register "
                     f"records kubesalt {new} already; not there yet: "
                     f"{', '.join(plan.behind)})")  # fmt: skip
    else:
        lines.append(f"Verdict: the {word.lower()} can proceed")
    return "\n".join(lines) + "\n"
