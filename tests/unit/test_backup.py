"""kubesalt.backup and kubesalt.backup_job: what a backup holds, the archive, verify,
retention, the restore plan and its application, with a bootstrap node under tmp_path and
a fake etcdctl."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import io
import json
import os
import tarfile

import pytest

import kubesalt
from kubesalt import backup, lock
from kubesalt.backup import BackupError, RestoreError, VerifyError
from tests.unit.backup_fixtures import (
    BOOTSTRAP_URL,
    CP2_URL,
    NOW,
    SNAPSHOT,
    SSH_KEY,
    FakeEtcd,
    archive_fixture,  # noqa: F401  (the fixture `archive`)
    mode_of,
    node_fixture,  # noqa: F401  (the fixture `node`)
    take,
)


@contextlib.contextmanager
def held_lock(holder: str):
    """The orchestration lock held as another process holds it (its own open file)."""
    os.makedirs(os.path.dirname(lock.LOCK_FILE), exist_ok=True)
    fd = os.open(lock.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, holder.encode())
    try:
        yield
    finally:
        os.close(fd)


def members(path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return {info.name: info for info in tar.getmembers()}


def manifest_of(path) -> dict:
    with tarfile.open(path, "r:gz") as tar:
        return json.loads(tar.extractfile(backup.MANIFEST).read())


def rewrite(path, change) -> None:
    """Rewrite the archive with `change(name, data, info) -> (data, info) or None` applied."""
    with tarfile.open(path, "r:gz") as tar:
        items = [(info, tar.extractfile(info).read()) for info in tar.getmembers()]
    with tarfile.open(path, "w:gz") as tar:
        for info, data in items:
            changed = change(info.name, data, info)
            if changed is None:
                continue
            data, info = changed
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


# -- what goes in ----------------------------------------------------------------------


def test_the_sources_name_every_part_of_the_trust_root():
    from kubesalt import inventory

    nodes = {"cp2": inventory.Node("cp2", "198.51.100.11", ("node",), key="/root/.ssh/k")}
    paths = {source.path: source for source in backup.sources(nodes)}
    for path in ("/etc/kubesalt/bootstrap.yaml", "/etc/kubesalt/archives.yaml",
                 "/etc/kubesalt/nodes", "/etc/kubesalt/minion-keys", "/root/.ssh/k",
                 "/etc/kubernetes/pki/ca.key", "/etc/kubernetes/pki/etcd/ca.key",
                 "/etc/kubernetes/pki/front-proxy-ca.key", "/etc/kubernetes/pki/sa.key",
                 "/etc/salt/pki/master/master.pem", "/etc/salt/pki/master/minions",
                 "/etc/salt/pki/minion/minion.pem"):  # fmt: skip
        assert path in paths, path
    assert "cp2" in paths["/root/.ssh/k"].what
    assert not paths["/root/.ssh/k.pub"].required
    assert not paths["/etc/kubesalt/minion-keys"].required


def test_a_key_only_the_bootstrap_node_names_is_backed_up_when_present():
    # bootstrap.sh declares the bootstrap node with the default key path and never reaches
    # it over SSH: that key may not exist; a key a reached node names must.
    from kubesalt import inventory

    nodes = {
        "bootstrap": inventory.Node("bootstrap", "198.51.100.10", ("ca",), key="/etc/own"),
        "cp2": inventory.Node("cp2", "198.51.100.11", ("node",), key="/root/.ssh/k"),
    }
    paths = {source.path: source for source in backup.sources(nodes, this="bootstrap")}
    assert not paths["/etc/own"].required
    assert paths["/root/.ssh/k"].required
    shared = {n: inventory.Node(n, "198.51.100.1" + str(i), ("ca",), key="/root/.ssh/k")
              for i, n in enumerate(("bootstrap", "cp2"))}  # fmt: skip
    assert {s.path: s for s in backup.sources(shared, this="bootstrap")}["/root/.ssh/k"].required


def test_a_missing_required_file_is_named_with_what_it_is(node):
    from kubesalt import inventory

    os.unlink(node / "etc/kubernetes/pki/etcd/ca.key")
    os.unlink(node / SSH_KEY.lstrip("/"))
    with pytest.raises(BackupError) as info:
        backup.collect(backup.sources(inventory.load(str(node / "etc/kubesalt/nodes"))), str(node))
    message = str(info.value)
    assert "2 required file(s) missing" in message
    assert "/etc/kubernetes/pki/etcd/ca.key (the etcd-ca private key): no such file" in message
    assert f"{SSH_KEY} (the SSH key (ssh.key) of node(s) bootstrap, cp2, cp3, worker1)" in message


# -- the archive -----------------------------------------------------------------------


def test_a_backup_is_one_0600_archive_in_a_0700_directory_holding_everything(node, tmp_path):
    result = take(node, tmp_path)
    path = result["path"]
    assert os.path.basename(path) == "kubesalt-backup-20261204T020000Z.tar.gz"
    assert mode_of(path) == 0o600
    assert mode_of(tmp_path / "backups") == 0o700
    assert os.listdir(tmp_path / "backups") == [os.path.basename(path)]  # no temporary left
    names = members(path)
    assert list(names)[0] == backup.MANIFEST
    for path_on_node in ("/etc/kubesalt/bootstrap.yaml", "/etc/kubesalt/nodes/cp2.yaml",
                         "/etc/kubesalt/nodes/known_hosts", SSH_KEY, SSH_KEY + ".pub",
                         "/etc/kubesalt/minion-keys/cp2.pub", "/etc/kubernetes/pki/ca.key",
                         "/etc/kubernetes/pki/sa.pub", "/etc/salt/pki/master/master.pem",
                         "/etc/salt/pki/master/minions/worker1",
                         "/etc/salt/pki/minion/minion.pub"):  # fmt: skip
        assert backup.member_name(path_on_node) in names, path_on_node
    # Leaf certificates are issued again by the states from the same CAs: not backed up.
    assert backup.member_name("/etc/kubernetes/pki/apiserver-etcd-client.key") not in names
    assert names[backup.member_name("/etc/salt/pki/master/master.pem")].mode == 0o400
    data = manifest_of(path)
    assert data["product"] == {"name": "kubesalt", "version": kubesalt.__version__}
    assert (data["created"], data["host"], data["archives"]) == ("2026-12-04T02:00:00Z",
                                                                  "bootstrap", ["0.1.0"])  # fmt: skip
    entry = next(f for f in data["files"] if f["path"] == "/etc/kubernetes/pki/ca.key")
    assert entry["mode"] == "0600"
    assert entry["sha256"] == hashlib.sha256(b"ca key\n").hexdigest()
    directories = {d["path"]: d["mode"] for d in data["directories"]}
    assert directories["/etc/salt/pki/master"] == "0700"
    assert directories["/etc/kubesalt/nodes"] == "0700"
    etcd = data["etcd"]
    assert (etcd["member"], etcd["member_id"], etcd["endpoint"]) == (
        "bootstrap",
        "b",
        BOOTSTRAP_URL,
    )
    assert (etcd["revision"], etcd["hash"], etcd["size"]) == (42, 1234, len(SNAPSHOT))
    assert etcd["sha256"] == hashlib.sha256(SNAPSHOT).hexdigest()
    assert [m["name"] for m in etcd["members"]] == ["bootstrap", "cp2", "cp3"]
    assert result["snapshot_check"].startswith("sha256 as recorded, and etcdutl snapshot status")


def test_the_snapshot_comes_from_the_next_member_when_one_is_unhealthy(node, tmp_path):
    etcd = FakeEtcd(healthy={CP2_URL})
    result = take(node, tmp_path, etcd)
    assert (result["etcd"]["member"], result["etcd"]["endpoint"]) == ("cp2", CP2_URL)
    saves = [call for call in etcd.calls if "save" in call]
    assert len(saves) == 1 and f"--endpoints={CP2_URL}" in saves[0]
    assert "--cert=" + str(node / "etc/kubernetes/pki/apiserver-etcd-client.crt") in saves[0]
    asked = [c[1] for c in etcd.calls if "health" in c]
    assert asked == [f"--endpoints={BOOTSTRAP_URL}", f"--endpoints={CP2_URL}"]


def test_no_snapshot_names_each_member_and_why_and_writes_nothing(node, tmp_path):
    with pytest.raises(BackupError) as info:
        take(node, tmp_path, FakeEtcd(healthy={CP2_URL}, save_fails=True))
    message = str(info.value)
    assert "no etcd member gave a snapshot (3 asked)" in message
    assert f"bootstrap ({BOOTSTRAP_URL}): not healthy: " in message
    assert f"cp2 ({CP2_URL}): snapshot save failed: rpc error: snapshot failed" in message
    assert "cp3 (https://198.51.100.12:2379): not healthy" in message
    assert os.listdir(tmp_path / "backups") == []


def test_a_backup_waits_for_no_orchestration(node, tmp_path):
    with held_lock("deploy_node cp4 (PID 7)"), pytest.raises(lock.LockBusy, match="cp4"):
        take(node, tmp_path)
    assert not (tmp_path / "backups").exists()


def test_an_existing_backup_directory_is_narrowed_to_0700(node, tmp_path):
    (tmp_path / "backups").mkdir(mode=0o755)
    os.chmod(tmp_path / "backups", 0o755)
    take(node, tmp_path)
    assert mode_of(tmp_path / "backups") == 0o700


def test_a_failed_write_leaves_no_partial_archive(tmp_path):
    out = tmp_path / "out"
    data = {"created": "2026-12-04T02:00:00Z"}
    with pytest.raises(FileNotFoundError):
        backup.write_archive(str(out), backup.archive_name(NOW), data, [], str(tmp_path / "none"))
    assert os.listdir(out) == []


# -- retention --------------------------------------------------------------------------


def test_retention_keeps_the_newest_archives_and_nothing_else_is_touched(node, tmp_path):
    out = tmp_path / "backups"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "kubesalt-backup-manual.tar.gz").write_text("mine too")
    results = [take(node, tmp_path, now=NOW + datetime.timedelta(days=day), keep=3)
               for day in range(5)]  # fmt: skip
    kept = sorted(os.listdir(out))
    assert kept == ["kubesalt-backup-20261206T020000Z.tar.gz",
                    "kubesalt-backup-20261207T020000Z.tar.gz",
                    "kubesalt-backup-20261208T020000Z.tar.gz",
                    "kubesalt-backup-manual.tar.gz", "notes.txt"]  # fmt: skip
    assert results[3]["pruned"] == [str(out / "kubesalt-backup-20261204T020000Z.tar.gz")]


@pytest.mark.parametrize("value", [0, -1, "x", "2.5", True, None])
def test_keep_must_be_a_whole_number_of_at_least_one(value):
    with pytest.raises(BackupError, match="a whole number of at least 1"):
        backup.check_keep(value)


def test_to_prune_orders_by_name_which_is_time():
    names = ["kubesalt-backup-20261205T000000Z.tar.gz", "kubesalt-backup-20261204T000000Z.tar.gz"]
    assert backup.to_prune(names, 1) == ["kubesalt-backup-20261204T000000Z.tar.gz"]
    assert backup.to_prune(names, 2) == []


def test_an_archive_name_gives_back_its_time():
    moment = datetime.datetime(2026, 12, 4, 14, 5, 9, tzinfo=datetime.UTC)
    assert backup.archive_name(moment) == "kubesalt-backup-20261204T140509Z.tar.gz"
    assert backup.archive_time("kubesalt-backup-20261204T140509Z.tar.gz") == moment


# -- verify -----------------------------------------------------------------------------


def test_a_good_archive_verifies(archive):
    verified = backup.verify(archive)
    assert verified.files == len(manifest_of(archive)["files"])
    assert verified.snapshot_check.startswith("sha256 as recorded at save (no etcdutl")


def test_a_changed_file_is_named(archive):
    key = backup.member_name("/etc/kubernetes/pki/ca.key")
    rewrite(archive, lambda name, data, info: (b"another CA key\n" if name == key else data, info))
    with pytest.raises(VerifyError) as info:
        backup.verify(archive)
    new, old = (hashlib.sha256(text).hexdigest() for text in (b"another CA key\n", b"ca key\n"))
    assert info.value.problems == [f"{key}: sha256 {new} is not the {old} recorded"]


def test_a_changed_mode_an_extra_and_a_missing_member_are_named(archive):
    pem = backup.member_name("/etc/salt/pki/master/master.pem")
    gone = backup.member_name("/etc/kubesalt/bootstrap.yaml")

    def change(name, data, info):
        if name == gone:
            return None
        if name == pem:
            info.mode = 0o644
        return data, info

    rewrite(archive, change)
    with tarfile.open(archive, "r:gz") as tar:
        items = [(i, tar.extractfile(i).read()) for i in tar.getmembers()]
    with tarfile.open(archive, "w:gz") as tar:
        for info, data in items:
            tar.addfile(info, io.BytesIO(data))
        extra = tarfile.TarInfo("files/etc/cron.d/evil")
        extra.size = 3
        tar.addfile(extra, io.BytesIO(b"bad"))
    with pytest.raises(VerifyError) as info:
        backup.verify(archive)
    assert sorted(info.value.problems) == sorted([
        f"{pem}: mode 0644 is not the 0400 recorded",
        "files/etc/cron.d/evil: in the archive but not in manifest.json",
        f"{gone}: listed in manifest.json but missing from the archive",
    ])  # fmt: skip


def test_a_changed_snapshot_fails_its_sha256(archive):
    rewrite(archive, lambda name, data, info: (data + b"x" if name == backup.SNAPSHOT_MEMBER
                                               else data, info))  # fmt: skip
    with pytest.raises(VerifyError, match="the snapshot was changed or damaged"):
        backup.verify(archive)


def test_etcds_own_reading_of_the_snapshot_is_compared_with_the_one_at_save(archive):
    later = FakeEtcd(revision=43)
    with pytest.raises(VerifyError) as info:
        backup.verify(archive, lambda path: {"tool": "etcdctl", **json.loads(
            later(["etcdctl", "snapshot", "status", path], 10).stdout)})  # fmt: skip
    assert info.value.problems == [
        "etcd/snapshot.db: etcdctl snapshot status gives revision 43, not the 42 recorded at save"
    ]
    failing = {"tool": "etcdutl", "error": "snapshot file integrity check failed"}
    with pytest.raises(VerifyError, match="etcdutl snapshot status failed: snapshot file"):
        backup.verify(archive, lambda path: failing)


def test_an_inconsistent_manifest_is_refused_before_any_member_is_read(archive):
    def change(name, data, info):
        if name != backup.MANIFEST:
            return data, info
        doc = json.loads(data)
        doc["files"].append(dict(doc["files"][0]))
        doc["files"][1]["path"] = "/etc/../etc/passwd"
        doc["files"][2]["mode"] = "rw"
        doc["etcd"].pop("sha256")
        return json.dumps(doc).encode(), info

    rewrite(archive, change)
    with pytest.raises(VerifyError) as info:
        backup.verify(archive)
    problems = "\n".join(info.value.problems)
    assert "is listed twice" in problems
    assert "path '/etc/../etc/passwd' is not a normalized absolute path" in problems
    assert "mode 'rw' is not an octal mode" in problems
    assert "etcd.sha256 None is not a sha256" in problems


def test_a_file_that_is_no_backup_is_refused(tmp_path):
    other = tmp_path / "x.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("hello"), io.BytesIO(b""))
    with pytest.raises(VerifyError, match="no manifest.json: this is not a kubesalt backup"):
        backup.verify(str(other))
    (tmp_path / "plain").write_text("text")
    with pytest.raises(VerifyError, match="cannot be read as a gzip'd tar"):
        backup.verify(str(tmp_path / "plain"))


def test_a_link_member_is_refused(archive):
    with tarfile.open(archive, "r:gz") as tar:
        items = [(i, tar.extractfile(i).read()) for i in tar.getmembers()]
    with tarfile.open(archive, "w:gz") as tar:
        for info, data in items:
            if info.name == backup.member_name("/etc/kubesalt/bootstrap.yaml"):
                info = tarfile.TarInfo(info.name)
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
                tar.addfile(info)
                continue
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(VerifyError, match="not a regular file"):
        backup.verify(archive)


# -- restore ----------------------------------------------------------------------------


def test_a_restore_puts_every_file_back_with_its_mode_and_is_idempotent(archive, node, tmp_path):
    fresh = tmp_path / "fresh"
    plan = backup.restore_plan(archive)
    assert [a.kind for a in plan[:3]] == ["directory"] * 3
    changed = backup.apply_restore(plan, str(fresh))
    data = manifest_of(archive)
    assert sorted(p for p in changed if p in {f["path"] for f in data["files"]}) == sorted(
        f["path"] for f in data["files"]
    )
    for item in data["files"]:
        restored = fresh / item["path"].lstrip("/")
        assert restored.read_bytes() == (node / item["path"].lstrip("/")).read_bytes()
        assert f"{mode_of(restored):04o}" == item["mode"], item["path"]
    assert mode_of(fresh / "etc/salt/pki/master") == 0o700
    assert mode_of(fresh / "etc/kubesalt/nodes") == 0o700
    assert backup.apply_restore(plan, str(fresh)) == []
    assert not [n for n in os.listdir(fresh / "etc/kubesalt/nodes") if n.startswith(".")]


def test_a_restore_refuses_to_replace_another_content_unless_told(archive, tmp_path):
    fresh = tmp_path / "fresh"
    (fresh / "etc/kubernetes/pki").mkdir(parents=True)
    (fresh / "etc/kubernetes/pki/ca.key").write_bytes(b"a newer CA key\n")
    plan = backup.restore_plan(archive)
    with pytest.raises(RestoreError) as info:
        backup.apply_restore(plan, str(fresh))
    assert "1 file(s) exist under" in str(info.value)
    assert "  /etc/kubernetes/pki/ca.key" in str(info.value)
    assert not (fresh / "etc/kubesalt").exists()  # nothing written
    backup.apply_restore(plan, str(fresh), overwrite=True)
    assert (fresh / "etc/kubernetes/pki/ca.key").read_bytes() == b"ca key\n"


def test_a_restore_refuses_an_archive_that_fails_verification(archive):
    rewrite(archive, lambda name, data, info: (b"x" if name.endswith("sa.key") else data, info))
    with pytest.raises(RestoreError, match="refusing to restore: .* fails verification"):
        backup.restore_plan(archive)


def test_a_restore_refuses_another_product_version_unless_its_archive_is_present(archive):
    with pytest.raises(RestoreError) as info:
        backup.restore_plan(archive, product_version="0.2.0")
    assert str(info.value).startswith(
        f"refusing to restore a kubesalt {kubesalt.__version__} backup with kubesalt 0.2.0"
    )
    assert backup.restore_plan(archive, product_version="0.2.0",
                               available=[kubesalt.__version__, "0.2.0"])  # fmt: skip


def test_actions_keep_file_contents_out_of_their_repr(archive):
    plan = backup.restore_plan(archive)
    key = next(a for a in plan if a.path == "/etc/kubernetes/pki/ca.key")
    assert "ca key" not in repr(key)
    owner = f"{key.uid}:{key.gid}"
    assert key.describe() == f"file /etc/kubernetes/pki/ca.key (mode 0600, owner {owner})"


def test_the_restored_node_is_the_ca_minion_as_the_archive_declares_it(archive):
    node = backup.restored_node(backup.restore_plan(archive))
    assert (node.name, node.host) == ("bootstrap", "198.51.100.10")


def test_an_archive_without_the_ca_minion_declared_is_refused(archive):
    declared = f"{backup.services.INVENTORY_DIR}/bootstrap.yaml"
    plan = [a for a in backup.restore_plan(archive) if a.path != declared]
    with pytest.raises(RestoreError, match=r"no usable bootstrap.yaml .*KeyError: '/etc/kubes"):
        backup.restored_node(plan)
