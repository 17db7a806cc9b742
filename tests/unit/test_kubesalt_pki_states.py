"""The kubesalt_pki states, with Salt's loader mocked: a current key or certificate returns at
once without calling x509_v2; anything due runs the x509_v2 state with the same arguments."""

import datetime
import os
from unittest.mock import Mock

import pytest
import salt.states.x509_v2

from kubesalt import renewal
from kubesalt.renewal import Override
from tests.unit.loader import load
from tests.unit.test_pkicheck import NOW, make_ca, make_leaf, new_key, write_cert, write_key

kubesalt_pki = load("_states", "kubesalt_pki")

X509_CHANGED = {"name": "x", "result": True, "changes": {"created": "x"}, "comment": "created"}


@pytest.fixture
def x509_key():
    return Mock(spec=salt.states.x509_v2.private_key_managed, return_value=dict(X509_CHANGED))


@pytest.fixture
def x509_cert():
    return Mock(spec=salt.states.x509_v2.certificate_managed, return_value=dict(X509_CHANGED))


@pytest.fixture
def opts():
    return {"test": False}


@pytest.fixture
def configure_loader_modules(x509_key, x509_cert, opts):
    states = {"x509.private_key_managed": x509_key, "x509.certificate_managed": x509_cert}
    return {kubesalt_pki: {"__states__": states, "__opts__": opts}}


@pytest.fixture(scope="module")
def keys():
    return {"ca": new_key("rsa"), "leaf": new_key("rsa")}


@pytest.fixture
def files(tmp_path, keys):
    ca = make_ca(keys["ca"])
    paths = {
        "ca": write_cert(tmp_path / "ca.crt", ca),
        "ca_key": write_key(tmp_path / "ca.key", keys["ca"]),
        "key": write_key(tmp_path / "w1.key", keys["leaf"]),
        "cert": write_cert(tmp_path / "w1.crt", make_leaf(ca, keys["ca"], keys["leaf"])),
    }
    for path in ("ca_key", "key"):
        os.chmod(paths[path], 0o600)
    for path in ("ca", "cert"):
        os.chmod(paths[path], 0o644)
    paths["ca_cert_object"] = ca
    return paths


def key_args(files, **change):
    args = {
        "name": files["key"],
        "algo": "rsa",
        "keysize": 2048,
        "new": False,
        "user": "root",
        "group": "root",
        "mode": "0600",
    }
    return {**args, **change}


def expected(files, **change):
    data = {
        "common_name": "system:node:w1",
        "organizations": ["system:nodes"],
        "dns_names": ["w1"],
        "ip_addresses": ["198.51.100.21"],
        "key_usage": ["digitalSignature", "keyEncipherment"],
        "extended_key_usage": ["clientAuth"],
        "ca": False,
        "ca_cert": files["ca"],
        "subject_key_identifier": False,
        "authority_key_identifier": True,
        "digest": "sha256",
    }
    return {**data, **change}


def cert_args(files, **change):
    args = {
        "name": files["cert"],
        "private_key": files["key"],
        "signing_policy": "kubesalt-kubelet-client-w1",
        "ca_server": "ca.minion",
        "days_remaining": 90,
        "user": "root",
        "group": "root",
        "mode": "0644",
    }
    return {**args, **change}


def test_virtual_name():
    assert kubesalt_pki.__virtual__() == "kubesalt_pki"


# --- private keys ------------------------------------------------------------------------------


def test_a_current_key_asks_nothing(files, x509_key):
    ret = kubesalt_pki.private_key_managed(**key_args(files))
    assert ret == {
        "name": files["key"],
        "result": True,
        "changes": {},
        "comment": "The private key is in the correct state (checked on this node)",
    }
    x509_key.assert_not_called()


def test_a_missing_key_is_created_by_x509_with_the_same_arguments(files, x509_key, tmp_path):
    args = key_args(files, name=str(tmp_path / "new.key"))
    ret = kubesalt_pki.private_key_managed(**args)
    x509_key.assert_called_once_with(**args)
    assert ret["changes"] == {"created": "x"}
    assert (
        ret["comment"]
        == f"Checked on this node: the private key {args['name']} is missing. created"
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"mode": "0400"}, "has the mode 0600, expected 0400"),
        ({"mode": None}, "has the mode 0600, expected 0400"),  # x509_v2's default
        ({"keysize": 4096}, "is RSA 2048, expected RSA 4096"),
        ({"algo": "ec", "keysize": 256}, "is RSA 2048, expected EC 256"),
        (
            {"algo": "ed25519", "keysize": None},
            "argument algo='ed25519' is checked by x509_v2 only",
        ),
        ({"passphrase": "secret"}, "argument passphrase='secret' is checked by x509_v2 only"),
        ({"new": True}, "argument new=True is checked by x509_v2 only"),
        ({"attrs": "i"}, "argument attrs is checked by x509_v2 only"),
    ],
)
def test_a_key_not_as_configured_goes_to_x509(files, x509_key, change, reason):
    args = key_args(files, **change)
    ret = kubesalt_pki.private_key_managed(**args)
    x509_key.assert_called_once_with(**args)
    assert reason in ret["comment"]


def test_arguments_that_change_nothing_on_an_existing_key(files, x509_key):
    args = key_args(files, makedirs=True, dir_mode="0755", backup="minion", overwrite=False)
    assert kubesalt_pki.private_key_managed(**args)["result"] is True
    x509_key.assert_not_called()


# --- certificates ------------------------------------------------------------------------------


def test_a_current_certificate_asks_nothing(files, x509_cert):
    ret = kubesalt_pki.certificate_managed(expected=expected(files), **cert_args(files))
    x509_cert.assert_not_called()
    assert ret["result"] is True
    assert ret["changes"] == {}
    assert ret["comment"].startswith(
        "The certificate is in the correct state (checked on this node: signed by "
        f"{files['ca']}, valid until "
    )
    assert ret["comment"].endswith(", renewed 90 days before)")


def test_a_certificate_in_its_renewal_window_is_renewed_by_x509(files, x509_cert):
    args = cert_args(files, days_remaining=400)
    ret = kubesalt_pki.certificate_managed(expected=expected(files), **args)
    x509_cert.assert_called_once_with(**args)  # without `expected`
    assert "within the renewal window of 400 days" in ret["comment"]
    assert ret["changes"] == {"created": "x"}


def test_a_new_san_is_asked_of_the_ca(files, x509_cert):
    wanted = expected(files, ip_addresses=["198.51.100.22"])
    ret = kubesalt_pki.certificate_managed(expected=wanted, **cert_args(files))
    x509_cert.assert_called_once_with(**cert_args(files))
    assert "expected DNS:w1, IP:198.51.100.22" in ret["comment"]


def test_a_certificate_with_another_mode_goes_to_x509(files, x509_cert):
    os.chmod(files["cert"], 0o600)
    ret = kubesalt_pki.certificate_managed(expected=expected(files), **cert_args(files))
    x509_cert.assert_called_once()
    assert "has the mode 0600, expected 0644" in ret["comment"]


def test_a_ca_changed_in_the_mine_reissues(files, x509_cert, tmp_path):
    write_cert(tmp_path / "ca.crt", make_ca(new_key("ec")))
    ret = kubesalt_pki.certificate_managed(expected=expected(files), **cert_args(files))
    x509_cert.assert_called_once()
    assert "is not signed by the CA of" in ret["comment"]


@pytest.mark.parametrize(
    "change",
    [{"encoding": "der"}, {"append_certs": ["/ca.crt"]}, {"not_after": "2030-01-01 00:00:00"}],
)
def test_arguments_the_check_does_not_handle_go_to_x509(files, x509_cert, change):
    args = cert_args(files, **change)
    ret = kubesalt_pki.certificate_managed(expected=expected(files), **args)
    x509_cert.assert_called_once_with(**args)
    assert "is checked by x509_v2 only" in ret["comment"]


def test_a_self_signed_ca_is_checked_against_its_signing_key(files, x509_cert, tmp_path):
    ca = expected(
        files,
        common_name="kubernetes",
        organizations=[],
        dns_names=["kubernetes"],
        ip_addresses=[],
        key_usage=["digitalSignature", "keyEncipherment", "keyCertSign"],
        extended_key_usage=[],
        ca=True,
        ca_cert=None,
        subject_key_identifier=True,
        authority_key_identifier=False,
    )
    args = {
        "name": files["ca"],
        "signing_private_key": files["ca_key"],
        "CN": "kubernetes",
        "subjectAltName": "DNS:kubernetes",
        "basicConstraints": "critical, CA:TRUE",
        "keyUsage": "critical, digitalSignature, keyEncipherment, keyCertSign",
        "subjectKeyIdentifier": "hash",
        "days_valid": 3650,
        "days_remaining": 0,
        "mode": "0644",
    }
    ret = kubesalt_pki.certificate_managed(expected=ca, **args)
    assert ret["result"] is True, ret["comment"]
    assert "signed by itself" in ret["comment"]
    x509_cert.assert_not_called()
    write_key(tmp_path / "ca.key", new_key("rsa"))
    kubesalt_pki.certificate_managed(expected=ca, **args)
    x509_cert.assert_called_once_with(**args)


# --- test mode and disagreements ---------------------------------------------------------------


@pytest.mark.parametrize("opts", [{"test": True}])
def test_dry_run_of_a_current_certificate_reports_nothing(files, x509_cert, opts):
    ret = kubesalt_pki.certificate_managed(expected=expected(files), **cert_args(files))
    assert ret["result"] is True
    assert ret["changes"] == {}
    x509_cert.assert_not_called()


@pytest.mark.parametrize("opts", [{"test": True}])
def test_dry_run_of_a_due_certificate_reports_x509s_answer(files, x509_cert, opts):
    x509_cert.return_value = {
        "name": files["cert"],
        "result": None,
        "changes": {"expiration": True},
        "comment": "The certificate would have been recreated",
    }
    ret = kubesalt_pki.certificate_managed(
        expected=expected(files), **cert_args(files, days_remaining=400)
    )
    assert ret["result"] is None
    assert ret["changes"] == {"expiration": True}
    assert ret["comment"].endswith("400 days. The certificate would have been recreated")


def test_x509_seeing_nothing_to_change_says_the_views_disagree(files, x509_cert):
    x509_cert.return_value = {
        "name": files["cert"],
        "result": True,
        "changes": {},
        "comment": "The certificate is in the correct state",
    }
    wanted = expected(files, dns_names=["w1", "w1.example"])
    ret = kubesalt_pki.certificate_managed(expected=wanted, **cert_args(files))
    assert ret["result"] is True
    assert "x509_v2 changes nothing: the CA minion's signing policy" in ret["comment"]


def test_a_certificate_state_without_days_remaining_fails(files, x509_cert):
    ret = kubesalt_pki.certificate_managed(
        expected=expected(files), **cert_args(files, days_remaining=None)
    )
    assert ret["result"] is False
    assert "needs days_remaining" in ret["comment"]
    x509_cert.assert_not_called()


def test_an_invalid_expected_argument_fails_and_names_it(files, x509_cert):
    ret = kubesalt_pki.certificate_managed(
        expected=expected(files, sans=["w1"]), **cert_args(files)
    )
    assert ret["result"] is False
    assert ret["comment"] == (
        f"The argument expected of {files['cert']} is invalid: expected has unknown keys "
        "sans; valid: authority_key_identifier, ca, ca_cert, common_name, digest, dns_names, "
        "extended_key_usage, ip_addresses, key_usage, organizations, subject_key_identifier"
    )
    x509_cert.assert_not_called()


# --- a renew_certificates run (pillar kubesalt_renew) -------------------------------------
DAY = datetime.timedelta(days=1)


def renewal_arg(window=None, force=False, started=NOW + DAY):
    return Override(window, force, renewal.timestamp(started)).as_pillar()


def test_a_run_window_beyond_the_validity_renews_through_x509_with_that_window(files, x509_cert):
    args = cert_args(files)
    ret = kubesalt_pki.certificate_managed(expected=expected(files), renewal=renewal_arg(400),
                                           **args)  # fmt: skip
    x509_cert.assert_called_once_with(**{**args, "days_remaining": 400})
    assert "within the renewal window of 400 days" in ret["comment"]


def test_force_makes_x509_renew_too(files, x509_cert):
    args = cert_args(files)
    kubesalt_pki.certificate_managed(expected=expected(files), renewal=renewal_arg(force=True),
                                     **args)  # fmt: skip
    x509_cert.assert_called_once_with(**{**args, "days_remaining": renewal.FORCE_DAYS})


def test_a_certificate_issued_by_this_run_is_left_alone(files, x509_cert):
    # The test leaf was issued a day before NOW: a run started two days before issued it.
    run = renewal_arg(400, True, started=NOW - 2 * DAY)
    ret = kubesalt_pki.certificate_managed(expected=expected(files), renewal=run,
                                           **cert_args(files))  # fmt: skip
    x509_cert.assert_not_called()
    assert ret["result"] is True and ret["comment"].endswith("renewed 0 days before)")


def test_a_bad_renewal_argument_fails_the_state_naming_it(files, x509_cert):
    ret = kubesalt_pki.certificate_managed(expected=expected(files), renewal={"force": 1},
                                           **cert_args(files))  # fmt: skip
    assert ret["result"] is False
    assert ret["comment"].startswith(f"The argument renewal of {files['cert']} is invalid: ")
    x509_cert.assert_not_called()


# -- mine_published ---------------------------------------------------------------------
NAME = "Publish the CA certificates and the service-account public key to the mine"


def _with_salt(published, update=True):
    calls = Mock(return_value=update)
    kubesalt_pki.__salt__ = {"kubesalt_kubeadm.published": lambda: published, "mine.update": calls}
    return calls


def test_mine_published_asks_nothing_more_when_the_mine_is_current():
    update = _with_salt(published=True)
    ret = kubesalt_pki.mine_published(NAME)
    assert (ret["result"], ret["changes"]) == (True, {})
    assert "holds the current CA certificates" in ret["comment"]
    update.assert_not_called()


def test_mine_published_publishes_what_is_missing_or_stale(opts):
    update = _with_salt(published=False)
    ret = kubesalt_pki.mine_published(NAME)
    assert ret["result"] is True
    assert ret["changes"] == {
        "mine": "published the CA certificates and the service-account public key"
    }
    update.assert_called_once_with()
    update = _with_salt(published=False, update=False)
    assert kubesalt_pki.mine_published(NAME)["result"] is False


def test_mine_published_dry_run_says_what_it_would_do(opts):
    opts["test"] = True
    update = _with_salt(published=False)
    ret = kubesalt_pki.mine_published(NAME)
    assert ret["result"] is None
    assert ret["changes"] == {
        "mine": "would publish the CA certificates and the service-account public key"
    }
    update.assert_not_called()


def test_the_ca_state_publishes_through_mine_published_without_unless():
    """module.run with unless made Salt load every state module (its mod_run_check miss)."""
    import pathlib

    text = (pathlib.Path(__file__).resolve().parents[2] / "salt/kubesalt/pki/ca.sls").read_text()
    assert f"{NAME}:\n  kubesalt_pki.mine_published:" in text
    assert "unless" not in text and "onlyif" not in text
