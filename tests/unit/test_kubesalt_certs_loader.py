"""The kubesalt_certs loader modules with Salt's dunders faked: the scheduled renewal
(skipped under another orchestration's lock, else run and recorded), the runner asking
every declared node, and the outputter."""

import json
import os
import stat
from unittest.mock import Mock

import pytest
import yaml

from kubesalt import certreport, inventory, lock
from tests.unit.loader import load
from tests.unit.test_config import BASE

module = load("_modules", "kubesalt_certs")
runner = load("_runners", "kubesalt_certs")
outputter = load("_output", "kubesalt_certs")

RENEWED = {"data": {"bootstrap_master": {"kubesalt_orchestrate_|-Run_|-x_|-ran": {
    "result": True, "comment": "renew_certificates ...", "changes": {"workers": {"worker1": {
        "certs": {"states": ["Obtain the kubelet-client certificate from the CA minion"]}}}}}}}}  # fmt: skip


@pytest.fixture
def paths(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "LOCK_FILE", str(tmp_path / "run" / "orchestrate.lock"))
    monkeypatch.setattr(module._progress, "LOG_FILE", str(tmp_path / "log" / "orchestrate.log"))
    return {"record": str(tmp_path / "renewal" / "last-run.json"),
            "log": tmp_path / "log" / "orchestrate.log"}  # fmt: skip


@pytest.fixture
def configure_loader_modules():
    return {module: {"__salt__": {}, "__grains__": {}}}


def test_the_scheduled_run_runs_the_orchestration_and_records_what_it_renewed(paths):
    run = Mock(return_value=RENEWED)
    module.__salt__["saltutil.runner"] = run
    result = module.renew_scheduled("kubesalt-0.1.0", record_file=paths["record"])
    run.assert_called_once_with("state.orchestrate",
                                arg=["kubesalt.orchestrate.renew_certificates"],
                                saltenv="kubesalt-0.1.0")  # fmt: skip
    assert (result["outcome"], result["renewed"]) == ("renewed", {"worker1": ["kubelet-client"]})
    assert certreport.read_last_run(paths["record"]) == result
    assert stat.S_IMODE(os.stat(paths["record"]).st_mode) == 0o600
    assert (
        paths["log"]
        .read_text()
        .endswith(
            "renew_certificates (schedule): scheduled renewal renewed: 1 certificate(s) renewed "
            "on 1 node(s).\n"
        )
    )


def test_the_scheduled_run_skips_while_another_orchestration_holds_the_lock(paths, monkeypatch):
    run = Mock()
    module.__salt__["saltutil.runner"] = run
    held = Mock(side_effect=lock.LockBusy("another kubesalt orchestration is running: "
                                          "deploy_node cp2 (PID 7, since ...)"))  # fmt: skip
    monkeypatch.setattr(module._lock, "acquire", held)
    result = module.renew_scheduled("kubesalt-0.1.0", record_file=paths["record"])
    run.assert_not_called()
    assert result["outcome"] == "skipped"
    assert "deploy_node cp2 (PID 7" in result["message"]
    assert certreport.read_last_run(paths["record"])["outcome"] == "skipped"
    assert "scheduled renewal skipped: another kubesalt orchestration is running" in (
        paths["log"].read_text()
    )


def test_the_runner_asks_every_declared_node_and_names_the_silent_one(tmp_path):
    config = tmp_path / "bootstrap.yaml"
    config.write_text(yaml.safe_dump(BASE))
    nodes = tmp_path / "nodes"
    for name, host, roles in (("bootstrap", "198.51.100.10", ("bootstrap", "ca", "etcd")),
                              ("worker1", "198.51.100.20", ("node",))):  # fmt: skip
        nodes.mkdir(exist_ok=True)
        (nodes / f"{name}.yaml").write_text(
            yaml.safe_dump(inventory.Node(name, host, roles).to_document())
        )
    client = Mock()
    client.cmd.return_value = {"bootstrap": {"ret": [], "retcode": 0}}
    runner.__opts__ = {"conf_file": "/etc/salt/master"}
    runner.salt.client.get_local_client = Mock(return_value=client)
    ret = runner.expiry(config=str(config), inventory=str(nodes),
                        record=str(tmp_path / "none.json"))  # fmt: skip
    assert ret["outputter"] == "kubesalt_certs"
    assert ret["data"]["problems"] == [{"node": "worker1", "certificate": None,
                                        "error": "did not answer within 30s (salt worker1 "
                                        "test.ping)"}]  # fmt: skip
    assert client.cmd.call_args.args[:2] == (
        ["bootstrap", "worker1"],
        "kubesalt_certs.certificates",
    )
    unknown = runner.expiry(nodes="cp9", config=str(config), inventory=str(nodes))
    assert unknown["retcode"] == 1 and "nodes: cp9 not declared" in unknown["comment"]


def test_the_outputter_prints_the_table():
    report = certreport.build({}, {"pki": {"certificateValidityDays": 365,
                                           "renewBeforeDays": None}}, certreport.renewal.datetime.datetime.now(tz=certreport.renewal.datetime.UTC))  # fmt: skip
    assert outputter.output(report) == certreport.table(report)
    assert json.loads(json.dumps(report)) == report
