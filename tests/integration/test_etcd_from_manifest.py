"""The real etcd (Debian etcd-server 3.4), started with exactly the command of a rendered
etcd manifest and its rendered certificates.

Paths: each node is rendered with `Layout(root=<temp dir>/<node>)`, so every path in the
command (/etc/kubernetes/pki/..., /var/lib/etcd) is the kubeadm path under that root; the
command is taken from the written manifest unchanged (nothing is rewritten). Network: each
etcd runs in its own network namespace; the node IPs (10.0.0.10-12, the reference vector's)
exist only inside namespaces this test creates. etcd 3.4 has no /livez or /readyz on its
metrics port (etcd 3.5.11+), so health is checked with `etcdctl endpoint health` using the
rendered healthcheck-client certificate, and with /health on the metrics port.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from kubesalt.kubeadm import pki
from kubesalt.kubeadm.files import write_tree
from kubesalt.kubeadm.model import Node
from tests.integration.etcd_cluster import CP, WAIT, EtcdNode, bridge, config
from tests.integration.netns import Namespaces, ip

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path):
    """Starts nothing by itself; stops every etcd it was given, even on failure."""
    nodes: list[EtcdNode] = []
    yield nodes
    for node in nodes:
        node.stop()


def test_single_etcd_from_reference_manifest(tmp_path, cluster):
    """The reference node (cp1, 10.0.0.10, first) runs from its manifest."""
    cfg = config("RSA-2048")
    authorities = pki.create_authorities(cfg)
    with Namespaces("cp1") as ns:
        ip("addr", "add", "10.0.0.10/32", "dev", "lo", netns=ns["cp1"])
        node = Node("cp1", "10.0.0.10", CP, first=True)
        etcd = EtcdNode(cfg, node, authorities, tmp_path / "cp1", ns["cp1"])
        cluster.append(etcd)
        data_dir = etcd.layout.etcd_data_dir
        assert etcd.command[0] == "etcd"
        assert f"--data-dir={data_dir}" in etcd.command
        assert "--initial-cluster=cp1=https://10.0.0.10:2380" in etcd.command
        etcd.start()
        health = etcd.wait_healthy()
        assert "is healthy" in health.stdout + health.stderr
        # The advertised client URL answers too, with the same client certificate.
        assert etcd.wait_healthy("https://10.0.0.10:2379").returncode == 0
        metrics = subprocess.run(
            ["ip", "netns", "exec", ns["cp1"], "curl", "-sf", "--max-time", "5",
             "http://127.0.0.1:2381/health"],
            capture_output=True, text=True, timeout=15,
        )  # fmt: skip
        assert json.loads(metrics.stdout)["health"] == "true"
        # A client certificate from another CA is refused.
        other = pki.create_authorities(cfg)
        write_tree(other.files(str(tmp_path / "other")), "/")
        refused = subprocess.run(
            ["ip", "netns", "exec", ns["cp1"], "etcdctl", "--endpoints=https://127.0.0.1:2379",
             f"--cacert={etcd.layout.pki('etcd/ca.crt')}",
             f"--cert={tmp_path}/other/etcd/ca.crt", f"--key={tmp_path}/other/etcd/ca.key",
             "--dial-timeout=2s", "--command-timeout=3s", "endpoint", "health"],
            capture_output=True, text=True, timeout=15,
        )  # fmt: skip
        assert refused.returncode != 0
        assert os.stat(data_dir).st_mode & 0o777 == 0o700
        etcd.stop()


def _retry(action, what: str) -> subprocess.CompletedProcess:
    """Run `action` until it succeeds, for at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        result = action()
        if result.returncode == 0:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} still failing after {WAIT}s: {result.stderr}")
        time.sleep(0.5)


def _promote(leader: EtcdNode, learner: EtcdNode, member_id: int) -> None:
    """Promote a learner once it has caught up (kubeadm's MemberPromote, bounded)."""
    deadline = time.monotonic() + WAIT
    while True:
        if learner.process and learner.process.poll() is not None:
            pytest.fail(f"etcd on {learner.node.name} exited:\n{learner.log()}")
        result = leader.etcdctl(
            "member", "promote", format(member_id, "x"), client="apiserver-etcd-client"
        )
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"learner {member_id:x} not promoted after {WAIT}s: {result.stderr}")
        time.sleep(0.5)


def test_three_member_cluster_joined_like_kubeadm(tmp_path, cluster):
    """cp1 starts alone; cp2 and cp3 are added as learners, started from their rendered
    (joining) manifests, promoted; the cluster is healthy and accepts writes."""
    cfg = config("ECDSA-P256")
    authorities = pki.create_authorities(cfg)
    names = ["cp1", "cp2", "cp3"]
    ips = {"cp1": "10.0.0.10", "cp2": "10.0.0.11", "cp3": "10.0.0.12"}
    with Namespaces("br", *names) as ns:
        bridge(ns, names)
        for name in names:
            ns.address(name, "eth0", f"{ips[name]}/24")
        cp1 = Node("cp1", ips["cp1"], CP, first=True)
        first = EtcdNode(cfg, cp1, authorities, tmp_path / "cp1", ns["cp1"])
        cluster.append(first)
        first.start()
        first.wait_healthy()
        members = [("cp1", ips["cp1"])]
        for name in ("cp2", "cp3"):
            # Right after a promotion etcd refuses a new member ("unhealthy cluster")
            # until every voter has been connected for a while: retry, as kubeadm does.
            added = _retry(
                lambda name=name: first.etcdctl(
                    "member", "add", name, f"--peer-urls=https://{ips[name]}:2380", "--learner",
                    "-w", "json", client="apiserver-etcd-client",
                ),
                f"etcdctl member add {name}",
            )  # fmt: skip
            member_id = json.loads(added.stdout)["member"]["ID"]
            members.append((name, ips[name]))
            node = Node(name, ips[name], CP, etcd_members=tuple(members))
            joiner = EtcdNode(cfg, node, authorities, tmp_path / name, ns[name])
            cluster.append(joiner)
            expected = ",".join(f"{n}=https://{i}:2380" for n, i in members)
            assert f"--initial-cluster={expected}" in joiner.command
            assert "--initial-cluster-state=existing" in joiner.command
            joiner.start()
            # A learner answers no health check (it serves no linearizable read):
            # promote it first, as kubeadm does, then check it.
            _promote(first, joiner, member_id)
            joiner.wait_healthy()
        endpoints = ",".join(f"https://{ips[n]}:2379" for n in names)
        health = first.etcdctl("endpoint", "health", endpoints=endpoints)
        assert health.returncode == 0, health.stderr
        assert (health.stdout + health.stderr).count("is healthy") == 3
        listing = first.etcdctl("member", "list", "-w", "json")
        members_json = json.loads(listing.stdout)["members"]
        assert sorted(m["name"] for m in members_json) == names
        assert not any(m.get("isLearner") for m in members_json)
        put = first.etcdctl(
            "put", "/kubesalt/test", "written-on-cp1", client="apiserver-etcd-client"
        )
        assert put.returncode == 0 and "OK" in put.stdout, put.stderr
        read = cluster[2].etcdctl(
            "get", "/kubesalt/test", "--print-value-only", client="apiserver-etcd-client"
        )
        assert read.stdout.strip() == "written-on-cp1", read.stderr
        for etcd in cluster:
            etcd.stop()
