"""The kubeconfig files kubeadm writes in /etc/kubernetes (kubeadm's `phases/kubeconfig`).

Cluster entry named after `kubernetes.clusterName`, user named after the client CN, context
`<user>@<clusterName>` as the current context, CA and client certificate and key embedded.
"""

from __future__ import annotations

import base64

import yaml

from kubesalt import ports, urls
from kubesalt.kubeadm.certs import CertSpec
from kubesalt.kubeadm.model import Node

# Which server each kubeconfig talks to: the API endpoint (apiServer.host, the VIP) or the
# node's own apiserver.
ENDPOINT = "endpoint"
LOCAL = "local"


def endpoint_url(cfg: dict) -> str:
    """The cluster's API endpoint, `https://<apiServer.host>:<apiServer.port>`."""
    port = ports.port_number("kube-apiserver", cfg)
    return urls.https(cfg["apiServer"]["host"], port, what="apiServer.host")


def local_url(cfg: dict, node: Node) -> str:
    """The node's own apiserver, `https://<node ip>:<apiServer.port>`."""
    port = ports.port_number("kube-apiserver", cfg)
    return urls.https(node.ip, port, what=f"API server of node {node.name}")


def server_for(cfg: dict, node: Node, spec: CertSpec) -> str:
    """The server of the kubeconfig embedding `spec`'s client certificate.

    admin.conf and super-admin.conf use the endpoint; controller-manager.conf and
    scheduler.conf the local apiserver; kubelet.conf the local apiserver on a control-plane
    node (1.33 ControlPlaneKubeletLocalMode, on by default) and the endpoint elsewhere.
    """
    if spec.kind in ("controller-manager", "scheduler"):
        return local_url(cfg, node)
    if spec.kind == "kubelet-client" and node.control_plane:
        return local_url(cfg, node)
    return endpoint_url(cfg)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build(
    cluster_name: str, server: str, ca_pem: bytes, user: str, cert_pem: bytes, key_pem: bytes
) -> dict:
    """A kubeconfig as data (keys in the order clientcmd writes them: alphabetical)."""
    context = f"{user}@{cluster_name}"
    return {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {"certificate-authority-data": _b64(ca_pem), "server": server},
                "name": cluster_name,
            }
        ],
        "contexts": [{"context": {"cluster": cluster_name, "user": user}, "name": context}],
        "current-context": context,
        "kind": "Config",
        "preferences": {},
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(cert_pem),
                    "client-key-data": _b64(key_pem),
                },
            }
        ],
    }


def render(
    cfg: dict, node: Node, spec: CertSpec, ca_pem: bytes, cert_pem: bytes, key_pem: bytes
) -> bytes:
    """The kubeconfig file embedding `spec`'s client certificate, as YAML bytes."""
    data = build(
        cfg["kubernetes"]["clusterName"],
        server_for(cfg, node, spec),
        ca_pem,
        spec.common_name,
        cert_pem,
        key_pem,
    )
    return yaml.safe_dump(data, default_flow_style=False, width=1 << 30).encode()
