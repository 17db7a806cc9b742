"""renew_certificates against the fake cluster: the full, ordered sequence of backend
calls (members one at a time, workers together), the pillar the states get, a second run,
the dry run, skipped phases, a failure naming the phase and the node, and the options.
Removing any step of the table changes a sequence here."""

import datetime
import io

import pytest

from kubesalt.orchestrate import OrchestrateError, engine, options, tables
from kubesalt.orchestrate.progress import Progress
from tests.unit.orchestrate.fakes import SALTENV, Cluster, FakeBackend

ALL = ("bootstrap", "cp2", "cp3", "worker1")
START = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)
CA = {"kubesalt": {"ca": {"minion": "bootstrap"}, "apiServer": {"port": 6443}}}
ETCD_SERVER = "/etc/kubernetes/pki/etcd/server.crt"
OBTAIN = "Obtain the {} certificate from the CA minion"


class RenewCluster(Cluster):
    """The fake cluster, with what renewal asks of a node and the pillars it got."""

    def __init__(self):
        super().__init__(deployed=ALL)
        self.pillars = []
        self.unhealthy = set()

    def _state_sls(self, node, mods, saltenv, test=False, pillar=None):
        self.pillars.append(pillar)
        return super()._state_sls(node, mods, saltenv, test=test)

    def _kubesalt_certs_wait_serving(self, node, port, cert, timeout):
        if node in self.unhealthy:
            return "ERROR: 127.0.0.1:2379 does not serve it after 120s"
        return {"serial": f"{node}-serial", "port": port}

    def _kubesalt_etcd_health(self, node, cluster):
        return {"https://198.51.100.12:2379": {"health": node not in self.unhealthy}}


@pytest.fixture
def cluster():
    return RenewCluster()


@pytest.fixture
def backend(cluster, tmp_path):
    return FakeBackend(cluster, tmp_path)


def run(backend, test=False, **pillar):
    opts = options.from_pillar("renew_certificates", {**CA, **pillar}, SALTENV, ALL, START)
    stream = io.StringIO()
    report = engine.execute(opts, backend, test=test, progress=Progress(opts.label, stream, None))
    report.lines = stream.getvalue().splitlines()
    return report


def member(node, kubelet=True, api=True):
    """The calls of one control-plane and etcd member, in order (without its readyz)."""
    return [
        f"{node} state.sls kubesalt.pki",
        f"{node} state.sls kubesalt.kubeconfig",
        f"{node} state.sls kubesalt.roles.etcd,kubesalt.roles.control-plane",
        *([f"{node} state.sls kubesalt.kubelet"] if kubelet else []),
        f"{node} kubesalt_certs.wait_serving 2379 {ETCD_SERVER}",
        f"{node} kubesalt_etcd.wait_healthy",
        *([f"{node} grains.get kubesalt"] if api else []),
    ]


RUN = [
    # preflight
    "bootstrap,cp2,cp3,worker1 test.ping",
    "bootstrap saltutil.refresh_pillar",
    # members: each renewed, restarted and healthy before the next one
    *member("bootstrap"), "GET https://198.51.100.10:6443/readyz",
    *member("cp2"), "GET https://198.51.100.11:6443/readyz",
    *member("cp3"), "GET https://198.51.100.12:6443/readyz",
    # workers, together
    "worker1 state.sls kubesalt.pki",
    "worker1 state.sls kubesalt.kubeconfig",
    "worker1 state.sls kubesalt.kubelet",
]  # fmt: skip


def test_every_step_in_order_members_one_at_a_time_then_the_workers(backend, cluster):
    cluster.drift["cp2"] = {
        "kubesalt.pki": [OBTAIN.format("apiserver"), OBTAIN.format("etcd-server")],
        "kubesalt.kubeconfig": ["Write the kubeconfig /etc/kubernetes/admin.conf"],
        "kubesalt.roles.etcd": ["Write the etcd static pod"],
    }
    cluster.drift["worker1"] = {"kubesalt.pki": [OBTAIN.format("kubelet-client")]}
    report = run(backend, renew_before_days=400)
    assert report.ok, report.error
    assert backend.calls == RUN
    assert report.changes == {
        "members": {"cp2": {
            "certs": {"states": [OBTAIN.format("apiserver"), OBTAIN.format("etcd-server")]},
            "kubeconfigs": {"states": ["Write the kubeconfig /etc/kubernetes/admin.conf"]},
            "static-pods": {"states": ["Write the etcd static pod"]},
        }},
        "workers": {"worker1": {"certs": {"states": [OBTAIN.format("kubelet-client")]}}},
    }  # fmt: skip
    assert "cp2: etcd serves serial cp2-serial, every member healthy" in report.comment()


def test_every_state_run_gets_the_run_s_window_and_start(backend, cluster):
    run(backend, renew_before_days=400, force=True)
    wanted = {"kubesalt_renew": {"window_days": 400, "force": True,
                                 "issued_before": "2026-06-01T12:00:00Z"}}  # fmt: skip
    assert cluster.pillars and all(p == wanted for p in cluster.pillars)


def test_a_second_run_changes_nothing(backend, cluster):
    cluster.drift["cp3"] = {"kubesalt.pki": [OBTAIN.format("apiserver")]}
    assert run(backend).changes
    backend.calls.clear()
    again = run(backend)
    assert (again.ok, again.changes) == (True, {})
    assert backend.calls == RUN
    assert "members: no changes" in again.comment()


def test_the_dry_run_reports_the_certificates_it_would_renew_and_changes_nothing(backend, cluster):
    cluster.drift["cp2"] = {"kubesalt.pki": [OBTAIN.format("apiserver")]}
    report = run(backend, test=True)
    assert report.ok
    assert report.changes == {"members": {"cp2": {
        "certs": {"states": [OBTAIN.format("apiserver")]},
        "kubeconfigs": "would follow the renewal",
        "static-pods": "would follow the renewal",
        "kubelet": "would follow the renewal",
    }}}  # fmt: skip
    assert cluster.drift["cp2"]  # nothing applied
    assert [c for c in backend.calls if "state.sls" in c] == [
        "bootstrap state.sls kubesalt.pki test=True",
        "cp2 state.sls kubesalt.pki test=True",
        "cp3 state.sls kubesalt.pki test=True",
        "worker1 state.sls kubesalt.pki test=True",
    ]
    assert "cp2 kubesalt_etcd.health" in backend.calls
    assert not any("wait_serving" in c or "wait_healthy" in c for c in backend.calls)


def test_the_lab_skips_the_kubelet_and_the_api_checks_by_name(backend):
    report = run(backend, skip_phases=["kubelet", "wait-control-plane"])
    assert report.ok
    assert backend.calls == [
        "bootstrap,cp2,cp3,worker1 test.ping",
        "bootstrap saltutil.refresh_pillar",
        *member("bootstrap", kubelet=False, api=False),
        *member("cp2", kubelet=False, api=False),
        *member("cp3", kubelet=False, api=False),
        "worker1 state.sls kubesalt.pki",
        "worker1 state.sls kubesalt.kubeconfig",
    ]


def test_a_member_that_does_not_come_back_stops_the_run_before_the_next(backend, cluster):
    cluster.unhealthy.add("cp2")
    report = run(backend)
    assert report.error.startswith(
        "phase members on cp2: etcd-health: etcd on cp2 serving its renewed certificate on cp2 "
        "failed: ERROR: 127.0.0.1:2379 does not serve it after 120s (done before the failure: "
        "bootstrap)"
    )
    assert not any(c.startswith("cp3 ") or c.startswith("worker1 ") for c in backend.calls)


def test_a_limited_run_acts_on_the_given_nodes_only(backend):
    report = run(backend, nodes=["worker1"])
    assert report.ok
    assert backend.calls == [
        "worker1 test.ping",
        "bootstrap saltutil.refresh_pillar",
        "worker1 state.sls kubesalt.pki",
        "worker1 state.sls kubesalt.kubeconfig",
        "worker1 state.sls kubesalt.kubelet",
    ]
    assert "members: not for this node (roles node)" in report.comment()


def test_without_workers_the_workers_phase_says_so(backend):
    report = run(backend, nodes=["cp3"])
    assert "workers: no changes (0.0s); no node without the role(s) control-plane, etcd" in (
        report.comment().replace("(0.5s)", "(0.0s)")
    )


# -- the table and its options -----------------------------------------------------------
def test_renew_phases_and_their_nested_phases():
    assert [p.name for p in tables.RENEW_CERTIFICATES] == ["preflight", "members", "workers"]
    assert [p.name for p in tables.RENEW_MEMBER_PHASES] == [
        "certs", "kubeconfigs", "static-pods", "kubelet", "etcd-health", "wait-control-plane"]  # fmt: skip
    assert [p.name for p in tables.RENEW_WORKER_PHASES] == ["certs", "kubeconfigs", "kubelet"]


def test_every_nested_phase_can_be_skipped_by_name_and_a_typo_cannot():
    assert options.check_skip("renew_certificates", "kubelet,wait-control-plane") == [
        "kubelet", "wait-control-plane"]  # fmt: skip
    with pytest.raises(OrchestrateError, match="invalid phase name.s. addons for "
                       "renew_certificates; valid phases: preflight, members, certs, "):  # fmt: skip
        options.check_skip("renew_certificates", ["addons"])


def test_every_declared_node_by_default_the_ca_minion_first():
    opts = options.from_pillar("renew_certificates", CA, "s", ["worker1", "cp2", "bootstrap"],
                               START)  # fmt: skip
    assert opts.nodes == ("bootstrap", "cp2", "worker1")
    assert opts.renewal.as_pillar() == {"window_days": None, "force": False,
                                        "issued_before": "2026-06-01T12:00:00Z"}  # fmt: skip


def test_without_the_inventory_the_nodes_must_be_given():
    with pytest.raises(OrchestrateError, match="the inventory was not given; give pillar nodes"):
        options.from_pillar("renew_certificates", CA, "s")


@pytest.mark.parametrize("value", [0, -1, "400", True, 36501, 1.5])
def test_a_bad_renew_before_days_is_refused_naming_the_key(value):
    with pytest.raises(OrchestrateError, match=r"pillar renew_before_days = .*: give a whole "
                       "number of days from 1 to 36500"):  # fmt: skip
        options.from_pillar("renew_certificates", {**CA, "renew_before_days": value}, "s", ALL)


def test_renew_before_days_belongs_to_renew_certificates_only():
    with pytest.raises(OrchestrateError, match="deploy_node renews nothing"):
        options.from_pillar("deploy_node", {**CA, "node": "cp2", "renew_before_days": 10}, "s")


def test_the_other_orchestrations_carry_no_renewal():
    assert options.from_pillar("deploy_node", {**CA, "node": "cp2"}, "s").renewal is None
