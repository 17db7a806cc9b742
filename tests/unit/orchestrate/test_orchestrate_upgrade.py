"""The upgrade and downgrade orchestrations against the fake cluster: the full, ordered
sequence of backend calls for a four-node cluster (etcd members, then control-plane nodes,
then workers, one node at a time, the CA minion last), a second run, a dry run, the first
failure stopping the run with its phase and node, a run after a failure continuing, a
skipped phase named at the end, and the options. Removing any step of either table changes
what a run here does."""

import dataclasses
import io

import pytest

from kubesalt.orchestrate import OrchestrateError, engine, options, tables
from kubesalt.orchestrate.progress import Progress
from kubesalt.upgrade import plan
from tests.unit.orchestrate.fakes import ROLES, SALTENV, Cluster, FakeBackend, lab_config

ALL = ("bootstrap", "cp2", "cp3", "worker1")
OLD, NEW = "v1.33.5", "v1.34.2"  # the releases kubesalt supports
PILLAR = {"kubesalt": lab_config(), "kubernetes_version": NEW}
MOVE_MINION = "Install Salt and kubesalt 0.2.0 from the bootstrap node's Salt virtualenv"
ETCD_SERVER = "/etc/kubernetes/pki/etcd/server.crt"


# What a node's states change once its release is recorded as the target: the SLS, the
# nodes it is for (by their roles), its state IDs. The control-plane role's states hold
# the kubelet of a control-plane node; every other node's is kubesalt.kubelet's.
AT_THE_TARGET = (
    ("kubesalt.roles.etcd", lambda roles: "etcd" in roles, ["Write the etcd static pod"]),
    ("kubesalt.roles.control-plane", lambda roles: "control-plane" in roles,
     ["Write the kube-apiserver static pod", "Install kubelet"]),
    ("kubesalt.kubelet", lambda roles: "control-plane" not in roles, ["Install kubelet"]),
)  # fmt: skip


def at_the_target(node) -> dict:
    """What the states of `node` change once it renders at the target release."""
    return {sls: list(ids) for sls, applies, ids in AT_THE_TARGET if applies(ROLES[node])}


class UpgradeCluster(Cluster):
    """A dry run's state run given the target release in its pillar (the release the
    real run would have recorded by then) renders the node at it."""

    def _state_sls(self, node, mods, saltenv, test=False, pillar=None):
        nodes = ((pillar or {}).get("kubesalt") or {}).get("nodes") or {}
        if not test or (nodes.get(node) or {}).get("kubernetes_version") != NEW:
            return super()._state_sls(node, mods, saltenv, test=test, pillar=pillar)
        recorded = self.drift[node]
        self.drift[node] = {**recorded, **at_the_target(node)}
        try:
            return super()._state_sls(node, mods, saltenv, test=test, pillar=pillar)
        finally:
            self.drift[node] = recorded


class UpgradeBackend(FakeBackend):
    """A node whose release is recorded anew renders its static pods and packages at it:
    its role states have something to change."""

    def record_kubernetes_version(self, node, version):
        self.cluster.drift[node].update(at_the_target(node))
        return super().record_kubernetes_version(node, version)


def make_backend(tmp_path, nodes=ALL):
    """`nodes` deployed on the old release; every minion but the CA minion's (moved by
    upgrade.sh) still has the new Salt virtualenv to install."""
    tmp_path.mkdir(exist_ok=True)
    cluster = UpgradeCluster(deployed=nodes).apply_addons()
    for node in nodes[1:]:
        cluster.drift[node]["kubesalt.salt.minion.remote"] = [MOVE_MINION]
    backend = UpgradeBackend(cluster, tmp_path, declared=nodes)
    backend.releases = dict.fromkeys(nodes, OLD)  # recorded by upgrade.sh (step 1a)
    return backend


@pytest.fixture
def backend(tmp_path):
    return make_backend(tmp_path)


@pytest.fixture
def cluster(backend):
    return backend.cluster


def run(backend, orchestration="upgrade", test=False, **pillar):
    declared = tuple(backend.releases)
    opts = options.from_pillar(orchestration, {**PILLAR, **pillar}, SALTENV, declared)
    stream = io.StringIO()
    report = engine.execute(opts, backend, test=test, progress=Progress(opts.label, stream, None))
    report.lines = stream.getvalue().splitlines()
    return report


PREFLIGHT = [
    "cp2,cp3,worker1,bootstrap test.ping",
    # the verdict's checks, asked again
    "bootstrap,cp2,cp3,worker1 test.ping",
    "bootstrap,cp2,cp3,worker1 grains.item saltversion",
    "bootstrap,cp2,cp3,worker1 config.get saltenv",
    "bootstrap,cp2,cp3,worker1 pkg.version kubelet",
    "bootstrap kubesalt_etcd.members",
    "bootstrap kubesalt_etcd.health",
]


def salt_phase(moved=("cp2", "cp3", "worker1")):
    ssh = [
        f"salt-ssh {n} {what}" for n in moved for what in ("state.sls", "-r read the minion key")
    ]
    return [
        "cp2,cp3,worker1 test.ping",  # the install asks the running minions first
        "cp2,cp3,worker1 state.sls kubesalt.salt.minion.remote test=True",
        *(["prepare salt-ssh"] if len(moved) > 1 else []),
        *ssh,
        *([f"{','.join(moved)} test.ping"] if moved else []),
        "cp2,cp3,worker1,bootstrap saltutil.sync_all",
        "cp2,cp3,worker1,bootstrap saltutil.refresh_pillar",
    ]


def etcd_member(node, record=True):
    return [
        *([f"record {node} {NEW}"] if record else []),
        f"{node} state.sls kubesalt.roles.etcd",
        f"{node} kubesalt_certs.wait_serving 2379 {ETCD_SERVER}",
        f"{node} kubesalt_etcd.wait_healthy",
    ]


def control_plane_node(node, ip, record=False):
    return [
        *([f"record {node} {NEW}"] if record else []),
        f"{node} state.sls kubesalt.roles.control-plane,kubesalt.keepalived test=True",
        f"bootstrap kubesalt_kubectl.drain {node}",
        f"{node} state.sls kubesalt.roles.control-plane,kubesalt.keepalived",
        f"{node} grains.get kubesalt",
        f"GET https://{ip}:6443/readyz",
        f"bootstrap kubesalt_kubectl.uncordon {node}",
    ]


WORKER = [
    f"record worker1 {NEW}",
    "worker1 state.sls kubesalt.containerd,kubesalt.kubelet test=True",
    "bootstrap kubesalt_kubectl.drain worker1",
    "worker1 state.sls kubesalt.containerd,kubesalt.kubelet",
    "bootstrap kubesalt_kubectl.uncordon worker1",
]
ADDONS = [
    "bootstrap kubesalt_cluster.apply ClusterRoleBinding with super-admin.conf",
    "bootstrap kubesalt_cluster.apply ClusterRole ClusterRoleBinding ConfigMap DaemonSet "
    "Deployment Node Role RoleBinding Service ServiceAccount",
    "bootstrap kubesalt_cluster.rollout_status DaemonSet Deployment",
]
UPGRADE_RUN = [
    *PREFLIGHT,
    *salt_phase(),
    *etcd_member("cp2"), *etcd_member("cp3"), *etcd_member("bootstrap"),
    *control_plane_node("cp2", "198.51.100.11"),
    *control_plane_node("cp3", "198.51.100.12"),
    *control_plane_node("bootstrap", "198.51.100.10"),
    *WORKER,
    *ADDONS,
]  # fmt: skip


def test_every_step_in_order_one_node_at_a_time_the_ca_minion_last(backend, cluster):
    report = run(backend)
    assert report.ok, report.error
    assert backend.calls == UPGRADE_RUN
    assert backend.releases == dict.fromkeys(ALL, NEW)
    assert cluster.saltenvs == dict.fromkeys(("cp2", "cp3", "worker1"), SALTENV)
    assert not cluster.cordoned
    assert report.changes["etcd"]["cp2"] == {
        "release": {"release": f"recorded {NEW} (was {OLD})"},
        "etcd-pod": {"states": ["Write the etcd static pod"]},
    }
    assert report.changes["workers"]["worker1"] == {
        "release": {"release": f"recorded {NEW} (was {OLD})"},
        "drain": {"cordoned": True, "evicted": []},
        "kubelet": {"states": ["Install kubelet"]},
        "uncordon": {"uncordoned": "worker1"},
    }
    assert f"cluster-release: no changes (0.5s); every node records Kubernetes {NEW}" in (
        report.comment()
    )


def test_the_downgrade_takes_the_kubernetes_stages_in_reverse(backend):
    report = run(backend, "downgrade")
    assert report.ok, report.error
    assert backend.calls == [
        *PREFLIGHT,
        *salt_phase(),
        *ADDONS,
        *WORKER,
        *control_plane_node("cp2", "198.51.100.11", record=True),
        *control_plane_node("cp3", "198.51.100.12", record=True),
        *control_plane_node("bootstrap", "198.51.100.10", record=True),
        *etcd_member("cp2", record=False), *etcd_member("cp3", record=False),
        *etcd_member("bootstrap", record=False),
    ]  # fmt: skip


@pytest.mark.parametrize("orchestration", ["upgrade", "downgrade"])
def test_an_etcd_only_node_moves_both_its_etcd_pod_and_its_kubelet(orchestration, tmp_path):
    backend = make_backend(tmp_path, (*ALL, "etcd1"))
    report = run(backend, orchestration)
    assert report.ok, report.error
    mine = [c for c in backend.calls if c.startswith("etcd1 state.sls") and "test=True" not in c]
    pod = "etcd1 state.sls kubesalt.roles.etcd"
    kubelet = "etcd1 state.sls kubesalt.containerd,kubesalt.kubelet"
    # no kubelet newer than the API server: up after the control plane, down before it
    assert mine == ([pod, kubelet] if orchestration == "upgrade" else [kubelet, pod])
    assert backend.releases["etcd1"] == NEW  # the run's target, whichever way it goes
    assert not backend.cluster.drift["etcd1"]


def test_a_second_run_changes_nothing(backend):
    assert run(backend).changes
    backend.calls.clear()
    again = run(backend)
    assert (again.ok, again.changes) == (True, {})
    assert not any(c.startswith(("record", "salt-ssh")) for c in backend.calls)
    assert "salt: no changes" in again.comment()


def test_the_dry_run_says_what_would_change_and_changes_nothing(backend, cluster):
    report = run(backend, test=True)
    assert report.ok, report.error
    assert backend.releases == dict.fromkeys(ALL, OLD)
    assert not any(c.startswith(("record", "salt-ssh")) for c in backend.calls)
    assert report.changes["salt"]["cp2"] == {"states": [MOVE_MINION]}
    # The state runs render each node at the release the run would have recorded by then.
    assert report.changes["etcd"]["bootstrap"] == {
        "release": {"release": f"would record {NEW} (was {OLD})"},
        "etcd-pod": {"states": ["Write the etcd static pod"]},
    }
    assert report.changes["workers"] == {"worker1": {
        "release": {"release": f"would record {NEW} (was {OLD})"},
        "drain": {"drain": "would cordon and evict its pods"},
        "kubelet": {"states": ["Install kubelet"]},
    }}  # fmt: skip
    assert "worker1 state.sls kubesalt.containerd,kubesalt.kubelet test=True" in backend.calls
    assert (f"cluster-release: no changes (0.5s); not at Kubernetes {NEW} yet: cp2 ({OLD}), "
            f"cp3 ({OLD}), worker1 ({OLD}), bootstrap ({OLD})") in report.comment()  # fmt: skip
    assert cluster.drift["cp2"]["kubesalt.salt.minion.remote"] == [MOVE_MINION]


def test_a_node_cordoned_by_hand_is_upgraded_and_stays_cordoned(backend, cluster):
    cluster.cordoned.add("worker1")  # the operator's maintenance, before the upgrade
    dry = run(backend, test=True)
    assert "worker1: would stay cordoned (cordoned before kubesalt drained it: no " \
        "annotation kubesalt.io/cordoned-by)" in dry.comment()  # fmt: skip
    report = run(backend)
    assert report.ok, report.error
    assert "bootstrap kubesalt_kubectl.drain worker1" in backend.calls  # its pods go still
    assert cluster.cordoned == {"worker1"}  # the others, drained by kubesalt, are back
    assert "worker1: node worker1 stays cordoned" in report.comment()
    assert "uncordon" not in report.changes["workers"]["worker1"]


def test_a_node_uncordoned_by_hand_after_the_drain_loses_the_mark(backend, cluster):
    assert run(backend).ok
    cluster.marked.add("worker1")  # a run's drain, stopped; then kubectl uncordon by hand
    dry = run(backend, test=True)
    assert dry.changes == {"workers": {"worker1": {"uncordon": {
        "unmark": "would remove the annotation kubesalt.io/cordoned-by"}}}}  # fmt: skip
    assert cluster.marked == {"worker1"}  # a dry run changes nothing
    report = run(backend)
    assert report.changes == {"workers": {"worker1": {"uncordon": {"unmarked": "worker1"}}}}
    assert (cluster.marked, cluster.cordoned) == (set(), set())


def test_a_member_that_does_not_come_back_stops_the_run_before_the_next(backend, cluster):
    cluster.failures[("cp3", "kubesalt.roles.etcd")] = "etcd image not found"
    report = run(backend)
    assert report.error.startswith(
        "phase etcd on cp3: etcd-pod: state.sls kubesalt.roles.etcd on cp3: 1 state(s) failed: "
        "kubesalt.roles.etcd fails: etcd image not found (done before the failure: cp2)"
    )
    assert backend.releases == {"bootstrap": OLD, "cp2": NEW, "cp3": NEW, "worker1": OLD}
    assert not any(c.startswith("bootstrap state.sls") or "drain" in c for c in backend.calls)


def test_a_run_after_a_failure_continues_where_it_stopped(backend, cluster):
    cluster.failures[("cp3", "kubesalt.roles.etcd")] = "etcd image not found"
    assert not run(backend).ok
    del cluster.failures[("cp3", "kubesalt.roles.etcd")]
    backend.calls.clear()
    report = run(backend)
    assert report.ok, report.error
    records = [c for c in backend.calls if c.startswith("record")]
    assert records == [f"record bootstrap {NEW}", f"record worker1 {NEW}"]
    assert not any(c.startswith("salt-ssh") for c in backend.calls)
    assert backend.releases == dict.fromkeys(ALL, NEW)


def test_an_unhealthy_etcd_member_refuses_the_run_before_any_change(backend, cluster):
    cluster.etcd_down.add("cp3")
    report = run(backend)
    assert report.error == (
        "phase preflight: the plan's verdict refuses now, nothing was changed: [etcd] etcd "
        f"member(s) not healthy: cp3 ({next(m['id'] for m in cluster.members if m['name'] == 'cp3')}"
        "); bring each back (its node's kubelet and etcd static pod) or remove it "
        "(remove_node) first"
    )
    assert backend.calls == PREFLIGHT


def test_a_skipped_stage_leaves_its_nodes_behind_and_the_run_says_so(backend):
    report = run(backend, skip_phases=["workers"])
    assert report.error == (
        f"phase cluster-release on worker1: not at Kubernetes {NEW}: worker1 ({OLD}); a phase "
        "that moves them was skipped (pillar skip_phases) or stopped: run upgrade again "
        "without skipping it"
    )


def test_the_lab_skips_what_it_cannot_run_by_name_uncordon_with_drain(backend):
    report = run(backend, skip_phases=["drain", "wait-control-plane", "addons"])
    assert report.ok, report.error
    assert not any("kubectl" in c or "readyz" in c or "cluster" in c for c in backend.calls)
    assert backend.releases == dict.fromkeys(ALL, NEW)
    assert "worker1 done in" in report.comment()
    assert "worker1: not drained (phase drain skipped)" in report.comment()


def _without_one_step(phases):
    """Every variant of `phases` with one step removed, nested phases included: (where, variant)."""
    for index, phase in enumerate(phases):
        for number, step in enumerate(phase.steps):
            kept = phase.steps[:number] + phase.steps[number + 1 :]
            yield (f"{phase.name} step {number} {step.kind}",
                   (*phases[:index], dataclasses.replace(phase, steps=kept), *phases[index + 1 :]))  # fmt: skip
            nested = step.args.get("phases")
            for where, variant in _without_one_step(nested) if nested else ():
                changed = dataclasses.replace(step, args={**step.args, "phases": variant})
                steps = phase.steps[:number] + (changed,) + phase.steps[number + 1 :]
                yield (f"{phase.name}/{where}",
                       (*phases[:index], dataclasses.replace(phase, steps=steps),
                        *phases[index + 1 :]))  # fmt: skip


def _outcome(backend, orchestration):
    report = run(backend, orchestration)
    return backend.calls, report.comment(), dict(backend.releases)


@pytest.mark.parametrize("orchestration", ["upgrade", "downgrade"])
def test_removing_any_step_of_any_phase_changes_the_run(orchestration, tmp_path, monkeypatch):
    nodes = (*ALL, "etcd1")  # an etcd-only member: its etcd pod and its kubelet move apart
    whole = _outcome(make_backend(tmp_path / "whole", nodes), orchestration)
    variants = list(_without_one_step(tables.ORCHESTRATIONS[orchestration]))
    assert len(variants) > 20
    for number, (where, variant) in enumerate(variants):
        monkeypatch.setitem(tables.ORCHESTRATIONS, orchestration, variant)
        assert _outcome(make_backend(tmp_path / str(number), nodes), orchestration) != whole, where


# -- the tables and the options ------------------------------------------------------------
def test_the_phases_of_the_upgrade_and_the_downgrade():
    assert [p.name for p in tables.UPGRADE] == [
        "preflight", "salt", "etcd", "control-plane", "workers", "addons", "cluster-release"]  # fmt: skip
    assert [p.name for p in tables.DOWNGRADE] == [
        "preflight", "salt", "addons", "workers", "control-plane", "etcd", "cluster-release"]  # fmt: skip
    assert [p.name for p in tables.ETCD_MEMBER_PHASES] == ["etcd-pod", "etcd-health"]
    assert [p.name for p in tables.CONTROL_PLANE_NODE_PHASES] == [
        "drain", "static-pods", "wait-control-plane", "uncordon"]  # fmt: skip
    nested = {name: [p.name for p in tables._nested(stage)] for name in ("upgrade", "downgrade")
              for stage in tables.ORCHESTRATIONS[name] if stage.name == "control-plane"}  # fmt: skip
    assert nested == {"upgrade": ["drain", "static-pods", "wait-control-plane", "uncordon"],
                      "downgrade": ["release", "drain", "static-pods", "wait-control-plane",
                                    "uncordon"]}  # fmt: skip
    assert [p.name for p in tables.UPGRADE_WORKER_PHASES] == [
        "release", "drain", "kubelet", "uncordon"]  # fmt: skip
    etcd = {name: [p.name for p in tables._nested(stage)] for name in ("upgrade", "downgrade")
            for stage in tables.ORCHESTRATIONS[name] if stage.name == "etcd"}  # fmt: skip
    # a downgrade reaches the members last: the earlier stages recorded their release
    assert etcd == {"upgrade": ["release", "etcd-pod", "etcd-health"],
                    "downgrade": ["etcd-pod", "etcd-health"]}  # fmt: skip


@pytest.mark.parametrize("direction", ["upgrade", "downgrade"])
def test_the_kubernetes_stages_go_in_the_order_the_plan_prints(direction):
    facts = plan.Facts(direction, "bootstrap", None, None, None, None, (), plan.EtcdState(),
                       "", plan.BackupState(False, None, ""), None)  # fmt: skip
    printed = [s.name for s in plan.stages(facts) if not s.name.startswith("salt-")]
    table = [p.name for p in tables.ORCHESTRATIONS[direction]]
    assert [name for name in table if name in printed] == printed


def test_every_declared_node_the_ca_minion_last_whatever_order_is_given():
    opts = options.from_pillar("upgrade", {**PILLAR, "nodes": ["bootstrap", "worker1", "cp3",
                                                               "cp2"]}, "s", ALL)  # fmt: skip
    assert opts.nodes == ("cp2", "cp3", "worker1", "bootstrap")
    assert options.from_pillar("downgrade", PILLAR, "s", ALL).nodes == opts.nodes
    assert opts.kubernetes_version == NEW


@pytest.mark.parametrize(
    ("nodes", "said"),
    [(["cp2", "cp3", "bootstrap"], "not given: worker1"),
     (["cp2", "cp3", "bootstrap", "worker1", "cp9"], "not declared: cp9")],
)  # fmt: skip
def test_an_upgrade_of_part_of_the_cluster_is_refused(nodes, said):
    with pytest.raises(OrchestrateError, match=f"pillar nodes: an upgrade moves every declared "
                       rf"node, and only those \({said}\); leave pillar nodes out"):  # fmt: skip
        options.from_pillar("upgrade", {**PILLAR, "nodes": nodes}, "s", ALL)


@pytest.mark.parametrize("value", [None, "", "1.34", "v1.34", 134, "latest"])
def test_the_target_release_is_required_and_checked(value):
    with pytest.raises(OrchestrateError, match=r"pillar kubernetes_version = .*: give the "
                       "Kubernetes release of the target archive, for example v1.34.1"):  # fmt: skip
        options.from_pillar("upgrade", {**PILLAR, "kubernetes_version": value}, "s", ALL)


def test_the_target_release_belongs_to_the_upgrades_only():
    with pytest.raises(OrchestrateError, match="pillar kubernetes_version: renew_certificates "
                       "moves no node to another release"):  # fmt: skip
        options.from_pillar("renew_certificates", PILLAR, "s", ALL)
    assert options.from_pillar("upgrade", PILLAR, "s", ALL).renewal is None


def test_every_nested_phase_is_skippable_by_name():
    assert options.check_skip("upgrade", "drain,uncordon,wait-control-plane,addons") == [
        "drain", "uncordon", "wait-control-plane", "addons"]  # fmt: skip
    with pytest.raises(OrchestrateError, match="invalid phase name.s. certs for upgrade; "
                       "valid phases: preflight, salt, etcd, release, etcd-pod, "):  # fmt: skip
        options.check_skip("upgrade", ["certs"])
