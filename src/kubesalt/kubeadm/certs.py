"""The certificate table: which certificates a node gets, and exactly what is in each.

This is kubeadm's `phases/certs/certlist.go` plus the kubeconfig client certificates, as data.
Two consumers read it: `pki` (local issuing, for the preview command and the tests) and the
Salt signing-policy generation, which makes one policy per certificate kind, or per node for
the kinds whose identity names the node (`CertSpec.per_node`), pinning every field here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from kubesalt import keyalgorithms as _keyalgorithms
from kubesalt import roles as _roles
from kubesalt.kubeadm import RenderError, images
from kubesalt.kubeadm.model import Layout, Node, is_ip
from kubesalt.network import nth_address

KEY_USAGE_LEAF = ("digitalSignature", "keyEncipherment")
# kubeadm sets keyEncipherment on CAs and on ECDSA keys too (a known quirk, kept).
KEY_USAGE_CA = ("digitalSignature", "keyEncipherment", "keyCertSign")
SERVER_AUTH = "serverAuth"
CLIENT_AUTH = "clientAuth"
BACKDATE_SECONDS = 5 * 60  # kubeadm CertificateBackdate


def x509_name(common_name: str, organizations=()) -> x509.Name:
    """A subject as kubeadm writes it: O before CN, as Go's pkix.Name orders them."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def general_names(dns_names=(), ip_addresses=()) -> list[x509.GeneralName]:
    """subjectAltName entries in the signing policy's order: DNS names, then IP addresses."""
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ip_addresses]
    return names


@dataclass(frozen=True)
class CertSpec:
    """One certificate (or CA) as kubeadm would issue it.

    `kind` names the certificate (`apiserver`, `etcd-server`, `admin`, ...); `signer` is the
    `kind` of the CA that signs it (None for a self-signed CA). Paths are absolute (from a
    `Layout`); a kubeconfig client certificate has no file of its own: `kubeconfig_path`
    says where it is embedded. `per_node` is True when the identity names the node (its
    CN or SANs), which calls for one signing policy per node. `roles` lists the roles
    whose nodes may obtain it.
    """

    kind: str
    common_name: str
    organizations: tuple[str, ...]
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    signer: str | None
    validity_days: int
    cert_path: str | None
    key_path: str | None
    kubeconfig_path: str | None
    per_node: bool
    roles: tuple[str, ...]

    @property
    def is_ca(self) -> bool:
        """Whether this is a (self-signed) CA."""
        return self.signer is None

    @property
    def name(self) -> x509.Name:
        """The subject as an X.509 name (O before CN, as Go's pkix.Name orders them)."""
        return x509_name(self.common_name, self.organizations)

    @property
    def general_names(self) -> list[x509.GeneralName]:
        """The subjectAltName entries: DNS names, then IP addresses."""
        return general_names(self.dns_names, self.ip_addresses)

    @property
    def subject(self) -> str:
        """The subject as an RFC 4514 string, e.g. `CN=kube-apiserver-kubelet-client,O=...`.

        This is the form a signing policy pins (a string subject overrides the request).
        """
        return self.name.rfc4514_string()

    @property
    def subject_alt_name(self) -> str | None:
        """The SANs in x509_v2/OpenSSL form (`DNS:a, IP:b`), DNS names first, or None."""
        entries = [f"DNS:{d}" for d in self.dns_names] + [f"IP:{i}" for i in self.ip_addresses]
        return ", ".join(entries) if entries else None

    @property
    def basic_constraints(self) -> str:
        """`critical, CA:TRUE` or `critical, CA:FALSE` (x509_v2 extension syntax)."""
        return "critical, CA:TRUE" if self.is_ca else "critical, CA:FALSE"


def alt_names(dns_names: list[str], ips: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """kubeadm `RemoveDuplicateAltNames`: DNS names sorted and unique; IPs unique, in order."""
    seen: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    unique_ips = []
    for text in ips:
        address = ipaddress.ip_address(text)
        if address not in seen:
            seen.add(address)
            unique_ips.append(str(address))
    return tuple(sorted(set(dns_names))), tuple(unique_ips)


def _days(cfg: dict, key: str) -> int:
    value = cfg["pki"][key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RenderError(f"pki.{key} is {value!r}; give a whole number of days, at least 1")
    return value


def key_algorithm(cfg: dict) -> str:
    """The key algorithm of every key (`pki.algorithm`), checked: a known one, which the
    cluster's Kubernetes release accepts."""
    algorithm = cfg["pki"]["algorithm"]
    try:
        problem = _keyalgorithms.release_problem(algorithm, images.check_version(cfg))
    except _keyalgorithms.KeyAlgorithmError as err:
        raise RenderError(str(err)) from None
    if problem:
        raise RenderError(problem)
    return algorithm


def ca_specs(cfg: dict, layout: Layout | None = None) -> dict[str, CertSpec]:
    """The three CAs (`ca`, `front-proxy-ca`, `etcd-ca`) by kind."""
    layout = layout or Layout()
    days = _days(cfg, "caCertificateValidityDays")
    table = {"ca": ("kubernetes", "ca"), "front-proxy-ca": ("front-proxy-ca", "front-proxy-ca")}
    table["etcd-ca"] = ("etcd-ca", "etcd/ca")
    return {
        kind: CertSpec(
            kind=kind,
            common_name=cn,
            organizations=(),
            key_usage=KEY_USAGE_CA,
            extended_key_usage=(),
            dns_names=(cn,),
            ip_addresses=(),
            signer=None,
            validity_days=days,
            cert_path=layout.pki(f"{base}.crt"),
            key_path=layout.pki(f"{base}.key"),
            kubeconfig_path=None,
            per_node=False,
            roles=(_roles.CA,),
        )
        for kind, (cn, base) in table.items()
    }


def ca_files_for(node: Node) -> dict[str, bool]:
    """The CAs whose certificate a node gets, mapped to whether it also gets the CA key.

    CA keys stay on the `ca` node (docs/pki.md). Every kubelet node gets ca.crt (its
    clientCAFile); control-plane nodes get the front-proxy CA; etcd and control-plane
    nodes get the etcd CA.
    """
    wanted: dict[str, bool] = {}
    with_key = node.has(_roles.CA)
    if node.roles & _roles.KUBELET_ROLES or with_key:
        wanted["ca"] = with_key
    if node.control_plane or with_key:
        wanted["front-proxy-ca"] = with_key
    if node.control_plane or node.has(_roles.ETCD) or with_key:
        wanted["etcd-ca"] = with_key
    return wanted


def _leaf(
    kind: str,
    cn: str,
    *,
    days: int,
    signer: str,
    roles: tuple[str, ...],
    orgs: tuple[str, ...] = (),
    eku: tuple[str, ...] = (CLIENT_AUTH,),
    dns: list[str] | None = None,
    ips: list[str] | None = None,
    layout: Layout,
    base: str | None = None,
    kubeconfig: str | None = None,
    per_node: bool = False,
) -> CertSpec:
    dns_names, ip_addresses = alt_names(dns or [], ips or [])
    return CertSpec(
        kind=kind,
        common_name=cn,
        organizations=orgs,
        key_usage=KEY_USAGE_LEAF,
        extended_key_usage=eku,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        signer=signer,
        validity_days=days,
        cert_path=layout.pki(f"{base}.crt") if base else None,
        key_path=layout.pki(f"{base}.key") if base else None,
        kubeconfig_path=layout.kubeconfig(kubeconfig) if kubeconfig else None,
        per_node=per_node,
        roles=roles,
    )


def apiserver_alt_names(cfg: dict, node: Node) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """apiserver.crt SANs: node name and the kubernetes service names (sorted); the first
    service IP, the node IP and the API endpoint host (IP SAN, or DNS SAN for a name)."""
    domain = cfg["kubernetes"]["dnsDomain"]
    dns = [
        node.name,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{domain}",
    ]
    ips = [nth_address(cfg["networks"]["services"], 1), node.ip]
    host = cfg["apiServer"]["host"]
    (ips if is_ip(host) else dns).append(host)
    return alt_names(dns, ips)


def node_certificates(cfg: dict, node: Node, layout: Layout | None = None) -> tuple[CertSpec, ...]:
    """Every leaf certificate `node` gets for its roles, kubeconfig client certificates
    included, in kubeadm's order. CAs are in `ca_specs` / `ca_files_for`."""
    layout = layout or Layout()
    if node.control_plane and not node.has(_roles.ETCD):
        raise RenderError(
            f"node {node.name} has the control-plane role without etcd; kubesalt runs a "
            "stacked etcd on every control-plane node: add the etcd role"
        )
    days = _days(cfg, "certificateValidityDays")
    common = {"days": days, "layout": layout}
    specs: list[CertSpec] = []
    if node.control_plane:
        dns, ips = apiserver_alt_names(cfg, node)
        cp = (_roles.CONTROL_PLANE,)
        specs += [
            _leaf(
                "apiserver",
                "kube-apiserver",
                signer="ca",
                roles=cp,
                eku=(SERVER_AUTH,),
                dns=list(dns),
                ips=list(ips),
                base="apiserver",
                per_node=True,
                **common,
            ),
            _leaf(
                "apiserver-kubelet-client",
                "kube-apiserver-kubelet-client",
                signer="ca",
                roles=cp,
                orgs=("kubeadm:cluster-admins",),
                base="apiserver-kubelet-client",
                **common,
            ),
            _leaf(
                "front-proxy-client",
                "front-proxy-client",
                signer="front-proxy-ca",
                roles=cp,
                base="front-proxy-client",
                **common,
            ),
        ]
    if node.has(_roles.ETCD):
        etcd_dns = [node.name, "localhost"]
        etcd_ips = [node.ip, "127.0.0.1", "::1"]
        both = (SERVER_AUTH, CLIENT_AUTH)
        et = (_roles.ETCD,)
        specs += [
            _leaf(
                "etcd-server",
                node.name,
                signer="etcd-ca",
                roles=et,
                eku=both,
                dns=etcd_dns,
                ips=etcd_ips,
                base="etcd/server",
                per_node=True,
                **common,
            ),
            _leaf(
                "etcd-peer",
                node.name,
                signer="etcd-ca",
                roles=et,
                eku=both,
                dns=etcd_dns,
                ips=etcd_ips,
                base="etcd/peer",
                per_node=True,
                **common,
            ),
            _leaf(
                "etcd-healthcheck-client",
                "kube-etcd-healthcheck-client",
                signer="etcd-ca",
                roles=et,
                base="etcd/healthcheck-client",
                **common,
            ),
        ]
    if node.control_plane:
        cp = (_roles.CONTROL_PLANE,)
        specs.append(
            _leaf(
                "apiserver-etcd-client",
                "kube-apiserver-etcd-client",
                signer="etcd-ca",
                roles=cp,
                base="apiserver-etcd-client",
                **common,
            )
        )
        specs.append(
            _leaf(
                "admin",
                "kubernetes-admin",
                signer="ca",
                roles=cp,
                orgs=("kubeadm:cluster-admins",),
                kubeconfig="admin.conf",
                **common,
            )
        )
        if node.first:
            specs.append(
                _leaf(
                    "super-admin",
                    "kubernetes-super-admin",
                    signer="ca",
                    roles=cp,
                    orgs=("system:masters",),
                    kubeconfig="super-admin.conf",
                    **common,
                )
            )
        specs += [
            _leaf(
                "controller-manager",
                "system:kube-controller-manager",
                signer="ca",
                roles=cp,
                kubeconfig="controller-manager.conf",
                **common,
            ),
            _leaf(
                "scheduler",
                "system:kube-scheduler",
                signer="ca",
                roles=cp,
                kubeconfig="scheduler.conf",
                **common,
            ),
        ]
    if node.roles & _roles.KUBELET_ROLES:
        specs.append(
            _leaf(
                "kubelet-client",
                f"system:node:{node.name}",
                signer="ca",
                roles=tuple(sorted(_roles.KUBELET_ROLES)),
                orgs=("system:nodes",),
                kubeconfig="kubelet.conf",
                per_node=True,
                **common,
            )
        )
    return tuple(specs)


def by_kind(specs: tuple[CertSpec, ...]) -> dict[str, CertSpec]:
    """Index a table by `kind`."""
    return {spec.kind: spec for spec in specs}
