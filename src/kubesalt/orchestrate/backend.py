"""The outside world of the engine, on the bootstrap node: Salt's LocalClient and key
store (given by the Salt glue), salt-ssh and ssh-keyscan processes, TCP and HTTPS probes,
files, the clock. Tests give the engine a fake with the same attributes
(tests/unit/orchestrate/fakes.py).
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

from kubesalt import hostkeys
from kubesalt import inventory as _inventory
from kubesalt import lock as _lock
from kubesalt.bootstrap import archive as _archive
from kubesalt.bootstrap import saltvenv as _saltvenv
from kubesalt.kubeadm.model import Layout
from kubesalt.orchestrate import minionpillar, progress, saltssh


class KeyStore:
    """The master's minion keys, through a salt.key.Key-like object."""

    def __init__(self, key):
        self.key = key

    def accepted(self) -> list[str]:
        return list(self.key.list_keys().get("minions", []))

    def status(self, name: str):
        """(status, pem) of `name`'s key: status minions, minions_pre, minions_rejected or
        minions_denied; (None, None) when the master has none."""
        for status, found in self.key.key_str(name).items():
            if name in found:
                return status, found[name]
        return None, None

    def accept(self, name: str) -> None:
        self.key.accept(match=name)

    def delete(self, name: str) -> None:
        self.key.delete_key(match=name, preserve_minions=False)


def write_private(path: str, text: str) -> None:
    """Write `text` to `path`, mode 0600, its directory 0700."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(text)


class Backend:
    """The real backend. `client` is a LocalClient, `keys` a KeyStore, `prepare_ssh`
    makes salt-ssh's key and thin archive before parallel runs, `master_ip` the master's
    interface option, `master_pub_path` and `hash_type` the master's public key and hash
    (new minions get its fingerprint)."""

    parallel = True

    def __init__(self, client, keys, prepare_ssh, master_ip, inventory_dir=None,
                 lock_path=None, log_file=None, master_pub_path=None,
                 hash_type="sha256"):  # fmt: skip
        self.client = client
        self.keys = keys
        self.prepare_ssh = prepare_ssh
        self.master_ip = master_ip
        self.inventory_dir = inventory_dir or _inventory.DEFAULT_DIR
        self.lock_path = lock_path or _lock.LOCK_FILE
        self.log_file = log_file or progress.LOG_FILE
        self.ca_cert_path = Layout().pki("ca.crt")
        self.master_pub_path = master_pub_path or minionpillar.MASTER_PUB
        self.hash_type = hash_type
        self.salt_venv_dir = _saltvenv.ARCHIVE_DIR  # the Salt virtualenv new nodes unpack
        self.clock = time.monotonic
        self.sleep = time.sleep

    def archives(self):
        return _archive.load_register()

    def kubernetes_versions(self) -> dict[str, str | None]:
        """{node: the Kubernetes release the inventory records for it, or None}."""
        nodes = _inventory.load(self.inventory_dir)
        return {name: node.kubernetes_version for name, node in nodes.items()}

    def record_kubernetes_version(self, node: str, version: str) -> bool:
        return _inventory.record_kubernetes_version(node, version, self.inventory_dir)

    def read_text(self, path: str) -> str:
        with open(path, encoding="utf-8") as stream:
            return stream.read()

    def read_text_or_none(self, path: str):
        try:
            return self.read_text(path)
        except FileNotFoundError:
            return None

    def write_private(self, path: str, text: str) -> None:
        write_private(path, text)

    def remove(self, path: str) -> None:
        os.remove(path)

    def connect(self, host: str, port: int, timeout: float) -> None:
        with socket.create_connection((host, port), timeout=timeout):
            return

    def keyscan(self, host: str, port: int):
        result = subprocess.run(hostkeys.keyscan_command(host, port), capture_output=True,
                                text=True, timeout=30, check=False)  # fmt: skip
        return result.stdout, result.stderr

    def ssh_run(self, argv, timeout):
        if not os.path.exists(saltssh.EMPTY_ROSTER):
            write_private(saltssh.EMPTY_ROSTER, saltssh.EMPTY_ROSTER_TEXT)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def http_status(self, url: str, timeout: float) -> int:
        """The HTTP status of a GET (the API server's certificate is not checked: readyz
        is public and says nothing secret)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:  # noqa: S310
                return answer.status
        except urllib.error.HTTPError as err:
            return err.code
        except urllib.error.URLError as err:
            raise OSError(str(err.reason)) from err
