"""Every file a node gets for its roles, and where they go.

`render_node` composes the builders: PKI (issued locally by `pki` from the given
authorities), kubeconfigs, static pod manifests (with the config-digest annotation computed
from the files rendered alongside), kubelet files and containerd configuration. Salt states
use the builders one by one (certificates come from x509_v2 there); the preview command and
the tests use `render_node` and `write_tree`.

Manifests are dumped with `yaml.safe_dump(sort_keys=True)`: kubeadm marshals the pod to JSON
and then to YAML (sigs.k8s.io/yaml), which orders keys alphabetically too.
"""

from __future__ import annotations

import datetime
import posixpath

import yaml

from kubesalt import roles as _roles
from kubesalt.kubeadm import (
    RenderError,
    containerd,
    kubeconfig,
    kubelet,
    manifests,
    releases,
    staticpod,
)
from kubesalt.kubeadm.certs import ca_files_for, key_algorithm, node_certificates
from kubesalt.kubeadm.files import Rendered, RenderedDirectory, RenderedFile, write_tree
from kubesalt.kubeadm.images import check_version
from kubesalt.kubeadm.model import CA_FILES, Layout, Node
from kubesalt.kubeadm.pki import Authorities, issue

__all__ = [
    "RenderedDirectory",
    "RenderedFile",
    "containerd_files",
    "kubelet_files",
    "manifest_file",
    "manifest_files",
    "manifest_yaml",
    "node_files",
    "render_node",
    "static_pods",
    "write_tree",
]

CERT_MODE = 0o644
KEY_MODE = 0o600
KUBECONFIG_MODE = 0o600
MANIFEST_MODE = 0o600
KUBELET_FILE_MODE = 0o644


def manifest_yaml(pod: dict) -> bytes:
    """A static pod as YAML, keys sorted (as kubeadm writes it), lines never folded."""
    return yaml.safe_dump(pod, default_flow_style=False, sort_keys=True, width=1 << 30).encode()


def directories(node: Node, layout: Layout) -> dict[str, RenderedDirectory]:
    """The directories a node gets, with kubeadm's modes."""
    dirs = {}
    if node.roles & _roles.KUBELET_ROLES or node.has(_roles.CA):
        dirs[layout.kubernetes_dir] = RenderedDirectory(0o755)
        dirs[layout.pki_dir] = RenderedDirectory(0o755)
    if node.control_plane or node.has(_roles.ETCD) or node.has(_roles.CA):
        dirs[layout.pki("etcd")] = RenderedDirectory(0o755)
    if node.control_plane or node.has(_roles.ETCD):
        dirs[layout.manifests_dir] = RenderedDirectory(0o700)
    if node.has(_roles.ETCD):
        dirs[layout.etcd_data_dir] = RenderedDirectory(0o700)
    if node.roles & _roles.KUBELET_ROLES:
        dirs[layout.manifests_dir] = RenderedDirectory(0o700)
        dirs[layout.kubelet_dir] = RenderedDirectory(0o700)
        dirs[layout.kubelet_dropin_dir] = RenderedDirectory(0o755)
        dirs[layout.containerd_dir] = RenderedDirectory(0o755)
        dirs[containerd.certs_dir(layout)] = RenderedDirectory(0o755)
        for registry in containerd.MIRRORED_REGISTRIES:
            dirs[posixpath.join(containerd.certs_dir(layout), registry)] = RenderedDirectory(0o755)
    return dirs


def _pki_files(
    cfg: dict, node: Node, authorities: Authorities, layout: Layout, now: datetime.datetime
) -> dict[str, RenderedFile]:
    algorithm = key_algorithm(cfg)
    files: dict[str, RenderedFile] = {}
    for kind, with_key in ca_files_for(node).items():
        issued = authorities.signer(kind)
        base = layout.pki(CA_FILES[kind])
        files[f"{base}.crt"] = RenderedFile(issued.cert_pem, CERT_MODE)
        if with_key:
            files[f"{base}.key"] = RenderedFile(issued.key_pem, KEY_MODE)
    if node.control_plane or node.has(_roles.CA):
        for path, item in authorities.files(layout.pki_dir).items():
            if posixpath.basename(path) in ("sa.key", "sa.pub"):
                files[path] = item
    for spec in node_certificates(cfg, node, layout):
        ca = authorities.signer(spec.signer)
        issued = issue(spec, ca, algorithm, now)
        if spec.cert_path:
            files[spec.cert_path] = RenderedFile(issued.cert_pem, CERT_MODE)
            files[spec.key_path] = RenderedFile(issued.key_pem, KEY_MODE)
        if spec.kubeconfig_path:
            content = kubeconfig.render(
                cfg, node, spec, ca.cert_pem, issued.cert_pem, issued.key_pem
            )
            files[spec.kubeconfig_path] = RenderedFile(content, KUBECONFIG_MODE)
    return files


def static_pods(node: Node) -> tuple[str, ...]:
    """The static pods `node` runs, by name (`etcd`, `kube-apiserver`, ...)."""
    pods = ("etcd",) if node.has(_roles.ETCD) else ()
    if node.control_plane:
        pods += ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    return pods


def manifest_file(
    cfg: dict,
    node: Node,
    layout: Layout,
    name: str,
    contents: dict[str, bytes],
    existing_paths: frozenset[str] = frozenset(),
) -> tuple[str, RenderedFile]:
    """The path and content of the static pod `name` of `node`. `contents` holds the
    certificates, keys and kubeconfigs it reads (by path): the config-digest annotation
    covers them."""
    if name not in static_pods(node):
        raise RenderError(
            f"node {node.name} (roles {', '.join(sorted(node.roles))}) runs no static pod "
            f"{name!r}; its static pods: {', '.join(static_pods(node)) or 'none'}"
        )
    builders = {
        "etcd": (manifests.etcd_command, manifests.etcd_pod, False),
        "kube-apiserver": (manifests.apiserver_command, manifests.apiserver_pod, True),
        "kube-controller-manager": (
            manifests.controller_manager_command,
            manifests.controller_manager_pod,
            True,
        ),
        "kube-scheduler": (manifests.scheduler_command, manifests.scheduler_pod, False),
    }
    command_of, pod_of, with_ca_dirs = builders[name]
    command = command_of(cfg, node, layout)
    digest = staticpod.config_digest(contents, staticpod.used_files(command, layout))
    extra = {"existing_paths": existing_paths} if with_ca_dirs else {}
    pod = pod_of(cfg, node, layout=layout, digest=digest, **extra)
    return manifest_path(layout, pod["metadata"]["name"]), RenderedFile(
        manifest_yaml(pod), MANIFEST_MODE
    )


def manifest_path(layout: Layout, name: str) -> str:
    """Where the static pod `name` lives: /etc/kubernetes/manifests/<name>.yaml."""
    return posixpath.join(layout.manifests_dir, f"{name}.yaml")


def manifest_files(
    cfg: dict,
    node: Node,
    layout: Layout,
    contents: dict[str, bytes],
    existing_paths: frozenset[str] = frozenset(),
) -> dict[str, RenderedFile]:
    """Every static pod manifest of `node`, by path (see `manifest_file`)."""
    return dict(
        manifest_file(cfg, node, layout, name, contents, existing_paths)
        for name in static_pods(node)
    )


def render_node(
    cfg: dict,
    node: Node,
    authorities: Authorities,
    *,
    registry: str | None = None,
    layout: Layout | None = None,
    existing_paths: frozenset[str] = frozenset(),
    systemd_resolved: bool = False,
    os_family: str = "Debian",
    now: datetime.datetime | None = None,
) -> Rendered:
    """Every file and directory `node` gets for its roles, by absolute path.

    `authorities` sign the node's certificates; `registry` is the bootstrap registry
    (`https://HOST:PORT`) containerd pulls every image from (required for nodes that run a
    kubelet); `existing_paths` lists the optional host CA directories that exist on the node.
    """
    layout = layout or Layout()
    check_version(cfg)
    now = now or datetime.datetime.now(datetime.UTC)
    rendered: Rendered = dict(directories(node, layout))
    files = _pki_files(cfg, node, authorities, layout, now)
    contents = {path: item.content for path, item in files.items()}
    files.update(manifest_files(cfg, node, layout, contents, existing_paths))
    files.update(
        node_files(
            cfg,
            node,
            layout,
            registry,
            systemd_resolved=systemd_resolved,
            os_family=os_family,
        )
    )
    rendered.update(files)
    return rendered


def kubelet_files(
    cfg: dict,
    node: Node,
    layout: Layout,
    *,
    systemd_resolved: bool = False,
    os_family: str = "Debian",
) -> dict[str, RenderedFile]:
    """config.yaml, kubeadm-flags.env and the kubelet drop-in (nodes that run a kubelet)."""
    if not node.roles & _roles.KUBELET_ROLES:
        return {}
    version = releases.node_version(cfg, node)
    config = kubelet.config_yaml(cfg, node, layout, systemd_resolved=systemd_resolved)
    config_path, flags_path, dropin_path, *instance_path = kubelet_paths(
        layout, releases.release(version)
    )
    files = {
        config_path: RenderedFile(config, KUBELET_FILE_MODE),
        flags_path: RenderedFile(kubelet.flags_env(node, version), KUBELET_FILE_MODE),
        dropin_path: RenderedFile(kubelet.dropin(layout, os_family), 0o644),
    }
    for path in instance_path:
        files[path] = RenderedFile(kubelet.instance_config_yaml(), KUBELET_FILE_MODE)
    return files


def kubelet_paths(layout: Layout, release: releases.Release | None = None) -> tuple[str, ...]:
    """config.yaml, kubeadm-flags.env and the drop-in 10-kubeadm.conf, by path; then
    instance-config.yaml when `release` has NodeLocalCRISocket."""
    paths = (
        posixpath.join(layout.kubelet_dir, "config.yaml"),
        posixpath.join(layout.kubelet_dir, "kubeadm-flags.env"),
        posixpath.join(layout.kubelet_dropin_dir, "10-kubeadm.conf"),
    )
    if release is not None and release.node_local_cri_socket:
        paths += (posixpath.join(layout.kubelet_dir, "instance-config.yaml"),)
    return paths


def kubelet_paths_of_every_release(layout: Layout) -> tuple[str, ...]:
    """The kubelet files of every supported release (a node that moved between releases
    may hold a file its current one does not write: instance-config.yaml after 1.34)."""
    every: list[str] = []
    for release in releases.RELEASES.values():
        every += [p for p in kubelet_paths(layout, release) if p not in every]
    return tuple(every)


def containerd_files(
    cfg: dict, node: Node, layout: Layout, registry: str | None
) -> dict[str, RenderedFile]:
    """config.toml (for the Kubernetes release `node` renders) and the hosts.toml of every
    mirrored registry (nodes that run a kubelet)."""
    if not node.roles & _roles.KUBELET_ROLES:
        return {}
    if registry is None:
        raise RenderError(
            f"node {node.name} runs containerd but no bootstrap registry endpoint was "
            "given; pass the registry as https://HOST:PORT"
        )
    return {
        path: RenderedFile(content, 0o644)
        for path, content in containerd.files(
            registry, layout, releases.node_version(cfg, node)
        ).items()
    }


def node_files(
    cfg: dict,
    node: Node,
    layout: Layout,
    registry: str | None,
    *,
    systemd_resolved: bool = False,
    os_family: str = "Debian",
) -> dict[str, RenderedFile]:
    """The kubelet and containerd files of `node`, by path."""
    files = kubelet_files(cfg, node, layout, systemd_resolved=systemd_resolved, os_family=os_family)
    files.update(containerd_files(cfg, node, layout, registry))
    return files
