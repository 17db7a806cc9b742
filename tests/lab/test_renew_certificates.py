"""Certificate renewal on the four-node lab (issue 13): `renew_certificates` with a window
wider than the leaf validity renews every leaf certificate of every node and no CA, one
member at a time while etcd stays healthy and exactly one node holds the VIP; a second plain
run changes nothing; the bootstrap node's daily schedule item runs and records it.

Runs after test_cluster.py (file order), on the lab it leaves: every node deployed. The lab
skips kubelet and wait-control-plane (no Kubernetes binaries here: docs/lab.md)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from kubesalt_lab import model
from tests.lab.test_cluster import cluster_healthy, salt_json, saltenv, vip_holders

pytestmark = pytest.mark.lab

NODES = [n.name for n in model.NODES]
PKI = "/etc/kubernetes/pki"
CA_CERTS = {f"{PKI}/ca.crt", f"{PKI}/etcd/ca.crt", f"{PKI}/front-proxy-ca.crt"}
LAB_SKIPS = ["kubelet", "wait-control-plane"]
SERIALS = (
    f"for f in $(find {PKI} -name '*.crt' | sort); do "
    'printf "%s %s\\n" "$f" "$(openssl x509 -noout -serial -in "$f")"; done'
)
LAST_RUN = "/var/lib/kubesalt/renewal/last-run.json"


def serials(lab, node) -> dict[str, str]:
    out = lab.run(node, "sh", "-c", SERIALS).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def renew_command(lab, **pillar) -> list[str]:
    pillar.setdefault("skip_phases", LAB_SKIPS)
    return ["state.orchestrate", "kubesalt.orchestrate.renew_certificates",
            f"saltenv={saltenv(lab)}", f"pillar={json.dumps(pillar)}"]  # fmt: skip


class Sampler(threading.Thread):
    """etcd health and the VIP holders, sampled while the renewal runs."""

    def __init__(self, lab):
        super().__init__(daemon=True)
        self.lab, self.samples, self.done = lab, [], threading.Event()

    def run(self):
        while not self.done.is_set():
            self.samples.append((cluster_healthy(self.lab), tuple(vip_holders(self.lab))))
            self.done.wait(1)


@pytest.fixture(scope="module")
def before(lab):
    return {node: serials(lab, node) for node in NODES}


def test_a_wide_window_renews_every_leaf_and_no_ca_with_etcd_and_vip_kept(lab, before):
    sampler = Sampler(lab)
    sampler.start()
    start = time.monotonic()
    result, out = salt_json(lab, "salt-run", *renew_command(lab, renew_before_days=400))
    seconds = time.monotonic() - start
    sampler.done.set()
    sampler.join()
    print(f"renew_certificates of {len(NODES)} nodes, every leaf due: {seconds:.1f}s")
    assert result.returncode == 0, out[-3000:]
    assert model.failed_states(out) == []
    for node in NODES:
        after = serials(lab, node)
        assert set(after) == set(before[node]), node
        for path, serial in before[node].items():
            if path in CA_CERTS:
                assert after[path] == serial, f"{node}: CA {path} changed"
            else:
                assert after[path] != serial, f"{node}: {path} was not renewed"
    assert sampler.samples, "no sample taken"
    unhealthy = [s for s in sampler.samples if not s[0]]
    assert not unhealthy, f"etcd unhealthy in {len(unhealthy)} of {len(sampler.samples)} samples"
    assert all(len(holders) == 1 for _, holders in sampler.samples), sampler.samples


def test_a_second_plain_run_renews_nothing(lab, before):
    result, out = salt_json(lab, "salt-run", *renew_command(lab))
    assert result.returncode == 0, out[-3000:]
    assert model.summary(out).endswith(" 0 changed"), out[-3000:]


def test_the_daily_schedule_item_runs_and_records_nothing_due(lab):
    lab.run("bootstrap", "rm", "-f", LAST_RUN)
    result = lab.run("bootstrap", "salt", "bootstrap", "schedule.run_job",
                     "kubesalt-renew-certificates", timeout=120)  # fmt: skip

    def recorded():
        out = lab.run("bootstrap", "cat", LAST_RUN, check=False)
        return json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else None

    deadline = time.monotonic() + 900
    record = recorded()
    while record is None and time.monotonic() < deadline:
        time.sleep(3)
        record = recorded()
    assert record is not None, f"{LAST_RUN} not written; schedule.run_job said {result.stdout}"
    assert (record["outcome"], record["renewed"]) == ("nothing due", {}), record
    log = lab.run("bootstrap", "cat", "/var/log/kubesalt/orchestrate.log").stdout
    assert "renew_certificates (schedule): scheduled renewal nothing due" in log, log[-2000:]
