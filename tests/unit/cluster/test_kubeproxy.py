"""kube-proxy (kubesalt.cluster.kubeproxy) as kubeadm 1.33 renders it: phases/addons/proxy
(manifests.go, proxy.go) and the defaults of componentconfigs/kubeproxy.go."""

import hashlib

import pytest
import yaml

from kubesalt import ports
from kubesalt.cluster import kubeproxy
from kubesalt.kubeadm import images
from tests.unit.cluster.configs import DNS_HOST, NODES, cluster_config

RBAC = "rbac.authorization.k8s.io"


def by_kind(cfg):
    return {obj["kind"]: obj for obj in kubeproxy.objects(cfg, NODES)}


def config_conf(cfg):
    return yaml.safe_load(by_kind(cfg)["ConfigMap"]["data"]["config.conf"])


def kubeconfig_conf(cfg):
    return yaml.safe_load(by_kind(cfg)["ConfigMap"]["data"]["kubeconfig.conf"])


def test_objects_in_apply_order():
    objects = kubeproxy.objects(cluster_config(), NODES)
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in objects] == [
        ("ServiceAccount", "kube-proxy"),
        ("ClusterRoleBinding", "kubeadm:node-proxier"),
        ("ConfigMap", "kube-proxy"),
        ("DaemonSet", "kube-proxy"),
    ]


def test_service_account_and_its_binding_to_node_proxier():
    objects = by_kind(cluster_config())
    assert objects["ServiceAccount"]["metadata"] == {
        "name": "kube-proxy",
        "namespace": "kube-system",
    }
    assert objects["ClusterRoleBinding"] == {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "kubeadm:node-proxier"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:node-proxier"},
        "subjects": [{"kind": "ServiceAccount", "name": "kube-proxy", "namespace": "kube-system"}],
    }


def test_the_bootstrap_token_reader_role_is_left_out():
    kinds = {obj["kind"] for obj in kubeproxy.objects(cluster_config(), NODES)}
    assert not kinds & {"Role", "RoleBinding"}


def test_configuration_of_the_reference_cluster():
    # kube-proxy's clusterCIDR is the pod range, 10.233.0.0/16; kubeadm's defaulting sets the
    # bind address of the advertise address' family and the kubeconfig path.
    assert config_conf(cluster_config()) == {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "bindAddress": "0.0.0.0",
        "clientConnection": {"kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf"},
        "clusterCIDR": "10.233.0.0/16",
    }


def test_ipv6_cluster_binds_to_the_ipv6_wildcard():
    found = config_conf(cluster_config("ipv6"))
    assert found["bindAddress"] == "::"
    assert found["clusterCIDR"] == "fd00:233::/56"


def test_healthz_is_left_to_kube_proxys_default_port_the_firewall_opens():
    # kubeadm sets no healthzBindAddress: kube-proxy listens on its default 0.0.0.0:10256,
    # which is the port matrix's kube-proxy-healthz entry.
    assert "healthzBindAddress" not in config_conf(cluster_config())
    assert ports.port_number("kube-proxy-healthz") == 10256


@pytest.mark.parametrize(
    ("cfg", "server"),
    [
        (cluster_config(), "https://10.0.0.100:6443"),
        (cluster_config("ipv6"), "https://[fd00:1::100]:6443"),
        (cluster_config(host=DNS_HOST, port=7443), f"https://{DNS_HOST}:7443"),
    ],
    ids=["ipv4", "ipv6", "dns-name"],
)
def test_kubeconfig_talks_to_the_api_endpoint_with_the_pod_token(cfg, server):
    assert kubeconfig_conf(cfg) == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "cluster": {
                    "certificate-authority": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
                    "server": server,
                },
                "name": "default",
            }
        ],
        "contexts": [
            {
                "context": {"cluster": "default", "namespace": "default", "user": "default"},
                "name": "default",
            }
        ],
        "current-context": "default",
        "users": [
            {
                "name": "default",
                "user": {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"},
            }
        ],
    }


def test_config_map_as_kubeadm_writes_it():
    config_map = by_kind(cluster_config())["ConfigMap"]
    data = config_map["data"]
    # kubeadm's template writes both values as `|-` block scalars: no final newline.
    assert set(data) == {"config.conf", "kubeconfig.conf"}
    assert not any(value.endswith("\n") for value in data.values())
    assert data["kubeconfig.conf"].startswith("apiVersion: v1\nkind: Config\nclusters:\n")
    expected = hashlib.sha256((data["config.conf"] + data["kubeconfig.conf"]).encode()).hexdigest()
    assert config_map["metadata"] == {
        "name": "kube-proxy",
        "namespace": "kube-system",
        "labels": {"app": "kube-proxy"},
        "annotations": {"kubeadm.kubernetes.io/component-config.hash": f"sha256:{expected}"},
    }


def test_daemonset_as_kubeadm_renders_it():
    daemonset = by_kind(cluster_config())["DaemonSet"]
    assert daemonset["metadata"] == {
        "name": "kube-proxy",
        "namespace": "kube-system",
        "labels": {"k8s-app": "kube-proxy"},
    }
    spec = daemonset["spec"]
    assert spec["selector"] == {"matchLabels": {"k8s-app": "kube-proxy"}}
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}
    assert spec["template"]["metadata"] == {"labels": {"k8s-app": "kube-proxy"}}
    pod = spec["template"]["spec"]
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["hostNetwork"] is True
    assert pod["serviceAccountName"] == "kube-proxy"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    # Every node, whatever its taints (control-plane included).
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["volumes"] == [
        {"name": "kube-proxy", "configMap": {"name": "kube-proxy"}},
        {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
        {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
    ]
    [container] = pod["containers"]
    assert container["name"] == "kube-proxy"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["command"] == [
        "/usr/local/bin/kube-proxy",
        "--config=/var/lib/kube-proxy/config.conf",
        "--hostname-override=$(NODE_NAME)",
    ]
    assert container["securityContext"] == {"privileged": True}
    assert container["volumeMounts"] == [
        {"mountPath": "/var/lib/kube-proxy", "name": "kube-proxy"},
        {"mountPath": "/run/xtables.lock", "name": "xtables-lock", "readOnly": False},
        {"mountPath": "/lib/modules", "name": "lib-modules", "readOnly": True},
    ]
    assert container["env"] == [
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    ]


def test_the_image_is_the_pinned_one():
    container = by_kind(cluster_config())["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.k8s.io/kube-proxy:v1.33.5"
    assert container["image"] == images.image("kube-proxy").pinned_reference


def test_the_image_carries_its_digest_once_known(monkeypatch):
    digest = "sha256:" + "ab" * 32
    pinned = images.Image("kube-proxy", "registry.k8s.io/kube-proxy", "v1.33.5", None, digest)
    monkeypatch.setattr(kubeproxy.images, "image", lambda name, version=None: pinned)
    container = by_kind(cluster_config())["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"registry.k8s.io/kube-proxy:v1.33.5@{digest}"


def test_proxy_variables_follow_node_name():
    cfg = cluster_config(
        proxies={"https": "http://proxy:3128", "noProxy": ["10.0.0.0/8", ".local"]}
    )
    env = by_kind(cfg)["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [item["name"] for item in env] == [
        "NODE_NAME",
        "HTTPS_PROXY",
        "NO_PROXY",
        "https_proxy",
        "no_proxy",
    ]
    assert env[2]["value"] == "10.0.0.0/8,.local"
