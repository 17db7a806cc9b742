"""scripts/kubesalt_scriptenv.py: which virtualenv python the scripts re-run with, only once,
and a checkout's kubesalt package first on sys.path; then the scripts that use it, run as
operators run them."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
MODULE = REPO / "scripts" / "kubesalt_scriptenv.py"
BOOTSTRAP = REPO / "bootstrap.yaml"
# Each script that uses the module: arguments that take it through to kubesalt, and the exit
# status they give (a missing archive fails verification).
RUNS = {
    "kubesalt-check-config": ([str(BOOTSTRAP)], 0),
    "render-cluster": (["--config", str(BOOTSTRAP)], 0),
    "kubesalt-backup": (["--verify", "/nonexistent/kubesalt-backup-x.tar.gz"], 1),
    "kubesalt-iso": (["--log-file", "/dev/null", "add", "/nonexistent/kubesalt-x.iso"], 1),
}


def load_scriptenv():
    """The module as the scripts import it, leaving no __pycache__ in scripts/."""
    spec = importlib.util.spec_from_file_location("kubesalt_scriptenv", MODULE)
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


scriptenv = load_scriptenv()


def make_venv(path: pathlib.Path, body: str = "exit 0") -> str:
    """A directory with an executable bin/python; returns that python."""
    (path / "bin").mkdir(parents=True)
    python = path / "bin" / "python"
    python.write_text(f"#!/bin/sh\n{body}\n")
    python.chmod(0o755)
    return str(python)


def fake_checkout(tmp_path: pathlib.Path, *scripts: str) -> pathlib.Path:
    """A checkout with these scripts, the module, the real src/ and a .venv whose python says
    on stderr that it was used, then runs this one."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in (*scripts, MODULE.name):
        (checkout / "scripts" / name).write_bytes((REPO / "scripts" / name).read_bytes())
        (checkout / "scripts" / name).chmod(0o755)
    (checkout / "src").symlink_to(REPO / "src")
    make_venv(checkout / ".venv", f'echo "venv python" >&2\nexec {sys.executable} "$@"')
    return checkout


@pytest.fixture
def no_venv_chosen(monkeypatch, tmp_path):
    """Neither $KUBESALT_VENV nor a Salt virtualenv on this machine."""
    monkeypatch.delenv("KUBESALT_VENV", raising=False)
    monkeypatch.setattr(scriptenv, "SALT_VENV", str(tmp_path / "no-salt-venv"))


# -- which python ---------------------------------------------------------------------------


def test_kubesalt_venv_wins_over_the_checkouts_venv(tmp_path, monkeypatch, no_venv_chosen):
    checkout = fake_checkout(tmp_path)
    chosen = make_venv(tmp_path / "chosen")
    monkeypatch.setenv("KUBESALT_VENV", str(tmp_path / "chosen"))
    assert scriptenv.virtualenv_python(str(checkout / "scripts"), True) == chosen


def test_a_kubesalt_venv_without_a_python_means_none_not_another(
    tmp_path, monkeypatch, no_venv_chosen
):
    """The caller chose: the checkout's .venv and the Salt virtualenv are not tried."""
    checkout = fake_checkout(tmp_path)
    make_venv(tmp_path / "no-salt-venv")
    monkeypatch.setenv("KUBESALT_VENV", str(tmp_path / "empty"))
    assert scriptenv.virtualenv_python(str(checkout / "scripts"), True) is None


def test_without_kubesalt_venv_the_checkouts_venv_then_the_salt_venv(
    tmp_path, monkeypatch, no_venv_chosen
):
    checkout = fake_checkout(tmp_path)
    scripts = str(checkout / "scripts")
    salt_python = make_venv(tmp_path / "no-salt-venv")
    monkeypatch.setenv("KUBESALT_VENV", "")  # empty: as if unset
    assert scriptenv.virtualenv_python(scripts, True) == f"{scripts}/../.venv/bin/python"
    (checkout / ".venv" / "bin" / "python").chmod(0o644)  # not executable: not a python
    assert scriptenv.virtualenv_python(scripts, True) == salt_python
    assert scriptenv.virtualenv_python(scripts, False) is None


@pytest.mark.parametrize(
    ("script", "mark"),
    [
        ("kubesalt-backup", "KUBESALT_BACKUP_PYTHON"),
        ("kubesalt-check-config", "KUBESALT_CHECK_CONFIG_PYTHON"),
        ("render-cluster", "KUBESALT_RENDER_CLUSTER_PYTHON"),
    ],
)
def test_each_script_has_its_own_mark(script, mark):
    assert scriptenv.reexec_mark(f"/iso/scripts/{script}") == mark


# -- re-running, once -----------------------------------------------------------------------


@pytest.fixture
def execv(monkeypatch):
    """os.execv recorded instead of run; raises as the real one never returns."""
    calls = []

    def record(path, args):
        calls.append((path, args))
        raise SystemExit("execv")

    monkeypatch.setattr(scriptenv.os, "execv", record)
    return calls


def test_it_re_runs_the_script_with_the_venv_python_and_sets_the_mark(
    tmp_path, monkeypatch, no_venv_chosen, execv
):
    script = str(fake_checkout(tmp_path, "render-cluster") / "scripts" / "render-cluster")
    python = f"{os.path.dirname(script)}/../.venv/bin/python"
    monkeypatch.setenv("KUBESALT_RENDER_CLUSTER_PYTHON", "")  # unset; restored afterwards
    with pytest.raises(SystemExit, match="execv"):
        scriptenv.run_in_virtualenv(script, ["--config", "x"], False)
    assert execv == [(python, [python, script, "--config", "x"])]
    assert os.environ["KUBESALT_RENDER_CLUSTER_PYTHON"] == python


def test_no_second_re_run_when_the_mark_is_set(tmp_path, monkeypatch, no_venv_chosen, execv):
    """A venv python that is a wrapper around another one would be left again and again."""
    script = str(fake_checkout(tmp_path, "render-cluster") / "scripts" / "render-cluster")
    monkeypatch.setenv("KUBESALT_RENDER_CLUSTER_PYTHON", "/some/python")
    scriptenv.run_in_virtualenv(script, [], False)
    assert execv == []


def test_no_re_run_in_the_venv_itself_or_without_one(tmp_path, monkeypatch, execv):
    script = str(tmp_path / "scripts" / "render-cluster")
    monkeypatch.setenv("KUBESALT_RENDER_CLUSTER_PYTHON", "")
    monkeypatch.setenv("KUBESALT_VENV", sys.prefix)
    scriptenv.run_in_virtualenv(script, [], True)
    monkeypatch.setenv("KUBESALT_VENV", str(tmp_path / "none"))
    scriptenv.run_in_virtualenv(script, [], True)
    assert execv == []


# -- the checkout's package -----------------------------------------------------------------


def test_src_goes_first_on_sys_path_only_when_it_holds_kubesalt(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    src = str(tmp_path / "src")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "src").mkdir()
    assert scriptenv.put_checkout_package_first(str(tmp_path / "scripts")) == src
    assert src not in sys.path
    (tmp_path / "src" / "kubesalt").mkdir()
    assert scriptenv.put_checkout_package_first(str(tmp_path / "scripts")) == src
    assert sys.path[0] == src


# -- the scripts ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_script_re_runs_once_in_the_checkouts_venv_and_writes_no_bytecode(tmp_path, name):
    """Started by a python without the dependencies (-S: no site-packages), as after lab.sh
    up; the checkout may be a read-only mount: no __pycache__ next to the scripts."""
    args, status = RUNS[name]
    checkout = fake_checkout(tmp_path, name)
    result = subprocess.run(
        [sys.executable, "-S", str(checkout / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == status, result.stderr
    assert result.stderr.count("venv python") == 1, result.stderr
    assert result.stderr.startswith("venv python\n")
    assert not (checkout / "scripts" / "__pycache__").exists()


def test_a_script_reached_through_a_symlink_finds_the_module(tmp_path):
    """As /usr/local/bin/kubesalt-check-config -> the ISO's scripts/ would be."""
    checkout = fake_checkout(tmp_path, "kubesalt-check-config")
    (tmp_path / "bin").mkdir()
    link = tmp_path / "bin" / "kubesalt-check-config"
    link.symlink_to(checkout / "scripts" / "kubesalt-check-config")
    result = subprocess.run(
        [sys.executable, str(link), str(BOOTSTRAP)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "venv python\n"
    assert "valid:" in result.stdout
