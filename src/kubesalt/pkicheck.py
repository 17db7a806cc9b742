"""Is a key or a certificate on this node what kubesalt issues? Answered from local files.

Salt's x509_v2 states answer the same question at a price (docs/pki.md#how-a-certificate-is-checked):
in a salt-minion daemon every state compiles a fresh pillar on the master (its file test
through `state.single`), and a certificate signed remotely first asks the CA minion for its
signing policy. The `kubesalt_pki` states run this check first and call x509_v2 only when
something is due, so that a converged node asks nothing of the master or the CA.

The check is the one x509_v2 makes (`salt.utils.x509.check_cert_changes`), with the policy's
content taken from the certificate table (`kubesalt.kubeadm.certs`), the source the signing
policies are generated from: a certificate is current when it is signed by the expected CA,
carries its key, the expected subject, SANs, basic constraints, key usages, extended key
usages and key identifiers and nothing else, is signed with the expected digest, and does not
expire within `days_remaining` days. Any difference is a reason, and x509_v2 re-issues.
"""

from __future__ import annotations

import datetime
import grp
import ipaddress
import os
import pwd
import stat
from dataclasses import asdict, dataclass, fields

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from kubesalt.errors import KubesaltError
from kubesalt.kubeadm.certs import CertSpec, general_names, x509_name
from kubesalt.kubeadm.pki import DamagedKey, parse_private_key

# x509_v2's names of key usages (its `keyUsage` argument) -> cryptography's KeyUsage fields.
KEY_USAGES = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
}
EXTENDED_KEY_USAGES = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
}
# x509.private_key_managed's `algo` -> the key class, and its default `keysize` (x509_v2's).
KEY_CLASSES = {"rsa": rsa.RSAPrivateKey, "ec": ec.EllipticCurvePrivateKey}
DEFAULT_KEY_SIZES = {"rsa": 2048, "ec": 256}
DIGEST = "sha256"


class PkiCheckError(KubesaltError):
    """What a state asks the check for is invalid (the SLS or the execution module is wrong)."""


@dataclass(frozen=True)
class Expected:
    """What a certificate must be, as the policy or the CA state of its kind issues it.

    `ca_cert` is the path of the CA certificate that must have signed it, None for a
    self-signed CA. Key usages use x509_v2's names (`digitalSignature`); basic constraints
    and key usage are critical, as kubeadm marks them.
    """

    common_name: str
    organizations: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    key_usage: tuple[str, ...] = ()
    extended_key_usage: tuple[str, ...] = ()
    ca: bool = False
    ca_cert: str | None = None
    subject_key_identifier: bool = False
    authority_key_identifier: bool = False
    digest: str = DIGEST

    def __post_init__(self):
        for usage in self.key_usage:
            if usage not in KEY_USAGES:
                raise PkiCheckError(
                    f"key_usage {usage!r} is unknown; valid: {', '.join(KEY_USAGES)}"
                )
        for usage in self.extended_key_usage:
            if usage not in EXTENDED_KEY_USAGES:
                raise PkiCheckError(
                    f"extended_key_usage {usage!r} is unknown; valid: "
                    f"{', '.join(EXTENDED_KEY_USAGES)}"
                )
        for address in self.ip_addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError as err:
                raise PkiCheckError(f"ip_addresses: {address!r} is not an IP address") from err
        if self.ca_cert is None and not self.ca:
            raise PkiCheckError(
                f"certificate {self.common_name!r}: give ca_cert (the CA that signs it); "
                "only a CA (ca: true) is self-signed"
            )

    @classmethod
    def from_mapping(cls, data) -> Expected:
        """Read the `expected` argument of a state (a mapping, lists for the tuples)."""
        if not isinstance(data, dict):
            raise PkiCheckError(f"expected must be a mapping, not {data!r}")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PkiCheckError(
                f"expected has unknown keys {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        if "common_name" not in data:
            raise PkiCheckError("expected lacks common_name")
        values = {}
        for key, value in data.items():
            if isinstance(cls.__dataclass_fields__[key].default, tuple):
                if not isinstance(value, (list, tuple)) or not all(
                    isinstance(item, str) for item in value
                ):
                    raise PkiCheckError(f"expected:{key} must be a list of strings, not {value!r}")
                value = tuple(value)
            values[key] = value
        return cls(**values)

    def as_mapping(self) -> dict:
        """The `expected` argument of a state (lists, so that it renders as YAML)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(self).items()
        }

    @property
    def name(self) -> x509.Name:
        """The subject: O before CN, as kubeadm (Go's pkix.Name) orders them."""
        return x509_name(self.common_name, self.organizations)

    @property
    def subject_alt_names(self) -> list[x509.GeneralName]:
        """DNS names then IP addresses, in the order of the signing policy's subjectAltName."""
        return general_names(self.dns_names, self.ip_addresses)


def expected_from_spec(spec: CertSpec, ca_cert: str | None) -> Expected:
    """What a certificate of the table is once issued: a leaf under its signing policy
    (`kubesalt.signing_policies`: authority key identifier `keyid:always`), or a CA as
    `kubesalt.pki.ca` creates it (self-signed, subject key identifier `hash`)."""
    return Expected(
        common_name=spec.common_name,
        organizations=spec.organizations,
        dns_names=spec.dns_names,
        ip_addresses=spec.ip_addresses,
        key_usage=spec.key_usage,
        extended_key_usage=spec.extended_key_usage,
        ca=spec.is_ca,
        ca_cert=None if spec.is_ca else ca_cert,
        subject_key_identifier=spec.is_ca,
        authority_key_identifier=not spec.is_ca,
    )


@dataclass(frozen=True)
class Verdict:
    """The answer: no reasons means current. `not_after` is the certificate's expiry."""

    reasons: tuple[str, ...]
    not_after: datetime.datetime | None = None

    @property
    def current(self) -> bool:
        """Whether nothing is due."""
        return not self.reasons


def _read(path: str, what: str) -> tuple[bytes | None, str | None]:
    """The file's bytes, or the reason it cannot be used."""
    try:
        with open(path, "rb") as handle:
            return handle.read(), None
    except FileNotFoundError:
        return None, f"{what} {path} is missing"
    except OSError as err:
        return None, f"{what} {path} cannot be read ({err.strerror})"


def _load_key(path: str, what: str):
    data, problem = _read(path, what)
    if problem:
        return None, problem
    try:
        return parse_private_key(data), None
    except TypeError:
        return None, f"{what} {path} is encrypted; kubesalt keys are not"
    except DamagedKey as err:
        return None, f"{what} {path} is damaged: {err}"
    except (ValueError, UnsupportedAlgorithm):
        return None, f"{what} {path} is not a PEM private key"


def _describe_key(key) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.key_size} ({key.curve.name})"
    return type(key).__name__


def check_private_key(path: str, algo: str = "rsa", keysize: int | None = None) -> Verdict:
    """Is the key at `path` a PEM private key of `algo` (`rsa`, `ec`) and `keysize` (RSA
    bits, EC curve size; x509_v2's defaults 2048 and 256)?"""
    if algo not in KEY_CLASSES:
        raise PkiCheckError(f"algo {algo!r} is not checked here; valid: {', '.join(KEY_CLASSES)}")
    size = int(keysize) if keysize is not None else DEFAULT_KEY_SIZES[algo]
    key, problem = _load_key(path, "the private key")
    if problem:
        return Verdict((problem,))
    wanted = f"{'RSA' if algo == 'rsa' else 'EC'} {size}"
    if not isinstance(key, KEY_CLASSES[algo]) or key.key_size != size:
        return Verdict((f"the private key {path} is {_describe_key(key)}, expected {wanted}",))
    return Verdict(())


def _load_certificates(path: str, what: str):
    data, problem = _read(path, what)
    if problem:
        return None, problem
    try:
        found = x509.load_pem_x509_certificates(data)
    except ValueError:
        return None, f"{what} {path} is not a PEM certificate"
    if len(found) != 1:
        return None, f"{what} {path} holds {len(found)} certificates; kubesalt writes one"
    return found[0], None


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _issuer_reasons(cert, expected: Expected, key, path: str) -> tuple[list[str], object]:
    """Who signed it; returns the reasons and the CA certificate (None when self-signed or
    unreadable), which the authority key identifier is computed from."""
    if expected.ca_cert is None:
        if cert.issuer != cert.subject:
            return [f"{path} is issued by {cert.issuer.rfc4514_string()}, not self-signed"], None
        if key is not None and not _signed_by(cert, cert):
            return [f"{path} is not signed by its own key"], None
        return [], None
    ca, problem = _load_certificates(expected.ca_cert, "the CA certificate")
    if problem:
        return [problem], None
    if cert.issuer != ca.subject:
        return [
            f"{path} is issued by {cert.issuer.rfc4514_string()}, not by the CA of "
            f"{expected.ca_cert} ({ca.subject.rfc4514_string()})"
        ], ca
    if not _signed_by(cert, ca):
        return [
            f"{path} is not signed by the CA of {expected.ca_cert} (same subject "
            f"{ca.subject.rfc4514_string()}, another key: another CA)"
        ], ca
    return [], ca


def _authority_key_identifier(ca, public_key) -> x509.AuthorityKeyIdentifier:
    """As x509_v2 computes `keyid:always`: the CA's subject key identifier, else its key's."""
    if ca is not None:
        try:
            digest = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            digest = x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.public_key()
            ).key_identifier
    else:
        digest = x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key).key_identifier
    return x509.AuthorityKeyIdentifier(digest, None, None)


def _expected_extensions(expected: Expected, ca, public_key) -> dict:
    """{extension class: (critical, value)} of the certificate kubesalt issues."""
    usages = {field: False for field in KEY_USAGES.values()}
    usages.update({KEY_USAGES[u]: True for u in expected.key_usage})
    wanted = {
        x509.BasicConstraints: (True, x509.BasicConstraints(ca=expected.ca, path_length=None)),
        x509.KeyUsage: (True, x509.KeyUsage(**usages, encipher_only=False, decipher_only=False)),
    }
    if expected.extended_key_usage:
        oids = [EXTENDED_KEY_USAGES[u] for u in expected.extended_key_usage]
        wanted[x509.ExtendedKeyUsage] = (False, x509.ExtendedKeyUsage(oids))
    if expected.subject_alt_names:
        wanted[x509.SubjectAlternativeName] = (
            False,
            x509.SubjectAlternativeName(expected.subject_alt_names),
        )
    if expected.subject_key_identifier and public_key is not None:
        wanted[x509.SubjectKeyIdentifier] = (
            False,
            x509.SubjectKeyIdentifier.from_public_key(public_key),
        )
    if expected.authority_key_identifier and (ca is not None or public_key is not None):
        wanted[x509.AuthorityKeyIdentifier] = (False, _authority_key_identifier(ca, public_key))
    return wanted


def _san_text(names) -> str:
    texts = []
    for name in names:
        prefix = "IP" if isinstance(name, x509.IPAddress) else "DNS"
        texts.append(f"{prefix}:{name.value}")
    return ", ".join(texts) or "none"


def _label(ext: x509.Extension) -> str:
    if isinstance(ext.value, x509.UnrecognizedExtension):
        return ext.oid.dotted_string
    return type(ext.value).__name__


def _extension_reasons(cert, expected: Expected, ca, public_key, path: str) -> list[str]:
    wanted = _expected_extensions(expected, ca, public_key)
    reasons = []
    present = {type(ext.value): ext for ext in cert.extensions}
    for kind, (critical, value) in wanted.items():
        ext = present.get(kind)
        label = kind.__name__
        if ext is None:
            reasons.append(f"{path} has no {label} extension")
        elif kind is x509.SubjectAlternativeName and ext.value != value:
            reasons.append(
                f"{path} has the SANs {_san_text(ext.value)}, expected {_san_text(value)}"
            )
        elif ext.value != value:
            reasons.append(f"{path} has {label} {ext.value}, expected {value}")
        elif ext.critical != critical:
            state = "critical" if critical else "not critical"
            reasons.append(f"{path}: {label} must be {state}")
    # A key identifier computed from a key or a CA that could not be read is missing from
    # `wanted`: that unreadable file is the reason already given.
    wanted_kinds = set(wanted)
    if expected.subject_key_identifier:
        wanted_kinds.add(x509.SubjectKeyIdentifier)
    if expected.authority_key_identifier:
        wanted_kinds.add(x509.AuthorityKeyIdentifier)
    extra = sorted(_label(ext) for kind, ext in present.items() if kind not in wanted_kinds)
    if extra:
        reasons.append(f"{path} has extensions kubesalt does not issue: {', '.join(extra)}")
    return reasons


def _digest_reason(cert, expected: Expected, path: str) -> list[str]:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return [f"{path} is signed with an unsupported digest, expected {expected.digest}"]
    if algorithm is not None and algorithm.name != expected.digest:
        return [f"{path} is signed with {algorithm.name}, expected {expected.digest}"]
    return []


def check_certificate(
    path: str,
    key_path: str,
    expected: Expected,
    days_remaining: int,
    now: datetime.datetime | None = None,
) -> Verdict:
    """Is the certificate at `path` current for the private key at `key_path`?

    Not current (one reason each) when: it is missing, unreadable or holds several
    certificates; the CA certificate cannot be read; it is not issued and signed by that CA
    (or, for a CA, by itself); its public key is not the key's; its subject, SANs, basic
    constraints, key usage, extended key usage or key identifiers differ, or it has another
    extension; its digest differs; it expires within `days_remaining` days.
    """
    cert, problem = _load_certificates(path, "the certificate")
    if problem:
        return Verdict((problem,))
    now = now or datetime.datetime.now(tz=datetime.UTC)
    reasons: list[str] = []
    key, problem = _load_key(key_path, "its private key")
    public_key = key.public_key() if key is not None else None
    if problem:
        reasons.append(problem)
    elif _public_der(cert.public_key()) != _public_der(public_key):
        reasons.append(f"{path} does not carry the public key of {key_path}")
    issuer_reasons, ca = _issuer_reasons(cert, expected, key, path)
    reasons += issuer_reasons
    if cert.subject != expected.name:
        reasons.append(
            f"{path} has the subject {cert.subject.rfc4514_string()}, expected "
            f"{expected.name.rfc4514_string()}"
        )
    reasons += _extension_reasons(cert, expected, ca, public_key, path)
    reasons += _digest_reason(cert, expected, path)
    not_after = cert.not_valid_after_utc
    if not_after < now + datetime.timedelta(days=days_remaining):
        reasons.append(
            f"{path} expires on {not_after:%Y-%m-%d %H:%M} UTC, within the renewal window "
            f"of {days_remaining} days"
        )
    return Verdict(tuple(reasons), not_after)


def _mode(value) -> int:
    """A file mode as Salt reads it: '0600', '600' or 600 all mean 0o600."""
    try:
        return int(str(value), 8)
    except ValueError as err:
        raise PkiCheckError(f"mode {value!r} is not an octal file mode such as '0600'") from err


def check_file(path: str, user: str | None = None, group: str | None = None, mode=None) -> Verdict:
    """Is `path` a regular file (not a link) with this owner, group and mode (those given)?"""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return Verdict((f"{path} is missing",))
    except OSError as err:
        return Verdict((f"{path} cannot be examined ({err.strerror})",))
    if stat.S_ISLNK(info.st_mode):
        return Verdict((f"{path} is a symbolic link",))
    if not stat.S_ISREG(info.st_mode):
        return Verdict((f"{path} is not a regular file",))
    reasons = []
    if mode is not None and stat.S_IMODE(info.st_mode) != _mode(mode):
        reasons.append(
            f"{path} has the mode {stat.S_IMODE(info.st_mode):04o}, expected {_mode(mode):04o}"
        )
    if user is not None:
        reasons += _owner_reason(path, "owner", user, info.st_uid, pwd.getpwnam, pwd.getpwuid)
    if group is not None:
        reasons += _owner_reason(path, "group", group, info.st_gid, grp.getgrnam, grp.getgrgid)
    return Verdict(tuple(reasons))


def _owner_reason(path, what, name, current_id, by_name, by_id) -> list[str]:
    try:
        wanted_id = by_name(str(name))[2]
    except KeyError:
        return [f"the {what} {name!r} of {path} does not exist on this node"]
    if wanted_id == current_id:
        return []
    try:
        current = by_id(current_id)[0]
    except KeyError:
        current = str(current_id)
    return [f"{path} has the {what} {current}, expected {name}"]
