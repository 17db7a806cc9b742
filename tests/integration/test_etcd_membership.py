"""kubesalt_etcd against a real etcd 3.4 cluster grown and shrunk like deploy_node and
remove_node do it.

Each member is a rendered node (`etcd_cluster.EtcdNode`: its manifest's command, its
certificates) in a network namespace of its own, on a bridge; the module runs through the
real Salt loader (`salt-call --local` inside cp1's namespace, with the grains
`kubesalt_root` = cp1's rendered root and `kubesalt:control_plane_ip`). cp1 starts alone;
cp2 and cp3 are added as learners, started from their joining manifests, promoted. Then the
refusals: the last member, a removal that leaves no healthy quorum (cp3 stopped, remove
cp2), the same as a state in test mode; cp3 (down) is removed, twice; finally cp2's client
port is filtered so that it looks unhealthy from cp1 while it still votes, and only
`force=True` removes it.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from kubesalt import etcd
from kubesalt.kubeadm import pki
from kubesalt.kubeadm.model import Node
from tests.integration.etcd_cluster import CP, EtcdNode, bridge, config
from tests.integration.netns import Namespaces
from tests.integration.salt_local import SaltLocal
from tests.unit.test_config import BASE

pytestmark = pytest.mark.integration

IPS = {"cp1": "10.0.0.10", "cp2": "10.0.0.11", "cp3": "10.0.0.12"}


def peer(name: str) -> str:
    return f"https://{IPS[name]}:2380"


def client(name: str) -> str:
    return f"https://{IPS[name]}:2379"


@pytest.fixture
def cluster():
    """Starts nothing by itself; stops every etcd it was given (by PID), even on failure
    (requested after `namespaces`, so it is torn down before they are deleted)."""
    nodes: list[EtcdNode] = []
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture
def namespaces():
    with Namespaces("br", *IPS) as ns:
        bridge(ns, list(IPS))
        for name, address in IPS.items():
            ns.address(name, "eth0", f"{address}/24")
        yield ns


def salt_on(node: EtcdNode, tmp_path) -> SaltLocal:
    """salt-call --local in the node's namespace, with its root and IP as grains."""
    config_path = tmp_path / "bootstrap.yaml"
    config_path.write_text(yaml.safe_dump(BASE))
    salt = SaltLocal(tmp_path / f"salt-{node.node.name}", config_path, netns=node.ns)
    grains = {"kubesalt_root": node.layout.root, "kubesalt": {"control_plane_ip": node.node.ip}}
    (salt.conf_dir / "grains").write_text(yaml.safe_dump(grains))
    return salt


def failure(salt: SaltLocal, *args: str) -> str:
    """Run a function that must fail; return its error output."""
    result = salt.run(*args)
    assert result.returncode != 0, f"{args} succeeded: {result.stdout}"
    return result.stdout + result.stderr


def initial_cluster_of(command: list[str]) -> set[str]:
    flag = next(arg for arg in command if arg.startswith("--initial-cluster="))
    return set(flag.split("=", 1)[1].split(","))


def test_grow_and_shrink_through_the_salt_loader(tmp_path, namespaces, cluster):
    started = time.monotonic()
    cfg = config("ECDSA-P256")
    authorities = pki.create_authorities(cfg)
    nodes = {}

    def render(name: str, members: tuple[tuple[str, str], ...] = ()) -> EtcdNode:
        node = Node(name, IPS[name], CP, first=not members, etcd_members=members)
        nodes[name] = EtcdNode(cfg, node, authorities, tmp_path / name, namespaces[name])
        cluster.append(nodes[name])
        return nodes[name]

    cp1 = render("cp1")
    cp1.start()
    cp1.wait_healthy()
    salt = salt_on(cp1, tmp_path)

    # One member: removing it is refused, even forced.
    assert [m["name"] for m in salt.call("kubesalt_etcd.members")] == ["cp1"]
    error = failure(salt, "kubesalt_etcd.remove", "cp1", "force=True")
    assert "LastMemberError: refusing to remove etcd member cp1" in error

    joined = [("cp1", IPS["cp1"])]
    for name in ("cp2", "cp3"):
        added = salt.call("kubesalt_etcd.add_learner", name, peer(name))
        assert added["changed"] is True, added
        assert added["member"]["is_learner"] is True
        assert added["member"]["peer_urls"] == [peer(name)]
        listed = salt.call("kubesalt_etcd.members")
        expected = [f"{m['name'] or name}={m['peer_urls'][0]}" for m in listed]
        assert added["initial_cluster"] == ",".join(expected)
        joined.append((name, IPS[name]))
        joiner = render(name, tuple(joined))
        # The rendered joining manifest names the same members (its own order).
        assert initial_cluster_of(joiner.command) == set(expected)
        if name == "cp2":
            again = salt.call("kubesalt_etcd.add_learner", name, peer(name))
            assert again["changed"] is False
            assert again["initial_cluster"] == added["initial_cluster"]
            assert "is in the correct state" in again["comment"]
        joiner.start()
        promoted = salt.call("kubesalt_etcd.promote", name, "timeout=30", "interval=1")
        assert promoted["changed"] is True, promoted
        assert promoted["member"]["is_learner"] is False
        if name == "cp2":
            assert salt.call("kubesalt_etcd.promote", name)["changed"] is False

    listed = salt.call("kubesalt_etcd.members")
    assert sorted(m["name"] for m in listed) == ["cp1", "cp2", "cp3"]
    assert not any(m["is_learner"] for m in listed)
    waited = salt.call("kubesalt_etcd.wait_healthy", "cluster=True", "timeout=20", "interval=1")
    assert waited["healthy"] is True
    health = salt.call("kubesalt_etcd.health", "cluster=True")
    assert health == {client(n): {"health": True, "error": None} for n in ("cp1", "cp2", "cp3")}
    # The real listing parses as the module parses it.
    raw = cp1.etcdctl("member", "list", "-w", "json")
    assert [m.to_dict() for m in etcd.parse_member_list(raw.stdout)] == listed

    # cp3 down: removing cp2 would leave cp1 alone of two voters.
    nodes["cp3"].stop()
    error = failure(salt, "kubesalt_etcd.remove", "cp2")
    assert "QuorumError: refusing to remove etcd member cp2" in error
    assert "the 2 voting members left would have 1 healthy and need 2" in error
    assert "unhealthy: cp3" in error
    error = failure(salt, "kubesalt_etcd.wait_healthy", "cluster=True", "timeout=2", "interval=1")
    assert f"{client('cp3')} unhealthy for" in error
    assert client("cp1") not in error.split("not healthy after")[1]
    # The state, in test mode, says the same and changes nothing.
    salt.run("saltutil.sync_states", check=True)
    state = json.loads(
        salt.run("state.single", "kubesalt_etcd.member_absent", "name=cp2", "test=True").stdout
    )["local"]
    (only,) = state.values()
    assert only["result"] is False and only["changes"] == {}
    assert only["comment"].startswith("QuorumError: refusing to remove etcd member cp2")

    # Removing the member that is down keeps the quorum: cp1 and cp2 remain.
    removed = salt.call("kubesalt_etcd.remove", "cp3")
    assert removed["changed"] is True and removed["member"]["name"] == "cp3"
    assert sorted(m["name"] for m in salt.call("kubesalt_etcd.members")) == ["cp1", "cp2"]
    again = salt.call("kubesalt_etcd.remove", "cp3")
    assert again["changed"] is False and "is in the correct state" in again["comment"]

    # cp2 votes but its client port is filtered: from cp1 it looks unhealthy, so the
    # removal is refused (no quorum seen); force=True removes it, and etcd agrees.
    subprocess.run(
        ["ip", "netns", "exec", namespaces["cp2"], "nft", "-f", "-"],
        input="table inet t {\n chain input {\n type filter hook input priority 0;\n"
        " tcp dport 2379 drop;\n }\n}\n",
        text=True,
        check=True,
    )
    error = failure(salt, "kubesalt_etcd.remove", "cp2")
    assert "the cluster has no quorum now, 1 of 2 voting members healthy and 2 needed" in error
    forced = salt.call("kubesalt_etcd.remove", "cp2", "force=True")
    assert forced["changed"] is True
    assert [m["name"] for m in salt.call("kubesalt_etcd.members")] == ["cp1"]
    assert time.monotonic() - started < 90
