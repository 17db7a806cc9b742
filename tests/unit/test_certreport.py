"""The expiry report: what a node reads (files and kubeconfig-embedded certificates), the
report built on the master (due leaves, CA warnings, silent nodes, the last scheduled
run), its table and JSON, the renewal record and the schedule item."""

import base64
import datetime
import json
import os
import pathlib
import stat

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from kubesalt import certreport
from kubesalt.kubeadm.model import Layout
from tests.unit.test_pkicheck import NOW, make_ca, make_leaf, new_key, write_cert

DAY = datetime.timedelta(days=1)
CFG = {"pki": {"certificateValidityDays": 365, "renewBeforeDays": None}}


@pytest.fixture(scope="module")
def pki():
    ca_key, leaf_key = new_key("rsa"), new_key("rsa")
    ca = make_ca(ca_key)
    return {"ca": ca, "leaf": make_leaf(ca, ca_key, leaf_key),
            "short": make_leaf(ca, ca_key, leaf_key, days=30)}  # fmt: skip


@pytest.fixture
def node(tmp_path, pki):
    layout = Layout(str(tmp_path))
    os.makedirs(layout.pki("etcd"))
    os.makedirs(layout.pki("kubeconfig"))
    write_cert(pathlib.Path(layout.pki("ca.crt")), pki["ca"])
    write_cert(pathlib.Path(layout.pki("apiserver.crt")), pki["leaf"])
    write_cert(pathlib.Path(layout.pki("kubeconfig/kubelet-client.crt")), pki["short"])
    pem = pki["short"].public_bytes(serialization.Encoding.PEM)
    kubeconfig = {"users": [{"name": "u", "user": {
        "client-certificate-data": base64.b64encode(pem).decode()}}]}  # fmt: skip
    with open(layout.kubeconfig("kubelet.conf"), "w") as stream:
        yaml.safe_dump(kubeconfig, stream)
    with open(layout.kubeconfig("token.conf"), "w") as stream:
        yaml.safe_dump({"users": [{"name": "u", "user": {"token": "x"}}]}, stream)
    return layout


def test_a_node_reads_its_files_and_the_embedded_client_certificates(node, pki):
    entries = certreport.read_node(node)
    assert [e["certificate"] for e in entries] == [
        "apiserver.crt", "ca.crt", "kubeconfig/kubelet-client.crt", "kubelet.conf"]  # fmt: skip
    ca, conf = entries[1], entries[3]
    assert (ca["ca"], ca["subject"], ca["issuer"]) == (True, "kubernetes", "kubernetes")
    assert conf["serial"] == format(pki["short"].serial_number, "x")
    assert conf["subject"] == "system:node:w1" and conf["ca"] is False
    assert conf["path"] == node.kubeconfig("kubelet.conf")


def test_an_unreadable_certificate_is_a_row_that_says_so(node):
    with open(node.pki("front-proxy-client.crt"), "w") as stream:
        stream.write("not a certificate")
    entry = [e for e in certreport.read_node(node) if e["certificate"] == "front-proxy-client.crt"]
    assert entry[0]["error"].startswith("cannot read it: ")


@pytest.fixture
def report(node):
    answers = {"cp2": certreport.read_node(node), "worker1": "did not answer within 30s"}
    last = {"started": "2026-06-01T03:00:00Z", "ended": "2026-06-01T03:04:00Z",
            "outcome": "renewed", "message": "1 certificate(s) renewed on 1 node(s).",
            "renewed": {"cp2": ["apiserver"]}}  # fmt: skip
    return certreport.build(answers, CFG, NOW, last)


def test_a_certificate_near_its_end_is_due_the_others_not(report):
    rows = {r["certificate"]: r for r in report["certificates"]}
    assert rows["kubelet.conf"]["due"] is True  # 30 days, within 90
    assert rows["kubelet.conf"]["days_left"] == 29  # 30 days from NOW, less its microseconds
    assert rows["apiserver.crt"]["due"] is False
    assert rows["apiserver.crt"]["ca"] == "ca"  # the issuing CA by its file name
    assert report["renew_before_days"] == 90


def test_a_node_that_does_not_answer_is_a_row(report):
    assert report["problems"] == [
        {"node": "worker1", "certificate": None, "error": "did not answer within 30s"}]  # fmt: skip
    assert "1 node(s) or file(s) could not be read" in " ".join(report["warnings"])


def test_cas_in_their_own_section_and_a_warning_inside_their_window(node, pki, tmp_path):
    assert [(c["certificate"], c["nodes"], c["warning"]) for c in
            certreport.build({"cp2": certreport.read_node(node)}, CFG, NOW)["cas"]] == [
        ("ca", ["cp2"], False)]  # fmt: skip
    late = NOW + (3650 - 300) * DAY  # the CA has 300 days left: a 365-day leaf outlives it
    report = certreport.build({"cp2": certreport.read_node(node)}, CFG, late)
    assert report["cas"][0]["warning"] is True
    assert report["warnings"][0].startswith("CA ca (serial ")
    assert "within 365 days (pki.certificateValidityDays)" in report["warnings"][0]


def test_the_table_is_one_table_then_the_cas_the_warnings_and_the_last_run(report):
    text = certreport.table(report)
    lines = text.splitlines()
    assert lines[0].split() == ["NODE", "CERTIFICATE", "EXPIRES", "DAYS", "LEFT", "ISSUING",
                                "CA", "DUE", "(<90d)"]  # fmt: skip
    kubelet = next(line for line in lines if "kubelet.conf" in line)
    assert kubelet.split()[0] == "cp2" and kubelet.rstrip().endswith("yes")
    assert "29d" in kubelet
    silent = next(line for line in lines if line.startswith("worker1"))
    assert "not read" in silent and silent.endswith("did not answer within 30s")
    assert any(line.startswith("CERTIFICATE AUTHORITY") for line in lines)
    assert lines[-1] == ("Scheduled renewal: last run 2026-06-01T03:00:00Z to "
                         "2026-06-01T03:04:00Z, renewed: 1 certificate(s) renewed on 1 "
                         "node(s). Renewed: cp2: apiserver.")  # fmt: skip


def test_the_json_is_the_same_data(report):
    again = json.loads(json.dumps(report))
    assert again == report
    assert set(report) == {"generated", "renew_before_days", "ca_warning_days", "certificates",
                           "cas", "problems", "warnings", "last_renewal"}  # fmt: skip


def test_without_a_recorded_run_the_report_says_how_to_trigger_one():
    assert certreport.last_run_line(None).endswith(
        "salt <bootstrap node> schedule.run_job kubesalt-renew-certificates"
    )


# -- the scheduled renewal's record ------------------------------------------------------
def test_the_record_is_root_only_and_read_back(tmp_path):
    path = str(tmp_path / "renewal" / "last-run.json")
    assert certreport.read_last_run(path) is None
    certreport.write_last_run({"outcome": "skipped"}, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert certreport.read_last_run(path) == {"outcome": "skipped"}


def test_a_broken_record_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "last-run.json"
    path.write_text("{")
    with pytest.raises(certreport.ReportError, match=f"cannot read the renewal record {path}"):
        certreport.read_last_run(str(path))


def orchestrate_ret(result, changes, comment="renew_certificates ...:\npreflight: ..."):
    state = {"result": result, "changes": changes, "comment": comment, "name": "x"}
    return {"data": {"bootstrap_master": {"kubesalt_orchestrate_|-Run_|-x_|-ran": state}},
            "outputter": "highstate", "retcode": 0 if result else 1}  # fmt: skip


def test_what_a_run_renewed_comes_from_its_certs_phases():
    changes = {
        "members": {"cp2": {"certs": {"states": [
            "Obtain the apiserver certificate from the CA minion",
            "Create the private key of the apiserver certificate"]},
            "static-pods": {"states": ["Write the kube-apiserver static pod"]}}},
        "workers": {"worker1": {"certs": {"states": [
            "Obtain the kubelet-client certificate from the CA minion"]}}},
    }  # fmt: skip
    assert certreport.orchestrate_outcome(orchestrate_ret(True, changes)) == {
        "outcome": "renewed", "message": "2 certificate(s) renewed on 2 node(s).",
        "renewed": {"cp2": ["apiserver"], "worker1": ["kubelet-client"]}}  # fmt: skip


def test_a_run_with_nothing_due_and_a_failed_run():
    assert certreport.orchestrate_outcome(orchestrate_ret(True, {}))["outcome"] == "nothing due"
    failed = certreport.orchestrate_outcome(
        orchestrate_ret(False, {}, "phase members on cp2: etcd-health: ...\nmore")
    )
    assert failed == {"outcome": "failed", "message": "phase members on cp2: etcd-health: ...",
                      "renewed": {}}  # fmt: skip
    assert certreport.orchestrate_outcome(["SLS not found"])["outcome"] == "failed"


def test_the_schedule_item_runs_the_renewal_daily_one_at_a_time():
    text = certreport.schedule_config("kubesalt-0.1.0")
    assert "schedule.run_job kubesalt-renew-certificates" in text.splitlines()[1]
    assert yaml.safe_load(text) == {"schedule": {"kubesalt-renew-certificates": {
        "function": "kubesalt_certs.renew_scheduled", "args": ["kubesalt-0.1.0"],
        "cron": "45 2 * * *", "splay": 900, "maxrunning": 1}}}  # fmt: skip
