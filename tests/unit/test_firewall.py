"""kubesalt.firewall: the firewalld zone of a node, in full."""

import copy
import re
import xml.etree.ElementTree as ET
from collections import ChainMap
from unittest.mock import Mock

import pytest
import salt.modules.mine
from salt.exceptions import CommandExecutionError

from kubesalt import firewall, mine, mine_ips, ports
from kubesalt.errors import ConfigError
from tests.unit.loader import load
from tests.unit.test_keepalived import render_sls

CONFIG = {
    "networks": {
        "controlPlane": {"cidr": ["192.168.10.0/24", "198.51.100.128/25"]},
        "workloadPlane": {"cidr": ["10.20.0.0/16", "10.30.0.0/16"], "mtu": None},
        "pods": "10.233.0.0/16",
        "services": "10.96.0.0/12",
    },
    "apiServer": {
        "host": "198.51.100.200",
        "port": 6443,
        "keepalived": {"enabled": True, "virtualRouterId": 51, "authPassword": None},
    },
    "firewall": {"enabled": True},
}
ALL = ["bootstrap", "ca", "control-plane", "etcd", "node"]


def inventory(control_planes, workers=1, base=130):
    nodes, ips = {}, {}
    for i in range(control_planes):
        name = f"cp-{i + 1}"
        nodes[name] = {"roles": ALL if i == 0 else ["control-plane", "etcd"]}
        ips[name] = f"198.51.100.{base + i}"
    for i in range(workers):
        nodes[f"w-{i + 1}"] = {"roles": ["node"]}
        ips[f"w-{i + 1}"] = f"198.51.100.{base + 20 + i}"
    return ports.peers_by_role(nodes, ips, CONFIG)


HEADER = """\
<?xml version="1.0" encoding="utf-8"?>
<!-- Managed by kubesalt (state kubesalt.firewall) from the port matrix;
     local changes are overwritten. See docs/firewall.md. -->
<zone target="default">
  <short>kubesalt</short>
  <description>kubesalt node: the ports of its roles, to the sources the port matrix gives, \
everything else rejected.</description>
"""


IPIP_V4 = '<protocol value="4"/>'  # IP-in-IP between IPv4 nodes (IP protocol 4)


def rich(family, source, body, comment):
    return (
        f"  <!-- {comment} -->\n"
        f'  <rule family="{family}">\n'
        f'    <source address="{source}"/>\n'
        f"    {body}\n"
        "    <accept/>\n"
        "  </rule>\n"
    )


def test_worker_in_a_three_control_plane_cluster():
    tcp = '<port port="{}" protocol="tcp"/>'.format
    workload = ["10.20.0.0/16", "10.30.0.0/16"]
    assert firewall.zone_xml(CONFIG, ["node"], inventory(3)) == (
        HEADER + '  <port port="22" protocol="tcp"/>\n'
        '  <port port="10256" protocol="tcp"/>\n'
        '  <port port="30000-32767" protocol="tcp"/>\n'
        '  <port port="30000-32767" protocol="udp"/>\n'
        + "".join(rich("ipv4", c, tcp(179), "kube-router-bgp") for c in workload)
        + rich("ipv4", "10.233.0.0/16", tcp(10250), "kubelet")
        + "".join(rich("ipv4", f"198.51.100.{130 + i}", tcp(10250), "kubelet") for i in range(3))
        + "".join(rich("ipv4", c, IPIP_V4, "kube-router-ipip") for c in workload)
        + "</zone>\n"
    )


def test_single_node_cluster_first_node_has_every_role():
    peers = inventory(1, workers=0)
    cp = "198.51.100.130"
    cidrs = ["10.20.0.0/16", "10.30.0.0/16", "192.168.10.0/24", "198.51.100.128/25"]
    tcp = '<port port="{}" protocol="tcp"/>'.format
    expected = (
        HEADER + '  <port port="22" protocol="tcp"/>\n'
        '  <port port="6443" protocol="tcp"/>\n'
        '  <port port="10256" protocol="tcp"/>\n'
        '  <port port="30000-32767" protocol="tcp"/>\n'
        '  <port port="30000-32767" protocol="udp"/>\n'
        + "".join(rich("ipv4", c, tcp(179), "kube-router-bgp") for c in cidrs[:2])
        + rich("ipv4", cp, tcp(2379), "etcd-client")
        + rich("ipv4", cp, tcp(2380), "etcd-peer")
        + "".join(rich("ipv4", c, tcp(4505), "salt-publish") for c in cidrs)
        + "".join(rich("ipv4", c, tcp(4506), "salt-request") for c in cidrs)
        + "".join(rich("ipv4", c, tcp(8443), "repository") for c in cidrs)
        + rich("ipv4", "10.233.0.0/16", tcp(10250), "kubelet")
        + rich("ipv4", cp, tcp(10250), "kubelet")
        + "".join(rich("ipv4", c, IPIP_V4, "kube-router-ipip") for c in cidrs[:2])
        + rich("ipv4", cp, '<protocol value="vrrp"/>', "vrrp")
        + "</zone>\n"
    )
    assert firewall.zone_xml(CONFIG, ALL, peers) == expected


def openings(rules):
    return [(r.protocol, r.port, r.source) for r in rules]


@pytest.mark.parametrize("count", [3, 5])
def test_second_control_plane_node(count):
    # cp-2 has control-plane and etcd: etcd peer and client, kubelet and VRRP come from
    # every control-plane node; nothing of the bootstrap role is open.
    peers = inventory(count)
    cps = [f"198.51.100.{130 + i}" for i in range(count)]
    rules = ports.node_rules(["control-plane", "etcd"], CONFIG, peers)
    workload = ["10.20.0.0/16", "10.30.0.0/16"]
    assert openings(rules) == (
        [("tcp", "22", None)]
        + [("tcp", "179", cidr) for cidr in workload]
        + [("tcp", "2379", ip) for ip in cps]
        + [("tcp", "2380", ip) for ip in cps]
        + [("tcp", "6443", None)]
        + [("tcp", "10250", "10.233.0.0/16")]
        + [("tcp", "10250", ip) for ip in cps]
        + [("tcp", "10256", None), ("tcp", "30000-32767", None)]
        + [("udp", "30000-32767", None)]
        + [("ipip", None, cidr) for cidr in workload]
        + [("vrrp", None, ip) for ip in cps]
    )
    assert {r.family for r in rules if r.source} == {"ipv4"}
    assert rules[3].entries == ("etcd-client",)


def test_ipv6_control_plane_with_dual_stack_pods():
    cfg = copy.deepcopy(CONFIG)
    cfg["networks"]["controlPlane"]["cidr"] = ["fd00:10::/64"]
    cfg["networks"]["workloadPlane"]["cidr"] = ["fd00:20::/64"]
    cfg["networks"]["pods"] = "10.233.0.0/16,fd00:233::/56"
    cfg["networks"]["services"] = "fd00:96::/112"
    nodes = {"a": {"roles": ["control-plane", "etcd"]}, "b": {"roles": ["control-plane"]}}
    peers = ports.peers_by_role(nodes, {"a": "fd00:10::b", "b": "FD00:10::A"}, cfg)
    assert peers == {"control-plane": ["fd00:10::a", "fd00:10::b"], "etcd": ["fd00:10::b"]}
    tcp = '<port port="{}" protocol="tcp"/>'.format
    expected = (
        HEADER + '  <port port="22" protocol="tcp"/>\n'
        '  <port port="6443" protocol="tcp"/>\n'
        '  <port port="10256" protocol="tcp"/>\n'
        '  <port port="30000-32767" protocol="tcp"/>\n'
        '  <port port="30000-32767" protocol="udp"/>\n'
        + rich("ipv6", "fd00:20::/64", tcp(179), "kube-router-bgp")
        + rich("ipv6", "fd00:10::a", tcp(2379), "etcd-client")
        + rich("ipv6", "fd00:10::b", tcp(2379), "etcd-client")
        + rich("ipv6", "fd00:10::b", tcp(2380), "etcd-peer")
        + rich("ipv4", "10.233.0.0/16", tcp(10250), "kubelet")
        + rich("ipv6", "fd00:10::a", tcp(10250), "kubelet")
        + rich("ipv6", "fd00:10::b", tcp(10250), "kubelet")
        + rich("ipv6", "fd00:233::/56", tcp(10250), "kubelet")
        + rich("ipv6", "fd00:20::/64", '<protocol value="41"/>', "kube-router-ipip")
        + rich("ipv6", "fd00:10::a", '<protocol value="vrrp"/>', "vrrp")
        + rich("ipv6", "fd00:10::b", '<protocol value="vrrp"/>', "vrrp")
        + "</zone>\n"
    )
    assert firewall.zone_xml(cfg, ["control-plane", "etcd"], peers) == expected


def test_no_vrrp_without_keepalived():
    cfg = copy.deepcopy(CONFIG)
    cfg["apiServer"]["keepalived"]["enabled"] = False
    rules = ports.node_rules(["control-plane"], cfg, inventory(3))
    assert [r for r in rules if r.protocol == "vrrp"] == []
    assert ("tcp", "6443", None) in openings(rules)


def test_the_zone_is_well_formed_xml_firewalld_can_parse():
    root = ET.fromstring(firewall.zone_xml(CONFIG, ALL, inventory(3)))
    assert root.tag == "zone" and root.get("target") == "default"
    assert {child.tag for child in root} == {"short", "description", "port", "rule"}
    for rule in root.iter("rule"):
        assert [c.tag for c in rule][0] == "source"
        assert [c.tag for c in rule][-1] == "accept"


def test_a_node_joining_adds_its_sources_everywhere():
    before = firewall.zone_xml(CONFIG, ["control-plane", "etcd"], inventory(2))
    after = firewall.zone_xml(CONFIG, ["control-plane", "etcd"], inventory(3))
    assert "198.51.100.132" not in before
    assert after.count('<source address="198.51.100.132"/>') == 4  # 2379 2380 10250 vrrp


# Planes on different networks: each node's workload-plane IP (the kubelet's --node-ip).
WORKLOAD_IPS = {"cp-1": "10.20.0.130", "cp-2": "10.20.0.131", "w-1": "10.30.0.150"}


def two_plane_peers():
    nodes = {
        "cp-1": {"roles": ALL},
        "cp-2": {"roles": ["control-plane", "etcd"]},
        "w-1": {"roles": ["node"]},
    }
    cp_ips = {"cp-1": "198.51.100.130", "cp-2": "198.51.100.131", "w-1": "198.51.100.150"}
    return (
        ports.peers_by_role(nodes, cp_ips, CONFIG),
        ports.peers_by_role(nodes, WORKLOAD_IPS, CONFIG, "workloadPlane"),
    )


def test_the_kubelet_admits_both_ips_of_the_control_plane_nodes_when_the_planes_differ():
    """kube-apiserver reaches the kubelet on the InternalIP (the workload-plane IP), so
    it may come from a control-plane node's workload-plane IP; nothing else follows."""
    peers, workload_peers = two_plane_peers()
    assert workload_peers["control-plane"] == ["10.20.0.130", "10.20.0.131"]
    rules = ports.node_rules(["node"], CONFIG, peers, workload_peers=workload_peers)
    kubelet = [r.source for r in rules if r.port == "10250"]
    assert kubelet == [
        "10.20.0.130", "10.20.0.131", "10.233.0.0/16", "198.51.100.130", "198.51.100.131",
    ]  # fmt: skip
    assert rules == sorted(rules, key=ports._sort_key)
    # BGP and the tunnels stay on the workload plane; the worker's IPs open nothing.
    assert [r.source for r in rules if r.port == "179"] == ["10.20.0.0/16", "10.30.0.0/16"]
    assert [r.source for r in rules if r.protocol == "ipip"] == ["10.20.0.0/16", "10.30.0.0/16"]
    assert not [r for r in rules if r.source in ("10.30.0.150", "198.51.100.150")]
    # On a control-plane node, etcd and VRRP keep the control-plane IPs only.
    cp_rules = ports.node_rules(
        ["control-plane", "etcd"], CONFIG, peers, workload_peers=workload_peers
    )
    by_port = {(r.protocol, r.port): [] for r in cp_rules}
    for rule in cp_rules:
        by_port[(rule.protocol, rule.port)].append(rule.source)
    assert by_port[("tcp", "2379")] == ["198.51.100.130", "198.51.100.131"]
    assert by_port[("vrrp", None)] == ["198.51.100.130", "198.51.100.131"]


def test_without_workload_peers_the_planes_are_one_network():
    peers, _ = two_plane_peers()
    assert ports.node_rules(["node"], CONFIG, peers) == ports.node_rules(
        ["node"], CONFIG, peers, workload_peers=peers
    )


def test_the_zone_file_of_a_worker_when_the_planes_differ():
    peers, workload_peers = two_plane_peers()
    xml = firewall.zone_xml(CONFIG, ["node"], peers, workload_peers=workload_peers)
    tcp = '<port port="10250" protocol="tcp"/>'
    assert rich("ipv4", "10.20.0.130", tcp, "kubelet") in xml
    assert rich("ipv4", "10.20.0.131", tcp, "kubelet") in xml
    assert xml == firewall.render_zone_xml(
        firewall.desired_zone(CONFIG, ["node"], peers, workload_peers=workload_peers)
    )


def test_a_bad_workload_plane_mine_entry_is_named_with_its_plane():
    nodes = {"cp-1": {"roles": ["control-plane"]}, "w-1": {"roles": ["node"]}}
    mine = {"cp-1": "10.20.0.130", "w-1": "198.51.100.150"}  # w-1 gave a control-plane IP
    assert ports.peers_by_role(nodes, mine, CONFIG, "workloadPlane") == {
        "control-plane": ["10.20.0.130"]
    }
    with pytest.raises(ConfigError) as info:
        mine_ips.check_own("w-1", mine, CONFIG, "workloadPlane")
    assert str(info.value) == (
        "mine workload_plane_ip of w-1: '198.51.100.150' is outside networks.workloadPlane.cidr "
        "(10.20.0.0/16, 10.30.0.0/16); on w-1 run state.apply kubesalt.node (it chooses the IP "
        "again from networks.workloadPlane.cidr) and mine.update; until then w-1 is left out "
        "of certificates, firewalls and peer lists"
    )


def test_an_unknown_plane_is_refused():
    with pytest.raises(ConfigError, match="plane 'podPlane' is unknown; use one of "
                       "controlPlane, workloadPlane"):  # fmt: skip
        mine_ips.usable({"cp-1": "10.20.0.130"}, CONFIG, "podPlane")


def test_a_node_not_yet_in_the_mine_is_left_out():
    nodes = {"cp-1": {"roles": ["control-plane"]}, "cp-2": {"roles": ["control-plane"]}}
    assert ports.peers_by_role(nodes, {"cp-1": "198.51.100.130"}, CONFIG) == {
        "control-plane": ["198.51.100.130"]
    }


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        ("garbage", "is not an IP address"),
        ("5", "is not an IP address"),  # netaddr would read 0.0.0.5
        (["198.51.100.9"], "is not an IP address"),
        ("10.20.0.5", "is outside networks.controlPlane.cidr (192.168.10.0/24, 198.51.100.128/25)"),
        ("fd00::5", "is outside networks.controlPlane.cidr (192.168.10.0/24, 198.51.100.128/25)"),
    ],
)
def test_a_bad_mine_entry_leaves_that_node_out_of_every_peer_map(bad, what):
    nodes = {"cp-1": {"roles": ["control-plane", "etcd"]}, "w-1": {"roles": ["etcd", "node"]}}
    mine = {"cp-1": "198.51.100.130", "w-1": bad}
    assert ports.peers_by_role(nodes, mine, CONFIG) == {
        "control-plane": ["198.51.100.130"],
        "etcd": ["198.51.100.130"],
    }
    with pytest.raises(ConfigError) as info:
        mine_ips.check_own("w-1", mine, CONFIG)
    assert str(info.value) == (
        f"mine control_plane_ip of w-1: {bad!r} {what}; on w-1 run state.apply kubesalt.node "
        "(it chooses the IP again from networks.controlPlane.cidr) and mine.update; until "
        "then w-1 is left out of certificates, firewalls and peer lists"
    )
    mine_ips.check_own("cp-1", mine, CONFIG)  # the others are fine


def test_error_bad_pod_cidr():
    cfg = copy.deepcopy(CONFIG)
    cfg["networks"]["pods"] = "10.233.0.0/16,not-a-cidr"
    with pytest.raises(ConfigError) as info:
        firewall.zone_xml(cfg, ["node"], {})
    assert str(info.value) == (
        "networks.pods: 'not-a-cidr' is not a CIDR; use a network such as 10.233.0.0/16"
    )


def test_error_missing_pods():
    cfg = copy.deepcopy(CONFIG)
    del cfg["networks"]["pods"]
    with pytest.raises(ConfigError) as info:
        firewall.zone_xml(cfg, ["node"], {})
    assert str(info.value) == "networks.pods: missing from the configuration"


def test_pods_reach_only_the_api_server_and_the_kubelet():
    """Never salt-master, etcd or the repository; the service network is no source at all."""
    root = ET.fromstring(firewall.zone_xml(CONFIG, ALL, inventory(3)))
    from_pods = [
        (port.get("port"), port.get("protocol")) if port is not None else "everything"
        for rule in root.iter("rule")
        if rule.find("source").get("address") == "10.233.0.0/16"
        for port in [rule.find("port")]
    ]
    assert from_pods == [("10250", "tcp")]  # 6443 is open to anyone, pods included
    assert {"port": "6443", "protocol": "tcp"} in [port.attrib for port in root.findall("port")]
    assert all(rule.find("source").get("address") != "10.96.0.0/12" for rule in root.iter("rule"))


def test_default_zone_line():
    assert firewall.default_zone_line() == "DefaultZone=kubesalt"
    assert firewall.ZONE_PATH == "/etc/firewalld/zones/kubesalt.xml"


# --- The Salt side: loader module and state files -------------------------------------

kubesalt_firewall = load("_modules", "kubesalt_firewall")
NODES = {
    "cp-1": {"roles": ALL},
    "cp-2": {"roles": ["control-plane", "etcd"]},
    "w-1": {"roles": ["node"]},
}
MINE = {"cp-1": "198.51.100.130", "cp-2": "198.51.100.131", "w-1": "198.51.100.150"}


WORKLOAD_MINE = dict(WORKLOAD_IPS)


@pytest.fixture
def mine_get():
    published = {"control_plane_ip": dict(MINE), "workload_plane_ip": dict(WORKLOAD_MINE)}
    mock = Mock(
        spec=salt.modules.mine.get,
        side_effect=lambda tgt, funs: {f: dict(published[f]) for f in funs if f in published},
    )
    mock.published = published
    return mock


@pytest.fixture
def configure_loader_modules(mine_get):
    return {
        kubesalt_firewall: {
            "__pillar__": {"kubesalt": {**copy.deepcopy(CONFIG), "nodes": copy.deepcopy(NODES)}},
            "__grains__": {"id": "cp-2"},
            "__salt__": {"mine.get": mine_get},
        }
    }


def test_module_virtual_name():
    assert kubesalt_firewall.__virtual__() == "kubesalt_firewall"


def test_module_zone_is_the_pure_rendering(mine_get):
    peers = ports.peers_by_role(NODES, MINE, CONFIG)
    workload_peers = ports.peers_by_role(NODES, WORKLOAD_MINE, CONFIG, "workloadPlane")
    assert kubesalt_firewall.zone_xml() == firewall.zone_xml(
        CONFIG, ["control-plane", "etcd"], peers, workload_peers=workload_peers
    )
    # Both planes (and every other kubesalt mine function) in one round trip to the master.
    assert [c.args for c in mine_get.call_args_list] == [("*", list(mine.FUNCTIONS))]


def test_module_opens_the_kubelet_to_the_control_plane_nodes_workload_ips():
    kubelet = [rule["source"] for rule in kubesalt_firewall.rules() if rule["port"] == "10250"]
    assert kubelet == [
        "10.20.0.130", "10.20.0.131", "10.233.0.0/16", "198.51.100.130", "198.51.100.131",
    ]  # fmt: skip
    assert kubesalt_firewall.workload_peers() == {
        "bootstrap": ["10.20.0.130"],
        "ca": ["10.20.0.130"],
        "control-plane": ["10.20.0.130", "10.20.0.131"],
        "etcd": ["10.20.0.130", "10.20.0.131"],
        "node": ["10.20.0.130", "10.30.0.150"],
    }


def test_module_a_bad_workload_plane_entry_stops_only_its_own_node(mine_get):
    mine_get.published["workload_plane_ip"]["cp-1"] = "192.168.10.5"  # a control-plane IP
    assert "10.20.0.130" not in kubesalt_firewall.zone_xml()  # cp-2 renders without it
    kubesalt_firewall.__grains__["id"] = "cp-1"
    kubesalt_firewall.__pillar__["kubesalt"]["nodes"]["cp-1"]["roles"] = ["control-plane"]
    with pytest.raises(
        CommandExecutionError, match="^ConfigError: mine workload_plane_ip of cp-1: '192.168.10.5'"
    ):
        kubesalt_firewall.zone_xml()


def test_module_peers_roles_and_enabled():
    assert kubesalt_firewall.peers() == {
        "bootstrap": ["198.51.100.130"],
        "ca": ["198.51.100.130"],
        "control-plane": ["198.51.100.130", "198.51.100.131"],
        "etcd": ["198.51.100.130", "198.51.100.131"],
        "node": ["198.51.100.130", "198.51.100.150"],
    }
    assert kubesalt_firewall.roles() == ["control-plane", "etcd"]
    assert kubesalt_firewall.enabled() is True


def test_module_rules():
    rules = kubesalt_firewall.rules()
    assert rules[0] == {
        "protocol": "tcp",
        "port": "22",
        "source": None,
        "family": None,
        "entries": ["ssh"],
    }
    assert {
        "protocol": "vrrp",
        "port": None,
        "source": "198.51.100.131",
        "family": "ipv4",
        "entries": ["vrrp"],
    } in rules


def test_module_required_free_ports():
    assert kubesalt_firewall.required_free_ports() == [
        {"name": "kubelet", "protocol": "tcp", "port": "10250", "listener": "kubelet API"},
        {"name": "kubelet-healthz", "protocol": "tcp", "port": "10248", "listener": "kubelet healthz"},
        {"name": "kube-proxy-healthz", "protocol": "tcp", "port": "10256", "listener": "kube-proxy healthz"},
        {"name": "kube-proxy-metrics", "protocol": "tcp", "port": "10249", "listener": "kube-proxy metrics"},
        {"name": "kube-router-bgp", "protocol": "tcp", "port": "179", "listener": "kube-router (GoBGP, the nodes' iBGP full mesh)"},
        {"name": "kube-router-health", "protocol": "tcp", "port": "20244", "listener": "kube-router healthz"},
        {"name": "kube-router-gobgp-api", "protocol": "tcp", "port": "50051", "listener": "kube-router GoBGP gRPC API"},
        {"name": "kube-apiserver", "protocol": "tcp", "port": "6443", "listener": "kube-apiserver"},
        {"name": "kube-controller-manager", "protocol": "tcp", "port": "10257", "listener": "kube-controller-manager"},
        {"name": "kube-scheduler", "protocol": "tcp", "port": "10259", "listener": "kube-scheduler"},
        {"name": "etcd-client", "protocol": "tcp", "port": "2379", "listener": "etcd client"},
        {"name": "etcd-peer", "protocol": "tcp", "port": "2380", "listener": "etcd peer"},
        {"name": "etcd-metrics", "protocol": "tcp", "port": "2381", "listener": "etcd metrics and health"},
    ]  # fmt: skip


def test_module_follows_a_configured_api_server_port():
    kubesalt_firewall.__pillar__["kubesalt"]["apiServer"]["port"] = 7443
    free = {entry["name"]: entry["port"] for entry in kubesalt_firewall.required_free_ports()}
    assert free["kube-apiserver"] == "7443"
    opened = [rule["port"] for rule in kubesalt_firewall.rules() if rule["protocol"] == "tcp"]
    assert "7443" in opened and "6443" not in opened
    assert '<port port="7443" protocol="tcp"/>' in kubesalt_firewall.zone_xml()


def test_module_a_bad_mine_entry_stops_only_its_own_node(mine_get):
    mine_get.published["control_plane_ip"]["w-1"] = "not-an-ip"
    assert "198.51.100.150" not in kubesalt_firewall.zone_xml()  # cp-2 renders without w-1
    kubesalt_firewall.__grains__["id"] = "w-1"
    with pytest.raises(CommandExecutionError, match="^ConfigError: mine control_plane_ip of w-1"):
        kubesalt_firewall.zone_xml()


def test_module_error_node_not_in_the_inventory():
    kubesalt_firewall.__grains__["id"] = "stranger"
    with pytest.raises(CommandExecutionError) as info:
        kubesalt_firewall.zone_xml()
    assert str(info.value) == (
        "The pillar has no roles for stranger (kubesalt:nodes:stranger:roles): declare the "
        "node in the inventory on the bootstrap node, then saltutil.refresh_pillar"
    )


def test_module_translates_errors_once():
    kubesalt_firewall.__pillar__["kubesalt"]["networks"]["pods"] = "nonsense"
    with pytest.raises(CommandExecutionError) as info:
        kubesalt_firewall.zone_xml()
    assert str(info.value) == (
        "ConfigError: networks.pods: 'nonsense' is not a CIDR; use a network such as 10.233.0.0/16"
    )


def states(high, function):
    return {
        sid: dict(ChainMap(*state[function])) for sid, state in high.items() if function in state
    }


def test_configured_state_writes_the_zone_and_the_default_zone():
    xml = firewall.zone_xml(CONFIG, ["node"], {})
    functions = {
        "kubesalt_firewall.zone_xml": lambda: xml,
        "config.get": lambda key, default="": "remote" if key == "file_client" else default,
        "file.file_exists": lambda path: True,
    }
    high = render_sls("kubesalt.firewall.configured", {}, functions)
    assert states(high, "file.managed") == {
        "Write the kubesalt firewalld zone from the port matrix": {
            "name": firewall.ZONE_PATH,
            "contents": xml,
            "user": "root",
            "group": "root",
            "mode": "0644",
            "makedirs": True,
            "require": [{"sls": "kubesalt.firewall.installed"}],
        }
    }
    replace = states(high, "file.replace")["Make kubesalt the default firewalld zone"]
    assert replace["name"] == firewall.FIREWALLD_CONF
    assert replace["repl"] == firewall.default_zone_line()
    assert re.sub(replace["pattern"], replace["repl"], "DefaultZone=public", flags=re.M) == (
        "DefaultZone=kubesalt"
    )


def test_a_local_rerun_keeps_the_zone_the_master_wrote():
    """bootstrap.sh's salt-call --local has no mine: it must not drop the other nodes."""
    functions = {
        "kubesalt_firewall.zone_xml": lambda: "",
        "config.get": lambda key, default="": "local" if key == "file_client" else default,
        "file.file_exists": lambda path: path == firewall.ZONE_PATH,
    }
    high = render_sls("kubesalt.firewall.configured", {}, functions)
    assert states(high, "file.managed") == {}
    assert states(high, "file.exists") == {
        "Write the kubesalt firewalld zone from the port matrix": {
            "name": firewall.ZONE_PATH,
            "require": [{"sls": "kubesalt.firewall.installed"}],
        }
    }


def test_running_state_reloads_only_on_changes_and_restarts_the_minion_after_a_first_start():
    from kubesalt.orchestrate.steps import MINION_RESTART, RESTART_DELAY

    high = render_sls("kubesalt.firewall.running", {}, {})
    assert states(high, "cmd.run") == {
        "Reload firewalld with the kubesalt zone": {
            "name": "firewall-cmd --reload",
            "onchanges": [{"sls": "kubesalt.firewall.configured"}],
            "require": [{"service": "Run firewalld"}],
        },
        # The orchestration waits for this restart by the state's ID and its delay.
        MINION_RESTART: {
            "name": f"systemd-run --no-block --collect --on-active={RESTART_DELAY} "
            "--timer-property=AccuracySec=100ms systemctl restart salt-minion",
            "onchanges": [{"pkg": "Install the firewalld package"}, {"service": "Run firewalld"}],
        },
    }


@pytest.mark.parametrize(
    ("enabled", "expected"),
    [
        (True, {"include": [".running"]}),
        (False, {"Leave firewalld alone because firewall.enabled is false": {"test.nop": []}}),
    ],
)
def test_init_leaves_firewalld_alone_when_disabled(enabled, expected):
    assert render_sls(
        "kubesalt.firewall", {"kubesalt": {"firewall": {"enabled": enabled}}}, {}
    ) == (expected)


def test_absent_restores_public_and_removes_the_zone():
    high = render_sls("kubesalt.firewall.absent", {}, {})
    assert states(high, "file.absent") == {
        "Remove the kubesalt firewalld zone": {
            "name": firewall.ZONE_PATH,
            "require": [{"file": "Restore public as the default firewalld zone"}],
        }
    }
    restore = states(high, "file.replace")["Restore public as the default firewalld zone"]
    assert (restore["pattern"], restore["repl"]) == ("^DefaultZone=kubesalt$", "DefaultZone=public")
