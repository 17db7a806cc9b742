"""States: a private key and a certificate, checked on the node before x509_v2 is asked.

``kubesalt_pki.private_key_managed`` and ``kubesalt_pki.certificate_managed`` take the
arguments of ``x509.private_key_managed`` and ``x509.certificate_managed`` and pass them
through unchanged. First they check the files on this node (``kubesalt.pkicheck``: the key's
type and size; the certificate's CA, key, subject, SANs, usages, key identifiers, digest and
expiry against ``expected``; owner, group and mode). When everything is current they return
at once: no call to the master, no pillar compile, no request to the CA minion. Otherwise
they run the x509_v2 state, which issues, renews and applies the signing policies as before
(docs/pki.md#how-a-certificate-is-checked).

Why: in a salt-minion daemon each x509_v2 state compiles a fresh pillar on the master (its
``file.managed`` test through ``state.single``), and a remotely signed certificate first
fetches its signing policy from the CA minion; that made a no-op apply of the PKI cost a
pillar compile per key and per certificate plus a round trip to the CA per certificate.
"""

import logging

try:
    from kubesalt import pkicheck as _pkicheck
    from kubesalt import renewal as _renewal
    from kubesalt.errors import KubesaltError

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

log = logging.getLogger(__name__)

__virtualname__ = "kubesalt_pki"

# Arguments that change nothing on a file that already exists (they matter when x509_v2
# creates it, and it gets them then).
NEUTRAL_ARGS = frozenset(
    {
        "makedirs",
        "dir_mode",
        "backup",
        "create",
        "tmp_dir",
        "tmp_ext",
        "show_changes",
        "overwrite",
        "pkcs12_encryption_compat",
    }
)
# Certificate arguments whose effect `expected` states (the template takes both from the
# same entry of kubesalt_kubeadm.pki), or that x509_v2 does not compare on an existing
# certificate (days_valid).
CERTIFICATE_MIRRORED_ARGS = frozenset(
    {
        "ca_server",
        "signing_policy",
        "signing_private_key",
        "signing_cert",
        "private_key",
        "days_valid",
        "digest",
        "CN",
        "O",
        "subjectAltName",
        "basicConstraints",
        "keyUsage",
        "extendedKeyUsage",
        "subjectKeyIdentifier",
        "authorityKeyIdentifier",
    }
)
# Arguments the local check does not handle: with a value other than this default, the
# x509_v2 state decides.
KEY_DEFAULTS = {"passphrase": None, "encoding": "pem", "new": False}
CERTIFICATE_DEFAULTS = {
    "encoding": "pem",
    "append_certs": None,
    "public_key": None,
    "csr": None,
    "subject": None,
    "serial_number": None,
    "not_before": None,
    "not_after": None,
    "private_key_passphrase": None,
    "signing_private_key_passphrase": None,
    "pkcs12_passphrase": None,
    "pkcs12_friendlyname": None,
}
FILE_ARGS = ("user", "group", "mode")
# x509.private_key_managed writes keys 0400 when no mode is given.
X509_KEY_MODE = "0400"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def _unhandled(args, handled, defaults):
    """Reasons for arguments the local check cannot vouch for."""
    reasons = []
    for key, value in sorted(args.items()):
        if key.startswith("__") or key in handled or key in NEUTRAL_ARGS:
            continue
        if key in defaults:
            if value not in (defaults[key], None, [], ""):
                reasons.append(f"argument {key}={value!r} is checked by x509_v2 only")
        else:
            reasons.append(f"argument {key} is checked by x509_v2 only")
    return reasons


def _correct(name, what, detail=""):
    return {
        "name": name,
        "result": True,
        "changes": {},
        "comment": f"The {what} is in the correct state (checked on this node{detail})",
    }


def _failed(name, message):
    return {"name": name, "result": False, "changes": {}, "comment": message}


def _delegate(state, reasons, args):
    """Run the x509_v2 state with the same arguments; say why it was asked."""
    ret = __states__[state](**args)  # noqa: F821 (Salt dunder)
    checked = f"Checked on this node: {'; '.join(reasons)}."
    if ret.get("result") is True and not ret.get("changes"):
        # x509_v2 (the CA's policy) saw nothing to change where the local check did: the
        # node's view and the CA minion's policy disagree, so every run will ask again.
        checked += (
            " x509_v2 changes nothing: the CA minion's signing policy or this node's "
            "expected values are stale (refresh the CA minion's pillar, check this node's "
            "IP in the mine)."
        )
        log.warning("kubesalt_pki: %s: %s", args["name"], checked)
    ret["comment"] = f"{checked} {ret.get('comment', '')}".strip()
    return ret


def private_key_managed(name, algo="rsa", keysize=None, **kwargs):
    """
    Make ``name`` a private key of ``algo`` and ``keysize``, checked on this node first.

    Takes the arguments of ``x509.private_key_managed`` and passes them through when the
    key is missing, of another type or size, or when owner, group or mode differ
    (``mode`` defaults to ``0400``, as there). ``passphrase``, another ``encoding`` and
    ``new: true`` are left to x509_v2.

    .. code-block:: yaml

        Create the private key of the apiserver certificate:
          kubesalt_pki.private_key_managed:
            - name: /etc/kubernetes/pki/apiserver.key
            - algo: rsa
            - keysize: 2048
            - mode: '0600'
    """
    args = {"name": name, "algo": algo, "keysize": keysize, **kwargs}
    reasons = _unhandled(kwargs, set(FILE_ARGS), KEY_DEFAULTS)
    if algo not in _pkicheck.KEY_CLASSES:
        reasons.append(f"argument algo={algo!r} is checked by x509_v2 only")
    try:
        if not reasons:
            reasons += _pkicheck.check_private_key(name, algo, keysize).reasons
        if not reasons:
            file_args = {key: kwargs.get(key) for key in FILE_ARGS}
            file_args["mode"] = file_args["mode"] or X509_KEY_MODE
            reasons += _pkicheck.check_file(name, **file_args).reasons
    except KubesaltError as err:
        return _failed(name, f"{type(err).__name__}: {err}")
    if not reasons:
        return _correct(name, "private key")
    return _delegate("x509.private_key_managed", reasons, args)


def certificate_managed(name, expected=None, days_remaining=None, renewal=None, **kwargs):
    """
    Make ``name`` the certificate ``expected`` describes, checked on this node first.

    Takes the arguments of ``x509.certificate_managed`` and passes them through (without
    ``expected``) when the certificate is not current, or when owner, group or mode
    differ. ``days_remaining`` is required: the check renews when x509_v2 would.

    renewal
        The override of a renew_certificates run (``kubesalt_kubeadm.pki`` passes pillar
        ``kubesalt_renew``): ``window_days`` replaces ``days_remaining``, ``force: true``
        renews now, and a certificate issued at or after ``issued_before`` (this run's
        start) is not due again. x509_v2 gets the same ``days_remaining``, so both renew
        together (``kubesalt.renewal.effective_days``).

    expected
        What the certificate must be once issued (``kubesalt_kubeadm.pki`` gives it for
        every CA and certificate): ``common_name``, ``organizations``, ``dns_names``,
        ``ip_addresses``, ``key_usage``, ``extended_key_usage`` (x509_v2's names), ``ca``,
        ``ca_cert`` (this node's copy of the CA certificate that signs it; none for a
        self-signed CA), ``subject_key_identifier``, ``authority_key_identifier``,
        ``digest``. The key is ``private_key``, or ``signing_private_key`` for a
        self-signed CA.

    .. code-block:: yaml

        Obtain the apiserver certificate from the CA minion:
          kubesalt_pki.certificate_managed:
            - name: /etc/kubernetes/pki/apiserver.crt
            - private_key: /etc/kubernetes/pki/apiserver.key
            - signing_policy: kubesalt-apiserver-cp1
            - ca_server: ca.minion
            - days_remaining: 90
            - expected: {common_name: kube-apiserver, ca_cert: /etc/kubernetes/pki/ca.crt, ...}
    """
    if days_remaining is None:
        return _failed(
            name,
            "kubesalt_pki.certificate_managed needs days_remaining (the renewal window in "
            "days) to check the certificate as x509_v2 would; give it in the state",
        )
    try:
        override = _renewal.Override.from_pillar(renewal)
        days_remaining = _renewal.effective_days(
            int(days_remaining), override, _renewal.issued_at(name) if override else None
        )
    except KubesaltError as err:
        return _failed(name, f"The argument renewal of {name} is invalid: {err}")
    args = {"name": name, "days_remaining": days_remaining, **kwargs}
    try:
        wanted = _pkicheck.Expected.from_mapping(expected)
    except KubesaltError as err:
        return _failed(name, f"The argument expected of {name} is invalid: {err}")
    key = kwargs.get("signing_private_key") if wanted.ca_cert is None else None
    key = key or kwargs.get("private_key")
    reasons = _unhandled(kwargs, CERTIFICATE_MIRRORED_ARGS | set(FILE_ARGS), CERTIFICATE_DEFAULTS)
    if not key:
        reasons.append("no private_key (signing_private_key for a CA) to check against")
    verdict = None
    try:
        if not reasons:
            verdict = _pkicheck.check_certificate(name, key, wanted, int(days_remaining))
            reasons += verdict.reasons
        if not reasons:
            file_args = {k: kwargs[k] for k in FILE_ARGS if kwargs.get(k) is not None}
            reasons += _pkicheck.check_file(name, **file_args).reasons
    except KubesaltError as err:
        return _failed(name, f"{type(err).__name__}: {err}")
    if not reasons:
        issuer = wanted.ca_cert or "itself"
        detail = (
            f": signed by {issuer}, valid until {verdict.not_after:%Y-%m-%d}, renewed "
            f"{days_remaining} days before"
        )
        return _correct(name, "certificate", detail)
    return _delegate("x509.certificate_managed", reasons, args)


def mine_published(name):
    """
    The CA minion's CA certificates and service-account public key are what the mine holds
    (``kubesalt_kubeadm.published``); otherwise ``mine.update`` publishes them again.

    A state of its own rather than ``module.run`` with ``unless``: Salt looks for
    ``module.mod_run_check`` when a state has ``unless``, and that miss loads every state
    module of the minion, most of a second of each highstate of the bootstrap node.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if __salt__["kubesalt_kubeadm.published"]():  # noqa: F821 (Salt dunder)
        ret["comment"] = "The mine holds the current CA certificates and service-account key"
        return ret
    what = "the CA certificates and the service-account public key"
    if __opts__["test"]:  # noqa: F821
        ret.update(result=None, changes={"mine": f"would publish {what}"},
                   comment=f"The mine lacks or holds stale copies of {what}")  # fmt: skip
        return ret
    if __salt__["mine.update"]() is False:  # noqa: F821
        return _failed(name, f"mine.update failed: {what} are not published; see the minion log")
    ret.update(changes={"mine": f"published {what}"}, comment=f"Published {what} to the mine")
    return ret
