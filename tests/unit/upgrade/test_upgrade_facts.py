"""The facts gathered on the bootstrap node, against the fake cluster the orchestration
tests use (tests/unit/orchestrate/fakes.py): one job per question, silent minions and a
silent etcd named, the archives, the lock and the backups read from files."""

import datetime
import fcntl
import os

from kubesalt.orchestrate.rpc import Rpc
from kubesalt.upgrade import facts, plan
from tests.unit.orchestrate.fakes import KUBELET_VERSION, ROLES, SALT_VERSION, SALTENV
from tests.unit.upgrade.archive_fixtures import make_archive, write_register
from tests.unit.upgrade.conftest import NODES

NOW = datetime.datetime(2026, 12, 5, 8, 0, tzinfo=datetime.UTC)


def gather(site, direction="upgrade", shipped=None):
    cluster, backend, sources, old, new = site
    return facts.gather(direction, (shipped or new).root, Rpc(backend.client), sources, NOW)


def test_a_converged_cluster_gives_every_fact_and_an_empty_verdict(site):
    found = gather(site)
    assert found.nodes == tuple(
        plan.NodeReport(n, ROLES[n], True, SALT_VERSION, SALTENV, KUBELET_VERSION) for n in NODES
    )
    assert (found.current.version, found.target.version) == ("0.1.0", "0.2.0")
    assert (found.current_versions.kubernetes, found.target_versions.kubernetes) == (
        "v1.33.5",
        "v1.34.1",
    )
    assert (found.current_versions.etcd, found.target_versions.etcd) == ("3.5.21-0", "3.5.24-0")
    assert sorted(m.name for m in found.etcd.members) == ["bootstrap", "cp2", "cp3"]
    assert found.etcd.healthy == {m.id for m in found.etcd.members}
    assert found.ca_minion == "bootstrap" and found.lock_busy == "" and found.problems == []
    assert found.backup == plan.BackupState(False, None, site[2].backup_dir)
    assert plan.compute(found).problems == []


def test_one_job_per_question(site):
    gather(site)
    everyone = ",".join(NODES)
    assert site[1].calls == [
        f"{everyone} test.ping",
        f"{everyone} grains.item saltversion",
        f"{everyone} config.get saltenv",
        f"{everyone} pkg.version kubelet",
        "bootstrap kubesalt_etcd.members",
        "bootstrap kubesalt_etcd.health",
    ]


def test_a_silent_node_is_asked_nothing_more_and_reported_silent(site):
    site[0].kill("worker1")
    found = gather(site)
    assert found.nodes[-1] == plan.NodeReport("worker1", ("node",), False)
    assert site[1].calls[1] == "bootstrap,cp2,cp3 grains.item saltversion"
    assert [p.check for p in plan.compute(found).problems] == ["nodes"]


def test_a_member_down_is_not_healthy(site):
    site[0].etcd_down.add("cp3")
    found = gather(site)
    down = next(m for m in found.etcd.members if m.name == "cp3")
    assert down.id not in found.etcd.healthy and len(found.etcd.healthy) == 2
    messages = [p.message for p in plan.compute(found).problems]
    assert messages == [f"etcd member(s) not healthy: cp3 ({down.id}); bring each back (its "
                        "node's kubelet and etcd static pod) or remove it (remove_node) first"]  # fmt: skip


def test_a_silent_ca_minion_leaves_etcd_unasked(site):
    site[0].kill("bootstrap")
    found = gather(site)
    assert found.etcd == plan.EtcdState(error=(
        "kubesalt_etcd.members on bootstrap did not answer or failed (salt bootstrap "
        "kubesalt_etcd.members says why)"))  # fmt: skip


def test_a_ca_minion_whose_member_is_down_answers_an_error(site):
    site[0].etcd_down.add("bootstrap")
    found = gather(site)
    # its kubesalt_etcd answers "ERROR: Unreachable: ...", which Rpc counts as a failure
    assert found.etcd.error.startswith("kubesalt_etcd.members on bootstrap did not answer")
    assert found.etcd.members == ()


def test_an_archive_not_registered_is_described_from_where_it_is(site, tmp_path):
    newer = make_archive(tmp_path / "isos", "0.3.0", kubernetes="v1.34.1", etcd="3.5.24-0")
    found = gather(site, shipped=newer)
    assert found.target.root == newer.root and found.target_versions.kubesalt == "0.3.0"
    assert [(p.check, p.message) for p in found.problems] == [("archive", (
        f"kubesalt 0.3.0 (this archive, {newer.root}) is not registered: register it with "
        f"kubesalt-iso add {newer.root}, then run the plan again"))]  # fmt: skip


def test_a_downgrade_goes_to_the_newest_older_registered_archive(site, tmp_path):
    cluster, backend, sources, old, new = site
    write_register(tmp_path / "archives.yaml", [new, old])  # 0.2.0 runs (registered first)
    found = gather(site, direction="downgrade")
    assert (found.current.version, found.target.version) == ("0.2.0", "0.1.0")
    assert plan.compute(found).problems == []


def test_the_current_archive_is_the_one_the_register_records(site, tmp_path):
    """After an upgrade the register's `current` moves (kubesalt.bootstrap.archive.set_current):
    the order of the archives says nothing."""
    cluster, backend, sources, old, new = site
    write_register(tmp_path / "archives.yaml", [old, new], current="0.2.0")
    found = gather(site, direction="downgrade")
    assert (found.current.version, found.target.version) == ("0.2.0", "0.1.0")


def test_a_downgrade_comes_from_the_archive_the_cluster_runs(site, tmp_path):
    cluster, backend, sources, old, new = site
    newest = make_archive(tmp_path / "isos", "0.3.0")
    write_register(tmp_path / "archives.yaml", [old, new, newest], current="0.1.0")
    found = gather(site, direction="downgrade", shipped=newest)
    assert [(p.check, p.message) for p in found.problems] == [("archive", (
        "this downgrade.sh comes with kubesalt 0.3.0, but the cluster runs 0.1.0: run "
        "downgrade.sh of the 0.1.0 archive"))]  # fmt: skip


def test_a_downgrade_that_stopped_once_the_register_moved_goes_on_to_the_same_target(site,
                                                                                      tmp_path):  # fmt: skip
    cluster, backend, sources, old, new = site
    write_register(tmp_path / "archives.yaml", [old, new], current="0.1.0")
    found = gather(site, direction="downgrade", shipped=new)
    assert (found.current.version, found.target.version, found.problems) == ("0.1.0", "0.1.0", [])


def test_each_node_s_recorded_release_is_reported(site):
    from kubesalt import inventory

    inventory.record_kubernetes_version("cp2", "v1.34.2", site[1].inventory_dir)
    found = gather(site)
    assert {r.name: r.release for r in found.nodes} == {
        "bootstrap": "", "cp2": "v1.34.2", "cp3": "", "worker1": ""}  # fmt: skip


def test_a_downgrade_with_nothing_older_is_refused(site, tmp_path):
    write_register(tmp_path / "archives.yaml", [site[3]])
    found = gather(site, direction="downgrade", shipped=site[3])
    assert [(p.check, p.message) for p in found.problems] == [("archive", (
        "no registered archive is older than kubesalt 0.1.0 (this archive; registered: 0.1.0): "
        "there is nothing to go back to"))]  # fmt: skip


def test_an_archive_without_kubernetes_version_is_a_problem_not_a_crash(site, tmp_path):
    legacy = make_archive(tmp_path / "legacy", "0.1.0", kubernetes="")
    write_register(tmp_path / "archives.yaml", [legacy, site[4]])
    found = gather(site)
    assert found.current_versions is None and found.target_versions.kubesalt == "0.2.0"
    assert [p.check for p in found.problems] == ["archive"]
    assert found.problems[0].message.startswith(f"{legacy.root}/product.txt: no KUBERNETES_VERSION")


def test_an_orchestration_holding_the_lock_is_named(site):
    path = site[2].lock
    os.makedirs(os.path.dirname(path))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"deploy_node cp4 (PID 7, since 2026-12-05 07:58:00 UTC)\n")
        fcntl.flock(fd, fcntl.LOCK_EX)
        found = gather(site)
    finally:
        os.close(fd)
    assert found.lock_busy == (
        "another kubesalt orchestration is running: deploy_node cp4 (PID 7, since 2026-12-05 "
        f"07:58:00 UTC) (lock {path}); wait for it to end"
    )


def test_the_newest_backup_and_the_schedule_tell_the_backup_state(site, tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    for name in ("kubesalt-backup-20261204T020000Z.tar.gz", "kubesalt-backup-20261205T074000Z.tar.gz",
                 "notes.txt"):  # fmt: skip
        (backups / name).write_text("")
    (tmp_path / "kubesalt-backup-schedule.conf").write_text("schedule: {}\n")
    found = gather(site)
    assert found.backup == plan.BackupState(
        True, datetime.datetime(2026, 12, 5, 7, 40, tzinfo=datetime.UTC), str(backups)
    )
    assert plan.compute(found).problems == []


def test_when_no_minion_answers_only_the_ping_and_etcd_are_asked(site):
    for name in NODES:
        site[0].kill(name)
    found = gather(site)
    assert [r.answers for r in found.nodes] == [False] * 4
    assert site[1].calls == [f"{','.join(NODES)} test.ping", "bootstrap kubesalt_etcd.members"]


def test_the_configured_kubernetes_release_is_read(site):
    config = site[2].config
    with open(config, encoding="utf-8") as stream:
        text = stream.read()
    with open(config, "w", encoding="utf-8") as stream:
        stream.write(text.replace("  # version: v1.33.5", "  version: v1.33.5"))
    found = gather(site)
    assert found.config_version == "v1.33.5"
    assert [p.check for p in plan.compute(found).problems] == ["kubernetes-version"]


def test_silent_minions_are_asked_again_until_they_answer_or_the_wait_ends():
    """After a salt-master restart (kubesalt-iso add) the minions reconnect within seconds:
    the plan asks the silent ones again rather than refusing at once."""
    now = {"t": 0.0}
    rounds = iter([{"cp2"}, set(), {"cp3"}, set(), set()])
    pinged = []

    class SlowToReconnect:
        def ping(self, names, timeout):
            pinged.append((now["t"], list(names)))
            now["t"] += 1  # each ping takes a second
            return next(rounds)

    def sleep(seconds):
        now["t"] += seconds

    clock = lambda: now["t"]  # noqa: E731
    assert facts._answering(SlowToReconnect(), ["cp2", "cp3"], 60, clock, sleep) == {"cp2", "cp3"}
    assert pinged == [(0, ["cp2", "cp3"]), (4, ["cp3"]), (8, ["cp3"])]
    # worker1 never answers: named once the wait is over.
    rounds = iter([set()] * 10)
    now["t"], pinged[:] = 0.0, []
    assert facts._answering(SlowToReconnect(), ["worker1"], 10, clock, sleep) == set()
    assert [t for t, _ in pinged] == [0, 4, 8, 12]


def test_the_configured_key_algorithm_is_read(site):
    found = gather(site)
    assert found.pki_algorithm == "RSA-2048"  # bootstrap.yaml's default
    assert plan.compute(found).problems == []
