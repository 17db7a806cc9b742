"""The Salt loader modules of the foundation: thin wrappers, errors translated once."""

from unittest.mock import Mock

import pytest
import salt.modules.grains
import yaml
from salt.exceptions import CommandExecutionError

from kubesalt import roles
from tests.unit.loader import load
from tests.unit.test_config import BASE

kubesalt_config = load("_modules", "kubesalt_config")
kubesalt_network = load("_modules", "kubesalt_network")
kubesalt_pillar = load("_pillar", "kubesalt")

PILLAR = {
    "kubesalt": {
        "networks": {
            "controlPlane": {"cidr": ["198.51.100.0/24"]},
            "workloadPlane": {"cidr": ["10.20.0.0/16"]},
            "services": "10.96.0.0/12",
        },
        "apiServer": {"host": "198.51.100.100"},
    }
}


@pytest.fixture
def grains_get():
    return Mock(spec=salt.modules.grains.get, return_value="")


@pytest.fixture
def configure_loader_modules(grains_get):
    return {
        kubesalt_network: {"__pillar__": PILLAR, "__salt__": {"grains.get": grains_get}},
        kubesalt_config: {},
    }


@pytest.fixture
def addresses(monkeypatch):
    interfaces = {
        "lo": {"up": True, "inet": [{"address": "127.0.0.1", "netmask": "255.0.0.0"}]},
        "eth0": {
            "up": True,
            "inet": [{"address": "198.51.100.100", "netmask": "255.255.255.0"}],
            "secondary": [{"type": "inet", "address": "198.51.100.21", "netmask": "255.255.255.0"}],
            "inet6": [{"address": "fe80::1", "prefixlen": "64", "scope": "link"}],
        },
        "eth1": {"up": True, "inet": [{"address": "10.20.3.4", "netmask": "255.255.0.0"}]},
        "eth2": {"up": False, "inet": [{"address": "198.51.100.5", "netmask": "255.255.255.0"}]},
    }
    monkeypatch.setattr(kubesalt_network.salt.utils.network, "interfaces", lambda: interfaces)


def test_virtual_names():
    assert kubesalt_config.__virtual__() == "kubesalt_config"
    assert kubesalt_network.__virtual__() == "kubesalt_network"
    assert kubesalt_pillar.__virtual__() == "kubesalt"


def test_plane_ip_skips_the_vip_and_interfaces_that_are_down(addresses, grains_get):
    assert kubesalt_network.plane_ip("controlPlane") == "198.51.100.21"
    assert kubesalt_network.plane_ip("workloadPlane") == "10.20.3.4"
    grains_get.assert_any_call("kubesalt:control_plane_ip")


def test_plane_ip_keeps_the_grain(addresses, grains_get):
    grains_get.return_value = "198.51.100.21"
    assert kubesalt_network.plane_ip("controlPlane") == "198.51.100.21"


def test_plane_ip_unknown_plane():
    with pytest.raises(CommandExecutionError, match="Unknown plane 'pods'"):
        kubesalt_network.plane_ip("pods")


def test_no_match_becomes_a_command_execution_error(addresses):
    with pytest.raises(
        CommandExecutionError, match=r"AddressError: No address .* \[192.168.0.0/16\]"
    ):
        kubesalt_network.get_ip_from_cidrs("192.168.0.0/16")


def test_service_ip_from_the_pillar():
    assert kubesalt_network.service_ip(10) == "10.96.0.10"
    assert kubesalt_network.service_ip(1, cidr="fd00:96::/112") == "fd00:96::1"


def test_validate_reports_every_problem(tmp_path):
    path = tmp_path / "bootstrap.yaml"
    path.write_text(yaml.safe_dump({**BASE, "archives": [], "apiVersion": "v0"}))
    result = kubesalt_config.validate(str(path))
    assert result["valid"] is False
    assert [line.split(" ")[0] for line in result["problems"]] == ["apiVersion", "archives"]
    with pytest.raises(CommandExecutionError, match="InvalidConfig: .*2 problems"):
        kubesalt_config.load(str(path))


def test_validate_valid_file(tmp_path):
    path = tmp_path / "bootstrap.yaml"
    path.write_text(yaml.safe_dump(BASE))
    result = kubesalt_config.validate(str(path))
    assert result["valid"] is True
    assert result["summary"].startswith("valid: API 198.51.100.100:6443")
    assert kubesalt_config.load(str(path))["networks"]["pods"] == "10.233.0.0/16"


def test_ext_pillar_gives_the_normalized_config_or_errors(tmp_path):
    path = tmp_path / "bootstrap.yaml"
    path.write_text(yaml.safe_dump(BASE))
    pillar = kubesalt_pillar.ext_pillar("node1", {}, config=str(path))
    assert pillar["kubesalt"]["apiServer"]["port"] == 6443
    path.write_text(yaml.safe_dump({**BASE, "ca": {"minion": "a_b"}}))
    pillar = kubesalt_pillar.ext_pillar("node1", {}, config=str(path))
    assert set(pillar) == {"_errors"}
    assert pillar["_errors"][0].startswith(f"kubesalt: {path} is not valid (1 problem(s))")
    assert pillar["_errors"][1].startswith("ca.minion = 'a_b'")


def test_ext_pillar_adds_the_inventory_roles(tmp_path):
    config_path = tmp_path / "bootstrap.yaml"
    config_path.write_text(yaml.safe_dump(BASE))
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    (nodes / "cp2.yaml").write_text(
        yaml.safe_dump({"name": "cp2", "ssh": {"host": "198.51.100.11"}, "roles": ["etcd"]})
    )
    pillar = kubesalt_pillar.ext_pillar("cp2", {}, config=str(config_path), inventory=str(nodes))
    assert pillar["kubesalt"]["nodes"] == {"cp2": {"roles": ["etcd"]}}
    (nodes / "cp2.yaml").write_text("- not a node\n")
    pillar = kubesalt_pillar.ext_pillar("cp2", {}, config=str(config_path), inventory=str(nodes))
    assert pillar == {
        "_errors": [
            f"kubesalt: {nodes / 'cp2.yaml'}: not a node document (needs name, ssh and roles); "
            "remove or fix it"
        ]
    }


def test_ext_pillar_gives_the_vrrp_password_only_to_control_plane_nodes(tmp_path):
    config_path = tmp_path / "bootstrap.yaml"
    document = dict(BASE, apiServer=dict(BASE["apiServer"], keepalived={"authPassword": "s3cret"}))
    config_path.write_text(yaml.safe_dump(document))
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    for name, host, node_roles in (("cp2", "11", [roles.CONTROL_PLANE, roles.ETCD]),
                                   ("w1", "21", [roles.NODE])):  # fmt: skip
        node = {"name": name, "ssh": {"host": f"198.51.100.{host}"}, "roles": node_roles}
        (nodes / f"{name}.yaml").write_text(yaml.safe_dump(node))

    def keepalived_of(minion_id):
        pillar = kubesalt_pillar.ext_pillar(minion_id, {}, str(config_path), str(nodes))
        return pillar["kubesalt"]["apiServer"]["keepalived"]

    assert keepalived_of("cp2")["authPassword"] == "s3cret"
    assert "authPassword" not in keepalived_of("w1")
    assert "authPassword" not in keepalived_of("undeclared")  # e.g. the master's own id
    config_path.write_text(yaml.safe_dump(
        dict(document, apiServer=dict(document["apiServer"],
                                      keepalived={"enabled": False, "authPassword": "s3cret"}))))  # fmt: skip
    assert "authPassword" not in keepalived_of("cp2")  # keepalived is not kubesalt's


def test_saltglue_translates_kubesalt_errors_once():
    from kubesalt import saltglue
    from kubesalt.errors import AddressError

    def fails():
        raise AddressError("no address")

    with pytest.raises(CommandExecutionError, match="^AddressError: no address$"):
        saltglue.call(fails)
    assert saltglue.call(lambda a, b=0: a + b, 1, b=2) == 3
    with pytest.raises(CommandExecutionError, match="The pillar has no 'kubesalt' key"):
        saltglue.config_from_pillar({})
