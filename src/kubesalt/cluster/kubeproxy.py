"""kube-proxy as kubeadm 1.33 installs it (`phases/addons/proxy`, `componentconfigs/kubeproxy.go`).

Objects, in apply order: ServiceAccount `kube-system/kube-proxy`, ClusterRoleBinding
`kubeadm:node-proxier` -> `system:node-proxier`, ConfigMap `kube-system/kube-proxy`
(`config.conf`, `kubeconfig.conf`) and DaemonSet `kube-system/kube-proxy`.

Differences from kubeadm (docs/kubeadm-differences.md):
- `config.conf` holds the fields kubeadm sets (`bindAddress`, `clientConnection.kubeconfig`,
  `clusterCIDR`); kubeadm's file also spells out every other field as its zero value, which
  kube-proxy reads as "use the default". As for the kubelet's config.yaml.
- kubeadm's Role and RoleBinding `kube-proxy` (get this ConfigMap) are left out: their one
  subject is the bootstrap-token group, for `kubeadm join`, and kubesalt creates no
  bootstrap token. The kube-proxy pods read the ConfigMap as a volume, through the kubelet.
- The image is the pinned one, `registry.k8s.io/kube-proxy:<tag>@<digest>` once the digest
  is known.
"""

from __future__ import annotations

from collections.abc import Sequence

import netaddr

from kubesalt.cluster import resources
from kubesalt.cluster.model import ClusterNode
from kubesalt.kubeadm import images, kubeconfig
from kubesalt.kubeadm.staticpod import proxy_env

NAME = "kube-proxy"
LABELS = {"k8s-app": NAME}
NODE_PROXIER = "kubeadm:node-proxier"
NODE_PROXIER_ROLE = "system:node-proxier"
CONFIG_KEY = "config.conf"
KUBECONFIG_KEY = "kubeconfig.conf"
CONFIG_DIR = "/var/lib/kube-proxy"
# kubeadm's template, key order included; the server is the API endpoint.
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
    server: {server}
  name: default
contexts:
- context:
    cluster: default
    namespace: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token"""


def objects(cfg: dict, nodes: Sequence[ClusterNode]) -> list[dict]:
    """kube-proxy's objects, in the order they must be applied."""
    del nodes  # a DaemonSet: the same objects whatever the inventory
    return [
        resources.service_account(NAME),
        resources.cluster_role_binding(
            NODE_PROXIER, NODE_PROXIER_ROLE, [resources.service_account_subject(NAME)]
        ),
        config_map(cfg),
        daemonset(cfg),
    ]


def configuration(cfg: dict) -> dict:
    """The KubeProxyConfiguration: what kubeadm's defaulting sets (bindAddress of the
    control-plane family, the kubeconfig path, clusterCIDR = networks.pods)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "bindAddress": "::" if control_plane_family(cfg) == 6 else "0.0.0.0",
        "clientConnection": {"kubeconfig": f"{CONFIG_DIR}/{KUBECONFIG_KEY}"},
        "clusterCIDR": cfg["networks"]["pods"],
    }


def control_plane_family(cfg: dict) -> int:
    """4 or 6: the family of the nodes' control-plane addresses (kubeadm picks the bind
    address from the family of its advertise address), from networks.controlPlane.cidr."""
    return netaddr.IPNetwork(cfg["networks"]["controlPlane"]["cidr"][0]).version


def config_map(cfg: dict) -> dict:
    """ConfigMap kube-system/kube-proxy, signed as kubeadm signs the configuration it
    generated. Both values end without a newline (kubeadm's `|-` block scalars)."""
    data = {
        KUBECONFIG_KEY: KUBECONFIG.format(server=kubeconfig.endpoint_url(cfg)),
        CONFIG_KEY: resources.to_yaml(configuration(cfg)).rstrip("\n"),
    }
    return resources.config_map(NAME, data, labels={"app": NAME}, signed=True)


def daemonset(cfg: dict) -> dict:
    """DaemonSet kube-system/kube-proxy: privileged, host network, on every Linux node
    whatever its taints."""
    container = {
        "name": NAME,
        "image": images.image(NAME, images.check_version(cfg)).pinned_reference,
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "/usr/local/bin/kube-proxy",
            f"--config={CONFIG_DIR}/{CONFIG_KEY}",
            "--hostname-override=$(NODE_NAME)",
        ],
        "securityContext": {"privileged": True},
        "volumeMounts": [
            {"mountPath": CONFIG_DIR, "name": NAME},
            {"mountPath": "/run/xtables.lock", "name": "xtables-lock", "readOnly": False},
            {"mountPath": "/lib/modules", "name": "lib-modules", "readOnly": True},
        ],
        # kubeadm appends its proxy variables to NODE_NAME (docs/kubeadm-differences.md #7).
        "env": [
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            *proxy_env(cfg),
        ],
    }
    pod_spec = {
        "priorityClassName": "system-node-critical",
        "containers": [container],
        "hostNetwork": True,
        "serviceAccountName": NAME,
        "volumes": [
            {"name": NAME, "configMap": {"name": NAME}},
            {
                "name": "xtables-lock",
                "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"},
            },
            {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
        ],
        "tolerations": [{"operator": "Exists"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": resources.metadata(NAME, resources.KUBE_SYSTEM, labels=dict(LABELS)),
        "spec": {
            "selector": {"matchLabels": dict(LABELS)},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {"metadata": {"labels": dict(LABELS)}, "spec": pod_spec},
        },
    }
