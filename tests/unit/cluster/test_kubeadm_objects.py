"""kubeadm 1.33's API-side objects (kubesalt.cluster.kubeadm_objects), checked field by field
against kubeadm's sources (phases/uploadconfig, phases/kubelet, phases/bootstraptoken/node,
phases/markcontrolplane, EnsureAdminClusterRoleBinding) and kubeadm 1.33's documented defaults."""

import hashlib

import pytest
import yaml

from kubesalt import kubectl, roles
from kubesalt.cluster import kubeadm_objects
from kubesalt.kubeadm import RenderError, kubelet
from kubesalt.kubeadm.model import Node
from tests.unit.cluster.configs import DNS_HOST, NODES, cluster_config

RBAC = "rbac.authorization.k8s.io"
NODES_GROUP = {"apiGroup": RBAC, "kind": "Group", "name": "system:nodes"}
TOKEN_GROUP = {
    "apiGroup": RBAC,
    "kind": "Group",
    "name": "system:bootstrappers:kubeadm:default-node-token",
}
CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def by_name(objects):
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}


def cluster_configuration(cfg):
    objects = by_name(kubeadm_objects.objects(cfg, NODES))
    return yaml.safe_load(objects["ConfigMap", "kubeadm-config"]["data"]["ClusterConfiguration"])


def test_objects_in_apply_order():
    objects = kubeadm_objects.objects(cluster_config(), NODES)
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in objects] == [
        ("ClusterRoleBinding", "kubeadm:cluster-admins"),
        ("ConfigMap", "kubeadm-config"),
        ("Role", "kubeadm:nodes-kubeadm-config"),
        ("RoleBinding", "kubeadm:nodes-kubeadm-config"),
        ("ConfigMap", "kubelet-config"),
        ("Role", "kubeadm:kubelet-config"),
        ("RoleBinding", "kubeadm:kubelet-config"),
        ("ClusterRoleBinding", "kubeadm:node-autoapprove-certificate-rotation"),
    ]


def test_cluster_admins_binding_as_kubeadm_creates_it():
    binding = kubeadm_objects.objects(cluster_config(), NODES)[0]
    assert binding == {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "kubeadm:cluster-admins"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "kubeadm:cluster-admins"}],
    }


def test_only_the_cluster_admins_binding_needs_super_admin():
    cfg = cluster_config()
    objects = kubeadm_objects.objects(cfg, NODES) + kubeadm_objects.node_patches(cfg, NODES)
    assert [
        obj["metadata"]["name"] for obj in objects if kubeadm_objects.needs_super_admin(obj)
    ] == ["kubeadm:cluster-admins"]


def test_cluster_configuration_of_the_reference_cluster():
    # kubeadm's v1beta4 defaults and the usual test cluster: endpoint 10.0.0.100:6443,
    # podSubnet 10.233.0.0/16, serviceSubnet 10.96.0.0/12, v1beta4 defaults elsewhere.
    assert cluster_configuration(cluster_config()) == {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "apiServer": {},
        "caCertificateValidityPeriod": "87600h0m0s",
        "certificateValidityPeriod": "8760h0m0s",
        "certificatesDir": "/etc/kubernetes/pki",
        "clusterName": "kubernetes",
        "controlPlaneEndpoint": "10.0.0.100:6443",
        "controllerManager": {},
        "dns": {},
        "encryptionAlgorithm": "RSA-2048",
        "etcd": {"local": {"dataDir": "/var/lib/etcd"}},
        "imageRepository": "registry.k8s.io",
        "kubernetesVersion": "v1.33.5",
        "networking": {
            "dnsDomain": "cluster.local",
            "podSubnet": "10.233.0.0/16",
            "serviceSubnet": "10.96.0.0/12",
        },
        "proxy": {},
        "scheduler": {},
    }


def test_cluster_configuration_is_marshalled_with_sorted_keys_like_kubeadm():
    cfg = cluster_config()
    text = by_name(kubeadm_objects.objects(cfg, NODES))["ConfigMap", "kubeadm-config"]["data"]
    keys = [line.split(":")[0] for line in text["ClusterConfiguration"].splitlines()]
    top = [key for key in keys if not key.startswith(" ")]
    assert top == sorted(top)
    assert text["ClusterConfiguration"].startswith(
        "apiServer: {}\napiVersion: kubeadm.k8s.io/v1beta4\n"
    )


def test_cluster_configuration_follows_the_configuration():
    cfg = cluster_config(
        "ipv6",
        kubernetes={"clusterName": "prod", "dnsDomain": "example.org", "version": "v1.33.5"},
        pki={
            "algorithm": "ECDSA-P256",
            "certificateValidityDays": 90,
            "caCertificateValidityDays": 1825,
        },
    )
    found = cluster_configuration(cfg)
    assert found["clusterName"] == "prod"
    assert found["controlPlaneEndpoint"] == "[fd00:1::100]:6443"
    assert found["networking"] == {
        "dnsDomain": "example.org",
        "podSubnet": "fd00:233::/56",
        "serviceSubnet": "fd00:96::/112",
    }
    assert found["encryptionAlgorithm"] == "ECDSA-P256"
    assert found["certificateValidityPeriod"] == "2160h0m0s"
    assert found["caCertificateValidityPeriod"] == "43800h0m0s"


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_a_dns_name_endpoint_is_written_as_host_port(family):
    cfg = cluster_config(family, host=DNS_HOST, port=7443)
    assert cluster_configuration(cfg)["controlPlaneEndpoint"] == f"{DNS_HOST}:7443"


def test_a_version_other_than_the_pinned_one_is_refused():
    cfg = cluster_config(kubernetes={"version": "v1.32.0"})
    with pytest.raises(
        RenderError, match="kubernetes.version is 'v1.32.0' but this kubesalt carries"
    ):
        kubeadm_objects.objects(cfg, NODES)


@pytest.mark.parametrize(
    ("name", "config_map", "subjects"),
    [
        # uploadconfig.go: bootstrap tokens, then nodes.
        ("kubeadm:nodes-kubeadm-config", "kubeadm-config", [TOKEN_GROUP, NODES_GROUP]),
        # phases/kubelet/config.go: nodes, then bootstrap tokens.
        ("kubeadm:kubelet-config", "kubelet-config", [NODES_GROUP, TOKEN_GROUP]),
    ],
)
def test_config_map_readers_as_kubeadm_writes_them(name, config_map, subjects):
    objects = by_name(kubeadm_objects.objects(cluster_config(), NODES))
    assert objects["Role", name] == {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": "kube-system"},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [config_map],
                "verbs": ["get"],
            }
        ],
    }
    assert objects["RoleBinding", name] == {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": "kube-system"},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name},
        "subjects": subjects,
    }


def test_kubelet_config_holds_what_every_node_gets():
    cfg = cluster_config()
    config_map = by_name(kubeadm_objects.objects(cfg, NODES))["ConfigMap", "kubelet-config"]
    node_file = kubelet.config_yaml(cfg, Node("worker1", "10.0.0.21", frozenset({roles.NODE})))
    assert config_map["metadata"]["namespace"] == "kube-system"
    assert config_map["data"] == {"kubelet": node_file.decode()}
    assert yaml.safe_load(config_map["data"]["kubelet"])["clusterDNS"] == ["10.96.0.10"]


def test_kubelet_config_carries_kubeadms_component_config_hash():
    cfg = cluster_config()
    config_map = by_name(kubeadm_objects.objects(cfg, NODES))["ConfigMap", "kubelet-config"]
    expected = hashlib.sha256(config_map["data"]["kubelet"].encode()).hexdigest()
    assert config_map["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/component-config.hash": f"sha256:{expected}"
    }


def test_kubeadm_config_is_not_signed():
    # Only the component configurations (kubelet, kube-proxy) carry kubeadm's hash.
    config_map = by_name(kubeadm_objects.objects(cluster_config(), NODES))[
        "ConfigMap", "kubeadm-config"
    ]
    assert "annotations" not in config_map["metadata"]


def test_certificate_rotation_is_auto_approved_for_nodes():
    objects = by_name(kubeadm_objects.objects(cluster_config(), NODES))
    assert objects["ClusterRoleBinding", "kubeadm:node-autoapprove-certificate-rotation"] == {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "kubeadm:node-autoapprove-certificate-rotation"},
        "roleRef": {
            "apiGroup": RBAC,
            "kind": "ClusterRole",
            "name": "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        },
        "subjects": [NODES_GROUP],
    }


def test_nothing_that_only_serves_bootstrap_tokens_is_rendered():
    objects = kubeadm_objects.objects(cluster_config(), NODES)
    names = {obj["metadata"]["name"] for obj in objects}
    assert not names & {
        "kubeadm:kubelet-bootstrap",
        "kubeadm:node-autoapprove-bootstrap",
        "kubeadm:get-nodes",
        "cluster-info",
        "kubeadm:bootstrap-signer-clusterinfo",
    }
    assert "Secret" not in {obj["kind"] for obj in objects}
    assert all(obj["metadata"].get("namespace", "kube-system") == "kube-system" for obj in objects)


def patches():
    found = kubeadm_objects.node_patches(cluster_config(), NODES)
    return {patch["metadata"]["name"]: patch for patch in found}


def test_control_plane_nodes_are_marked_as_kubeadm_marks_them():
    assert patches()["cp2"] == {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "cp2",
            "labels": {
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/etcd": "",
                "node.kubernetes.io/exclude-from-external-load-balancers": "",
            },
        },
        "spec": {"taints": [CP_TAINT]},
    }


def test_every_role_of_a_node_is_a_role_label():
    labels = patches()["cp1"]["metadata"]["labels"]
    assert {kubectl.role_label(role) for role in roles.ROLES} <= set(labels)
    assert all(labels[kubectl.role_label(role)] == "" for role in roles.ROLES)


def test_a_worker_gets_its_role_label_and_no_taint():
    assert patches()["worker1"] == {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "worker1", "labels": {"node-role.kubernetes.io/node": ""}},
    }


def test_a_node_without_kubelet_gets_no_patch():
    assert "ca-only" not in patches()
    assert sorted(patches()) == ["cp1", "cp2", "cp3", "worker1"]
