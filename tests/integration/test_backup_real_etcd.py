"""A backup from a real etcd (Debian's etcd-server 3.4 and etcdctl, TLS with the rendered
certificates), checked by etcdctl itself; a tampered archive fails verify; restore-etcd is
refused while the member answers and, once it is down, restores the snapshot into a data
directory the same etcd command starts from, with the keys written before the backup.

The etcd runs in a network namespace (tests/integration/etcd_cluster.py); every etcdctl
of the backup runs there too, through the `run` function the code takes. What this does
not prove: the kubelet stopping and starting the static pod (the test stops and starts the
process itself), a cluster of several members, the copies over SSH (the lab's part).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import io
import json
import tarfile

import pytest

from kubesalt import backup, backup_job, lock
from kubesalt import backup_etcd as betcd
from kubesalt.kubeadm import pki
from kubesalt.kubeadm.files import write_tree
from kubesalt.kubeadm.model import Node
from tests.integration.etcd_cluster import CP, EtcdNode, config
from tests.integration.netns import Namespaces, ip
from tests.unit.backup_fixtures import bootstrap_node
from tests.unit.test_config import BASE

pytestmark = pytest.mark.integration

NOW = datetime.datetime(2026, 12, 4, 2, 0, 0, tzinfo=datetime.UTC)


def in_namespace(ns: str):
    """`run` for the backup code: each program inside the etcd's network namespace."""

    def run(argv, timeout, env=None, stdin=None):
        return betcd.run_program(["ip", "netns", "exec", ns, *argv], timeout, env, stdin)

    return run


def rewrite(path, change) -> None:
    with tarfile.open(path, "r:gz") as tar:
        items = [(info, tar.extractfile(info).read()) for info in tar.getmembers()]
    with tarfile.open(path, "w:gz") as tar:
        for info, data in items:
            data = change(info.name, data)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def etcd_node(tmp_path, monkeypatch):
    """cp1 (10.0.0.10): the bootstrap node's files and its real etcd, running."""
    monkeypatch.setattr(lock, "LOCK_FILE", str(tmp_path / "orchestrate.lock"))
    cfg = config("ECDSA-P256")
    authorities = pki.create_authorities(cfg)
    root = tmp_path / "cp1"
    with Namespaces("cp1") as ns:
        ip("addr", "add", "10.0.0.10/32", "dev", "lo", netns=ns["cp1"])
        node = EtcdNode(cfg, Node("cp1", "10.0.0.10", CP, first=True), authorities, root,
                        ns["cp1"])  # fmt: skip
        write_tree(authorities.files(node.layout.pki_dir), "/")
        document = copy.deepcopy(BASE)
        document["networks"]["controlPlane"]["cidr"] = "10.0.0.0/24"
        document["apiServer"]["host"] = "10.0.0.100"
        document["ca"]["minion"] = "cp1"
        bootstrap_node(root, {"cp1": ("10.0.0.10", sorted(CP))}, document, stand_in_pki=False)
        node.start()
        try:
            node.wait_healthy()
            yield node
        finally:
            node.stop()


def test_a_real_snapshot_is_saved_verified_and_restored(etcd_node, tmp_path):
    run = in_namespace(etcd_node.ns)
    for index in range(20):
        put = etcd_node.etcdctl("put", f"/registry/test/{index}", f"value {index}",
                                client="apiserver-etcd-client")  # fmt: skip
        assert put.returncode == 0, put.stderr
    result = backup_job.run_backup(out=str(tmp_path / "backups"), copy=False,
                                   root=str(etcd_node.layout.root), run=run, tool="etcdctl",
                                   now=NOW)  # fmt: skip
    path = result["path"]
    assert result["etcd"]["member"] == "cp1"
    assert result["etcd"]["endpoint"] == "https://10.0.0.10:2379"
    assert result["etcd"]["revision"] >= 21
    assert result["snapshot_check"].startswith("sha256 as recorded, and etcdctl snapshot status")
    status = betcd.snapshot_status_with(run, "etcdctl")
    verified = backup.verify(path, status)
    assert verified.manifest["etcd"]["members"][0]["name"] == "cp1"

    # restore-etcd is refused while the member answers healthy.
    with pytest.raises(betcd.QuorumExists, match="https://10.0.0.10:2379 answer"):
        betcd.restore_etcd(verified, "unused.db", etcd_node.layout, run, "etcdctl", NOW,
                           log=lambda line: None)  # fmt: skip

    # Lost: the member is down. The snapshot becomes its data directory again.
    put = etcd_node.etcdctl("put", "/registry/test/after-backup", "lost",
                            client="apiserver-etcd-client")  # fmt: skip
    assert put.returncode == 0, put.stderr
    etcd_node.stop()
    scratch = tmp_path / "scratch"
    scratch.mkdir(mode=0o700)
    snapshot = betcd.extract_snapshot(path, str(scratch))
    lines = []
    after = betcd.restore_etcd(verified, snapshot, etcd_node.layout, run, "etcdctl", NOW,
                               log=lines.append)  # fmt: skip
    assert "https://10.0.0.10:2379 does not answer healthy" in lines[0]
    assert after[0].startswith("wait for etcd on cp1")
    etcd_node.start()
    etcd_node.wait_healthy()
    got = etcd_node.etcdctl("get", "--prefix", "/registry/test/", "--keys-only", "-w", "json",
                            client="apiserver-etcd-client")  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["count"] == 20  # the write after the backup is gone


def test_a_tampered_archive_fails_verify(etcd_node, tmp_path):
    run = in_namespace(etcd_node.ns)
    path = backup_job.run_backup(out=str(tmp_path / "backups"), copy=False,
                                 root=str(etcd_node.layout.root), run=run, tool="etcdctl",
                                 now=NOW)["path"]  # fmt: skip
    status = betcd.snapshot_status_with(run, "etcdctl")
    ca_key = backup.member_name("/etc/kubernetes/pki/ca.key")
    rewrite(path, lambda name, data: data + b"\n" if name == ca_key else data)
    with pytest.raises(backup.VerifyError) as info:
        backup.verify(path, status)
    assert [p.split(":")[0] for p in info.value.problems] == [ca_key]

    # A damaged snapshot whose manifest was changed to match: etcdctl's own reading fails.
    fresh = backup_job.run_backup(out=str(tmp_path / "again"), copy=False,
                                  root=str(etcd_node.layout.root), run=run, tool="etcdctl",
                                  now=NOW)["path"]  # fmt: skip
    damaged = {}

    def damage_snapshot(name, data):
        if name == backup.SNAPSHOT_MEMBER:
            # bbolt's two meta pages (the first 2 x 4096 bytes) overwritten: a page in the
            # middle may be a free one, which no reader looks at.
            damaged["data"] = b"\xff" * 8192 + data[8192:]
            return damaged["data"]
        return data

    rewrite(fresh, damage_snapshot)

    def matching_manifest(name, data):
        if name != backup.MANIFEST:
            return data
        document = json.loads(data)
        document["etcd"]["sha256"] = hashlib.sha256(damaged["data"]).hexdigest()
        return json.dumps(document).encode()

    rewrite(fresh, matching_manifest)
    with pytest.raises(backup.VerifyError) as info:
        backup.verify(fresh, status)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("etcd/snapshot.db: etcdctl snapshot status failed: ")
