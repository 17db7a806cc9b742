"""kubesalt.roles: the one list of roles, and no module keeping a copy of its own."""

import ast
import pathlib

import pytest

from kubesalt import inventory, ports, roles
from kubesalt.bootstrap import preflight
from kubesalt.config import validate
from kubesalt.errors import ConfigError
from kubesalt.kubeadm import RenderError
from kubesalt.kubeadm.cluster import first_node, roles_by_node
from kubesalt.kubeadm.model import Node
from tests.unit.test_config import BASE

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The run-time package and the loader modules (the lab, src/kubesalt_lab, describes its own
# machines with role names: data about the lab, not a role list the installer decides with).
SCANNED = [
    path for path in sorted((ROOT / "src/kubesalt").rglob("*.py")) if path.name != "roles.py"
] + sorted((ROOT / "salt").glob("_*/*.py"))


def _role_collections(path):
    """(line, names) of every literal tuple, list or set holding two role names or more."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            names = [
                item.value
                for item in node.elts
                if isinstance(item, ast.Constant) and item.value in roles.ROLES
            ]
            if len(names) >= 2:
                found.append((node.lineno, names))
    return found


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_spells_out_its_own_role_list(path):
    assert _role_collections(path) == [], (
        f"{path.relative_to(ROOT)} lists roles itself: take the list from kubesalt.roles"
    )


def test_the_scan_finds_a_copy(tmp_path):
    copy = tmp_path / "copy.py"
    copy.write_text('KUBELET = frozenset({"control-plane", "etcd", "node"})\nONE = ("etcd",)\n')
    assert _role_collections(copy) == [(1, ["control-plane", "etcd", "node"])]


def test_no_other_module_defines_roles():
    for path in SCANNED:
        tree = ast.parse(path.read_text())
        assigned = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert not assigned & {"ROLES", "KUBELET_ROLES", "FIRST_ROLES", "CA_NODE_ROLES"}, path


def test_the_role_sets():
    assert roles.ROLES == ("bootstrap", "ca", "control-plane", "etcd", "node")
    assert roles.CA_NODE_ROLES == ("bootstrap", "ca")
    assert {"control-plane", "etcd"} == roles.INIT_ROLES
    assert {"control-plane", "etcd", "node"} == roles.KUBELET_ROLES
    assert set(roles.REMOVABLE_ROLES) == set(roles.ROLES) - set(roles.CA_NODE_ROLES)
    assert roles.needed_by("etcd") == {"control-plane"}
    assert roles.needed_by("node") == frozenset()
    assert roles.runs_kubelet(["etcd"]) and not roles.runs_kubelet(["bootstrap", "ca"])
    assert roles.unknown(["node", "master", "etcd", "worker"]) == ["master", "worker"]


def test_preflight_uses_the_role_sets():
    assert preflight.BOOTSTRAP_ROLES is roles.CA_NODE_ROLES
    assert preflight.FIRST_NODE_ROLES is roles.BOOTSTRAP_NODE_ROLES


def test_every_consumer_names_the_same_roles_in_its_errors(monkeypatch):
    """A new role added in kubesalt.roles reaches the renderer, the inventory, the port
    matrix and the cluster model; a module with its own copy would refuse it."""
    monkeypatch.setattr(roles, "ROLES", (*roles.ROLES, "storage"))
    cfg, problems = validate(dict(BASE, ca={"minion": "boot"}))
    assert problems == []
    assert Node("s1", "10.0.0.5", frozenset({"storage"})).has("storage")
    node = inventory.Node("s1", "198.51.100.50", ("storage",))
    assert not [p for p in inventory.check_node(node, cfg, []) if p.key == "roles"]
    assert ports.entries_for_roles(["storage"], cfg)  # ssh is open on every node
    assert roles_by_node({"s1": {"roles": ["storage"]}}) == {"s1": frozenset({"storage"})}


def test_errors_list_the_valid_roles():
    listing = "bootstrap, ca, control-plane, etcd, node"
    with pytest.raises(RenderError, match=f"valid roles: {listing}$"):
        Node("w1", "10.0.0.5", frozenset({"master"}))
    with pytest.raises(ConfigError, match=f"allowed: {listing}$"):
        ports.entries_for_roles(["master"], {})
    with pytest.raises(RenderError, match=f"give a list of roles \\({listing}\\)"):
        roles_by_node({"w1": {"roles": ["master"]}})
    cfg, _ = validate(dict(BASE, ca={"minion": "boot"}))
    cfg["first_node"] = "cp1"
    assert first_node(cfg, {"cp1": roles.INIT_ROLES, "w1": frozenset({"node"})}) == "cp1"
