"""The pillar of the salt-ssh minion install (`kubesalt.salt.minion.remote`), built once
per run on the bootstrap node: the files are read once, each node only adds its ID to
the minion configuration (the same code as bootstrap.sh: kubesalt.bootstrap.services).
The minion configuration carries the master's key fingerprint (`master_finger`): a new
minion trusts only the master whose key salt-ssh's pinned channel told it. Salt and
kubesalt come as the bootstrap node's own virtualenv (kubesalt.bootstrap.saltvenv): its URL
and the sha256 the node checks it against.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from kubesalt import ports, urls
from kubesalt.bootstrap import archive as _archive
from kubesalt.bootstrap import saltvenv as _saltvenv
from kubesalt.bootstrap import services as _services
from kubesalt.bootstrap.archive import Archive
from kubesalt.orchestrate.model import OrchestrateError

ARCHIVE_KEY = "kubesalt-archive-key.asc"
MASTER_PUB = "/etc/salt/pki/master/master.pub"


@dataclass(frozen=True)
class MinionPillar:
    """What every node's install shares; `for_nodes` adds each node's configuration."""

    shared: dict
    archives: tuple[Archive, ...]
    current: Archive
    master_ip: str
    master_finger: str
    hash_type: str

    def for_nodes(self, nodes) -> dict:
        """One pillar for every node of the run (one Salt job can carry it): the shared
        part, and `minion_configs` {node: its /etc/salt/minion.d/kubesalt.conf}."""
        configs = {
            node: _services.minion_config(
                node, self.master_ip, list(self.archives), self.current,
                master_finger=self.master_finger, hash_type=self.hash_type,
            )
            for node in nodes
        }  # fmt: skip
        return {**self.shared, "minion_configs": configs}


def check_master_ip(master_ip) -> str:
    if not master_ip or master_ip in ("0.0.0.0", "::"):
        raise OrchestrateError(
            f"the master's interface option is {master_ip!r}: kubesalt binds the master to the "
            "bootstrap node's control-plane IP (kubesalt.salt.master); run bootstrap.sh again"
        )
    return master_ip


def master_fingerprint(pem: str, hash_type: str = "sha256") -> str:
    """The fingerprint Salt gives a public key (what a minion compares with `master_finger`,
    and `salt-call key.finger_master` prints for the master key it cached): the digest of the PEM's base64 lines (newlines kept,
    header, footer and blank lines left out), as hex pairs joined by colons."""
    lines = [line for line in pem.replace("\r\n", "\n").splitlines(keepends=True) if line.strip()]
    if (
        len(lines) < 3
        or not lines[0].startswith("-----BEGIN")
        or not lines[-1].startswith("-----END")
    ):
        raise OrchestrateError(
            "the master's public key is not a PEM key (-----BEGIN ... -----END lines); "
            f"check {MASTER_PUB}, or restart salt-master to write it"
        )
    try:
        digest = hashlib.new(hash_type, "".join(lines[1:-1]).encode()).hexdigest()
    except (ValueError, TypeError):
        raise OrchestrateError(
            f"the master's hash_type {hash_type!r} is not a hash Python knows; set hash_type "
            "to sha256 (Salt's default) in the master configuration"
        ) from None
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def current_archive(archives, saltenv: str) -> Archive:
    for archive in archives:
        if archive.saltenv == saltenv:
            return archive
    raise OrchestrateError(
        f"no archive with saltenv {saltenv} is registered on the master "
        f"({_archive.REGISTER}); give the saltenv of a registered archive "
        "(salt-call kubesalt_bootstrap.archives), or run bootstrap.sh with that archive"
    )


def salt_venv_sha256(saltenv: str, read_text: Callable[[str], str], directory: str) -> str:
    """The sha256 of the Salt virtualenv archive of `saltenv`, from the .sha256 file
    bootstrap.sh wrote beside it (never hashing the archive on every run)."""
    path = _saltvenv.sha256_path(saltenv, directory)
    try:
        text = read_text(path)
    except OSError as err:
        raise OrchestrateError(
            f"cannot read {path}: {err.strerror}; new nodes unpack the Salt virtualenv archive "
            f"{_saltvenv.archive_path(saltenv, directory)} that bootstrap.sh's phase "
            f"salt-install makes: run bootstrap.sh again (with the archive of {saltenv})"
        ) from err
    try:
        return _saltvenv.parse_sha256(text, path)
    except ValueError as err:
        raise OrchestrateError(str(err)) from err


def build(
    saltenv: str,
    master_ip: str,
    archives,
    ca_path: str,
    read_text: Callable[[str], str],
    master_pub_path: str = MASTER_PUB,
    hash_type: str = "sha256",
    salt_venv_dir: str = _saltvenv.ARCHIVE_DIR,
) -> MinionPillar:
    """The pillar of `saltenv`'s install; `read_text(path)` reads the CA certificate, the
    archive's signing key, the master's public key and the sha256 of the Salt virtualenv
    archive in `salt_venv_dir` (OSError names the file and says to run bootstrap.sh);
    `hash_type` is the master's (Salt's fingerprint hash)."""
    master_ip = check_master_ip(master_ip)
    current = current_archive(archives, saltenv)
    try:
        ca_pem = read_text(ca_path)
        key_asc = read_text(current.path(ARCHIVE_KEY))
        master_pub = read_text(master_pub_path)
    except OSError as err:
        raise OrchestrateError(
            f"cannot read {err.filename}: {err.strerror}; run bootstrap.sh again"
        ) from err
    salt_venv = {
        "url": _served(master_ip, _services.salt_venv_url_path(saltenv)),
        "sha256": salt_venv_sha256(saltenv, read_text, salt_venv_dir),
        "download": _saltvenv.NODE_DOWNLOAD,
    }
    keyring = f"/etc/apt/keyrings/{saltenv}.asc"
    sources = _archive.apt_sources(current, base_url=_served(master_ip, f"/{saltenv}/deb")).replace(
        _archive.apt_keyring_path(current), keyring
    )
    shared = {
        "saltenv": saltenv,
        "version": current.version,
        "ca_pem": ca_pem,
        "keyring": keyring,
        "keyring_asc": key_asc,
        "sources_path": _archive.apt_sources_path(current),
        "sources": sources,
        "apt_update": " ".join(_archive.apt_update_command(current)),
        "salt_venv": salt_venv,
        "venv": _services.VENV,
        "minion_unit": _services.systemd_unit(
            "salt-minion", "The Salt Minion (kubesalt)", "process"
        ),
    }
    finger = master_fingerprint(master_pub, hash_type)
    return MinionPillar(shared, tuple(archives), current, master_ip, finger, hash_type)


def as_pillar(data: dict) -> dict:
    """The pillar the SLS reads: `kubesalt_deploy`."""
    return {"kubesalt_deploy": data}


def salt_ssh_argument(data: dict) -> str:
    """The same pillar on salt-ssh's command line (JSON, one argument)."""
    return "pillar=" + json.dumps(as_pillar(data), sort_keys=True)


def _served(master_ip: str, path: str) -> str:
    """`https://<bootstrap>:8443<path>`: what nginx serves on the bootstrap node."""
    return urls.https(master_ip, ports.port_number("repository"), path,
                      what="bootstrap repository URL", hint="the master's interface option")  # fmt: skip
