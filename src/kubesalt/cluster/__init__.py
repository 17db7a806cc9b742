"""Every API object kubesalt applies to a running cluster, rendered from the configuration
and the inventory: kubeadm 1.33's API-side phases (upload-config, the cluster-admins
binding, node RBAC, mark-control-plane) and the addons (the CNI, kube-proxy, CoreDNS).

`render` is the one entry point: the deploy orchestration applies its list in order
(`kubesalt.cluster.apply`), `scripts/render-cluster` prints it. Nothing here talks to an
API server. See docs/addons.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubesalt.cluster import cni, coredns, kubeadm_objects, kubeproxy
from kubesalt.cluster.model import FIELD_MANAGER, ClusterNode, cluster_nodes

__all__ = ["FIELD_MANAGER", "ClusterNode", "cluster_nodes", "render", "workloads"]

WORKLOAD_KINDS = ("DaemonSet", "Deployment")


def render(cfg: dict, nodes: Sequence[ClusterNode]) -> list[dict]:
    """Every object, in apply order: kubeadm's configuration and RBAC first (the
    cluster-admins binding among them, which admin.conf's rights depend on), then the CNI
    (no pod gets an address before it), kube-proxy, CoreDNS, and last the Node labels and
    taints (they only patch Nodes that exist)."""
    return [
        *kubeadm_objects.objects(cfg, nodes),
        *cni.objects(cfg, nodes),
        *kubeproxy.objects(cfg, nodes),
        *coredns.objects(cfg, nodes),
        *kubeadm_objects.node_patches(cfg, nodes),
    ]


def workloads(objects: Sequence[dict]) -> list[dict]:
    """The DaemonSets and Deployments among `objects`, whose rollout a deploy waits for."""
    return [obj for obj in objects if obj.get("kind") in WORKLOAD_KINDS]
