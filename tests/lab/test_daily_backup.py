"""The bootstrap node's backup on the lab (issue 14, item 1): `kubesalt-backup` from the
extracted ISO writes one 0600 archive holding the configuration, the inventory, the CA and
master keys and an etcd snapshot of the lab's real etcd; `--verify` accepts it and refuses a
tampered copy; every other control-plane node holds a root-only copy; the daily schedule
item is in place. Runs after test_cluster.py (file order), before a node is replaced."""

from __future__ import annotations

import re

import pytest

from kubesalt_lab import model

pytestmark = pytest.mark.lab

BACKUP = f"{model.ARCHIVE_DIR}/scripts/kubesalt-backup"
WRITTEN = re.compile(r"backup written: (?P<path>/\S+\.tar\.gz) ")
COPIES = [n.name for n in model.NODES if "control-plane" in n.roles and not n.bootstrap]


@pytest.fixture(scope="module")
def archive(lab) -> str:
    result = lab.run("bootstrap", BACKUP, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = WRITTEN.search(result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    print(result.stdout.strip())
    return found["path"]


def test_the_archive_is_root_only_and_verifies(lab, archive):
    host = lab.host("bootstrap")
    assert host.file(archive).mode == 0o600
    assert host.file("/var/lib/kubesalt/backups").mode == 0o700
    verified = lab.run("bootstrap", BACKUP, "--verify", archive, timeout=300)
    assert "snapshot" in verified.stdout + verified.stderr
    listing = lab.run("bootstrap", "tar", "-tzf", archive).stdout
    for member in ("etc/kubesalt/bootstrap.yaml", "etc/kubernetes/pki/ca.key",
                   "etc/salt/pki/master/master.pem"):  # fmt: skip
        assert member in listing, listing


def test_a_tampered_copy_fails_verification(lab, archive):
    # The same members, in the same order, bootstrap.yaml's content changed.
    script = (
        f"set -e; a={archive}; d=$(mktemp -d); tar -xzf $a -C $d; "
        "f=$(tar -tzf $a | grep 'etc/kubesalt/bootstrap.yaml$'); echo x >> \"$d/$f\"; "
        "(cd $d && tar -czf /root/tampered.tar.gz --no-recursion $(tar -tzf $a)); rm -rf $d"
    )
    lab.run("bootstrap", "sh", "-c", script)
    result = lab.run("bootstrap", BACKUP, "--verify", "/root/tampered.tar.gz", check=False)
    lab.run("bootstrap", "rm", "-f", "/root/tampered.tar.gz")
    assert result.returncode == 1, result.stdout + result.stderr
    said = result.stdout + result.stderr
    assert "bootstrap.yaml" in said, said
    assert "/etc/kubesalt/nodes" not in said, said  # only the changed member is named


@pytest.mark.parametrize("node", COPIES)
def test_every_other_control_plane_node_holds_a_root_only_copy(lab, archive, node):
    host = lab.host(node)  # the same path on every node
    assert host.file(archive).mode == 0o600
    assert host.file("/var/lib/kubesalt/backups").mode == 0o700
    mine = lab.run("bootstrap", "sha256sum", archive).stdout.split()[0]
    assert lab.run(node, "sha256sum", archive).stdout.split()[0] == mine


def test_the_daily_backup_is_scheduled_on_the_bootstrap_node(lab):
    items = lab.run("bootstrap", "salt-call", "--local", "--out=json", "schedule.list",
                    "return_yaml=False").stdout  # fmt: skip
    assert "kubesalt-backup" in items and "kubesalt-renew-certificates" in items, items
