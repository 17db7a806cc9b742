"""The inventory runner and the ext_pillar on a real salt-master with a minion."""

import pathlib

import pytest
import yaml

from tests.unit.test_config import BASE

pytestmark = pytest.mark.integration

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("kubesalt")
    config = root / "bootstrap.yaml"
    config.write_text(yaml.safe_dump(BASE))
    return {"config": config, "inventory": root / "nodes"}


@pytest.fixture(scope="module")
def master(salt_factories, paths):
    overrides = {
        "runner_dirs": [str(REPO / "salt" / "_runners")],
        "pillar_dirs": [str(REPO / "salt" / "_pillar")],
        "ext_pillar": [
            {"kubesalt": {"config": str(paths["config"]), "inventory": str(paths["inventory"])}}
        ],
        "kubesalt_config": str(paths["config"]),
        "kubesalt_inventory": str(paths["inventory"]),
    }
    factory = salt_factories.salt_master_daemon("ks-inventory-master", overrides=overrides)
    with factory.started():
        yield factory


@pytest.fixture(scope="module")
def minion(master):
    factory = master.salt_minion_daemon("bootstrap")
    with factory.started():
        yield factory


@pytest.fixture(scope="module")
def salt_run(master):
    return master.salt_run_cli(timeout=60)


def test_declare_list_and_forget(salt_run, paths):
    ret = salt_run.run(
        "kubesalt_inventory.declare", "cp2", "198.51.100.11", "control-plane,etcd,node"
    )
    assert ret.returncode == 0, ret.stderr
    assert ret.data["changed"] is True
    assert (paths["inventory"] / "cp2.yaml").exists()

    again = salt_run.run(
        "kubesalt_inventory.declare", "cp2", "198.51.100.11", "control-plane,etcd,node"
    )
    assert again.data["changed"] is False
    assert again.data["comment"] == "Node cp2 is already declared as asked"

    listed = salt_run.run("kubesalt_inventory.list_nodes")
    assert listed.data == {
        "cp2": {"host": "198.51.100.11", "roles": ["control-plane", "etcd", "node"]}
    }

    gone = salt_run.run("kubesalt_inventory.forget", "cp2")
    assert gone.data["changed"] is True
    assert salt_run.run("kubesalt_inventory.list_nodes").data == {}


def test_a_refused_declaration_fails_with_every_problem(salt_run, paths):
    ret = salt_run.run("kubesalt_inventory.declare", "cp_3", "203.0.113.9", "control-plane,master")
    assert ret.returncode != 0
    comment = ret.data["comment"]
    assert "name = 'cp_3'" in comment
    assert "ssh.host = '203.0.113.9': is outside every control-plane CIDR" in comment
    assert "unknown role(s) master" in comment
    assert not (paths["inventory"] / "cp_3.yaml").exists()


def test_the_pillar_carries_configuration_and_roles(salt_run, minion):
    salt_run.run(
        "kubesalt_inventory.declare",
        "bootstrap",
        "198.51.100.10",
        "bootstrap,ca,control-plane,etcd,node",
    )
    salt_cli = minion.salt_call_cli(timeout=60)
    ret = salt_cli.run("pillar.get", "kubesalt", unmask=True)
    assert ret.returncode == 0, ret.stderr
    assert ret.data["nodes"] == {
        "bootstrap": {"roles": ["bootstrap", "ca", "control-plane", "etcd", "node"]}
    }
    assert ret.data["apiServer"]["host"] == "198.51.100.100"
    assert "ssh" not in str(ret.data["nodes"])
