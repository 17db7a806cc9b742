"""The four-node lab after `lab.sh up` (issue 6): cp2, cp3 and worker1 deployed with
`salt-run state.orchestrate kubesalt.orchestrate.deploy_node`, then checked end to end:
packages from the bootstrap repository, an etcd cluster run from the rendered manifests,
VIP failover, ports between nodes as the matrix says, idempotent re-runs, and, last,
`remove_node cp3`. The tests run in file order (remove_node must be last)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from kubesalt_lab import host as labhost
from kubesalt_lab import model

pytestmark = pytest.mark.lab

BOOTSTRAP_IP = "198.51.100.10"
IPS = {n.name: n.ip for n in model.NODES}
CP_NODES = [n.name for n in model.NODES if "control-plane" in n.roles]
ETCD_NODES = [n.name for n in model.NODES if "etcd" in n.roles]
PKI = "/etc/kubernetes/pki"
ETCDCTL = [
    "etcdctl",
    f"--cacert={PKI}/etcd/ca.crt",
    f"--cert={PKI}/etcd/healthcheck-client.crt",
    f"--key={PKI}/etcd/healthcheck-client.key",
    "--dial-timeout=2s",
    "--command-timeout=5s",
]


def saltenv(lab) -> str:
    return lab.archive()["saltenv"]


def salt_json(lab, *args, timeout=900):
    result = lab.run("bootstrap", *args, "--out=json", "--out-indent=-1", timeout=timeout,
                     check=False)  # fmt: skip
    return result, result.stdout


def etcdctl(lab, node, *args, endpoints=None, check=True):
    eps = endpoints or f"https://{IPS[node]}:2379"
    return lab.run(node, *ETCDCTL, f"--endpoints={eps}", *args, check=check, timeout=60)


def members(lab, node="bootstrap"):
    out = etcdctl(lab, node, "member", "list", "-w", "json").stdout
    return json.loads(out)["members"]


def wait_for(what, predicate, timeout, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"waited {timeout}s for {what}")


def vip_holders(lab, nodes=tuple(CP_NODES)):
    """The nodes of `nodes` (default: the lab's control-plane nodes) that hold the VIP."""
    holders = []
    for node in nodes:
        out = lab.run(node, "ip", "-j", "-4", "addr", "show", "host0").stdout
        if model.VIP in model.ipv4_addresses(out):
            holders.append(node)
    return holders


def cluster_healthy(lab, node="bootstrap"):
    eps = ",".join(f"https://{IPS[n]}:2379" for n in ETCD_NODES if n in current_etcd(lab))
    result = etcdctl(lab, node, "endpoint", "health", endpoints=eps, check=False)
    return result.returncode == 0


def current_etcd(lab):
    return {m.get("name") for m in members(lab)}


PROBE = """
import errno, socket, sys
s = socket.socket(); s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print("open")
except ConnectionRefusedError:
    print("closed")
except OSError as e:
    print("filtered " + (errno.errorcode.get(e.errno or 0) or "timeout"))
"""


def probe(lab, src, dst, port):
    """`open`, `closed` (the node answered: nothing listens) or `filtered ...`."""
    return lab.run(src, "/usr/bin/python3", "-c", PROBE, IPS[dst], str(port)).stdout.strip()


# -- deployment ----------------------------------------------------------------------


def test_lab_up_deployed_every_node_with_salt_run(lab):
    together = ", ".join(n.name for n in model.NODES if not n.bootstrap)
    assert f"deploy_node {together}: done in" in lab.up_output, lab.up_output[-3000:]
    assert "skip the phases kubelet, wait-control-plane, addons" in lab.up_output
    _result, out = salt_json(lab, "salt", "*", "test.ping", timeout=120)
    answers = {}
    for line in out.splitlines():
        answers.update(json.loads(line))
    assert answers == {n.name: True for n in model.NODES}


def test_lab_up_showed_each_phase_live_and_the_log_file_has_it(lab):
    """The deploy's progress reached lab.sh up's output (salt-run's stderr), one line per phase
    start and end, and the same lines are in the bootstrap node's orchestrate.log (0600)."""
    together = ", ".join(n.name for n in model.NODES if not n.bootstrap)
    assert "[1/13] preflight: " in lab.up_output, lab.up_output[-3000:]
    assert "      certs done in " in lab.up_output, lab.up_output[-3000:]
    assert "[11/13] wait-control-plane: " in lab.up_output
    log = lab.host("bootstrap").file("/var/log/kubesalt/orchestrate.log")
    assert log.mode == 0o600
    assert f"deploy_node {together}: [13/13] highstate: " in log.content_string


def test_the_up_table_shows_vip_etcd_and_services(lab):
    table = lab.up_output[lab.up_output.index("NODE ") :]
    header = table.splitlines()[0].split()
    assert header == ["NODE", "ROLES", "IPS", "STATE", "VIP", "ETCD", "SERVICES", "UP"]
    assert "holder" in table
    assert "3 members, 3 healthy" in table


@pytest.mark.parametrize("node", [n.name for n in model.NODES])
def test_kubesalt_packages_came_from_the_bootstrap_repository(lab, node):
    roles = model.node(node).roles
    packages = ["firewalld"]
    if "control-plane" in roles:
        packages.append("keepalived")
    if "etcd" in roles:
        packages.append("etcd-client")
    expected = (
        "file:/srv/kubesalt/kubesalt-lab/deb"
        if model.node(node).bootstrap
        else f"https://{BOOTSTRAP_IP}:8443/{saltenv(lab)}/deb"
    )
    for package in packages:
        policy = lab.run(node, "apt-cache", "policy", package).stdout
        installed = [line for line in policy.splitlines() if line.strip().startswith("Installed:")]
        assert installed and "(none)" not in installed[0], policy
        block = policy.split(" *** ", 1)[1].split("\n")
        sources = [line.strip() for line in block[1:] if line.startswith("        ")]
        assert any(expected in line for line in sources), (package, policy)
        assert not any("deb.debian.org" in line for line in sources), (package, policy)


@pytest.mark.parametrize("node", [n.name for n in model.NODES])
def test_salt_came_from_the_bootstrap_wheels(lab, node):
    result = lab.run(
        node, "/opt/kubesalt/salt/bin/python3", "-m", "pip", "show", "salt", "kubesalt"
    )
    assert "Version: 3008.3" in result.stdout
    assert lab.host(node).service("salt-minion").is_running


@pytest.mark.parametrize("node", [n.name for n in model.NODES if not n.bootstrap])
def test_new_minions_accept_only_the_masters_key_fingerprint(lab, node):
    """Issue 16, item 4: master_finger is the fingerprint of the master's public key, which
    the minion checked on its first contact (key.finger_master: the key it cached)."""
    finger = lab.run("bootstrap", "/opt/kubesalt/salt/bin/python", "-c",
                     "import salt.utils.crypt as c; print(c.pem_finger("
                     "'/etc/salt/pki/master/master.pub', sum_type='sha256'))").stdout.strip()  # fmt: skip
    config = yaml.safe_load(lab.run(node, "cat", "/etc/salt/minion.d/kubesalt.conf").stdout)
    assert (config["master_finger"], config["hash_type"]) == (finger, "sha256")
    cached = lab.run(node, "salt-call", "--local", "--out=json", "key.finger_master").stdout
    assert json.loads(cached)["local"] == finger


@pytest.mark.parametrize("node", [n.name for n in model.NODES])
def test_no_route_out(lab, node):
    routes = lab.run(node, "ip", "-4", "route", "show").stdout
    assert "default" not in routes
    assert all(line.startswith("198.51.100.0/24") for line in routes.splitlines()), routes


# -- etcd ----------------------------------------------------------------------------


def test_etcd_has_three_voting_members_and_is_healthy(lab):
    found = members(lab)
    assert sorted(m["name"] for m in found) == sorted(ETCD_NODES)
    assert not any(m.get("isLearner") for m in found)
    assert wait_for("a healthy etcd cluster", lambda: cluster_healthy(lab), 30)


@pytest.mark.parametrize("node", ETCD_NODES)
def test_etcd_runs_exactly_as_its_manifest_says(lab, node):
    text = lab.run(node, "cat", "/etc/kubernetes/manifests/etcd.yaml").stdout
    command = yaml.safe_load(text)["spec"]["containers"][0]["command"]
    pid = lab.run(node, "pgrep", "-x", "etcd").stdout.split()[0]
    cmdline = lab.run(node, "cat", f"/proc/{pid}/cmdline").stdout.split("\0")[:-1]
    assert cmdline == command
    if node != "bootstrap":
        assert "--initial-cluster-state=existing" in command


def test_joined_members_keep_the_initial_cluster_of_their_join(lab):
    cp2 = yaml.safe_load(lab.run("cp2", "cat", "/etc/kubernetes/manifests/etcd.yaml").stdout)
    flags = [
        f for f in cp2["spec"]["containers"][0]["command"] if f.startswith("--initial-cluster=")
    ]
    assert len(flags) == 1, flags
    # The members when cp2 joined, in etcd's member-list order (by member ID: any order).
    members_at_join = sorted(flags[0].partition("=")[2].split(","))
    assert members_at_join == [
        f"bootstrap=https://{IPS['bootstrap']}:2380",
        f"cp2=https://{IPS['cp2']}:2380",
    ]


def test_etcd_keeps_serving_writes_with_one_member_down(lab):
    lab.run("cp3", "systemctl", "stop", "kubesalt-lab-staticpods")
    try:
        wait_for(
            "etcd to stop on cp3",
            lambda: lab.run("cp3", "pgrep", "-x", "etcd", check=False).returncode != 0,
            30,
        )
        etcdctl(lab, "bootstrap", "put", "kubesalt-lab/one-down", "written")
        got = etcdctl(lab, "cp2", "get", "kubesalt-lab/one-down", "--print-value-only").stdout
        assert got.strip() == "written"
    finally:
        lab.run("cp3", "systemctl", "start", "kubesalt-lab-staticpods")
    assert wait_for("cp3 back in a healthy cluster", lambda: cluster_healthy(lab), 60)
    got = etcdctl(lab, "cp3", "get", "kubesalt-lab/one-down", "--print-value-only").stdout
    assert got.strip() == "written"


# -- keepalived ----------------------------------------------------------------------


def test_exactly_one_node_holds_the_vip_and_peers_list_every_other_cp(lab):
    assert len(vip_holders(lab)) == 1
    for node in CP_NODES:
        conf = lab.run(node, "cat", "/etc/keepalived/keepalived.conf").stdout
        for other in CP_NODES:
            if other != node:
                assert IPS[other] in conf, (node, other)


def _measure_failover(lab, break_holder, repair_holder):
    holder = wait_for(
        "one VIP holder", lambda: (h := vip_holders(lab)) and len(h) == 1 and h[0], 30
    )
    start = time.monotonic()
    break_holder(holder)
    try:
        new = wait_for(
            "another VIP holder", lambda: (h := vip_holders(lab)) and holder not in h and h, 10, 0.1
        )
        seconds = time.monotonic() - start
    finally:
        repair_holder(holder)
    assert len(new) == 1
    return holder, new[0], seconds


def test_the_vip_moves_in_under_5s_when_the_holders_health_target_stops(lab):
    _old, _new, seconds = _measure_failover(
        lab,
        lambda h: lab.run(h, "systemctl", "stop", "kubesalt-lab-apiserver"),
        lambda h: lab.run(h, "systemctl", "start", "kubesalt-lab-apiserver"),
    )
    assert seconds < 5


def test_the_vip_moves_in_under_5s_when_the_holders_link_goes_down(lab):
    def down(holder):
        lab.run(holder, "ip", "link", "set", "host0", "down")

    def up(holder):
        lab.run(holder, "ip", "link", "set", "host0", "up")
        lab.run(holder, "networkctl", "reconfigure", "host0", check=False)

    old, _new, seconds = _measure_failover(lab, down, up)
    assert seconds < 5
    wait_for(f"{old} reachable again", lambda: probe(lab, "bootstrap", old, 22) == "open", 30)
    assert wait_for("a healthy etcd cluster", lambda: cluster_healthy(lab), 60)


# -- firewall ------------------------------------------------------------------------

# (from, to, port, allowed by the matrix); "allowed" means the SYN reaches the node
# (open, or closed when nothing listens), refused means the firewall rejects it.
PAIRS = [
    ("worker1", "bootstrap", 8443, True),  # repository: control-plane/workload CIDRs
    ("worker1", "bootstrap", 4506, True),  # salt-request
    ("worker1", "bootstrap", 2379, False),  # etcd-client: control-plane peers only
    ("worker1", "bootstrap", 5000, False),  # registry: local only
    ("worker1", "cp2", 6443, True),  # kube-apiserver: anyone
    ("worker1", "cp2", 2380, False),  # etcd-peer: etcd peers only
    ("worker1", "cp3", 10250, False),  # kubelet: control-plane peers only
    ("worker1", "cp2", 10257, False),  # controller-manager: local only
    ("cp2", "bootstrap", 2379, True),  # etcd-client from a control-plane peer
    ("cp2", "cp3", 2380, True),  # etcd-peer between members
    ("cp2", "worker1", 10250, True),  # kubelet from a control-plane node (nothing listens)
    ("cp3", "worker1", 2379, False),  # worker has no etcd port open
    ("bootstrap", "worker1", 22, True),  # ssh: anyone
]


@pytest.mark.parametrize(("src", "dst", "port", "allowed"), PAIRS, ids=lambda v: str(v))
def test_ports_between_nodes_follow_the_matrix(lab, src, dst, port, allowed):
    out = probe(lab, src, dst, port)
    if allowed:
        assert out in ("open", "closed"), (src, dst, port, out)
    else:
        assert out.startswith("filtered"), (src, dst, port, out)


# -- idempotency ---------------------------------------------------------------------


def test_a_second_deploy_node_reports_no_changes(lab):
    command = model.orchestrate_command("deploy_node", "worker1", saltenv(lab))
    result, out = salt_json(lab, "salt-run", *command)
    assert result.returncode == 0, out[-3000:]
    assert model.failed_states(out) == []
    assert model.summary(out).endswith(" 0 changed"), out[-3000:]


def test_a_dry_run_deploy_node_of_every_node_reports_nothing_to_change(lab):
    """test=True of deploy_node on the converged lab: result True (not None), no change."""
    nodes = [n.name for n in model.NODES if not n.bootstrap]
    command = model.orchestrate_command("deploy_node", nodes, saltenv(lab))
    result, out = salt_json(lab, "salt-run", *command, "test=True")
    assert result.returncode == 0, out[-3000:]
    assert model.failed_states(out) == []
    assert model.summary(out) == "1 states, 0 changed", out[-3000:]
    assert model.pending_states(out) == [], out[-3000:]


def test_a_second_orchestration_is_refused_while_one_runs(lab):
    first = subprocess.Popen(
        labhost.nsenter_command(
            lab.leader("bootstrap"),
            ["salt-run", "--out=json", "--out-indent=-1",
             *model.orchestrate_command("deploy_node", "worker1", saltenv(lab))],
        ),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        holder = wait_for(
            "the first deploy_node to hold the orchestration lock",
            lambda: lab.run(
                "bootstrap", "cat", "/run/kubesalt/orchestrate.lock", check=False
            ).stdout.strip(),  # fmt: skip
            120,
            interval=0.2,
        )
        assert holder.startswith("deploy_node worker1 (PID "), holder
        command = model.orchestrate_command("remove_node", "cp3", saltenv(lab))
        _result, out = salt_json(lab, "salt-run", *command)
        # Refused by our lock, or, when the first happens to run a salt-ssh state.sls at that
        # moment, by Salt's own check first: either way before anything changes.
        assert (
            "another kubesalt orchestration is running: deploy_node worker1 (PID" in out
            or 'The function \\"state.sls\\" is running as PID' in out
        ), out
        assert model.summary(out).endswith(" 0 changed"), out[-3000:]
    finally:
        out, _err = first.communicate(timeout=900)
    assert first.returncode == 0 and model.failed_states(out) == [], out[-3000:]
    assert lab.run("bootstrap", "cat", "/run/kubesalt/orchestrate.lock").stdout == ""
    assert "cp3" in json.loads(lab.run("bootstrap", "salt-run", "--out=json",
                                       "kubesalt_inventory.list_nodes").stdout)  # fmt: skip


def test_the_orchestration_lock_refuses_while_another_process_holds_it(lab):
    holder = subprocess.Popen(
        labhost.nsenter_command(
            lab.leader("bootstrap"),
            ["/opt/kubesalt/salt/bin/python", "-c",
             "import sys; from kubesalt import lock; lock.acquire('deploy_node cp9'); "
             "print('held', flush=True); sys.stdin.read()"],  # holds until stdin closes
        ),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        command = model.orchestrate_command("remove_node", "cp3", saltenv(lab))
        _result, out = salt_json(lab, "salt-run", *command)
        assert "another kubesalt orchestration is running: deploy_node cp9 (PID" in out, out
        assert model.summary(out).endswith(" 0 changed"), out[-3000:]
    finally:
        holder.stdin.close()  # the holder exits; nsenter may have forked, so no kill
        holder.wait(timeout=30)
    assert "cp3" in json.loads(lab.run("bootstrap", "salt-run", "--out=json",
                                       "kubesalt_inventory.list_nodes").stdout)  # fmt: skip


def test_a_second_highstate_reports_no_changes_on_every_node(lab):
    result, out = salt_json(lab, "salt", "*", "state.highstate", f"saltenv={saltenv(lab)}")
    changed = {}
    nodes = set()
    for line in out.splitlines():
        for node, states in json.loads(line).items():
            nodes.add(node)
            assert isinstance(states, dict), (node, states)
            for key, item in states.items():
                assert item["result"] is True, (node, key, item["comment"])
                if item["changes"]:
                    changed.setdefault(node, []).append(item["__id__"])
    assert nodes == {n.name for n in model.NODES}
    assert changed == {}


def test_a_dry_run_highstate_reports_nothing_to_change_on_every_node(lab):
    """test=True on the converged lab: no state would change (result None) or failed, on any
    node (a dry run once said keepalived "would have been stopped" on worker1)."""
    _result, out = salt_json(
        lab, "salt", "*", "state.highstate", f"saltenv={saltenv(lab)}", "test=True"
    )
    pending, nodes = {}, set()
    for line in out.splitlines():
        for node, states in json.loads(line).items():
            nodes.add(node)
            assert isinstance(states, dict), (node, states)
            for item in states.values():
                assert item["result"] is not False, (node, item["__id__"], item["comment"])
                if item["result"] is None or item["changes"]:
                    pending.setdefault(node, []).append(f"{item['__id__']}: {item['comment']}")
    assert nodes == {n.name for n in model.NODES}
    assert pending == {}


# -- remove_node (last) --------------------------------------------------------------


def test_an_unknown_phase_is_refused_before_any_change(lab):
    command = model.orchestrate_command("deploy_node", "cp3", saltenv(lab), skip=["kubelte"])
    result, out = salt_json(lab, "salt-run", *command)
    assert "invalid phase name(s) kubelte for deploy_node; valid phases: preflight" in out


def test_dropping_etcd_from_a_member_in_the_inventory_is_refused(lab):
    """Issue 16, item 5: a highstate would stop cp3's member without removing it."""
    before = lab.run("bootstrap", "cat", "/etc/kubesalt/nodes/cp3.yaml").stdout
    result = lab.run("bootstrap", "salt-run", "--out=json", "kubesalt_inventory.declare", "cp3",
                     IPS["cp3"], "node", "replace=True", check=False)  # fmt: skip
    assert result.returncode != 0, result.stdout
    assert "drops etcd from cp3, still etcd member cp3 (" in result.stdout, result.stdout
    assert "kubesalt.orchestrate.remove_node" in result.stdout
    assert lab.run("bootstrap", "cat", "/etc/kubesalt/nodes/cp3.yaml").stdout == before
    assert "cp3" in current_etcd(lab)


def test_remove_node_skipping_etcd_of_a_member_is_refused_before_any_change(lab):
    skip = [*model.SKIP_REMOVE_PHASES, "etcd"]
    command = model.orchestrate_command("remove_node", "cp3", saltenv(lab), skip=skip)
    result, out = salt_json(lab, "salt-run", *command)
    assert "node cp3 is still etcd member cp3 (" in out, out[-3000:]
    assert "remove_node cannot skip phase etcd" in out
    assert model.summary(out).endswith(" 0 changed"), out[-3000:]
    assert "cp3" in current_etcd(lab)
    assert lab.host("cp3").file("/etc/kubernetes/manifests/etcd.yaml").exists


def test_the_etcd_absent_state_refuses_to_stop_a_listed_member(lab):
    """Applied by hand on cp3 (as a highstate would after a hand-edited inventory): the
    guard fails and the static pod stays."""
    result, out = salt_json(lab, "salt", "cp3", "state.sls", "kubesalt.roles.etcd-absent",
                            f"saltenv={saltenv(lab)}")  # fmt: skip
    states = json.loads(out.splitlines()[-1])["cp3"]
    guard = next(s for s in states.values()
                 if s["__id__"] == "Check that etcd no longer lists this node before its etcd stops")  # fmt: skip
    assert guard["result"] is False
    assert guard["comment"].startswith("etcd still lists cp3 as member cp3 ("), guard["comment"]
    assert all(not s["changes"] for s in states.values()), states
    assert lab.host("cp3").file("/etc/kubernetes/manifests/etcd.yaml").exists
    assert wait_for("a healthy etcd cluster", lambda: cluster_healthy(lab), 30)


def test_remove_node_cp3(lab):
    command = model.orchestrate_command("remove_node", "cp3", saltenv(lab))
    result, out = salt_json(lab, "salt-run", *command)
    assert result.returncode == 0 and model.failed_states(out) == [], out[-3000:]
    assert sorted(m["name"] for m in members(lab)) == ["bootstrap", "cp2"]
    assert wait_for("a healthy 2-member etcd", lambda: cluster_healthy(lab), 60)
    for node in ("bootstrap", "cp2"):
        conf = lab.run(node, "cat", "/etc/keepalived/keepalived.conf").stdout
        assert IPS["cp3"] not in conf, conf
    for node in ("bootstrap", "cp2", "worker1"):
        zone = lab.run(node, "cat", "/etc/firewalld/zones/kubesalt.xml").stdout
        assert IPS["cp3"] not in zone, (node, zone)
        live = lab.run(node, "firewall-cmd", "--zone=kubesalt", "--list-all").stdout
        assert IPS["cp3"] not in live, (node, live)
    keys = lab.run("bootstrap", "salt-key", "-L").stdout
    assert "cp3" not in keys
    listed = lab.run("bootstrap", "salt-run", "kubesalt_inventory.list_nodes").stdout
    assert "cp3" not in listed
    assert not lab.host("cp3").file("/etc/kubernetes/manifests/etcd.yaml").exists
    # Its member ID is gone from the cluster: its data and recorded --initial-cluster too.
    assert not lab.host("cp3").file("/var/lib/etcd").exists
    assert "etcd_initial_cluster" not in lab.run("cp3", "cat", "/etc/salt/grains").stdout
    assert not lab.host("cp3").service("salt-minion").is_running
    assert len(vip_holders(lab)) == 1
    # Running it again finishes nothing more, and says why.
    result, out = salt_json(lab, "salt-run", *command)
    assert result.returncode == 0 and model.failed_states(out) == [], out[-3000:]
    assert model.summary(out).endswith(" 0 changed"), out[-3000:]
    assert "cp3 is not declared: finishing its removal" in out


def test_cp3_is_deployed_again_after_its_removal(lab):
    """A removed node comes back as a new etcd member (its data was wiped, its key deleted):
    declared again, its new minion key accepted, three healthy voting members, and cp3 back in
    every keepalived peer list and firewall zone."""
    from kubesalt_lab import cli as labcli

    ((_what, _seconds, summary),) = labcli.deploy(["cp3"])
    assert " failed" not in summary, summary
    assert sorted(m["name"] for m in members(lab)) == ["bootstrap", "cp2", "cp3"]
    assert all(not m.get("isLearner") for m in members(lab)), members(lab)
    assert wait_for("a healthy 3-member etcd", lambda: cluster_healthy(lab), 60)
    assert "cp3" in lab.run("bootstrap", "salt-key", "-l", "accepted").stdout
    for node in ("bootstrap", "cp2"):
        assert IPS["cp3"] in lab.run(node, "cat", "/etc/keepalived/keepalived.conf").stdout
    for node in ("bootstrap", "cp2", "worker1"):
        zone = lab.run(node, "cat", "/etc/firewalld/zones/kubesalt.xml").stdout
        assert IPS["cp3"] in zone, (node, zone)
    assert len(vip_holders(lab)) == 1
