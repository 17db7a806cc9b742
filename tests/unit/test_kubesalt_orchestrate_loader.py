"""The kubesalt_orchestrate loader modules: the state is only glue (options, backend,
report -> state return), the execution module shows the plan. Salt's dunders are given
directly; the engine runs on the fake cluster of tests/unit/orchestrate/fakes.py."""

import http.server
import io
import os
import socket
import stat
import threading

import pytest
import yaml
from salt.exceptions import CommandExecutionError

from kubesalt import inventory
from kubesalt.orchestrate import backend
from tests.unit.loader import load
from tests.unit.orchestrate.fakes import THREE_NODES, Cluster, FakeBackend, lab_config

plan_module = load("_modules", "kubesalt_orchestrate")
states = load("_states", "kubesalt_orchestrate")
PILLAR = {"kubesalt": lab_config()}


@pytest.fixture
def fake(tmp_path, monkeypatch):
    fake = FakeBackend(Cluster(deployed=("bootstrap", *THREE_NODES)).apply_addons(), tmp_path)
    monkeypatch.setattr(states, "_make_backend", lambda: fake)
    monkeypatch.setattr("kubesalt.orchestrate.progress.sys.stderr", io.StringIO())
    states.__opts__ = {"test": False}
    return fake


def test_a_converged_run_is_true_with_no_changes_and_lists_every_phase(fake):
    ret = states.ran("Run the deploy_node orchestration", "deploy_node", "kubesalt-0.1.0",
                     {"nodes": THREE_NODES, **PILLAR})  # fmt: skip
    assert (ret["result"], ret["changes"]) == (True, {})
    assert ret["comment"].splitlines()[0] == "deploy_node cp2, cp3, worker1:"
    assert ret["comment"].splitlines()[1].startswith("preflight: no changes (")
    assert len(ret["comment"].splitlines()) == 14


def test_the_options_come_from_this_runs_pillar_when_the_sls_passes_none(fake):
    states.__pillar__ = {"node": "cp3", "skip_phases": ["addons"], **PILLAR}
    ret = states.ran("x", "deploy_node", "kubesalt-0.1.0")
    assert ret["result"] is True
    assert ret["comment"].splitlines()[0] == "deploy_node cp3:"
    assert any(line.startswith("addons: skipped") for line in ret["comment"].splitlines())


def test_changes_are_keyed_by_phase_then_node(fake):
    fake.cluster.drift["cp3"] = {"kubesalt.pki": ["Renew apiserver.crt"]}
    ret = states.ran("x", "deploy_node", "kubesalt-0.1.0", {"node": "cp3", **PILLAR})
    assert ret["result"] is True
    assert ret["changes"] == {"certs": {"cp3": {"states": ["Renew apiserver.crt"]}}}


def test_a_dry_run_with_something_to_change_is_none(fake):
    fake.cluster.drift["cp3"] = {"kubesalt.pki": ["Renew apiserver.crt"]}
    states.__opts__ = {"test": True}
    ret = states.ran("x", "deploy_node", "kubesalt-0.1.0", {"node": "cp3", **PILLAR})
    assert ret["result"] is None
    assert ret["changes"]["certs"] == {"cp3": {"states": ["Renew apiserver.crt"]}}
    assert fake.cluster.drift["cp3"]
    fake.cluster.drift["cp3"] = {}
    assert states.ran("x", "deploy_node", "kubesalt-0.1.0", {"node": "cp3", **PILLAR})[
        "result"] is True  # fmt: skip


def test_a_failure_is_false_with_no_changes_and_names_phase_and_node(fake):
    fake.cluster.minions["cp3"]["running"] = False
    ret = states.ran("x", "deploy_node", "kubesalt-0.1.0", {"node": "cp3", **PILLAR})
    assert (ret["result"], ret["changes"]) == (False, {})
    assert ret["comment"].startswith("phase key on cp3: waited 90s for minion(s) cp3 ")


def test_an_invalid_pillar_stops_before_anything_runs(fake):
    ret = states.ran("x", "deploy_node", "kubesalt-0.1.0",
                     {"node": "cp3", "skip_phases": ["kubelte"], **PILLAR})  # fmt: skip
    assert ret == {"name": "x", "result": False, "changes": {}, "comment": (
        "pillar skip_phases: invalid phase name(s) kubelte for deploy_node; valid phases: "
        "preflight, minion, key, grains, firewall, certs, control-plane, kubelet, etcd, "
        "keepalived, wait-control-plane, addons, highstate")}  # fmt: skip
    assert fake.calls == []


def test_plan_of_a_declared_worker(fake):
    plan_module.__opts__ = {"kubesalt_inventory": fake.inventory_dir}
    plan_module.__pillar__ = PILLAR
    plan = plan_module.plan("deploy_node", {"node": "worker1", "skip_phases": ["addons"]})
    assert plan["nodes"] == ["worker1"]
    assert plan["roles"] == {"worker1": ["node"]}
    assert "etcd: not for this node (roles node)" in plan["skipped"]
    assert "addons: skipped (pillar skip_phases)" in plan["skipped"]


def test_plan_refuses_an_unknown_phase_naming_the_valid_ones(fake):
    plan_module.__opts__ = {"kubesalt_inventory": fake.inventory_dir}
    plan_module.__pillar__ = PILLAR
    with pytest.raises(CommandExecutionError, match=r"OrchestrateError: .*valid phases: preflight"):
        plan_module.plan("deploy_node", {"node": "cp2", "skip_phases": "kubelte"})
    with pytest.raises(CommandExecutionError, match="pillar node = None: give the node"):
        plan_module.plan("remove_node", {})


# -- the real backend's own pieces -----------------------------------------------------


class FakeKey:
    def __init__(self):
        self.keys = {"minions": {"cp2": "PEM2"}, "minions_pre": {"cp3": "PEM3"}}
        self.calls = []

    def list_keys(self):
        return {status: list(found) for status, found in self.keys.items()}

    def key_str(self, match):
        return {s: {m: p for m, p in found.items() if m == match} for s, found in self.keys.items()}

    def accept(self, match):
        self.calls.append(("accept", match))

    def delete_key(self, match, preserve_minions):
        self.calls.append(("delete", match, preserve_minions))


def test_the_key_store_adapter():
    key = FakeKey()
    store = backend.KeyStore(key)
    assert store.accepted() == ["cp2"]
    assert store.status("cp3") == ("minions_pre", "PEM3")
    assert store.status("cp9") == (None, None)
    store.accept("cp3")
    store.delete("cp2")
    assert key.calls == [("accept", "cp3"), ("delete", "cp2", False)]


def test_the_backend_files_sockets_and_http(tmp_path):
    real = backend.Backend(None, None, None, "198.51.100.10", str(tmp_path / "nodes"))
    path = str(tmp_path / "keys" / "cp2.pub")
    assert real.read_text_or_none(path) is None
    real.write_private(path, "PEM")
    assert real.read_text(path) == "PEM"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    real.remove(path)
    assert real.read_text_or_none(path) is None
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        real.connect("127.0.0.1", server.getsockname()[1], 3)
    with pytest.raises(OSError):
        real.connect("127.0.0.1", 1, 1)

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200 if self.path == "/readyz" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert real.http_status(f"{base}/readyz", 5) == 200
        assert real.http_status(f"{base}/livez", 5) == 503
    finally:
        server.shutdown()
    with pytest.raises(OSError):
        real.http_status("http://127.0.0.1:1/readyz", 2)


def test_the_backend_records_each_node_s_release_in_the_inventory(tmp_path):
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    for name, ip in (("cp2", "198.51.100.11"), ("worker1", "198.51.100.21")):
        node = inventory.Node(name, ip, ("node",))
        (nodes / f"{name}.yaml").write_text(yaml.safe_dump(node.to_document()))
    real = backend.Backend(None, None, None, "198.51.100.10", str(nodes))
    assert real.kubernetes_versions() == {"cp2": None, "worker1": None}
    assert real.record_kubernetes_version("cp2", "v1.34.2") is True
    assert real.record_kubernetes_version("cp2", "v1.34.2") is False
    assert real.kubernetes_versions() == {"cp2": "v1.34.2", "worker1": None}
    assert yaml.safe_load((nodes / "cp2.yaml").read_text())["kubernetes_version"] == "v1.34.2"
