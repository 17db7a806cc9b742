"""pki.algorithm's values (kubesalt.keyalgorithms), against kubeadm's encryptionAlgorithm:
1.33 accepts RSA-2048, RSA-3072, RSA-4096 and ECDSA-P256; 1.34 adds ECDSA-P384
(docs/kubernetes-releases.md). Every key x509_v2 makes from them is the
type and size the node-side check (kubesalt.pkicheck) expects."""

import pytest
from salt.utils import x509 as x509util

from kubesalt import keyalgorithms, pkicheck
from kubesalt.kubeadm import pki
from tests.unit.test_pkicheck import write_key


@pytest.mark.parametrize(
    ("release", "accepted"),
    [
        ("v1.33.5", ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256"]),
        ("v1.34.2", ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"]),
        ("1.35.0", ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"]),
    ],
)
def test_each_release_accepts_what_its_kubeadm_accepts(release, accepted):
    assert keyalgorithms.accepted_by(release) == accepted
    for name in keyalgorithms.NAMES:
        assert (keyalgorithms.release_problem(name, release) == "") == (name in accepted)


def test_a_refused_algorithm_says_since_when_and_what_to_use():
    assert keyalgorithms.release_problem("ECDSA-P384", "v1.33.5") == (
        "pki.algorithm ECDSA-P384 needs Kubernetes 1.34 or later (kubeadm's "
        "encryptionAlgorithm), and the cluster runs v1.33.5: use one of RSA-2048, RSA-3072, "
        "RSA-4096, ECDSA-P256, or Kubernetes 1.34 (kubernetes.version, or an archive built "
        "for it)"
    )


@pytest.mark.parametrize("name", ["DSA", "ecdsa-p256", None])
def test_an_unknown_algorithm_lists_the_valid_ones(name):
    with pytest.raises(keyalgorithms.KeyAlgorithmError) as info:
        keyalgorithms.get(name)
    assert str(info.value) == (
        f"pki.algorithm is {name!r}; valid values: RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, "
        "ECDSA-P384"
    )


def test_a_release_that_is_no_version_is_named():
    with pytest.raises(keyalgorithms.KeyAlgorithmError, match="'latest' is not a Kubernetes"):
        keyalgorithms.release_problem("RSA-2048", "latest")


@pytest.mark.parametrize("name", keyalgorithms.NAMES)
def test_x509_v2_and_the_local_issuer_make_the_key_the_node_check_expects(tmp_path, name):
    """What kubesalt.pki asks x509_v2 for (algo, keysize) and what the local issuer
    (render-node, tests) makes are the same key type and size, and the node-side check of
    kubesalt_pki.private_key_managed finds each one current."""
    wanted = keyalgorithms.get(name)
    if wanted.algo == "ec":
        salt_key = x509util.generate_ec_privkey(wanted.keysize)
    else:
        salt_key = x509util.generate_rsa_privkey(wanted.keysize)
    for made_by, key in (("x509_v2", salt_key), ("kubesalt.kubeadm.pki", pki.generate_key(name))):
        path = write_key(tmp_path / f"{made_by}.key", key)
        assert pkicheck.check_private_key(path, wanted.algo, wanted.keysize).current, made_by
    other = "rsa" if wanted.algo == "ec" else "ec"
    assert not pkicheck.check_private_key(path, other, 256 if other == "ec" else 2048).current
