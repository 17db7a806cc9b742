"""kubesalt.cluster.rollout: rollouts decided from status as `kubectl rollout status`
decides, read through the real kubernetes client from FakeAPI, and the bounded wait."""

from __future__ import annotations

import pytest

from kubesalt.cluster import apply, rollout
from tests.unit.cluster.fakeapi import FakeAPI

DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/kube-system/deployments/coredns"
DAEMONSET_PATH = "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy"


def deployment(replicas=2, image="registry.k8s.io/coredns/coredns:v1.12.0"):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-dns"}},
                "spec": {"containers": [{"name": "coredns", "image": image}]},
            },
        },
    }


def daemonset():
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-proxy"}},
                "spec": {
                    "containers": [
                        {"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.33.5"}
                    ]
                },
            },
        },
    }


CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "coredns", "namespace": "kube-system"},
    "data": {"Corefile": ".:53 {}\n"},
}
DEPLOYMENT_DONE = {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
DAEMONSET_DONE = {"desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}


def with_status(obj, status, generation=1):
    out = {**obj, "status": status}
    out["metadata"] = {**obj["metadata"], "generation": generation}
    return out


# -- the decisions, from status alone -----------------------------------------------------
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {**DEPLOYMENT_DONE, "observedGeneration": 0},
            "waiting for the controller to observe the latest spec",
        ),
        (
            {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1},
            "1 out of 2 new replicas have been updated",
        ),
        (
            {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2},
            "1 old replicas are pending termination",
        ),
        (
            {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1},
            "1 of 2 updated replicas are available",
        ),
        ({**DEPLOYMENT_DONE, "observedGeneration": 1}, None),
    ],
)
def test_deployment_pending(status, expected):
    assert rollout.deployment_pending(with_status(deployment(), status)) == expected


def test_a_deployment_past_its_progress_deadline_is_an_error():
    status = {
        **DEPLOYMENT_DONE,
        "observedGeneration": 1,
        "availableReplicas": 0,
        "conditions": [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "coredns-5d78c9869d" has timed out progressing.',
            },
        ],
    }
    with pytest.raises(rollout.RolloutError) as info:
        rollout.deployment_pending(with_status(deployment(), status))
    assert str(info.value).startswith(
        'Deployment coredns exceeded its progress deadline (ReplicaSet "coredns-5d78c9869d" has '
        "timed out progressing.); see why its pods do not start: kubectl -n kube-system "
        "describe deployment coredns"
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({**DAEMONSET_DONE, "observedGeneration": 1}, None),
        ({**DAEMONSET_DONE}, "waiting for the controller to observe the latest spec"),
        (
            {**DAEMONSET_DONE, "observedGeneration": 1, "updatedNumberScheduled": 2},
            "2 out of 3 new pods have been updated",
        ),
        (
            {**DAEMONSET_DONE, "observedGeneration": 1, "numberAvailable": 1},
            "1 of 3 updated pods are available",
        ),
        # No node can run it yet: nothing is desired, nothing to wait for (as kubectl).
        ({"observedGeneration": 1, "desiredNumberScheduled": 0}, None),
    ],
)
def test_daemonset_pending(status, expected):
    assert rollout.daemonset_pending(with_status(daemonset(), status)) == expected


def test_an_on_delete_daemonset_has_no_rollout_to_wait_for():
    obj = with_status(daemonset(), {"observedGeneration": 0, "desiredNumberScheduled": 3})
    obj["spec"] = {**obj["spec"], "updateStrategy": {"type": "OnDelete"}}
    assert rollout.daemonset_pending(obj) is None


# -- through the API ----------------------------------------------------------------------
@pytest.fixture
def api():
    with FakeAPI() as fake:
        yield fake


@pytest.fixture
def client(api, tmp_path):
    with apply.client_from_kubeconfig(api.kubeconfig(tmp_path / "admin.conf")) as api_client:
        yield api_client


def test_rollouts_pending_then_complete(api, client):
    objects = [CONFIGMAP, deployment(), daemonset()]
    apply.apply_objects(client, objects)
    assert rollout.rollout_pending(client, objects) == [
        "Deployment kube-system/coredns: waiting for the controller to observe the latest spec",
        "DaemonSet kube-system/kube-proxy: waiting for the controller to observe the latest spec",
    ]
    api.set_status(DEPLOYMENT_PATH, {**DEPLOYMENT_DONE, "availableReplicas": 1})
    api.set_status(DAEMONSET_PATH, DAEMONSET_DONE)
    assert rollout.rollout_pending(client, objects) == [
        "Deployment kube-system/coredns: 1 of 2 updated replicas are available"
    ]
    api.set_status(DEPLOYMENT_PATH, DEPLOYMENT_DONE)
    assert rollout.rollout_pending(client, objects) == []


def test_a_changed_spec_waits_for_the_controller_again(api, client):
    apply.apply_objects(client, [deployment()])
    api.set_status(DEPLOYMENT_PATH, DEPLOYMENT_DONE)
    assert rollout.rollout_pending(client, [deployment()]) == []
    changed = deployment(image="registry.k8s.io/coredns/coredns:v1.12.1")
    assert [r.outcome for r in apply.apply_objects(client, [changed])] == ["configured"]
    assert rollout.rollout_pending(client, [changed]) == [
        "Deployment kube-system/coredns: waiting for the controller to observe the latest spec"
    ]


def test_an_object_not_applied_yet_is_pending(client):
    assert rollout.rollout_pending(client, [daemonset()]) == [
        "DaemonSet kube-system/kube-proxy: does not exist (apply it first)"
    ]


def test_other_kinds_are_not_read(api, client):
    assert rollout.rollout_pending(client, [CONFIGMAP]) == []
    assert api.requests == []


class Clock:
    """A clock that moves only when the wait sleeps; `on_sleep` runs at each sleep."""

    def __init__(self, on_sleep=None):
        self.now = 0.0
        self.sleeps = []
        self.on_sleep = on_sleep

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


def test_the_wait_ends_when_the_rollout_completes(api, client):
    apply.apply_objects(client, [daemonset()])

    def controller(sleeps):
        if sleeps == 3:
            api.set_status(DAEMONSET_PATH, DAEMONSET_DONE)

    clock = Clock(controller)
    assert rollout.wait_for_rollout(client, [daemonset()], 60, 2, clock, clock.sleep) == []
    assert clock.sleeps == [2, 2, 2]


def test_the_wait_is_bounded_and_returns_what_is_still_pending(api, client):
    apply.apply_objects(client, [daemonset()])
    applied = len(api.requests)
    clock = Clock()
    left = rollout.wait_for_rollout(client, [daemonset()], 5, 2, clock, clock.sleep)
    assert left == [
        "DaemonSet kube-system/kube-proxy: waiting for the controller to observe the latest spec"
    ]
    assert clock.sleeps == [2, 2, 1]  # never past the bound
    assert [r.method for r in api.requests[applied:]] == ["GET"] * 4  # at 0, 2, 4 and 5 s


def test_a_zero_timeout_asks_once(api, client):
    apply.apply_objects(client, [daemonset()])
    clock = Clock()
    assert rollout.wait_for_rollout(client, [daemonset()], 0, 2, clock, clock.sleep) != []
    assert clock.sleeps == []
