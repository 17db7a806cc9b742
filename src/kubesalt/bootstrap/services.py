"""Configuration of the bootstrap node's services, as data and text.

One function per file: bootstrap.sh writes the minion configuration with it before Salt
runs, and the Salt states (through `kubesalt_bootstrap`) write the same files from the
same functions, so a second run finds them unchanged.
"""

from __future__ import annotations

import yaml

from kubesalt import ports
from kubesalt.bootstrap import saltvenv
from kubesalt.bootstrap.archive import PILLAR_DIR, SALT_DIR, Archive

VENV = "/opt/kubesalt/salt"
SALT_COMMANDS = (
    "salt",
    "salt-call",
    "salt-cp",
    "salt-key",
    "salt-master",
    "salt-minion",
    "salt-run",
)
# Bytecode of every Python process of the venv goes here, never beside the sources
# (kubesalt-pycache.pth, in the venv's site-packages, sets it when Python starts).
PYCACHE_PREFIX = "/var/cache/kubesalt/pycache"
PYCACHE_PTH = "kubesalt-pycache.pth"
MINION_CONFIG = "/etc/salt/minion.d/kubesalt.conf"
MASTER_CONFIG = "/etc/salt/master.d/kubesalt.conf"
CONFIG_PATH = "/etc/kubesalt/bootstrap.yaml"
INVENTORY_DIR = "/etc/kubesalt/nodes"
MINION_PUB = "/etc/salt/pki/minion/minion.pub"  # a minion's own public key
MINION_KEYS_DIR = "/etc/kubesalt/minion-keys"  # public keys read back from new minions
# The registry listens on loopback only; nginx fronts it (port-matrix entry "registry").
REGISTRY_ADDRESS = f"127.0.0.1:{ports.port_number('registry')}"
REGISTRY_CONFIG = "/etc/docker/registry/config.yml"
REGISTRY_STORAGE = "/var/lib/docker-registry"
# The served registry is read-only; images are pushed through a second, writable instance
# over the same storage that runs only while it is filled, on a unix socket in a directory
# only root and the registry's user can enter (no TCP port, not even on loopback).
REGISTRY_PROGRAM = "/usr/bin/docker-registry"
REGISTRY_USER = "docker-registry"  # the user of Debian's docker-registry.service
REGISTRY_FILL_DIR = "/run/kubesalt-registry-fill"
REGISTRY_FILL_SOCKET = f"{REGISTRY_FILL_DIR}/registry.sock"
NGINX_CONFIG = "/etc/nginx/conf.d/kubesalt.conf"
REPOSITORY_PORT = ports.port_number("repository")
PKI_DIR = "/etc/kubesalt/pki"
REPOSITORY_CERT = f"{PKI_DIR}/repository.crt"
REPOSITORY_KEY = f"{PKI_DIR}/repository.key"
MANAGED = "# Managed by kubesalt ({what}); changes here are overwritten.\n"


def pycache_pth() -> str:
    """The .pth file that sets `sys.pycache_prefix` (unless PYTHONPYCACHEPREFIX did) in
    every Python of the venv: salt-call, salt-run, the daemons."""
    return (
        f"# Managed by bootstrap.sh: bytecode goes to {PYCACHE_PREFIX}, not into archives.\n"
        f"import sys; sys.pycache_prefix = sys.pycache_prefix or {PYCACHE_PREFIX!r}\n"
    )


def _roots(archives: list[Archive]) -> tuple[dict, dict]:
    file_roots = {a.saltenv: [a.path(SALT_DIR)] for a in archives}
    pillar_roots = {a.saltenv: [a.path(PILLAR_DIR)] for a in archives}
    return file_roots, pillar_roots


def _ext_pillar(config_path: str) -> list[dict]:
    """The configuration with the inventory's roles, then (reading them, for the CA minion
    only) the x509 signing policies: the order matters. Last, the package versions the
    node's archive pins."""
    return [
        {"kubesalt": {"config": config_path, "inventory": INVENTORY_DIR}},
        {"kubesalt_pki": {}},
        {"kubesalt_packages": {}},
    ]


def _dump(what: str, data: dict) -> str:
    return MANAGED.format(what=what) + yaml.safe_dump(
        data, sort_keys=True, default_flow_style=False
    )


def minion_config(
    minion_id: str,
    master_ip: str,
    archives: list[Archive],
    current: Archive,
    config_path: str = CONFIG_PATH,
    master_finger: str | None = None,
    hash_type: str = "sha256",
) -> str:
    """/etc/salt/minion.d/kubesalt.conf of the bootstrap node.

    It serves both modes: `salt-call --local` (bootstrap.sh) uses file_roots, pillar_roots,
    module_dirs and ext_pillar from it; the salt-minion daemon talks to the master.
    With `master_finger` (the other nodes: deploy_node knows the master's key), the minion
    refuses a master whose key has another fingerprint, computed with `hash_type`.
    """
    file_roots, pillar_roots = _roots(archives)
    data = {
        "id": minion_id,
        "master": master_ip,
        "saltenv": current.saltenv,
        "pillarenv": current.saltenv,
        "file_roots": file_roots,
        "pillar_roots": pillar_roots,
        "module_dirs": [current.path(SALT_DIR)],
        "ext_pillar": _ext_pillar(config_path),
        # Bounded retries instead of Salt's defaults (slow restarts: docs/architecture.md).
        # A new minion waits for deploy_node to accept its key: it asks again every 5 s at
        # most, instead of backing off to 30 s (the key phase waited for that back-off).
        "acceptance_wait_time": 2,
        "acceptance_wait_time_max": 5,
        "auth_timeout": 30,
        "log_level_logfile": "info",
        # Salt syncs every loader module from the master before each highstate (1.1-1.5 s of
        # a no-op one on the lab). The Salt tree changes only with an archive, and whatever
        # brings one syncs explicitly: bootstrap.sh, deploy_node's grains phase, restore,
        # the upgrade's salt stage (docs/decisions.md).
        "autoload_dynamic_modules": False,
    }
    if master_finger:
        data.update(master_finger=master_finger, hash_type=hash_type)
    return _dump("state kubesalt.salt.minion, bootstrap.sh", data)


def master_config(
    interface: str,
    ca_minion: str,
    archives: list[Archive],
    current: Archive,
    config_path: str = CONFIG_PATH,
) -> str:
    """/etc/salt/master.d/kubesalt.conf: bound to the control-plane IP, no auto-accept,
    peer publication limited to x509 remote signing and the service-account key
    (docs/pki.md)."""
    file_roots, pillar_roots = _roots(archives)
    data = {
        "interface": interface,
        "auto_accept": False,
        "file_roots": file_roots,
        "pillar_roots": pillar_roots,
        "top_file_merging_strategy": "same",
        "module_dirs": [current.path(SALT_DIR)],
        # salt-ssh (deploy_node installs minions with it) reaches the declared nodes through
        # the kubesalt roster; the roster loader does not look in module_dirs.
        "roster": "kubesalt",
        "roster_dirs": [current.path(f"{SALT_DIR}/_roster")],
        "ext_pillar": _ext_pillar(config_path),
        # Nodes ask the CA minion to sign their CSRs and for the service-account key
        # (kubesalt.pki); the signing policies decide who gets what.
        "peer": {".*": ["x509.sign_remote_certificate", "kubesalt_kubeadm.service_account_key"]},
        "peer_run": {ca_minion: ["match.compound_matches"]},
        "timeout": 30,
        "log_level_logfile": "info",
    }
    return _dump("state kubesalt.salt.master", data)


def systemd_unit(program: str, description: str, kill_mode: str = "control-group") -> str:
    """The unit of salt-master or salt-minion, running from the kubesalt virtualenv.

    The minion's KillMode=process lets a state restart the minion without killing the
    run in progress (as Salt's own unit does).
    """
    return (
        MANAGED.format(what="state kubesalt.salt")
        + f"[Unit]\nDescription={description}\nAfter=network-online.target\n"
        + "Wants=network-online.target\n\n"
        + f"[Service]\nType=notify\nNotifyAccess=all\nExecStart={VENV}/bin/{program}\n"
        + "LimitNOFILE=8192\nRestart=on-failure\nRestartSec=3\n"
        + f"KillMode={kill_mode}\n\n"
        + "[Install]\nWantedBy=multi-user.target\n"
    )


def _registry_storage(storage: str) -> dict:
    return {
        "filesystem": {"rootdirectory": storage},
        "cache": {"blobdescriptor": "inmemory"},
        "delete": {"enabled": False},
    }


def registry_config(address: str = REGISTRY_ADDRESS, storage: str = REGISTRY_STORAGE) -> str:
    """distribution's config.yml of the served registry: loopback only (nginx fronts it),
    read-only (distribution's maintenance mode refuses every push and delete, so no local
    process or host-network pod can replace an image), deletes disabled. It has no auth:
    it only serves. Images are pushed through the fill instance (registry_fill_config)."""
    data = {
        "version": 0.1,
        "log": {"level": "info", "fields": {"service": "registry"}},
        "storage": dict(_registry_storage(storage), maintenance={"readonly": {"enabled": True}}),
        "http": {"addr": address, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
    }
    return _dump("state kubesalt.registry.configured", data)


def registry_fill_config(
    socket_path: str = REGISTRY_FILL_SOCKET, storage: str = REGISTRY_STORAGE
) -> str:
    """config.yml of the writable fill instance: the served registry's storage, on a unix
    socket (relative upload URLs, as there is no host name to put in them)."""
    data = {
        "version": 0.1,
        "log": {"level": "warn", "fields": {"service": "registry-fill"}},
        "storage": _registry_storage(storage),
        "http": {"net": "unix", "addr": socket_path, "relativeurls": True},
    }
    return _dump("kubesalt_bootstrap.load_images, for the time of a fill", data)


def salt_venv_url_path(saltenv: str) -> str:
    """Where nginx serves the Salt virtualenv archive of `saltenv` (saltvenv)."""
    return f"/{saltenv}/salt-venv.tar.gz"


def nginx_config(
    listen_ip: str,
    archives: list[Archive],
    port: int = REPOSITORY_PORT,
    registry: str = REGISTRY_ADDRESS,
    tls: tuple[str, str] = (REPOSITORY_CERT, REPOSITORY_KEY),
    salt_venv_dir: str = saltvenv.ARCHIVE_DIR,
) -> str:
    """nginx: TLS (certificate, key) on the control-plane IP; each archive under
    /<saltenv>/ (repositories, wheels, keys, read-only), the Salt virtualenv new nodes
    unpack at /<saltenv>/salt-venv.tar.gz (from `salt_venv_dir`), and /v2/ proxied to the
    registry on loopback (read-only there too)."""
    lines = [
        MANAGED.format(what="state kubesalt.nginx.configured").rstrip("\n"),
        "server {",
        f"    listen {listen_ip}:{port} ssl;",
        "    server_name _;",
        f"    ssl_certificate {tls[0]};",
        f"    ssl_certificate_key {tls[1]};",
        "    ssl_protocols TLSv1.2 TLSv1.3;",
        "    access_log /var/log/nginx/kubesalt-access.log;",
        "    error_log /var/log/nginx/kubesalt-error.log;",
        "    location = / {",
        "        return 404;",
        "    }",
    ]
    for archive in sorted(archives, key=lambda a: a.saltenv):
        lines += [
            f"    location /{archive.saltenv}/ {{",
            f"        alias {archive.root.rstrip('/')}/;",
            "        autoindex on;",
            "        limit_except GET HEAD {",
            "            deny all;",
            "        }",
            "    }",
            # An exact location wins over the archive's prefix: the file is not in it.
            f"    location = {salt_venv_url_path(archive.saltenv)} {{",
            f"        alias {saltvenv.archive_path(archive.saltenv, salt_venv_dir)};",
            "        limit_except GET HEAD {",
            "            deny all;",
            "        }",
            "    }",
        ]
    lines += [
        "    location /v2/ {",
        f"        proxy_pass http://{registry};",
        "        proxy_set_header Host $http_host;",
        "        proxy_set_header X-Forwarded-Proto https;",
        "        proxy_read_timeout 900;",
        "        client_max_body_size 0;",
        "        chunked_transfer_encoding on;",
        "        limit_except GET HEAD {",
        "            deny all;",
        "        }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"
