"""The bootstrap node lost and brought back from its backup (issue 14, item 5b): a backup
taken, the bootstrap node powered off without warning (`lab.sh kill`) and replaced by a
fresh machine with the same address (`lab.sh start --fresh`), `bootstrap.sh --restore`
with the copy a control-plane node holds; then etcd has every member again, healthy, one
node holds the VIP, no CA changed, and a highstate and a `deploy_node` work on every node.

Runs after test_replace_node.py (file order): the nodes are whichever that test left."""

from __future__ import annotations

import os
import platform
import shutil
import time
from datetime import UTC, datetime

import pytest

from kubesalt_lab import host as labhost
from kubesalt_lab import model
from tests.benchmarks.docs_section import write_section
from tests.lab.session import parse_phase_times
from tests.lab.test_cluster import members, salt_json, saltenv, vip_holders, wait_for
from tests.lab.test_daily_backup import BACKUP, WRITTEN
from tests.lab.test_replace_node import healthy, lab_sh

pytestmark = pytest.mark.lab

PKI = "/etc/kubernetes/pki"
CA_FILES = (f"{PKI}/ca.crt", f"{PKI}/front-proxy-ca.crt", f"{PKI}/etcd/ca.crt", f"{PKI}/sa.pub")
RESTORED_AT = "/root/restore.tar.gz"


def lab_nodes() -> list[model.Node]:
    """The lab's nodes that run now (killed ones left out)."""
    state = labhost.load_state()
    return [n for n in model.lab_nodes(state) if not state["nodes"].get(n.name, {}).get("killed")
            and n.name in state["nodes"]]  # fmt: skip


def control_plane(nodes) -> list[str]:
    return [n.name for n in nodes if "control-plane" in n.roles]


def ca_digests(lab, nodes) -> dict[tuple[str, str], str]:
    """{(node, CA file): sha256} of the CA files each node holds (a worker holds ca.crt)."""
    found = {}
    for node in nodes:
        out = lab.run(node, "sha256sum", *CA_FILES, check=False).stdout
        found.update({(node, path): digest for digest, path in
                      (line.split(maxsplit=1) for line in out.splitlines())})  # fmt: skip
    assert all((node, CA_FILES[0]) in found for node in nodes), found
    return found


@pytest.fixture(scope="module")
def restored(lab) -> dict:
    """The whole procedure, once: what was there before, and how long each part took."""
    nodes = lab_nodes()
    others = [n.name for n in nodes if not n.bootstrap]
    copy_holder = next(n for n in control_plane(nodes) if n != "bootstrap")
    before = {"members": sorted(m["name"] for m in members(lab)),
              "ca": ca_digests(lab, [n.name for n in nodes])}  # fmt: skip

    start = time.monotonic()
    result = lab.run("bootstrap", BACKUP, timeout=600, check=False)
    backup_seconds = time.monotonic() - start
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    path = WRITTEN.search(result.stdout + result.stderr)["path"]
    held = lab.node_root(copy_holder) + path
    size = os.path.getsize(held)

    killed = lab_sh("kill", "bootstrap")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    survivors = [n for n in control_plane(nodes) if n != "bootstrap"]
    assert wait_for("one VIP holder", lambda: len(vip_holders(lab, survivors)) == 1, 30)
    started = lab_sh("start", "bootstrap", "--fresh")
    assert started.returncode == 0, started.stdout + started.stderr
    assert lab.run("bootstrap", "test", "!", "-e", f"{PKI}/ca.key", check=False).returncode == 0
    shutil.copyfile(held, lab.node_root("bootstrap") + RESTORED_AT)
    os.chmod(lab.node_root("bootstrap") + RESTORED_AT, 0o600)

    start = time.monotonic()
    restore = lab.run("bootstrap", *model.bootstrap_command("--restore", RESTORED_AT),
                      timeout=1800, check=False)  # fmt: skip
    restore_seconds = time.monotonic() - start
    print(restore.stdout)
    assert restore.returncode == 0, restore.stdout[-5000:] + restore.stderr[-3000:]
    record_times(backup_seconds, size, restore_seconds, restore.stdout, len(nodes))
    return {"nodes": nodes, "others": others, "before": before, "output": restore.stdout}


def record_times(backup_seconds, size, restore_seconds, output, count) -> None:
    """The "Backup and restore" section of docs/benchmarks.md (measured, never asserted)."""
    phases = parse_phase_times(output)
    lines = [
        "<!-- Written by tests/lab/test_restore_bootstrap_node.py; rerun it to refresh. -->",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.node()} ({os.cpu_count()} CPUs, "
        f"Linux {platform.release()}), on the {count}-node lab.",
        "",
        "| what | seconds | size |",
        "|---|---|---|",
        f"| `kubesalt-backup` (etcd snapshot, archive, copies to the control-plane nodes) | "
        f"{backup_seconds:.1f} | {size / 1024:.0f} KiB |",
        f"| `bootstrap.sh --restore` on a fresh machine (lab: `--skip-phases addons`) | "
        f"{restore_seconds:.1f} | |",
        "",
        "The restore's phases:",
        "",
        "| phase | seconds |",
        "|---|---|",
        *[f"| {name} | {seconds:.1f} |" for name, seconds, _detail in phases],
    ]
    write_section("Backup and restore", "\n".join(lines))


def test_bootstrap_sh_restore_ran_the_restore_orchestration(restored):
    out = restored["output"]
    assert "[1/10] restore: with --restore FILE" in out, out
    assert "kubesalt.orchestrate.restore" in out, out


def test_etcd_has_every_member_again_all_voting_and_healthy(lab, restored):
    found = members(lab)
    assert sorted(m["name"] for m in found) == restored["before"]["members"]
    assert not any(m.get("isLearner") for m in found)
    assert wait_for("a healthy etcd", lambda: healthy(lab), 60)
    manifest = lab.run("bootstrap", "cat", "/etc/kubernetes/manifests/etcd.yaml").stdout
    assert "--initial-cluster-state=existing" in manifest, manifest


def test_exactly_one_node_holds_the_vip(lab, restored):
    cps = control_plane(restored["nodes"])
    assert wait_for("one VIP holder", lambda: len(vip_holders(lab, cps)) == 1, 30)


def test_no_ca_changed_and_the_new_leaves_chain_to_the_old_ca(lab, restored):
    nodes = [n.name for n in restored["nodes"]]
    assert ca_digests(lab, nodes) == restored["before"]["ca"]
    for leaf in ("apiserver.crt", "etcd/server.crt", "apiserver-etcd-client.crt"):
        ca = f"{PKI}/etcd/ca.crt" if "etcd" in leaf else f"{PKI}/ca.crt"
        verified = lab.run("bootstrap", "openssl", "verify", "-CAfile", ca, f"{PKI}/{leaf}")
        assert verified.stdout.strip().endswith(": OK"), verified.stdout


def test_the_minions_answer_the_restored_master_without_a_new_acceptance(lab, restored):
    keys = lab.run("bootstrap", "salt-key", "-l", "unaccepted").stdout
    assert not [n for n in restored["others"] if n in keys], keys
    _, out = salt_json(lab, "salt", "*", "test.ping", timeout=120)
    for node in ["bootstrap", *restored["others"]]:
        assert f'"{node}": true' in out, out


def test_a_highstate_works_on_every_node(lab, restored):
    result, out = salt_json(lab, "salt", "*", "state.highstate", timeout=1800)
    assert result.returncode == 0 and model.failed_states(out) == [], out[-3000:]


def test_deploy_node_works_on_every_other_node(lab, restored):
    command = model.orchestrate_command("deploy_node", restored["others"], saltenv(lab))
    result, out = salt_json(lab, "salt-run", *command, timeout=1800)
    assert result.returncode == 0 and model.failed_states(out) == [], out[-3000:]
    assert wait_for("a healthy etcd", lambda: healthy(lab), 60)


def test_bootstrap_sh_restore_again_changes_nothing(lab, restored):
    again = lab.run("bootstrap", *model.bootstrap_command("--restore", RESTORED_AT),
                    timeout=900, check=False)  # fmt: skip
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "restore done in" in again.stdout and "no changes; node bootstrap" in again.stdout
    assert again.stdout.rstrip().splitlines()[-1].startswith("bootstrap.sh: done in")
    assert ": no changes." in again.stdout.rstrip().splitlines()[-1], again.stdout[-2000:]
