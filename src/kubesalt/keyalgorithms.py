"""The key algorithms `pki.algorithm` offers: kubeadm's `encryptionAlgorithm`, defined once.

Each one gives every key of the cluster (the CAs, the leaf certificates, the kubeconfigs'
client certificates, sa.key) its type and size, as x509_v2's `private_key_managed` takes
them (`algo`, `keysize`). kubeadm 1.33 accepts RSA-2048/3072/4096 and ECDSA-P256; 1.34 adds
ECDSA-P384 (docs/kubernetes-releases.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubesalt.errors import KubesaltError


@dataclass(frozen=True)
class KeyAlgorithm:
    """`algo` and `keysize` as x509.private_key_managed takes them; `since` the first
    Kubernetes minor whose kubeadm accepts the algorithm."""

    algo: str
    keysize: int
    since: tuple[int, int] = (1, 31)

    @property
    def first_minor(self) -> str:
        """`since` as operators read it: `1.34`."""
        return ".".join(map(str, self.since))


ALGORITHMS = {
    "RSA-2048": KeyAlgorithm("rsa", 2048),
    "RSA-3072": KeyAlgorithm("rsa", 3072),
    "RSA-4096": KeyAlgorithm("rsa", 4096),
    "ECDSA-P256": KeyAlgorithm("ec", 256),
    "ECDSA-P384": KeyAlgorithm("ec", 384, since=(1, 34)),
}
NAMES = tuple(ALGORITHMS)
_MINOR = re.compile(r"v?(\d+)\.(\d+)(?:\.\d+)?")


class KeyAlgorithmError(KubesaltError):
    """`pki.algorithm` names no algorithm, or one the cluster's release does not accept."""


def get(name: str) -> KeyAlgorithm:
    """The algorithm `name` (`pki.algorithm`); an error listing the valid names."""
    try:
        return ALGORITHMS[name]
    except (KeyError, TypeError):
        raise KeyAlgorithmError(
            f"pki.algorithm is {name!r}; valid values: {', '.join(NAMES)}"
        ) from None


def accepted_by(release: str) -> list[str]:
    """The names among ALGORITHMS that Kubernetes `release` (`v1.33.5`) accepts."""
    minor = _minor(release)
    return [n for n, a in ALGORITHMS.items() if a.since <= minor]


def accepts(name: str, release: str) -> bool:
    """Does Kubernetes `release` accept algorithm `name` (a known one)?"""
    return get(name).since <= _minor(release)


def release_problem(name: str, release: str) -> str:
    """Empty when Kubernetes `release` accepts algorithm `name` (a known one); else why
    not and what to do."""
    if accepts(name, release):
        return ""
    since = get(name).first_minor
    return (
        f"pki.algorithm {name} needs Kubernetes {since} or later (kubeadm's "
        f"encryptionAlgorithm), and the cluster runs {release}: use one of "
        f"{', '.join(accepted_by(release))}, or Kubernetes {since} (kubernetes.version, "
        "or an archive built for it)"
    )


def _minor(release: str) -> tuple[int, int]:
    match = _MINOR.fullmatch(str(release))
    if not match:
        raise KeyAlgorithmError(f"{release!r} is not a Kubernetes version like v1.34.2")
    return int(match.group(1)), int(match.group(2))
