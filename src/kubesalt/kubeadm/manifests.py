"""The control-plane static pods, as kubeadm 1.33 and 1.34 build them.

Sources: kubeadm `phases/controlplane/manifests.go` and `volumes.go`, `phases/etcd/local.go`,
`util/staticpod/utils.go` (kubeadm 1.33 and 1.34; what differs is in `releases`). Each `*_command` function returns the
full command list (sorted like kubeadm's `ArgumentsToCommand`); each `*_pod` function returns
the pod as plain data, ready for `yaml.safe_dump`. The shared pieces (probes, volumes, the
pod skeleton, the config digest) are in `staticpod`.

Pure: which optional host CA directories exist is given as `existing_paths`.
"""

from __future__ import annotations

from kubesalt import ports, urls
from kubesalt import roles as _roles
from kubesalt.etcd import client_url, peer_url
from kubesalt.kubeadm import RenderError, releases
from kubesalt.kubeadm.model import Layout, Node
from kubesalt.kubeadm.staticpod import (
    ANNOTATION_CONFIG_DIGEST,
    host_path,
    optional_ca_volumes,
    probe,
    proxy_env,
    static_pod,
)

FLEXVOLUME_DIR = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
SYSTEM_CA_DIR = "/etc/ssl/certs"
ANNOTATION_APISERVER_ENDPOINT = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"
ANNOTATION_ETCD_URLS = "kubeadm.kubernetes.io/etcd.advertise-client-urls"


def arguments_to_command(binary: str, arguments: dict[str, str]) -> list[str]:
    """`[binary, --name=value, ...]` sorted by name then value (kubeadm `ArgumentsToCommand`)."""
    pairs = sorted(arguments.items())
    return [binary] + [f"--{name}={value}" for name, value in pairs]


def apiserver_command(cfg: dict, node: Node, layout: Layout | None = None) -> list[str]:
    """The kube-apiserver command (`getAPIServerCommand`, local etcd)."""
    layout = layout or Layout()
    pki = layout.pki
    args = {
        "advertise-address": node.ip,
        "allow-privileged": "true",
        "authorization-mode": "Node,RBAC",
        "client-ca-file": pki("ca.crt"),
        "enable-admission-plugins": "NodeRestriction",
        "enable-bootstrap-token-auth": "true",
        "etcd-cafile": pki("etcd/ca.crt"),
        "etcd-certfile": pki("apiserver-etcd-client.crt"),
        "etcd-keyfile": pki("apiserver-etcd-client.key"),
        "etcd-servers": client_url(node.loopback),
        "kubelet-client-certificate": pki("apiserver-kubelet-client.crt"),
        "kubelet-client-key": pki("apiserver-kubelet-client.key"),
        "kubelet-preferred-address-types": "InternalIP,ExternalIP,Hostname",
        "proxy-client-cert-file": pki("front-proxy-client.crt"),
        "proxy-client-key-file": pki("front-proxy-client.key"),
        "requestheader-allowed-names": "front-proxy-client",
        "requestheader-client-ca-file": pki("front-proxy-ca.crt"),
        "requestheader-extra-headers-prefix": "X-Remote-Extra-",
        "requestheader-group-headers": "X-Remote-Group",
        "requestheader-username-headers": "X-Remote-User",
        "secure-port": str(ports.port_number("kube-apiserver", cfg)),
        "service-account-issuer": f"https://kubernetes.default.svc.{cfg['kubernetes']['dnsDomain']}",
        "service-account-key-file": pki("sa.pub"),
        "service-account-signing-key-file": pki("sa.key"),
        "service-cluster-ip-range": cfg["networks"]["services"],
        "tls-cert-file": pki("apiserver.crt"),
        "tls-private-key-file": pki("apiserver.key"),
    }
    return arguments_to_command("kube-apiserver", args)


def etcd_command(cfg: dict, node: Node, layout: Layout | None = None) -> list[str]:
    """The etcd command (`getEtcdCommand`): alone on the first node, joining elsewhere;
    etcd 3.6's graduated flags from Kubernetes 1.34 on."""
    layout = layout or Layout()
    pki = layout.pki
    args = {
        "advertise-client-urls": client_url(node.ip),
        "cert-file": pki("etcd/server.crt"),
        "client-cert-auth": "true",
        "data-dir": layout.etcd_data_dir,
        **_etcd_version_flags(releases.of_node(cfg, node)),
        "initial-advertise-peer-urls": peer_url(node.ip),
        "key-file": pki("etcd/server.key"),
        "listen-client-urls": f"{client_url(node.loopback)},{client_url(node.ip)}",
        "listen-metrics-urls": urls.url("http", node.loopback, ports.port_number("etcd-metrics")),
        "listen-peer-urls": peer_url(node.ip),
        "name": node.name,
        "peer-cert-file": pki("etcd/peer.crt"),
        "peer-client-cert-auth": "true",
        "peer-key-file": pki("etcd/peer.key"),
        "peer-trusted-ca-file": pki("etcd/ca.crt"),
        "snapshot-count": "10000",
        "trusted-ca-file": pki("etcd/ca.crt"),
    }
    if node.first and not node.rejoined:
        args["initial-cluster"] = f"{node.name}={peer_url(node.ip)}"
    else:
        if len(node.etcd_members) < 2:
            raise RenderError(
                f"node {node.name} joins an existing etcd cluster (it is not the first node) "
                "but no other etcd member is given; list the current members (--peer "
                "NAME=IP), or mark the node as the first one"
            )
        members = [f"{name}={peer_url(ip)}" for name, ip in node.etcd_members]
        args["initial-cluster"] = ",".join(members)
        args["initial-cluster-state"] = "existing"
    return arguments_to_command("etcd", args)


def _etcd_version_flags(release: releases.Release) -> dict[str, str]:
    """The initial corruption check and the watch progress interval, in the form the
    release's etcd takes (kubeadm `getEtcdCommand`)."""
    if release.etcd_graduated_flags:
        return {"feature-gates": "InitialCorruptCheck=true", "watch-progress-notify-interval": "5s"}
    return {
        "experimental-initial-corrupt-check": "true",
        "experimental-watch-progress-notify-interval": "5s",
    }


def controller_manager_command(
    cfg: dict, node: Node, layout: Layout | None = None, *, external_ca: bool | None = None
) -> list[str]:
    """The kube-controller-manager command (`getControllerManagerCommand`).

    `external_ca` is kubeadm's external-CA mode (ca.crt present, ca.key absent), in which
    the cluster-signing flags are empty. It defaults to "the node does not hold the CA key",
    i.e. it lacks the `ca` role.
    """
    layout = layout or Layout()
    if external_ca is None:
        external_ca = not node.has(_roles.CA)
    pki = layout.pki
    kubeconfig = layout.kubeconfig("controller-manager.conf")
    args = {
        "authentication-kubeconfig": kubeconfig,
        "authorization-kubeconfig": kubeconfig,
        "bind-address": "127.0.0.1",
        "client-ca-file": pki("ca.crt"),
        "cluster-signing-cert-file": "" if external_ca else pki("ca.crt"),
        "cluster-signing-key-file": "" if external_ca else pki("ca.key"),
        "controllers": "*,bootstrapsigner,tokencleaner",
        "kubeconfig": kubeconfig,
        "leader-elect": "true",
        "requestheader-client-ca-file": pki("front-proxy-ca.crt"),
        "root-ca-file": pki("ca.crt"),
        "service-account-private-key-file": pki("sa.key"),
        "use-service-account-credentials": "true",
    }
    if cfg["kubernetes"].get("clusterName"):
        args["cluster-name"] = cfg["kubernetes"]["clusterName"]
    if cfg["networks"].get("pods"):
        args["allocate-node-cidrs"] = "true"
        args["cluster-cidr"] = cfg["networks"]["pods"]
        args["service-cluster-ip-range"] = cfg["networks"]["services"]
    return arguments_to_command("kube-controller-manager", args)


def scheduler_command(cfg: dict, node: Node, layout: Layout | None = None) -> list[str]:
    """The kube-scheduler command (`getSchedulerCommand`)."""
    del cfg, node  # uniform signature
    layout = layout or Layout()
    kubeconfig = layout.kubeconfig("scheduler.conf")
    args = {
        "authentication-kubeconfig": kubeconfig,
        "authorization-kubeconfig": kubeconfig,
        "bind-address": "127.0.0.1",
        "kubeconfig": kubeconfig,
        "leader-elect": "true",
    }
    return arguments_to_command("kube-scheduler", args)


def _annotations(base: dict[str, str], digest: str | None) -> dict[str, str]:
    result = dict(base)
    if digest:
        result[ANNOTATION_CONFIG_DIGEST] = digest
    return result


def apiserver_pod(
    cfg: dict,
    node: Node,
    *,
    layout: Layout | None = None,
    existing_paths: frozenset[str] = frozenset(),
    digest: str | None = None,
) -> dict:
    """The kube-apiserver static pod."""
    layout = layout or Layout()
    port = ports.port_number("kube-apiserver", cfg)
    probes = {
        "liveness": probe(node.ip, "/livez", port, "HTTPS", "liveness"),
        "readiness": probe(node.ip, "/readyz", port, "HTTPS", "readiness"),
        "startup": probe(node.ip, "/livez", port, "HTTPS", "startup"),
    }
    volumes = [
        host_path("ca-certs", SYSTEM_CA_DIR, "DirectoryOrCreate", True),
        host_path("k8s-certs", layout.pki_dir, "DirectoryOrCreate", True),
        *optional_ca_volumes(existing_paths),
    ]
    endpoint = {ANNOTATION_APISERVER_ENDPOINT: urls.host_port(node.ip, port)}
    return static_pod(
        "kube-apiserver",
        apiserver_command(cfg, node, layout),
        probes=probes,
        volumes=volumes,
        requests={"cpu": "250m"},
        annotations=_annotations(endpoint, digest),
        version=releases.node_version(cfg, node),
        env=proxy_env(cfg),
    )


def etcd_pod(
    cfg: dict, node: Node, *, layout: Layout | None = None, digest: str | None = None
) -> dict:
    """The etcd static pod (read-write volumes, HTTP probes on the local metrics port)."""
    layout = layout or Layout()
    host = node.loopback
    metrics = ports.port_number("etcd-metrics")
    probes = {
        "liveness": probe(host, "/livez", metrics, "HTTP", "liveness"),
        "readiness": probe(host, "/readyz", metrics, "HTTP", "readiness"),
        "startup": probe(host, "/readyz", metrics, "HTTP", "startup"),
    }
    volumes = [
        host_path("etcd-certs", layout.pki("etcd"), "DirectoryOrCreate", False),
        host_path("etcd-data", layout.etcd_data_dir, "DirectoryOrCreate", False),
    ]
    urls = {ANNOTATION_ETCD_URLS: client_url(node.ip)}
    return static_pod(
        "etcd",
        etcd_command(cfg, node, layout),
        probes=probes,
        volumes=volumes,
        requests={"cpu": "100m", "memory": "100Mi"},
        annotations=_annotations(urls, digest),
        version=releases.node_version(cfg, node),
    )


def controller_manager_pod(
    cfg: dict,
    node: Node,
    *,
    layout: Layout | None = None,
    existing_paths: frozenset[str] = frozenset(),
    digest: str | None = None,
    external_ca: bool | None = None,
) -> dict:
    """The kube-controller-manager static pod (no readiness probe)."""
    layout = layout or Layout()
    host = "127.0.0.1"
    probes = {
        "liveness": probe(
            host, "/healthz", ports.port_number("kube-controller-manager"), "HTTPS", "liveness"
        ),
        "startup": probe(
            host, "/healthz", ports.port_number("kube-controller-manager"), "HTTPS", "startup"
        ),
    }
    volumes = [
        host_path("ca-certs", SYSTEM_CA_DIR, "DirectoryOrCreate", True),
        host_path("flexvolume-dir", FLEXVOLUME_DIR, "DirectoryOrCreate", False),
        host_path("k8s-certs", layout.pki_dir, "DirectoryOrCreate", True),
        host_path("kubeconfig", layout.kubeconfig("controller-manager.conf"), "FileOrCreate", True),
        *optional_ca_volumes(existing_paths),
    ]
    return static_pod(
        "kube-controller-manager",
        controller_manager_command(cfg, node, layout, external_ca=external_ca),
        probes=probes,
        volumes=volumes,
        requests={"cpu": "200m"},
        annotations=_annotations({}, digest),
        version=releases.node_version(cfg, node),
        env=proxy_env(cfg),
    )


def scheduler_pod(
    cfg: dict, node: Node, *, layout: Layout | None = None, digest: str | None = None
) -> dict:
    """The kube-scheduler static pod (no readiness probe)."""
    layout = layout or Layout()
    host = "127.0.0.1"
    probes = {
        "liveness": probe(
            host, "/healthz", ports.port_number("kube-scheduler"), "HTTPS", "liveness"
        ),
        "startup": probe(host, "/healthz", ports.port_number("kube-scheduler"), "HTTPS", "startup"),
    }
    volumes = [host_path("kubeconfig", layout.kubeconfig("scheduler.conf"), "FileOrCreate", True)]
    return static_pod(
        "kube-scheduler",
        scheduler_command(cfg, node, layout),
        probes=probes,
        volumes=volumes,
        requests={"cpu": "100m"},
        annotations=_annotations({}, digest),
        version=releases.node_version(cfg, node),
        env=proxy_env(cfg),
    )
