"""The plan from facts: versions from -> to, the stages in order, the verdict's problems."""

import dataclasses
import datetime

import pytest

from kubesalt.bootstrap.archive import Archive
from kubesalt.etcd import Member
from kubesalt.upgrade import plan
from kubesalt.upgrade.archives import Versions
from tests.unit.upgrade.archive_fixtures import images_of

NOW = datetime.datetime(2026, 12, 5, 8, 0, tzinfo=datetime.UTC)
ALL = ("bootstrap", "ca", "control-plane", "etcd", "node")
CP = ("control-plane", "etcd", "node")
OLD = Archive("/srv/kubesalt/kubesalt-0.1.0.iso", "/srv/kubesalt/kubesalt-0.1.0", "iso",
              "kubesalt", "0.1.0")  # fmt: skip
NEW = Archive("/srv/kubesalt/kubesalt-0.2.0.iso", "/srv/kubesalt/kubesalt-0.2.0", "iso",
              "kubesalt", "0.2.0")  # fmt: skip


def versions(kubesalt, kubernetes, etcd, salt="3008.3"):
    tags = {n: e["tag"] for n, e in images_of(kubernetes, etcd)["images"].items()}
    return Versions(kubesalt, kubernetes, salt, tags)


def member(name, learner=False, started=True):
    return Member(f"{abs(hash(name)) % 10**12:x}", name if started else "",
                  (f"https://{name}:2380",), (f"https://{name}:2379",) if started else (),
                  learner)  # fmt: skip


def node(name, roles, answers=True, saltenv="kubesalt-0.1.0"):
    return plan.NodeReport(name, roles, answers, "3008.3" if answers else "",
                           saltenv if answers else "", "1.33.5-1.1" if answers else "")  # fmt: skip


def cluster_facts(**changes):
    """A converged four-node cluster on 0.1.0 (Kubernetes 1.33), the target 0.2.0 (1.34)."""
    nodes = (node("bootstrap", ALL), node("cp2", CP), node("cp3", CP), node("worker1", ("node",)))
    members = tuple(member(n) for n in ("cp3", "bootstrap", "cp2"))
    facts = plan.Facts(
        direction="upgrade",
        ca_minion="bootstrap",
        current=OLD,
        target=NEW,
        current_versions=versions("0.1.0", "v1.33.5", "3.5.21-0"),
        target_versions=versions("0.2.0", "v1.34.1", "3.5.24-0"),
        nodes=nodes,
        etcd=plan.EtcdState(members, frozenset(m.id for m in members)),
        lock_busy="",
        backup=plan.BackupState(
            True, NOW - datetime.timedelta(minutes=20), "/var/lib/kubesalt/backups"
        ),
        now=NOW,
    )
    return dataclasses.replace(facts, **changes)


def test_a_converged_cluster_with_a_fresh_backup_may_upgrade():
    computed = plan.compute(cluster_facts())
    assert computed.problems == []
    assert not computed.refused and not computed.nothing_to_do


def test_the_versions_from_and_to():
    rows = plan.compute(cluster_facts()).versions
    assert rows[:4] == [("kubesalt", "0.1.0", "0.2.0"), ("Kubernetes", "v1.33.5", "v1.34.1"),
                        ("etcd", "3.5.21-0", "3.5.24-0"), ("Salt", "3008.3", "3008.3")]  # fmt: skip
    assert ("image kube-apiserver", "v1.33.5", "v1.34.1") in rows
    assert ("image coredns", "v1.12.0", "v1.12.0") in rows
    assert len(rows) == 4 + 7  # every image but etcd, once


def test_the_order_master_minions_etcd_control_plane_workers_addons_ca_last():
    computed = plan.compute(cluster_facts())
    assert computed.order() == [
        ("salt-master", ("bootstrap",), False),
        ("salt-minions", ("cp2", "cp3", "worker1"), False),
        ("etcd", ("cp2", "cp3", "bootstrap"), True),
        ("control-plane", ("cp2", "cp3", "bootstrap"), True),
        ("workers", ("worker1",), True),
        ("addons", ("bootstrap",), False),
    ]


def test_a_downgrade_takes_the_kubernetes_stages_in_reverse_after_salt():
    facts = cluster_facts(direction="downgrade", current=NEW, target=OLD,
                          current_versions=versions("0.2.0", "v1.34.1", "3.5.24-0"),
                          target_versions=versions("0.1.0", "v1.33.5", "3.5.21-0"))  # fmt: skip
    computed = plan.compute(facts)
    assert computed.order() == [
        ("salt-master", ("bootstrap",), False),
        ("salt-minions", ("cp2", "cp3", "worker1"), False),
        ("addons", ("bootstrap",), False),
        ("workers", ("worker1",), True),
        ("control-plane", ("cp2", "cp3", "bootstrap"), True),
        ("etcd", ("cp2", "cp3", "bootstrap"), True),
    ]
    workers = next(s for s in computed.stages if s.name == "workers")
    assert workers.changes["worker1"][1] == "packages kubelet, kubectl v1.34.1 -> v1.33.5"


def test_an_etcd_only_node_moves_its_etcd_pod_with_etcd_and_its_kubelet_with_the_workers():
    """Its kubelet runs its etcd static pod: the etcd stage moves the pod, the workers
    stage the kubelet, which otherwise would stay on the old release for good."""
    nodes = cluster_facts().nodes + (node("etcd4", ("etcd",)),)
    order = dict((s, n) for s, n, _ in plan.compute(cluster_facts(nodes=nodes)).order())
    assert order["etcd"] == ("cp2", "cp3", "etcd4", "bootstrap")
    assert order["control-plane"] == ("cp2", "cp3", "bootstrap")
    assert order["workers"] == ("etcd4", "worker1")


def test_what_changes_on_each_node():
    stages = {s.name: s for s in plan.compute(cluster_facts()).stages}
    assert stages["salt-master"].changes["bootstrap"] == [
        "salt-master configuration (file_roots, module_dirs)",
        "Salt tree kubesalt-0.1.0 -> kubesalt-0.2.0",
        "Salt (the Salt virtualenv) 3008.3 (unchanged)",
    ]
    assert stages["etcd"].changes["cp2"] == [
        "etcd static pod: etcd 3.5.21-0 -> 3.5.24-0",
        "every member healthy before the next",
    ]
    assert stages["control-plane"].changes["cp3"] == [
        "static pod kube-apiserver v1.33.5 -> v1.34.1",
        "static pod kube-controller-manager v1.33.5 -> v1.34.1",
        "static pod kube-scheduler v1.33.5 -> v1.34.1",
        "kubeconfigs and keepalived applied from the new Salt tree (changed where it renders "
        "them differently)",
        "kube-apiserver /readyz before the next",
        "drained",
        "packages kubelet, kubectl v1.33.5 -> v1.34.1",
        "kubelet configuration applied from the new Salt tree (changed where it renders them "
        "differently), kubelet restarted",
        "uncordoned",
    ]
    assert stages["workers"].changes["worker1"][1] == "packages kubelet, kubectl v1.33.5 -> v1.34.1"
    assert stages["addons"].changes["bootstrap"] == [
        "kube-proxy v1.33.5 -> v1.34.1",
        "coredns v1.12.0 (unchanged)",
        "kube-router v2.11.1 (unchanged)",
        "kubeadm's API objects (ClusterConfiguration kubernetesVersion)",
    ]


def test_a_node_already_on_the_new_tree_says_so():
    nodes = tuple(node(n.name, n.roles, saltenv="kubesalt-0.2.0") if n.name == "cp2" else n
                  for n in cluster_facts().nodes)  # fmt: skip
    computed = plan.compute(cluster_facts(nodes=nodes))
    assert computed.problems == []
    minions = next(s for s in computed.stages if s.name == "salt-minions")
    assert minions.changes["cp2"][0] == "Salt tree kubesalt-0.2.0 (unchanged)"


def checks(facts):
    return [(p.check, p.message) for p in plan.compute(facts).problems]


@pytest.mark.parametrize(("old", "new"), [("v1.33.5", "v1.35.0"), ("v1.34.1", "v1.32.3"),
                                          ("v1.33.5", "v2.33.0")])  # fmt: skip
def test_more_than_one_minor_at_a_time_is_refused(old, new):
    facts = cluster_facts(current_versions=versions("0.1.0", old, "3.5.21-0"),
                          target_versions=versions("0.2.0", new, "3.6.4-0"))  # fmt: skip
    found = checks(facts)
    assert [c for c, _ in found] == ["kubernetes-minor"]
    assert found[0][1].startswith(f"Kubernetes {old} -> {new} skips a minor release")


def test_the_minor_to_go_through_is_named():
    facts = cluster_facts(target_versions=versions("0.2.0", "v1.35.0", "3.6.4-0"))
    assert checks(facts) == [("kubernetes-minor", (
        "Kubernetes v1.33.5 -> v1.35.0 skips a minor release: kubesalt moves one minor at a "
        "time; register and run the archive that carries 1.34 first (kubesalt-iso list shows "
        "what is registered)"))]  # fmt: skip


def test_one_minor_down_is_allowed():
    facts = cluster_facts(direction="downgrade", current=NEW, target=OLD,
                          current_versions=versions("0.2.0", "v1.34.1", "3.5.24-0"),
                          target_versions=versions("0.1.0", "v1.33.5", "3.5.21-0"))  # fmt: skip
    assert checks(facts) == []


def test_a_silent_node_is_named_with_what_to_do():
    nodes = tuple(node(n.name, n.roles, answers=n.name != "worker1") for n in cluster_facts().nodes)
    assert checks(cluster_facts(nodes=nodes)) == [("nodes", (
        "no answer from worker1: every node changes during the upgrade; start its salt-minion "
        "(salt -L worker1 test.ping), or remove a node that is gone for good (remove_node with "
        "force) first"))]  # fmt: skip


def test_a_node_on_a_third_salt_tree_is_refused():
    nodes = tuple(node(n.name, n.roles, saltenv="kubesalt-0.0.9") if n.name == "cp3" else n
                  for n in cluster_facts().nodes)  # fmt: skip
    assert [c for c, _ in checks(cluster_facts(nodes=nodes))] == ["salt-tree"]


def test_an_unhealthy_member_a_learner_and_a_missing_member_are_each_named():
    facts = cluster_facts()
    cp2, cp3 = member("cp2"), member("cp3", learner=True)
    etcd = plan.EtcdState((member("bootstrap"), cp2, cp3),
                          frozenset({member("bootstrap").id, cp3.id}))  # fmt: skip
    nodes = facts.nodes + (node("cp4", CP),)
    found = checks(dataclasses.replace(facts, etcd=etcd, nodes=nodes))
    assert found == [
        ("etcd", f"etcd member(s) not healthy: cp2 ({cp2.id}); bring each back (its node's "
                 "kubelet and etcd static pod) or remove it (remove_node) first"),
        ("etcd", f"etcd learner(s) cp3 ({cp3.id}): a join did not finish; run deploy_node for "
                 "that node again first"),
        ("etcd", "cp4 declared with role etcd but not an etcd member: run deploy_node for it first"),
    ]  # fmt: skip


def test_a_member_of_no_declared_node_is_named():
    stray = member("old1")
    facts = cluster_facts()
    etcd = plan.EtcdState(facts.etcd.members + (stray,), facts.etcd.healthy | {stray.id})
    assert checks(cluster_facts(etcd=etcd)) == [("etcd", (
        f"etcd member(s) old1 ({stray.id}) belong to no declared node: remove them "
        "(remove_node, or etcdctl member remove) first"))]  # fmt: skip


def test_etcd_that_cannot_be_asked_is_refused():
    facts = cluster_facts(etcd=plan.EtcdState(error="kubesalt_etcd.members on bootstrap failed"))
    assert checks(facts) == [("etcd", (
        "etcd could not be asked: kubesalt_etcd.members on bootstrap failed; every member must "
        "answer healthy first (docs/etcd.md)"))]  # fmt: skip


def test_a_running_orchestration_is_refused():
    busy = ("another kubesalt orchestration is running: deploy_node cp4 (PID 7, since ...) "
            "(lock /run/kubesalt/orchestrate.lock); wait for it to end")  # fmt: skip
    assert checks(cluster_facts(lock_busy=busy)) == [("lock", f"{busy}, then run the plan again")]


def test_a_backup_older_than_an_hour_is_refused_with_how_to_take_one():
    backup = plan.BackupState(True, NOW - datetime.timedelta(hours=25), "/var/lib/kubesalt/backups")
    assert checks(cluster_facts(backup=backup)) == [("backup", (
        "the newest backup in /var/lib/kubesalt/backups is 1500 minutes old, more than 60; "
        "take one now: kubesalt-backup (on the bootstrap node), then run the plan again "
        "(docs/backup.md)"))]  # fmt: skip


def test_no_backup_is_refused_when_backup_is_enabled_and_not_asked_otherwise():
    none = plan.BackupState(True, None, "/var/lib/kubesalt/backups")
    assert [c for c, _ in checks(cluster_facts(backup=none))] == ["backup"]
    disabled = plan.BackupState(False, None, "/var/lib/kubesalt/backups")
    assert checks(cluster_facts(backup=disabled)) == []


def test_an_upgrade_sh_older_than_the_cluster_points_to_downgrade_sh():
    facts = cluster_facts(current=NEW, target=OLD,
                          current_versions=versions("0.2.0", "v1.34.1", "3.5.24-0"),
                          target_versions=versions("0.1.0", "v1.33.5", "3.5.21-0"))  # fmt: skip
    assert checks(facts) == [("direction", (
        "this upgrade.sh comes with kubesalt 0.1.0, older than the 0.2.0 the cluster runs: to "
        "go back, run downgrade.sh of the 0.2.0 archive"))]  # fmt: skip


@pytest.mark.parametrize("given", ["", "v1.34.1", "1.34.1"])
def test_a_configured_release_that_is_the_target_or_none_is_fine(given):
    assert plan.compute(cluster_facts(config_version=given)).problems == []


def test_a_configured_release_other_than_the_target_refuses():
    facts = cluster_facts(config_version="v1.33.5")
    assert checks(facts) == [("kubernetes-version", (
        "bootstrap.yaml sets kubernetes.version v1.33.5: once the cluster runs v1.34.1, the "
        "addons would still render v1.33.5; remove the key (each archive then uses its own "
        "release), then run the plan again"))]  # fmt: skip


@pytest.mark.parametrize("algorithm", ["", "RSA-2048", "ECDSA-P256", "ECDSA-P384"])
def test_an_upgrade_to_1_34_takes_every_key_algorithm(algorithm):
    assert plan.compute(cluster_facts(pki_algorithm=algorithm)).problems == []


def test_a_downgrade_below_the_key_algorithms_release_is_refused():
    """kubeadm 1.33 has no ECDSA-P384: a cluster whose keys are P384 cannot go back."""
    facts = cluster_facts(direction="downgrade", current=NEW, target=OLD,
                          current_versions=versions("0.2.0", "v1.34.1", "3.5.24-0"),
                          target_versions=versions("0.1.0", "v1.33.5", "3.5.21-0"),
                          pki_algorithm="ECDSA-P384")  # fmt: skip
    assert checks(facts) == [("pki-algorithm", (
        "every key of this cluster is ECDSA-P384 (bootstrap.yaml's pki.algorithm), which "
        "kubeadm accepts from Kubernetes 1.34 on: v1.33.5 cannot use them, and kubesalt does "
        "not replace every key of a cluster; stay on the archive the cluster runs"))]  # fmt: skip
    facts.pki_algorithm = "ECDSA-P256"
    assert checks(facts) == []


def test_the_facts_problems_come_first_and_refuse():
    facts = cluster_facts(target_versions=None, problems=[plan.Problem("archive", "p: no X")])
    computed = plan.compute(facts)
    assert [(p.check, p.message) for p in computed.problems] == [("archive", "p: no X")]
    assert computed.versions[1] == ("Kubernetes", "v1.33.5", "?")


def test_the_same_archive_is_nothing_to_do():
    same = versions("0.1.0", "v1.33.5", "3.5.21-0")
    computed = plan.compute(cluster_facts(target=OLD, target_versions=same))
    assert computed.nothing_to_do
    shown = plan.text(computed)
    assert "Verdict: nothing to do, the cluster runs kubesalt 0.1.0 already" in shown
    assert "Stages" not in shown


def moved(report, release="v1.34.1"):
    return dataclasses.replace(report, saltenv="kubesalt-0.2.0", release=release)


def test_a_run_that_stopped_once_the_register_moved_continues():
    """upgrade.sh moved the bootstrap node's Salt and the register, then stopped: the
    register's current is the target, the other nodes are not there yet."""
    new = versions("0.2.0", "v1.34.1", "3.5.24-0")
    base = cluster_facts()
    nodes = (moved(base.nodes[0], release="v1.33.5"), *base.nodes[1:])
    computed = plan.compute(cluster_facts(current=NEW, current_versions=new, nodes=nodes))
    assert (computed.continues, computed.nothing_to_do, computed.refused) == (True, False, False)
    assert computed.behind == ("bootstrap", "cp2", "cp3", "worker1")
    assert plan.text(computed).splitlines()[-1] == (
        "Verdict: the upgrade can proceed: it continues (the register records kubesalt 0.2.0 "
        "already; not there yet: bootstrap, cp2, cp3, worker1)"
    )


def test_every_node_on_the_target_tree_and_release_is_nothing_to_do():
    new = versions("0.2.0", "v1.34.1", "3.5.24-0")
    nodes = tuple(moved(r) for r in cluster_facts().nodes)
    computed = plan.compute(cluster_facts(current=NEW, current_versions=new, nodes=nodes))
    assert (computed.behind, computed.nothing_to_do) == ((), True)


def test_the_text_is_a_version_table_the_nodes_the_stages_and_the_verdict():
    shown = plan.text(plan.compute(cluster_facts()))
    lines = shown.splitlines()
    assert (
        lines[0] == "Upgrade plan: kubesalt 0.1.0 -> 0.2.0 (archive /srv/kubesalt/kubesalt-0.2.0)"
    )
    assert lines[2:6] == [
        "COMPONENT                      CURRENT   TARGET",
        "kubesalt                       0.1.0     0.2.0",
        "Kubernetes                     v1.33.5   v1.34.1",
        "etcd                           3.5.21-0  3.5.24-0",
    ]
    assert (
        "worker1    node                                  yes      3008.3  kubesalt-0.1.0  1.33.5-1.1  -"
        in lines
    )
    assert (
        " 3. etcd: etcd members, one at a time, the CA minion's last: cp2, cp3, bootstrap" in lines
    )
    start = lines.index(
        " 3. etcd: etcd members, one at a time, the CA minion's last: cp2, cp3, bootstrap"
    )
    assert lines[start + 1 : start + 4] == [
        "      cp2, cp3, bootstrap:",
        "        - etcd static pod: etcd 3.5.21-0 -> 3.5.24-0",
        "        - every member healthy before the next",
    ]
    start = lines.index(" 2. salt-minions: every other minion to the new Salt tree, together: "
                        "cp2, cp3, worker1")  # fmt: skip
    assert lines[start + 1] == "      cp2, cp3, worker1:"
    assert lines[-1] == "Verdict: the upgrade can proceed"


def test_a_refused_verdict_lists_each_problem_with_its_check():
    shown = plan.text(plan.compute(cluster_facts(lock_busy="another one runs")))
    assert shown.splitlines()[-2:] == [
        "Verdict: REFUSED, 1 problem(s):",
        "  - [lock] another one runs, then run the plan again",
    ]
