"""The expiry report on a real salt-master with a minion: `salt-run kubesalt_certs.expiry`
prints one table through the kubesalt_certs outputter the runner names, `--out=json`
gives the same data as JSON, a declared node that does not answer is a row, and the
minion's kubesalt_certs.certificates reads files and kubeconfig-embedded certificates."""

import base64
import json
import pathlib
import subprocess
import sys

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from kubesalt import inventory
from kubesalt.kubeadm.model import Layout
from tests.unit.test_config import BASE
from tests.unit.test_pkicheck import make_ca, make_leaf, new_key, write_cert

pytestmark = pytest.mark.integration

REPO = pathlib.Path(__file__).resolve().parents[2]
SALT_RUN = pathlib.Path(sys.executable).parent / "salt-run"


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("kubesalt")
    config = root / "bootstrap.yaml"
    config.write_text(yaml.safe_dump(BASE))
    nodes = root / "nodes"
    nodes.mkdir()
    for name, host, roles in (("bootstrap", "198.51.100.10", ("bootstrap", "ca", "etcd")),
                              ("worker1", "198.51.100.20", ("node",))):  # fmt: skip
        (nodes / f"{name}.yaml").write_text(
            yaml.safe_dump(inventory.Node(name, host, roles).to_document())
        )
    layout = Layout(str(root / "node"))
    pathlib.Path(layout.pki("etcd")).mkdir(parents=True)
    ca_key, leaf_key = new_key("rsa"), new_key("rsa")
    ca = make_ca(ca_key)
    write_cert(pathlib.Path(layout.pki("ca.crt")), ca)
    write_cert(pathlib.Path(layout.pki("etcd/server.crt")), make_leaf(ca, ca_key, leaf_key))
    short = make_leaf(ca, ca_key, leaf_key, days=20)
    data = base64.b64encode(short.public_bytes(serialization.Encoding.PEM)).decode()
    pathlib.Path(layout.kubeconfig("kubelet.conf")).write_text(yaml.safe_dump(
        {"users": [{"name": "u", "user": {"client-certificate-data": data}}]}))  # fmt: skip
    return {"config": config, "inventory": nodes, "root": layout.root,
            "record": root / "last-run.json"}  # fmt: skip


@pytest.fixture(scope="module")
def master(salt_factories, paths):
    overrides = {
        "module_dirs": [str(REPO / "salt")],
        "kubesalt_config": str(paths["config"]),
        "kubesalt_inventory": str(paths["inventory"]),
    }
    factory = salt_factories.salt_master_daemon("ks-certs-master", overrides=overrides)
    with factory.started():
        yield factory


@pytest.fixture(scope="module")
def minion(master, paths):
    overrides = {"module_dirs": [str(REPO / "salt")], "grains": {"kubesalt_root": paths["root"]}}
    factory = master.salt_minion_daemon("bootstrap", overrides=overrides)
    with factory.started():
        master.salt_key_cli().run("-a", "bootstrap", "-y")
        yield factory


def salt_run(master, paths, *args):
    command = [str(SALT_RUN), "-c", master.config_dir, "kubesalt_certs.expiry", "timeout=10",
               f"record={paths['record']}", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_minion_reads_its_files_and_embedded_certificates(minion):
    ret = minion.salt_call_cli(timeout=60).run("kubesalt_certs.certificates")
    assert ret.returncode == 0, ret.stderr
    assert [e["certificate"] for e in ret.data] == ["ca.crt", "etcd/server.crt", "kubelet.conf"]


def test_the_report_is_one_table_by_default(master, minion, paths):
    done = salt_run(master, paths)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("NODE") and "ISSUING CA" in lines[0]
    kubelet = next(line for line in lines if "kubelet.conf" in line)
    assert kubelet.startswith("bootstrap") and kubelet.rstrip().endswith("yes")  # 20 days
    server = next(line for line in lines if "etcd/server.crt" in line)
    assert server.rstrip().endswith("no")
    silent = next(line for line in lines if line.startswith("worker1"))
    assert "did not answer within 10s" in silent
    assert any(line.startswith("CERTIFICATE AUTHORITY") for line in lines)
    assert lines[-1].startswith("Scheduled renewal: no run recorded yet")


def test_out_json_gives_the_same_data(master, minion, paths):
    paths["record"].write_text(json.dumps({"outcome": "nothing due", "started": "s"}))
    done = salt_run(master, paths, "--out=json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {r["certificate"]: r["due"] for r in report["certificates"]} == {
        "etcd/server.crt": False, "kubelet.conf": True}  # fmt: skip
    assert report["problems"][0]["node"] == "worker1"
    assert [c["certificate"] for c in report["cas"]] == ["ca"]
    assert report["last_renewal"] == {"outcome": "nothing due", "started": "s"}
