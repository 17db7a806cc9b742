"""Static pods against kubeadm 1.33's (reference_vectors.py)."""

import pytest
import yaml
from kubernetes.client import ApiClient
from reference_vectors import (
    ALL_ROLES,
    APISERVER,
    CONTROLLER_MANAGER,
    ETCD_CP2,
    ETCD_FIRST,
    SCHEDULER,
    config,
)

from kubesalt.errors import ConfigError
from kubesalt.kubeadm import RenderError, manifests, staticpod
from kubesalt.kubeadm.model import Layout, Node

CP = frozenset({"control-plane", "etcd", "node"})
LIVENESS = {
    "initialDelaySeconds": 10,
    "timeoutSeconds": 15,
    "failureThreshold": 8,
    "periodSeconds": 10,
}
READINESS = {"timeoutSeconds": 15, "failureThreshold": 3, "periodSeconds": 1}
STARTUP = {
    "initialDelaySeconds": 10,
    "timeoutSeconds": 15,
    "failureThreshold": 24,
    "periodSeconds": 10,
}


def numbers(probe):
    return {k: v for k, v in probe.items() if k != "httpGet"}


def to_v1pod(data):
    """Load plain data into the kubernetes client's V1Pod model."""
    return ApiClient()._ApiClient__deserialize(data, "V1Pod")


def all_pods(cfg, node, **kwargs):
    return {
        "etcd": manifests.etcd_pod(cfg, node, **kwargs),
        "kube-apiserver": manifests.apiserver_pod(cfg, node, **kwargs),
        "kube-controller-manager": manifests.controller_manager_pod(cfg, node, **kwargs),
        "kube-scheduler": manifests.scheduler_pod(cfg, node, **kwargs),
    }


# --- kubeadm's commands, exactly ------------------------------------------------------------


def test_apiserver_command_matches_reference(cfg, cp1):
    assert manifests.apiserver_command(cfg, cp1) == APISERVER


def test_etcd_command_first_node_matches_reference(cfg, cp1):
    assert manifests.etcd_command(cfg, cp1) == ETCD_FIRST


def test_etcd_command_joining_member_lists_every_member(cfg):
    # Sorted by flag name: --initial-cluster comes before --initial-cluster-state.
    cp2 = Node("cp2", "10.0.0.11", CP, etcd_members=(("cp1", "10.0.0.10"),))
    assert manifests.etcd_command(cfg, cp2) == ETCD_CP2


def test_etcd_three_members_keep_member_list_order(cfg):
    members = (("cp3", "10.0.0.12"), ("cp1", "10.0.0.10"), ("cp2", "10.0.0.11"))
    cp2 = Node("cp2", "10.0.0.11", CP, etcd_members=members)
    command = manifests.etcd_command(cfg, cp2)
    assert (
        "--initial-cluster=cp3=https://10.0.0.12:2380,cp1=https://10.0.0.10:2380,"
        "cp2=https://10.0.0.11:2380" in command
    )
    assert "--initial-cluster-state=existing" in command
    assert (
        command.index("--initial-cluster-state=existing")
        == command.index(
            "--initial-cluster=cp3=https://10.0.0.12:2380,cp1=https://10.0.0.10:2380,"
            "cp2=https://10.0.0.11:2380"
        )
        + 1
    )


def test_a_rejoined_first_node_joins_like_any_member(cfg):
    """A first node restored from a backup has no etcd data: starting a new cluster would
    split etcd in two; it joins the one the others still run."""
    members = (("cp2", "10.0.0.11"), ("cp1", "10.0.0.10"))
    cp1 = Node("cp1", "10.0.0.10", CP, first=True, etcd_members=members, rejoined=True)
    command = manifests.etcd_command(cfg, cp1)
    assert "--initial-cluster=cp2=https://10.0.0.11:2380,cp1=https://10.0.0.10:2380" in command
    assert "--initial-cluster-state=existing" in command


def test_rejoined_is_for_the_first_node_only():
    with pytest.raises(RenderError, match="marked rejoined but not first"):
        Node("cp2", "10.0.0.11", CP, etcd_members=(("cp1", "10.0.0.10"),), rejoined=True)


def test_a_first_node_with_peers_but_not_rejoined_is_refused():
    with pytest.raises(RenderError, match="marked first but other etcd members are given"):
        Node("cp1", "10.0.0.10", CP, first=True, etcd_members=(("cp2", "10.0.0.11"),))


def test_etcd_joining_member_appended_when_missing(cfg):
    node = Node("cp3", "10.0.0.12", CP, etcd_members=(("cp1", "10.0.0.10"), ("cp2", "10.0.0.11")))
    assert node.etcd_members[-1] == ("cp3", "10.0.0.12")


def test_etcd_joining_member_without_peers_is_refused(cfg):
    node = Node("cp2", "10.0.0.11", CP)
    with pytest.raises(RenderError, match=r"no other etcd member.*--peer NAME=IP"):
        manifests.etcd_command(cfg, node)


def test_controller_manager_command_matches_reference(cfg, cp1):
    assert manifests.controller_manager_command(cfg, cp1) == CONTROLLER_MANAGER


def test_controller_manager_external_ca_mode_on_node_without_ca_key(cfg):
    cp2 = Node("cp2", "10.0.0.11", CP, etcd_members=(("cp1", "10.0.0.10"),))
    command = manifests.controller_manager_command(cfg, cp2)
    assert "--cluster-signing-cert-file=" in command
    assert "--cluster-signing-key-file=" in command
    rest = [a for a in command if not a.startswith("--cluster-signing")]
    assert rest == [a for a in CONTROLLER_MANAGER if not a.startswith("--cluster-signing")]


def test_controller_manager_without_pod_subnet(cfg, cp1):
    cfg["networks"]["pods"] = None
    command = manifests.controller_manager_command(cfg, cp1)
    for flag in ("--allocate-node-cidrs", "--cluster-cidr", "--service-cluster-ip-range"):
        assert not [a for a in command if a.startswith(flag + "=")]


def test_scheduler_command_matches_reference(cfg, cp1):
    assert manifests.scheduler_command(cfg, cp1) == SCHEDULER


def test_arguments_sorted_by_name_then_value():
    command = manifests.arguments_to_command("x", {"b": "1", "a-b": "2", "a": "3"})
    assert command == ["x", "--a=3", "--a-b=2", "--b=1"]


# --- other inputs ----------------------------------------------------------------------------


def test_ipv6_node():
    cfg = config(**{"networks.services": "fd00:96::/108", "networks.pods": "fd00:233::/56"})
    cfg["apiServer"]["host"] = "fd00::100"
    node = Node("cp1", "fd00::10", ALL_ROLES, first=True)
    etcd = manifests.etcd_command(cfg, node)
    assert "--advertise-client-urls=https://[fd00::10]:2379" in etcd
    assert "--listen-client-urls=https://[::1]:2379,https://[fd00::10]:2379" in etcd
    assert "--listen-metrics-urls=http://[::1]:2381" in etcd
    assert "--listen-peer-urls=https://[fd00::10]:2380" in etcd
    assert "--initial-cluster=cp1=https://[fd00::10]:2380" in etcd
    api = manifests.apiserver_command(cfg, node)
    assert "--advertise-address=fd00::10" in api
    assert "--etcd-servers=https://[::1]:2379" in api
    assert "--service-cluster-ip-range=fd00:96::/108" in api
    pod = manifests.apiserver_pod(cfg, node)
    annotations = pod["metadata"]["annotations"]
    assert annotations[manifests.ANNOTATION_APISERVER_ENDPOINT] == "[fd00::10]:6443"
    assert pod["spec"]["containers"][0]["livenessProbe"]["httpGet"]["host"] == "fd00::10"
    etcd_pod = manifests.etcd_pod(cfg, node)
    assert etcd_pod["spec"]["containers"][0]["livenessProbe"]["httpGet"]["host"] == "::1"
    assert etcd_pod["metadata"]["annotations"] == {
        manifests.ANNOTATION_ETCD_URLS: "https://[fd00::10]:2379"
    }


def test_custom_domain_cluster_name_and_port(cp1):
    cfg = config(**{"kubernetes.dnsDomain": "example.org", "kubernetes.clusterName": "prod"})
    cfg["apiServer"]["port"] = 7443
    api = manifests.apiserver_command(cfg, cp1)
    assert "--service-account-issuer=https://kubernetes.default.svc.example.org" in api
    assert "--secure-port=7443" in api
    assert "--cluster-name=prod" in manifests.controller_manager_command(cfg, cp1)
    pod = manifests.apiserver_pod(cfg, cp1)
    assert pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] == 7443
    assert pod["metadata"]["annotations"][manifests.ANNOTATION_APISERVER_ENDPOINT] == (
        "10.0.0.10:7443"
    )


def test_bad_port_is_named(cp1):
    cfg = config(**{"apiServer.port": 0})
    with pytest.raises(ConfigError, match=r"apiServer.port: 0 is not a TCP port"):
        manifests.apiserver_command(cfg, cp1)
    cfg = config(**{"apiServer.port": 2379})
    with pytest.raises(ConfigError, match=r"apiServer.port: 2379 is already the port of etcd-cl"):
        manifests.apiserver_pod(cfg, cp1)


def test_proxy_env_sorted_and_not_on_etcd(cp1):
    cfg = config(
        **{
            "proxies.http": "http://proxy:3128",
            "proxies.https": "http://proxy:3129",
            "proxies.noProxy": ["10.0.0.0/8", ".svc"],
        }
    )
    expected = [
        {"name": "HTTPS_PROXY", "value": "http://proxy:3129"},
        {"name": "HTTP_PROXY", "value": "http://proxy:3128"},
        {"name": "NO_PROXY", "value": "10.0.0.0/8,.svc"},
        {"name": "http_proxy", "value": "http://proxy:3128"},
        {"name": "https_proxy", "value": "http://proxy:3129"},
        {"name": "no_proxy", "value": "10.0.0.0/8,.svc"},
    ]
    pods = all_pods(cfg, cp1)
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert pods[name]["spec"]["containers"][0]["env"] == expected
    assert "env" not in pods["etcd"]["spec"]["containers"][0]


def test_no_proxy_means_no_env(cfg, cp1):
    for pod in all_pods(cfg, cp1).values():
        assert "env" not in pod["spec"]["containers"][0]


# --- common pod properties -------------------------------------------------------------------


def test_common_pod_properties(cfg, cp1):
    for name, pod in all_pods(cfg, cp1).items():
        assert pod["apiVersion"] == "v1"
        assert pod["kind"] == "Pod"
        assert pod["metadata"]["name"] == name
        assert pod["metadata"]["namespace"] == "kube-system"
        assert pod["metadata"]["labels"] == {"component": name, "tier": "control-plane"}
        assert pod["metadata"]["creationTimestamp"] is None
        assert pod["status"] == {}
        spec = pod["spec"]
        assert spec["priority"] == 2000001000
        assert spec["priorityClassName"] == "system-node-critical"
        assert spec["hostNetwork"] is True
        assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
        for absent in ("dnsPolicy", "restartPolicy", "tolerations", "nodeSelector"):
            assert absent not in spec
        (container,) = spec["containers"]
        assert container["name"] == name
        assert container["imagePullPolicy"] == "IfNotPresent"
        assert "securityContext" not in container
        names = [v["name"] for v in spec["volumes"]]
        assert names == sorted(names)
        assert [m["name"] for m in container["volumeMounts"]] == names


def test_images(cfg, cp1):
    images = {n: p["spec"]["containers"][0]["image"] for n, p in all_pods(cfg, cp1).items()}
    assert images == {
        "etcd": "registry.k8s.io/etcd:3.5.21-0",
        "kube-apiserver": "registry.k8s.io/kube-apiserver:v1.33.5",
        "kube-controller-manager": "registry.k8s.io/kube-controller-manager:v1.33.5",
        "kube-scheduler": "registry.k8s.io/kube-scheduler:v1.33.5",
    }


def test_annotations_without_digest(cfg, cp1):
    pods = all_pods(cfg, cp1)
    assert pods["kube-apiserver"]["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": "10.0.0.10:6443"
    }
    assert pods["etcd"]["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/etcd.advertise-client-urls": "https://10.0.0.10:2379"
    }
    assert "annotations" not in pods["kube-controller-manager"]["metadata"]
    assert "annotations" not in pods["kube-scheduler"]["metadata"]


def test_digest_annotation_added_to_every_pod(cfg, cp1):
    pods = all_pods(cfg, cp1, digest="sha256:" + "ab" * 32)
    for pod in pods.values():
        assert pod["metadata"]["annotations"]["kubesalt.io/config-digest"] == "sha256:" + "ab" * 32


def test_probes(cfg, cp1):
    pods = all_pods(cfg, cp1)
    expected = {
        "kube-apiserver": {
            "livenessProbe": ("10.0.0.10", "/livez", 6443, "HTTPS", LIVENESS),
            "readinessProbe": ("10.0.0.10", "/readyz", 6443, "HTTPS", READINESS),
            "startupProbe": ("10.0.0.10", "/livez", 6443, "HTTPS", STARTUP),
        },
        "etcd": {
            "livenessProbe": ("127.0.0.1", "/livez", 2381, "HTTP", LIVENESS),
            "readinessProbe": ("127.0.0.1", "/readyz", 2381, "HTTP", READINESS),
            "startupProbe": ("127.0.0.1", "/readyz", 2381, "HTTP", STARTUP),
        },
        "kube-controller-manager": {
            "livenessProbe": ("127.0.0.1", "/healthz", 10257, "HTTPS", LIVENESS),
            "startupProbe": ("127.0.0.1", "/healthz", 10257, "HTTPS", STARTUP),
        },
        "kube-scheduler": {
            "livenessProbe": ("127.0.0.1", "/healthz", 10259, "HTTPS", LIVENESS),
            "startupProbe": ("127.0.0.1", "/healthz", 10259, "HTTPS", STARTUP),
        },
    }
    for name, probes in expected.items():
        container = pods[name]["spec"]["containers"][0]
        present = {k for k in container if k.endswith("Probe")}
        assert present == set(probes), name
        for kind, (host, path, port, scheme, nums) in probes.items():
            probe = container[kind]
            assert probe["httpGet"] == {"host": host, "path": path, "port": port, "scheme": scheme}
            assert numbers(probe) == nums, (name, kind)


def test_resources(cfg, cp1):
    pods = all_pods(cfg, cp1)
    resources = {n: p["spec"]["containers"][0]["resources"] for n, p in pods.items()}
    assert resources == {
        "etcd": {"requests": {"cpu": "100m", "memory": "100Mi"}},
        "kube-apiserver": {"requests": {"cpu": "250m"}},
        "kube-controller-manager": {"requests": {"cpu": "200m"}},
        "kube-scheduler": {"requests": {"cpu": "100m"}},
    }


def volume_table(pod):
    container = pod["spec"]["containers"][0]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    table = []
    for volume in pod["spec"]["volumes"]:
        mount = mounts[volume["name"]]
        assert mount["mountPath"] == volume["hostPath"]["path"]
        table.append(
            (
                volume["name"],
                volume["hostPath"]["path"],
                volume["hostPath"]["type"],
                mount.get("readOnly", False),
            )
        )
    return table


def test_volumes(cfg, cp1):
    pods = all_pods(cfg, cp1)
    assert volume_table(pods["kube-apiserver"]) == [
        ("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", True),
        ("k8s-certs", "/etc/kubernetes/pki", "DirectoryOrCreate", True),
    ]
    assert volume_table(pods["etcd"]) == [
        ("etcd-certs", "/etc/kubernetes/pki/etcd", "DirectoryOrCreate", False),
        ("etcd-data", "/var/lib/etcd", "DirectoryOrCreate", False),
    ]
    assert volume_table(pods["kube-controller-manager"]) == [
        ("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", True),
        (
            "flexvolume-dir",
            "/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
            "DirectoryOrCreate",
            False,
        ),
        ("k8s-certs", "/etc/kubernetes/pki", "DirectoryOrCreate", True),
        ("kubeconfig", "/etc/kubernetes/controller-manager.conf", "FileOrCreate", True),
    ]
    assert volume_table(pods["kube-scheduler"]) == [
        ("kubeconfig", "/etc/kubernetes/scheduler.conf", "FileOrCreate", True),
    ]
    # readOnly: false is omitted from the mount, as in kubeadm's YAML.
    for mount in pods["etcd"]["spec"]["containers"][0]["volumeMounts"]:
        assert "readOnly" not in mount


def test_optional_ca_directories_that_exist(cfg, cp1):
    existing = frozenset({"/etc/pki/ca-trust", "/usr/share/ca-certificates", "/etc/pki/tls/certs"})
    api = manifests.apiserver_pod(cfg, cp1, existing_paths=existing)
    assert volume_table(api) == [
        ("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", True),
        ("etc-pki-ca-trust", "/etc/pki/ca-trust", "DirectoryOrCreate", True),
        ("etc-pki-tls-certs", "/etc/pki/tls/certs", "DirectoryOrCreate", True),
        ("k8s-certs", "/etc/kubernetes/pki", "DirectoryOrCreate", True),
        ("usr-share-ca-certificates", "/usr/share/ca-certificates", "DirectoryOrCreate", True),
    ]
    every = frozenset(staticpod.OPTIONAL_CA_DIRS)
    cm = manifests.controller_manager_pod(cfg, cp1, existing_paths=every)
    assert [row[0] for row in volume_table(cm)] == [
        "ca-certs",
        "etc-ca-certificates",
        "etc-pki-ca-trust",
        "etc-pki-tls-certs",
        "flexvolume-dir",
        "k8s-certs",
        "kubeconfig",
        "usr-local-share-ca-certificates",
        "usr-share-ca-certificates",
    ]
    scheduler = manifests.scheduler_pod(cfg, cp1)
    assert [row[0] for row in volume_table(scheduler)] == ["kubeconfig"]


def test_layout_root_moves_every_kubeadm_path(cfg, cp1):
    layout = Layout("/tmp/x")
    command = manifests.etcd_command(cfg, cp1, layout)
    assert "--data-dir=/tmp/x/var/lib/etcd" in command
    assert "--cert-file=/tmp/x/etc/kubernetes/pki/etcd/server.crt" in command
    assert "--trusted-ca-file=/tmp/x/etc/kubernetes/pki/etcd/ca.crt" in command
    stripped = [a.replace("/tmp/x/", "/") for a in command]
    assert stripped == ETCD_FIRST


def test_used_files_and_digest(cfg, cp1):
    files = staticpod.used_files(manifests.scheduler_command(cfg, cp1))
    assert files == ["/etc/kubernetes/scheduler.conf"]
    api_files = staticpod.used_files(manifests.apiserver_command(cfg, cp1))
    assert "/etc/kubernetes/pki/sa.key" in api_files
    assert "/etc/kubernetes/pki/etcd/ca.crt" in api_files
    assert len(api_files) == 13
    contents = {path: b"v1" for path in api_files}
    first = staticpod.config_digest(contents, api_files)
    assert first.startswith("sha256:") and len(first) == 71
    contents["/etc/kubernetes/pki/apiserver.crt"] = b"renewed"
    assert staticpod.config_digest(contents, api_files) != first
    with pytest.raises(RenderError, match="no content for /etc/kubernetes/pki/apiserver.key"):
        staticpod.config_digest({}, ["/etc/kubernetes/pki/apiserver.key"])


# --- serialization ---------------------------------------------------------------------------


def test_pods_load_into_v1pod(cfg, cp1):
    cfg["proxies"]["https"] = "http://proxy:3128"
    for name, pod in all_pods(cfg, cp1, digest="sha256:" + "00" * 32).items():
        dumped = yaml.safe_load(yaml.safe_dump(pod))
        model = to_v1pod(dumped)
        assert model.metadata.name == name
        assert model.metadata.namespace == "kube-system"
        assert model.spec.priority == 2000001000
        assert model.spec.host_network is True
        assert model.spec.security_context.seccomp_profile.type == "RuntimeDefault"
        container = model.spec.containers[0]
        assert container.command == pod["spec"]["containers"][0]["command"]
        assert (
            container.liveness_probe.http_get.port
            == (pod["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"])
        )
        assert [v.name for v in model.spec.volumes] == [v["name"] for v in pod["spec"]["volumes"]]
        assert [v.host_path.type for v in model.spec.volumes] == [
            v["hostPath"]["type"] for v in pod["spec"]["volumes"]
        ]
        # Round trip: the model serializes back to the same data (minus the nulls).
        back = ApiClient().sanitize_for_serialization(model)
        assert back["spec"] == pod["spec"]
        assert back["metadata"]["annotations"] == pod["metadata"]["annotations"]
        assert back["metadata"]["labels"] == pod["metadata"]["labels"]


def test_unknown_probe_kind_is_named():
    with pytest.raises(RenderError, match="probe kind 'bogus' is unknown"):
        staticpod.probe("h", "/", 1, "HTTP", "bogus")
