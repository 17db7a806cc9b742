"""salt-ssh reaches a declared node through the kubesalt roster: a real sshd in a
network namespace, a real salt-ssh run from another namespace."""

import pathlib
import subprocess
import sys
import time

import pytest
import yaml

from kubesalt import config, hostkeys, inventory
from tests.integration.netns import Namespaces
from tests.unit.test_config import BASE

pytestmark = pytest.mark.integration

REPO = pathlib.Path(__file__).resolve().parents[2]
SALT_SSH = pathlib.Path(sys.executable).with_name("salt-ssh")
NODE_IP = "198.51.100.21"


def _wait_for_port(netns, address, port, deadline_s=15):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        probe = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                netns,
                sys.executable,
                "-c",
                f"import socket; socket.create_connection(('{address}', {port}), 1)",
            ],
            capture_output=True,
        )
        if probe.returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"sshd did not listen on {address}:{port} within {deadline_s}s")


@pytest.fixture
def node_with_sshd(tmp_path):
    with Namespaces("master", "node") as ns:
        ns.veth("master", "m0", "node", "n0")
        ns.address("master", "m0", "198.51.100.1/24")
        ns.address("node", "n0", f"{NODE_IP}/24")
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True
        )
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "hostkey")],
            check=True,
        )
        (tmp_path / "authorized_keys").write_text((tmp_path / "id.pub").read_text())
        (tmp_path / "sshd_config").write_text(
            f"ListenAddress {NODE_IP}\nHostKey {tmp_path / 'hostkey'}\n"
            f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\nPidFile {tmp_path / 'sshd.pid'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n"
        )
        pathlib.Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        sshd = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns["node"],
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-f",
                str(tmp_path / "sshd_config"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(ns["master"], NODE_IP, 22)
            yield ns, tmp_path
        finally:
            sshd.terminate()
            sshd.wait(timeout=10)


def _declare(tmp_path):
    cfg = config.validate(BASE)[0]
    nodes_dir = tmp_path / "nodes"
    node = inventory.Node(
        "cp2", NODE_IP, ("control-plane", "etcd", "node"), key=str(tmp_path / "id")
    )
    inventory.declare(node, cfg, str(nodes_dir))
    return nodes_dir


def _salt_ssh(ns, tmp_path, nodes_dir):
    conf_dir = tmp_path / "salt" / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "master").write_text(
        yaml.safe_dump(
            {
                "root_dir": str(tmp_path / "salt"),
                "roster_dirs": [str(REPO / "salt" / "_roster")],
                "kubesalt_inventory": str(nodes_dir),
            }
        )
    )
    command = ["ip", "netns", "exec", ns["master"], str(SALT_SSH), "-c", str(conf_dir),
               "--roster", "kubesalt", "--out", "json", "cp2", "grains.item", "id", "ipv4"]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def _keyscan(ns):
    command = ["ip", "netns", "exec", ns["master"], *hostkeys.keyscan_command(NODE_IP, 22)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    return hostkeys.parse_keyscan(result.stdout)


def test_salt_ssh_reaches_the_declared_node_with_its_recorded_host_key(node_with_sshd):
    ns, tmp_path = node_with_sshd
    nodes_dir = _declare(tmp_path)
    keys = _keyscan(ns)  # what deploy_node's preflight reads at first contact
    assert keys == [hostkeys.parse_public_key((tmp_path / "hostkey.pub").read_text())]
    inventory.record_host_keys("cp2", keys, str(nodes_dir))
    result = _salt_ssh(ns, tmp_path, nodes_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    grains = yaml.safe_load(result.stdout)["cp2"]
    assert grains["id"] == "cp2"
    assert NODE_IP in grains["ipv4"]


@pytest.mark.parametrize("recorded", ["another key", "no key"])
def test_salt_ssh_refuses_a_node_whose_host_key_is_not_the_recorded_one(node_with_sshd, recorded):
    ns, tmp_path = node_with_sshd
    nodes_dir = _declare(tmp_path)
    if recorded == "another key":
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(tmp_path / "impostor")], check=True)  # fmt: skip
        impostor = (tmp_path / "impostor.pub").read_text()
        inventory.record_host_keys("cp2", [impostor], str(nodes_dir))
    result = _salt_ssh(ns, tmp_path, nodes_dir)
    output = result.stdout + result.stderr
    assert "Host key verification failed" in output or "REMOTE HOST IDENTIFICATION" in output, (
        output
    )
    assert '"id": "cp2"' not in result.stdout
