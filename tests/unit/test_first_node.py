"""The node that plays `kubeadm init` is recorded once in the inventory and never moves."""

import pytest
import yaml

from kubesalt import config, inventory
from kubesalt import roles as _roles
from kubesalt.inventory import Node
from kubesalt.kubeadm import cluster
from tests.unit.loader import load
from tests.unit.test_config import BASE

kubesalt_pillar = load("_pillar", "kubesalt")

CFG = config.validate(dict(BASE, ca={"minion": "boot"}))[0]
INIT = (_roles.CONTROL_PLANE, _roles.ETCD, _roles.NODE)
CA_ONLY = (_roles.BOOTSTRAP, _roles.CA)


def declare(directory, name, host, roles, replace=False):
    inventory.declare(Node(name, host, tuple(roles)), CFG, str(directory), replace=replace)


def first_from_pillar(tmp_path, directory):
    """The first node as the renderers see it: through the ext_pillar, then cluster."""
    config_path = tmp_path / "bootstrap.yaml"
    config_path.write_text(yaml.safe_dump(dict(BASE, ca={"minion": "boot"})))
    pillar = kubesalt_pillar.ext_pillar("boot", {}, str(config_path), str(directory))
    cfg = pillar["kubesalt"]
    return cluster.first_node(cfg, cluster.roles_by_node(cfg["nodes"]))


def test_an_earlier_name_declared_later_does_not_move_the_first_node(tmp_path):
    nodes = tmp_path / "nodes"
    declare(nodes, "boot", "198.51.100.10", CA_ONLY)
    declare(nodes, "cp2", "198.51.100.11", INIT)
    assert first_from_pillar(tmp_path, nodes) == "cp2"
    declare(nodes, "a0", "198.51.100.12", INIT)
    assert first_from_pillar(tmp_path, nodes) == "cp2"


def test_the_ca_minion_given_the_roles_later_does_not_take_over(tmp_path):
    nodes = tmp_path / "nodes"
    declare(nodes, "boot", "198.51.100.10", CA_ONLY)
    declare(nodes, "cp2", "198.51.100.11", INIT)
    declare(nodes, "boot", "198.51.100.10", (*CA_ONLY, *INIT), replace=True)
    assert first_from_pillar(tmp_path, nodes) == "cp2"


def test_the_bootstrap_node_declared_first_is_recorded(tmp_path):
    nodes = tmp_path / "nodes"
    declare(nodes, "boot", "198.51.100.10", _roles.BOOTSTRAP_NODE_ROLES)
    assert inventory.read_first_node(str(nodes)) == inventory.FirstNode("boot")
    assert first_from_pillar(tmp_path, nodes) == "boot"


def test_forgetting_the_first_node_retires_it_for_good(tmp_path):
    nodes = tmp_path / "nodes"
    declare(nodes, "boot", "198.51.100.10", CA_ONLY)
    declare(nodes, "cp2", "198.51.100.11", INIT)
    declare(nodes, "cp3", "198.51.100.13", INIT)
    inventory.forget("cp2", str(nodes))
    assert inventory.read_first_node(str(nodes)) == inventory.FirstNode("cp2", retired=True)
    assert first_from_pillar(tmp_path, nodes) is None
    # Declared again under the same name, it joins: it never starts a new etcd cluster.
    declare(nodes, "cp2", "198.51.100.11", INIT)
    assert first_from_pillar(tmp_path, nodes) is None


def test_dropping_a_role_of_the_first_node_retires_it(tmp_path):
    nodes = tmp_path / "nodes"
    declare(nodes, "boot", "198.51.100.10", _roles.BOOTSTRAP_NODE_ROLES)
    # Dropping control-plane (dropping etcd is refused while the node is a member).
    declare(nodes, "boot", "198.51.100.10", (*CA_ONLY, _roles.ETCD, _roles.NODE), replace=True)
    assert first_from_pillar(tmp_path, nodes) is None
    declare(nodes, "boot", "198.51.100.10", _roles.BOOTSTRAP_NODE_ROLES, replace=True)
    assert first_from_pillar(tmp_path, nodes) is None


def test_an_inventory_from_before_the_record_keeps_its_first_node(tmp_path):
    """No record yet (an older inventory): the rule it was built with chooses, and the
    next change of the inventory records that choice before applying the change."""
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    for name, host, roles in (("boot", "10", CA_ONLY), ("cp2", "11", INIT)):
        document = Node(name, f"198.51.100.{host}", roles).to_document()
        (nodes / f"{name}.yaml").write_text(yaml.safe_dump(document))
    assert inventory.read_first_node(str(nodes)) is None
    assert first_from_pillar(tmp_path, nodes) == "cp2"
    declare(nodes, "a0", "198.51.100.12", INIT)
    assert inventory.read_first_node(str(nodes)) == inventory.FirstNode("cp2")
    assert first_from_pillar(tmp_path, nodes) == "cp2"


def test_a_worker_declared_first_records_nothing(tmp_path):
    nodes = tmp_path / "nodes"
    declare(nodes, "w1", "198.51.100.20", (_roles.NODE,))
    assert inventory.read_first_node(str(nodes)) is None
    declare(nodes, "cp2", "198.51.100.11", INIT)
    assert inventory.read_first_node(str(nodes)) == inventory.FirstNode("cp2")


def test_a_broken_record_is_named(tmp_path):
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    (nodes / inventory.FIRST_NODE_FILE).write_text("name: ../x\n")
    with pytest.raises(inventory.InventoryError) as excinfo:
        inventory.read_first_node(str(nodes))
    assert str(excinfo.value).startswith(f"{nodes / inventory.FIRST_NODE_FILE}: ")
    assert "'../x'" in str(excinfo.value)


def test_the_record_is_the_only_source_of_first():
    roles = {"a0": frozenset(INIT), "cp2": frozenset(INIT)}
    assert cluster.first_node(dict(CFG, first_node="cp2"), roles) == "cp2"
    assert cluster.first_node(dict(CFG, first_node=None), roles) is None
    # A recorded node that lost its roles plays nothing.
    assert cluster.first_node(dict(CFG, first_node="cp2"), {"cp2": frozenset(CA_ONLY)}) is None
