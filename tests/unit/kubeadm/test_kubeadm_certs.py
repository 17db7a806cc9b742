"""The certificate table (kubeadm's certlist) and local issuing (pki)."""

import datetime
import ipaddress

import pytest
from conftest import NOW
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from reference_vectors import ALL_ROLES, config

from kubesalt.kubeadm import RenderError, certs, pki
from kubesalt.kubeadm.model import Node

CP = frozenset({"control-plane", "etcd", "node"})
BACKDATE = datetime.timedelta(minutes=5)


def table(cfg, node):
    return certs.by_kind(certs.node_certificates(cfg, node))


# --- the table -------------------------------------------------------------------------------


def test_reference_node_certificate_table(cfg, cp1):
    rows = {
        kind: (spec.subject, spec.extended_key_usage, spec.signer, spec.cert_path,
               spec.kubeconfig_path)
        for kind, spec in table(cfg, cp1).items()
    }  # fmt: skip
    pki_dir = "/etc/kubernetes/pki"
    assert rows == {
        "apiserver": ("CN=kube-apiserver", ("serverAuth",), "ca", f"{pki_dir}/apiserver.crt", None),
        "apiserver-kubelet-client": (
            "CN=kube-apiserver-kubelet-client,O=kubeadm:cluster-admins",
            ("clientAuth",),
            "ca",
            f"{pki_dir}/apiserver-kubelet-client.crt",
            None,
        ),
        "front-proxy-client": (
            "CN=front-proxy-client",
            ("clientAuth",),
            "front-proxy-ca",
            f"{pki_dir}/front-proxy-client.crt",
            None,
        ),
        "etcd-server": (
            "CN=cp1",
            ("serverAuth", "clientAuth"),
            "etcd-ca",
            f"{pki_dir}/etcd/server.crt",
            None,
        ),
        "etcd-peer": (
            "CN=cp1",
            ("serverAuth", "clientAuth"),
            "etcd-ca",
            f"{pki_dir}/etcd/peer.crt",
            None,
        ),
        "etcd-healthcheck-client": (
            "CN=kube-etcd-healthcheck-client",
            ("clientAuth",),
            "etcd-ca",
            f"{pki_dir}/etcd/healthcheck-client.crt",
            None,
        ),
        "apiserver-etcd-client": (
            "CN=kube-apiserver-etcd-client",
            ("clientAuth",),
            "etcd-ca",
            f"{pki_dir}/apiserver-etcd-client.crt",
            None,
        ),
        "admin": (
            "CN=kubernetes-admin,O=kubeadm:cluster-admins",
            ("clientAuth",),
            "ca",
            None,
            "/etc/kubernetes/admin.conf",
        ),
        "super-admin": (
            "CN=kubernetes-super-admin,O=system:masters",
            ("clientAuth",),
            "ca",
            None,
            "/etc/kubernetes/super-admin.conf",
        ),
        "controller-manager": (
            "CN=system:kube-controller-manager",
            ("clientAuth",),
            "ca",
            None,
            "/etc/kubernetes/controller-manager.conf",
        ),
        "scheduler": (
            "CN=system:kube-scheduler",
            ("clientAuth",),
            "ca",
            None,
            "/etc/kubernetes/scheduler.conf",
        ),
        "kubelet-client": (
            "CN=system:node:cp1,O=system:nodes",
            ("clientAuth",),
            "ca",
            None,
            "/etc/kubernetes/kubelet.conf",
        ),
    }
    for spec in table(cfg, cp1).values():
        assert spec.key_usage == ("digitalSignature", "keyEncipherment")
        assert spec.validity_days == 365
        assert spec.basic_constraints == "critical, CA:FALSE"
        if spec.cert_path:
            assert spec.key_path == spec.cert_path[: -len(".crt")] + ".key"


def test_apiserver_sans_reference(cfg, cp1):
    spec = table(cfg, cp1)["apiserver"]
    assert spec.dns_names == (
        "cp1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    )
    assert spec.ip_addresses == ("10.96.0.1", "10.0.0.10", "10.0.0.100")
    assert spec.subject_alt_name == (
        "DNS:cp1, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, "
        "DNS:kubernetes.default.svc.cluster.local, IP:10.96.0.1, IP:10.0.0.10, IP:10.0.0.100"
    )


def test_apiserver_sans_dns_endpoint_custom_domain_and_sorting(cp1):
    cfg = config(**{"kubernetes.dnsDomain": "corp.example", "apiServer.host": "api.corp.example"})
    spec = table(cfg, cp1)["apiserver"]
    assert spec.dns_names == (
        "api.corp.example",
        "cp1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.corp.example",
    )
    assert spec.ip_addresses == ("10.96.0.1", "10.0.0.10")


def test_apiserver_sans_deduplicate_ips_in_order(cfg):
    node = Node("cp1", "10.0.0.100", ALL_ROLES, first=True)  # node IP == endpoint
    assert table(cfg, node)["apiserver"].ip_addresses == ("10.96.0.1", "10.0.0.100")


def test_etcd_sans_reference(cfg, cp1):
    for kind in ("etcd-server", "etcd-peer"):
        spec = table(cfg, cp1)[kind]
        assert spec.dns_names == ("cp1", "localhost")
        assert spec.ip_addresses == ("10.0.0.10", "127.0.0.1", "::1")


def test_etcd_sans_loopback_node_deduplicated(cfg):
    node = Node("cp1", "127.0.0.1", ALL_ROLES, first=True)
    assert table(cfg, node)["etcd-server"].ip_addresses == ("127.0.0.1", "::1")


def test_ipv6_node_sans():
    cfg = config(**{"networks.services": "fd00:96::/108", "apiServer.host": "fd00::100"})
    node = Node("cp1", "fd00::10", ALL_ROLES, first=True)
    assert table(cfg, node)["apiserver"].ip_addresses == ("fd00:96::1", "fd00::10", "fd00::100")
    assert table(cfg, node)["etcd-peer"].ip_addresses == ("fd00::10", "127.0.0.1", "::1")


def test_ca_specs(cfg):
    cas = certs.ca_specs(cfg)
    assert {k: (s.subject, s.dns_names, s.cert_path) for k, s in cas.items()} == {
        "ca": ("CN=kubernetes", ("kubernetes",), "/etc/kubernetes/pki/ca.crt"),
        "front-proxy-ca": (
            "CN=front-proxy-ca",
            ("front-proxy-ca",),
            "/etc/kubernetes/pki/front-proxy-ca.crt",
        ),
        "etcd-ca": ("CN=etcd-ca", ("etcd-ca",), "/etc/kubernetes/pki/etcd/ca.crt"),
    }
    for spec in cas.values():
        assert spec.is_ca and spec.validity_days == 3650
        assert spec.key_usage == ("digitalSignature", "keyEncipherment", "keyCertSign")
        assert spec.basic_constraints == "critical, CA:TRUE"


def test_worker_gets_only_its_kubelet_identity(cfg):
    worker = Node("w1", "10.0.0.20", frozenset({"node"}))
    specs = table(cfg, worker)
    assert list(specs) == ["kubelet-client"]
    assert specs["kubelet-client"].subject == "CN=system:node:w1,O=system:nodes"
    assert specs["kubelet-client"].per_node
    assert certs.ca_files_for(worker) == {"ca": False}


def test_joined_control_plane_has_no_super_admin_nor_ca_keys(cfg):
    cp2 = Node("cp2", "10.0.0.11", CP, etcd_members=(("cp1", "10.0.0.10"),))
    assert "super-admin" not in table(cfg, cp2)
    assert certs.ca_files_for(cp2) == {"ca": False, "front-proxy-ca": False, "etcd-ca": False}


def test_ca_node_holds_ca_keys(cp1):
    assert certs.ca_files_for(cp1) == {"ca": True, "front-proxy-ca": True, "etcd-ca": True}


def test_etcd_only_node(cfg):
    node = Node("e1", "10.0.0.30", frozenset({"etcd"}), etcd_members=(("cp1", "10.0.0.10"),))
    assert list(table(cfg, node)) == [
        "etcd-server",
        "etcd-peer",
        "etcd-healthcheck-client",
        "kubelet-client",
    ]
    assert certs.ca_files_for(node) == {"ca": False, "etcd-ca": False}


def test_per_node_and_roles_for_signing_policies(cfg, cp1):
    specs = table(cfg, cp1)
    per_node = {kind for kind, spec in specs.items() if spec.per_node}
    assert per_node == {"apiserver", "etcd-server", "etcd-peer", "kubelet-client"}
    assert specs["etcd-server"].roles == ("etcd",)
    assert specs["apiserver"].roles == ("control-plane",)
    assert specs["admin"].roles == ("control-plane",)


def test_control_plane_without_etcd_is_refused(cfg):
    node = Node("cp9", "10.0.0.19", frozenset({"control-plane"}), first=False)
    with pytest.raises(RenderError, match="without etcd.*add the etcd role"):
        certs.node_certificates(cfg, node)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("pki.algorithm", "RSA-1024", r"pki.algorithm is 'RSA-1024'; valid values: RSA-2048"),
        (
            "pki.algorithm",
            "ECDSA-P384",
            r"pki.algorithm ECDSA-P384 needs Kubernetes 1.34 or later \(kubeadm's "
            r"encryptionAlgorithm\), and the cluster runs v1.33.5: use one of RSA-2048, "
            r"RSA-3072, RSA-4096, ECDSA-P256, or Kubernetes 1.34",
        ),
        ("pki.certificateValidityDays", 0, r"pki.certificateValidityDays is 0"),
    ],
)
def test_bad_pki_settings_are_named(cp1, key, value, message):
    with pytest.raises(RenderError, match=message):
        certs.key_algorithm(config(**{key: value}))
        certs.node_certificates(config(**{key: value}), cp1)


def test_custom_validity(cp1):
    cfg = config(**{"pki.certificateValidityDays": 90, "pki.caCertificateValidityDays": 1000})
    assert {s.validity_days for s in certs.node_certificates(cfg, cp1)} == {90}
    assert {s.validity_days for s in certs.ca_specs(cfg).values()} == {1000}


# --- issuing ---------------------------------------------------------------------------------


def extension(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def test_ca_certificate(authorities):
    for kind, cn in (
        ("ca", "kubernetes"),
        ("front-proxy-ca", "front-proxy-ca"),
        ("etcd-ca", "etcd-ca"),
    ):
        cert = authorities.signer(kind).cert
        assert cert.subject == cert.issuer
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cn
        assert cert.not_valid_before_utc == NOW - BACKDATE
        assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=3650)
        constraints = extension(cert, x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca
        assert constraints.value.path_length is None
        usage = extension(cert, x509.KeyUsage).value
        assert usage.key_cert_sign and usage.digital_signature and usage.key_encipherment
        san = extension(cert, x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [cn]
        assert isinstance(cert.public_key(), rsa.RSAPublicKey)
        assert cert.public_key().key_size == 2048
        assert 1 <= cert.serial_number < 2**63 - 1


def test_issued_apiserver_certificate(cfg, cp1, authorities):
    spec = table(cfg, cp1)["apiserver"]
    issued = pki.issue(spec, authorities.signer("ca"), "RSA-2048", NOW)
    cert = issued.cert
    assert cert.subject.rfc4514_string() == "CN=kube-apiserver"
    assert cert.issuer.rfc4514_string() == "CN=kubernetes"
    assert cert.not_valid_before_utc == NOW - BACKDATE
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=365)
    assert extension(cert, x509.ExtendedKeyUsage).value._usages == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = extension(cert, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    assert not extension(cert, x509.BasicConstraints).value.ca
    san = extension(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == list(spec.dns_names)
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address(i) for i in ("10.96.0.1", "10.0.0.10", "10.0.0.100")
    ]
    cert.verify_directly_issued_by(authorities.signer("ca").cert)
    ski = extension(authorities.signer("ca").cert, x509.SubjectKeyIdentifier).value.digest
    assert extension(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski


def test_issued_subject_keeps_organization(cfg, cp1, authorities):
    spec = table(cfg, cp1)["apiserver-kubelet-client"]
    cert = pki.issue(spec, authorities.signer("ca"), "RSA-2048", NOW).cert
    assert cert.subject.rfc4514_string() == (
        "CN=kube-apiserver-kubelet-client,O=kubeadm:cluster-admins"
    )
    # Go's pkix.Name order: O before CN in the encoded sequence.
    assert [a.oid for a in cert.subject] == [NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME]
    assert not cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_etcd_server_certificate_signed_by_etcd_ca(cfg, cp1, authorities):
    spec = table(cfg, cp1)["etcd-server"]
    cert = pki.issue(spec, authorities.signer("etcd-ca"), "RSA-2048", NOW).cert
    cert.verify_directly_issued_by(authorities.signer("etcd-ca").cert)
    assert extension(cert, x509.ExtendedKeyUsage).value._usages == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    with pytest.raises(RenderError, match="signed by etcd-ca, not ca"):
        pki.issue(spec, authorities.signer("ca"), "RSA-2048", NOW)


def test_serials_are_random_and_in_range(cfg, cp1, authorities):
    spec = table(cfg, cp1)["admin"]
    key = pki.generate_key("ECDSA-P256")
    serials = {
        pki.issue(spec, authorities.signer("ca"), "ECDSA-P256", NOW, key).cert.serial_number
        for _ in range(20)
    }
    assert len(serials) == 20
    assert all(1 <= s < 2**63 - 1 for s in serials)


@pytest.mark.parametrize(
    ("algorithm", "check"),
    [
        (
            "ECDSA-P256",
            lambda k: isinstance(k, ec.EllipticCurvePublicKey) and k.curve.name == "secp256r1",
        ),
        (
            "ECDSA-P384",
            lambda k: isinstance(k, ec.EllipticCurvePublicKey) and k.curve.name == "secp384r1",
        ),
        ("RSA-3072", lambda k: isinstance(k, rsa.RSAPublicKey) and k.key_size == 3072),
        ("RSA-4096", lambda k: isinstance(k, rsa.RSAPublicKey) and k.key_size == 4096),
    ],
)
def test_key_algorithms(cp1, algorithm, check):
    cfg = config(**{"pki.algorithm": algorithm, "kubernetes.version": "v1.34.2"})
    assert certs.key_algorithm(cfg) == algorithm
    etcd_ca = pki.create_ca(certs.ca_specs(cfg)["etcd-ca"], algorithm, NOW)
    spec = table(cfg, cp1)["etcd-peer"]
    issued = pki.issue(spec, etcd_ca, algorithm, NOW)
    assert check(issued.cert.public_key())
    assert check(etcd_ca.cert.public_key())
    issued.cert.verify_directly_issued_by(etcd_ca.cert)
    kind = b"EC" if algorithm.startswith("ECDSA") else b"RSA"
    assert issued.key_pem.startswith(b"-----BEGIN " + kind + b" PRIVATE KEY-----")
    # kubeadm sets keyEncipherment even on ECDSA keys.
    assert extension(issued.cert, x509.KeyUsage).value.key_encipherment


def test_sa_key_follows_the_algorithm(authorities):
    assert pki.public_key_to_pem(authorities.sa_key).startswith(b"-----BEGIN PUBLIC KEY-----")
    ecdsa = pki.create_authorities(config(**{"pki.algorithm": "ECDSA-P256"}), NOW)
    assert isinstance(ecdsa.sa_key, ec.EllipticCurvePrivateKey)
    assert pki.key_to_pem(ecdsa.sa_key).startswith(b"-----BEGIN EC PRIVATE KEY-----")


def test_authorities_save_and_load(tmp_path, cfg, authorities):
    written = pki.save_authorities(authorities, str(tmp_path))
    assert sorted(p.removeprefix(str(tmp_path)) for p in written) == [
        "/ca.crt", "/ca.key", "/etcd/ca.crt", "/etcd/ca.key", "/front-proxy-ca.crt",
        "/front-proxy-ca.key", "/sa.key", "/sa.pub",
    ]  # fmt: skip
    assert (tmp_path / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "sa.pub").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "ca.crt").stat().st_mode & 0o777 == 0o644
    loaded = pki.load_authorities(cfg, str(tmp_path))
    for kind in ("ca", "front-proxy-ca", "etcd-ca"):
        assert loaded.signer(kind).cert == authorities.signer(kind).cert
        assert loaded.signer(kind).key_pem == authorities.signer(kind).key_pem
    assert pki.key_to_pem(loaded.sa_key) == pki.key_to_pem(authorities.sa_key)
    (tmp_path / "etcd" / "ca.key").unlink()
    with pytest.raises(RenderError, match=r"incomplete: .*etcd/ca.key missing"):
        pki.load_authorities(cfg, str(tmp_path))


def test_load_authorities_refuses_a_mismatched_pair(tmp_path, cfg, authorities):
    pki.save_authorities(authorities, str(tmp_path))
    (tmp_path / "front-proxy-ca.key").write_bytes(authorities.signer("ca").key_pem)
    with pytest.raises(RenderError, match=r"front-proxy-ca.crt and .*front-proxy-ca.key do not"):
        pki.load_authorities(cfg, str(tmp_path))


def test_load_authorities_empty_dir_is_none(tmp_path, cfg):
    assert pki.load_authorities(cfg, str(tmp_path)) is None


def test_create_ca_refuses_a_leaf(cfg, cp1):
    with pytest.raises(RenderError, match="not a CA"):
        pki.create_ca(table(cfg, cp1)["admin"], "RSA-2048")
