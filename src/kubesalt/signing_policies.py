"""x509_v2 signing policies for the cluster, generated from the certificate table.

The CA minion signs every certificate of the cluster through Salt's `x509_v2` remote
signing. A policy enforces only what it pins (measured, docs/pki.md): whatever a
policy leaves out, the requesting minion chooses. So each policy generated here pins every
field of the certificate (`kubesalt.kubeadm.certs`), and nulls everything else a request
could carry:

- `minions`: the nodes whose roles need this kind (the inventory), never grains. One node is
  its ID; several are a compound list `L@a,b` (checked by the master: `peer_run` needs
  `match.compound_matches` for the CA minion).
- `subject` as a string (a string subject replaces the request's name attributes, OU too).
- `basicConstraints: critical, CA:FALSE`, `keyUsage`, `extendedKeyUsage`,
  `authorityKeyIdentifier`, and `subjectAltName` pinned to the exact value, or nulled.
- `csr: null`: x509_v2 copies every extension of a CSR that the policy does not set to a
  value (`subjectAltName: null` does not strip a CSR's SAN). Nulling the CSR makes the CA
  sign the request's public key only, so no extension can come from the requester.
- every other certificate extension nulled; `days_valid` pinned; `not_before`, `not_after`,
  `serial_number`, `copypath`, `prepend_cn` nulled; `digest: sha256`.

Kinds whose identity names the node (`CertSpec.per_node`: apiserver, etcd server and peer,
kubelet client) get one policy per node, `minions` being that node alone.
"""

from __future__ import annotations

from kubesalt import keyalgorithms as _keyalgorithms
from kubesalt.kubeadm import RenderError
from kubesalt.kubeadm.certs import CertSpec, key_algorithm, node_certificates
from kubesalt.kubeadm.cluster import build_node
from kubesalt.kubeadm.model import Layout
from kubesalt.kubeadm.pki import CA_FILES

POLICY_PREFIX = "kubesalt"
DIGEST = "sha256"
# Extensions x509_v2 can put in a certificate that no kubesalt certificate has: each is
# nulled in every policy, so that a request cannot add it.
NULLED_EXTENSIONS = (
    "subjectKeyIdentifier",
    "issuerAltName",
    "authorityInfoAccess",
    "crlDistributionPoints",
    "certificatePolicies",
    "policyConstraints",
    "inhibitAnyPolicy",
    "nameConstraints",
    "noCheck",
    "tlsfeature",
    "nsComment",
    "nsCertType",
)
# Request arguments that would let the requester choose a value: nulled in every policy.
NULLED_ARGUMENTS = ("csr", "not_before", "not_after", "serial_number", "copypath", "prepend_cn")
AUTHORITY_KEY_IDENTIFIER = "keyid:always"


def key_args(cfg: dict) -> dict:
    """The `algo` and `keysize` of x509.private_key_managed for `pki.algorithm`."""
    wanted = _keyalgorithms.get(key_algorithm(cfg))
    return {"algo": wanted.algo, "keysize": wanted.keysize}


def policy_name(spec: CertSpec, node: str) -> str:
    """`kubesalt-<kind>`, or `kubesalt-<kind>-<node>` for a kind that names the node."""
    if spec.per_node:
        return f"{POLICY_PREFIX}-{spec.kind}-{node}"
    return f"{POLICY_PREFIX}-{spec.kind}"


def days_remaining(validity_days: int) -> int:
    """When a certificate is renewed: 90 days before expiry (x509_v2's default), or a quarter
    of its validity when that is shorter. Always below the validity, so that a fresh
    certificate is not issued again on the next run."""
    return min(90, validity_days // 4)


def minions_target(names: list[str]) -> str:
    """`minions:` of a policy: the node ID for one node, `L@a,b` for several."""
    if not names:
        raise RenderError("a signing policy needs at least one minion")
    names = sorted(names)
    return names[0] if len(names) == 1 else "L@" + ",".join(names)


def policy(spec: CertSpec, minions: list[str], ca_layout: Layout) -> dict:
    """The policy that issues `spec` to `minions`, signed by its CA on the CA minion (whose
    files live under `ca_layout`)."""
    if spec.is_ca:
        raise RenderError(f"{spec.kind} is a CA; CAs are created on the CA minion, not signed")
    ca_base = ca_layout.pki(CA_FILES[spec.signer])
    result = {
        "minions": minions_target(minions),
        "signing_private_key": f"{ca_base}.key",
        "signing_cert": f"{ca_base}.crt",
        "subject": spec.subject,
        "basicConstraints": spec.basic_constraints,
        "keyUsage": "critical, " + ", ".join(spec.key_usage),
        "extendedKeyUsage": ", ".join(spec.extended_key_usage),
        "subjectAltName": spec.subject_alt_name,
        "authorityKeyIdentifier": AUTHORITY_KEY_IDENTIFIER,
        "days_valid": spec.validity_days,
        "digest": DIGEST,
    }
    result.update(dict.fromkeys(NULLED_EXTENSIONS))
    result.update(dict.fromkeys(NULLED_ARGUMENTS))
    return result


def signing_policies(
    cfg: dict,
    roles: dict[str, frozenset[str]],
    ips: dict[str, str],
    ca_layout: Layout | None = None,
) -> dict[str, dict]:
    """Every policy of the cluster, by name.

    `roles` is the inventory (`{name: roles}`), `ips` the control-plane IP of each node
    (the mine). A node that has not published its IP yet gets no policy: it cannot request
    a certificate before it chose its address anyway.
    """
    ca_layout = ca_layout or Layout()
    shared: dict[str, tuple[CertSpec, list[str]]] = {}
    result: dict[str, dict] = {}
    for name in sorted(roles):
        if not ips.get(name):
            continue
        node = build_node(cfg, name, roles, ips)
        for spec in node_certificates(cfg, node, Layout()):
            key = policy_name(spec, name)
            if spec.per_node:
                result[key] = policy(spec, [name], ca_layout)
                continue
            if key in shared and shared[key][0] != spec:
                raise RenderError(
                    f"certificate kind {spec.kind} differs between nodes; it must be marked "
                    "per_node in kubesalt.kubeadm.certs"
                )
            shared.setdefault(key, (spec, []))[1].append(name)
    for key, (spec, names) in shared.items():
        result[key] = policy(spec, names, ca_layout)
    return dict(sorted(result.items()))
