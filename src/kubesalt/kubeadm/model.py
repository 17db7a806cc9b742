"""The node being rendered (`Node`) and where its files live (`Layout`).

`Layout` exists so that every path the renderer puts into a command line, a volume or a
kubeconfig can be moved under a root prefix: the integration tests run the real etcd with
the exact command of a rendered manifest whose paths all live in a temporary directory,
instead of rewriting strings afterwards. In production the root is `/` and every path is
kubeadm's default.
"""

from __future__ import annotations

import ipaddress
import posixpath
from dataclasses import dataclass

from kubesalt import roles as _roles
from kubesalt.kubeadm import RenderError
from kubesalt.names import NodeNameError, check_node_name

__all__ = ["Layout", "Node", "NodeNameError", "check_ip", "check_node_name", "is_ip", "is_ipv6"]


def is_ipv6(address: str) -> bool:
    """Tell whether `address` is an IPv6 address (False for IPv4 and DNS names)."""
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False


def is_ip(value: str) -> bool:
    """Tell whether `value` is an IP address (as opposed to a DNS name)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_ip(value: str, what: str) -> str:
    """Return the canonical text of the IP `value`, else raise `RenderError`."""
    try:
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        raise RenderError(
            f"{what}: {value!r} is not an IP address; give an IPv4 or IPv6 address, "
            "for example 10.0.0.10 or fd00::10"
        ) from None


@dataclass(frozen=True)
class Node:
    """One node as the renderer sees it.

    `ip` is the node's chosen control-plane IP (kubeadm's advertise address, etcd's URLs).
    `workload_ip` is its chosen workload-plane IP, the kubelet's `--node-ip` and so the
    Node's InternalIP, on which the CNI peers and tunnels; it defaults to `ip` (the two
    planes are one network unless `networks.workloadPlane.cidr` says otherwise). `first` marks
    the node that plays `kubeadm init`. `etcd_members` is the ordered etcd member list used
    by a joining etcd member (`--initial-cluster`), as `(name, ip)` pairs; the node itself is
    appended when it is missing, which is where `etcdctl member add` puts a new member.
    `hostname` is the host's own name when it differs from `name` (kubelet
    `--hostname-override`). `rejoined` marks a first node that lost its etcd data (its
    machine restored from a backup) and joined the existing etcd cluster again: it keeps
    what `kubeadm init` gave it (super-admin.conf) but its etcd joins like any member.
    `kubernetes_version` is the release the inventory records for the node (`v1.34.2`);
    None renders the cluster's (`kubesalt.kubeadm.releases.node_version`).
    """

    name: str
    ip: str
    roles: frozenset[str]
    first: bool = False
    etcd_members: tuple[tuple[str, str], ...] = ()
    hostname: str | None = None
    rejoined: bool = False
    workload_ip: str | None = None
    kubernetes_version: str | None = None

    def __post_init__(self) -> None:
        check_node_name(self.name, "node name")
        object.__setattr__(self, "ip", check_ip(self.ip, f"IP of node {self.name}"))
        workload_ip = self.ip if self.workload_ip is None else self.workload_ip
        object.__setattr__(
            self, "workload_ip", check_ip(workload_ip, f"workload-plane IP of node {self.name}")
        )
        roles = frozenset(self.roles)
        unknown = sorted(_roles.unknown(roles))
        if unknown:
            raise RenderError(
                f"roles of node {self.name}: unknown role(s) {', '.join(unknown)}; "
                f"valid roles: {_roles.listing()}"
            )
        if not roles:
            raise RenderError(
                f"roles of node {self.name}: empty; give at least one of {_roles.listing()}"
            )
        object.__setattr__(self, "roles", roles)
        if self.first and not roles >= _roles.INIT_ROLES:
            raise RenderError(
                f"node {self.name} is marked first (kubeadm init) but has roles "
                f"{', '.join(sorted(roles))}; the first node needs "
                f"{' and '.join(sorted(_roles.INIT_ROLES))}"
            )
        members = []
        for name, ip in self.etcd_members:
            check_node_name(name, "etcd member name")
            members.append((name, check_ip(ip, f"IP of etcd member {name}")))
        names = [name for name, _ in members]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise RenderError(
                f"etcd members: {', '.join(duplicates)} listed more than once; "
                "give each member once"
            )
        if self.rejoined and not self.first:
            raise RenderError(
                f"node {self.name} is marked rejoined but not first: only the first node "
                "(kubeadm init) rejoins etcd after a restore; drop the rejoined mark"
            )
        if self.first and not self.rejoined and [m for m in members if m[0] != self.name]:
            raise RenderError(
                f"node {self.name} is marked first but other etcd members are given "
                f"({', '.join(n for n in names if n != self.name)}); the first node starts "
                "etcd alone, as kubeadm init does: drop the peers or the first mark"
            )
        for name, ip in members:
            if name == self.name and ip != self.ip:
                raise RenderError(
                    f"etcd members: {self.name} is listed with {ip} but the node's IP is "
                    f"{self.ip}; give the same IP"
                )
        if self.name not in names:
            members.append((self.name, self.ip))
        object.__setattr__(self, "etcd_members", tuple(members))

    def has(self, role: str) -> bool:
        """Tell whether the node has `role`."""
        if role not in _roles.ROLES:
            raise RenderError(f"role {role!r} is unknown; valid roles: {_roles.listing()}")
        return role in self.roles

    @property
    def ipv6(self) -> bool:
        """Whether the node's control-plane IP is IPv6."""
        return is_ipv6(self.ip)

    @property
    def loopback(self) -> str:
        """`127.0.0.1`, or `::1` for an IPv6 node (kubeadm's local etcd address)."""
        return "::1" if self.ipv6 else "127.0.0.1"

    @property
    def control_plane(self) -> bool:
        """Whether the node runs the control-plane static pods."""
        return _roles.CONTROL_PLANE in self.roles


# Where each CA lives, relative to the PKI directory (without .crt/.key).
CA_FILES = {"ca": "ca", "front-proxy-ca": "front-proxy-ca", "etcd-ca": "etcd/ca"}


@dataclass(frozen=True)
class Layout:
    """Where kubeadm's files live, optionally under a root prefix (default `/`)."""

    root: str = "/"

    def path(self, *parts: str) -> str:
        """Join `parts` (absolute, as on a real node) under the root."""
        joined = posixpath.join(*parts)
        if not joined.startswith("/"):
            raise RenderError(f"layout path {joined!r} must be absolute")
        if self.root in ("", "/"):
            return joined
        return posixpath.join(self.root, joined.lstrip("/"))

    @property
    def kubernetes_dir(self) -> str:
        """`/etc/kubernetes`."""
        return self.path("/etc/kubernetes")

    @property
    def pki_dir(self) -> str:
        """kubeadm's certificatesDir, `/etc/kubernetes/pki`."""
        return self.path("/etc/kubernetes/pki")

    @property
    def manifests_dir(self) -> str:
        """The kubelet's staticPodPath, `/etc/kubernetes/manifests`."""
        return self.path("/etc/kubernetes/manifests")

    @property
    def etcd_data_dir(self) -> str:
        """etcd's data directory, `/var/lib/etcd`."""
        return self.path("/var/lib/etcd")

    @property
    def kubelet_dir(self) -> str:
        """`/var/lib/kubelet`."""
        return self.path("/var/lib/kubelet")

    @property
    def containerd_dir(self) -> str:
        """`/etc/containerd`."""
        return self.path("/etc/containerd")

    @property
    def kubelet_dropin_dir(self) -> str:
        """The kubelet unit's drop-in directory (administrator location, wins over /usr/lib)."""
        return self.path("/etc/systemd/system/kubelet.service.d")

    def pki(self, name: str) -> str:
        """Path of `name` (for example `etcd/ca.crt`) inside the PKI directory."""
        return posixpath.join(self.pki_dir, name)

    def kubeconfig(self, name: str) -> str:
        """Path of the kubeconfig `name` (for example `admin.conf`)."""
        return posixpath.join(self.kubernetes_dir, name)
