"""Local certificate issuing with `cryptography`, following kubeadm's `pkiutil`.

Used by the preview command (`scripts/render-node`) and the tests. On real nodes the same
`certs` table drives Salt's x509_v2 remote signing instead, so that CA keys never leave the
`ca` node; nodes use only `parse_private_key` and `load_key` from here (the node-side check
of kubesalt.pkicheck, the service-account key).
"""

from __future__ import annotations

import datetime
import math
import os
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from kubesalt import keyalgorithms as _keyalgorithms
from kubesalt.kubeadm import RenderError
from kubesalt.kubeadm.certs import BACKDATE_SECONDS, CertSpec, ca_specs, key_algorithm
from kubesalt.kubeadm.files import RenderedFile, write_tree
from kubesalt.kubeadm.model import CA_FILES, Layout

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_EKU = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
}
# Serial numbers are random in [1, 2^63 - 1), as kubeadm's pkiutil draws them.
SERIAL_LIMIT = 2**63 - 1


def generate_key(algorithm: str) -> PrivateKey:
    """A new private key for `algorithm` (a name of kubesalt.keyalgorithms)."""
    try:
        wanted = _keyalgorithms.get(algorithm)
    except _keyalgorithms.KeyAlgorithmError as err:
        raise RenderError(str(err)) from None
    if wanted.algo == "ec":
        return ec.generate_private_key(getattr(ec, f"SECP{wanted.keysize}R1")())
    return rsa.generate_private_key(public_exponent=65537, key_size=wanted.keysize)


def key_to_pem(key: PrivateKey) -> bytes:
    """The key as kubeadm writes it: PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def public_key_to_pem(key: PrivateKey) -> bytes:
    """The public half as a PKIX `PUBLIC KEY` PEM block (sa.pub)."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class DamagedKey(ValueError):
    """An RSA key whose numbers do not agree with each other."""


def parse_private_key(pem: bytes) -> PrivateKey:
    """A PEM private key, as cryptography loads it, but without OpenSSL's RSA key check:
    that check tests both primes for primality, about 40 ms a 2048-bit key, and a no-op
    highstate loads every key of its node (most of its certificate states' time). The key's
    numbers are checked against each other instead (microseconds): a change to any of them
    breaks one of the equations. ValueError: not a private key (DamagedKey: an RSA key whose
    numbers disagree); TypeError: an encrypted key."""
    key = serialization.load_pem_private_key(
        pem, password=None, unsafe_skip_rsa_key_validation=True
    )
    if isinstance(key, rsa.RSAPrivateKey) and not _rsa_numbers_agree(key.private_numbers()):
        raise DamagedKey("its RSA numbers do not agree with each other")
    return key


def _rsa_numbers_agree(numbers: rsa.RSAPrivateNumbers) -> bool:
    p, q, d = numbers.p, numbers.q, numbers.d
    n, e = numbers.public_numbers.n, numbers.public_numbers.e
    if p < 3 or q < 3 or p * q != n:
        return False
    return (
        numbers.dmp1 == d % (p - 1)
        and numbers.dmq1 == d % (q - 1)
        and numbers.iqmp * q % p == 1
        and e * d % math.lcm(p - 1, q - 1) == 1
    )


def load_key(pem: bytes, source: str) -> PrivateKey:
    """Load a PEM private key; `source` names the file in the error."""
    try:
        key = parse_private_key(pem)
    except (ValueError, TypeError) as err:
        raise RenderError(f"{source}: not an unencrypted PEM private key ({err})") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise RenderError(f"{source}: only RSA and ECDSA keys are supported")
    return key


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    spec: CertSpec
    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        """The certificate, PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The private key, PEM (PKCS#1 or SEC1)."""
        return key_to_pem(self.key)


def _now(now: datetime.datetime | None) -> datetime.datetime:
    now = now or datetime.datetime.now(datetime.UTC)
    return now.replace(microsecond=0)


def _builder(spec: CertSpec, public_key, now: datetime.datetime) -> x509.CertificateBuilder:
    not_before = now - datetime.timedelta(seconds=BACKDATE_SECONDS)
    not_after = now + datetime.timedelta(days=spec.validity_days)
    usages = set(spec.key_usage)
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.name)
        .public_key(public_key)
        .serial_number(1 + secrets.randbelow(SERIAL_LIMIT - 1))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.KeyUsage(
                digital_signature="digitalSignature" in usages,
                content_commitment=False,
                key_encipherment="keyEncipherment" in usages,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign="keyCertSign" in usages,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=spec.is_ca, path_length=None), critical=True)
    )
    if spec.extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([_EKU[u] for u in spec.extended_key_usage]), critical=False
        )
    names = spec.general_names
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder


def create_ca(spec: CertSpec, algorithm: str, now: datetime.datetime | None = None) -> Issued:
    """A self-signed CA for `spec` (SAN DNS = CN, KU with certSign, backdated 5 minutes)."""
    if not spec.is_ca:
        raise RenderError(f"create_ca: {spec.kind} is not a CA (it is signed by {spec.signer})")
    key = generate_key(algorithm)
    builder = _builder(spec, key.public_key(), _now(now)).issuer_name(spec.name)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    return Issued(spec, builder.sign(key, hashes.SHA256()), key)


def issue(
    spec: CertSpec,
    ca: Issued,
    algorithm: str,
    now: datetime.datetime | None = None,
    key: PrivateKey | None = None,
) -> Issued:
    """Sign a leaf for `spec` with `ca` (a new key unless `key` is given)."""
    if spec.is_ca:
        raise RenderError(f"issue: {spec.kind} is a CA; use create_ca")
    if spec.signer != ca.spec.kind:
        raise RenderError(f"issue: {spec.kind} is signed by {spec.signer}, not {ca.spec.kind}")
    key = key or generate_key(algorithm)
    builder = _builder(spec, key.public_key(), _now(now)).issuer_name(ca.cert.subject)
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
    )
    return Issued(spec, builder.sign(ca.key, hashes.SHA256()), key)


@dataclass(frozen=True)
class Authorities:
    """The cluster's CAs (`ca`, `front-proxy-ca`, `etcd-ca`) and the service-account key."""

    cas: dict[str, Issued]
    sa_key: PrivateKey

    def signer(self, kind: str) -> Issued:
        """The CA of kind `kind`."""
        if kind not in self.cas:
            raise RenderError(f"no CA of kind {kind!r}; known: {', '.join(self.cas)}")
        return self.cas[kind]

    def files(self, pki_dir: str) -> dict[str, RenderedFile]:
        """The CA certificates and keys and sa.key/sa.pub under `pki_dir`, with kubeadm's
        modes (certificates 0644, keys and sa.pub 0600)."""
        files = {}
        for kind, issued in self.cas.items():
            base = os.path.join(pki_dir, CA_FILES[kind])
            files[f"{base}.crt"] = RenderedFile(issued.cert_pem, 0o644)
            files[f"{base}.key"] = RenderedFile(issued.key_pem, 0o600)
        files[os.path.join(pki_dir, "sa.key")] = RenderedFile(key_to_pem(self.sa_key), 0o600)
        files[os.path.join(pki_dir, "sa.pub")] = RenderedFile(public_key_to_pem(self.sa_key), 0o600)
        return files


def create_authorities(cfg: dict, now: datetime.datetime | None = None) -> Authorities:
    """New CAs and a new service-account key, with the configured algorithm and validity."""
    algorithm = key_algorithm(cfg)
    cas = {kind: create_ca(spec, algorithm, now) for kind, spec in ca_specs(cfg).items()}
    return Authorities(cas, generate_key(algorithm))


def save_authorities(authorities: Authorities, pki_dir: str) -> list[str]:
    """Write the CAs and the SA key into `pki_dir` (kubeadm's names and modes)."""
    return write_tree(authorities.files(os.path.abspath(pki_dir)), "/")


def load_authorities(cfg: dict, pki_dir: str) -> Authorities | None:
    """Load the CAs and SA key saved in `pki_dir`; None when none of them is there.

    A partial set is an error that names the missing files.
    """
    specs = ca_specs(cfg, Layout())
    wanted = {kind: os.path.join(pki_dir, rel) for kind, rel in CA_FILES.items()}
    paths = [f"{base}.{ext}" for base in wanted.values() for ext in ("crt", "key")]
    paths.append(os.path.join(pki_dir, "sa.key"))
    present = [p for p in paths if os.path.exists(p)]
    if not present:
        return None
    missing = [p for p in paths if p not in present]
    if missing:
        raise RenderError(
            f"CA directory {pki_dir} is incomplete: {', '.join(missing)} missing; "
            "restore them, or remove the CA files there to create new throwaway CAs"
        )
    cas = {}
    for kind, base in wanted.items():
        with open(f"{base}.crt", "rb") as handle:
            try:
                cert = x509.load_pem_x509_certificate(handle.read())
            except ValueError as err:
                raise RenderError(f"{base}.crt: not a PEM certificate ({err})") from None
        with open(f"{base}.key", "rb") as handle:
            key = load_key(handle.read(), f"{base}.key")
        if cert.public_key() != key.public_key():
            raise RenderError(
                f"{base}.crt and {base}.key do not belong together; restore the matching "
                "pair, or remove the CA files there to create new throwaway CAs"
            )
        cas[kind] = Issued(specs[kind], cert, key)
    with open(os.path.join(pki_dir, "sa.key"), "rb") as handle:
        sa_key = load_key(handle.read(), os.path.join(pki_dir, "sa.key"))
    return Authorities(cas, sa_key)
