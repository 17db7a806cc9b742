"""One orchestration at a time (kubesalt.lock): a real flock held by another process."""

import os
import pathlib
import stat
import subprocess
import sys
import textwrap

import pytest

from kubesalt import lock

HOLDER = textwrap.dedent(
    """
    import sys, time
    from kubesalt import lock
    lock.acquire("deploy_node cp2", sys.argv[1])
    print("held", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def path(tmp_path):
    where = str(tmp_path / "run" / "orchestrate.lock")
    yield where
    lock.release(where)


@pytest.fixture
def other_process(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, path], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_orchestration_is_refused_naming_the_running_one(path, other_process):
    with pytest.raises(lock.LockBusy) as err:
        lock.acquire("remove_node cp3", path)
    message = str(err.value)
    assert message.startswith(
        f"another kubesalt orchestration is running: deploy_node cp2 (PID {other_process.pid}, "
    )
    assert message.endswith(f"(lock {path}); wait for it to end")


def test_a_refused_deploy_node_is_told_to_give_its_nodes_to_one_run(path, other_process):
    with pytest.raises(lock.LockBusy) as err:
        lock.acquire("deploy_node cp3", path, lock.TOGETHER_HINT)
    assert str(err.value).endswith('wait for it to end. To add several nodes at once, give them '
                                   'to one deploy_node: pillar=\'{"nodes": ["cp2", "cp3"]}\'')  # fmt: skip


def test_the_lock_is_free_once_the_holder_is_killed(path, other_process):
    other_process.kill()
    other_process.wait()
    assert lock.acquire("remove_node cp3", path) is True
    assert pathlib.Path(path).read_text().startswith("remove_node cp3 (PID ")


def test_the_same_process_takes_it_again_and_releases_it(path):
    assert lock.acquire("deploy_node cp2", path) is True
    assert lock.acquire("deploy_node cp2", path) is False
    assert lock.release(path) is True
    assert lock.release(path) is False
    assert pathlib.Path(path).read_text() == ""


def test_the_lock_file_is_private(path):
    lock.acquire("deploy_node cp2", path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700


def test_a_probe_leaves_a_free_lock_free(path):
    lock.probe("upgrade plan (probing the lock)", path)
    assert pathlib.Path(path).read_text() == ""
    assert lock.acquire("deploy_node cp2", path) is True


def test_a_probe_names_the_running_orchestration(path, other_process):
    with pytest.raises(lock.LockBusy, match=r"running: deploy_node cp2 \(PID "):
        lock.probe("upgrade plan (probing the lock)", path)


def test_a_probe_keeps_the_lock_this_process_holds(path):
    lock.acquire("deploy_node cp2", path)
    lock.probe("upgrade plan (probing the lock)", path)
    assert lock.release(path) is True
