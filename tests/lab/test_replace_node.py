"""A dead control-plane node replaced (issue 14, item 5a): cp3 powered off without warning
(`lab.sh kill`), `remove_node cp3` refused, then done with `force: true` through a healthy
etcd member; a fresh machine cp4 (`lab.sh add`) declared and deployed: three healthy etcd
voters, one VIP holder, and every other node's firewall and keepalived peers updated.

Runs last (file order), on the lab the other lab tests leave: every node deployed."""

from __future__ import annotations

import subprocess

import pytest

from kubesalt_lab import host as labhost
from kubesalt_lab import model
from tests.lab.session import ROOT
from tests.lab.test_cluster import etcdctl, members, salt_json, saltenv, vip_holders, wait_for

pytestmark = pytest.mark.lab

LAB_SH = str(ROOT / "scripts" / "lab.sh")
REMOVE_SKIPS = list(model.SKIP_REMOVE_PHASES)


def lab_sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LAB_SH, *args], capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip


def ip_of(node: str) -> str:
    return model.node(node, model.lab_nodes(labhost.load_state())).ip


def remove_command(lab, **pillar) -> list[str]:
    return model.orchestrate_command("remove_node", "cp3", saltenv(lab), skip=REMOVE_SKIPS,
                                     **pillar)  # fmt: skip


def healthy(lab) -> bool:
    """Every etcd member answers healthy (asked through the bootstrap node)."""
    urls = ",".join(url for m in members(lab) for url in m.get("clientURLs", []))
    return bool(urls) and etcdctl(lab, "bootstrap", "endpoint", "health", endpoints=urls,
                                  check=False).returncode == 0  # fmt: skip


def test_a_dead_node_is_refused_without_force(lab):
    killed = lab_sh("kill", "cp3")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert wait_for("one VIP holder", lambda: len(vip_holders(lab, ("bootstrap", "cp2"))) == 1, 30)
    result, out = salt_json(lab, "salt-run", *remove_command(lab), timeout=300)
    assert result.returncode != 0 or model.failed_states(out), out[-3000:]
    assert "force: true" in out, out[-3000:]
    assert "cp3" in [m["name"] for m in members(lab)]


def test_remove_node_force_removes_the_dead_node_through_a_healthy_member(lab):
    result, out = salt_json(lab, "salt-run", *remove_command(lab, force=True), timeout=900)
    assert result.returncode == 0 and model.failed_states(out) == [], out[-3000:]
    assert "not cleaned on the node cp3" in out, out[-3000:]
    assert sorted(m["name"] for m in members(lab)) == ["bootstrap", "cp2"]
    assert wait_for("a healthy 2-member etcd", lambda: healthy(lab), 60)
    for node in ("bootstrap", "cp2"):
        conf = lab.run(node, "cat", "/etc/keepalived/keepalived.conf").stdout
        assert ip_of("cp3") not in conf, conf
    for node in ("bootstrap", "cp2", "worker1"):
        live = lab.run(node, "firewall-cmd", "--zone=kubesalt", "--list-all").stdout
        assert ip_of("cp3") not in live, (node, live)
    assert "cp3" not in lab.run("bootstrap", "salt-key", "-L").stdout
    assert "cp3" not in lab.run("bootstrap", "salt-run", "kubesalt_inventory.list_nodes").stdout


def test_a_fresh_cp4_replaces_it(lab):
    added = lab_sh("add", "cp4", "control-plane,etcd,node")
    assert added.returncode == 0, added.stdout + added.stderr
    cp4 = model.node("cp4", model.lab_nodes(labhost.load_state()))
    declare = lab.run("bootstrap", "salt-run", *model.declare_args(cp4), check=False)
    assert declare.returncode == 0, declare.stdout + declare.stderr
    command = model.orchestrate_command("deploy_node", "cp4", saltenv(lab))
    result, out = salt_json(lab, "salt-run", *command, timeout=1200)
    assert result.returncode == 0 and model.failed_states(out) == [], out[-3000:]
    found = members(lab)
    assert sorted(m["name"] for m in found) == ["bootstrap", "cp2", "cp4"]
    assert not any(m.get("isLearner") for m in found)
    assert wait_for("a healthy 3-member etcd", lambda: healthy(lab), 60)
    assert len(vip_holders(lab, ("bootstrap", "cp2", "cp4"))) == 1
    for node in ("bootstrap", "cp2"):
        conf = lab.run(node, "cat", "/etc/keepalived/keepalived.conf").stdout
        assert cp4.ip in conf, conf
    for node in ("bootstrap", "cp2", "worker1"):
        live = lab.run(node, "firewall-cmd", "--zone=kubesalt", "--list-all").stdout
        assert cp4.ip in live, (node, live)
