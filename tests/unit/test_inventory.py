"""The node inventory: validation before writing, idempotence, what reaches the pillar."""

import stat

import pytest
import yaml

from kubesalt import config, inventory, roles
from kubesalt.config import InvalidConfig
from kubesalt.inventory import InventoryError, Node
from tests.unit.loader import load
from tests.unit.test_config import BASE

CFG = config.validate(
    {**BASE, "networks": {"controlPlane": {"cidr": ["198.51.100.0/24", "10.1.0.0/16"]}}}
)[0]


def node(name="cp2", host="198.51.100.11", roles=("control-plane", "etcd", "node"), **kwargs):
    return Node(name=name, host=host, roles=tuple(roles), **kwargs)


def problems(target, others=()):
    return inventory.check_node(target, CFG, list(others))


def test_a_valid_node_has_no_problem():
    assert problems(node()) == []
    assert problems(node("worker1", "10.1.2.3", ["node"])) == []
    assert problems(node("bootstrap", "198.51.100.10", roles.BOOTSTRAP_NODE_ROLES)) == []


@pytest.mark.parametrize(
    ("target", "path", "words"),
    [
        (node(name="cp_2"), "name", "RFC 1123"),
        (node(roles=()), "roles", "is empty"),
        (node(roles=("control-plane", "master")), "roles", "unknown role(s) master"),
        (node(roles=("ca", "node")), "roles", "only ca.minion (bootstrap) holds them"),
        (node(host="cp2.example"), "ssh.host", "is not an IP address"),
        (
            node(host="203.0.113.5"),
            "ssh.host",
            "outside every control-plane CIDR (198.51.100.0/24, 10.1.0.0/16)",
        ),
        (node(port=0), "ssh.port", "1-65535"),
        (node(port="22"), "ssh.port", "1-65535"),
        (node(user=""), "ssh.user", "is empty"),
        (node(key="id_ed25519"), "ssh.key", "absolute path"),
    ],
)
def test_each_problem_names_its_key(target, path, words):
    (problem,) = problems(target)
    assert problem.path == path
    assert words in str(problem)


def test_duplicate_address_is_refused():
    (problem,) = problems(node("cp3"), [node("cp2")])
    assert problem.path == "ssh.host"
    assert "already the address of node cp2" in str(problem)


def test_declare_writes_a_private_file_once(tmp_path):
    directory = str(tmp_path / "nodes")
    assert inventory.declare(node(), CFG, directory) is True
    path = tmp_path / "nodes" / "cp2.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "nodes").stat().st_mode) == 0o700
    assert yaml.safe_load(path.read_text()) == {
        "name": "cp2",
        "ssh": {
            "host": "198.51.100.11",
            "port": 22,
            "user": "root",
            "key": "/etc/kubesalt/ssh/id_ed25519",
        },
        "roles": ["control-plane", "etcd", "node"],
    }
    assert inventory.declare(node(), CFG, directory) is False
    assert inventory.load(directory) == {"cp2": node()}


def test_a_different_declaration_of_a_name_needs_replace(tmp_path):
    directory = str(tmp_path)
    inventory.declare(node(), CFG, directory)
    with pytest.raises(InvalidConfig) as excinfo:
        inventory.declare(node(roles=("node",)), CFG, directory)
    assert (
        "name = 'cp2': is already declared (ssh.host 198.51.100.11, roles control-plane,etcd,node)"
        in str(excinfo.value)
    )
    assert inventory.load(directory)["cp2"].roles == ("control-plane", "etcd", "node")
    # Dropping etcd: allowed once etcd no longer lists the node (below).
    assert inventory.declare(
        node(roles=("node",)), CFG, directory, replace=True, etcd_member=lambda name: None
    )
    assert inventory.load(directory)["cp2"].roles == ("node",)


def _not_asked(name):
    raise AssertionError(f"etcd asked about {name}")


def test_dropping_etcd_is_refused_while_the_node_is_still_a_member(tmp_path):
    """Issue 16, item 5: a highstate would stop the member without removing it."""
    directory = str(tmp_path)
    inventory.declare(node(), CFG, directory)
    asked = []

    def still_member(name):
        asked.append(name)
        return f"{name} (8e9e05c52164694d)"

    with pytest.raises(InvalidConfig) as excinfo:
        inventory.declare(node(roles=("node",)), CFG, directory, replace=True,
                          etcd_member=still_member)  # fmt: skip
    message = str(excinfo.value)
    assert "drops etcd from cp2, still etcd member cp2 (8e9e05c52164694d)" in message
    assert 'kubesalt.orchestrate.remove_node pillar=\'{"node": "cp2"}\'' in message
    assert asked == ["cp2"]
    assert inventory.load(directory)["cp2"].roles == ("control-plane", "etcd", "node")


def test_dropping_etcd_is_refused_when_etcd_cannot_tell(tmp_path):
    directory = str(tmp_path)
    inventory.declare(node(), CFG, directory)

    def unreachable(name):
        raise InventoryError("ca.minion did not answer kubesalt_etcd.members within 60s")

    for checker, words in (
        (None, "etcd cannot be asked whether it is still a member"),
        (unreachable, "etcd could not say whether it is still a member (ca.minion did not"),
    ):
        with pytest.raises(InvalidConfig, match=r"drops etcd from cp2") as excinfo:
            inventory.declare(node(roles=("node",)), CFG, directory, replace=True,
                              etcd_member=checker)  # fmt: skip
        assert words in str(excinfo.value)
    assert inventory.load(directory)["cp2"].roles == ("control-plane", "etcd", "node")


def test_etcd_is_only_asked_when_the_etcd_role_goes(tmp_path):
    directory = str(tmp_path)
    inventory.declare(node("worker1", "198.51.100.20", ["node"]), CFG, directory)
    assert inventory.declare(node("worker1", "198.51.100.20", ["etcd", "node"]), CFG, directory,
                             replace=True, etcd_member=_not_asked)  # fmt: skip
    assert inventory.declare(node("worker1", "198.51.100.21", ["etcd", "node"]), CFG, directory,
                             replace=True, etcd_member=_not_asked)  # fmt: skip


def test_a_refused_declaration_writes_nothing(tmp_path):
    with pytest.raises(InvalidConfig) as excinfo:
        inventory.declare(node(host="203.0.113.5", roles=("master",)), CFG, str(tmp_path))
    assert len(excinfo.value.problems) == 2
    assert list(tmp_path.iterdir()) == []


def test_forget(tmp_path):
    inventory.declare(node(), CFG, str(tmp_path))
    assert inventory.forget("cp2", str(tmp_path)) is True
    assert inventory.forget("cp2", str(tmp_path)) is False
    assert inventory.load(str(tmp_path)) == {}


def test_a_broken_file_is_named(tmp_path):
    (tmp_path / "cp9.yaml").write_text("name: cp9\nssh: [\n")
    with pytest.raises(InventoryError, match="cp9.yaml: cannot be read as YAML"):
        inventory.load(str(tmp_path))
    (tmp_path / "cp9.yaml").write_text(yaml.safe_dump(node("other").to_document()))
    with pytest.raises(InventoryError, match="must be named other.yaml"):
        inventory.load(str(tmp_path))


def test_the_pillar_gets_names_and_roles_only():
    nodes = {"cp2": node(), "bootstrap": node("bootstrap", "198.51.100.10", ["bootstrap", "ca"])}
    assert inventory.pillar_nodes(nodes) == {
        "bootstrap": {"roles": ["bootstrap", "ca"]},
        "cp2": {"roles": ["control-plane", "etcd", "node"]},
    }


def test_parse_roles():
    assert inventory.parse_roles("etcd, node,etcd,,") == ("etcd", "node")
    assert inventory.parse_roles(["node"]) == ("node",)
    assert inventory.parse_roles(None) == ()


def test_roster_entries_pin_the_distribution_python_and_check_host_keys(tmp_path):
    inventory.declare(node(port=2222, user="admin"), CFG, str(tmp_path))
    assert inventory.roster(inventory.load(str(tmp_path)), "/kh") == {
        "cp2": {
            "host": "198.51.100.11",
            "port": 2222,
            "user": "admin",
            "priv": "/etc/kubesalt/ssh/id_ed25519",
            "set_path": "/usr/sbin:/usr/bin:/sbin:/bin",
            "ssh_options": ["UserKnownHostsFile=/kh", "StrictHostKeyChecking=yes"],
        }
    }


HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"


def test_host_keys_are_recorded_kept_on_redeclare_and_written_as_known_hosts(tmp_path):
    directory = str(tmp_path)
    inventory.declare(node(port=2222), CFG, directory)
    assert (tmp_path / "known_hosts").read_text() == ""
    assert inventory.record_host_keys("cp2", [HOST_KEY + " root@cp2"], directory) is True
    assert inventory.record_host_keys("cp2", [HOST_KEY], directory) is False
    assert inventory.load(directory)["cp2"].host_keys == (HOST_KEY,)
    assert (tmp_path / "known_hosts").read_text() == f"[198.51.100.11]:2222 {HOST_KEY}\n"
    # Declared again as before (no host_key given): the recorded key stays, nothing changes.
    assert inventory.declare(node(port=2222), CFG, directory) is False
    assert inventory.load(directory)["cp2"].host_keys == (HOST_KEY,)
    inventory.forget("cp2", directory)
    assert (tmp_path / "known_hosts").read_text() == ""


def test_a_malformed_host_key_is_refused_naming_the_key(tmp_path):
    with pytest.raises(
        InvalidConfig,
        match=r"ssh.host_keys = 'ssh-ed25519': expected 'TYPE BASE64' with TYPE one of",
    ):
        inventory.declare(node(host_keys=("ssh-ed25519",)), CFG, str(tmp_path))


class FakeClient:
    """LocalClient.cmd of the master: the CA minion lists the etcd members."""

    def __init__(self, members):
        self.members = members
        self.calls = []

    def cmd(self, minions, fun, **kwargs):
        self.calls.append((tuple(minions), fun))
        return {m: {"ret": self.members, "retcode": 0} for m in minions}


CP2_MEMBER = {"id": "8e9e05c52164694d", "name": "cp2", "peer_urls": ["https://198.51.100.11:2380"],
              "client_urls": ["https://198.51.100.11:2379"], "is_learner": False}  # fmt: skip


@pytest.mark.parametrize(("members", "refused"), [([CP2_MEMBER], True), ([], False)])
def test_the_runner_asks_the_ca_minions_etcd_before_dropping_the_role(
    tmp_path, monkeypatch, members, refused
):
    runner = load("_runners", "kubesalt_inventory")
    config_path = tmp_path / "bootstrap.yaml"
    config_path.write_text(yaml.safe_dump(BASE))
    runner.__opts__ = {"conf_file": "/etc/salt/master", "kubesalt_config": str(config_path),
                       "kubesalt_inventory": str(tmp_path / "nodes")}  # fmt: skip
    client = FakeClient(members)
    monkeypatch.setattr(runner.salt.client, "get_local_client", lambda conf_file: client)
    assert runner.declare("cp2", "198.51.100.11", "control-plane,etcd,node")["result"]
    assert client.calls == []  # declaring with the etcd role asks nothing
    answer = runner.declare("cp2", "198.51.100.11", "node", replace=True)
    assert client.calls == [(("bootstrap",), "kubesalt_etcd.members")]
    if refused:
        assert answer["result"] is False and answer["retcode"] == 1
        assert "drops etcd from cp2, still etcd member cp2 (8e9e05c52164694d)" in answer["comment"]
    else:
        assert answer["result"] is True and answer["node"]["roles"] == ["node"]
