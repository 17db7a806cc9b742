"""SSH host keys of the declared nodes, so that salt-ssh checks whom it talks to.

A node's host key is given at declaration (`host_key=`, read on the node's console), or read
once with ssh-keyscan when deploy_node first reaches the node (its preflight phase), then
recorded in the inventory. salt-ssh runs with StrictHostKeyChecking=yes against a known_hosts
file written from the inventory: a machine answering on a node's address with another key
is refused. Pure functions: tested in tests/unit/test_hostkeys.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import struct

from kubesalt.errors import KubesaltError

KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
HOW_TO_READ = "on the node: cat /etc/ssh/ssh_host_ed25519_key.pub"


class HostKeyError(KubesaltError):
    """A host key is malformed, or a node's host key cannot be read."""


def _blob_type(blob: bytes) -> str | None:
    """The key type written at the start of an SSH public key blob (RFC 4253 string)."""
    if len(blob) < 4:
        return None
    (length,) = struct.unpack(">I", blob[:4])
    if length > len(blob) - 4:
        return None
    return blob[4 : 4 + length].decode("ascii", errors="replace")


def parse_public_key(text: str) -> str:
    """`TYPE BASE64` of an OpenSSH public key line (a trailing comment is dropped), checked:
    a known type, valid base64, and a blob that says the same type."""
    fields = str(text or "").split()
    if len(fields) < 2 or fields[0] not in KEY_TYPES:
        raise HostKeyError(
            f"host key {str(text)[:60]!r}: expected 'TYPE BASE64' with TYPE one of "
            f"{', '.join(KEY_TYPES)} ({HOW_TO_READ})"
        )
    kind, data = fields[0], fields[1]
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise HostKeyError(
            f"host key {kind} {data[:20]}...: not valid base64 ({HOW_TO_READ})"
        ) from None
    if _blob_type(blob) != kind:
        raise HostKeyError(
            f"host key {kind} {data[:20]}...: its data is not a {kind} key ({HOW_TO_READ})"
        )
    return f"{kind} {data}"


def fingerprint(key: str) -> str:
    """OpenSSH's fingerprint of a key (`ssh-keygen -lf`): SHA256 of the blob, base64 unpadded."""
    kind, data = parse_public_key(key).split()
    digest = hashlib.sha256(base64.b64decode(data)).digest()
    return f"SHA256:{base64.b64encode(digest).decode().rstrip('=')} ({kind})"


def keyscan_command(host: str, port: int, timeout: int = 5) -> list[str]:
    return ["ssh-keyscan", "-T", str(timeout), "-p", str(port), "-t", ",".join(KEY_TYPES), host]


def parse_keyscan(output: str) -> list[str]:
    """The keys in ssh-keyscan's output (`HOST TYPE BASE64` lines; comments skipped), sorted."""
    keys = set()
    for line in (output or "").splitlines():
        fields = line.split()
        if len(fields) >= 3 and not line.startswith("#"):
            keys.add(parse_public_key(" ".join(fields[1:3])))
    return sorted(keys)


def known_hosts_host(host: str, port: int) -> str:
    """How known_hosts names an address: `IP` on port 22, `[IP]:PORT` otherwise."""
    address = ipaddress.ip_address(host)
    return str(address) if int(port) == 22 else f"[{address}]:{int(port)}"


def known_hosts(entries) -> str:
    """known_hosts text for (host, port, keys) entries, one line per key, sorted."""
    lines = sorted(
        f"{known_hosts_host(host, port)} {key}" for host, port, keys in entries for key in keys
    )
    return "".join(f"{line}\n" for line in lines)


# What ssh prints when StrictHostKeyChecking refuses the key a host presents.
_REFUSED = ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED")


def refused(text: str) -> bool:
    """Whether ssh's output says it refused the host's key."""
    return any(marker in (text or "") for marker in _REFUSED)
