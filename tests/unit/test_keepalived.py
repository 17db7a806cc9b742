"""kubesalt.keepalived: the keepalived.conf of a control-plane node, in full."""

import copy
import pathlib
import subprocess
import sys
from collections import ChainMap
from functools import partial
from unittest.mock import Mock

import pytest
import salt.config
import salt.modules.grains
import salt.modules.mine
import salt.utils.data
import salt.utils.templates
import yaml
from salt.exceptions import CommandExecutionError

from kubesalt import keepalived, mine
from kubesalt.errors import AddressError, ConfigError, KubesaltError
from tests.unit.loader import load

SALT = pathlib.Path(__file__).resolve().parents[2] / "salt"
DROP_IN = "/etc/systemd/system/keepalived.service.d/kubesalt.conf"

CONFIG = {
    "networks": {
        "controlPlane": {"cidr": ["192.168.10.0/24", "198.51.100.128/25"]},
        "workloadPlane": {"cidr": ["10.20.0.0/16"], "mtu": None},
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


def config(**api):
    cfg = copy.deepcopy(CONFIG)
    cfg["apiServer"]["keepalived"].update(api.pop("keepalived", {}))
    cfg["apiServer"].update(api)
    return cfg


HEAD = """\
# Managed by kubesalt (state kubesalt.keepalived); local changes are overwritten.
# See docs/keepalived.md.

global_defs {{
    router_id {node}
    enable_script_security
    script_user nobody
}}

vrrp_script kubesalt_apiserver_health {{
    script "/etc/keepalived/kubesalt-check-apiserver"
    interval 1
    timeout 1
    fall 2
    rise 2
}}
"""


def render(cfg, node, ip, interface, ips):
    return keepalived.render_conf(keepalived.settings(cfg, node, ip, interface, ips))


def test_one_control_plane_node_lists_loopback_so_nothing_is_multicast():
    # A lone node is listed with itself only: keepalived 2.2.7 would multicast with
    # an empty peer list, so loopback stands in.
    assert render(CONFIG, "cp-1", "198.51.100.130", "eth1", ["198.51.100.130"]) == HEAD.format(
        node="cp-1"
    ) + (
        "\n"
        "vrrp_instance kubesalt_apiserver {\n"
        "    state BACKUP\n"
        "    nopreempt\n"
        "    interface eth1\n"
        "    virtual_router_id 51\n"
        "    version 3\n"
        "    priority 250\n"
        "    advert_int 0.25\n"
        "    garp_master_delay 1\n"
        "    garp_master_repeat 3\n"
        "    unicast_src_ip 198.51.100.130\n"
        "    check_unicast_src\n"
        "    unicast_peer {\n"
        "        127.0.0.1\n"
        "    }\n"
        "    virtual_ipaddress {\n"
        "        198.51.100.200/25 dev eth1\n"
        "    }\n"
        "    track_script {\n"
        "        kubesalt_apiserver_health\n"
        "    }\n"
        "}\n"
    )


def test_one_node_missing_from_the_mine_still_renders():
    lone = render(CONFIG, "cp-1", "198.51.100.130", "eth1", [])
    assert lone == render(CONFIG, "cp-1", "198.51.100.130", "eth1", ["198.51.100.130"])


def test_three_nodes_vip_in_the_second_cidr():
    ips = ["198.51.100.132", "198.51.100.130", "198.51.100.131"]  # mine order is random
    assert render(CONFIG, "cp-2", "198.51.100.131", "ens4", ips) == HEAD.format(node="cp-2") + (
        "\n"
        "vrrp_instance kubesalt_apiserver {\n"
        "    state BACKUP\n"
        "    nopreempt\n"
        "    interface ens4\n"
        "    virtual_router_id 51\n"
        "    version 3\n"
        "    priority 170\n"
        "    advert_int 0.25\n"
        "    garp_master_delay 1\n"
        "    garp_master_repeat 3\n"
        "    unicast_src_ip 198.51.100.131\n"
        "    check_unicast_src\n"
        "    unicast_peer {\n"
        "        198.51.100.130\n"
        "        198.51.100.132\n"
        "    }\n"
        "    virtual_ipaddress {\n"
        "        198.51.100.200/25 dev ens4\n"
        "    }\n"
        "    track_script {\n"
        "        kubesalt_apiserver_health\n"
        "    }\n"
        "}\n"
    )


def test_vip_in_the_first_cidr_takes_its_prefix():
    cfg = config(host="192.168.10.250")
    settings = keepalived.settings(cfg, "cp-1", "192.168.10.11", "eth0", ["192.168.10.11"])
    assert settings.vip == "192.168.10.250/24"


FIVE = ["198.51.100.134", "198.51.100.133", "198.51.100.132", "198.51.100.131", "198.51.100.130"]


@pytest.mark.parametrize(
    ("ip", "priority", "peers"),
    [
        ("198.51.100.130", 250, ["131", "132", "133", "134"]),
        ("198.51.100.131", 202, ["130", "132", "133", "134"]),
        ("198.51.100.132", 154, ["130", "131", "133", "134"]),
        ("198.51.100.133", 106, ["130", "131", "132", "134"]),
        ("198.51.100.134", 58, ["130", "131", "132", "133"]),
    ],
)
def test_five_nodes(ip, priority, peers):
    peer_lines = "".join(f"        198.51.100.{p}\n" for p in peers)
    assert render(CONFIG, "cp-x", ip, "bond0", FIVE) == HEAD.format(node="cp-x") + (
        "\n"
        "vrrp_instance kubesalt_apiserver {\n"
        "    state BACKUP\n"
        "    nopreempt\n"
        "    interface bond0\n"
        "    virtual_router_id 51\n"
        "    version 3\n"
        f"    priority {priority}\n"
        "    advert_int 0.25\n"
        "    garp_master_delay 1\n"
        "    garp_master_repeat 3\n"
        f"    unicast_src_ip {ip}\n"
        "    check_unicast_src\n"
        "    unicast_peer {\n"
        f"{peer_lines}"
        "    }\n"
        "    virtual_ipaddress {\n"
        "        198.51.100.200/25 dev bond0\n"
        "    }\n"
        "    track_script {\n"
        "        kubesalt_apiserver_health\n"
        "    }\n"
        "}\n"
    )


def test_ipv6_three_nodes():
    cfg = config(host="fd00:10:1::100")
    cfg["networks"]["controlPlane"]["cidr"] = ["fd00:10:0::/64", "fd00:10:1::/64"]
    ips = ["fd00:10:1::c", "fd00:10:1::a", "fd00:10:1::b"]
    assert render(cfg, "cp-1", "fd00:10:1::a", "eth0", ips) == HEAD.format(node="cp-1") + (
        "\n"
        "vrrp_instance kubesalt_apiserver {\n"
        "    state BACKUP\n"
        "    nopreempt\n"
        "    interface eth0\n"
        "    virtual_router_id 51\n"
        "    version 3\n"
        "    priority 250\n"
        "    advert_int 0.25\n"
        "    garp_master_delay 1\n"
        "    garp_master_repeat 3\n"
        "    unicast_src_ip fd00:10:1::a\n"
        "    check_unicast_src\n"
        "    unicast_peer {\n"
        "        fd00:10:1::b\n"
        "        fd00:10:1::c\n"
        "    }\n"
        "    virtual_ipaddress {\n"
        "        fd00:10:1::100/64 dev eth0\n"
        "    }\n"
        "    track_script {\n"
        "        kubesalt_apiserver_health\n"
        "    }\n"
        "}\n"
    )


def test_ipv6_lone_node_lists_ipv6_loopback():
    cfg = config(host="fd00:10:1::100")
    cfg["networks"]["controlPlane"]["cidr"] = ["fd00:10:1::/64"]
    settings = keepalived.settings(cfg, "cp-1", "fd00:10:1::a", "eth0", ["fd00:10:1::a"])
    assert settings.peers == ("::1",)


def test_password_falls_back_to_vrrp2_with_whole_second_adverts():
    cfg = config(keepalived={"authPassword": "s3cret"})
    ips = ["198.51.100.130", "198.51.100.131", "198.51.100.132"]
    assert render(cfg, "cp-1", "198.51.100.130", "eth0", ips) == HEAD.format(node="cp-1") + (
        "\n"
        "vrrp_instance kubesalt_apiserver {\n"
        "    state BACKUP\n"
        "    nopreempt\n"
        "    interface eth0\n"
        "    virtual_router_id 51\n"
        "    version 2\n"
        "    priority 250\n"
        "    advert_int 1\n"
        "    garp_master_delay 1\n"
        "    garp_master_repeat 3\n"
        "    unicast_src_ip 198.51.100.130\n"
        "    check_unicast_src\n"
        "    unicast_peer {\n"
        "        198.51.100.131\n"
        "        198.51.100.132\n"
        "    }\n"
        "    authentication {\n"
        "        auth_type PASS\n"
        "        auth_pass s3cret\n"
        "    }\n"
        "    virtual_ipaddress {\n"
        "        198.51.100.200/25 dev eth0\n"
        "    }\n"
        "    track_script {\n"
        "        kubesalt_apiserver_health\n"
        "    }\n"
        "}\n"
    )


def test_adding_a_node_keeps_every_setting_but_peers_and_priority():
    # The reload after a join changes only the peer list and the priorities; with
    # nopreempt the holder keeps the VIP (checked for real in the integration test).
    before = keepalived.settings(
        CONFIG, "cp-2", "198.51.100.131", "eth0", ["198.51.100.131", "198.51.100.132"]
    )
    after = keepalived.settings(
        CONFIG,
        "cp-2",
        "198.51.100.131",
        "eth0",
        ["198.51.100.130", "198.51.100.131", "198.51.100.132"],
    )
    changed = {k for k in before.__dataclass_fields__ if getattr(before, k) != getattr(after, k)}
    assert changed == {"peers", "priority"}
    assert (before.priority, after.priority) == (250, 170)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, [250]),
        (2, [250, 130]),
        (3, [250, 170, 90]),
        (7, [250, 216, 182, 148, 114, 80, 46]),
    ],
)
def test_priorities_are_distinct_and_valid(count, expected):
    ips = [f"198.51.100.{10 + i}" for i in range(count)]
    assert [keepalived.priority_of(ip, ips) for ip in ips] == expected


def error_of(cfg, ip="198.51.100.130", interface="eth0", ips=("198.51.100.131",)):
    with pytest.raises(KubesaltError) as info:
        keepalived.settings(cfg, "cp-1", ip, interface, list(ips))
    return info


def test_error_dns_name_host():
    info = error_of(config(host="api.example.test"))
    assert info.type is ConfigError
    assert str(info.value) == (
        "apiServer.host: 'api.example.test' is not an IP address; keepalived needs the VIP "
        "as an address (use a DNS name only with apiServer.keepalived.enabled: false)"
    )


def test_error_vip_outside_the_control_plane_cidrs():
    info = error_of(config(host="203.0.113.7"))
    assert str(info.value) == (
        "apiServer.host: 203.0.113.7 is in none of networks.controlPlane.cidr "
        "(192.168.10.0/24, 198.51.100.128/25); with apiServer.keepalived.enabled the VIP "
        "must be a free address of a control-plane network"
    )


def test_error_vip_is_a_node_ip():
    info = error_of(config(host="198.51.100.131"))
    assert str(info.value) == (
        "apiServer.host: 198.51.100.131 is also the control-plane IP of a node; "
        "the VIP must be an address no node owns"
    )
    info = error_of(config(host="198.51.100.130"))
    assert str(info.value) == (
        "apiServer.host: 198.51.100.130 is the control-plane IP of cp-1; the VIP must be "
        "an address no node owns"
    )


def test_error_vip_family_differs_from_the_node():
    cfg = config(host="fd00:10:1::100")
    cfg["networks"]["controlPlane"]["cidr"] = ["198.51.100.128/25", "fd00:10:1::/64"]
    assert str(error_of(cfg).value) == (
        "apiServer.host: fd00:10:1::100 is IPv6 but the control-plane IP of cp-1 is IPv4 "
        "(198.51.100.130); VRRP carries one family: pick a VIP of the control-plane family"
    )


def test_error_peer_of_another_family():
    info = error_of(CONFIG, ips=("198.51.100.131", "fd00::1"))
    assert str(info.value) == (
        "control-plane IP fd00::1 (from the mine) is not IPv4 like 198.51.100.130; every "
        "control-plane node needs an IP of the same family"
    )


@pytest.mark.parametrize("vrid", [0, 256, "51", True, None])
def test_error_virtual_router_id(vrid):
    info = error_of(config(keepalived={"virtualRouterId": vrid}))
    assert str(info.value) == (
        f"apiServer.keepalived.virtualRouterId: {vrid!r} is not an integer from 1 to 255"
    )


@pytest.mark.parametrize(
    ("password", "detail"),
    [
        ("123456789", "got 9 characters"),
        ("a b", "got 3 characters including ' '"),
        ("pa#ss!", "got 6 characters including '!' '#'"),
        ("pässwd", "got 6 characters"),
    ],
)
def test_error_password(password, detail):
    info = error_of(config(keepalived={"authPassword": password}))
    assert str(info.value) == (
        "apiServer.keepalived.authPassword: must be 1 to 8 printable ASCII characters "
        "without spaces, quotes, '#', '!', braces or backslashes (keepalived uses only 8 "
        f"characters); {detail}; choose another password or leave it empty (VRRPv3, faster "
        "failover)"
    )


def test_error_password_with_ipv6():
    cfg = config(host="fd00:10:1::100", keepalived={"authPassword": "abc"})
    cfg["networks"]["controlPlane"]["cidr"] = ["fd00:10:1::/64"]
    info = error_of(cfg, ip="fd00:10:1::a", ips=["fd00:10:1::b"])
    assert str(info.value) == (
        "apiServer.keepalived.authPassword: set, but VRRP authentication needs VRRPv2, which "
        "has no IPv6; leave it empty for an IPv6 VIP"
    )


def test_error_keepalived_disabled():
    info = error_of(config(keepalived={"enabled": False}))
    assert str(info.value).startswith("apiServer.keepalived.enabled: false;")


@pytest.mark.parametrize("interface", ["", None, "eth 0", "a" * 16])
def test_error_bad_interface(interface):
    info = error_of(CONFIG, interface=interface)
    assert info.type is AddressError
    assert str(info.value) == (
        f"interface of the control-plane IP: {interface!r} is not an interface name; "
        "check kubesalt_network.interface_of on this node"
    )


def test_error_bad_node_ip():
    info = error_of(CONFIG, ip="not-an-ip")
    assert info.type is AddressError
    assert str(info.value) == "control-plane IP of cp-1: 'not-an-ip' is not an IP address"


def test_check_script_is_python_that_fails_when_nothing_listens(tmp_path):
    script = keepalived.render_check_script(port=1)
    assert script.startswith("#!/usr/bin/python3 -I\n")
    assert '"127.0.0.1", 1, timeout=0.8, context=context' in script
    path = tmp_path / "check"
    path.write_text(script)
    result = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, timeout=10)
    assert (result.returncode, result.stderr) == (1, b"")


@pytest.mark.parametrize("port", [0, 70000, "6443", True])
def test_check_script_port_error(port):
    with pytest.raises(ConfigError) as info:
        keepalived.render_check_script(port=port)
    assert str(info.value) == f"apiServer.port: {port!r} is not a port from 1 to 65535"


# --- The Salt side: loader module and state files -------------------------------------

kubesalt_keepalived = load("_modules", "kubesalt_keepalived")
NODES = {
    "cp-1": {"roles": ["bootstrap", "ca", "control-plane", "etcd", "node"]},
    "cp-2": {"roles": ["control-plane", "etcd"]},
    "cp-3": {"roles": ["control-plane", "etcd"]},
    "w-1": {"roles": ["node"]},
}
MINE = {
    "cp-1": "198.51.100.130",
    "cp-2": "198.51.100.131",
    "cp-3": "198.51.100.132",
    "w-1": "198.51.100.140",
    "gone": "198.51.100.150",  # still in the mine, no longer in the inventory
}


@pytest.fixture
def mine_get():
    # As Salt's mine.get with a list of functions: {function: {minion: data}}.
    return Mock(spec=salt.modules.mine.get, return_value={"control_plane_ip": dict(MINE)})


@pytest.fixture
def grains_get():
    return Mock(spec=salt.modules.grains.get, return_value="198.51.100.131")


@pytest.fixture
def interface_of():
    return Mock(return_value="eth1")


@pytest.fixture
def configure_loader_modules(mine_get, grains_get, interface_of):
    return {
        kubesalt_keepalived: {
            "__pillar__": {"kubesalt": {**copy.deepcopy(CONFIG), "nodes": NODES}},
            "__grains__": {"id": "cp-2"},
            "__salt__": {
                "mine.get": mine_get,
                "grains.get": grains_get,
                "kubesalt_network.interface_of": interface_of,
            },
        }
    }


def test_module_virtual_name():
    assert kubesalt_keepalived.__virtual__() == "kubesalt_keepalived"


def test_module_peers_come_from_the_mine_filtered_by_role(mine_get):
    assert kubesalt_keepalived.control_plane_ips() == [
        "198.51.100.130",
        "198.51.100.131",
        "198.51.100.132",
    ]
    mine_get.assert_called_once_with("*", list(mine.FUNCTIONS))


def test_module_config_is_the_pure_rendering(grains_get, interface_of):
    assert kubesalt_keepalived.config() == render(
        CONFIG, "cp-2", "198.51.100.131", "eth1", ["198.51.100.130", "198.51.100.132"]
    )
    grains_get.assert_called_with("kubesalt:control_plane_ip")
    interface_of.assert_called_once_with("198.51.100.131")


def test_module_settings():
    assert kubesalt_keepalived.settings() == {
        "router_id": "cp-2",
        "interface": "eth1",
        "src_ip": "198.51.100.131",
        "peers": ["198.51.100.130", "198.51.100.132"],
        "vip": "198.51.100.200/25",
        "virtual_router_id": 51,
        "priority": 170,
        "version": 3,
        "advert_int": 0.25,
        "authentication": False,
        "check_script": "/etc/keepalived/kubesalt-check-apiserver",
    }


def test_module_check_script():
    assert kubesalt_keepalived.check_script() == keepalived.render_check_script(6443)


def test_module_translates_errors_once(grains_get):
    kubesalt_keepalived.__pillar__["kubesalt"]["apiServer"]["host"] = "api.example.test"
    with pytest.raises(CommandExecutionError) as info:
        kubesalt_keepalived.config()
    assert str(info.value).startswith("ConfigError: apiServer.host: 'api.example.test' is not")


def test_module_errors_without_grain_or_pillar(grains_get):
    grains_get.return_value = ""
    with pytest.raises(CommandExecutionError) as info:
        kubesalt_keepalived.config()
    assert str(info.value) == (
        "The grain kubesalt:control_plane_ip is not set on this node: run saltutil.sync_all "
        "and the kubesalt.node states first"
    )
    del kubesalt_keepalived.__pillar__["kubesalt"]
    with pytest.raises(CommandExecutionError) as info:
        kubesalt_keepalived.control_plane_ips()
    assert str(info.value).startswith("The pillar has no 'kubesalt' key")


def render_sls(path, pillar, functions, grains=None):
    opts = salt.config.minion_config(None)
    opts["file_client"] = "local"
    context = {
        "salt": {
            **functions,
            "pillar.get": partial(salt.utils.data.traverse_dict_and_list, pillar),
        },
        "pillar": pillar,
        "grains": grains or {},
        "opts": opts,
        "saltenv": "base",
        "sls": path,
    }
    base = SALT / path.replace(".", "/")
    text = (base / "init.sls" if base.is_dir() else base.with_suffix(".sls")).read_text()
    return yaml.safe_load(salt.utils.templates.render_jinja_tmpl(text, context))


def test_states_write_the_rendered_files():
    conf = render(CONFIG, "cp-2", "198.51.100.131", "eth1", ["198.51.100.130"])
    script = keepalived.render_check_script(6443)
    high = render_sls(
        "kubesalt.keepalived.configured",
        {},
        {
            "kubesalt_keepalived.config": lambda: conf,
            "kubesalt_keepalived.check_script": lambda: script,
        },
    )
    files = {
        dict(ChainMap(*state["file.managed"]))["name"]: dict(ChainMap(*state["file.managed"]))
        for sid, state in high.items()
        if sid != "include"
    }
    assert files[keepalived.CONF_PATH]["contents"] == conf
    assert files[keepalived.CONF_PATH]["mode"] == "0600"
    assert files[keepalived.CONF_PATH]["show_changes"] is False  # may hold authPassword
    assert files[keepalived.CHECK_SCRIPT_PATH]["contents"] == script
    assert files[keepalived.CHECK_SCRIPT_PATH]["mode"] == "0755"
    assert "Restart=on-failure" in files[DROP_IN]["contents"]
    assert high["include"] == [".installed"]


def test_running_state_reloads_on_configuration_changes():
    high = render_sls("kubesalt.keepalived.running", {}, {})
    state = dict(
        ChainMap(
            *high["Run keepalived and reload it when its configuration changes"]["service.running"]
        )
    )
    assert state == {
        "name": "keepalived",
        "enable": True,
        "reload": True,
        "watch": [{"sls": "kubesalt.keepalived.configured"}],
    }


@pytest.mark.parametrize(
    ("enabled", "expected"),
    [
        (True, {"include": [".running"]}),
        (
            False,
            {
                "Leave keepalived alone because apiServer.keepalived.enabled is false": {
                    "test.nop": []
                }
            },
        ),
    ],
)
def test_init_follows_the_switch(enabled, expected):
    pillar = {"kubesalt": {"apiServer": {"keepalived": {"enabled": enabled}}}}
    assert render_sls("kubesalt.keepalived", pillar, {}) == expected


def test_absent_undoes_everything():
    high = render_sls(
        "kubesalt.keepalived.absent", {}, {"pkg.version": lambda name: "1:2.2.7-1+b2"}
    )
    removed = {
        dict(ChainMap(*state["file.absent"]))["name"]
        for state in high.values()
        if "file.absent" in state
    }
    assert removed == {keepalived.CONF_PATH, keepalived.CHECK_SCRIPT_PATH, DROP_IN}
    # No onlyif (its check would load every state module): the SLS asks when it renders.
    assert dict(ChainMap(*high["Stop and disable keepalived"]["service.dead"])) == {
        "name": "keepalived",
        "enable": False,
    }
    assert "pkg.removed" in high["Remove the keepalived package"]


def test_absent_stops_nothing_where_keepalived_was_never_installed():
    """A dry run elsewhere must not say it would stop keepalived."""
    high = render_sls("kubesalt.keepalived.absent", {}, {"pkg.version": lambda name: ""})
    assert "Stop and disable keepalived" not in high
    assert all("require" not in dict(ChainMap(*state["file.absent"]))
               for state in high.values() if "file.absent" in state)  # fmt: skip
