"""upgrade.sh without --dry-run: its phases (kubesalt.upgrade.move) on the upgrade tests'
site, bootstrap.sh's phases replaced by stand-ins that say what they would change, the
programs (systemctl, salt-run) by a System that records them. Each phase once, in order;
a second run changes nothing; a run stopped by a failure continues."""

import argparse
import dataclasses
import fcntl
import json
import os
import pathlib
import subprocess

import pytest
import yaml

from kubesalt import inventory
from kubesalt.bootstrap import archive as karchive
from kubesalt.bootstrap import cli as bootstrap
from kubesalt.bootstrap.phases import Phase, PhaseResult
from kubesalt.bootstrap.system import System
from kubesalt.network import HostAddress
from kubesalt.orchestrate.rpc import Rpc
from kubesalt.upgrade import cli, facts, move, plan

SALT_RUN = "/opt/kubesalt/salt/bin/salt-run"


def orchestrated(changes):
    """salt-run's JSON answer: the orchestration's one state, with its changes by phase."""
    return {"bootstrap_master": {"kubesalt_orchestrate_|-Run the upgrade orchestration_|-x_|-ran": {
        "__id__": "Run the upgrade orchestration", "result": True, "changes": changes,
        "comment": "upgrade: done", "__run_num__": 0}}}  # fmt: skip


class RecordingSystem(System):
    """Writes files for real (under the test's directory); runs no program: records it
    and answers as it would, or fails it when told to."""

    def __init__(self, log, failing=(), changes=None, lock_path=""):
        super().__init__(log)
        self.ran = []
        self.failing = set(failing)
        self.changes = changes
        self.lock_path = lock_path

    def run(self, cmd, what, check=True, env=None, timeout=1800, quiet_output=False):
        self.ran.append(cmd if cmd[0] != SALT_RUN else cmd[:6] + [json.loads(cmd[6][7:])])
        if cmd[0] == SALT_RUN:  # the orchestration takes the lock in its own process
            assert not lock_held(self.lock_path), "the move still holds the lock"
        failed = cmd[-1] in self.failing or cmd[0] in self.failing
        stdout = json.dumps(orchestrated(self.changes)) if cmd[0] == SALT_RUN else ""
        result = subprocess.CompletedProcess(cmd, 1 if failed else 0, stdout, "failed" * failed)
        if check and failed:
            raise bootstrap.BootstrapError(f"{what} failed")
        return result


def lock_held(path) -> bool:
    """Whether some open file holds the lock at `path` (flock: per open file)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class StandIns:
    """bootstrap.sh's phases of the move, each saying it changed something the first time
    it runs and nothing after (as the real ones, idempotent)."""

    def __init__(self):
        self.ran = []
        self.changed_once = {"repository", "salt-install", "salt-minion"}
        self.current = []

    def __call__(self, names):
        return tuple(Phase(name, f"{name} (stand-in)", self._run(name)) for name in names)

    def _run(self, name):
        def run(ctx):
            self.ran.append(name)
            self.current.append(ctx.current.version)
            changed = name in self.changed_once
            self.changed_once.discard(name)
            return PhaseResult(changed)

        return run


@pytest.fixture
def moving(site, tmp_path):
    cluster, backend, sources, old, new = site
    sources = dataclasses.replace(sources, master_config=str(tmp_path / "master.d" / "kubesalt.conf"),
                                  restart_pending=str(tmp_path / "restart-pending"))  # fmt: skip
    found = facts.gather("upgrade", new.root, Rpc(backend.client), sources)
    computed = plan.compute(found)
    assert not computed.refused, computed.problems
    return sources, computed, found, StandIns()


def move_once(moving, tmp_path, failing=(), skip=(), changes=None):
    """One run of the move; `changes`: what the orchestration answers it changed."""
    sources, computed, found, stand_ins = moving
    systems = []

    def system(log):
        answer = {"etcd": {"cp2": {}}} if changes is None else changes
        systems.append(RecordingSystem(log, failing, answer, sources.lock))
        return systems[-1]

    args = argparse.Namespace(log_file=str(tmp_path / "upgrade.log"), verbose=False)
    status = cli.move_cluster("upgrade", computed, found, sources, list(skip), args,
                              borrowed=stand_ins, system_factory=system,
                              addresses=lambda: [HostAddress("eth0", "198.51.100.10", 24)])  # fmt: skip
    return status, systems[0].ran if systems else []


RESTARTS = [["systemctl", "restart", "salt-master"], ["systemctl", "restart", "salt-minion"]]
PILLAR = {"kubernetes_version": "v1.34.1", "nodes": ["cp2", "cp3", "worker1", "bootstrap"]}
ORCHESTRATE = [SALT_RUN, "--out=json", "--log-level=quiet", "state.orchestrate",
               "kubesalt.orchestrate.upgrade", "saltenv=kubesalt-0.2.0", PILLAR]  # fmt: skip


def releases(sources):
    return {n: node.kubernetes_version for n, node in inventory.load(sources.inventory_dir).items()}


def test_the_phases_in_order_bootstrap_sh_s_own_in_the_middle():
    names = [p.name for p in move.phases("upgrade")]
    assert names == ["release", "repository", "salt-install", "salt-minion", "salt-restart",
                     "salt-master", "register", "orchestrate"]  # fmt: skip
    borrowed = {p.name: p.run for p in bootstrap.PHASES}
    assert [p.run for p in move.bootstrap_phases(["repository", "salt-master"])] == [
        borrowed["repository"], borrowed["salt-master"]]  # fmt: skip


def test_the_move_records_moves_the_bootstrap_node_s_salt_then_orchestrates(moving, tmp_path,
                                                                            capsys):  # fmt: skip
    sources, computed, found, stand_ins = moving
    status, ran = move_once(moving, tmp_path)
    assert status == 0
    assert releases(sources) == dict.fromkeys(("bootstrap", "cp2", "cp3", "worker1"), "v1.33.5")
    assert stand_ins.ran == ["repository", "salt-install", "salt-minion", "salt-master"]
    assert set(stand_ins.current) == {"0.2.0"}  # bootstrap.sh's phases work on the target
    master = yaml.safe_load(pathlib.Path(sources.master_config).read_text())
    assert master["module_dirs"] == [f"{computed.target.root}/salt"]
    assert master["interface"] == "198.51.100.10"
    assert ran == [*RESTARTS, ORCHESTRATE]
    assert karchive.load_current(sources.register) == "0.2.0"
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[1/8] release: each node's Kubernetes release recorded where none is ..."
    assert out[1].startswith("      release done in ")
    assert out[1].endswith("(changed; v1.33.5 recorded for bootstrap, cp2, cp3, worker1)")
    assert out[-1].startswith("upgrade.sh: done in ")
    assert "the cluster runs kubesalt 0.2.0 (changes made)" in out[-1]


def test_a_second_run_changes_nothing_and_restarts_nothing(moving, tmp_path, capsys):
    move_once(moving, tmp_path)
    capsys.readouterr()
    status, ran = move_once(moving, tmp_path, changes={})
    assert (status, ran) == (0, [ORCHESTRATE])
    assert "(no changes)" in capsys.readouterr().out.splitlines()[-1]


def test_a_restart_that_failed_is_done_by_the_next_run(moving, tmp_path, capsys):
    sources = moving[0]
    status, ran = move_once(moving, tmp_path, failing=["salt-minion"])
    assert status == 1
    assert ran == RESTARTS
    assert karchive.load_current(sources.register) == "0.1.0"
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == "upgrade.sh: error in phase salt-restart: restart salt-minion failed"
    assert not lock_held(sources.lock)
    assert "run it again once the cause is fixed: it continues where it stopped" in out[-1]
    status, ran = move_once(moving, tmp_path)
    assert (status, ran) == (0, [*RESTARTS, ORCHESTRATE])
    assert karchive.load_current(sources.register) == "0.2.0"


def test_the_move_holds_the_orchestration_lock_until_it_hands_over(moving, tmp_path):
    sources, computed, found, stand_ins = moving
    seen = []
    real_run = stand_ins._run

    def watching(name):
        def run(ctx):
            seen.append(lock_held(sources.lock))
            return real_run(name)(ctx)

        return run

    stand_ins._run = watching
    assert move_once(moving, tmp_path)[0] == 0
    assert seen == [True] * 4  # repository, salt-install, salt-minion, salt-master
    assert not lock_held(sources.lock)


def test_another_orchestration_running_refuses_the_move(moving, tmp_path, capsys):
    sources = moving[0]
    os.makedirs(os.path.dirname(sources.lock), exist_ok=True)
    fd = os.open(sources.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"deploy_node cp4 (PID 7, since 2026-12-05 07:58:00 UTC)\n")
        fcntl.flock(fd, fcntl.LOCK_EX)
        status, ran = move_once(moving, tmp_path)
    finally:
        os.close(fd)
    assert (status, ran, moving[3].ran) == (1, [], [])
    assert capsys.readouterr().out.splitlines()[-1] == (
        "upgrade.sh: error: another kubesalt orchestration is running: deploy_node cp4 (PID 7, "
        f"since 2026-12-05 07:58:00 UTC) (lock {sources.lock}); wait for it to end"
    )
    assert releases(sources) == dict.fromkeys(("bootstrap", "cp2", "cp3", "worker1"))


def test_the_skipped_phases_reach_the_orchestration(moving, tmp_path):
    status, ran = move_once(moving, tmp_path, skip=["drain", "addons"])
    assert ran[-1][-1] == {**PILLAR, "skip_phases": ["drain", "addons"]}


def test_releases_already_recorded_are_kept():
    nodes = {"cp2": inventory.Node("cp2", "198.51.100.11", ("node",), kubernetes_version="v1.34.2"),
             "worker1": inventory.Node("worker1", "198.51.100.21", ("node",))}  # fmt: skip
    recorded = []
    assert move.record_releases(nodes, "v1.33.5", lambda *a: recorded.append(a)) == ["worker1"]
    assert recorded == [("worker1", "v1.33.5")]


# -- the command ---------------------------------------------------------------------------
@pytest.fixture
def as_root(monkeypatch):
    import os

    monkeypatch.setattr(os, "geteuid", lambda: 0)


def test_without_dry_run_an_allowed_plan_moves_the_cluster(site, as_root, capsys):
    cluster, backend, sources, old, new = site
    given = []
    status = cli.main(["upgrade", new.root, "--skip-phases", "drain"],
                      client_factory=lambda: backend.client, sources=sources,
                      mover=lambda *a: given.append(a) or 0)  # fmt: skip
    assert status == 0
    direction, computed, found, where, skip, args = given[0]
    assert (direction, computed.target.version, where, skip) == ("upgrade", "0.2.0", sources,
                                                                 ["drain"])  # fmt: skip
    assert capsys.readouterr().out.endswith("Verdict: the upgrade can proceed\n")


def test_a_refused_plan_moves_nothing(site, as_root):
    cluster, backend, sources, old, new = site
    cluster.kill("cp2")
    moved = []
    assert cli.main(["upgrade", new.root], client_factory=lambda: backend.client,
                    sources=sources, mover=lambda *a: moved.append(a)) == 1  # fmt: skip
    assert moved == []


def test_an_unknown_phase_to_skip_is_refused_before_anything(capsys):
    assert cli.main(["upgrade", "/srv/x", "--skip-phases", "drian"]) == 2
    assert capsys.readouterr().err.startswith(
        "upgrade.sh: --skip-phases: pillar skip_phases: invalid phase name(s) drian for upgrade; "
        "valid phases: preflight, salt, etcd, "
    )
