"""Builders of the plain-data API objects the cluster renderers share (ConfigMaps, RBAC).

Each returns a dict ready for server-side apply and for `yaml.safe_dump`: the fields kubeadm
1.33 writes, in the API's own form (a Group or User subject carries the `apiGroup` the API
server would default it to, so what is applied is what the server stores).
"""

from __future__ import annotations

import hashlib

import yaml

KUBE_SYSTEM = "kube-system"
RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_API = f"{RBAC_GROUP}/v1"
# kubeadm's annotation on the component-config ConfigMaps it generated itself (kubelet-config,
# kube-proxy): `kubeadm upgrade` compares it with the data to tell its own defaults from a
# user's edit (constants.ComponentConfigHashAnnotationKey).
COMPONENT_CONFIG_HASH = "kubeadm.kubernetes.io/component-config.hash"


def to_yaml(data: dict) -> str:
    """`data` as YAML the way kubeadm marshals it: block style, keys sorted, no line folding."""
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True, width=1 << 30)


def metadata(name: str, namespace: str | None = None, **extra: dict) -> dict:
    """`metadata` with the name, the namespace when given, and any non-empty `extra` key
    (labels, annotations)."""
    result: dict = {"name": name}
    if namespace:
        result["namespace"] = namespace
    result.update({key: value for key, value in extra.items() if value})
    return result


def config_map(
    name: str,
    data: dict[str, str],
    *,
    namespace: str = KUBE_SYSTEM,
    labels: dict[str, str] | None = None,
    signed: bool = False,
) -> dict:
    """A ConfigMap; `signed` adds kubeadm's component-config hash of `data`."""
    annotations = {COMPONENT_CONFIG_HASH: config_map_checksum(data)} if signed else None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(name, namespace, labels=labels, annotations=annotations),
        "data": dict(data),
    }


def config_map_checksum(data: dict[str, str]) -> str:
    """`sha256:<hex>` of the values taken in key order (kubeadm's ChecksumForConfigMap)."""
    digest = hashlib.sha256()
    for key in sorted(data):
        digest.update(data[key].encode())
    return f"sha256:{digest.hexdigest()}"


def service_account(name: str, namespace: str = KUBE_SYSTEM) -> dict:
    """A ServiceAccount."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(name, namespace)}


def group(name: str) -> dict:
    """An RBAC subject: the group `name`."""
    return {"apiGroup": RBAC_GROUP, "kind": "Group", "name": name}


def service_account_subject(name: str, namespace: str = KUBE_SYSTEM) -> dict:
    """An RBAC subject: the ServiceAccount `namespace/name`."""
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def get_config_map_rule(config_map_name: str) -> dict:
    """The rule to `get` one ConfigMap, as kubeadm writes it for its ConfigMap readers."""
    return {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": [config_map_name],
        "verbs": ["get"],
    }


def role(name: str, rules: list[dict], namespace: str = KUBE_SYSTEM) -> dict:
    """A Role."""
    return {
        "apiVersion": RBAC_API,
        "kind": "Role",
        "metadata": metadata(name, namespace),
        "rules": rules,
    }


def cluster_role(name: str, rules: list[dict]) -> dict:
    """A ClusterRole."""
    return {
        "apiVersion": RBAC_API,
        "kind": "ClusterRole",
        "metadata": metadata(name),
        "rules": rules,
    }


def role_binding(
    name: str, role_name: str, subjects: list[dict], namespace: str = KUBE_SYSTEM
) -> dict:
    """A RoleBinding of the Role `role_name` (in the same namespace) to `subjects`."""
    return {
        "apiVersion": RBAC_API,
        "kind": "RoleBinding",
        "metadata": metadata(name, namespace),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role_name},
        "subjects": subjects,
    }


def cluster_role_binding(name: str, cluster_role_name: str, subjects: list[dict]) -> dict:
    """A ClusterRoleBinding of the ClusterRole `cluster_role_name` to `subjects`."""
    return {
        "apiVersion": RBAC_API,
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": cluster_role_name},
        "subjects": subjects,
    }
