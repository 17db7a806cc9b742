"""Every file a node has, by path, without rendering any of it; and what goes with a role.

The `absent` states remove what these functions list, so a file the renderer writes for a
role cannot be forgotten by the state that undoes the role: `role_files` is the difference
between the node with the role and the node without it, computed from the same tables
`render_node` uses. Paths never depend on a node's IP, so a node that has not published one
yet (its first highstate) needs none: a documentation address stands in.
"""

from __future__ import annotations

from kubesalt import roles as _roles
from kubesalt.kubeadm import RenderError, containerd, releases, render
from kubesalt.kubeadm.certs import CertSpec, ca_files_for, node_certificates
from kubesalt.kubeadm.model import CA_FILES, Layout, Node

PKI = "pki"
KUBECONFIG = "kubeconfig"
MANIFESTS = "manifests"
KUBELET = "kubelet"
CONTAINERD = "containerd"
COMPONENTS = (MANIFESTS, KUBECONFIG, PKI, KUBELET, CONTAINERD)
# Client certificates embedded in kubeconfigs are also kept here (x509_v2 renews them from
# these files); kubeadm has no such files.
KUBECONFIG_CERT_DIR = "kubeconfig"
# Stands in for a node's IP when only paths are wanted (RFC 5737 documentation range; not
# 192.0.2.0/24, which is the lab host's own network).
PATHS_ONLY_IP = "203.0.113.1"


def cert_files(spec: CertSpec, layout: Layout) -> tuple[str, str]:
    """The certificate and key files of `spec`: its own, or, for a client certificate
    embedded in a kubeconfig, `pki/kubeconfig/<kind>.crt|.key`."""
    if spec.cert_path:
        return spec.cert_path, spec.key_path
    base = layout.pki(f"{KUBECONFIG_CERT_DIR}/{spec.kind}")
    return f"{base}.crt", f"{base}.key"


def ca_key_files(layout: Layout) -> frozenset[str]:
    """The CA private keys: they never leave the CA minion and no absent state removes them."""
    return frozenset(layout.pki(f"{base}.key") for base in CA_FILES.values())


def node_files(cfg: dict, node: Node, layout: Layout) -> dict[str, str]:
    """Every file `node` has, mapped to its component (`pki`, `kubeconfig`, `manifests`,
    `kubelet`, `containerd`): what `render_node` writes plus the kubeconfig client
    certificates kubesalt.pki keeps."""
    files: dict[str, str] = {}
    for kind, with_key in ca_files_for(node).items():
        base = layout.pki(CA_FILES[kind])
        files[f"{base}.crt"] = PKI
        if with_key:
            files[f"{base}.key"] = PKI
    if node.control_plane or node.has(_roles.CA):
        files[layout.pki("sa.key")] = PKI
        files[layout.pki("sa.pub")] = PKI
    for spec in node_certificates(cfg, node, layout):
        files.update(dict.fromkeys(cert_files(spec, layout), PKI))
        if spec.kubeconfig_path:
            files[spec.kubeconfig_path] = KUBECONFIG
    for pod in render.static_pods(node):
        files[render.manifest_path(layout, pod)] = MANIFESTS
    if _roles.runs_kubelet(node.roles):
        kubelet_paths = render.kubelet_paths(layout, releases.of_node(cfg, node))
        files.update(dict.fromkeys(kubelet_paths, KUBELET))
        files.update(dict.fromkeys(containerd.paths(layout), CONTAINERD))
    return files


def _paths_node(name: str, roles) -> Node:
    """The `Node` called `name` with `roles`, for paths. With control-plane and etcd it is
    taken as the first node, whose files are a superset (`super-admin.conf`): an absent
    state then removes them wherever they are, also from a first node that the inventory
    retired when it lost the role."""
    first = frozenset(roles) >= _roles.INIT_ROLES
    return Node(name, PATHS_ONLY_IP, frozenset(roles), first=first)


def _ordered(paths, components: dict[str, str]) -> list[str]:
    """Static pods first (the kubelet stops them before their files go), then by path."""
    return sorted(paths, key=lambda path: (components[path] != MANIFESTS, path))


def role_files(
    cfg: dict,
    name: str,
    role: str,
    roles_by_node: dict[str, frozenset[str]],
    layout: Layout,
    components: tuple[str, ...] = COMPONENTS,
) -> list[str]:
    """The files node `name` has because of `role`, limited to `components`: those of the
    node with `role` that the node without it does not have.

    `roles_by_node` is the inventory; the node's own entry may hold `role` or not (the
    inventory drops it before the highstate that undoes it; remove_node cleans up while
    the node is still declared). The control plane goes with etcd, which it needs; the
    CA minion's CA files are never listed (the `ca` role is only removed by an explicit
    operation), nor is any CA key.
    """
    if role not in _roles.REMOVABLE_ROLES:
        raise RenderError(
            f"role {role!r} has no absent state; roles undone by a highstate: "
            f"{', '.join(_roles.REMOVABLE_ROLES)}"
        )
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown:
        raise RenderError(
            f"component(s) {', '.join(map(repr, unknown))} unknown; valid: {', '.join(COMPONENTS)}"
        )
    now = frozenset(roles_by_node.get(name, ()))
    # A role this one needs (etcd for the control plane) is on both sides, so that only
    # the role's own files differ; a role that needs this one goes with it.
    needs = _roles.REQUIRES.get(role, frozenset())
    with_role = now | {role} | needs
    without = (now - {role} - _roles.needed_by(role)) | needs
    had = node_files(cfg, _paths_node(name, with_role), layout)
    kept = node_files(cfg, _paths_node(name, without), layout) if without else {}
    gone = [p for p, c in had.items() if p not in kept and c in components]
    return _ordered(set(gone) - ca_key_files(layout), had)


def stale_files(cfg: dict, node: Node, component: str, layout: Layout, is_ca: bool) -> list[str]:
    """The files of `component` a node can have that `node` does not get: another
    Kubernetes release's (instance-config.yaml of 1.34 on a node moved back to 1.33). Paths
    only: nothing is rendered."""
    written = node_files(cfg, node, layout)
    return [
        p for p in component_files(cfg, node.name, component, layout, is_ca) if p not in written
    ]


def component_files(cfg: dict, name: str, component: str, layout: Layout, is_ca: bool) -> list[str]:
    """Every file of `component` a node can have, for the component's absent state (a
    reset): those of a node with every role. On the CA minion (`is_ca`) the CA
    certificates and the service-account key stay: the cluster depends on them; CA keys
    stay everywhere."""
    if component not in COMPONENTS:
        raise RenderError(f"component {component!r} unknown; valid: {', '.join(COMPONENTS)}")
    everything = node_files(cfg, _paths_node(name, _roles.ROLES), layout)
    if component == KUBELET:  # whichever release wrote them
        for path in render.kubelet_paths_of_every_release(layout):
            everything.setdefault(path, KUBELET)
    kept = set(ca_key_files(layout))
    if is_ca:
        ca_only = _paths_node(name, (_roles.CA,))
        kept |= set(node_files(cfg, ca_only, layout))
    wanted = [p for p, c in everything.items() if c == component and p not in kept]
    return _ordered(wanted, everything)
