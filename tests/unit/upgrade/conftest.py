"""The upgrade tests' site: the fake cluster of the orchestration tests, two archives
registered, the bootstrap node's files under tmp_path."""

import shutil

import pytest

from kubesalt.upgrade import facts
from tests.unit.orchestrate.fakes import Cluster, FakeBackend
from tests.unit.upgrade.archive_fixtures import ROOT, make_archive, write_register

NODES = ("bootstrap", "cp2", "cp3", "worker1")


@pytest.fixture(autouse=True)
def silent_nodes_asked_once(monkeypatch):
    """A silent node is named at once here (facts.NODE_WAIT: the real plan asks again for a
    minute; test_upgrade_facts checks that wait with a fake clock)."""
    monkeypatch.setattr(facts, "NODE_WAIT", 0)


@pytest.fixture
def site(tmp_path):
    """A converged four-node cluster on 0.1.0, and 0.2.0 registered beside it."""
    cluster = Cluster(deployed=NODES)
    backend = FakeBackend(cluster, tmp_path)
    old = make_archive(tmp_path / "isos", "0.1.0")
    new = make_archive(tmp_path / "isos", "0.2.0", kubernetes="v1.34.1", etcd="3.5.24-0")
    shutil.copyfile(ROOT / "bootstrap.yaml", tmp_path / "bootstrap.yaml")
    sources = facts.Sources(
        register=write_register(tmp_path / "archives.yaml", [old, new]),
        config=str(tmp_path / "bootstrap.yaml"),
        inventory_dir=backend.inventory_dir,
        lock=str(tmp_path / "run" / "orchestrate.lock"),
        backup_dir=str(tmp_path / "backups"),
        backup_schedule=str(tmp_path / "kubesalt-backup-schedule.conf"),
    )
    return cluster, backend, sources, old, new
