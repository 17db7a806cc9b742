"""tests/conftest.py: the test session's own settings."""

import logging
import pathlib
import subprocess
import sys

import salt._logging
from salt._logging.handlers import DeferredStreamHandler

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_salt_temp_log_handler_is_gone_before_the_tests():
    # Left in place, it writes every buffered warning at exit to pytest's closed capture file:
    # one "--- Logging error ---" per record after pytest's summary.
    assert salt._logging.get_temp_handler() is None
    assert not [h for h in logging.root.handlers if isinstance(h, DeferredStreamHandler)]


def _collected_benchmarks(*options: str) -> tuple[list[str], str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *options, "tests/benchmarks"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    ids = [line for line in result.stdout.splitlines() if line.startswith("tests/benchmarks/")]
    return ids, result.stdout


def test_slow_benchmarks_are_deselected_by_default():
    ids, out = _collected_benchmarks()
    assert "tests/benchmarks/test_grow_times.py::test_grow_and_shrink_times" not in ids
    assert "tests/benchmarks/test_bootstrap_times.py::test_bootstrap_times" in ids
    assert "1 slow benchmark(s) deselected: add --run-slow-benchmarks to run them" in out


def test_run_slow_benchmarks_selects_them():
    ids, out = _collected_benchmarks("--run-slow-benchmarks")
    assert "tests/benchmarks/test_grow_times.py::test_grow_and_shrink_times" in ids
    assert "deselected" not in out
