"""Fixtures for the kubeadm rendering tests: one set of CAs per session (key generation is
the slow part), the reference node and its rendered files."""

import datetime

import pytest
from reference_vectors import ALL_ROLES, config

from kubesalt.kubeadm import pki, render
from kubesalt.kubeadm.model import Node

NOW = datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)
REGISTRY = "https://10.0.0.10:8443"


@pytest.fixture(scope="session")
def authorities():
    """RSA-2048 CAs and SA key, created at NOW."""
    return pki.create_authorities(config(), NOW)


@pytest.fixture
def cfg():
    """The reference configuration (a fresh copy per test)."""
    return config()


@pytest.fixture(scope="session")
def cp1():
    """The reference node: cp1, 10.0.0.10, every role, the init node."""
    return Node("cp1", "10.0.0.10", ALL_ROLES, first=True)


@pytest.fixture(scope="session")
def cp1_files(authorities, cp1):
    """Every file rendered for cp1, issued at NOW."""
    return render.render_node(config(), cp1, authorities, registry=REGISTRY, now=NOW)
