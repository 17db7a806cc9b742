"""Fixtures shared by the integration tests of archives (bootstrap.sh, kubesalt-iso)."""

from __future__ import annotations

import pytest

from kubesalt_isobuild.signing import Signer


@pytest.fixture(scope="module")
def signer():
    """A new archive key (a temporary GnuPG home), for the trees a module signs."""
    key = Signer()
    key.generate()
    yield key
    key.close()
