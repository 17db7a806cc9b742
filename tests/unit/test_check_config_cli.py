"""scripts/kubesalt-check-config: exit codes and output, for every rule."""

import pathlib
import subprocess
import sys

import pytest
import yaml

from tests.unit.test_config import RULE_CASES
from tests.unit.test_scriptenv import fake_checkout

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kubesalt-check-config"


def check(path):
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, timeout=60
    )


def test_the_example_is_valid():
    result = check(REPO / "bootstrap.yaml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{REPO / 'bootstrap.yaml'}: valid: API 198.51.100.100:6443")
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("document", "path"),
    [(case[1], case[2]) for case in RULE_CASES],
    ids=[case[0] for case in RULE_CASES],
)
def test_each_bad_case_exits_1_naming_its_key(tmp_path, document, path):
    config_file = tmp_path / "bootstrap.yaml"
    config_file.write_text(yaml.safe_dump(document))
    result = check(config_file)
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{config_file}: {path}")


def test_one_line_per_problem(tmp_path):
    config_file = tmp_path / "bootstrap.yaml"
    config_file.write_text("apiVersion: x\nkind: y\n")
    result = check(config_file)
    assert result.returncode == 1
    keys = [line.split(": ", 2)[1].split(" ")[0] for line in result.stderr.splitlines()]
    assert keys == ["networks", "apiServer", "ca", "archives", "apiVersion", "kind"]


def test_missing_file_and_bad_usage(tmp_path):
    result = check(tmp_path / "nope.yaml")
    assert result.returncode == 1
    assert "cannot be read: No such file or directory" in result.stderr
    usage = subprocess.run(
        [sys.executable, str(SCRIPT), "a", "b"], capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2
    assert "Usage:" in usage.stderr


def test_runs_from_a_checkout_without_the_package_installed(tmp_path):
    """Before anything is installed: only Python, PyYAML and netaddr; kubesalt from ../src."""
    import netaddr

    deps = tmp_path / "deps"
    deps.mkdir()
    for module in (yaml, netaddr):
        package_dir = pathlib.Path(module.__file__).parent
        (deps / package_dir.name).symlink_to(package_dir)
    # -S: no site-packages, so neither the editable kubesalt nor anything else is found.
    result = subprocess.run(
        [sys.executable, "-S", str(SCRIPT), str(REPO / "bootstrap.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        # No virtualenv to move to (a checkout's .venv would be preferred otherwise).
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(deps), "KUBESALT_VENV": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "valid:" in result.stdout


def test_from_a_checkout_it_runs_in_the_checkouts_virtualenv(tmp_path):
    """The first python3 on PATH lacks netaddr (as after lab.sh up): the script moves to
    the checkout's .venv instead of saying "cannot import netaddr"."""
    checkout = fake_checkout(tmp_path, SCRIPT.name)
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            str(checkout / "scripts" / SCRIPT.name),
            str(REPO / "bootstrap.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "venv python\n"  # once: it never re-runs itself twice
    assert "valid:" in result.stdout


def test_kubesalt_venv_wins_over_the_checkouts(tmp_path):
    checkout = fake_checkout(tmp_path, SCRIPT.name)
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            str(checkout / "scripts" / SCRIPT.name),
            str(REPO / "bootstrap.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "KUBESALT_VENV": str(tmp_path / "none")},
    )
    assert result.returncode == 2  # no python there: the bare python3 has no netaddr
    assert "venv python" not in result.stderr
    assert "cannot import" in result.stderr


LAUGHS = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
    )
    + "apiVersion: *i\n"
)  # 10**9 values once expanded, used where a string is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LAUGHS, "(file): expands to more than 20000 values through its aliases"),
        ("? [a, b]\n: 1\n", "every key is a plain name"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nests lists and mappings more than 32 deep"),
        ("# padding\n" * 200_000, "(file): is 2000000 bytes, more than 1048576"),
    ],
    ids=["aliases", "list-key", "deep", "20mb-like"],
)
def test_a_hostile_file_is_refused_with_one_short_line(tmp_path, text, message):
    """Each ran for minutes, ended in a traceback, or was read whole and accepted: now one
    line, exit 1 (the subprocess's timeout turns a regression into a failure, not a hang)."""
    config_file = tmp_path / "bootstrap.yaml"
    config_file.write_text(text)
    result = check(config_file)
    assert result.returncode == 1, result.stderr[-2000:]
    (line,) = result.stderr.splitlines()
    assert message in line and len(line) < 400, line


def test_a_file_that_uses_an_anchor_and_an_alias_is_still_valid(tmp_path):
    document = yaml.safe_load((REPO / "bootstrap.yaml").read_text())
    networks = document["networks"]
    networks.setdefault("workloadPlane", {})["cidr"] = networks["controlPlane"]["cidr"]
    text = yaml.safe_dump(document)  # the shared list becomes &id001 ... *id001
    assert "&id001" in text and "*id001" in text
    config_file = tmp_path / "bootstrap.yaml"
    config_file.write_text(text)
    result = check(config_file)
    assert result.returncode == 0, result.stderr
