"""The kubesalt_cluster execution module against FakeAPI through the real kubernetes client:
JSON-able returns, admin.conf under kubesalt_root by default, Salt's error for every refusal."""

import json

import pytest
from salt.exceptions import CommandExecutionError

from tests.unit.cluster.fakeapi import FakeAPI
from tests.unit.loader import load

kubesalt_cluster = load("_modules", "kubesalt_cluster")

DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/kube-system/deployments/coredns"


def objects():
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": "clusterName: kubernetes\n"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "kube-dns"}},
                    "spec": {"containers": [{"name": "coredns", "image": "coredns:v1.12.0"}]},
                },
            },
        },
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cp2", "labels": {"a": ""}}},
    ]


@pytest.fixture
def api():
    with FakeAPI(
        tokens={"admin-token": "kubernetes-admin", "no": "nobody"}, forbidden={"nobody"}
    ) as fake:
        yield fake


@pytest.fixture
def root(tmp_path, api):
    conf = tmp_path / "root" / "etc" / "kubernetes" / "admin.conf"
    conf.parent.mkdir(parents=True)
    api.kubeconfig(conf)
    return tmp_path / "root"


@pytest.fixture
def configure_loader_modules(root):
    return {kubesalt_cluster: {"__grains__": {"kubesalt_root": str(root)}}}


def _error(function, *args, **kwargs) -> str:
    with pytest.raises(CommandExecutionError) as error:
        function(*args, **kwargs)
    return str(error.value)


def test_virtual_needs_the_kubernetes_client(monkeypatch):
    assert kubesalt_cluster.__virtual__() == "kubesalt_cluster"
    monkeypatch.setattr(kubesalt_cluster, "HAS_CLIENT", False)
    reason = kubesalt_cluster.__virtual__()
    assert reason[0] is False and "kubernetes Python client" in reason[1]


def test_apply_with_admin_conf_then_nothing_changes(api):
    first = kubesalt_cluster.apply(objects())
    assert json.loads(json.dumps(first)) == first
    assert first["changed"] is True and first["test"] is False
    assert [(o["object"], o["outcome"]) for o in first["objects"]] == [
        ("ConfigMap kube-system/kubeadm-config", "created"),
        ("Deployment kube-system/coredns", "created"),
        ("Node cp2", "pending"),
    ]
    assert first["pending"] == ["Node cp2"]
    assert first["comment"].startswith("3 object(s): 2 created, 1 pending; Node cp2 pending: ")
    second = kubesalt_cluster.apply(objects())
    assert second["changed"] is False
    assert [o["outcome"] for o in second["objects"]] == ["unchanged", "unchanged", "pending"]
    assert {r.user for r in api.requests} == {"kubernetes-admin"}


def test_apply_test_true_is_a_dry_run(api):
    result = kubesalt_cluster.apply(objects(), test=True)
    assert result["changed"] is True and result["test"] is True
    assert result["comment"].startswith("3 object(s): 2 would be created, 1 pending")
    assert api.stored(DEPLOYMENT_PATH) is None


def test_an_explicit_kubeconfig_is_used(api, tmp_path):
    forbidden = api.kubeconfig(tmp_path / "super-admin.conf", token="no")
    message = _error(kubesalt_cluster.apply, objects(), kubeconfig=forbidden)
    assert message.startswith(
        "ApplyError: read ConfigMap kube-system/kubeadm-config failed: HTTP 403 Forbidden: "
    )


def test_a_bad_object_is_refused_before_the_kubeconfig_is_read(api, tmp_path):
    bad = objects()
    bad[1]["kind"] = "StatefulSet"
    message = _error(kubesalt_cluster.apply, bad, kubeconfig=str(tmp_path / "nowhere.conf"))
    assert "object #2 (StatefulSet kube-system/coredns): kind 'StatefulSet'" in message
    assert api.requests == []


def test_a_missing_kubeconfig_is_named(tmp_path):
    missing = tmp_path / "nowhere.conf"
    message = _error(kubesalt_cluster.apply, objects(), kubeconfig=str(missing))
    assert message.startswith(f"ApplyError: kubeconfig {missing}: no such file")


def test_rollout_status_asks_once_by_default(api):
    kubesalt_cluster.apply(objects())
    result = kubesalt_cluster.rollout_status(objects())
    assert result == {
        "complete": False,
        "pending": [
            "Deployment kube-system/coredns: waiting for the controller to observe the latest spec"
        ],
        "comment": "1 rollout(s) incomplete: Deployment kube-system/coredns: waiting for the "
        "controller to observe the latest spec",
    }
    api.set_status(DEPLOYMENT_PATH, {"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1})
    assert kubesalt_cluster.rollout_status(objects(), timeout=30) == {
        "complete": True,
        "pending": [],
        "comment": "every DaemonSet and Deployment has rolled out",
    }


@pytest.mark.parametrize("timeout", ["soon", -1, 3601, True])
def test_rollout_status_refuses_a_bad_timeout(api, timeout):
    message = _error(kubesalt_cluster.rollout_status, objects(), timeout=timeout)
    assert f"timeout {timeout!r}: give the seconds to wait, from 0 (ask once) to 3600" in message
    assert api.requests == []
