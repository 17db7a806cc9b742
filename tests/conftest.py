"""Test-wide settings.

pytest-salt-factories starts an event listener and a log server that bind 0.0.0.0
by default; tests here listen only on loopback (or inside namespaces they create).

Salt's temporary log handler is removed before the session: see `_remove_salt_temp_handler`.

Benchmarks marked `slow_benchmark` (they redeploy lab nodes only to measure times) are
deselected unless pytest is given --run-slow-benchmarks (docs/benchmarks.md).
"""

import shutil
import tempfile

import pytest
from saltfactories.plugins.event_listener import EventListener

RUN_SLOW_BENCHMARKS = "--run-slow-benchmarks"
SLOW_BENCHMARKS_DESELECTED = pytest.StashKey[int]()


def pytest_addoption(parser):
    parser.addoption(
        RUN_SLOW_BENCHMARKS,
        action="store_true",
        help="also run the benchmarks marked slow_benchmark: they redeploy lab nodes only to "
        "measure times, so CI leaves them out (docs/benchmarks.md)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption(RUN_SLOW_BENCHMARKS):
        return
    kept, slow = [], []
    for item in items:
        (slow if item.get_closest_marker("slow_benchmark") else kept).append(item)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = kept
    config.stash[SLOW_BENCHMARKS_DESELECTED] = len(slow)


def pytest_report_collectionfinish(config):
    deselected = config.stash.get(SLOW_BENCHMARKS_DESELECTED, 0)
    if deselected:
        return f"{deselected} slow benchmark(s) deselected: add {RUN_SLOW_BENCHMARKS} to run them"
    return None


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    # Runs after the plugin created its log server, before the session starts it.
    log_server = config.pluginmanager.get_plugin("saltfactories-log-server")
    if log_server is not None:
        log_server.log_host = "127.0.0.1"
    _remove_salt_temp_handler()


def _remove_salt_temp_handler():
    """Remove the DeferredStreamHandler that importing Salt puts on the root logger.

    salt-factories imports Salt in its pytest_load_initial_conftests hook, while pytest captures
    stderr; Salt's import then adds a handler that keeps every warning (the daemons' ones come
    in through the log server) and writes them at interpreter exit to that stderr: pytest's
    capture file, closed by then. Each record became a "--- Logging error --- ValueError: I/O
    operation on closed file" after pytest's summary. Salt's own commands remove the handler
    once their logging is set up; so do we, and pytest's log capture shows the records with the
    test that logged them.
    """
    import salt._logging

    salt._logging.shutdown_temp_handler()


@pytest.fixture(scope="session")
def event_listener():
    """The salt-factories event listener, bound to loopback."""
    listener = EventListener()
    listener.host = "127.0.0.1"
    listener.address = f"tcp://{listener.host}:{listener.port}"
    with listener:
        yield listener


@pytest.fixture(scope="session")
def salt_factories_config():
    """Short root_dir (AF_UNIX path limits), one per session; fast teardown."""
    root = tempfile.mkdtemp(prefix="ksf", dir="/tmp")
    yield {"root_dir": root, "slow_stop": False}
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def lab():
    """The lab (scripts/lab.sh up), shared by tests/lab and tests/benchmarks: it comes up once
    per session (about 8 minutes for four nodes) and goes down at the end."""
    import os

    from tests.lab import session

    if os.geteuid() != 0:
        pytest.fail("the lab needs root (it boots systemd-nspawn nodes): sudo scripts/test.sh")
    yield session.acquire()
    session.release()
