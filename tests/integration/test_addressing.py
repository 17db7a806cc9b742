"""The real kubesalt_network module and node.grains state, on a host with several
interfaces built from network namespaces and veth pairs."""

import pytest
import yaml

from tests.integration.netns import Namespaces
from tests.integration.salt_local import SaltLocal

pytestmark = pytest.mark.integration

CONFIG = {
    "apiVersion": "kubesalt.io/v1alpha1",
    "kind": "BootstrapConfiguration",
    "networks": {
        "controlPlane": {"cidr": ["192.168.77.0/24", "198.51.100.0/24"]},
        "workloadPlane": {"cidr": ["10.20.0.0/16"]},
    },
    "apiServer": {"host": "198.51.100.100"},
    "ca": {"minion": "bootstrap"},
    "archives": ["/srv/kubesalt.iso"],
}


@pytest.fixture
def host():
    """A 'host' namespace with three NICs: two IPv4 networks, one IPv6, and the VIP."""
    with Namespaces("host", "peer") as ns:
        ns.veth("host", "eth0", "peer", "p0")
        ns.veth("host", "eth1", "peer", "p1")
        ns.veth("host", "eth2", "peer", "p2")
        ns.address("host", "eth0", "203.0.113.7/24")
        ns.address("host", "eth1", "198.51.100.100/24")  # the VIP, held by keepalived
        ns.address("host", "eth1", "198.51.100.12/24")
        ns.address("host", "eth1", "198.51.100.11/24")
        ns.address("host", "eth2", "10.20.0.5/16")
        ns.address("host", "eth2", "2001:db8:1::5/64")
        yield ns


@pytest.fixture
def salt(host, tmp_path):
    config_path = tmp_path / "bootstrap.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    return SaltLocal(tmp_path / "root", config_path, netns=host["host"])


def test_host_addresses_are_read_from_the_real_interfaces(salt):
    addresses = salt.call("kubesalt_network.host_addresses")
    assert "eth1 198.51.100.11/24" in addresses
    assert "eth2 2001:db8:1::5/64" in addresses
    assert "eth0 203.0.113.7/24" in addresses


@pytest.mark.parametrize(
    ("cidrs", "expected"),
    [
        ('["198.51.100.0/24"]', "198.51.100.11"),
        ('["10.20.0.0/16", "198.51.100.0/24"]', "10.20.0.5"),
        ('["192.168.0.0/16", "2001:db8:1::/64"]', "2001:db8:1::5"),
    ],
)
def test_get_ip_from_cidrs(salt, cidrs, expected):
    assert salt.call("kubesalt_network.get_ip_from_cidrs", cidrs) == expected


def test_no_match_names_cidrs_and_host_addresses(salt):
    result = salt.run("kubesalt_network.get_ip_from_cidrs", '["192.168.0.0/16"]')
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "[192.168.0.0/16]" in output
    assert "eth1 198.51.100.11/24" in output


def test_interface_mtu_and_service_ip(salt, host):
    assert salt.call("kubesalt_network.interface_of", "10.20.0.5") == "eth2"
    assert salt.call("kubesalt_network.mtu_of", "10.20.0.5") == 1500
    assert salt.call("kubesalt_network.service_ip", "10") == "10.96.0.10"
    assert salt.call("kubesalt_network.service_ip") == "10.96.0.1"


def test_grains_state_sets_both_ips_then_changes_nothing(salt):
    first = salt.run("state.apply", "kubesalt.node.grains", check=True)
    assert salt.grains_file()["kubesalt"] == {
        "control_plane_ip": "198.51.100.11",  # not the VIP, not the other NIC
        "workload_plane_ip": "10.20.0.5",
    }
    assert '"changes": {}' not in first.stdout
    second = salt.call("state.apply", "kubesalt.node.grains")
    assert all(not state["changes"] for state in second.values()), second
    assert salt.call("mine.get", "*", "control_plane_ip") == {"node-under-test": "198.51.100.11"}


def test_chosen_ip_is_sticky_until_it_goes_away(salt, host):
    salt.call("grains.setval", "kubesalt", '{"control_plane_ip": "198.51.100.12"}')
    salt.run("state.apply", "kubesalt.node.grains", check=True)
    assert salt.grains_file()["kubesalt"]["control_plane_ip"] == "198.51.100.12"
    host.remove_address("host", "eth1", "198.51.100.12/24")
    salt.run("state.apply", "kubesalt.node.grains", check=True)
    assert salt.grains_file()["kubesalt"]["control_plane_ip"] == "198.51.100.11"


def test_invalid_configuration_refuses_to_apply_and_changes_nothing(salt):
    salt.config_path.write_text(
        yaml.safe_dump({**CONFIG, "networks": {"controlPlane": {"cidr": "198.51.100.1/24"}}})
    )
    result = salt.run("state.apply", "kubesalt.node.grains")
    assert result.returncode != 0
    assert "Pillar failed to render" in result.stdout
    assert "networks.controlPlane.cidr = '198.51.100.1/24': has host bits set" in result.stdout
    assert "Fix: use the network address: 198.51.100.0/24" in result.stdout
    assert salt.grains_file() == {}
