"""kubesalt.ports: the port matrix, its validation, and the generated docs table."""

import copy
import pathlib
import re

import pytest
import yaml

from kubesalt import ports
from kubesalt.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = {
    "networks": {
        "controlPlane": {"cidr": ["198.51.100.0/25"]},
        "workloadPlane": {"cidr": ["10.20.0.0/16"], "mtu": None},
        "pods": "10.233.0.0/16",
        "services": "10.96.0.0/12",
    },
    "apiServer": {
        "host": "198.51.100.100",
        "port": 6443,
        "keepalived": {"enabled": True, "virtualRouterId": 51, "authPassword": None},
    },
    "firewall": {"enabled": True},
}
GOOD = {
    "name": "thing",
    "roles": ["node"],
    "protocol": "tcp",
    "port": 1234,
    "listener": "thingd",
    "bind": "0.0.0.0",
    "from": ["anyone"],
}


def test_docs_table_is_up_to_date():
    # Regenerate with: .venv/bin/python -m kubesalt.ports --write
    assert (ROOT / "docs/ports.md").read_text() == ports.markdown_table(), (
        "docs/ports.md is out of date: run `python -m kubesalt.ports --write`"
    )


def test_main_prints_and_writes(tmp_path, capsys):
    target = tmp_path / "ports.md"
    assert ports.main(["--write", "--path", str(target)]) == 0
    assert target.read_text() == ports.markdown_table()
    assert ports.main([]) == 0
    assert capsys.readouterr().out == f"wrote {target}\n" + ports.markdown_table()


def test_the_packaged_matrix_is_valid_and_has_kubeadms_ports():
    matrix = ports.load_matrix()
    index = {(e.protocol, e.port): e for e in matrix}
    # kubeadm 1.33's ports (kubernetes.io "Ports and Protocols"), plus ours.
    expected = {
        ("tcp", "6443"): ("control-plane", ("anyone", "pods")),
        ("tcp", "2379"): ("etcd", ("peers:control-plane",)),
        ("tcp", "2380"): ("etcd", ("peers:etcd",)),
        ("tcp", "2381"): ("etcd", ("local",)),
        # kube-apiserver reaches the kubelet on the InternalIP, the workload-plane IP.
        ("tcp", "10250"): (
            "node",
            ("peers:control-plane", "workload-peers:control-plane", "pods"),
        ),
        ("tcp", "10248"): ("node", ("local",)),
        ("tcp", "10257"): ("control-plane", ("local",)),
        ("tcp", "10259"): ("control-plane", ("local",)),
        ("tcp", "10256"): ("node", ("anyone",)),
        ("tcp", "10249"): ("node", ("local",)),
        ("tcp", "30000-32767"): ("node", ("anyone",)),
        ("udp", "30000-32767"): ("node", ("anyone",)),
        ("vrrp", None): ("control-plane", ("peers:control-plane",)),
        ("tcp", "4505"): ("bootstrap", ("control-plane-cidrs", "workload-plane-cidrs")),
        ("tcp", "4506"): ("bootstrap", ("control-plane-cidrs", "workload-plane-cidrs")),
        ("tcp", "8443"): ("bootstrap", ("control-plane-cidrs", "workload-plane-cidrs")),
        ("tcp", "5000"): ("bootstrap", ("local",)),
        ("tcp", "22"): ("all", ("anyone",)),
    }
    for key, (role, sources) in expected.items():
        assert key in index, f"{key} missing from the matrix"
        assert role in index[key].roles, key
        assert index[key].sources == sources, key
    assert ("tcp", "10255") not in index  # kubelet read-only port is disabled


def test_ports_to_free_for_a_worker_and_a_bootstrap_node():
    worker = [(e.protocol, e.port) for e in ports.ports_to_free(["node"], CONFIG)]
    assert worker == [
        ("tcp", "10250"),
        ("tcp", "10248"),
        ("tcp", "10256"),
        ("tcp", "10249"),
        ("tcp", "179"),
        ("tcp", "20244"),
        ("tcp", "50051"),
    ]
    first = [
        e.port
        for e in ports.ports_to_free(["bootstrap", "ca", "control-plane", "etcd", "node"], CONFIG)
    ]
    assert first == [
        "10250", "10248", "10256", "10249", "179", "20244", "50051", "6443", "10257", "10259",
        "2379", "2380", "2381", "4505", "4506", "8443", "5000",
    ]  # fmt: skip


def test_entries_follow_the_keepalived_switch():
    cfg = copy.deepcopy(CONFIG)
    names = {e.name for e in ports.entries_for_roles(["control-plane"], cfg)}
    assert "vrrp" in names
    cfg["apiServer"]["keepalived"]["enabled"] = False
    names = {e.name for e in ports.entries_for_roles(["control-plane"], cfg)}
    assert "vrrp" not in names
    del cfg["apiServer"]["keepalived"]
    with pytest.raises(ConfigError) as info:
        ports.entries_for_roles(["control-plane"], cfg)
    assert str(info.value) == (
        "apiServer.keepalived.enabled: missing from the configuration; the port matrix needs "
        "it (pass the normalized configuration from kubesalt.config)"
    )


def test_error_unknown_role_of_a_node():
    with pytest.raises(ConfigError) as info:
        ports.entries_for_roles(["master"], CONFIG)
    assert str(info.value) == (
        "node roles: 'master' not known; allowed: bootstrap, ca, control-plane, etcd, node"
    )


def test_port_range_property():
    entry = ports.validate_matrix({"ports": [dict(GOOD, port="30000-32767")]})[0]
    assert entry.port_range == (30000, 32767)
    single = ports.validate_matrix({"ports": [dict(GOOD, port="80-80")]})[0]
    assert (single.port, single.port_range) == ("80", (80, 80))


def invalid(*entries):
    with pytest.raises(ports.MatrixError) as info:
        ports.validate_matrix({"ports": list(entries)})
    return str(info.value).split("\n- ")[1:]


@pytest.mark.parametrize(
    ("change", "problems"),
    [
        (
            {"roles": ["master"]},
            [
                "ports[0] (thing).roles: 'master' is not a role; allowed: bootstrap, ca, "
                "control-plane, etcd, node, all"
            ],
        ),
        (
            {"roles": []},
            [
                "ports[0] (thing).roles: [] is not a non-empty list; use roles from bootstrap, "
                "ca, control-plane, etcd, node, all"
            ],
        ),
        (
            {"protocol": "sctp"},
            ["ports[0] (thing).protocol: 'sctp' is not supported; allowed: tcp, udp, vrrp, ipip"],
        ),
        (
            {"port": "http"},
            [
                "ports[0] (thing).port: 'http' is not a port; use a number (6443), a range "
                "('30000-32767') or a configuration key (apiServer.port)"
            ],
        ),
        (
            {"port": "90-80"},
            [
                "ports[0] (thing).port: '90-80' is out of range; ports are 1-65535 and a "
                "range is 'low-high' with low <= high"
            ],
        ),
        (
            {"port": 70000},
            [
                "ports[0] (thing).port: 70000 is out of range; ports are 1-65535 and a range "
                "is 'low-high' with low <= high"
            ],
        ),
        ({"port": None}, ["ports[0] (thing).port: missing; protocol tcp needs a port or range"]),
        (
            {"protocol": "vrrp"},
            ["ports[0] (thing).port: 1234 given for protocol vrrp, which has no ports; remove it"],
        ),
        (
            {"from": ["everyone"]},
            [
                "ports[0] (thing).from: 'everyone' is not a source; allowed: anyone, local, "
                "control-plane-cidrs, workload-plane-cidrs, pods, or peers:<role> / "
                "workload-peers:<role> with a role from bootstrap, ca, control-plane, etcd, node"
            ],
        ),
        (
            {"from": ["peers:worker"]},
            [
                "ports[0] (thing).from: 'peers:worker' is not a source; allowed: anyone, "
                "local, control-plane-cidrs, workload-plane-cidrs, pods, or peers:<role> / "
                "workload-peers:<role> with a role from bootstrap, ca, control-plane, etcd, node"
            ],
        ),
        (
            {"from": ["workload-peers:worker"]},
            [
                "ports[0] (thing).from: 'workload-peers:worker' is not a source; allowed: "
                "anyone, local, control-plane-cidrs, workload-plane-cidrs, pods, or "
                "peers:<role> / workload-peers:<role> with a role from bootstrap, ca, "
                "control-plane, etcd, node"
            ],
        ),
        (
            {"from": ["local", "anyone"]},
            [
                "ports[0] (thing).from: 'local' cannot be combined with other sources "
                "(['local', 'anyone']); a local-only port is closed to every other address"
            ],
        ),
        ({"listener": ""}, ["ports[0] (thing).listener: '' is missing or empty; describe it"]),
        ({"must_be_free": "yes"}, ["ports[0] (thing).must_be_free: 'yes' is not true or false"]),
        (
            {"when": "firewall.enabled"},
            [
                "ports[0] (thing).when: 'firewall.enabled' is not a known switch; allowed: "
                "apiServer.keepalived.enabled"
            ],
        ),
        (
            {"colour": "red"},
            [
                "ports[0] (thing): unknown key(s) colour; allowed: name, roles, protocol, port, "
                "listener, bind, from, must_be_free, when, notes"
            ],
        ),
        (
            {"name": "", "protocol": "icmp", "from": []},
            [
                "ports[0].name: '' is missing or empty; give each entry a name",
                "ports[0].protocol: 'icmp' is not supported; allowed: tcp, udp, vrrp, ipip",
                "ports[0].from: [] is not a non-empty list; use sources from anyone, local, "
                "control-plane-cidrs, workload-plane-cidrs, pods, peers:<role> or "
                "workload-peers:<role>",
            ],
        ),
    ],
)
def test_entry_errors_name_the_entry_the_value_and_the_fix(change, problems):
    assert invalid(dict(GOOD, **change)) == problems


def test_every_problem_is_reported_at_once():
    assert invalid(dict(GOOD, protocol="sctp"), "not a mapping", dict(GOOD, roles="node")) == [
        "ports[0] (thing).protocol: 'sctp' is not supported; allowed: tcp, udp, vrrp, ipip",
        "ports[1]: 'not a mapping' is not a mapping; each entry is a mapping",
        "ports[2] (thing).roles: 'node' is not a non-empty list; use roles from bootstrap, "
        "ca, control-plane, etcd, node, all",
    ]


def test_duplicates_and_overlaps():
    assert invalid(
        GOOD,
        dict(GOOD, port="1200-1300", name="range"),
        dict(GOOD, roles=["etcd"], name="elsewhere"),  # another role: no clash
        dict(GOOD, roles=["all"], protocol="udp", name="udp"),  # another protocol
        dict(GOOD, port=999, name="thing"),
    ) == [
        "ports (range): tcp 1200-1300 overlaps 'thing' on a shared role; merge the two "
        "entries or change the port",
        "ports (thing): the name is used twice; names are unique",
    ]


def test_top_level_error():
    with pytest.raises(ports.MatrixError) as info:
        ports.validate_matrix([GOOD])
    assert str(info.value) == (
        "port matrix: the top level must be a mapping with a 'ports' list; got list"
    )


def test_load_names_the_file(tmp_path):
    path = tmp_path / "ports.yaml"
    path.write_text(yaml.safe_dump({"ports": [dict(GOOD, protocol="sctp")]}))
    with pytest.raises(ports.MatrixError) as info:
        ports.load_matrix(path)
    assert str(info.value) == (
        f"{path}: port matrix is invalid:\n"
        "- ports[0] (thing).protocol: 'sctp' is not supported; allowed: tcp, udp, vrrp, ipip"
    )
    path.write_text("ports: [unclosed")
    with pytest.raises(ports.MatrixError) as info:
        ports.load_matrix(path)
    assert str(info.value).startswith(f"{path}: not valid YAML: ")


def test_anyone_wins_over_narrower_sources():
    matrix = ports.validate_matrix(
        {"ports": [dict(GOOD, **{"from": ["control-plane-cidrs", "anyone"]})]}
    )
    rules = ports.node_rules(["node"], CONFIG, {}, matrix)
    assert [(r.protocol, r.port, r.source, r.entries) for r in rules] == [
        ("tcp", "1234", None, ("thing",))
    ]


def test_sources_are_normalised_and_sorted():
    matrix = ports.validate_matrix({"ports": [dict(GOOD, **{"from": ["workload-plane-cidrs"]})]})
    cfg = copy.deepcopy(CONFIG)
    cfg["networks"]["workloadPlane"]["cidr"] = ["10.30.0.9/16", "fd00::/64", "10.20.0.0/16"]
    rules = ports.node_rules(["node"], cfg, {}, matrix)
    assert [(r.source, r.family) for r in rules] == [
        ("10.20.0.0/16", "ipv4"),
        ("10.30.0.0/16", "ipv4"),
        ("fd00::/64", "ipv6"),
    ]


def test_the_api_server_port_is_the_configured_one():
    entry = next(e for e in ports.load_matrix() if e.name == "kube-apiserver")
    assert (entry.port, entry.setting) == ("6443", "apiServer.port")  # the default, for docs
    cfg = copy.deepcopy(CONFIG)
    cfg["apiServer"]["port"] = 7443
    assert ports.port_number("kube-apiserver", cfg) == 7443
    configured = {e.name: e.port for e in ports.entries_for_roles(["control-plane"], cfg)}
    assert configured["kube-apiserver"] == "7443"
    assert "| 6443 (`apiServer.port`) | tcp | control-plane |" in ports.markdown_table()


def test_a_configured_api_server_port_reaches_the_firewall_and_preflight():
    from kubesalt import firewall
    from kubesalt.bootstrap import preflight
    from kubesalt.roles import BOOTSTRAP_NODE_ROLES

    cfg = copy.deepcopy(CONFIG)
    cfg["apiServer"]["port"] = 7443
    openings = {(r.protocol, r.port) for r in ports.node_rules(["control-plane"], cfg, {})}
    assert ("tcp", "7443") in openings and ("tcp", "6443") not in openings
    zone = firewall.zone_xml(cfg, ["control-plane", "etcd"], {})
    assert '<port port="7443" protocol="tcp"/>' in zone and '"6443"' not in zone
    listeners = [
        preflight.Listener("tcp", "0.0.0.0", 7443, (41,)),
        preflight.Listener("tcp", "0.0.0.0", 6443, (42,)),
    ]
    problems = preflight.check_ports(cfg, listeners, {}, roles=BOOTSTRAP_NODE_ROLES)
    assert len(problems) == 1
    assert problems[0].startswith("port tcp/7443 (kube-apiserver, for kube-apiserver) is already")


def test_port_number_of_every_single_port_the_renderer_writes():
    assert [
        ports.port_number(name)
        for name in (
            "etcd-client",
            "etcd-peer",
            "etcd-metrics",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet-healthz",
            "repository",
        )
    ] == [2379, 2380, 2381, 10257, 10259, 10248, 8443]


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        (
            "nope",
            None,
            "the port matrix (kubesalt/data/ports.yaml) has no entry 'nope' with a port",
        ),
        ("vrrp", None, "has no entry 'vrrp' with a port"),
        ("nodeport-tcp", None, "port of nodeport-tcp: 30000-32767 is a range, not one port"),
        ("kube-apiserver", None, "port of kube-apiserver: set by apiServer.port; pass the"),
    ],
)
def test_port_number_errors(name, config, message):
    with pytest.raises(ports.MatrixError, match=re.escape(message)):
        ports.port_number(name, config)


@pytest.mark.parametrize(
    ("port", "message"),
    [
        (2380, "apiServer.port: 2380 is already the port of etcd-peer (tcp 2380); choose"),
        (31000, "apiServer.port: 31000 is already the port of nodeport-tcp (tcp 30000-32767)"),
        (8443, "apiServer.port: 8443 is already the port of repository (tcp 8443)"),
        (0, "apiServer.port: 0 is not a TCP port; use a port in 1-65535 (default 6443)"),
    ],
)
def test_a_configured_port_never_takes_another_entrys_port(port, message):
    cfg = copy.deepcopy(CONFIG)
    cfg["apiServer"]["port"] = port
    with pytest.raises(ConfigError, match=re.escape(message)):
        ports.entries_for_roles(["node"], cfg)


def test_the_configuration_check_refuses_a_taken_api_server_port():
    from kubesalt.config import validate
    from tests.unit.test_config import BASE

    _, problems = validate(dict(BASE, apiServer={"host": "198.51.100.100", "port": 10250}))
    assert [str(p) for p in problems] == [
        "apiServer.port = 10250: is already the port of kubelet (tcp 10250) in the port matrix "
        "(docs/ports.md). Fix: choose a port no other kubesalt listener uses (default 6443)."
    ]
