"""The kubelet files: config.yaml, kubeadm-flags.env, the systemd drop-in and, from
Kubernetes 1.34 on, instance-config.yaml (kubeadm's)."""

from __future__ import annotations

import shlex

import yaml

from kubesalt import ports
from kubesalt.kubeadm import RenderError, images, releases
from kubesalt.kubeadm.model import Layout, Node
from kubesalt.network import nth_address

CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"
# Where the distribution's kubelet package reads KUBELET_EXTRA_ARGS from.
EXTRA_ARGS_FILE = {"Debian": "/etc/default/kubelet", "RedHat": "/etc/sysconfig/kubelet"}


def config(
    cfg: dict, node: Node | None, layout: Layout | None = None, *, systemd_resolved: bool = False
) -> dict:
    """The KubeletConfiguration with kubeadm's defaults (`componentconfigs/kubelet.go`).

    Fields kubeadm leaves to the kubelet's own defaults are left out (the kubelet applies
    the same defaults; kubeadm's file only spells them out as zero values). `resolvConf`
    is set only when systemd-resolved is active on the node, as kubeadm does. The base is
    the same for every node (kubeadm's kubelet-config ConfigMap, `node` None); a node whose
    release has NodeLocalCRISocket gets its instance configuration patched in, as kubeadm's
    `WriteConfigToDisk` does.
    """
    layout = layout or Layout()
    data = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": layout.pki("ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "systemd",
        "clusterDNS": [nth_address(cfg["networks"]["services"], 10)],
        "clusterDomain": cfg["kubernetes"]["dnsDomain"],
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports.port_number("kubelet-healthz"),
        "readOnlyPort": 0,
        "rotateCertificates": True,
        "staticPodPath": layout.manifests_dir,
    }
    if systemd_resolved:
        data["resolvConf"] = "/run/systemd/resolve/resolv.conf"
    if node is not None and releases.of_node(cfg, node).node_local_cri_socket:
        data.update(instance_config())
    return data


def instance_config() -> dict:
    """The node's own kubelet settings kubeadm keeps out of the shared configuration
    (KEP-4656, `WriteInstanceConfigToDisk`): the CRI socket."""
    return {"containerRuntimeEndpoint": CRI_SOCKET}


def instance_config_yaml() -> bytes:
    """/var/lib/kubelet/instance-config.yaml, as kubeadm writes it (one quoted line)."""
    return "".join(f'{key}: "{value}"\n' for key, value in instance_config().items()).encode()


def config_yaml(
    cfg: dict, node: Node | None, layout: Layout | None = None, *, systemd_resolved: bool = False
) -> bytes:
    """config.yaml as bytes."""
    data = config(cfg, node, layout, systemd_resolved=systemd_resolved)
    return yaml.safe_dump(data, default_flow_style=False, width=1 << 30).encode()


def flags(node: Node, version: str | None = None) -> list[str]:
    """The kubelet flags kubeadm puts in KUBELET_KUBEADM_ARGS for Kubernetes release
    `version` (default: the archive's), sorted by name.

    `--node-ip` is always set, to the node's workload-plane IP (kubesalt's choice: the
    kubelet's InternalIP never lands on the wrong NIC, and kube-router peers and tunnels on
    the InternalIP, so pod traffic between nodes stays on the workload plane);
    `--hostname-override` only when the host's name differs from the node name;
    `--container-runtime-endpoint` only without NodeLocalCRISocket (before 1.34), which
    moves it to instance-config.yaml.
    """
    version = version or images.kubernetes_version()
    values = {
        "node-ip": node.workload_ip,
        "pod-infra-container-image": images.sandbox_image(version),
    }
    if not releases.release(version).node_local_cri_socket:
        values["container-runtime-endpoint"] = CRI_SOCKET
    if node.hostname and node.hostname != node.name:
        values["hostname-override"] = node.name
    return [f"--{name}={value}" for name, value in sorted(values.items())]


def flags_env(node: Node, version: str | None = None) -> bytes:
    """/var/lib/kubelet/kubeadm-flags.env for Kubernetes release `version`."""
    return f'KUBELET_KUBEADM_ARGS="{" ".join(flags(node, version))}"\n'.encode()


def dropin(layout: Layout | None = None, os_family: str = "Debian") -> bytes:
    """The 10-kubeadm.conf drop-in of the kubeadm package (deb or rpm flavour)."""
    layout = layout or Layout()
    if os_family not in EXTRA_ARGS_FILE:
        raise RenderError(f"os_family is {os_family!r}; valid values: {', '.join(EXTRA_ARGS_FILE)}")
    kubeconfig_args = (
        f"--bootstrap-kubeconfig={layout.kubeconfig('bootstrap-kubelet.conf')} "
        f"--kubeconfig={layout.kubeconfig('kubelet.conf')}"
    )
    config_path = f"{layout.kubelet_dir}/config.yaml"
    lines = [
        "# Note: This dropin only works with kubeadm and kubelet v1.11+",
        "[Service]",
        f'Environment="KUBELET_KUBECONFIG_ARGS={kubeconfig_args}"',
        f'Environment="KUBELET_CONFIG_ARGS=--config={config_path}"',
        '# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, '
        "populating the KUBELET_KUBEADM_ARGS variable dynamically",
        f"EnvironmentFile=-{layout.kubelet_dir}/kubeadm-flags.env",
        "# This is a file that the user can use for overrides of the kubelet args as a last "
        "resort. Preferably, the user should use",
        "# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. "
        "KUBELET_EXTRA_ARGS should be sourced from this file.",
        f"EnvironmentFile=-{EXTRA_ARGS_FILE[os_family]}",
        "ExecStart=",
        "ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS "
        "$KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS",
    ]
    return ("\n".join(lines) + "\n").encode()


def parse_flags_env(content: bytes) -> list[str]:
    """The flags of a kubeadm-flags.env (for tests and drift checks)."""
    line = content.decode().strip()
    name, _, value = line.partition("=")
    if name != "KUBELET_KUBEADM_ARGS":
        raise RenderError(f"kubeadm-flags.env: expected KUBELET_KUBEADM_ARGS=..., got {line!r}")
    return shlex.split(value)[0].split() if value else []
