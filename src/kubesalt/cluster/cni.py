"""The cluster's CNI, kube-router: every API object it needs, rendered from the configuration.

Upstream source: repository cloudnativelabs/kube-router, tag v2.11.1, file
`daemonset/kubeadm-kuberouter.yaml` (pod networking and NetworkPolicy, with kube-proxy left
to kubeadm's addon). The objects follow that file, with these differences, each for a reason:

- the image is the pinned one (`kube-router` in kubesalt/data/images.yaml), pulled
  `IfNotPresent` rather than `Always`: pods restart while the bootstrap registry is down;
- the API server is reached at the cluster endpoint (the VIP) through the in-cluster
  variables `KUBERNETES_SERVICE_HOST`/`_PORT`: kube-router starts before kube-proxy makes
  the `kubernetes` service IP work, and the upstream file's unused kubeconfig hostPath is
  dropped;
- the arguments name the pod and service networks (`networks.pods`, `networks.services`),
  the BGP and health ports of the port matrix, the address family (IPv6-only clusters need
  `--enable-ipv4=false --enable-ipv6=true --router-id=generate`) and, when
  `networks.workloadPlane.mtu` is set, `--auto-mtu=false` with the MTU in the CNI
  configuration;
- the CNI configuration chains `portmap` (as upstream's `kubeadm-kuberouter-all-features-
  hostport.yaml` does) so that hostPort works; the plugins come from the `kubernetes-cni`
  package every node installs (the init container copies the image's own plugins only
  where one is missing);
- the ClusterRole keeps the rules routing and NetworkPolicy need; the rules of the load
  balancer allocator (leases, services/status) and of the `extensions` group, which no
  longer serves NetworkPolicy, are left out.

kube-router takes the node's address for BGP peering, pod routes and tunnels from the
Node's first InternalIP, which is the kubelet's `--node-ip`, the node's workload-plane IP
(`kubesalt.kubeadm.kubelet.flags`): that is how node-to-node pod traffic stays on the
workload plane. Pod addresses come from the per-node podCIDRs the
controller-manager allocates from `networks.pods` (`--allocate-node-cidrs`); kube-router
writes them into the host-local IPAM of the CNI configuration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import urlsplit

import netaddr

from kubesalt import ports
from kubesalt.cluster.model import ClusterNode
from kubesalt.errors import ConfigError
from kubesalt.kubeadm.images import check_version, image
from kubesalt.kubeadm.kubeconfig import endpoint_url

NAME = "kube-router"
NAMESPACE = "kube-system"
IMAGE = "kube-router"  # its name in kubesalt/data/images.yaml
LABELS = {"k8s-app": NAME, "tier": "node"}
CNI_CONF_FILE = "/etc/cni/net.d/10-kuberouter.conflist"
CNI_CONF_KEY = "cni-conf.json"
BRIDGE = "kube-bridge"
BGP_PORT_ENTRY = "kube-router-bgp"
HEALTH_PORT_ENTRY = "kube-router-health"
# Bytes the IP-in-IP tunnels between nodes of different subnets add to a pod packet: the
# outer IPv4 header; over IPv6 (ip6ip6) the outer IPv6 header and the 8-byte tunnel
# encapsulation-limit option Linux adds by default. kube-router keeps its overlay on, so
# every pod interface gets the reduced MTU, as its own --auto-mtu computes it.
ENCAPSULATION_OVERHEAD = {4: 20, 6: 48}
# Copies the CNI configuration once per node (the upstream init script), then lets the
# image install the CNI plugins the host lacks.
INSTALL_CNI_SCRIPT = (
    "set -e -x;"
    f" if [ ! -f {CNI_CONF_FILE} ]; then"
    " if [ -f /etc/cni/net.d/*.conf ]; then rm -f /etc/cni/net.d/*.conf; fi;"
    " TMP=/etc/cni/net.d/.tmp-kuberouter-cfg;"
    f" cp /etc/kube-router/{CNI_CONF_KEY} ${{TMP}};"
    f" mv ${{TMP}} {CNI_CONF_FILE};"
    " fi;"
    " if [ -x /usr/local/bin/cni-install ]; then /usr/local/bin/cni-install; fi;"
)


def pod_network(cfg: dict) -> netaddr.IPNetwork:
    """`networks.pods`, the cluster CIDR the controller-manager splits into node podCIDRs."""
    value = cfg["networks"]["pods"]
    try:
        return netaddr.IPNetwork(value, expand_partial=False)
    except (netaddr.AddrFormatError, ValueError, TypeError) as err:
        raise ConfigError(
            f"networks.pods: {value!r} is not a CIDR; give one network such as 10.233.0.0/16"
        ) from err


def pod_mtu(cfg: dict) -> int | None:
    """The MTU of the pods' interfaces: `networks.workloadPlane.mtu` minus the IP-in-IP
    overhead of the pods' family, or None (unset: kube-router reads the MTU of the
    interface holding the node IP and removes the same overhead itself)."""
    mtu = cfg["networks"]["workloadPlane"].get("mtu")
    if mtu is None:
        return None
    return mtu - ENCAPSULATION_OVERHEAD[pod_network(cfg).version]


def cni_config(cfg: dict) -> dict:
    """The CNI network configuration list kube-router's init container installs."""
    bridge: dict = {
        "name": "kubernetes",
        "type": "bridge",
        "bridge": BRIDGE,
        "isDefaultGateway": True,
        "ipam": {"type": "host-local"},
    }
    mtu = pod_mtu(cfg)
    if mtu is not None:
        bridge["mtu"] = mtu
    portmap = {"type": "portmap", "capabilities": {"snat": True, "portMappings": True}}
    return {"cniVersion": "0.3.0", "name": "mynet", "plugins": [bridge, portmap]}


def args(cfg: dict) -> list[str]:
    """kube-router's arguments: routing and NetworkPolicy on, service proxy left to kube-proxy."""
    pods = pod_network(cfg)
    result = [
        "--run-router=true",
        "--run-firewall=true",
        "--run-service-proxy=false",
        "--bgp-graceful-restart=true",
        f"--bgp-port={ports.port_number(BGP_PORT_ENTRY)}",
        f"--health-port={ports.port_number(HEALTH_PORT_ENTRY)}",
        f"--cluster-cidr={pods.cidr}",
        f"--service-cluster-ip-range={netaddr.IPNetwork(cfg['networks']['services']).cidr}",
    ]
    if pods.version == 6:
        # Without an IPv4 address kube-router has no BGP router ID to borrow.
        result += ["--enable-ipv4=false", "--enable-ipv6=true", "--router-id=generate"]
    if pod_mtu(cfg) is not None:
        result.append("--auto-mtu=false")
    return result


def api_server_env(cfg: dict) -> list[dict]:
    """The in-cluster client variables pointing at the cluster endpoint (the VIP)."""
    endpoint = urlsplit(endpoint_url(cfg))
    return [
        {"name": "KUBERNETES_SERVICE_HOST", "value": endpoint.hostname},
        {"name": "KUBERNETES_SERVICE_PORT", "value": str(endpoint.port)},
    ]


def _meta(name: str, namespaced: bool = True, labels: dict | None = None) -> dict:
    meta: dict = {"name": name}
    if namespaced:
        meta["namespace"] = NAMESPACE
    if labels:
        meta["labels"] = dict(labels)
    return meta


def _field_env(name: str, path: str) -> dict:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _host_path(name: str, path: str, kind: str | None = None) -> dict:
    host = {"path": path}
    if kind:
        host["type"] = kind
    return {"name": name, "hostPath": host}


def _container(cfg: dict) -> dict:
    return {
        "name": NAME,
        "image": image(IMAGE, check_version(cfg)).pinned_reference,
        "imagePullPolicy": "IfNotPresent",
        "args": args(cfg),
        "env": [
            _field_env("NODE_NAME", "spec.nodeName"),
            _field_env("POD_NAME", "metadata.name"),
            {"name": "KUBE_ROUTER_CNI_CONF_FILE", "value": CNI_CONF_FILE},
            *api_server_env(cfg),
        ],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": ports.port_number(HEALTH_PORT_ENTRY)},
            "initialDelaySeconds": 10,
            "periodSeconds": 3,
        },
        "resources": {"requests": {"cpu": "250m", "memory": "250Mi"}},
        "securityContext": {"privileged": True},
        "volumeMounts": [
            {"name": "lib-modules", "mountPath": "/lib/modules", "readOnly": True},
            {"name": "cni-conf-dir", "mountPath": "/etc/cni/net.d"},
            {"name": "xtables-lock", "mountPath": "/run/xtables.lock", "readOnly": False},
        ],
    }


def _install_cni_container(version: str) -> dict:
    return {
        "name": "install-cni",
        "image": image(IMAGE, version).pinned_reference,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", INSTALL_CNI_SCRIPT],
        "volumeMounts": [
            {"name": "cni-conf-dir", "mountPath": "/etc/cni/net.d"},
            {"name": "kube-router-cfg", "mountPath": "/etc/kube-router"},
            {"name": "host-opt", "mountPath": "/opt"},
        ],
    }


def daemonset(cfg: dict) -> dict:
    """DaemonSet kube-system/kube-router: one host-network pod per node, control plane included."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _meta(NAME, labels=LABELS),
        "spec": {
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": NAME,
                    "containers": [_container(cfg)],
                    "initContainers": [_install_cni_container(check_version(cfg))],
                    "hostNetwork": True,
                    "hostPID": True,
                    # Every NoSchedule and NoExecute taint: the control-plane taint, and the
                    # not-ready taints a node keeps until its CNI runs.
                    "tolerations": [
                        {"effect": "NoSchedule", "operator": "Exists"},
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"effect": "NoExecute", "operator": "Exists"},
                    ],
                    "volumes": [
                        _host_path("lib-modules", "/lib/modules"),
                        _host_path("cni-conf-dir", "/etc/cni/net.d"),
                        {"name": "kube-router-cfg", "configMap": {"name": "kube-router-cfg"}},
                        _host_path("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
                        _host_path("host-opt", "/opt"),
                    ],
                },
            },
        },
    }


def config_map(cfg: dict) -> dict:
    """ConfigMap kube-system/kube-router-cfg with the CNI configuration."""
    text = json.dumps(cni_config(cfg), indent=2) + "\n"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta("kube-router-cfg", labels=LABELS),
        "data": {CNI_CONF_KEY: text},
    }


def _read_rule(groups: list[str], resources: list[str]) -> dict:
    return {"apiGroups": groups, "resources": resources, "verbs": ["list", "get", "watch"]}


def cluster_role() -> dict:
    """ClusterRole kube-router: read what routing and NetworkPolicy enforcement watch."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(NAME, namespaced=False),
        "rules": [
            _read_rule([""], ["namespaces", "pods", "services", "nodes", "endpoints"]),
            _read_rule(["networking.k8s.io"], ["networkpolicies"]),
            _read_rule(["discovery.k8s.io"], ["endpointslices"]),
        ],
    }


def cluster_role_binding() -> dict:
    """ClusterRoleBinding kube-router: the ClusterRole to the ServiceAccount."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(NAME, namespaced=False),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
    }


def service_account() -> dict:
    """ServiceAccount kube-system/kube-router."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME)}


def objects(cfg: dict, nodes: Sequence[ClusterNode]) -> list[dict]:
    """Every API object of the CNI, in apply order (identity, RBAC, configuration, DaemonSet).

    `nodes` is accepted like every renderer's, but kube-router needs no per-node object: it
    learns the nodes, their addresses and podCIDRs from the API.
    """
    del nodes  # one DaemonSet covers every node, present and future
    return [
        service_account(),
        cluster_role(),
        cluster_role_binding(),
        config_map(cfg),
        daemonset(cfg),
    ]
