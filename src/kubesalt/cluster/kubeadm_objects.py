"""The objects `kubeadm init` 1.33 creates through the API, as kubesalt applies them.

kubeadm's phases and what kubesalt renders for each (kubeadm's `phases/uploadconfig`,
`phases/kubelet`, `phases/bootstraptoken/node`, `phases/markcontrolplane`,
`cmd/phases/init/kubeconfig.go` EnsureAdminClusterRoleBinding):

- the ClusterRoleBinding `kubeadm:cluster-admins` -> `cluster-admin`: admin.conf's group has
  no rights without it, so it comes first and is the one object applied with
  super-admin.conf (`needs_super_admin`);
- upload-config: ConfigMap `kube-system/kubeadm-config` (the ClusterConfiguration) with the
  Role and RoleBinding `kubeadm:nodes-kubeadm-config`; ConfigMap `kube-system/kubelet-config`
  (the KubeletConfiguration every node gets) with the Role and RoleBinding
  `kubeadm:kubelet-config`;
- the node RBAC that still applies without bootstrap tokens: the ClusterRoleBinding
  `kubeadm:node-autoapprove-certificate-rotation` (kubelets renew their client certificate
  through CSRs, `rotateCertificates: true`, which kube-controller-manager approves for
  the `system:nodes` group);
- mark-control-plane: `node_patches`, one partial Node per node.

Left out on purpose, because kubesalt creates no bootstrap token (each kubelet gets its
identity through Salt, docs/kubeadm-differences.md) and each would only serve one:
- the bootstrap-token Secret `kube-system/bootstrap-token-<id>`;
- the ClusterRoleBindings `kubeadm:kubelet-bootstrap` (tokens may create CSRs) and
  `kubeadm:node-autoapprove-bootstrap` (auto-approve a token's first client CSR);
- the ClusterRole and ClusterRoleBinding `kubeadm:get-nodes`: their only subject is the token
  group, for `kubeadm join`'s pre-check of an existing Node;
- ConfigMap `kube-public/cluster-info` with the Role and RoleBinding
  `kubeadm:bootstrap-signer-clusterinfo`: it exists for token discovery, where a joining
  node trusts it only through the signature the bootstrap signer adds per token
  (`jws-kubeconfig-<id>`); without tokens nobody can verify it, and its binding would let
  anonymous requests (`system:anonymous`) read the cluster's CA and endpoint for no reader.
  kubesalt nodes get the CA from the Salt CA minion.
- the annotation `kubeadm.alpha.kubernetes.io/cri-socket` on Nodes: read only by kubeadm's
  own upgrade and reset, which kubesalt does not use (1.33's NodeLocalCRISocket moves it to a
  file on the node).
The two upload-config RoleBindings keep kubeadm's subjects, token group included: the
objects are identical to kubeadm's, and the group is empty while no token exists.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubesalt import kubectl, ports, urls
from kubesalt import roles as _roles
from kubesalt.cluster import resources
from kubesalt.cluster.model import ClusterNode
from kubesalt.kubeadm import images, kubelet
from kubesalt.kubeadm.model import Layout

KUBEADM_CONFIG = "kubeadm-config"
CLUSTER_CONFIGURATION_KEY = "ClusterConfiguration"
NODES_KUBEADM_CONFIG = "kubeadm:nodes-kubeadm-config"
KUBELET_CONFIG = "kubelet-config"
KUBELET_CONFIG_KEY = "kubelet"
KUBELET_CONFIG_ROLE = "kubeadm:kubelet-config"
CLUSTER_ADMINS = "kubeadm:cluster-admins"
CLUSTER_ADMIN_ROLE = "cluster-admin"
CERTIFICATE_ROTATION = "kubeadm:node-autoapprove-certificate-rotation"
SELF_NODE_CLIENT_ROLE = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
NODES_GROUP = "system:nodes"
BOOTSTRAP_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"

CONTROL_PLANE_LABEL = kubectl.role_label(_roles.CONTROL_PLANE)
EXCLUDE_FROM_LOAD_BALANCERS = "node.kubernetes.io/exclude-from-external-load-balancers"
CONTROL_PLANE_TAINT = {"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"}


def objects(cfg: dict, nodes: Sequence[ClusterNode]) -> list[dict]:
    """kubeadm init's API objects (Node patches aside), in the order they must be applied."""
    del nodes  # the same objects whatever the inventory; see node_patches
    return [
        cluster_admins(),
        *upload_kubeadm_config(cfg),
        *upload_kubelet_config(cfg),
        resources.cluster_role_binding(
            CERTIFICATE_ROTATION, SELF_NODE_CLIENT_ROLE, [resources.group(NODES_GROUP)]
        ),
    ]


def cluster_admins() -> dict:
    """The ClusterRoleBinding that gives admin.conf's group (O=kubeadm:cluster-admins) its
    rights; it must be applied with super-admin.conf (group system:masters)."""
    return resources.cluster_role_binding(
        CLUSTER_ADMINS, CLUSTER_ADMIN_ROLE, [resources.group(CLUSTER_ADMINS)]
    )


def needs_super_admin(obj: dict) -> bool:
    """Whether `obj` must be applied with super-admin.conf: admin.conf cannot create the
    binding that gives it its own rights."""
    return (
        obj.get("kind") == "ClusterRoleBinding"
        and obj.get("metadata", {}).get("name") == CLUSTER_ADMINS
    )


def upload_kubeadm_config(cfg: dict) -> list[dict]:
    """ConfigMap kube-system/kubeadm-config and the Role/RoleBinding that let nodes read it."""
    data = {CLUSTER_CONFIGURATION_KEY: resources.to_yaml(cluster_configuration(cfg))}
    return [
        resources.config_map(KUBEADM_CONFIG, data),
        resources.role(NODES_KUBEADM_CONFIG, [resources.get_config_map_rule(KUBEADM_CONFIG)]),
        resources.role_binding(
            NODES_KUBEADM_CONFIG,
            NODES_KUBEADM_CONFIG,
            [resources.group(BOOTSTRAP_TOKEN_GROUP), resources.group(NODES_GROUP)],
        ),
    ]


def upload_kubelet_config(cfg: dict) -> list[dict]:
    """ConfigMap kube-system/kubelet-config (the KubeletConfiguration every node's
    config.yaml holds, signed as kubeadm signs its own) and the Role/RoleBinding that let
    nodes read it."""
    # The base configuration, the same for every node: the node-dependent resolvConf
    # (systemd-resolved) is decided on each node, as kubeadm's patches do.
    data = {KUBELET_CONFIG_KEY: kubelet.config_yaml(cfg, None).decode()}
    return [
        resources.config_map(KUBELET_CONFIG, data, signed=True),
        resources.role(KUBELET_CONFIG_ROLE, [resources.get_config_map_rule(KUBELET_CONFIG)]),
        resources.role_binding(
            KUBELET_CONFIG_ROLE,
            KUBELET_CONFIG_ROLE,
            [resources.group(NODES_GROUP), resources.group(BOOTSTRAP_TOKEN_GROUP)],
        ),
    ]


def cluster_configuration(cfg: dict, layout: Layout | None = None) -> dict:
    """The kubeadm.k8s.io/v1beta4 ClusterConfiguration kubeadm would upload for this
    cluster at its Kubernetes release (1.33 and 1.34 write the same fields): every field it writes once defaulted. kubeadm records only user-given
    `extraArgs`, `extraEnvs`, `extraVolumes` and `certSANs`; kubesalt renders kubeadm's own
    flags and SANs, so the component sections stay empty (`{}`), as after a plain
    `kubeadm init`."""
    layout = layout or Layout()
    pki = cfg["pki"]
    return {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "apiServer": {},
        "caCertificateValidityPeriod": go_hours(pki["caCertificateValidityDays"]),
        "certificateValidityPeriod": go_hours(pki["certificateValidityDays"]),
        "certificatesDir": layout.pki_dir,
        "clusterName": cfg["kubernetes"]["clusterName"],
        "controlPlaneEndpoint": control_plane_endpoint(cfg),
        "controllerManager": {},
        "dns": {},
        "encryptionAlgorithm": pki["algorithm"],
        "etcd": {"local": {"dataDir": layout.etcd_data_dir}},
        "imageRepository": image_repository(),
        "kubernetesVersion": images.check_version(cfg),
        "networking": {
            "dnsDomain": cfg["kubernetes"]["dnsDomain"],
            "podSubnet": cfg["networks"]["pods"],
            "serviceSubnet": cfg["networks"]["services"],
        },
        "proxy": {},
        "scheduler": {},
    }


def control_plane_endpoint(cfg: dict) -> str:
    """`host:port` of the API endpoint (apiServer.host, the VIP; `[v6]:port` for IPv6)."""
    port = ports.port_number("kube-apiserver", cfg)
    return urls.host_port(cfg["apiServer"]["host"], port, what="apiServer.host")


def image_repository() -> str:
    """The registry the control-plane images come from (`registry.k8s.io`), read from the
    pinned images so that the two never disagree."""
    return images.image("kube-apiserver").repository.rpartition("/")[0]


def go_hours(days: int) -> str:
    """`days` as a Go duration in kubeadm's form: 365 -> `8760h0m0s`."""
    return f"{days * 24}h0m0s"


def node_patches(cfg: dict, nodes: Sequence[ClusterNode]) -> list[dict]:
    """One partial Node per node that runs a kubelet, for server-side apply, by node name.

    Labels: `node-role.kubernetes.io/<role>=""` for each of the node's roles (what kubesalt
    has always labelled) and, on control-plane nodes, kubeadm's mark-control-plane label
    `node.kubernetes.io/exclude-from-external-load-balancers=""`. Taint: kubeadm's
    `node-role.kubernetes.io/control-plane:NoSchedule` on control-plane nodes: the taint
    wanted, which `kubesalt.cluster.apply` adds to the Node's live taints when missing
    (spec.taints is one atomic list for server-side apply; see `split_node_patch` there).
    """
    del cfg  # labels and taints depend on the roles alone
    return [node_patch(node) for node in nodes if _roles.runs_kubelet(node.roles)]


def node_patch(node: ClusterNode) -> dict:
    """The partial Node for `node` (see node_patches)."""
    labels = {kubectl.role_label(role): "" for role in sorted(node.roles)}
    patch: dict = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node.name}}
    if node.control_plane:
        labels[CONTROL_PLANE_LABEL] = ""
        labels[EXCLUDE_FROM_LOAD_BALANCERS] = ""
        patch["spec"] = {"taints": [dict(CONTROL_PLANE_TAINT)]}
    patch["metadata"]["labels"] = labels
    return patch
