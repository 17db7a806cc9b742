"""A bootstrap node's files under a temporary root, and a fake etcdctl, for the backup tests."""

from __future__ import annotations

import datetime
import json
import os
import stat
import subprocess

import pytest
import yaml

from kubesalt import backup_job, etcd, inventory, lock, roles
from kubesalt.bootstrap import archive as karchive
from kubesalt.bootstrap import services
from kubesalt.kubeadm.model import CA_FILES
from tests.unit.test_config import BASE

CONTROL_PLANE = (roles.CONTROL_PLANE, roles.ETCD, roles.NODE)
NODES = {  # name: (control-plane IP, roles)
    "bootstrap": ("198.51.100.10", roles.BOOTSTRAP_NODE_ROLES),
    "cp2": ("198.51.100.11", CONTROL_PLANE),
    "cp3": ("198.51.100.12", CONTROL_PLANE),
    "worker1": ("198.51.100.20", (roles.NODE,)),
}
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
SSH_KEY = "/etc/kubesalt/ssh/id_ed25519"
SNAPSHOT = b"etcd snapshot bytes " * 100


def write(root, path: str, data: bytes, mode: int = 0o600) -> None:
    target = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as stream:
        stream.write(data)
    os.chmod(target, mode)


def bootstrap_node(root, nodes=None, config=None, stand_in_pki: bool = True) -> None:
    """Every file a backup reads, as a bootstrapped node has it: `nodes` ({name: (IP,
    roles)}, default NODES) declared, `config` (default BASE) as bootstrap.yaml. With
    `stand_in_pki`, the CAs and client certificates are stand-in bytes (a backup copies
    keys, it never parses them); without, the caller wrote real ones."""
    nodes = NODES if nodes is None else nodes
    config = BASE if config is None else config
    write(root, services.CONFIG_PATH, yaml.safe_dump(config).encode())
    register = karchive.register_text(
        [karchive.Archive("/srv/kubesalt.iso", "/srv/kubesalt/x", "iso", "kubesalt", "0.1.0")]
    )
    write(root, karchive.REGISTER, register.encode(), 0o644)
    nodes_dir = os.path.join(str(root), services.INVENTORY_DIR.lstrip("/"))
    cidr = config["networks"]["controlPlane"]["cidr"]
    cfg = {"ca": config["ca"], "networks": {"controlPlane": {"cidr": [cidr]}}}
    for name, (ip, node_roles) in nodes.items():
        node = inventory.Node(name, ip, tuple(node_roles), key=SSH_KEY, host_keys=(HOST_KEY,))
        inventory.declare(node, cfg, nodes_dir)
    write(root, SSH_KEY, b"-----BEGIN OPENSSH PRIVATE KEY-----\nlab\n")
    write(root, SSH_KEY + ".pub", b"ssh-ed25519 AAAA lab\n", 0o644)
    write(root, "/etc/kubesalt/minion-keys/cp2.pub", b"cp2 minion public key\n", 0o644)
    if stand_in_pki:
        for base in CA_FILES.values():
            write(root, f"/etc/kubernetes/pki/{base}.crt", f"{base} certificate\n".encode(), 0o644)
            write(root, f"/etc/kubernetes/pki/{base}.key", f"{base} key\n".encode())
        write(root, "/etc/kubernetes/pki/sa.key", b"sa key\n")
        write(root, "/etc/kubernetes/pki/sa.pub", b"sa pub\n")
        for client in ("apiserver-etcd-client", "etcd/healthcheck-client"):
            write(root, f"/etc/kubernetes/pki/{client}.crt", b"client cert\n", 0o644)
            write(root, f"/etc/kubernetes/pki/{client}.key", b"client key\n")
    write(root, "/etc/salt/pki/master/master.pem", b"master private key\n", 0o400)
    write(root, "/etc/salt/pki/master/master.pub", b"master public key\n", 0o644)
    for name in nodes:
        write(root, f"/etc/salt/pki/master/minions/{name}", f"{name} key\n".encode(), 0o644)
    os.chmod(os.path.join(str(root), "etc/salt/pki/master"), 0o700)
    write(root, "/etc/salt/pki/minion/minion.pem", b"minion private key\n", 0o400)
    write(root, "/etc/salt/pki/minion/minion.pub", b"bootstrap key\n", 0o644)


def member(name: str, number: int) -> dict:
    ip = NODES[name][0]
    return {"ID": number, "name": name, "peerURLs": [etcd.peer_url(ip)],
            "clientURLs": [etcd.client_url(ip)]}  # fmt: skip


MEMBERS = [member("bootstrap", 11), member("cp2", 22), member("cp3", 33)]


class FakeEtcd:
    """etcdctl and etcdutl as the backup calls them: `healthy` client URLs answer,
    `snapshot save` writes SNAPSHOT, `snapshot status` reads a file (revision 42 unless
    the file was changed). Every call is recorded."""

    def __init__(self, healthy=(), revision: int = 42, save_fails=False):
        self.healthy = set(healthy)
        self.revision = revision
        self.save_fails = save_fails
        self.calls: list[list[str]] = []

    def __call__(self, argv, timeout, env=None, stdin=None):
        self.calls.append(list(argv))
        endpoint = next((a.split("=", 1)[1] for a in argv if a.startswith("--endpoints=")), "")
        args = [a for a in argv[1:] if not a.startswith("--")]
        if args[:2] == ["endpoint", "health"]:
            if endpoint in self.healthy:
                answer = [{"endpoint": endpoint, "health": True, "took": "1ms"}]
                return subprocess.CompletedProcess(argv, 0, json.dumps(answer), "")
            error = f"{endpoint} is unhealthy: failed to commit proposal: context deadline exceeded"
            answer = [{"endpoint": endpoint, "health": False, "error": error}]
            return subprocess.CompletedProcess(
                argv, 1, json.dumps(answer), "Error: unhealthy cluster"
            )
        if args[:2] == ["endpoint", "status"]:
            number = next(m["ID"] for m in MEMBERS if endpoint in m["clientURLs"])
            status = [{"Endpoint": endpoint, "Status": {"header": {"member_id": number,
                       "revision": self.revision}}}]  # fmt: skip
            return subprocess.CompletedProcess(argv, 0, json.dumps(status), "")
        if args[:2] == ["member", "list"]:
            return subprocess.CompletedProcess(argv, 0, json.dumps({"members": MEMBERS}), "")
        if args[:2] == ["snapshot", "save"]:
            if self.save_fails:
                return subprocess.CompletedProcess(argv, 1, "", "Error: rpc error: snapshot failed")
            with open(args[2], "wb") as stream:
                stream.write(SNAPSHOT)
            return subprocess.CompletedProcess(argv, 0, f"Snapshot saved at {args[2]}\n", "")
        if args[:2] == ["snapshot", "status"]:
            with open(args[2], "rb") as stream:
                data = stream.read()
            if data != SNAPSHOT:
                return subprocess.CompletedProcess(
                    argv, 1, "", "Error: snapshot file integrity check failed"
                )
            status = {
                "hash": 1234,
                "revision": self.revision,
                "totalKey": 7,
                "totalSize": len(data),
            }
            return subprocess.CompletedProcess(argv, 0, json.dumps(status), "")
        if args[:2] == ["snapshot", "restore"]:
            data_dir = next(a.split("=", 1)[1] for a in argv if a.startswith("--data-dir="))
            os.makedirs(os.path.join(data_dir, "member"), mode=0o755)
            return subprocess.CompletedProcess(argv, 0, "", "")
        raise AssertionError(f"unexpected command {argv}")


# The member list as a backup records it (etcd.Member.to_dict).
RECORDED = [m.to_dict() for m in etcd.parse_member_list(json.dumps({"members": MEMBERS}))]


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(name="node")
def node_fixture(tmp_path, monkeypatch):
    """A bootstrap node's files under tmp_path/node, the orchestration lock beside it."""
    monkeypatch.setattr(lock, "LOCK_FILE", str(tmp_path / "run" / "orchestrate.lock"))
    root = tmp_path / "node"
    bootstrap_node(root)
    return root


NOW = datetime.datetime(2026, 12, 4, 2, 0, 0, tzinfo=datetime.UTC)
BOOTSTRAP_URL = "https://198.51.100.10:2379"
CP2_URL = "https://198.51.100.11:2379"


def take(node, tmp_path, etcd=None, now=NOW, keep=7, out=None):
    """A backup of the bootstrap node under `node` (no copy to the control-plane nodes)."""
    etcd = etcd or FakeEtcd(healthy={BOOTSTRAP_URL, CP2_URL})
    return backup_job.run_backup(out=str(out or tmp_path / "backups"), keep=keep, copy=False,
                                 root=str(node), run=etcd, tool="etcdutl", now=now)  # fmt: skip


@pytest.fixture(name="archive")
def archive_fixture(node, tmp_path):
    """The path of a good backup archive of the `node` fixture's bootstrap node."""
    return take(node, tmp_path)["path"]
