"""The lab tests share one lab, brought up by `scripts/lab.sh up` and removed at the end."""

import os

import pytest

from tests.lab import session


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.fail(
            "the lab tests need root (they boot systemd-nspawn nodes): sudo scripts/test.sh"
        )
    yield session.acquire()
    session.release()
