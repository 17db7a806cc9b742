"""kubesalt.names: the one node-name rule, and every place a name enters kubesalt using it."""

import pathlib
import re

import pytest

from kubesalt import inventory, kubectl, names
from kubesalt.config import validate
from kubesalt.kubeadm.model import Node
from tests.unit.test_config import BASE

ROOT = pathlib.Path(__file__).resolve().parents[2]
CFG, _ = validate(dict(BASE, ca={"minion": "boot"}))
BAD = ["CP2", "../bootstrap", "cp2/x", "cp_2", "-cp2", "cp2.", "", "cp2\n", "a" * 254, None, 7]


@pytest.mark.parametrize(
    "name", ["cp2", "worker-1", "node.example.org", "1", ".".join(["a" * 63] * 4)[:253]]
)
def test_valid_names(name):
    assert names.is_node_name(name)
    assert names.check_node_name(name) == name


@pytest.mark.parametrize("name", BAD)
def test_invalid_names_name_the_value_and_the_rule(name):
    assert not names.is_node_name(name)
    with pytest.raises(names.NodeNameError) as error:
        names.check_node_name(name, "pillar node")
    assert str(error.value) == (
        f"pillar node: {name!r} is not a valid node name; a node name is a lowercase RFC 1123 "
        "name, as Kubernetes requires: lowercase letters, digits, '-' and '.', each "
        "dot-separated part starting and ending with a letter or digit, at most 253 characters"
    )


@pytest.mark.parametrize("name", ["CP2", "../bootstrap"])
def test_the_inventory_the_renderer_and_kubectl_refuse_the_same_names(name, tmp_path):
    node = inventory.Node(name, "198.51.100.11", ("node",))
    problems = inventory.check_node(node, CFG, [])
    assert [(p.path, p.value) for p in problems] == [("name", name)]
    assert names.RULE in problems[0].what
    with pytest.raises(names.NodeNameError, match=re.escape(repr(name))):
        Node(name, "198.51.100.11", frozenset({"node"}))
    with pytest.raises(names.NodeNameError, match=re.escape(repr(name))):
        kubectl.drain_command("/etc/kubernetes/admin.conf", name, 60)


def test_the_ca_minion_follows_the_node_name_rule():
    _, problems = validate(dict(BASE, ca={"minion": "Bootstrap"}))
    assert [(p.path, p.value) for p in problems] == [("ca.minion", "Bootstrap")]
    assert names.RULE in problems[0].what


def test_a_name_never_becomes_a_path_outside_the_inventory(tmp_path):
    directory = tmp_path / "nodes"
    directory.mkdir()
    victim = tmp_path / "bootstrap.yaml"
    victim.write_text("kept")
    with pytest.raises(names.NodeNameError):
        inventory.forget("../bootstrap", str(directory))
    with pytest.raises(names.NodeNameError):
        inventory.record_host_keys("../bootstrap", [], str(directory))
    assert victim.read_text() == "kept"


def test_a_file_with_a_bad_name_is_refused_when_loaded(tmp_path):
    (tmp_path / "CP2.yaml").write_text(
        "name: CP2\nssh: {host: 198.51.100.11}\nroles: [node]\n", encoding="utf-8"
    )
    with pytest.raises(inventory.InventoryError) as error:
        inventory.load(str(tmp_path))
    assert str(error.value).startswith(f"{tmp_path}/CP2.yaml: declares node 'CP2', which is not")


def test_no_module_keeps_its_own_node_name_pattern():
    """The pattern of a name (an RFC 1123 label) is written once, in kubesalt/names.py; the
    config keeps a case-insensitive one for DNS host names (apiServer.host)."""
    label = re.compile(r"\[a-z0-9\]\(\[(-a-z0-9|a-z0-9-)")
    sources = sorted((ROOT / "src/kubesalt").rglob("*.py")) + sorted((ROOT / "salt").rglob("*.py"))
    holders = {str(path.relative_to(ROOT)) for path in sources if label.search(path.read_text())}
    assert holders == {"src/kubesalt/names.py", "src/kubesalt/config/rules.py"}
    rules = (ROOT / "src/kubesalt/config/rules.py").read_text()
    assert rules.count("IGNORECASE") == 1 and "def is_dns_name" in rules
