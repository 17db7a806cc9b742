"""Signing policies generated from the inventory, the mine and the certificate table, and
the sealed transport of sa.key."""

import pytest

from kubesalt import config, sealing, signing_policies
from kubesalt.kubeadm import RenderError, cluster
from kubesalt.kubeadm.model import Layout
from kubesalt.kubeadm.pki import generate_key, key_to_pem
from tests.unit.test_config import BASE

# As the kubesalt ext_pillar gives it: boot is the node the inventory recorded as first.
CFG = dict(config.validate(dict(BASE, ca={"minion": "boot"}))[0], first_node="boot")
ROLES = {
    "boot": frozenset({"bootstrap", "ca", "control-plane", "etcd", "node"}),
    "cp2": frozenset({"control-plane", "etcd", "node"}),
    "w1": frozenset({"node"}),
}
IPS = {"boot": "198.51.100.10", "cp2": "198.51.100.11", "w1": "198.51.100.21"}
PINNED = {
    "minions",
    "signing_private_key",
    "signing_cert",
    "subject",
    "basicConstraints",
    "keyUsage",
    "extendedKeyUsage",
    "subjectAltName",
    "authorityKeyIdentifier",
    "days_valid",
    "digest",
    *signing_policies.NULLED_EXTENSIONS,
    *signing_policies.NULLED_ARGUMENTS,
}


@pytest.fixture(scope="module")
def policies():
    return signing_policies.signing_policies(CFG, ROLES, IPS)


def test_every_policy_pins_every_field(policies):
    for name, policy in policies.items():
        assert set(policy) == PINNED, name
        assert isinstance(policy["subject"], str), name
        assert policy["basicConstraints"] == "critical, CA:FALSE", name
        assert policy["keyUsage"] == "critical, digitalSignature, keyEncipherment", name
        assert policy["days_valid"] == 365, name
        for key in ("csr", "not_before", "not_after", "serial_number", "copypath"):
            assert policy[key] is None, (name, key)
        for key in signing_policies.NULLED_EXTENSIONS:
            assert policy[key] is None, (name, key)
        assert "copypath" in policy and policy["copypath"] is None


def test_policy_names_from_the_inventory(policies):
    assert sorted(policies) == [
        "kubesalt-admin",
        "kubesalt-apiserver-boot",
        "kubesalt-apiserver-cp2",
        "kubesalt-apiserver-etcd-client",
        "kubesalt-apiserver-kubelet-client",
        "kubesalt-controller-manager",
        "kubesalt-etcd-healthcheck-client",
        "kubesalt-etcd-peer-boot",
        "kubesalt-etcd-peer-cp2",
        "kubesalt-etcd-server-boot",
        "kubesalt-etcd-server-cp2",
        "kubesalt-front-proxy-client",
        "kubesalt-kubelet-client-boot",
        "kubesalt-kubelet-client-cp2",
        "kubesalt-kubelet-client-w1",
        "kubesalt-scheduler",
        "kubesalt-super-admin",
    ]


def test_minions_per_kind_and_per_node(policies):
    assert policies["kubesalt-admin"]["minions"] == "L@boot,cp2"
    assert policies["kubesalt-etcd-healthcheck-client"]["minions"] == "L@boot,cp2"
    assert policies["kubesalt-super-admin"]["minions"] == "boot"
    assert policies["kubesalt-kubelet-client-w1"]["minions"] == "w1"
    assert policies["kubesalt-etcd-server-cp2"]["minions"] == "cp2"


def test_worker_only_gets_its_kubelet_client(policies):
    for_w1 = [name for name, policy in policies.items() if "w1" in policy["minions"]]
    assert for_w1 == ["kubesalt-kubelet-client-w1"]
    policy = policies["kubesalt-kubelet-client-w1"]
    assert policy["subject"] == "CN=system:node:w1,O=system:nodes"
    assert policy["extendedKeyUsage"] == "clientAuth"
    assert policy["subjectAltName"] is None


def test_pinned_values_of_node_identities(policies):
    etcd = policies["kubesalt-etcd-server-cp2"]
    assert etcd["subject"] == "CN=cp2"
    assert (
        etcd["subjectAltName"] == "DNS:cp2, DNS:localhost, IP:198.51.100.11, IP:127.0.0.1, IP:::1"
    )
    assert etcd["extendedKeyUsage"] == "serverAuth, clientAuth"
    assert etcd["signing_private_key"] == "/etc/kubernetes/pki/etcd/ca.key"
    assert etcd["signing_cert"] == "/etc/kubernetes/pki/etcd/ca.crt"
    apiserver = policies["kubesalt-apiserver-cp2"]
    assert apiserver["subjectAltName"] == (
        "DNS:cp2, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, "
        "DNS:kubernetes.default.svc.cluster.local, IP:10.96.0.1, IP:198.51.100.11, "
        "IP:198.51.100.100"
    )
    front = policies["kubesalt-front-proxy-client"]
    assert front["signing_private_key"] == "/etc/kubernetes/pki/front-proxy-ca.key"


def test_ca_layout_moves_the_signing_files():
    policies = signing_policies.signing_policies(CFG, ROLES, IPS, Layout("/srv/ca"))
    assert policies["kubesalt-admin"]["signing_cert"] == "/srv/ca/etc/kubernetes/pki/ca.crt"


def test_node_without_ip_gets_no_policy():
    policies = signing_policies.signing_policies(CFG, ROLES, {"boot": IPS["boot"]})
    assert not [p for p in policies.values() if "cp2" in p["minions"] or "w1" in p["minions"]]
    assert policies["kubesalt-admin"]["minions"] == "boot"


def test_worker_only_inventory_has_no_control_plane_policies():
    policies = signing_policies.signing_policies(CFG, {"w1": ROLES["w1"]}, IPS)
    assert list(policies) == ["kubesalt-kubelet-client-w1"]


def test_days_remaining_stays_below_the_validity():
    assert signing_policies.days_remaining(365) == 90
    assert signing_policies.days_remaining(30) == 7
    assert signing_policies.days_remaining(1) == 0


def test_minions_target_needs_a_minion():
    with pytest.raises(RenderError, match="at least one minion"):
        signing_policies.minions_target([])


def test_key_args_follow_the_algorithm():
    cfg = dict(CFG, pki=dict(CFG["pki"], algorithm="ECDSA-P256"))
    assert signing_policies.key_args(cfg) == {"algo": "ec", "keysize": 256}
    with pytest.raises(RenderError, match="pki.algorithm is 'DSA'"):
        signing_policies.key_args(dict(CFG, pki=dict(CFG["pki"], algorithm="DSA")))
    p384 = dict(CFG, pki=dict(CFG["pki"], algorithm="ECDSA-P384"))
    with pytest.raises(RenderError, match="ECDSA-P384 needs Kubernetes 1.34 or later"):
        signing_policies.key_args(dict(p384, kubernetes=dict(CFG["kubernetes"], version="v1.33.5")))
    p384["kubernetes"] = dict(CFG["kubernetes"], version="v1.34.2")
    assert signing_policies.key_args(p384) == {"algo": "ec", "keysize": 384}


# --- cluster: first node, members ---------------------------------------------------------------


def test_first_node_is_the_recorded_one_while_it_has_the_roles():
    assert cluster.first_node(CFG, ROLES) == "boot"
    roles = dict(ROLES, boot=frozenset({"bootstrap", "ca"}))
    assert cluster.first_node(CFG, roles) is None
    assert cluster.first_node(CFG, {"w1": ROLES["w1"]}) is None


def test_joining_member_lists_the_first_member_first():
    roles = dict(ROLES, a=frozenset({"control-plane", "etcd"}))
    ips = dict(IPS, a="198.51.100.12")
    node = cluster.build_node(CFG, "cp2", roles, ips)
    assert not node.first
    assert node.etcd_members == (
        ("boot", "198.51.100.10"),
        ("a", "198.51.100.12"),
        ("cp2", "198.51.100.11"),
    )
    assert cluster.build_node(CFG, "boot", roles, ips).first


@pytest.mark.parametrize(
    ("name", "ips", "message"),
    [
        ("zz", IPS, "node zz is not in the inventory"),
        ("w1", {}, "node w1 has no control-plane IP in the mine"),
    ],
)
def test_build_node_errors(name, ips, message):
    with pytest.raises(RenderError, match=message):
        cluster.build_node(CFG, name, ROLES, ips)


def test_roles_from_the_pillar_are_checked():
    assert cluster.roles_by_node({"w1": {"roles": ["node"]}}) == {"w1": frozenset({"node"})}
    with pytest.raises(RenderError, match=r"kubesalt:nodes:w1:roles is \['master'\]"):
        cluster.roles_by_node({"w1": {"roles": ["master"]}})


# --- sealing --------------------------------------------------------------------------------------


def test_seal_round_trip():
    key, public = sealing.new_recipient()
    sealed = sealing.seal(b"secret", public)
    assert b"secret" not in str(sealed).encode()
    assert sealing.unseal(sealed, key) == b"secret"


def test_sealed_for_another_recipient_does_not_open():
    _, public = sealing.new_recipient()
    other, _ = sealing.new_recipient()
    with pytest.raises(sealing.SealingError, match="sealed for another recipient"):
        sealing.unseal(sealing.seal(b"secret", public), other)


def test_bad_recipient_key_is_named():
    with pytest.raises(sealing.SealingError, match="an X25519 public key has 32"):
        sealing.seal(b"secret", "AAAA")
    with pytest.raises(sealing.SealingError, match="not base64"):
        sealing.seal(b"secret", "not base64!")
    with pytest.raises(sealing.SealingError, match="keys ephemeral, salt, nonce"):
        sealing.unseal({"x": 1}, sealing.new_recipient()[0])


def test_a_pem_key_travels_unchanged():
    pem = key_to_pem(generate_key("ECDSA-P256"))
    key, public = sealing.new_recipient()
    assert sealing.unseal(sealing.seal(pem, public), key) == pem
