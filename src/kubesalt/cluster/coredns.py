"""CoreDNS as kubeadm 1.33 installs it (`phases/addons/dns/manifests.go` and `dns.go`).

Objects, in apply order: ServiceAccount `kube-system/coredns`, ClusterRole and
ClusterRoleBinding `system:coredns`, ConfigMap `kube-system/coredns` (the Corefile),
Deployment `kube-system/coredns` (2 replicas spread over nodes, tolerating the
control-plane taint) and Service `kube-system/kube-dns` on the 10th address of
networks.services (the kubelets' clusterDNS).

The Corefile is kubeadm's: names outside the cluster domain are forwarded to the resolvers
of the node's /etc/resolv.conf (`dnsPolicy: Default`). Air-gapped sites still run their own
resolvers; a node without any leaves CoreDNS answering cluster names only.

Differences from kubeadm (docs/kubeadm-differences.md):
- the Service has no `metadata.resourceVersion: "0"`: kubeadm sets it so that its update of
  an existing Service passes, while server-side apply would take it as a precondition and
  refuse every later apply;
- the image is the pinned one, `registry.k8s.io/coredns/coredns:<tag>@<digest>` once the
  digest is known.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubesalt.cluster import resources
from kubesalt.cluster.kubeadm_objects import CONTROL_PLANE_TAINT
from kubesalt.cluster.model import ClusterNode
from kubesalt.kubeadm import images
from kubesalt.network import nth_address

NAME = "coredns"
SERVICE = "kube-dns"
ROLE = "system:coredns"
LABELS = {"k8s-app": SERVICE}
REPLICAS = 2
DNS_PORT = 53
METRICS_PORT = 9153
HEALTH_PORT = 8080  # the `health` plugin, liveness
READY_PORT = 8181  # the `ready` plugin, readiness
COREFILE = """\
.:53 {{
    errors
    health {{
       lameduck 5s
    }}
    ready
    kubernetes {domain} in-addr.arpa ip6.arpa {{
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    prometheus :9153
    forward . /etc/resolv.conf {{
       max_concurrent 1000
    }}
    cache 30 {{
       disable success {domain}
       disable denial {domain}
    }}
    loop
    reload
    loadbalance
}}
"""


def objects(cfg: dict, nodes: Sequence[ClusterNode]) -> list[dict]:
    """CoreDNS's objects, in the order they must be applied."""
    del nodes  # kubeadm runs 2 replicas whatever the number of nodes
    return [
        resources.service_account(NAME),
        cluster_role(),
        resources.cluster_role_binding(ROLE, ROLE, [resources.service_account_subject(NAME)]),
        resources.config_map(NAME, {"Corefile": corefile(cfg)}),
        deployment(images.check_version(cfg)),
        service(cfg),
    ]


def corefile(cfg: dict) -> str:
    """kubeadm's Corefile for the cluster's DNS domain."""
    return COREFILE.format(domain=cfg["kubernetes"]["dnsDomain"])


def cluster_role() -> dict:
    """ClusterRole system:coredns: watch what the kubernetes plugin serves."""
    return resources.cluster_role(
        ROLE,
        [
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
    )


def dns_ip(cfg: dict) -> str:
    """The cluster DNS address: the 10th of networks.services (kubeadm's GetDNSIP)."""
    return nth_address(cfg["networks"]["services"], 10)


def service(cfg: dict) -> dict:
    """Service kube-system/kube-dns on the cluster DNS address."""
    labels = {**LABELS, "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}
    annotations = {"prometheus.io/port": str(METRICS_PORT), "prometheus.io/scrape": "true"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": resources.metadata(
            SERVICE, resources.KUBE_SYSTEM, labels=labels, annotations=annotations
        ),
        "spec": {
            "clusterIP": dns_ip(cfg),
            "ports": [
                {"name": "dns", "port": DNS_PORT, "protocol": "UDP", "targetPort": DNS_PORT},
                {"name": "dns-tcp", "port": DNS_PORT, "protocol": "TCP", "targetPort": DNS_PORT},
                {
                    "name": "metrics",
                    "port": METRICS_PORT,
                    "protocol": "TCP",
                    "targetPort": METRICS_PORT,
                },
            ],
            "selector": dict(LABELS),
        },
    }


def deployment(version: str | None = None) -> dict:
    """Deployment kube-system/coredns, as kubeadm's template, with the CoreDNS image of
    Kubernetes release `version` (default: the archive's)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": resources.metadata(NAME, resources.KUBE_SYSTEM, labels=dict(LABELS)),
        "spec": {
            "replicas": REPLICAS,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "selector": {"matchLabels": dict(LABELS)},
            "template": {"metadata": {"labels": dict(LABELS)}, "spec": _pod_spec(version)},
        },
    }


def _pod_spec(version: str | None) -> dict:
    return {
        "priorityClassName": "system-cluster-critical",
        "serviceAccountName": NAME,
        # Prefer one replica per node, so that losing a node keeps DNS answering.
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {
                                "matchExpressions": [
                                    {"key": "k8s-app", "operator": "In", "values": [SERVICE]}
                                ]
                            },
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        },
        "tolerations": [
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            dict(CONTROL_PLANE_TAINT),
        ],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "containers": [_container(version)],
        "dnsPolicy": "Default",
        "volumes": [
            {
                "name": "config-volume",
                "configMap": {"name": NAME, "items": [{"key": "Corefile", "path": "Corefile"}]},
            }
        ],
    }


def _container(version: str | None) -> dict:
    return {
        "name": NAME,
        "image": images.image(NAME, version).pinned_reference,
        "imagePullPolicy": "IfNotPresent",
        "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
        "args": ["-conf", "/etc/coredns/Corefile"],
        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}],
        "ports": [
            {"containerPort": DNS_PORT, "name": "dns", "protocol": "UDP"},
            {"containerPort": DNS_PORT, "name": "dns-tcp", "protocol": "TCP"},
            {"containerPort": METRICS_PORT, "name": "metrics", "protocol": "TCP"},
        ],
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": HEALTH_PORT, "scheme": "HTTP"},
            "initialDelaySeconds": 60,
            "timeoutSeconds": 5,
            "successThreshold": 1,
            "failureThreshold": 5,
        },
        "readinessProbe": {"httpGet": {"path": "/ready", "port": READY_PORT, "scheme": "HTTP"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
    }
