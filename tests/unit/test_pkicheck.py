"""The local check of keys and certificates (kubesalt.pkicheck), on real keys and certificates
made here with cryptography: one test per reason, RSA and ECDSA, IPv6 SANs, a certificate of
another CA with the same subject."""

import dataclasses
import datetime
import ipaddress
import os
import pwd

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubesalt import pkicheck
from kubesalt.kubeadm import pki as kpki
from kubesalt.pkicheck import Expected, PkiCheckError

NOW = datetime.datetime.now(tz=datetime.UTC)
DAY = datetime.timedelta(days=1)
LEAF_USAGE = ("digitalSignature", "keyEncipherment")
CA_USAGE = ("digitalSignature", "keyEncipherment", "keyCertSign")


def new_key(algo="rsa"):
    if algo == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_key(path, key, password=None):
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption
        )
    )
    return str(path)


def write_cert(path, *certs):
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return str(path)


def name(cn, *orgs, ous=()):
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, u) for u in ous]
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def key_usage(*names):
    flags = {field: False for field in pkicheck.KEY_USAGES.values()}
    flags.update({pkicheck.KEY_USAGES[n]: True for n in names})
    return x509.KeyUsage(**flags, encipher_only=False, decipher_only=False)


def make_ca(key, cn="kubernetes", days=3650):
    """A CA as kubesalt.pki.ca creates it: self-signed, SAN DNS=CN, SKI hash."""
    return (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + days * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(key_usage(*CA_USAGE), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def make_leaf(ca, ca_key, key, **change):
    """A leaf as the signing policies issue it; `change` alters one field."""
    fields = {
        "subject": name("system:node:w1", "system:nodes"),
        "sans": [x509.DNSName("w1"), x509.IPAddress(ipaddress.ip_address("198.51.100.21"))],
        "usage": key_usage(*LEAF_USAGE),
        "eku": [ExtendedKeyUsageOID.CLIENT_AUTH],
        "constraints": (x509.BasicConstraints(ca=False, path_length=None), True),
        "aki": True,
        "days": 365,
        "digest": hashes.SHA256(),
        "issuer": ca.subject,
        "public_key": key.public_key(),
        "extra": [],
    }
    fields.update(change)
    builder = (
        x509.CertificateBuilder()
        .subject_name(fields["subject"])
        .issuer_name(fields["issuer"])
        .public_key(fields["public_key"])
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + fields["days"] * DAY)
        .add_extension(fields["constraints"][0], critical=fields["constraints"][1])
        .add_extension(fields["usage"], critical=True)
    )
    if fields["eku"]:
        builder = builder.add_extension(x509.ExtendedKeyUsage(fields["eku"]), critical=False)
    if fields["sans"]:
        builder = builder.add_extension(x509.SubjectAlternativeName(fields["sans"]), critical=False)
    if fields["aki"]:
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        builder = builder.add_extension(aki, critical=False)
    for extension in fields["extra"]:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(ca_key, fields["digest"])


@pytest.fixture(params=["rsa", "ec"], scope="module")
def algo(request):
    return request.param


@pytest.fixture(scope="module")
def ca_key(algo):
    return new_key(algo)


@pytest.fixture(scope="module")
def ca(ca_key):
    return make_ca(ca_key)


@pytest.fixture(scope="module")
def leaf_key(algo):
    return new_key(algo)


@pytest.fixture
def pki(tmp_path, ca, ca_key, leaf_key):
    """Files of a worker: the CA certificate, its kubelet client key and certificate."""
    paths = {
        "ca": write_cert(tmp_path / "ca.crt", ca),
        "key": write_key(tmp_path / "kubelet-client.key", leaf_key),
        "cert": str(tmp_path / "kubelet-client.crt"),
    }
    expected = Expected(
        common_name="system:node:w1",
        organizations=("system:nodes",),
        dns_names=("w1",),
        ip_addresses=("198.51.100.21",),
        key_usage=LEAF_USAGE,
        extended_key_usage=("clientAuth",),
        ca_cert=paths["ca"],
        authority_key_identifier=True,
    )
    return dict(paths, expected=expected, tmp=tmp_path)


def check(pki, cert=None, expected=None, days_remaining=90, **kwargs):
    if cert is not None:
        write_cert(pki["tmp"] / "kubelet-client.crt", cert)
    return pkicheck.check_certificate(
        pki["cert"], pki["key"], expected or pki["expected"], days_remaining, **kwargs
    )


def only_reason(verdict):
    assert not verdict.current
    assert len(verdict.reasons) == 1, verdict.reasons
    return verdict.reasons[0]


# --- certificates ------------------------------------------------------------------------------


def test_a_certificate_as_issued_is_current(pki, ca, ca_key, leaf_key):
    verdict = check(pki, make_leaf(ca, ca_key, leaf_key))
    assert verdict.current, verdict.reasons
    assert verdict.reasons == ()
    assert NOW + 364 * DAY < verdict.not_after < NOW + 366 * DAY


def test_a_missing_certificate(pki):
    assert only_reason(check(pki)) == f"the certificate {pki['cert']} is missing"


def test_an_unreadable_certificate(pki):
    (pki["tmp"] / "kubelet-client.crt").write_text("not a certificate\n")
    assert only_reason(check(pki)) == f"the certificate {pki['cert']} is not a PEM certificate"


def test_a_directory_in_place_of_the_certificate(pki):
    (pki["tmp"] / "kubelet-client.crt").mkdir()
    assert "cannot be read" in only_reason(check(pki))


def test_a_file_with_a_chain_is_not_what_kubesalt_writes(pki, ca, ca_key, leaf_key):
    write_cert(pki["tmp"] / "kubelet-client.crt", make_leaf(ca, ca_key, leaf_key), ca)
    assert "holds 2 certificates; kubesalt writes one" in only_reason(check(pki))


def test_a_missing_ca_certificate(pki, ca, ca_key, leaf_key):
    os.unlink(pki["ca"])
    reasons = check(pki, make_leaf(ca, ca_key, leaf_key)).reasons
    assert f"the CA certificate {pki['ca']} is missing" in reasons


def test_a_missing_private_key(pki, ca, ca_key, leaf_key):
    os.unlink(pki["key"])
    reasons = check(pki, make_leaf(ca, ca_key, leaf_key)).reasons
    assert reasons == (f"its private key {pki['key']} is missing",)


def test_a_certificate_of_another_key(pki, ca, ca_key, algo):
    other = new_key(algo)
    reason = only_reason(check(pki, make_leaf(ca, ca_key, other)))
    assert reason == f"{pki['cert']} does not carry the public key of {pki['key']}"


def test_a_certificate_of_another_ca(pki, leaf_key, algo):
    other_key = new_key(algo)
    other = make_ca(other_key, cn="etcd-ca")
    reasons = check(pki, make_leaf(other, other_key, leaf_key)).reasons
    assert f"is issued by CN=etcd-ca, not by the CA of {pki['ca']} (CN=kubernetes)" in reasons[0]
    # Its authority key identifier names the other CA too.
    assert any("AuthorityKeyIdentifier" in r for r in reasons[1:])


def test_a_certificate_of_another_ca_with_the_same_subject(pki, leaf_key, algo):
    other_key = new_key(algo)
    other = make_ca(other_key, cn="kubernetes")
    reasons = check(pki, make_leaf(other, other_key, leaf_key)).reasons
    assert f"is not signed by the CA of {pki['ca']} (same subject CN=kubernetes" in reasons[0]


@pytest.mark.parametrize(
    ("subject", "shown"),
    [
        (name("system:node:cp1", "system:nodes"), "CN=system:node:cp1,O=system:nodes"),
        (name("system:node:w1", "system:masters"), "CN=system:node:w1,O=system:masters"),
        (name("system:node:w1"), "CN=system:node:w1"),
        (
            name("system:node:w1", "system:nodes", ous=("extra",)),
            "CN=system:node:w1,OU=extra,O=system:nodes",
        ),
    ],
    ids=["cn", "o", "no-o", "extra-ou"],
)
def test_a_subject_that_differs(pki, ca, ca_key, leaf_key, subject, shown):
    reason = only_reason(check(pki, make_leaf(ca, ca_key, leaf_key, subject=subject)))
    assert reason == (
        f"{pki['cert']} has the subject {shown}, expected CN=system:node:w1,O=system:nodes"
    )


def test_sans_that_differ_after_an_ip_change(pki, ca, ca_key, leaf_key):
    old = [x509.DNSName("w1"), x509.IPAddress(ipaddress.ip_address("198.51.100.99"))]
    reason = only_reason(check(pki, make_leaf(ca, ca_key, leaf_key, sans=old)))
    assert reason == (
        f"{pki['cert']} has the SANs DNS:w1, IP:198.51.100.99, expected DNS:w1, IP:198.51.100.21"
    )


def test_sans_in_another_order_differ_as_for_x509_v2(pki, ca, ca_key, leaf_key):
    swapped = [x509.IPAddress(ipaddress.ip_address("198.51.100.21")), x509.DNSName("w1")]
    assert "has the SANs IP:198.51.100.21, DNS:w1" in only_reason(
        check(pki, make_leaf(ca, ca_key, leaf_key, sans=swapped))
    )


def test_no_sans_where_some_are_expected(pki, ca, ca_key, leaf_key):
    reason = only_reason(check(pki, make_leaf(ca, ca_key, leaf_key, sans=[])))
    assert reason == f"{pki['cert']} has no SubjectAlternativeName extension"


def test_ipv6_sans(pki, ca, ca_key, leaf_key):
    sans = [
        x509.DNSName("cp1"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("2001:db8::11")),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = make_leaf(ca, ca_key, leaf_key, subject=name("cp1"), sans=sans)
    expected = dataclasses.replace(
        pki["expected"],
        common_name="cp1",
        organizations=(),
        dns_names=("cp1", "localhost"),
        # Another spelling of the same address is the same SAN.
        ip_addresses=("2001:0db8:0:0::11", "127.0.0.1", "::1"),
    )
    assert check(pki, cert, expected).current
    moved = dataclasses.replace(expected, ip_addresses=("2001:db8::12", "127.0.0.1", "::1"))
    assert "expected DNS:cp1, DNS:localhost, IP:2001:db8::12, IP:127.0.0.1, IP:::1" in (
        only_reason(check(pki, cert, moved))
    )


def test_key_usages_that_differ(pki, ca, ca_key, leaf_key):
    usage = key_usage("digitalSignature", "keyEncipherment", "keyCertSign")
    reason = only_reason(check(pki, make_leaf(ca, ca_key, leaf_key, usage=usage)))
    assert reason.startswith(f"{pki['cert']} has KeyUsage <KeyUsage(")
    assert "key_cert_sign=True" in reason


def test_extended_key_usages_that_differ(pki, ca, ca_key, leaf_key):
    eku = [ExtendedKeyUsageOID.SERVER_AUTH]
    assert "has ExtendedKeyUsage" in only_reason(
        check(pki, make_leaf(ca, ca_key, leaf_key, eku=eku))
    )


def test_a_ca_flag_where_a_leaf_is_expected(pki, ca, ca_key, leaf_key):
    constraints = (x509.BasicConstraints(ca=True, path_length=None), True)
    reason = only_reason(check(pki, make_leaf(ca, ca_key, leaf_key, constraints=constraints)))
    assert "has BasicConstraints <BasicConstraints(ca=True" in reason


def test_basic_constraints_not_critical(pki, ca, ca_key, leaf_key):
    constraints = (x509.BasicConstraints(ca=False, path_length=None), False)
    reason = only_reason(check(pki, make_leaf(ca, ca_key, leaf_key, constraints=constraints)))
    assert reason == f"{pki['cert']}: BasicConstraints must be critical"


def test_an_extension_kubesalt_does_not_issue(pki, ca, ca_key, leaf_key):
    extra = [
        x509.NameConstraints(
            permitted_subtrees=[x509.DNSName("example.com")], excluded_subtrees=None
        )
    ]
    reason = only_reason(check(pki, make_leaf(ca, ca_key, leaf_key, extra=extra)))
    assert reason == f"{pki['cert']} has extensions kubesalt does not issue: NameConstraints"


def test_a_missing_authority_key_identifier(pki, ca, ca_key, leaf_key):
    reason = only_reason(check(pki, make_leaf(ca, ca_key, leaf_key, aki=False)))
    assert reason == f"{pki['cert']} has no AuthorityKeyIdentifier extension"


def test_another_digest(pki, ca, ca_key, leaf_key):
    cert = make_leaf(ca, ca_key, leaf_key, digest=hashes.SHA384())
    assert only_reason(check(pki, cert)) == f"{pki['cert']} is signed with sha384, expected sha256"


def test_expiry_within_the_renewal_window(pki, ca, ca_key, leaf_key):
    cert = make_leaf(ca, ca_key, leaf_key, days=30)
    reason = only_reason(check(pki, cert, days_remaining=90))
    assert reason.startswith(f"{pki['cert']} expires on ")
    assert reason.endswith("UTC, within the renewal window of 90 days")
    assert check(pki, cert, days_remaining=29).current


def test_expiry_is_measured_from_now(pki, ca, ca_key, leaf_key):
    cert = make_leaf(ca, ca_key, leaf_key, days=365)
    assert check(pki, cert, now=NOW + 200 * DAY).current
    assert not check(pki, cert, now=NOW + 300 * DAY).current


def test_an_expired_certificate_with_days_remaining_zero(pki, ca, ca_key, leaf_key):
    cert = make_leaf(ca, ca_key, leaf_key, days=1)
    assert check(pki, cert, days_remaining=0).current
    assert "within the renewal window of 0 days" in only_reason(
        check(pki, cert, days_remaining=0, now=NOW + 2 * DAY)
    )


def test_every_reason_at_once(pki, leaf_key, algo):
    other_key = new_key(algo)
    other = make_ca(other_key, cn="kubernetes")
    cert = make_leaf(
        other,
        other_key,
        new_key(algo),
        subject=name("system:node:cp1"),
        sans=[],
        days=10,
        digest=hashes.SHA512(),
    )
    reasons = check(pki, cert).reasons
    words = (
        "does not carry the public key",
        "is not signed by the CA",
        "has the subject CN=system:node:cp1",
        "has no SubjectAlternativeName",
        "has AuthorityKeyIdentifier",  # names the other CA's key
        "is signed with sha512",
        "within the renewal window",
    )
    assert len(reasons) == len(words), reasons
    for reason, word in zip(reasons, words, strict=True):
        assert word in reason


# --- CA certificates (self-signed) -------------------------------------------------------------


@pytest.fixture
def ca_files(tmp_path, ca, ca_key):
    expected = Expected(
        common_name="kubernetes",
        dns_names=("kubernetes",),
        key_usage=CA_USAGE,
        ca=True,
        subject_key_identifier=True,
    )
    return {
        "cert": write_cert(tmp_path / "ca.crt", ca),
        "key": write_key(tmp_path / "ca.key", ca_key),
        "expected": expected,
    }


def test_a_ca_as_created_is_current(ca_files):
    verdict = pkicheck.check_certificate(ca_files["cert"], ca_files["key"], ca_files["expected"], 0)
    assert verdict.current, verdict.reasons


def test_a_ca_of_another_key(ca_files, tmp_path, algo):
    write_key(tmp_path / "ca.key", new_key(algo))
    reasons = pkicheck.check_certificate(
        ca_files["cert"], ca_files["key"], ca_files["expected"], 0
    ).reasons
    assert f"{ca_files['cert']} does not carry the public key of {ca_files['key']}" in reasons
    assert any("SubjectKeyIdentifier" in r for r in reasons)


def test_a_ca_issued_by_another(ca_files, tmp_path, ca_key, algo):
    other_key = new_key(algo)
    leaf_like = make_leaf(
        make_ca(other_key, "other"), other_key, ca_key, subject=name("kubernetes")
    )
    write_cert(tmp_path / "ca.crt", leaf_like)
    reasons = pkicheck.check_certificate(
        ca_files["cert"], ca_files["key"], ca_files["expected"], 0
    ).reasons
    assert f"{ca_files['cert']} is issued by CN=other, not self-signed" in reasons


# --- private keys ------------------------------------------------------------------------------


def test_a_private_key_as_configured(tmp_path):
    rsa_key = write_key(tmp_path / "rsa.key", new_key("rsa"))
    ec_key = write_key(tmp_path / "ec.key", new_key("ec"))
    assert pkicheck.check_private_key(rsa_key, "rsa", 2048).current
    assert pkicheck.check_private_key(rsa_key, "rsa").current  # x509_v2's default size
    assert pkicheck.check_private_key(ec_key, "ec", 256).current
    assert pkicheck.check_private_key(ec_key, "ec").current


@pytest.mark.parametrize(
    ("algo", "keysize", "shown"),
    [
        ("ec", 256, "is RSA 2048, expected EC 256"),
        ("rsa", 3072, "is RSA 2048, expected RSA 3072"),
    ],
)
def test_a_private_key_of_another_type_or_size(tmp_path, algo, keysize, shown):
    path = write_key(tmp_path / "a.key", new_key("rsa"))
    assert only_reason(pkicheck.check_private_key(path, algo, keysize)) == (
        f"the private key {path} {shown}"
    )


def test_an_ec_key_where_rsa_is_expected(tmp_path):
    path = write_key(tmp_path / "a.key", new_key("ec"))
    assert only_reason(pkicheck.check_private_key(path, "rsa", 2048)) == (
        f"the private key {path} is EC 256 (secp256r1), expected RSA 2048"
    )


def test_a_private_key_that_is_missing_unparsable_or_encrypted(tmp_path):
    missing = str(tmp_path / "missing.key")
    assert only_reason(pkicheck.check_private_key(missing)) == (
        f"the private key {missing} is missing"
    )
    garbage = tmp_path / "garbage.key"
    garbage.write_text("-----BEGIN RSA PRIVATE KEY-----\nnot base64\n")
    assert only_reason(pkicheck.check_private_key(str(garbage))).endswith(
        "is not a PEM private key"
    )
    encrypted = write_key(tmp_path / "encrypted.key", new_key("ec"), password=b"secret")
    assert only_reason(pkicheck.check_private_key(encrypted, "ec")) == (
        f"the private key {encrypted} is encrypted; kubesalt keys are not"
    )
    directory = tmp_path / "dir.key"
    directory.mkdir()
    assert "cannot be read" in only_reason(pkicheck.check_private_key(str(directory)))


def test_an_algorithm_the_check_does_not_know(tmp_path):
    with pytest.raises(PkiCheckError, match="algo 'ed25519' is not checked here; valid: rsa, ec"):
        pkicheck.check_private_key(str(tmp_path / "k"), "ed25519")


# --- mode and owner ----------------------------------------------------------------------------


def test_a_file_with_the_right_mode_and_owner(tmp_path):
    path = tmp_path / "a.key"
    path.write_text("x")
    path.chmod(0o600)
    owner = pwd.getpwuid(os.getuid()).pw_name
    assert pkicheck.check_file(str(path), user=owner, mode="0600").current
    assert pkicheck.check_file(str(path), mode=600).current  # Salt reads 600 as octal
    assert pkicheck.check_file(str(path)).current


def test_a_file_with_another_mode(tmp_path):
    path = tmp_path / "a.key"
    path.write_text("x")
    path.chmod(0o644)
    assert only_reason(pkicheck.check_file(str(path), mode="0600")) == (
        f"{path} has the mode 0644, expected 0600"
    )


def test_a_file_of_another_owner(tmp_path):
    path = tmp_path / "a.key"
    path.write_text("x")
    nobody = pwd.getpwnam("nobody")
    os.chown(path, nobody.pw_uid, os.getgid())
    owner = pwd.getpwuid(os.getuid()).pw_name
    assert only_reason(pkicheck.check_file(str(path), user=owner)) == (
        f"{path} has the owner nobody, expected {owner}"
    )


def test_a_user_that_does_not_exist(tmp_path):
    path = tmp_path / "a.key"
    path.write_text("x")
    assert only_reason(pkicheck.check_file(str(path), group="no-such-group-here")) == (
        f"the group 'no-such-group-here' of {path} does not exist on this node"
    )


def test_a_link_or_a_missing_file(tmp_path):
    target = tmp_path / "target"
    target.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert only_reason(pkicheck.check_file(str(link))) == f"{link} is a symbolic link"
    assert only_reason(pkicheck.check_file(str(tmp_path / "none"))) == (
        f"{tmp_path / 'none'} is missing"
    )


def test_a_mode_that_is_not_octal(tmp_path):
    path = tmp_path / "a"
    path.write_text("x")
    with pytest.raises(PkiCheckError, match="mode '0x600' is not an octal file mode"):
        pkicheck.check_file(str(path), mode="0x600")


# --- the expected certificate, as states give it -----------------------------------------------


def test_expected_round_trips_through_a_state_argument(pki):
    mapping = pki["expected"].as_mapping()
    assert mapping["dns_names"] == ["w1"]
    assert mapping["ca_cert"] == pki["ca"]
    assert Expected.from_mapping(mapping) == pki["expected"]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("CN=x", "expected must be a mapping"),
        ({"common_name": "x", "ca_cert": "/c", "sans": []}, "expected has unknown keys sans"),
        ({"ca_cert": "/c"}, "expected lacks common_name"),
        ({"common_name": "x", "ca_cert": "/c", "dns_names": "x"}, "dns_names must be a list"),
        ({"common_name": "x", "ca_cert": "/c", "key_usage": ["sign"]}, "key_usage 'sign'"),
        ({"common_name": "x", "ca_cert": "/c", "extended_key_usage": ["any"]}, "'any' is unknown"),
        ({"common_name": "x", "ca_cert": "/c", "ip_addresses": ["1.2.3"]}, "'1.2.3' is not an IP"),
        ({"common_name": "x"}, "give ca_cert (the CA that signs it)"),
    ],
)
def test_an_invalid_expected_argument(mapping, message):
    with pytest.raises(PkiCheckError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Expected.from_mapping(mapping)


# --- loading keys without OpenSSL's primality tests --------------------------------------------


def _pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _with(numbers, **changed):
    """`numbers` with some private numbers changed, as a PEM key nothing validated."""
    fields = {name: getattr(numbers, name) for name in ("p", "q", "d", "dmp1", "dmq1", "iqmp")}
    fields.update(changed)
    public = numbers.public_numbers
    if "p" in changed or "q" in changed:  # cryptography builds no key whose p*q is not n
        public = rsa.RSAPublicNumbers(public.e, fields["p"] * fields["q"])
    damaged = rsa.RSAPrivateNumbers(**fields, public_numbers=public)
    return _pem(damaged.private_key(unsafe_skip_rsa_key_validation=True))


@pytest.fixture(scope="module")
def rsa_numbers():
    return new_key("rsa").private_numbers()


@pytest.mark.parametrize("name", ["p", "q", "d", "dmp1", "dmq1", "iqmp"])
def test_a_damaged_rsa_key_is_found_as_openssl_finds_it(tmp_path, rsa_numbers, name):
    """Without OpenSSL's key check (40 ms a key: it tests the primes), the numbers are
    checked against each other: a key with any one of them changed is refused, as OpenSSL's
    check refuses it."""
    pem = _with(rsa_numbers, **{name: getattr(rsa_numbers, name) + 2})
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem, password=None)
    with pytest.raises(kpki.DamagedKey, match="its RSA numbers do not agree with each other"):
        kpki.parse_private_key(pem)
    path = tmp_path / "damaged.key"
    path.write_bytes(pem)
    assert only_reason(pkicheck.check_private_key(str(path), "rsa", 2048)) == (
        f"the private key {path} is damaged: its RSA numbers do not agree with each other"
    )


def test_a_sound_key_loads_as_openssl_loads_it(rsa_numbers):
    pem = _with(rsa_numbers)
    ours, openssl = kpki.parse_private_key(pem), serialization.load_pem_private_key(pem, None)
    assert ours.private_numbers() == openssl.private_numbers()
    ec_pem = _pem(new_key("ec"))
    assert kpki.parse_private_key(ec_pem).private_numbers() == (
        serialization.load_pem_private_key(ec_pem, None).private_numbers()
    )
