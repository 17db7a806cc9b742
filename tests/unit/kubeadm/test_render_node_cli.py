"""scripts/render-node, run as operators run it, against the reference vector."""

import pathlib
import subprocess
import sys

import pytest
import yaml
from reference_vectors import APISERVER, CONTROLLER_MANAGER, ETCD_FIRST, SCHEDULER

REPO = pathlib.Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "render-node"
BOOTSTRAP = {
    "apiVersion": "kubesalt.io/v1alpha1",
    "kind": "BootstrapConfiguration",
    "networks": {"controlPlane": {"cidr": "10.0.0.0/24"}},
    "apiServer": {"host": "10.0.0.100"},
    "ca": {"minion": "cp1"},
    "archives": ["/srv/kubesalt.iso"],
}
CP1 = ["--node", "cp1", "--ip", "10.0.0.10", "--roles", "bootstrap,ca,control-plane,etcd,node"]


def run(*args):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "bootstrap.yaml"
    path.write_text(yaml.safe_dump(BOOTSTRAP))
    return path


def command_of(out, name):
    pod = yaml.safe_load((out / f"etc/kubernetes/manifests/{name}.yaml").read_text())
    return pod["spec"]["containers"][0]["command"]


def test_script_is_executable_with_env_shebang():
    assert SCRIPT.stat().st_mode & 0o111
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")


def test_reference_vector(tmp_path, config_file):
    out = tmp_path / "out"
    result = run("--config", config_file, *CP1, "--first", "--out", out)
    assert result.returncode == 0, result.stderr
    assert command_of(out, "kube-apiserver") == APISERVER
    assert command_of(out, "etcd") == ETCD_FIRST
    assert command_of(out, "kube-controller-manager") == CONTROLLER_MANAGER
    assert command_of(out, "kube-scheduler") == SCHEDULER
    assert "render-node: 39 files for cp1" in result.stdout
    assert f"throwaway CAs created in {out}/etc/kubernetes/pki" in result.stdout
    modes = {
        "etc/kubernetes/manifests": 0o700,
        "etc/kubernetes/manifests/kube-apiserver.yaml": 0o600,
        "etc/kubernetes/manifests/etcd.yaml": 0o600,
        "etc/kubernetes/pki": 0o755,
        "etc/kubernetes/pki/ca.crt": 0o644,
        "etc/kubernetes/pki/ca.key": 0o600,
        "etc/kubernetes/pki/apiserver.crt": 0o644,
        "etc/kubernetes/pki/apiserver.key": 0o600,
        "etc/kubernetes/pki/sa.pub": 0o600,
        "etc/kubernetes/pki/sa.key": 0o600,
        "etc/kubernetes/admin.conf": 0o600,
        "etc/kubernetes/super-admin.conf": 0o600,
        "etc/kubernetes/kubelet.conf": 0o600,
        "var/lib/kubelet": 0o700,
        "var/lib/kubelet/config.yaml": 0o644,
        "var/lib/kubelet/kubeadm-flags.env": 0o644,
        "var/lib/etcd": 0o700,
    }
    for path, mode in modes.items():
        assert (out / path).stat().st_mode & 0o777 == mode, path
    admin = yaml.safe_load((out / "etc/kubernetes/admin.conf").read_text())
    assert admin["clusters"][0]["cluster"]["server"] == "https://10.0.0.100:6443"
    kubelet = yaml.safe_load((out / "etc/kubernetes/kubelet.conf").read_text())
    assert kubelet["clusters"][0]["cluster"]["server"] == "https://10.0.0.10:6443"
    hosts = (out / "etc/containerd/certs.d/registry.k8s.io/hosts.toml").read_text()
    assert 'server = "https://10.0.0.10:8443/v2/registry.k8s.io"' in hosts


def test_cas_reused_and_shared_with_a_joining_node(tmp_path, config_file):
    first, second = tmp_path / "cp1", tmp_path / "cp2"
    assert run("--config", config_file, *CP1, "--first", "--out", first).returncode == 0
    ca = (first / "etc/kubernetes/pki/ca.crt").read_bytes()
    again = run("--config", config_file, *CP1, "--first", "--out", first)
    assert again.returncode == 0 and "throwaway CAs reused" in again.stdout
    assert (first / "etc/kubernetes/pki/ca.crt").read_bytes() == ca
    result = run(
        "--config", config_file, "--node", "cp2", "--ip", "10.0.0.11",
        "--roles", "control-plane,etcd,node", "--peer", "cp1=10.0.0.10",
        "--registry", "https://10.0.0.10:8443", "--ca-dir", first / "etc/kubernetes/pki",
        "--out", second,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (second / "etc/kubernetes/pki/ca.crt").read_bytes() == ca
    assert not (second / "etc/kubernetes/pki/ca.key").exists()
    assert not (second / "etc/kubernetes/super-admin.conf").exists()
    etcd = command_of(second, "etcd")
    assert "--initial-cluster=cp1=https://10.0.0.10:2380,cp2=https://10.0.0.11:2380" in etcd
    assert "--initial-cluster-state=existing" in etcd


def test_worker_keeps_throwaway_cas_out_of_its_tree(tmp_path, config_file):
    out = tmp_path / "w1"
    result = run(
        "--config", config_file, "--node", "w1", "--ip", "10.0.0.20", "--roles", "node",
        "--registry", "https://10.0.0.10:8443", "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (out / "etc/kubernetes/pki").iterdir()) == ["ca.crt"]
    assert (out / ".preview-ca/ca.key").exists()
    assert not (out / "etc/kubernetes/manifests").exists() or not list(
        (out / "etc/kubernetes/manifests").iterdir()
    )


def kubelet_flags(out):
    return (out / "var/lib/kubelet/kubeadm-flags.env").read_text().split('"')[1].split()


@pytest.mark.parametrize(
    ("extra", "node_ip"), [([], "10.0.0.20"), (["--workload-ip", "10.1.0.20"], "10.1.0.20")]
)
def test_the_kubelet_announces_the_workload_ip(tmp_path, config_file, extra, node_ip):
    """--node-ip is --workload-ip when given (the planes differ), else --ip."""
    out = tmp_path / "w1"
    result = run(
        "--config", config_file, "--node", "w1", "--ip", "10.0.0.20", *extra, "--roles", "node",
        "--registry", "https://10.0.0.10:8443", "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"--node-ip={node_ip}" in kubelet_flags(out)


def test_the_control_plane_stays_on_the_control_plane_ip(tmp_path, config_file):
    out = tmp_path / "out"
    result = run(
        "--config", config_file, *CP1, "--workload-ip", "10.1.0.10", "--first", "--out", out
    )
    assert result.returncode == 0, result.stderr
    assert "--node-ip=10.1.0.10" in kubelet_flags(out)
    assert command_of(out, "kube-apiserver") == APISERVER  # advertise address, etcd URLs
    assert command_of(out, "etcd") == ETCD_FIRST
    assert "server: https://10.0.0.10:6443" in (out / "etc/kubernetes/kubelet.conf").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ip", "10.0.0.300"], "--ip: '10.0.0.300' is not an IP address"),
        (["--workload-ip", "10.1.0.300"], "--workload-ip: '10.1.0.300' is not an IP address"),
        (["--node", "CP_1"], "--node: 'CP_1' is not a valid node name"),
        (["--roles", "control-plane,master"], "--roles 'control-plane,master': unknown role(s) master"),
        (["--peer", "cp0"], "--peer 'cp0': expected NAME=IP"),
        (["--peer", "cp0=10.0.0.9"], "the first node starts etcd alone"),
        (["--registry", "http://10.0.0.10:5000"], "--registry: 'http://10.0.0.10:5000' is not an"),
        (["--roles", "node"], "is marked first (kubeadm init) but has roles node"),
    ],
)  # fmt: skip
def test_bad_usage_names_the_flag_and_exits_2(tmp_path, config_file, args, message):
    base = {"--node": "cp1", "--ip": "10.0.0.10", "--roles": "ca,control-plane,etcd,node"}
    extra = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag in base:
            base[flag] = value
        else:
            extra += [flag, value]
    flags = [item for pair in base.items() for item in pair]
    out = tmp_path / "out"
    result = run("--config", config_file, *flags, *extra, "--first", "--out", out)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.startswith("render-node: error: ")
    assert not out.exists()  # nothing written on bad usage


def test_missing_required_flag_exits_2(tmp_path, config_file):
    result = run("--config", config_file, "--node", "cp1", "--out", tmp_path / "o")
    assert result.returncode == 2
    assert "the following arguments are required: --ip, --roles" in result.stderr


def test_joining_node_without_peers(tmp_path, config_file):
    result = run(
        "--config", config_file, "--node", "cp2", "--ip", "10.0.0.11",
        "--roles", "control-plane,etcd,node", "--registry", "https://10.0.0.10:8443",
        "--out", tmp_path / "o",
    )  # fmt: skip
    assert result.returncode == 2
    assert "no other etcd member is given" in result.stderr
    assert not (tmp_path / "o").exists()


def test_worker_without_registry(tmp_path, config_file):
    result = run(
        "--config", config_file, "--node", "w1", "--ip", "10.0.0.20", "--roles", "node",
        "--out", tmp_path / "o",
    )  # fmt: skip
    assert result.returncode == 2
    assert "--registry is missing" in result.stderr
    assert "https://<bootstrap node IP>:8443" in result.stderr


def test_invalid_config_is_reported(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**BOOTSTRAP, "apiServer": {"host": "10.0.0.100", "port": "x"}}))
    result = run("--config", bad, *CP1, "--first", "--out", tmp_path / "o")
    assert result.returncode == 2
    assert "apiServer.port" in result.stderr


def test_out_is_a_file(tmp_path, config_file):
    target = tmp_path / "file"
    target.write_text("x")
    result = run("--config", config_file, *CP1, "--first", "--out", target)
    assert result.returncode == 2
    assert "exists and is not a directory" in result.stderr
