"""Kubeconfigs, kubelet files, containerd, images and the rendered tree."""

import base64
import os
import tomllib

import pytest
import yaml
from conftest import NOW, REGISTRY
from cryptography import x509
from reference_vectors import ALL_ROLES, config

from kubesalt.kubeadm import RenderError, containerd, images, kubelet, render
from kubesalt.kubeadm.files import RenderedDirectory, RenderedFile, write_tree
from kubesalt.kubeadm.model import Layout, Node

CP = frozenset({"control-plane", "etcd", "node"})
K = "/etc/kubernetes"
PKI = "/etc/kubernetes/pki"

# Every file of the reference node with its mode (kubeadm's: manifests, keys, sa.pub and
# kubeconfigs 0600; certificates, kubelet config.yaml and kubeadm-flags.env 0644).
REFERENCE_FILES = {
    f"{K}/manifests/etcd.yaml": 0o600,
    f"{K}/manifests/kube-apiserver.yaml": 0o600,
    f"{K}/manifests/kube-controller-manager.yaml": 0o600,
    f"{K}/manifests/kube-scheduler.yaml": 0o600,
    f"{K}/admin.conf": 0o600,
    f"{K}/super-admin.conf": 0o600,
    f"{K}/controller-manager.conf": 0o600,
    f"{K}/scheduler.conf": 0o600,
    f"{K}/kubelet.conf": 0o600,
    **{f"{PKI}/{name}.crt": 0o644 for name in (
        "ca", "front-proxy-ca", "etcd/ca", "apiserver", "apiserver-kubelet-client",
        "front-proxy-client", "etcd/server", "etcd/peer", "etcd/healthcheck-client",
        "apiserver-etcd-client",
    )},
    **{f"{PKI}/{name}.key": 0o600 for name in (
        "ca", "front-proxy-ca", "etcd/ca", "apiserver", "apiserver-kubelet-client",
        "front-proxy-client", "etcd/server", "etcd/peer", "etcd/healthcheck-client",
        "apiserver-etcd-client", "sa",
    )},
    f"{PKI}/sa.pub": 0o600,
    "/var/lib/kubelet/config.yaml": 0o644,
    "/var/lib/kubelet/kubeadm-flags.env": 0o644,
    "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf": 0o644,
    "/etc/containerd/config.toml": 0o644,
    **{f"/etc/containerd/certs.d/{r}/hosts.toml": 0o644 for r in (
        "registry.k8s.io", "docker.io", "quay.io", "ghcr.io",
    )},
}  # fmt: skip

REFERENCE_DIRS = {
    K: 0o755,
    PKI: 0o755,
    f"{PKI}/etcd": 0o755,
    f"{K}/manifests": 0o700,
    "/var/lib/etcd": 0o700,
    "/var/lib/kubelet": 0o700,
    "/etc/systemd/system/kubelet.service.d": 0o755,
    "/etc/containerd": 0o755,
    "/etc/containerd/certs.d": 0o755,
    **{f"/etc/containerd/certs.d/{r}": 0o755 for r in containerd.MIRRORED_REGISTRIES},
}


def files_of(rendered):
    return {p: i for p, i in rendered.items() if isinstance(i, RenderedFile)}


def kubeconfig_of(rendered, name):
    return yaml.safe_load(rendered[f"{K}/{name}"].content)


def client_cert(kubeconfig):
    data = kubeconfig["users"][0]["user"]["client-certificate-data"]
    return x509.load_pem_x509_certificate(base64.b64decode(data))


# --- the whole tree --------------------------------------------------------------------------


def test_reference_node_files_and_modes(cp1_files):
    modes = {p: i.mode for p, i in files_of(cp1_files).items()}
    assert modes == REFERENCE_FILES
    dirs = {p: i.mode for p, i in cp1_files.items() if isinstance(i, RenderedDirectory)}
    assert dirs == REFERENCE_DIRS


def test_worker_files(authorities):
    worker = Node("w1", "10.0.0.20", frozenset({"node"}))
    rendered = render.render_node(config(), worker, authorities, registry=REGISTRY, now=NOW)
    assert sorted(files_of(rendered)) == sorted(
        [
            f"{K}/kubelet.conf",
            f"{PKI}/ca.crt",
            "/var/lib/kubelet/config.yaml",
            "/var/lib/kubelet/kubeadm-flags.env",
            "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            "/etc/containerd/config.toml",
            *[f"/etc/containerd/certs.d/{r}/hosts.toml" for r in containerd.MIRRORED_REGISTRIES],
        ]
    )
    conf = kubeconfig_of(rendered, "kubelet.conf")
    assert conf["clusters"][0]["cluster"]["server"] == "https://10.0.0.100:6443"
    assert conf["users"][0]["name"] == "system:node:w1"
    assert client_cert(conf).subject.rfc4514_string() == "CN=system:node:w1,O=system:nodes"


def test_joined_control_plane_files(authorities):
    cp2 = Node("cp2", "10.0.0.11", CP, etcd_members=(("cp1", "10.0.0.10"),))
    rendered = files_of(render.render_node(config(), cp2, authorities, registry=REGISTRY))
    expected = {
        p
        for p in REFERENCE_FILES
        if p
        not in (
            f"{K}/super-admin.conf",
            f"{PKI}/ca.key",
            f"{PKI}/front-proxy-ca.key",
            f"{PKI}/etcd/ca.key",
        )
    }
    assert set(rendered) == expected
    manifest = yaml.safe_load(rendered[f"{K}/manifests/etcd.yaml"].content)
    assert "--initial-cluster-state=existing" in manifest["spec"]["containers"][0]["command"]


def test_worker_needs_a_registry(authorities):
    worker = Node("w1", "10.0.0.20", frozenset({"node"}))
    with pytest.raises(RenderError, match="no bootstrap registry endpoint"):
        render.render_node(config(), worker, authorities)


def test_version_mismatch_is_refused(authorities, cp1):
    cfg = config(**{"kubernetes.version": "v1.34.0"})
    with pytest.raises(RenderError, match=r"kubernetes.version is 'v1.34.0'.*v1.33.5"):
        render.render_node(cfg, cp1, authorities, registry=REGISTRY)
    cfg = config(**{"kubernetes.version": "1.33.5"})
    assert render.render_node(cfg, cp1, authorities, registry=REGISTRY)


def test_manifest_yaml_format(cp1_files):
    text = cp1_files[f"{K}/manifests/kube-apiserver.yaml"].content.decode()
    assert text.startswith("apiVersion: v1\nkind: Pod\nmetadata:\n")
    assert "  creationTimestamp: null\n" in text
    assert text.endswith("status: {}\n")
    assert "    - --advertise-address=10.0.0.10\n" in text
    top = [line.split(":")[0] for line in text.splitlines() if line and line[0] != " "]
    assert top == ["apiVersion", "kind", "metadata", "spec", "status"]


def test_manifest_digest_annotation_tracks_files(cp1_files, authorities, cp1):
    def annotation(rendered, name):
        pod = yaml.safe_load(rendered[f"{K}/manifests/{name}.yaml"].content)
        return pod["metadata"]["annotations"]["kubesalt.io/config-digest"]

    again = render.render_node(config(), cp1, authorities, registry=REGISTRY, now=NOW)
    # New leaf certificates (new serials, keys) give new digests: the pods restart.
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert annotation(cp1_files, name).startswith("sha256:")
        assert annotation(again, name) != annotation(cp1_files, name)


# --- kubeconfigs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "server", "user", "subject"),
    [
        ("admin.conf", "https://10.0.0.100:6443", "kubernetes-admin",
         "CN=kubernetes-admin,O=kubeadm:cluster-admins"),
        ("super-admin.conf", "https://10.0.0.100:6443", "kubernetes-super-admin",
         "CN=kubernetes-super-admin,O=system:masters"),
        ("controller-manager.conf", "https://10.0.0.10:6443", "system:kube-controller-manager",
         "CN=system:kube-controller-manager"),
        ("scheduler.conf", "https://10.0.0.10:6443", "system:kube-scheduler",
         "CN=system:kube-scheduler"),
        ("kubelet.conf", "https://10.0.0.10:6443", "system:node:cp1",
         "CN=system:node:cp1,O=system:nodes"),
    ],
)  # fmt: skip
def test_kubeconfigs(cp1_files, authorities, name, server, user, subject):
    conf = kubeconfig_of(cp1_files, name)
    assert conf["apiVersion"] == "v1" and conf["kind"] == "Config"
    assert conf["preferences"] == {}
    assert conf["clusters"] == [
        {
            "cluster": {
                "certificate-authority-data": base64.b64encode(
                    authorities.signer("ca").cert_pem
                ).decode(),
                "server": server,
            },
            "name": "kubernetes",
        }
    ]
    assert conf["contexts"] == [
        {"context": {"cluster": "kubernetes", "user": user}, "name": f"{user}@kubernetes"}
    ]
    assert conf["current-context"] == f"{user}@kubernetes"
    assert conf["users"][0]["name"] == user
    cert = client_cert(conf)
    assert cert.subject.rfc4514_string() == subject
    cert.verify_directly_issued_by(authorities.signer("ca").cert)
    key = base64.b64decode(conf["users"][0]["user"]["client-key-data"])
    assert key.startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def test_kubeconfigs_custom_cluster_name_and_ipv6_endpoint(authorities):
    cfg = config(**{"kubernetes.clusterName": "prod", "apiServer.host": "fd00::100"})
    cfg["networks"]["services"] = "fd00:96::/108"
    node = Node("cp1", "fd00::10", ALL_ROLES, first=True)
    rendered = render.render_node(cfg, node, authorities, registry="https://[fd00::10]:5000")
    admin = kubeconfig_of(rendered, "admin.conf")
    assert admin["clusters"][0]["name"] == "prod"
    assert admin["clusters"][0]["cluster"]["server"] == "https://[fd00::100]:6443"
    assert admin["current-context"] == "kubernetes-admin@prod"
    kubelet_conf = kubeconfig_of(rendered, "kubelet.conf")
    assert kubelet_conf["clusters"][0]["cluster"]["server"] == "https://[fd00::10]:6443"
    hosts = tomllib.loads(rendered["/etc/containerd/certs.d/ghcr.io/hosts.toml"].content.decode())
    assert hosts["server"] == "https://[fd00::10]:5000/v2/ghcr.io"


def test_kubeconfig_with_dns_endpoint(authorities, cp1):
    cfg = config(**{"apiServer.host": "api.corp.example"})
    rendered = render.render_node(cfg, cp1, authorities, registry=REGISTRY)
    admin = kubeconfig_of(rendered, "admin.conf")
    assert admin["clusters"][0]["cluster"]["server"] == "https://api.corp.example:6443"


# --- kubelet ---------------------------------------------------------------------------------


def test_kubelet_config(cp1_files):
    data = yaml.safe_load(cp1_files["/var/lib/kubelet/config.yaml"].content)
    assert data == {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "systemd",
        "clusterDNS": ["10.96.0.10"],
        "clusterDomain": "cluster.local",
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "readOnlyPort": 0,
        "rotateCertificates": True,
        "staticPodPath": "/etc/kubernetes/manifests",
    }


def test_kubelet_config_custom_domain_services_and_resolved(cp1):
    cfg = config(**{"kubernetes.dnsDomain": "corp.example", "networks.services": "172.16.0.0/16"})
    data = kubelet.config(cfg, cp1, systemd_resolved=True)
    assert data["clusterDNS"] == ["172.16.0.10"]
    assert data["clusterDomain"] == "corp.example"
    assert data["resolvConf"] == "/run/systemd/resolve/resolv.conf"


def test_kubeadm_flags_env(cp1_files):
    content = cp1_files["/var/lib/kubelet/kubeadm-flags.env"].content
    assert content == (
        b'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/'
        b"containerd.sock --node-ip=10.0.0.10 --pod-infra-container-image="
        b'registry.k8s.io/pause:3.10"\n'
    )
    flags = kubelet.parse_flags_env(content)
    assert flags == sorted(flags)


def test_kubeadm_flags_hostname_override():
    node = Node("w1", "10.0.0.20", frozenset({"node"}), hostname="host-17")
    assert kubelet.flags(node) == [
        "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock",
        "--hostname-override=w1",
        "--node-ip=10.0.0.20",
        "--pod-infra-container-image=registry.k8s.io/pause:3.10",
    ]


def test_kubeadm_flags_node_ip_is_the_workload_plane_ip():
    """The kubelet's InternalIP is where kube-router peers and tunnels: the workload plane."""
    node = Node("w1", "10.0.0.20", frozenset({"node"}), workload_ip="10.1.0.20")
    assert "--node-ip=10.1.0.20" in kubelet.flags(node)
    assert node.ip == "10.0.0.20"  # advertise address, etcd URLs, SANs stay on it


def test_workload_ip_defaults_to_the_control_plane_ip_and_is_canonical():
    assert Node("w1", "10.0.0.20", frozenset({"node"})).workload_ip == "10.0.0.20"
    node = Node("w1", "fd00::14", frozenset({"node"}), workload_ip="FD01:0::14")
    assert node.workload_ip == "fd01::14"
    assert "--node-ip=fd01::14" in kubelet.flags(node)


def test_workload_ip_error_names_the_node():
    with pytest.raises(RenderError) as info:
        Node("w1", "10.0.0.20", frozenset({"node"}), workload_ip="10.1.0.300")
    assert str(info.value) == (
        "workload-plane IP of node w1: '10.1.0.300' is not an IP address; give an IPv4 or "
        "IPv6 address, for example 10.0.0.10 or fd00::10"
    )


def test_dropin(cp1_files):
    text = cp1_files["/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"].content.decode()
    assert (
        'Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/'
        'bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"\n' in text
    )
    assert 'Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"\n' in text
    assert "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n" in text
    assert "EnvironmentFile=-/etc/default/kubelet\n" in text
    assert text.endswith(
        "ExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS "
        "$KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n"
    )
    assert (
        "EnvironmentFile=-/etc/sysconfig/kubelet\n" in kubelet.dropin(os_family="RedHat").decode()
    )
    with pytest.raises(RenderError, match="os_family is 'Arch'"):
        kubelet.dropin(os_family="Arch")


# --- containerd ------------------------------------------------------------------------------


def test_containerd_config_parses(cp1_files):
    data = tomllib.loads(cp1_files["/etc/containerd/config.toml"].content.decode())
    assert data["version"] == 2
    cri = data["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == images.sandbox_image() == "registry.k8s.io/pause:3.10"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"]["SystemdCgroup"] is True
    assert cri["containerd"]["default_runtime_name"] == "runc"
    assert cri["registry"]["config_path"] == "/etc/containerd/certs.d"


def test_sandbox_image_is_the_same_for_kubelet_and_containerd(cp1_files):
    flags = kubelet.parse_flags_env(cp1_files["/var/lib/kubelet/kubeadm-flags.env"].content)
    config_toml = tomllib.loads(cp1_files["/etc/containerd/config.toml"].content.decode())
    sandbox = config_toml["plugins"]["io.containerd.grpc.v1.cri"]["sandbox_image"]
    assert f"--pod-infra-container-image={sandbox}" in flags


def test_hosts_toml_for_every_registry(cp1_files):
    for registry in ("registry.k8s.io", "docker.io", "quay.io", "ghcr.io"):
        path = f"/etc/containerd/certs.d/{registry}/hosts.toml"
        data = tomllib.loads(cp1_files[path].content.decode())
        root = f"{REGISTRY}/v2/{registry}"
        settings = {
            "capabilities": ["pull", "resolve"],
            "ca": "/etc/kubernetes/pki/ca.crt",
            "override_path": True,
        }
        assert data == {"server": root, **settings, "host": {root: settings}}


def test_registry_port_comes_from_the_port_matrix():
    assert containerd.registry_port() == 8443
    assert containerd.default_registry_endpoint("fd00::10") == "https://[fd00::10]:8443"


def test_unknown_registry_has_no_mirror():
    with pytest.raises(RenderError, match="registry 'example.com' is not mirrored"):
        containerd.mirror_url("example.com", REGISTRY)


def test_toml_string_escapes():
    value = 'a"b\\c\nd\x7f'
    assert tomllib.loads(f"x = {containerd.toml_string(value)}")["x"] == value


@pytest.mark.parametrize(
    "bad", ["http://10.0.0.10:5000", "https://10.0.0.10:5000/v2", "10.0.0.10:5000", "https://:5"]
)
def test_bad_registry_endpoint_is_named(bad):
    with pytest.raises(RenderError, match=r"--registry: .* is not an https://HOST\[:PORT\] URL"):
        containerd.registry_endpoint(bad, "--registry")


def test_registry_endpoint_normalized():
    assert containerd.registry_endpoint("https://[FD00::1]:5000") == "https://[fd00::1]:5000"
    assert containerd.registry_endpoint("https://reg.example/") == "https://reg.example"


# --- images ----------------------------------------------------------------------------------


def test_pinned_images():
    pinned = images.all_images()
    assert images.kubernetes_version() == "v1.33.5"
    assert {name: image.reference for name, image in pinned.items()} == {
        "kube-apiserver": "registry.k8s.io/kube-apiserver:v1.33.5",
        "kube-controller-manager": "registry.k8s.io/kube-controller-manager:v1.33.5",
        "kube-scheduler": "registry.k8s.io/kube-scheduler:v1.33.5",
        "kube-proxy": "registry.k8s.io/kube-proxy:v1.33.5",
        "etcd": "registry.k8s.io/etcd:3.5.21-0",
        "pause": "registry.k8s.io/pause:3.10",
        "coredns": "registry.k8s.io/coredns/coredns:v1.12.0",
        "kube-router": "docker.io/cloudnativelabs/kube-router:v2.11.1",
    }


def test_images_yaml_validation():
    good = {"repository": "r", "tag": "t", "digest": "sha256:" + "a" * 64}
    version, parsed = images.parse_images({"kubernetesVersion": "v1.33.5", "images": {"x": good}})
    # The upstream digest may name a manifest list the archive does not hold: no pin by it.
    assert parsed["x"].pinned_reference == "r:t"
    served = images.with_archive_digests(parsed, {"r:t": "sha256:" + "b" * 64})
    assert served["x"].pinned_reference == "r:t@sha256:" + "b" * 64
    with pytest.raises(RenderError, match=r"images.x.digest is 'md5:1'"):
        images.parse_images(
            {"kubernetesVersion": "v1.33.5", "images": {"x": {**good, "digest": "md5:1"}}}
        )
    with pytest.raises(RenderError, match=r"kubernetesVersion is '1.33'"):
        images.parse_images({"kubernetesVersion": "1.33", "images": {"x": good}})
    with pytest.raises(RenderError, match=r"image 'nope' is not pinned"):
        images.image("nope")


# --- writer ----------------------------------------------------------------------------------


def test_write_tree_modes_and_atomic_replace(tmp_path, cp1_files):
    write_tree(cp1_files, str(tmp_path))
    for path, mode in REFERENCE_FILES.items():
        target = tmp_path / path.lstrip("/")
        assert target.stat().st_mode & 0o777 == mode, path
        assert target.read_bytes() == cp1_files[path].content
    for path, mode in REFERENCE_DIRS.items():
        assert (tmp_path / path.lstrip("/")).stat().st_mode & 0o777 == mode, path
    manifest = tmp_path / "etc/kubernetes/manifests/etcd.yaml"
    before = manifest.stat().st_ino
    write_tree(
        {"/etc/kubernetes/manifests/etcd.yaml": RenderedFile(b"new\n", 0o600)}, str(tmp_path)
    )
    assert manifest.read_bytes() == b"new\n"
    assert manifest.stat().st_ino != before  # replaced by rename, never rewritten in place
    leftovers = [n for n in os.listdir(manifest.parent) if n.startswith(".")]
    assert leftovers == []


def test_layout_root(tmp_path, authorities, cp1):
    layout = Layout(str(tmp_path))
    rendered = render.render_node(config(), cp1, authorities, registry=REGISTRY, layout=layout)
    assert all(path.startswith(str(tmp_path) + "/") for path in rendered)
    write_tree(rendered, "/")
    assert (tmp_path / "etc/kubernetes/manifests/etcd.yaml").exists()
