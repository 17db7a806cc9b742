"""What differs in kubeadm's output from one supported Kubernetes minor to the next, and
which release a node or the cluster renders.

Every per-release difference is one field of `Release`, read by the renderer; no other
module compares version strings. The facts and their sources are in
docs/kubernetes-releases.md; the image sets are in `kubesalt/data/images.yaml`
(`kubesalt.kubeadm.images`).

Which release is rendered: a node renders the version the inventory records for it (pillar
`kubesalt:nodes:<id>:kubernetes_version`, written by `kubesalt.inventory.record_kubernetes_version`
when a node is moved to another release), else the cluster's version; the cluster's version
is `kubernetes.version` of bootstrap.yaml when set, else the release the archive carries.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubesalt.kubeadm import RenderError, images
from kubesalt.kubeadm import cluster as _cluster
from kubesalt.kubeadm.model import Node


@dataclass(frozen=True)
class Release:
    """kubeadm's behaviour for one Kubernetes minor.

    `etcd_graduated_flags`: etcd is 3.6 or newer, so kubeadm writes
    `--feature-gates=InitialCorruptCheck=true` and `--watch-progress-notify-interval=5s`
    instead of the `--experimental-*` flags of etcd 3.5 (kubernetes#132838).
    `node_local_cri_socket`: kubeadm's NodeLocalCRISocket gate is on by default (beta in
    1.34, kubernetes#131981): the CRI socket goes to /var/lib/kubelet/instance-config.yaml,
    patched into config.yaml, and kubeadm-flags.env has no `--container-runtime-endpoint`.
    """

    minor: str
    etcd_graduated_flags: bool
    node_local_cri_socket: bool


RELEASES = {
    "1.33": Release("1.33", etcd_graduated_flags=False, node_local_cri_socket=False),
    "1.34": Release("1.34", etcd_graduated_flags=True, node_local_cri_socket=True),
}


def minor(version: str) -> str:
    """`1.34` for `v1.34.2`."""
    return ".".join(str(version).lstrip("v").split(".")[:2])


def release(version: str) -> Release:
    """The `Release` of the supported Kubernetes version `version` (`v1.34.2`)."""
    canonical = images.supported(version)
    found = RELEASES.get(minor(canonical))
    if found is None:  # images.yaml names a release whose minor has no entry here
        raise RenderError(
            f"Kubernetes {canonical} has images but no entry in kubesalt.kubeadm.releases; "
            f"known minors: {', '.join(RELEASES)}"
        )
    return found


def cluster_version(cfg: dict) -> str:
    """The cluster's release: `kubernetes.version` when set, else the archive's."""
    return images.check_version(cfg)


def node_version(cfg: dict, node: Node | None) -> str:
    """The release `node` renders: the one the inventory records for it
    (`node.kubernetes_version`) when set, else the cluster's (also for None: what every
    node shares, such as the kubelet-config ConfigMap)."""
    if node is None:
        return cluster_version(cfg)
    return _recorded_or_cluster(cfg, node.name, node.kubernetes_version)


def version_of(cfg: dict, name: str) -> str:
    """The release node `name` renders (see node_version), from the pillar alone: what
    `kubesalt:nodes:<name>:kubernetes_version` records, else the cluster's."""
    return _recorded_or_cluster(cfg, name, _cluster.recorded_version(cfg.get("nodes"), name))


def _recorded_or_cluster(cfg: dict, name: str, recorded: str | None) -> str:
    if recorded is None:
        return cluster_version(cfg)
    try:
        return images.supported(recorded)
    except RenderError as err:
        raise RenderError(
            f"the inventory records Kubernetes {recorded!r} for node {name}: {err}; "
            "record a supported version (kubesalt.inventory.record_kubernetes_version)"
        ) from None


def of_node(cfg: dict, node: Node | None) -> Release:
    """The `Release` that `node` renders (see node_version)."""
    return release(node_version(cfg, node))
