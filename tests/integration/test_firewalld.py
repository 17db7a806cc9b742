"""Real firewalld with kubesalt's rendered zone, checked with real connections.

Four nodes on a private bridge: ``fw`` (every role, running firewalld), ``cp-2`` (a
control-plane and etcd peer), ``worker`` (in the workload-plane CIDR) and ``outsider``
(in no cluster CIDR; it also owns an address of the pod CIDR). firewalld runs in
``fw`` with its own D-Bus and configuration directory (docs/decisions.md, "Testing
firewalld"). The zone is applied as the states do: write the file, set DefaultZone in
firewalld.conf, ``firewall-cmd --reload``.
"""

import copy

import pytest

from kubesalt import firewall, ports
from tests.integration.netlab import (
    Firewalld,
    Lab,
    ip_protocol_reaches,
    listen_tcp,
    tcp_connects,
)

pytestmark = pytest.mark.integration

CONFIG = {
    "networks": {
        # The worker's control-plane IP (198.51.100.70) must be in a control-plane CIDR:
        # a mine entry outside them is left out of every peer map (kubesalt.mine_ips).
        "controlPlane": {"cidr": ["198.51.100.0/26", "198.51.100.64/26"]},
        "workloadPlane": {"cidr": ["198.51.100.64/26"], "mtu": None},
        "pods": "10.233.0.0/16",
        "services": "10.96.0.0/12",
    },
    "apiServer": {
        "host": "198.51.100.50",
        "port": 6443,
        "keepalived": {"enabled": True, "virtualRouterId": 51, "authPassword": None},
    },
    "firewall": {"enabled": True},
}
ALL = ["bootstrap", "ca", "control-plane", "etcd", "node"]
NODES = {
    "fw": {"roles": ALL},
    "cp-2": {"roles": ["control-plane", "etcd"]},
    "worker": {"roles": ["node"]},
}
# 9999 is in no matrix entry; 10257 is local only. Every port gets a listener on
# 0.0.0.0 so that only the firewall decides.
PORTS = (22, 2379, 2380, 4505, 6443, 8443, 9999, 10250, 10257)
VRRP = 112


@pytest.fixture(scope="module")
def lab():
    with Lab("firewalld") as lab:
        fw = lab.node("fw", "198.51.100.11/24")
        lab.node("cp-2", "198.51.100.12/24")
        lab.node("worker", "198.51.100.70/24")
        lab.node("outsider", "198.51.100.200/24", "10.233.1.5/16")
        fw.run("ip", "route", "add", "10.233.0.0/16", "dev", "eth0")
        listen_tcp(fw, *PORTS)
        daemon = Firewalld(fw)
        daemon.start()
        yield lab, daemon


@pytest.fixture(scope="module")
def applied(lab):
    """The kubesalt zone applied like the states do; before/after default zones."""
    lab, daemon = lab
    before = daemon.cmd("--get-default-zone").stdout.strip()
    blocked_before = tcp_connects(lab.nodes["cp-2"], "198.51.100.11", 2380)
    mine = {name: lab.nodes[name].ip for name in NODES}
    xml = firewall.zone_xml(CONFIG, ALL, ports.peers_by_role(NODES, mine, CONFIG))
    daemon.write_zone(firewall.ZONE, xml)
    daemon.set_default_zone_in_config(firewall.ZONE)
    daemon.cmd("--reload")
    return lab, daemon, before, blocked_before


def test_reload_makes_the_kubesalt_zone_the_default(applied):
    lab, daemon, before, blocked_before = applied
    assert before == "public"
    assert blocked_before == "rejected"  # the stock public zone opens ssh only
    assert daemon.cmd("--get-default-zone").stdout.strip() == "kubesalt"
    listed = daemon.cmd("--zone=kubesalt", "--list-all").stdout
    assert "target: default" in listed
    assert "ports: 22/tcp 6443/tcp 10256/tcp 30000-32767/tcp 30000-32767/udp" in listed
    assert 'rule family="ipv4" source address="198.51.100.12" protocol value="vrrp" accept' in (
        listed
    )


@pytest.mark.parametrize(
    ("client", "port", "expected"),
    [
        # anyone
        ("outsider", 22, "open"),
        ("outsider", 6443, "open"),
        ("worker", 6443, "open"),
        # etcd peer: etcd members only
        ("cp-2", 2380, "open"),
        ("worker", 2380, "rejected"),
        ("outsider", 2380, "rejected"),
        # etcd client: control-plane nodes only
        ("cp-2", 2379, "open"),
        ("worker", 2379, "rejected"),
        # kubelet: control-plane nodes only
        ("cp-2", 10250, "open"),
        ("worker", 10250, "rejected"),
        # salt and nginx on the bootstrap node: the cluster CIDRs
        ("cp-2", 4505, "open"),
        ("worker", 4505, "open"),
        ("worker", 8443, "open"),
        ("outsider", 4505, "rejected"),
        ("outsider", 8443, "rejected"),
        # local only, and not in the matrix at all
        ("cp-2", 10257, "rejected"),
        ("cp-2", 9999, "rejected"),
        ("outsider", 9999, "rejected"),
    ],
)
def test_tcp_connections_follow_the_matrix(applied, client, port, expected):
    lab = applied[0]
    assert tcp_connects(lab.nodes[client], "198.51.100.11", port) == expected


def test_loopback_reaches_local_only_ports(applied):
    lab = applied[0]
    assert tcp_connects(lab.nodes["fw"], "127.0.0.1", 10257) == "open"


@pytest.mark.parametrize(
    ("port", "expected"),
    [(6443, "open"), (10250, "open"), (2379, "rejected"), (2380, "rejected"),
     (4505, "rejected"), (8443, "rejected"), (9999, "rejected")],
)  # fmt: skip
def test_pods_reach_only_the_api_server_and_the_kubelet(applied, port, expected):
    lab = applied[0]
    outsider = lab.nodes["outsider"]
    assert tcp_connects(outsider, "198.51.100.11", port, source="10.233.1.5") == expected


def test_vrrp_only_from_control_plane_peers(applied):
    lab = applied[0]
    senders = [lab.nodes["cp-2"], lab.nodes["worker"], lab.nodes["outsider"]]
    assert ip_protocol_reaches(lab.nodes["fw"], senders, VRRP) == {"198.51.100.12"}


def test_a_joining_node_is_let_in_after_the_zone_is_rewritten(applied):
    lab, daemon, _, _ = applied
    nodes = {**NODES, "worker": {"roles": ["node", "etcd"]}}  # worker becomes an etcd member
    assert tcp_connects(lab.nodes["worker"], "198.51.100.11", 2380) == "rejected"
    mine = {name: lab.nodes[name].ip for name in nodes}
    daemon.write_zone(
        firewall.ZONE, firewall.zone_xml(CONFIG, ALL, ports.peers_by_role(nodes, mine, CONFIG))
    )
    daemon.cmd("--reload")
    try:
        assert tcp_connects(lab.nodes["worker"], "198.51.100.11", 2380) == "open"
        assert tcp_connects(lab.nodes["worker"], "198.51.100.11", 2379) == "rejected"
    finally:
        mine = {name: lab.nodes[name].ip for name in NODES}
        xml = firewall.zone_xml(CONFIG, ALL, ports.peers_by_role(NODES, mine, CONFIG))
        daemon.write_zone(firewall.ZONE, xml)
        daemon.cmd("--reload")


def test_without_keepalived_vrrp_is_closed_to_everyone(applied):
    lab, daemon, _, _ = applied
    cfg = copy.deepcopy(CONFIG)
    cfg["apiServer"]["keepalived"]["enabled"] = False
    mine = {name: lab.nodes[name].ip for name in NODES}
    daemon.write_zone(
        firewall.ZONE, firewall.zone_xml(cfg, ALL, ports.peers_by_role(NODES, mine, CONFIG))
    )
    daemon.cmd("--reload")
    try:
        senders = [lab.nodes["cp-2"], lab.nodes["worker"]]
        assert ip_protocol_reaches(lab.nodes["fw"], senders, VRRP) == set()
    finally:
        xml = firewall.zone_xml(CONFIG, ALL, ports.peers_by_role(NODES, mine, CONFIG))
        daemon.write_zone(firewall.ZONE, xml)
        daemon.cmd("--reload")
