"""Address selection from CIDR lists, and address arithmetic."""

import pytest

from kubesalt.errors import AddressError
from kubesalt.network import HostAddress, interface_of, network_of, nth_address, select_ip

HOST = [
    HostAddress("lo", "127.0.0.1", 8),
    HostAddress("eth0", "203.0.113.7", 24),
    HostAddress("eth1", "198.51.100.12", 24),
    HostAddress("eth1", "198.51.100.11", 24),
    HostAddress("eth2", "10.20.0.5", 16),
    HostAddress("eth2", "2001:db8:1::5", 64),
    HostAddress("eth2", "fe80::1", 64),
]


@pytest.mark.parametrize(
    ("cidrs", "expected"),
    [
        (["198.51.100.0/24"], "198.51.100.11"),  # lowest address of the CIDR wins
        (["10.20.0.0/16", "198.51.100.0/24"], "10.20.0.5"),  # CIDRs in order
        (["192.168.0.0/16", "198.51.100.0/24"], "198.51.100.11"),  # first CIDR matches nothing
        (["2001:db8:1::/64"], "2001:db8:1::5"),
        (["10.0.0.0/8"], "10.20.0.5"),
    ],
)
def test_first_matching_cidr_wins(cidrs, expected):
    assert select_ip(cidrs, HOST) == expected


def test_chosen_ip_stays_while_valid():
    assert select_ip(["198.51.100.0/24"], HOST, current_ip="198.51.100.12") == "198.51.100.12"
    # Even when a CIDR earlier in the list now matches too.
    assert (
        select_ip(["10.20.0.0/16", "198.51.100.0/24"], HOST, current_ip="198.51.100.12")
        == "198.51.100.12"
    )


def test_chosen_ip_is_replaced_when_gone_or_outside():
    # No longer on the host.
    assert select_ip(["198.51.100.0/24"], HOST, current_ip="198.51.100.99") == "198.51.100.11"
    # Still on the host but no CIDR holds it any more.
    assert select_ip(["10.20.0.0/16"], HOST, current_ip="198.51.100.12") == "10.20.0.5"


def test_virtual_ip_is_never_chosen():
    host = [HostAddress("eth1", "198.51.100.100", 24), HostAddress("eth1", "198.51.100.101", 24)]
    assert select_ip(["198.51.100.0/24"], host, exclude=("198.51.100.100",)) == "198.51.100.101"


def test_no_match_lists_cidrs_and_addresses():
    with pytest.raises(AddressError) as excinfo:
        select_ip(["192.168.0.0/16", "172.16.0.0/12"], HOST, key="networks.controlPlane.cidr")
    message = str(excinfo.value)
    assert "networks.controlPlane.cidr [192.168.0.0/16, 172.16.0.0/12]" in message
    assert "eth1 198.51.100.12/24" in message
    assert "eth2 2001:db8:1::5/64" in message
    assert "Fix:" in message


def test_interface_and_network_of_an_ip():
    assert interface_of("198.51.100.12", HOST) == "eth1"
    assert interface_of("2001:db8:1::5", HOST) == "eth2"
    with pytest.raises(AddressError, match="No interface of this host holds 198.51.100.200"):
        interface_of("198.51.100.200", HOST)
    assert network_of("10.1.0.100", ["198.51.100.0/24", "10.1.0.0/16"]) == "10.1.0.0/16"
    with pytest.raises(AddressError):
        network_of("203.0.113.1", ["198.51.100.0/24"])


@pytest.mark.parametrize(
    ("cidr", "n", "expected"),
    [
        ("10.96.0.0/12", 1, "10.96.0.1"),  # kubernetes API service (kubeadm)
        ("10.96.0.0/12", 10, "10.96.0.10"),  # cluster DNS (kubeadm GetDNSIP)
        ("fd00:96::/112", 10, "fd00:96::a"),
        ("10.96.0.0/28", 15, "10.96.0.15"),
    ],
)
def test_nth_address(cidr, n, expected):
    assert nth_address(cidr, n) == expected


def test_nth_address_outside_the_network():
    with pytest.raises(AddressError, match="has 16 addresses"):
        nth_address("10.96.0.0/28", 16)
