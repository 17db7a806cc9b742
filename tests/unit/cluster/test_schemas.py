"""Every object kubesalt.cluster renders for kubeadm's phases, kube-proxy and CoreDNS is valid
for Kubernetes 1.33 (strict OpenAPI schemas: no unknown field), and the check itself refuses
what it should."""

import pytest

from kubesalt.cluster import coredns, kubeadm_objects, kubeproxy
from tests.unit.cluster.configs import DNS_HOST, NODES, cluster_config
from tests.unit.cluster.schemas import describe, validate

VARIANTS = {
    "ipv4": cluster_config("ipv4"),
    "ipv6": cluster_config("ipv6"),
    "dns-name-host": cluster_config("ipv4", host=DNS_HOST, port=7443),
    "ipv6-dns-name-host": cluster_config("ipv6", host=DNS_HOST),
}


def rendered(cfg: dict) -> list[dict]:
    """Every object of the three renderers and every Node patch, for NODES."""
    return [
        *kubeadm_objects.objects(cfg, NODES),
        *kubeadm_objects.node_patches(cfg, NODES),
        *kubeproxy.objects(cfg, NODES),
        *coredns.objects(cfg, NODES),
    ]


CASES = [
    pytest.param(obj, id=f"{variant}-{describe(obj)}")
    for variant, cfg in VARIANTS.items()
    for obj in rendered(cfg)
]


@pytest.mark.parametrize("obj", CASES)
def test_every_rendered_object_is_valid_for_kubernetes_1_33(obj):
    validate(obj)


def test_the_objects_cover_every_kind_rendered():
    kinds = {obj["kind"] for obj in rendered(VARIANTS["ipv4"])}
    assert kinds == {
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
        "Deployment",
        "Node",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    }


def test_a_valid_object_passes():
    validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}})


def test_an_unknown_field_is_refused_with_the_object_and_path():
    broken = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "nmae": "y"}}
    with pytest.raises(AssertionError, match=r"ConfigMap x: metadata: .*'nmae' was unexpected"):
        validate(broken)


def test_a_wrong_type_is_refused():
    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {"replicas": "two", "selector": {}, "template": {}},
    }
    with pytest.raises(AssertionError, match=r"Deployment y/x: spec\.replicas: 'two'"):
        validate(broken)


def test_a_missing_required_field_is_refused():
    taint = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n"},
        "spec": {"taints": [{"key": "k"}]},
    }
    with pytest.raises(AssertionError, match=r"spec\.taints\.0: 'effect' is a required property"):
        validate(taint)


def test_an_api_the_version_does_not_serve_is_refused():
    with pytest.raises(AssertionError, match="no schema for apiVersion 'extensions/v1beta1'"):
        validate(
            {"apiVersion": "extensions/v1beta1", "kind": "Deployment", "metadata": {"name": "x"}}
        )
