"""The local check renews exactly when Salt's x509_v2 would.

Every CA and certificate of a control-plane node is issued here the way Salt issues it
(`salt.utils.x509.build_crt`, the builder of x509_v2): the CAs from the arguments
`kubesalt_kubeadm.pki` gives `kubesalt.pki.ca`, each leaf from its signing policy
(`kubesalt.signing_policies`, the content of the CA minion's pillar). Then, for the
certificate as issued and for each way it can fall out of date, the verdict of
`kubesalt.pkicheck` (with the `expected` of `kubesalt_kubeadm.pki`) is compared with
x509_v2's own `check_cert_changes` (with the policy as the CA minion hands it out).
An IPv6 cluster with ECDSA keys (RSA is covered in test_pkicheck).
"""

import copy
import pathlib
import shutil
from unittest.mock import Mock

import pytest
import salt.modules.grains
import salt.modules.mine
import salt.utils.x509 as x509util
from cryptography.hazmat.primitives import hashes

from kubesalt import config, pkicheck, signing_policies
from kubesalt.kubeadm import cluster
from kubesalt.kubeadm.model import Layout
from tests.unit import fake_mine
from tests.unit.loader import load
from tests.unit.test_config import BASE
from tests.unit.test_pkicheck import new_key, write_cert, write_key

kubesalt_kubeadm = load("_modules", "kubesalt_kubeadm")
kubesalt_bootstrap = load("_modules", "kubesalt_bootstrap")

CA = "boot"
NODES = {
    CA: {"roles": ["bootstrap", "ca"]},
    "cp1": {"roles": ["control-plane", "etcd", "node"]},
}
IPS = {CA: "2001:db8::10", "cp1": "2001:db8::11"}
CFG, _ = config.validate(
    dict(
        BASE,
        ca={"minion": CA},
        networks={"controlPlane": {"cidr": "2001:db8::/64"}},
        apiServer={"host": "2001:db8::100"},
        pki={"algorithm": "ECDSA-P256"},
    )
)
CFG["first_node"] = "cp1"  # as the kubesalt ext_pillar gives it (the inventory's record)
# What x509_v2 reads from the CA's certificate arguments in kubesalt.pki.ca.
CA_ARGS = ("CN", "subjectAltName", "basicConstraints", "keyUsage", "subjectKeyIdentifier")


@pytest.fixture
def grains(tmp_path):
    return {"id": CA, "host": CA, "kubesalt_root": str(tmp_path / CA)}


@pytest.fixture
def configure_loader_modules(grains):
    return {
        kubesalt_kubeadm: {
            "__pillar__": {"kubesalt": dict(CFG, nodes=NODES)},
            "__grains__": grains,
            "__salt__": {
                "mine.get": fake_mine.mine_get({"control_plane_ip": IPS}),
                # Only the node's workload-plane IP (its kubelet's --node-ip) is a grain
                # here; the planes are one network, so it is the node's control-plane IP.
                "grains.get": Mock(
                    spec=salt.modules.grains.get,
                    side_effect=lambda key, default="": (
                        IPS[grains["id"]] if key == "kubesalt:workload_plane_ip" else default
                    ),
                ),
            },
        },
        kubesalt_bootstrap: {
            "__pillar__": {"kubesalt": dict(CFG, nodes=NODES)},
            "__grains__": {"id": CA},
            "__salt__": {"kubesalt_network.plane_ip": Mock(return_value=IPS[CA])},
        },
    }


def _path(path):
    """`path` as a Path, its directory created."""
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _sign(builder, key_path):
    return builder.sign(x509util.load_privkey(key_path), hashes.SHA256())


def _pki_of(grains, node, root):
    grains.update(id=node, host=node, kubesalt_root=str(root))
    return kubesalt_kubeadm.pki()


@pytest.fixture
def cluster_pki(grains, tmp_path):
    """The CA minion's CAs, created as kubesalt.pki.ca does, and cp1's expected certificates
    with a copy of the CA certificates (as the mine gives them)."""
    ca_pki = _pki_of(grains, CA, tmp_path / CA)
    for ca in ca_pki["cas"]:
        write_key(_path(ca["key"]), new_key("ec"))
        args = {k: ca[k] for k in CA_ARGS}
        builder, *_ = x509util.build_crt(ca["key"], days_valid=ca["days_valid"], **args)
        write_cert(_path(ca["cert"]), _sign(builder, ca["key"]))
    node_pki = _pki_of(grains, "cp1", tmp_path / "cp1")
    for ca in node_pki["cas"]:
        source = ca["cert"].replace(str(tmp_path / "cp1"), str(tmp_path / CA))
        shutil.copy(source, _path(ca["cert"]))
    roles = cluster.roles_by_node(NODES)
    policies = signing_policies.signing_policies(CFG, roles, IPS, Layout(str(tmp_path / CA)))
    return {"ca": ca_pki, "node": node_pki, "policies": policies}


def _issue(policy, key_path, **change):
    """Sign as the CA minion does: the policy merged over the request, x509_v2's builder."""
    kwargs = x509util.merge_signing_policy(copy.deepcopy(policy), {"private_key": key_path})
    kwargs.update(change)
    for unused in ("minions", "digest", "copypath", "prepend_cn"):
        kwargs.pop(unused)
    signing_key = kwargs.pop("signing_private_key")
    builder, *_ = x509util.build_crt(signing_key, **kwargs)
    return _sign(builder, signing_key)


def _as_handed_out(policy):
    """The policy as x509.get_signing_policy gives it to a remote minion."""
    public = {k: v for k, v in policy.items() if k not in ("minions", "signing_private_key")}
    public["signing_cert"] = x509util.to_pem(x509util.load_cert(policy["signing_cert"])).decode()
    return public


def _x509_renews(cert, policy, days_remaining):
    _, changes, replace, _ = x509util.check_cert_changes(
        cert["cert"],
        days_remaining=days_remaining,
        days_valid=None,
        not_before=None,
        not_after=None,
        ca_server=CA,
        signing_policy_contents=_as_handed_out(policy),
        encoding="pem",
        append_certs=[],
        digest="sha256",
        private_key=cert["key"],
    )
    return bool(changes or replace)


def _local_renews(cert, days_remaining, expected=None):
    wanted = pkicheck.Expected.from_mapping(expected or cert["expected"])
    return not pkicheck.check_certificate(cert["cert"], cert["key"], wanted, days_remaining).current


def _agree(cert, policy, days_remaining=None, expected=None):
    days = cert["days_remaining"] if days_remaining is None else days_remaining
    local = _local_renews(cert, days, expected)
    assert local == _x509_renews(cert, policy, days), cert["kind"]
    return local


def _issue_all(cluster_pki, **change):
    for cert in cluster_pki["node"]["certificates"]:
        write_key(_path(cert["key"]), new_key("ec"))
        policy = cluster_pki["policies"][cert["signing_policy"]]
        write_cert(_path(cert["cert"]), _issue(policy, cert["key"], **change))


def test_the_cas_as_created_are_current(cluster_pki):
    for ca in cluster_pki["ca"]["cas"]:
        wanted = pkicheck.Expected.from_mapping(ca["expected"])
        verdict = pkicheck.check_certificate(ca["cert"], ca["key"], wanted, 0)
        assert verdict.current, (ca["kind"], verdict.reasons)


def test_every_certificate_as_issued_under_its_policy_is_current(cluster_pki):
    _issue_all(cluster_pki)
    kinds = []
    for cert in cluster_pki["node"]["certificates"]:
        policy = cluster_pki["policies"][cert["signing_policy"]]
        assert _agree(cert, policy) is False
        kinds.append(cert["kind"])
    assert "etcd-server" in kinds and "apiserver" in kinds and "super-admin" in kinds


def test_both_renew_within_the_renewal_window(cluster_pki):
    _issue_all(cluster_pki, days_valid=30)
    for cert in cluster_pki["node"]["certificates"]:
        policy = cluster_pki["policies"][cert["signing_policy"]]
        assert _agree(cert, policy, days_remaining=31) is True
        assert _agree(cert, policy, days_remaining=29) is False


def test_both_reissue_when_the_policy_gains_a_san(cluster_pki):
    _issue_all(cluster_pki)
    cert = next(c for c in cluster_pki["node"]["certificates"] if c["kind"] == "apiserver")
    policy = copy.deepcopy(cluster_pki["policies"][cert["signing_policy"]])
    policy["subjectAltName"] += ", IP:2001:db8::12"
    expected = dict(
        cert["expected"], ip_addresses=[*cert["expected"]["ip_addresses"], "2001:db8::12"]
    )
    assert _agree(cert, policy, expected=expected) is True


@pytest.mark.parametrize(
    "change",
    [
        {"subjectAltName": "DNS:kubernetes"},
        {"extendedKeyUsage": "serverAuth"},
        {"subject": "CN=system:node:cp2,O=system:nodes"},
        {"authorityKeyIdentifier": None},
        {"tlsfeature": "status_request"},
    ],
    ids=["extra-san", "eku", "subject", "no-aki", "tls-feature"],
)
def test_both_reissue_what_the_policy_would_not_give(cluster_pki, change):
    cert = next(c for c in cluster_pki["node"]["certificates"] if c["kind"] == "kubelet-client")
    policy = cluster_pki["policies"][cert["signing_policy"]]
    write_key(_path(cert["key"]), new_key("ec"))
    write_cert(_path(cert["cert"]), _issue(policy, cert["key"], **change))
    assert _agree(cert, policy) is True


def test_both_reissue_after_a_new_key_or_another_ca(cluster_pki, tmp_path):
    _issue_all(cluster_pki)
    cert = next(c for c in cluster_pki["node"]["certificates"] if c["kind"] == "etcd-peer")
    policy = cluster_pki["policies"][cert["signing_policy"]]
    write_key(_path(cert["key"]), new_key("ec"))
    assert _agree(cert, policy) is True
    # Same subject (etcd-ca), another key: the CA was re-created.
    other_key = write_key(tmp_path / "other-ca.key", new_key("ec"))
    builder, *_ = x509util.build_crt(
        other_key, days_valid=10, CN="etcd-ca", basicConstraints="critical, CA:TRUE"
    )
    other = dict(policy, signing_private_key=other_key)
    other["signing_cert"] = write_cert(tmp_path / "other-ca.crt", _sign(builder, other_key))
    write_cert(_path(cert["cert"]), _issue(other, cert["key"]))
    assert _agree(cert, policy) is True


def test_the_repository_certificate_as_nginx_gets_it_is_current(tmp_path):
    """nginx's certificate (kubesalt.nginx.configured): signed locally with the arguments
    kubesalt_bootstrap.repository_certificate gives, checked with its `expected`."""
    cert = kubesalt_bootstrap.repository_certificate()
    ca_key = write_key(tmp_path / "ca.key", new_key("ec"))
    builder, *_ = x509util.build_crt(
        ca_key, days_valid=10, CN="kubernetes", basicConstraints="critical, CA:TRUE"
    )
    ca_cert = write_cert(tmp_path / "ca.crt", _sign(builder, ca_key))
    key = write_key(tmp_path / "repository.key", new_key("ec"))
    args = {k: cert[k] for k in ("CN", "subjectAltName", "basicConstraints", "keyUsage")}
    args["extendedKeyUsage"] = cert["extendedKeyUsage"]
    builder, *_ = x509util.build_crt(
        ca_key, signing_cert=ca_cert, private_key=key, days_valid=cert["days_valid"], **args
    )
    path = write_cert(tmp_path / "repository.crt", _sign(builder, ca_key))
    wanted = pkicheck.Expected.from_mapping(dict(cert["expected"], ca_cert=ca_cert))
    assert wanted.ip_addresses == (IPS[CA],)
    assert pkicheck.check_certificate(path, key, wanted, cert["days_remaining"]).current
    _, changes, replace, _ = x509util.check_cert_changes(
        path,
        days_remaining=cert["days_remaining"],
        days_valid=cert["days_valid"],
        not_before=None,
        not_after=None,
        ca_server=None,
        signing_policy_contents={},
        encoding="pem",
        append_certs=[],
        digest="sha256",
        signing_private_key=ca_key,
        signing_cert=ca_cert,
        private_key=key,
        **args,
    )
    assert not changes and not replace
