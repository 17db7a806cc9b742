"""kubesalt.cluster.apply through the real kubernetes client, against FakeAPI (an HTTP
server on 127.0.0.1 that answers as the Kubernetes API documents): outcomes from the API's
answers, Nodes never created, dry runs that store nothing, errors that name the object."""

from __future__ import annotations

import copy
import socket

import pytest
from kubernetes.client.exceptions import ApiException

from kubesalt.cluster import apply
from kubesalt.cluster.model import FIELD_MANAGER
from tests.unit.cluster.fakeapi import APPLY, FakeAPI

CM_PATH = "/api/v1/namespaces/kube-system/configmaps/kubeadm-config"
NODE_PATH = "/api/v1/nodes/cp1"


def configmap(name="kubeadm-config", data=None, namespace="kube-system"):
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data if data is not None else {"ClusterConfiguration": "clusterName: kubernetes\n"},
    }


def objects():
    """A small cluster's objects in dependency order, one of every scope and group."""
    return [
        configmap(),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "kubeadm:cluster-admins"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Group",
                    "name": "kubeadm:cluster-admins",
                }
            ],
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "coredns",
                "namespace": "kube-system",
                "labels": {"k8s-app": "kube-dns"},
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "kube-dns"}},
                    "spec": {
                        "containers": [
                            {"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.12.0"}
                        ]
                    },
                },
            },
        },
    ]


def node_patch(name="cp1"):
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {
            "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
        },
    }


def registered_node(name="cp1"):
    """A Node as its kubelet registers it."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"podCIDR": "10.244.0.0/24"},
    }


@pytest.fixture
def api():
    with FakeAPI(
        tokens={"admin-token": "kubernetes-admin", "nobody-token": "nobody"},
        forbidden={"nobody"},
    ) as fake:
        yield fake


@pytest.fixture
def client(api, tmp_path):
    with apply.client_from_kubeconfig(api.kubeconfig(tmp_path / "admin.conf")) as api_client:
        yield api_client


def outcomes(results):
    return [(str(r.ref), r.outcome) for r in results]


def error_of(client, objs, dry_run=False) -> apply.ApplyError:
    with pytest.raises(apply.ApplyError) as info:
        apply.apply_objects(client, objs, dry_run=dry_run)
    return info.value


# -- outcomes -----------------------------------------------------------------------------
def test_first_apply_creates_in_order_with_one_field_manager_and_force(api, client):
    results = apply.apply_objects(client, objects())
    assert outcomes(results) == [
        ("ConfigMap kube-system/kubeadm-config", "created"),
        ("ClusterRoleBinding kubeadm:cluster-admins", "created"),
        ("ServiceAccount kube-system/coredns", "created"),
        ("Deployment kube-system/coredns", "created"),
    ]
    assert all(r.changed and not r.dry_run for r in results)
    patches = api.applies()
    assert [p.path for p in patches] == [r.ref.path for r in results]
    for request in patches:
        assert request.content_type == APPLY
        assert request.query == {"fieldManager": [FIELD_MANAGER], "force": ["true"]}
    stored = api.stored(CM_PATH)
    assert stored["data"] == configmap()["data"]
    assert [(e["manager"], e["operation"]) for e in stored["metadata"]["managedFields"]] == [
        (FIELD_MANAGER, "Apply")
    ]


def test_second_apply_of_the_same_objects_is_unchanged_everywhere(api, client):
    apply.apply_objects(client, objects())
    versions = [api.stored(p.path)["metadata"]["resourceVersion"] for p in api.applies()]
    results = apply.apply_objects(client, objects())
    assert {r.outcome for r in results} == {"unchanged"}
    assert not any(r.changed for r in results)
    assert [api.stored(r.ref.path)["metadata"]["resourceVersion"] for r in results] == versions
    assert apply.summary(results) == "4 object(s): 4 unchanged"


def test_changing_one_field_configures_that_object_only(api, client):
    apply.apply_objects(client, objects())
    changed = objects()
    changed[3]["spec"]["replicas"] = 3
    results = apply.apply_objects(client, changed)
    assert [r.outcome for r in results] == ["unchanged", "unchanged", "unchanged", "configured"]
    assert api.stored(results[3].ref.path)["spec"]["replicas"] == 3
    assert apply.summary(results) == "4 object(s): 1 configured, 3 unchanged"


def test_a_field_no_longer_rendered_is_removed_by_the_server(api, client):
    apply.apply_objects(client, [configmap(data={"a": "1", "b": "2"})])
    results = apply.apply_objects(client, [configmap(data={"a": "1"})])
    assert outcomes(results) == [("ConfigMap kube-system/kubeadm-config", "configured")]
    assert api.stored(CM_PATH)["data"] == {"a": "1"}


def test_kubesalt_takes_over_a_field_another_writer_set(api, client):
    api.put(configmap(data={"ClusterConfiguration": "edited by hand\n"}), manager="kubectl-edit")
    results = apply.apply_objects(client, [configmap()])
    assert outcomes(results) == [("ConfigMap kube-system/kubeadm-config", "configured")]
    assert api.stored(CM_PATH)["data"] == configmap()["data"]
    managers = [e["manager"] for e in api.stored(CM_PATH)["metadata"]["managedFields"]]
    assert managers == [FIELD_MANAGER]  # the other writer no longer owns the field


# -- dry run ------------------------------------------------------------------------------
def test_dry_run_on_an_empty_cluster_reports_would_create_and_stores_nothing(api, client):
    results = apply.apply_objects(client, objects(), dry_run=True)
    assert {r.outcome for r in results} == {"created"}
    assert all(r.dry_run for r in results)
    assert results[0].describe() == "ConfigMap kube-system/kubeadm-config would be created"
    assert apply.summary(results) == "4 object(s): 4 would be created"
    assert all(api.stored(r.ref.path) is None for r in results)
    assert {p.query["dryRun"][0] for p in api.applies()} == {"All"}


def test_dry_run_reports_would_change_for_the_changed_object_only(api, client):
    apply.apply_objects(client, objects())
    stored = [api.stored(r.ref.path) for r in apply.apply_objects(client, objects())]
    changed = objects()
    changed[0]["data"] = {"ClusterConfiguration": "clusterName: other\n"}
    results = apply.apply_objects(client, changed, dry_run=True)
    assert [r.outcome for r in results] == ["configured", "unchanged", "unchanged", "unchanged"]
    assert results[0].describe() == "ConfigMap kube-system/kubeadm-config would be configured"
    assert [api.stored(r.ref.path) for r in results] == stored


def test_comparable_leaves_out_what_every_write_sets():
    live = {
        "metadata": {
            "name": "x",
            "resourceVersion": "7",
            "managedFields": [{"manager": "kubesalt", "time": "2025-01-01T00:00:00Z"}],
        },
        "data": {"a": "1"},
    }
    answer = copy.deepcopy(live)
    answer["metadata"]["resourceVersion"] = "8"
    answer["metadata"]["managedFields"][0]["time"] = "2025-06-01T00:00:00Z"
    assert apply.comparable(answer) == apply.comparable(live)
    answer["data"]["a"] = "2"
    assert apply.comparable(answer) != apply.comparable(live)
    assert live["metadata"]["resourceVersion"] == "7"  # the objects themselves are kept


# -- Nodes --------------------------------------------------------------------------------
def test_an_absent_node_is_pending_and_never_created(api, client):
    results = apply.apply_objects(client, [configmap(), node_patch()])
    assert outcomes(results) == [
        ("ConfigMap kube-system/kubeadm-config", "created"),
        ("Node cp1", "pending"),
    ]
    assert not results[1].changed
    assert api.stored(NODE_PATH) is None
    assert [p.path for p in api.applies()] == [CM_PATH]
    assert "Node cp1 pending: its kubelet has not registered" in apply.summary(results)
    dry = apply.apply_objects(client, [node_patch()], dry_run=True)
    assert outcomes(dry) == [("Node cp1", "pending")]


def test_a_registered_node_gets_its_labels_and_taint_once(api, client):
    api.put(registered_node(), manager="kubelet")
    assert outcomes(apply.apply_objects(client, [node_patch()])) == [("Node cp1", "configured")]
    node = api.stored(NODE_PATH)
    assert node["metadata"]["labels"] == {
        "kubernetes.io/hostname": "cp1",
        "node-role.kubernetes.io/control-plane": "",
    }
    assert node["spec"]["taints"] == node_patch()["spec"]["taints"]
    assert node["spec"]["podCIDR"] == "10.244.0.0/24"  # the kubelet's fields are kept
    assert outcomes(apply.apply_objects(client, [node_patch()])) == [("Node cp1", "unchanged")]


NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def test_the_taints_of_other_writers_are_kept_and_a_present_taint_is_not_sent_again(api, client):
    node = registered_node()
    node["spec"]["taints"] = [NOT_READY]
    api.put(node, manager="node-controller")
    assert outcomes(apply.apply_objects(client, [node_patch()])) == [("Node cp1", "configured")]
    assert api.stored(NODE_PATH)["spec"]["taints"] == [NOT_READY, CP_TAINT]
    sent = [p for p in api.applies() if p.path == NODE_PATH]
    assert [("taints" in (p.body.get("spec") or {})) for p in sent] == [False, True]
    # an operator adds a taint; kubesalt's next runs keep it and send no taint again
    taints = [*api.stored(NODE_PATH)["spec"]["taints"], {"key": "site/maintenance",
                                                        "effect": "NoExecute"}]  # fmt: skip
    operator = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cp1"},
                "spec": {"taints": taints}}  # fmt: skip
    ref = apply.Ref(apply.KINDS["Node"], None, "cp1")
    apply._server_apply(client, ref, operator, False, manager="operator")
    for _ in range(2):
        assert outcomes(apply.apply_objects(client, [node_patch()])) == [("Node cp1", "unchanged")]
    assert [t["key"] for t in api.stored(NODE_PATH)["spec"]["taints"]] == [
        "node.kubernetes.io/not-ready", "node-role.kubernetes.io/control-plane",
        "site/maintenance"]  # fmt: skip
    assert len([p for p in api.applies() if p.path == NODE_PATH]) == 5  # then labels only


def test_a_dry_run_of_a_missing_taint_says_configured_and_stores_nothing(api, client):
    api.put(registered_node(), manager="kubelet")
    dry = apply.apply_objects(client, [node_patch()], dry_run=True)
    assert outcomes(dry) == [("Node cp1", "configured")]
    assert "taints" not in api.stored(NODE_PATH)["spec"]


def test_split_node_patch_adds_only_the_missing_taints_to_the_live_list():
    live = {"spec": {"taints": [dict(CP_TAINT, value="x")]}}
    labels, taints = apply.split_node_patch(node_patch(), live)
    assert "spec" not in labels and labels["metadata"]["labels"]
    assert taints is None  # same key and effect: the taint is there, whatever its value
    other_effect = {"key": CP_TAINT["key"], "effect": "NoExecute"}
    labels, taints = apply.split_node_patch(node_patch(), {"spec": {"taints": [other_effect]}})
    assert taints["spec"]["taints"] == [other_effect, CP_TAINT]
    labels, taints = apply.split_node_patch(node_patch(), {"spec": {}})
    assert taints == {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cp1"},
                      "spec": {"taints": [CP_TAINT]}}  # fmt: skip


# -- errors -------------------------------------------------------------------------------
def test_forbidden_names_the_object_and_the_cluster_admins_binding(api, tmp_path):
    with apply.client_from_kubeconfig(api.kubeconfig(tmp_path / "k", token="nobody-token")) as c:
        err = error_of(c, objects())
    text = str(err)
    assert err.status == 403 and err.reason == "Forbidden"
    assert text.startswith("read ConfigMap kube-system/kubeadm-config failed: HTTP 403 Forbidden: ")
    assert 'User "nobody" cannot get resource "configmaps"' in text
    assert "ClusterRoleBinding kubeadm:cluster-admins" in text and "super-admin.conf" in text
    assert "(0 object(s) before it applied; the 3 after it not sent)" in text


def test_unauthorized_says_to_renew_the_certificate(api, tmp_path):
    with apply.client_from_kubeconfig(api.kubeconfig(tmp_path / "k", token="wrong")) as c:
        err = error_of(c, [configmap()])
    assert err.status == 401
    assert "HTTP 401 Unauthorized" in str(err) and "renew admin.conf" in str(err)


def test_missing_namespace_is_a_404_naming_the_object(api, client):
    objs = [configmap(), configmap("x", namespace="kube-flannel")]
    err = error_of(client, objs)
    assert err.status == 404
    assert str(err).startswith(
        'apply ConfigMap kube-flannel/x failed: HTTP 404 NotFound: namespaces "kube-flannel" not found. '
        "Hint: the namespace kube-flannel does not exist"
    )
    assert "(1 object(s) before it applied; the 0 after it not sent)" in str(err)
    assert api.stored(CM_PATH) is not None


def test_a_resource_type_the_server_does_not_serve_is_an_error_not_an_absence(client):
    widgets = apply.Ref(apply.Kind("Widget", "example.com/v1", "widgets", True), "default", "w")
    with pytest.raises(apply.ApplyError) as info:
        apply.read_object(client, widgets)
    assert str(info.value).startswith(
        "read Widget default/w failed: HTTP 404 NotFound: the server could not find the "
        "requested resource. Hint: the API server does not serve example.com/v1 widgets"
    )


def test_a_stale_resource_version_is_a_409_conflict(api, client):
    apply.apply_objects(client, [configmap()])
    stale = configmap(data={"ClusterConfiguration": "new\n"})
    stale["metadata"]["resourceVersion"] = "1"
    err = error_of(client, [stale])
    assert err.status == 409 and err.reason == "Conflict"
    assert str(err).startswith(
        "apply ConfigMap kube-system/kubeadm-config failed: HTTP 409 Conflict: "
    )
    assert "the object has been modified" in str(err) and "apply again" in str(err)


def test_an_invalid_object_is_a_422_naming_it_and_stops_the_apply(api, client):
    objs = [configmap("Bad_Name"), configmap("after")]
    err = error_of(client, objs)
    assert err.status == 422 and err.reason == "Invalid"
    assert str(err).startswith(
        'apply ConfigMap kube-system/Bad_Name failed: HTTP 422 Invalid: ConfigMap "Bad_Name" is '
        'invalid: metadata.name: Invalid value: "Bad_Name"'
    )
    assert "rendering bug" in str(err)
    assert "(0 object(s) before it applied; the 1 after it not sent)" in str(err)
    assert api.stored("/api/v1/namespaces/kube-system/configmaps/after") is None


def test_rbac_names_with_a_colon_are_valid(api, client):
    results = apply.apply_objects(client, objects()[1:2])
    assert outcomes(results) == [("ClusterRoleBinding kubeadm:cluster-admins", "created")]


def test_nothing_listening_names_the_object_and_the_vip(api, tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = api.kubeconfig(tmp_path / "k", server=f"http://127.0.0.1:{port}")
    with apply.client_from_kubeconfig(path) as c:
        err = error_of(c, [configmap()])
    text = str(err)
    assert err.status is None
    assert text.startswith(
        f"read ConfigMap kube-system/kubeadm-config failed: no answer from http://127.0.0.1:{port}"
    )
    assert "keepalived holds the API VIP 127.0.0.1" in text


# -- checks before anything is sent -------------------------------------------------------
@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda o: o[0].update(kind="Widget"),
            "object #1 (Widget kube-system/kubeadm-config): kind 'Widget' is not one kubesalt applies",
        ),
        (
            lambda o: o[3].update(apiVersion="extensions/v1beta1"),
            "object #4 (Deployment kube-system/coredns): apiVersion 'extensions/v1beta1', but "
            "kubesalt applies Deployment as apps/v1",
        ),
        (
            lambda o: o[2]["metadata"].pop("namespace"),
            "object #3 (ServiceAccount coredns): a ServiceAccount needs metadata.namespace (got None)",
        ),
        (
            lambda o: o[1]["metadata"].update(namespace="default"),
            "object #2 (ClusterRoleBinding default/kubeadm:cluster-admins): a ClusterRoleBinding has "
            "no namespace (got 'default')",
        ),
        (
            lambda o: o[0]["metadata"].update(name="a/b"),
            "object #1 (ConfigMap kube-system/a/b): metadata.name 'a/b' is not a name",
        ),
        (
            lambda o: o.append(copy.deepcopy(o[0])),
            "object #5: ConfigMap kube-system/kubeadm-config is listed twice (also object #1)",
        ),
        (lambda o: o.append(["not", "a", "mapping"]), "object #5: not a mapping but list"),
        (
            lambda o: o[0].pop("metadata"),
            "object #1 (ConfigMap, no name): metadata is missing or not a mapping",
        ),
    ],
)
def test_a_bad_object_is_named_and_nothing_is_sent(api, client, edit, expected):
    objs = objects()
    edit(objs)
    err = error_of(client, objs)
    assert str(err).startswith("1 problem(s) in the objects to apply, nothing was sent: ")
    assert expected in str(err)
    assert api.requests == []


def test_every_problem_is_listed_at_once(api, client):
    objs = objects()
    objs[0]["kind"] = "Widget"
    objs[2]["metadata"].pop("namespace")
    assert str(error_of(client, objs)).startswith("2 problem(s) in the objects to apply")


def test_objects_must_be_a_list(client):
    with pytest.raises(apply.ApplyError, match="objects: give a list of API objects"):
        apply.apply_objects(client, configmap())


# -- the kubeconfig -----------------------------------------------------------------------
def test_a_missing_kubeconfig_is_named(tmp_path):
    missing = tmp_path / "etc/kubernetes/admin.conf"
    with pytest.raises(apply.ApplyError, match=f"kubeconfig {missing}: no such file"):
        apply.client_from_kubeconfig(str(missing))


def test_an_unusable_kubeconfig_is_named(tmp_path):
    bad = tmp_path / "admin.conf"
    bad.write_text("apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n")
    with pytest.raises(apply.ApplyError, match=f"kubeconfig {bad} cannot be used: "):
        apply.client_from_kubeconfig(str(bad))


def test_the_kubeconfig_is_never_written(api, tmp_path):
    path = api.kubeconfig(tmp_path / "admin.conf")
    text = (tmp_path / "admin.conf").read_text()
    with apply.client_from_kubeconfig(path) as c:
        apply.apply_objects(c, [configmap()])
    assert (tmp_path / "admin.conf").read_text() == text


def test_outcomes_are_json_able():
    ref = apply.Ref(apply.KINDS["Node"], None, "cp2")
    assert apply.Applied(ref, apply.PENDING).as_dict() == {
        "object": "Node cp2",
        "kind": "Node",
        "namespace": None,
        "name": "cp2",
        "outcome": "pending",
        "dry_run": False,
        "comment": "Node cp2 pending: its kubelet has not registered (its Node object appears "
        "when the kubelet on cp2 starts; apply again then)",
    }


def test_a_server_too_slow_to_answer_is_named(api, client, monkeypatch):
    monkeypatch.setattr(apply, "REQUEST_TIMEOUT", (1, 0.2))
    api.delay = 0.5
    text = str(error_of(client, [configmap()]))
    assert text.startswith(
        f"read ConfigMap kube-system/kubeadm-config failed: no answer from {api.url}"
    )
    assert f"the API server at {api.url} did not answer within 0.2s" in text


def test_a_tls_failure_says_which_ca_to_trust():
    ref = apply.Ref(apply.KINDS["ConfigMap"], "kube-system", "x")
    failure = ApiException(status=0, reason="SSLError\n[SSL: CERTIFICATE_VERIFY_FAILED] unable")
    text = str(apply._transport_error(ref, "read", "https://10.0.0.100:6443", failure))
    assert text.startswith(
        "read ConfigMap kube-system/x failed: no answer from https://10.0.0.100:6443"
    )
    assert "certificate-authority-data must be the cluster CA" in text


def test_a_dry_run_refusal_says_it_was_a_dry_run(client):
    err = error_of(client, [configmap("Bad_Name")], dry_run=True)
    assert str(err).startswith(
        "dry-run apply ConfigMap kube-system/Bad_Name failed: HTTP 422 Invalid"
    )
