"""Unit tests of the lab's pure parts (kubesalt_lab.model)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import signal
import subprocess

import pytest

from kubesalt import roles
from kubesalt_lab import cli, host, model

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def lab_dirs(tmp_path, monkeypatch):
    """Every test here gets the lab's state and cgroups in tmp_path, never the real ones: a
    lab may be up on this machine, and kill_node SIGKILLs what a node's cgroups hold.
    `lab_dirs(node, *pids, sub=...)` writes a cgroup.procs as the kernel would."""
    state_dir = tmp_path / "state"
    monkeypatch.setattr(model, "STATE_DIR", str(state_dir))
    monkeypatch.setattr(host, "STATE_FILE", str(state_dir / "state.json"))
    monkeypatch.setattr(host, "CGROUP_ROOT", str(tmp_path / "cgroup"))

    def cgroup(node, *pids, sub="payload"):
        path = tmp_path / "cgroup" / "unified" / model.NAME / node / sub
        path.mkdir(parents=True, exist_ok=True)
        (path / "cgroup.procs").write_text("".join(f"{pid}\n" for pid in pids))

    return cgroup


def test_no_test_here_reaches_the_real_lab():
    assert not host.CGROUP_ROOT.startswith("/sys/")
    assert not host.STATE_FILE.startswith("/var/lib/")


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
        (
            (model.Node("a-very-long-name", "198.51.100.10", bootstrap=True),),
            "1 to 11 lowercase letters",
        ),
        ((model.Node("b", "198.51.100.255", bootstrap=True),), "not a host address"),
    ],
)
def test_check_nodes_refuses(nodes, problem):
    assert any(problem in p for p in model.check_nodes(nodes))


def test_node_lookup():
    assert model.node("worker1").ip == "198.51.100.20"
    with pytest.raises(model.LabError, match="nodes: bootstrap, cp2, cp3, worker1$"):
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


# -- lab.sh kill | start | add ---------------------------------------------------------

CP = ",".join((roles.CONTROL_PLANE, roles.ETCD, roles.NODE))


def added(name, ip, *node_roles, **extra):
    return {"added": True, "ip": ip, "roles": list(node_roles), "root": f"/r/{name}",
            "launcher": None, "leader": None, **extra}  # fmt: skip


def test_lab_nodes_are_the_fixed_ones_then_the_added_ones_by_address():
    assert model.lab_nodes({}) == model.NODES
    state = {"nodes": {"cp2": {"launcher": 1}, "w9": added("w9", "198.51.100.21", roles.NODE),
                       "cp4": added("cp4", "198.51.100.13", *CP.split(","))}}  # fmt: skip
    assert model.lab_nodes(state)[len(model.NODES) :] == (
        model.Node("cp4", "198.51.100.13", (roles.CONTROL_PLANE, roles.ETCD, roles.NODE)),
        model.Node("w9", "198.51.100.21", (roles.NODE,)),
    )


def test_next_free_ip_is_the_lowest_free_one_from_dot_10_and_never_the_vip():
    assert model.next_free_ip(model.NODES) == "198.51.100.13"
    busy = [model.Node(f"n{i}", f"198.51.100.{i}") for i in range(10, 100)]
    assert model.next_free_ip(busy) == "198.51.100.101"


def test_next_free_ip_stays_in_the_lab_subnet_and_says_when_it_is_full():
    busy = [model.Node(f"n{i}", f"198.51.100.{i}") for i in range(10, 100)]
    busy += [model.Node(f"m{i}", f"198.51.100.{i}") for i in range(101, 255)]
    with pytest.raises(model.LabError, match=r"198\.51\.100\.0/24 is full.*uses no other range"):
        model.next_free_ip(busy)
    small = [model.Node("a", "198.51.100.10")]
    assert model.next_free_ip(small, subnet="198.51.100.0/28", vip="198.51.100.11") == (
        "198.51.100.12"
    )
    with pytest.raises(model.LabError, match="full"):
        model.next_free_ip(
            [*small, model.Node("b", "198.51.100.12"), model.Node("c", "198.51.100.13"),
             model.Node("d", "198.51.100.14")], subnet="198.51.100.0/28", vip="198.51.100.11",
        )  # fmt: skip


def test_new_node_takes_its_roles_in_order_and_the_next_address():
    state = {"nodes": {"cp4": added("cp4", "198.51.100.13", roles.NODE)}}
    assert model.new_node("cp5", f"{CP},{roles.NODE}", state) == model.Node(
        "cp5", "198.51.100.14", (roles.CONTROL_PLANE, roles.ETCD, roles.NODE)
    )
    assert model.new_node("fresh", "", {}).roles == ()


@pytest.mark.parametrize(
    ("name", "roles_text", "problem"),
    [
        ("cp2", roles.NODE, "node name 'cp2' is taken"),
        ("cp4", roles.NODE, "node name 'cp4' is taken"),
        ("CP5", roles.NODE, "1 to 11 lowercase letters or digits"),
        ("averylongname", roles.NODE, "1 to 11 lowercase letters or digits"),
        ("cp5", "master", "unknown role(s) master: use bootstrap, ca, control-plane, etcd, node"),
        ("cp5", f"{roles.CA},{roles.NODE}", "ca: only the bootstrap node holds them"),
        ("cp5", roles.CONTROL_PLANE, "control-plane needs etcd too"),
    ],
)
def test_new_node_refuses(name, roles_text, problem):
    state = {"nodes": {"cp4": added("cp4", "198.51.100.13", roles.NODE)}}
    with pytest.raises(model.LabError) as err:
        model.new_node(name, roles_text, state)
    assert problem in str(err.value)


def test_power_states():
    assert model.power(None, False) == model.DOWN
    assert model.power({"launcher": 5}, False) == model.DOWN
    assert model.power({"killed": True, "launcher": None}, False) == model.KILLED
    assert model.power({"launcher": 5}, True) == model.RUNNING


def test_kill_then_start_keeps_the_overlay_and_refuses_the_wrong_state():
    entry = {"launcher": 5, "leader": 6, "root": "/r/cp3"}
    killed = model.killed_entry("cp3", entry, model.RUNNING)
    assert killed == {"launcher": None, "leader": None, "root": "/r/cp3", "killed": True}
    with pytest.raises(model.LabError, match="cp3 is already killed; .*lab.sh start cp3"):
        model.killed_entry("cp3", killed, model.KILLED)
    with pytest.raises(model.LabError, match="cp3 is not running .*nothing to kill"):
        model.killed_entry("cp3", entry, model.DOWN)
    assert model.started_entry("cp3", killed, model.KILLED) == {
        "launcher": None, "leader": None, "root": "/r/cp3",
    }  # fmt: skip
    with pytest.raises(model.LabError, match="cp3 is already running; .*lab.sh kill cp3"):
        model.started_entry("cp3", entry, model.RUNNING)


def test_entry_of_names_unknown_and_never_booted_nodes():
    with pytest.raises(model.LabError, match="no lab node 'cp9'; nodes: bootstrap, cp2, cp3"):
        model.entry_of({"nodes": {}}, "cp9")
    with pytest.raises(model.LabError, match="cp2 was never booted"):
        model.entry_of({}, "cp2")
    state = {"nodes": {"cp4": added("cp4", "198.51.100.13")}}
    assert model.entry_of(state, "cp4")["ip"] == "198.51.100.13"


def test_declare_args_use_the_recorded_roles_and_the_lab_key():
    node = model.Node("cp4", "198.51.100.13", (roles.CONTROL_PLANE, roles.ETCD, roles.NODE))
    assert model.declare_args(node) == [
        "kubesalt_inventory.declare", "cp4", "198.51.100.13", CP, "key=/root/.ssh/kubesalt-lab",
    ]  # fmt: skip
    with pytest.raises(model.LabError, match="cp4 has no roles recorded"):
        model.declare_args(model.Node("cp4", "198.51.100.13"))


def test_the_cli_parses_the_new_commands():
    args = cli.parser().parse_args(["add", "cp4", CP])
    assert (args.action, args.node, args.roles) == ("add", "cp4", CP)
    assert cli.parser().parse_args(["add", "w9"]).roles == ""
    assert cli.parser().parse_args(["kill", "cp3"]).node == "cp3"
    assert cli.parser().parse_args(["start", "cp3"]).node == "cp3"


def sleepers(count):
    return [subprocess.Popen(["sleep", "300"]) for _ in range(count)]


def test_kill_node_sigkills_every_process_in_the_node_cgroups(lab_dirs):
    procs = sleepers(3)
    lab_dirs("cp3", procs[0].pid, sub="supervisor")
    lab_dirs("cp3", procs[1].pid, sub="payload/system.slice")
    lab_dirs("cp2", procs[2].pid)
    try:
        assert host.running("cp3", {"launcher": None})
        assert sorted(host.kill_node("cp3", None)) == sorted(p.pid for p in procs[:2])
        assert [p.wait(timeout=5) for p in procs[:2]] == [-signal.SIGKILL] * 2
        assert not host.running("cp3", {"launcher": None})
        assert procs[2].poll() is None, "another node's process was touched"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_a_recorded_launcher_pid_now_held_by_another_process_is_not_the_node():
    (proc,) = sleepers(1)
    try:
        assert not host.is_launcher(proc.pid)
        assert host.kill_node("cp3", proc.pid) == []
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_cmd_kill_records_the_node_killed_and_start_boots_it_from_its_overlay(
    lab_dirs, monkeypatch, capsys
):
    (proc,) = sleepers(1)
    lab_dirs("cp3", proc.pid)
    host.save_state({"nodes": {"cp3": {"launcher": None, "leader": None, "root": "/r/cp3"}}})
    try:
        assert cli.cmd_kill(cli.parser().parse_args(["kill", "cp3"])) == 0
        assert proc.wait(timeout=5) == -signal.SIGKILL
    finally:
        proc.kill()
    assert host.load_state()["nodes"]["cp3"] == {
        "killed": True, "launcher": None, "leader": None, "root": "/r/cp3",
    }  # fmt: skip
    assert "lab.sh start cp3 boots it again" in capsys.readouterr().out
    with pytest.raises(model.LabError, match="already killed"):
        cli.cmd_kill(cli.parser().parse_args(["kill", "cp3"]))
    assert [row["state"] for row in cli.rows() if row["name"] == "cp3"] == ["killed"]

    booted = []
    monkeypatch.setattr(host, "is_mounted", lambda path: path == "/r/cp3")
    monkeypatch.setattr(host, "veth_down", booted.append)
    monkeypatch.setattr(host, "boot", lambda node, root: booted.append((node.name, root)) or 4242)
    monkeypatch.setattr(host, "wait_booted", lambda name, launcher: launcher + 1)
    assert cli.cmd_start(cli.parser().parse_args(["start", "cp3"])) == 0
    assert booted == ["cp3", ("cp3", "/r/cp3")]
    assert host.load_state()["nodes"]["cp3"] == {"launcher": 4242, "leader": 4243,
                                                 "root": "/r/cp3"}  # fmt: skip


def test_cmd_add_records_a_fresh_node_then_boots_it_and_prints_the_declare_command(
    lab_dirs, tmp_path, monkeypatch, capsys
):
    host.save_state({"seed": "s", "rootfs": "/rootfs", "nodes": {"bootstrap": {"launcher": 1}}})
    made = []

    def overlay_mount(name, lower):
        made.append((name, lower))
        root = tmp_path / "root"
        root.mkdir()
        return str(root)

    monkeypatch.setattr(host, "overlay_mount", overlay_mount)
    monkeypatch.setattr(host, "is_mounted", lambda path: True)
    monkeypatch.setattr(host, "ssh_keypair", lambda: ("private\n", "public\n"))
    monkeypatch.setattr(host, "veth_down", lambda name: False)
    monkeypatch.setattr(host, "boot", lambda node, root: 4242)
    monkeypatch.setattr(host, "wait_booted", lambda name, launcher: 4243)
    monkeypatch.setattr(cli, "saltenv", lambda: "kubesalt-0.1.0")
    assert cli.cmd_add(cli.parser().parse_args(["add", "cp4", CP])) == 0

    assert made == [("cp4", "/rootfs")]
    entry = host.load_state()["nodes"]["cp4"]
    assert entry == {"added": True, "ip": "198.51.100.13", "roles": CP.split(","),
                     "root": str(tmp_path / "state/nodes/cp4/root"), "launcher": 4242,
                     "leader": 4243}  # fmt: skip
    assert "198.51.100.13 cp4\n" in (tmp_path / "root/etc/hosts").read_text()
    assert "Address=198.51.100.13/24" in (tmp_path / "root" / model.NETWORK_FILE[1:]).read_text()
    assert (tmp_path / "root/etc/salt/grains").read_text() == model.grains_file()
    assert not (tmp_path / "root" / model.SSH_KEY[1:]).exists()
    out = capsys.readouterr().out
    assert (
        "scripts/lab.sh exec bootstrap salt-run kubesalt_inventory.declare cp4 198.51.100.13 "
        f"{CP} key=/root/.ssh/kubesalt-lab" in out
    )
    assert "kubesalt.orchestrate.deploy_node saltenv=kubesalt-0.1.0" in out
    with pytest.raises(model.LabError, match="'cp4' is taken"):
        cli.cmd_add(cli.parser().parse_args(["add", "cp4", CP]))


def test_start_fresh_boots_the_killed_bootstrap_node_on_an_empty_disk(
    lab_dirs, tmp_path, monkeypatch, capsys
):
    """The same machine reinstalled: its overlay's upper layer gone, the lab's files and
    the ISO written again, no bootstrap.yaml (bootstrap.sh --restore brings it back)."""
    base = tmp_path / "state/nodes/bootstrap"
    (base / "upper/etc/kubernetes/pki").mkdir(parents=True)
    (base / "upper/etc/kubernetes/pki/ca.key").write_text("old disk")
    (base / "work").mkdir()
    root = base / "root"
    host.save_state({"seed": "s", "rootfs": "/rootfs", "iso": "/lab.iso", "nodes": {
        "bootstrap": {"killed": True, "launcher": None, "leader": None, "root": str(root)}}})  # fmt: skip
    calls = []
    monkeypatch.setattr(host, "unmount_all", lambda where: calls.append(("umount", where)))

    def overlay_mount(name, lower):
        calls.append(("mount", name, lower, (base / "upper").exists()))
        root.mkdir(parents=True, exist_ok=True)
        return str(root)

    monkeypatch.setattr(host, "overlay_mount", overlay_mount)
    monkeypatch.setattr(host, "run", lambda cmd, what: calls.append(("run", cmd[0], what)))
    monkeypatch.setattr(host, "ssh_keypair", lambda: ("private\n", "public\n"))
    monkeypatch.setattr(host, "is_mounted", lambda path: True)
    monkeypatch.setattr(host, "veth_down", lambda name: False)
    monkeypatch.setattr(host, "boot", lambda node, root: 4242)
    monkeypatch.setattr(host, "wait_booted", lambda name, launcher: 4243)
    assert cli.cmd_start(cli.parser().parse_args(["start", "bootstrap", "--fresh"])) == 0
    assert calls == [
        ("umount", str(base)),
        ("mount", "bootstrap", "/rootfs", False),
        ("run", "xorriso", "extract /lab.iso into bootstrap"),
    ]
    assert not (base / "work").exists()
    assert (root / model.SSH_KEY[1:]).read_text() == "private\n"
    assert not (root / model.CONFIG_DEST[1:]).exists()
    assert "booted from a fresh disk" in capsys.readouterr().out
    assert host.load_state()["nodes"]["bootstrap"]["launcher"] == 4242


def test_start_fresh_refuses_a_running_node_before_touching_its_disk(lab_dirs, monkeypatch):
    host.save_state({"seed": "s", "nodes": {"cp3": {"launcher": 1, "root": "/r/cp3"}}})
    monkeypatch.setattr(host, "running", lambda name, entry: True)
    monkeypatch.setattr(host, "unmount_all", lambda where: pytest.fail("disk touched"))
    with pytest.raises(model.LabError, match="already running; power it off first"):
        cli.cmd_start(cli.parser().parse_args(["start", "cp3", "--fresh"]))


def test_cmd_down_stops_running_nodes_only_and_removes_added_ones(lab_dirs, monkeypatch):
    host.save_state({"nodes": {
        "cp2": {"launcher": 11, "root": "/r/cp2"},
        "cp3": {"killed": True, "launcher": None, "root": "/r/cp3"},
        "cp4": added("cp4", "198.51.100.13", roles.NODE, launcher=12),
    }})  # fmt: skip
    calls = []
    monkeypatch.setattr(host, "is_launcher", lambda pid: pid in (11, 12))
    monkeypatch.setattr(host, "stop", lambda pid: calls.append(("stop", pid)))
    monkeypatch.setattr(host, "kill_node", lambda name, pid: calls.append(("kill", name)) or [])
    monkeypatch.setattr(host, "unmount_all", lambda base: [])
    monkeypatch.setattr(host, "veth_down", lambda name: calls.append(("veth", name)) or True)
    monkeypatch.setattr(host, "bridge_down", lambda bridge: False)
    assert cli.cmd_down(None) == 0
    assert [c for c in calls if c[0] == "stop"] == [("stop", 11), ("stop", 12)]
    assert {c[1] for c in calls if c[0] == "kill"} == {"cp2", "cp3", "cp4"}
    assert ("veth", "cp4") in calls
    assert not pathlib.Path(model.STATE_DIR).exists()


def test_the_etcd_stand_in_gives_kubeadm_134s_flags_their_etcd_34_names():
    standin = _standin("staticpods.py")
    cmd_134 = [
        "etcd",
        "--data-dir=/var/lib/etcd",
        "--feature-gates=InitialCorruptCheck=true",
        "--name=cp2",
        "--watch-progress-notify-interval=5s",
    ]
    assert standin.as_etcd34(cmd_134) == [
        "etcd",
        "--data-dir=/var/lib/etcd",
        "--experimental-initial-corrupt-check=true",
        "--name=cp2",
        "--experimental-watch-progress-notify-interval=5s",
    ]
    # kubeadm 1.33's command (etcd 3.5 names, which etcd 3.4 knows) passes unchanged.
    cmd_133 = ["etcd", "--experimental-initial-corrupt-check=true",
               "--experimental-watch-progress-notify-interval=5s"]  # fmt: skip
    assert standin.as_etcd34(cmd_133) == cmd_133


def _standin(script):
    path = ROOT / "src" / "kubesalt_lab" / "standins" / script
    spec = importlib.util.spec_from_file_location(f"lab_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeEtcd:
    """Members answering the JSON gateway from one shared key space; `down` refuse."""

    def __init__(self):
        self.keys = {}
        self.down = set()
        self.posts = []

    def post(self, endpoint, path, body):
        self.posts.append((endpoint, path))
        if endpoint in self.down:
            raise ConnectionRefusedError(endpoint)
        if path == "/v3/kv/put":
            self.keys[body["key"]] = body["value"]
            return {}
        assert path == "/v3/kv/range" and body["keys_only"] is True
        return {"kvs": [{"key": key} for key in sorted(self.keys)]}


MEMBERS = ["https://198.51.100.10:2379", "https://198.51.100.11:2379"]


def test_the_etcd_writer_moves_to_another_member_and_stays_there():
    etcdwriter = _standin("etcdwriter.py")
    etcd = FakeEtcd()
    writer = etcdwriter.Writer(etcd.post, MEMBERS, "kubesalt-lab/upgrade/")
    assert writer.write_one()
    etcd.down.add(MEMBERS[0])
    assert writer.write_one()
    etcd.down.clear()
    assert writer.write_one()  # the member that took the last write goes first
    assert [e for e, p in etcd.posts] == [MEMBERS[0], MEMBERS[0], MEMBERS[1], MEMBERS[1]]
    assert etcdwriter.base64.b64decode(sorted(etcd.keys)[0]) == b"kubesalt-lab/upgrade/00000001"
    assert writer.report() == {
        "tried": 3,
        "acknowledged": 3,
        "unacknowledged": [],
        "lost": [],
        "by_endpoint": {MEMBERS[0]: 1, MEMBERS[1]: 2},
    }


def test_the_etcd_writer_reports_refused_and_lost_writes():
    etcdwriter = _standin("etcdwriter.py")
    etcd = FakeEtcd()
    writer = etcdwriter.Writer(etcd.post, MEMBERS, "p/")
    writer.write_one()
    etcd.down.update(MEMBERS)
    assert not writer.write_one()  # every member refused: unacknowledged
    etcd.down.clear()
    writer.write_one()
    etcd.keys.pop(etcdwriter.b64("p/00000001"))  # acknowledged, then gone: lost
    report = writer.report()
    assert (report["unacknowledged"], report["lost"]) == ([2], [1])


def test_the_etcd_writer_ticks_until_the_stop_file_and_skips_no_write(tmp_path):
    etcdwriter = _standin("etcdwriter.py")
    stop = tmp_path / "stop"
    now = {"t": 0.0}
    writes = []

    class Slow:
        def write_one(self):
            writes.append(now["t"])
            now["t"] += 0.25 if len(writes) == 2 else 0.01  # the second write is slow
            if len(writes) == 5:
                stop.touch()

    etcdwriter.run(Slow(), 0.1, str(stop), clock=lambda: now["t"],
                   sleep=lambda s: now.__setitem__("t", now["t"] + s))  # fmt: skip
    assert [round(t, 2) for t in writes] == [0.0, 0.1, 0.35, 0.45, 0.55]
    assert etcdwriter.prefix_end("p/") == "p0"


FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 198.51.100.0
        /24 link UNICAST
     |-- 198.51.100.10
        /32 host LOCAL
     |-- 198.51.100.100
        /32 host LOCAL
     |-- 198.51.100.255
        /32 link BROADCAST
"""


def test_the_vip_holder_is_read_from_fib_trie():
    assert model.local_addresses(FIB_TRIE) == {"198.51.100.10", "198.51.100.100"}
    assert model.VIP in model.local_addresses(FIB_TRIE)
    assert model.local_addresses(
        FIB_TRIE.replace("100.100\n        /32 host", "100.100\n /32 x")
    ) == {"198.51.100.10"}


def test_what_a_node_runs_is_read_from_its_files():
    assert (
        model.image_tag("spec:\n  containers:\n  - image: registry.k8s.io/etcd:3.6.5-0\n")
        == "3.6.5-0"
    )
    assert (
        model.image_tag("    image: registry.k8s.io/kube-apiserver:v1.34.2@sha256:" + "a" * 64)
        == "v1.34.2"
    )
    assert model.image_tag(None) is None
    assert model.minion_saltenv("id: cp2\nsaltenv: kubesalt-0.2.0\n") == "kubesalt-0.2.0"
    assert (
        model.dist_version(["kubesalt", "kubesalt-0.2.0.dist-info", "kubesalt-pycache.pth"])
        == "0.2.0"
    )
    assert model.next_version("0.1.0") == "0.2.0"


RELEASE = {"kubernetes": "v1.34.2", "etcd": "3.6.5-0"}


def _versions_on(target, release):
    return {
        n.name: {
            "kubesalt": target,
            "saltenv": f"kubesalt-{target}",
            "recorded": release["kubernetes"],
            "etcd": release["etcd"] if "etcd" in n.roles else None,
            "apiserver": release["kubernetes"] if "control-plane" in n.roles else None,
        }
        for n in model.NODES
    }


def test_a_move_passes_only_with_no_write_lost_one_vip_holder_and_every_node_moved():
    written = {
        "tried": 900,
        "acknowledged": 900,
        "unacknowledged": [],
        "lost": [],
        "by_endpoint": {},
    }
    samples = [(0.1 * i, ("bootstrap",)) for i in range(900)]
    versions = _versions_on("0.2.0", RELEASE)
    good = model.move_report("upgrade", written, samples, versions, "0.2.0", RELEASE, [("x", 1.0)])
    assert good.ok and good.text.startswith("lab upgrade to 0.2.0: passed")
    versions["cp3"]["etcd"] = "3.5.21-0"
    samples[10] = (1.0, ("bootstrap", "cp2"))
    bad = model.move_report(
        "upgrade", dict(written, lost=[7]), samples, versions, "0.2.0", RELEASE, []
    )
    assert not bad.ok
    assert (
        "[FAIL] etcd writes: 900 of 900 acknowledged, 0 refused by every member, 1 lost" in bad.text
    )
    assert (
        "[FAIL] VIP samples: 900, 1 without exactly one holder (first: [(1.0, ['bootstrap', 'cp2'])])"
        in bad.text
    )
    assert "cp3: etcd is '3.5.21-0', not '3.6.5-0'" in bad.text
    assert bad.record["vip_not_one"] == [(1.0, ["bootstrap", "cp2"])]
