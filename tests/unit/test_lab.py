"""Unit tests of the lab's pure parts (kubesalt_lab.model)."""

from __future__ import annotations

import json
import pathlib

import pytest

from kubesalt_lab import cli, host, model

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_lab_node_list_is_valid():
    assert model.check_nodes() == []
    assert [n.name for n in model.NODES if n.bootstrap] == ["bootstrap"]
    assert all(n.ip.startswith("198.51.100.") for n in model.NODES)


def test_the_lab_finds_the_project_from_its_own_package():
    assert cli.PROJECT == ROOT
    assert cli.LAB_CONFIG.is_file()
    assert (cli.PROJECT / "iso" / "build").is_file()


def test_every_node_gets_the_stand_ins_from_the_lab_package(tmp_path, monkeypatch):
    monkeypatch.setattr(host, "ssh_keypair", lambda: ("private\n", "public\n"))
    host.write_node_files(str(tmp_path), model.node("cp2"), "seed")
    for unit, (script, _description) in model.STANDINS.items():
        copied = tmp_path / model.STANDIN_DIR.lstrip("/") / script
        source = ROOT / "src" / "kubesalt_lab" / "standins" / script
        assert copied.read_text() == source.read_text()
        assert (tmp_path / f"etc/systemd/system/{unit}.service").read_text() == model.standin_unit(
            unit
        )
        wanted = tmp_path / f"etc/systemd/system/multi-user.target.wants/{unit}.service"
        assert wanted.readlink() == pathlib.Path(f"/etc/systemd/system/{unit}.service")


@pytest.mark.parametrize(
    ("nodes", "problem"),
    [
        (
            (
                model.Node("bootstrap", "198.51.100.10", bootstrap=True),
                model.Node("w", "192.0.2.5"),
            ),
            "not a host address of 198.51.100.0/24",
        ),
        (
            (
                model.Node("bootstrap", "198.51.100.10", bootstrap=True),
                model.Node("w", "198.51.100.10"),
            ),
            "used twice",
        ),
        (
            (
                model.Node("bootstrap", "198.51.100.10", bootstrap=True),
                model.Node("w", "198.51.100.100"),
            ),
            "or is the VIP",
        ),
        ((model.Node("b", "198.51.100.10"),), "exactly one node must be the bootstrap node"),
        ((model.Node("a-very-long-name", "198.51.100.10", bootstrap=True),), "at most 11 letters"),
        ((model.Node("b", "198.51.100.255", bootstrap=True),), "not a host address"),
    ],
)
def test_check_nodes_refuses(nodes, problem):
    assert any(problem in p for p in model.check_nodes(nodes))


def test_node_lookup():
    assert model.node("worker1").ip == "198.51.100.20"
    with pytest.raises(model.LabError, match="nodes: bootstrap, cp2, cp3, worker1"):
        model.node("cp9")


def test_rootfs_key_depends_on_the_package_list_only_as_a_set():
    base = model.rootfs_key()
    assert model.rootfs_key(tuple(reversed(model.ROOTFS_PACKAGES))) == base
    assert model.rootfs_key((*model.ROOTFS_PACKAGES, "curl")) != base
    assert model.rootfs_key(suite="trixie") != base


def test_rootfs_holds_nothing_of_ours():
    assert set(model.ROOTFS_PACKAGES) == {
        "ca-certificates", "dbus", "iproute2", "netbase", "openssh-server", "python3", "systemd", "systemd-sysv",
    }  # fmt: skip
    cmd = model.mmdebstrap_command("/tmp/r/")
    assert cmd[:3] == ["mmdebstrap", "--quiet", "--variant=apt"]
    assert cmd[-3:] == ["bookworm", "/tmp/r/", "deb http://deb.debian.org/debian bookworm main"]
    assert model.POLICY_RC_D.endswith("exit 0\n")
    assert not any("kubesalt" in part for part in cmd)


def test_network_file_has_no_gateway_and_no_dhcp():
    text = model.network_file("198.51.100.20")
    assert "Name=host0" in text
    assert "Address=198.51.100.20/24" in text
    assert "DHCP=no" in text
    assert "Gateway" not in text
    assert model.NETWORK_FILE.startswith("/etc/systemd/network/10-")


def test_hosts_file_names_every_node():
    assert (
        "198.51.100.10 bootstrap\n198.51.100.11 cp2\n198.51.100.12 cp3\n198.51.100.20 worker1\n"
        in model.hosts_file()
    )


def test_machine_id_is_stable_per_lab_and_node():
    assert model.machine_id("a", "s") == model.machine_id("a", "s")
    assert model.machine_id("a", "s") != model.machine_id("b", "s")
    assert len(model.machine_id("a", "s")) == 32


def test_nspawn_command_for_a_host_without_systemd():
    cmd = model.nspawn_command("worker1", "/var/lib/kubesalt-lab/nodes/worker1/root")
    for flag in (
        "--boot",
        "--register=no",
        "--keep-unit",
        "--network-bridge=ksbr0",
        "--machine=worker1",
    ):
        assert flag in cmd


def test_table():
    text = model.table(
        [
            {
                "name": "bootstrap",
                "roles": ("bootstrap", "ca"),
                "ip": "198.51.100.10",
                "ips": ["198.51.100.10", "198.51.100.100"],
                "vip": True,
                "etcd": "3 members, 3 healthy",
                "state": "running",
                "services": ["nginx"],
            },
            {
                "name": "worker1",
                "roles": (),
                "ip": "198.51.100.20",
                "state": "down",
                "services": [],
            },
        ]
    )
    assert text.splitlines() == [
        "NODE       ROLES         IPS                           STATE    VIP     ETCD                  SERVICES UP",
        "bootstrap  bootstrap,ca  198.51.100.10 198.51.100.100  running  holder  3 members, 3 healthy  nginx",
        "worker1    -             198.51.100.20                 down     -       -                     -",
    ]  # fmt: skip


def test_the_lab_nodes_and_their_roles():
    assert {n.name: n.roles for n in model.NODES} == {
        "bootstrap": ("bootstrap", "ca", "control-plane", "etcd", "node"),
        "cp2": ("control-plane", "etcd", "node"),
        "cp3": ("control-plane", "etcd", "node"),
        "worker1": ("node",),
    }


def test_orchestrate_command_skips_what_the_lab_cannot_run():
    assert model.orchestrate_command("deploy_node", "cp2", "kubesalt-0.1.0") == [
        "state.orchestrate",
        "kubesalt.orchestrate.deploy_node",
        "saltenv=kubesalt-0.1.0",
        'pillar={"node":"cp2","skip_phases":["kubelet","wait-control-plane","addons"]}',
    ]
    assert model.orchestrate_command("remove_node", "cp3", "kubesalt-0.1.0", force=True)[-1] == (
        'pillar={"node":"cp3","force":true,"skip_phases":["drain","delete-node"]}'
    )
    together = model.orchestrate_command("deploy_node", ["cp2", "cp3"], "kubesalt-0.1.0", skip=())
    assert together[-1] == 'pillar={"nodes":["cp2","cp3"]}'


def test_saltenv_of_product_txt():
    assert model.saltenv_of("NAME=kubesalt\nVERSION=0.1.0\n") == "kubesalt-0.1.0"
    with pytest.raises(model.LabError, match="no VERSION="):
        model.saltenv_of("NAME=kubesalt\n")


def test_failed_states_and_summary_of_orchestrate_json():
    output = (
        '{"data": {"bootstrap_master": {"a_|-x_|-x_|-y": {"__id__": "Phase key", "result": false, '
        '"comment": "phase key: waited", "changes": {}}, "b": {"result": true, "comment": "ok", '
        '"changes": {"x": 1}}}}}'
    )
    assert model.failed_states(output) == ["Phase key: phase key: waited"]
    assert model.summary(output) == "2 states, 1 changed"
    assert model.failed_states("not json") == []


def test_ipv4_addresses():
    text = '[{"addr_info": [{"family": "inet", "local": "198.51.100.10"}, {"family": "inet", "local": "198.51.100.100"}]}]'
    assert model.ipv4_addresses(text) == ["198.51.100.10", "198.51.100.100"]


def test_grains_file_and_standin_units():
    assert model.grains_file().endswith("kubesalt_skip_phases:\n  - containerd\n  - kubelet\n")
    unit = model.standin_unit("kubesalt-lab-staticpods")
    assert "ExecStart=/usr/bin/python3 /usr/local/lib/kubesalt-lab/staticpods.py" in unit
    assert "kubesalt lab only" in unit


def test_pending_states_are_those_that_changed_or_would_change():
    out = json.dumps({"bootstrap_master": {
        "a": {"__id__": "A", "result": True, "comment": "ok", "changes": {}},
        "b": {"__id__": "B", "result": None, "comment": "would", "changes": {}},
        "c": {"__id__": "C", "result": True, "comment": "did", "changes": {"x": 1}},
    }})  # fmt: skip
    assert model.pending_states(out) == ["B: would", "C: did"]
