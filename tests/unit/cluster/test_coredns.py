"""CoreDNS (kubesalt.cluster.coredns) as kubeadm 1.33 renders it: phases/addons/dns
(manifests.go, dns.go) with kubeadm's constants (2 replicas, the 10th service address,
the control-plane taint)."""

import pytest

from kubesalt.cluster import coredns
from kubesalt.kubeadm import images
from tests.unit.cluster.configs import NODES, cluster_config

RBAC = "rbac.authorization.k8s.io"
LABELS = {"k8s-app": "kube-dns"}
# kubeadm 1.33's Corefile for the default domain, as its ConfigMap template renders it.
KUBEADM_COREFILE = """\
.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
"""


def by_kind(cfg):
    return {obj["kind"]: obj for obj in coredns.objects(cfg, NODES)}


def pod_spec(cfg=None):
    return by_kind(cfg or cluster_config())["Deployment"]["spec"]["template"]["spec"]


def container(cfg=None):
    [found] = pod_spec(cfg)["containers"]
    return found


def test_objects_in_apply_order():
    objects = coredns.objects(cluster_config(), NODES)
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in objects] == [
        ("ServiceAccount", "coredns"),
        ("ClusterRole", "system:coredns"),
        ("ClusterRoleBinding", "system:coredns"),
        ("ConfigMap", "coredns"),
        ("Deployment", "coredns"),
        ("Service", "kube-dns"),
    ]


def test_service_account_and_its_cluster_role():
    objects = by_kind(cluster_config())
    assert objects["ServiceAccount"] == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "coredns", "namespace": "kube-system"},
    }
    assert objects["ClusterRole"] == {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "system:coredns"},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["endpoints", "services", "pods", "namespaces"],
                "verbs": ["list", "watch"],
            },
            {
                "apiGroups": ["discovery.k8s.io"],
                "resources": ["endpointslices"],
                "verbs": ["list", "watch"],
            },
        ],
    }
    assert objects["ClusterRoleBinding"] == {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "system:coredns"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:coredns"},
        "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}],
    }


def test_corefile_is_kubeadms_for_the_default_domain():
    config_map = by_kind(cluster_config())["ConfigMap"]
    # kubeadm does not sign this ConfigMap: it is no component configuration.
    assert config_map["metadata"] == {"name": "coredns", "namespace": "kube-system"}
    assert config_map["data"] == {"Corefile": KUBEADM_COREFILE}


def test_corefile_serves_and_keeps_out_of_the_cache_the_clusters_domain():
    cfg = cluster_config(kubernetes={"dnsDomain": "k8s.example.org"})
    corefile = by_kind(cfg)["ConfigMap"]["data"]["Corefile"]
    assert corefile == KUBEADM_COREFILE.replace("cluster.local", "k8s.example.org")


def test_names_outside_the_cluster_go_to_the_nodes_resolvers():
    # Kept from kubeadm on purpose: air-gapped sites still run resolvers, which the node's
    # /etc/resolv.conf names (dnsPolicy Default hands it to the pod).
    assert "    forward . /etc/resolv.conf {\n" in coredns.corefile(cluster_config())
    assert pod_spec()["dnsPolicy"] == "Default"


@pytest.mark.parametrize(
    ("family", "address"),
    [("ipv4", "10.96.0.10"), ("ipv6", "fd00:96::a")],
)
def test_service_is_on_the_tenth_service_address(family, address):
    service = by_kind(cluster_config(family))["Service"]
    assert service["spec"]["clusterIP"] == address
    assert coredns.dns_ip(cluster_config(family)) == address


def test_service_as_kubeadm_writes_it():
    service = by_kind(cluster_config())["Service"]
    assert service == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
        },
        "spec": {
            "clusterIP": "10.96.0.10",
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
            ],
            "selector": LABELS,
        },
    }
    # kubeadm's resourceVersion "0" would be a precondition for server-side apply.
    assert "resourceVersion" not in service["metadata"]


def test_deployment_runs_two_replicas_one_at_a_time_down():
    deployment = by_kind(cluster_config())["Deployment"]
    assert deployment["metadata"] == {
        "name": "coredns",
        "namespace": "kube-system",
        "labels": LABELS,
    }
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1},
    }
    assert deployment["spec"]["selector"] == {"matchLabels": LABELS}
    assert deployment["spec"]["template"]["metadata"] == {"labels": LABELS}


def test_replicas_spread_over_nodes_and_run_on_control_planes():
    spec = pod_spec()
    assert spec["priorityClassName"] == "system-cluster-critical"
    assert spec["serviceAccountName"] == "coredns"
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["affinity"] == {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {
                            "matchExpressions": [
                                {"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}
                            ]
                        },
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    }
    assert spec["tolerations"] == [
        {"key": "CriticalAddonsOnly", "operator": "Exists"},
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
    ]
    assert spec["volumes"] == [
        {
            "name": "config-volume",
            "configMap": {"name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]},
        }
    ]


def test_container_ports_resources_and_security_as_kubeadm():
    found = container()
    assert found["name"] == "coredns"
    assert found["imagePullPolicy"] == "IfNotPresent"
    assert found["args"] == ["-conf", "/etc/coredns/Corefile"]
    assert found["volumeMounts"] == [
        {"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}
    ]
    assert found["ports"] == [
        {"containerPort": 53, "name": "dns", "protocol": "UDP"},
        {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
        {"containerPort": 9153, "name": "metrics", "protocol": "TCP"},
    ]
    assert found["resources"] == {
        "limits": {"memory": "170Mi"},
        "requests": {"cpu": "100m", "memory": "70Mi"},
    }
    assert found["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }


def test_probes_are_the_health_and_ready_plugins():
    # 1.33 names the ports by number (named probe ports came with 1.34).
    found = container()
    assert found["livenessProbe"] == {
        "httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
        "initialDelaySeconds": 60,
        "timeoutSeconds": 5,
        "successThreshold": 1,
        "failureThreshold": 5,
    }
    assert found["readinessProbe"] == {
        "httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}
    }
    corefile = coredns.corefile(cluster_config())
    assert "    health {\n" in corefile
    assert "    ready\n" in corefile


def test_the_image_is_the_pinned_one():
    assert container()["image"] == "registry.k8s.io/coredns/coredns:v1.12.0"
    assert container()["image"] == images.image("coredns").pinned_reference


def test_the_image_carries_its_digest_once_known(monkeypatch):
    digest = "sha256:" + "cd" * 32
    pinned = images.Image("coredns", "registry.k8s.io/coredns/coredns", "v1.12.0", None, digest)
    monkeypatch.setattr(coredns.images, "image", lambda name, version=None: pinned)
    assert container()["image"] == f"registry.k8s.io/coredns/coredns:v1.12.0@{digest}"


def test_the_same_objects_whatever_the_inventory():
    cfg = cluster_config()
    assert coredns.objects(cfg, NODES) == coredns.objects(cfg, NODES[:1])
