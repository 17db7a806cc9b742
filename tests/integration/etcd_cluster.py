"""A real etcd (Debian etcd-server 3.4) per node, started with exactly the command of its
rendered static pod manifest and its rendered certificates, in a network namespace.

Paths: each node is rendered with `Layout(root=<temp dir>/<node>)`, so every path in the
command (/etc/kubernetes/pki/..., /var/lib/etcd) is the kubeadm path under that root; the
command is taken from the written manifest unchanged (nothing is rewritten). Network: each
etcd runs in its own network namespace (`Namespaces`); node IPs exist only there. etcd 3.4
has no /livez or /readyz on its metrics port (etcd 3.5.11+), so health is checked with
`etcdctl endpoint health` using the rendered healthcheck-client certificate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import yaml

from kubesalt.kubeadm import render
from kubesalt.kubeadm.files import write_tree
from kubesalt.kubeadm.model import Layout, Node
from tests.integration.netns import Namespaces, ip

CP = frozenset({"control-plane", "etcd", "node"})
REGISTRY = "https://10.0.0.10:8443"
WAIT = 20  # seconds, for any single condition


def config(algorithm: str, cidr: str = "10.0.0.0/24", vip: str = "10.0.0.100") -> dict:
    """A valid, normalized configuration for rendering nodes in `cidr`."""
    return {
        "networks": {
            "controlPlane": {"cidr": [cidr]},
            "workloadPlane": {"cidr": [cidr], "mtu": None},
            "pods": "10.233.0.0/16",
            "services": "10.96.0.0/12",
        },
        "apiServer": {
            "host": vip,
            "port": 6443,
            "keepalived": {"enabled": True, "virtualRouterId": 51, "authPassword": None},
        },
        "ca": {"minion": "cp1"},
        "archives": [],
        "kubernetes": {"version": None, "clusterName": "kubernetes", "dnsDomain": "cluster.local"},
        "proxies": {"http": None, "https": None, "noProxy": []},
        "firewall": {"enabled": True},
        "pki": {
            "algorithm": algorithm,
            "certificateValidityDays": 365,
            "caCertificateValidityDays": 3650,
        },
    }


class EtcdNode:
    """One rendered node: its files under `root` and its etcd process in namespace `ns`."""

    def __init__(self, cfg, node: Node, authorities, root, ns: str, registry: str = REGISTRY):
        self.node, self.ns, self.layout = node, ns, Layout(str(root))
        write_tree(
            render.render_node(cfg, node, authorities, registry=registry, layout=self.layout),
            "/",
        )
        manifest = os.path.join(self.layout.manifests_dir, "etcd.yaml")
        with open(manifest) as handle:
            self.command = yaml.safe_load(handle)["spec"]["containers"][0]["command"]
        self.log_path = os.path.join(str(root), "etcd.log")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            # `ip netns exec` execs etcd: the PID is etcd's own.
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *self.command],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        """Stop this etcd by its PID (SIGTERM, then SIGKILL after 10 s)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()[-3000:]

    def etcdctl(self, *args: str, endpoints: str | None = None, client="healthcheck-client"):
        """Run etcdctl in this node's namespace with a rendered client certificate."""
        pki_dir = self.layout.pki_dir
        cert = {
            "healthcheck-client": f"{pki_dir}/etcd/healthcheck-client",
            "apiserver-etcd-client": f"{pki_dir}/apiserver-etcd-client",
        }[client]
        command = [
            "ip", "netns", "exec", self.ns, "etcdctl",
            f"--endpoints={endpoints or 'https://127.0.0.1:2379'}",
            f"--cacert={pki_dir}/etcd/ca.crt", f"--cert={cert}.crt", f"--key={cert}.key",
            "--dial-timeout=2s", "--command-timeout=4s", *args,
        ]  # fmt: skip
        env = {**os.environ, "ETCDCTL_API": "3"}
        return subprocess.run(command, capture_output=True, text=True, timeout=15, env=env)

    def wait_healthy(self, endpoints: str | None = None) -> subprocess.CompletedProcess:
        deadline = time.monotonic() + WAIT
        while True:
            if self.process and self.process.poll() is not None:
                pytest.fail(f"etcd on {self.node.name} exited:\n{self.log()}")
            result = self.etcdctl("endpoint", "health", endpoints=endpoints)
            if result.returncode == 0:
                return result
            if time.monotonic() > deadline:
                pytest.fail(
                    f"etcd on {self.node.name} not healthy after {WAIT}s: {result.stderr}\n"
                    f"{self.log()}"
                )
            time.sleep(0.3)


def bridge(ns: Namespaces, nodes: list[str]) -> None:
    """A bridge in namespace `br` with one veth per node namespace (eth0 there)."""
    ip("link", "add", "br0", "type", "bridge", netns=ns["br"])
    ip("link", "set", "br0", "up", netns=ns["br"])
    for name in nodes:
        ns.veth("br", f"v-{name}", name, "eth0")
        ip("link", "set", f"v-{name}", "master", "br0", netns=ns["br"])
