"""nginx running kubesalt's own server block (services.nginx_config) on a free loopback port,
with TLS from a test CA; `serve(archives)` writes it again for those archives and reloads
nginx, as the state kubesalt.nginx does. Started and stopped by PID."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from kubesalt.bootstrap import registry, services
from kubesalt.bootstrap.archive import Archive
from tests.integration.iso.iso_servers import free_port, make_ca, stop, wait_port

NGINX_MAIN = """\
user root;
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/kubesalt.conf;
}}
"""


class KubesaltNginx:
    def __init__(self, prefix: Path, registry_address: str):
        self.prefix = prefix
        self.registry_address = registry_address
        self.tls = make_ca(prefix / "tls")
        self.port = free_port()
        self.client = registry.Client(f"https://127.0.0.1:{self.port}", cafile=str(self.tls["ca"]))
        self.proc: subprocess.Popen | None = None

    def write(self, archives: list[Archive]) -> None:
        server = services.nginx_config(
            "127.0.0.1",
            archives,
            port=self.port,
            registry=self.registry_address,
            tls=(str(self.tls["cert"]), str(self.tls["key"])),
            salt_venv_dir=str(self.prefix / "salt-venv"),
        )
        # Its logs go to the prefix, not to the host's /var/log/nginx.
        (self.prefix / "kubesalt.conf").write_text(
            server.replace("/var/log/nginx/", f"{self.prefix}/")
        )

    def serve(self, archives: list[Archive]) -> None:
        """The server block for `archives`, nginx reloaded (new workers take it)."""
        self.write(archives)
        self.proc.send_signal(signal.SIGHUP)

    def status(self, path: str, wanted: int, timeout: float = 10.0) -> tuple[int, bytes]:
        """GET `path` until it answers `wanted` (a reload is not instant) or `timeout`;
        (status, body) of the last answer."""
        deadline = time.monotonic() + timeout
        while True:
            status, _, body = self.client.request("GET", path)
            if status == wanted or time.monotonic() > deadline:
                return status, body
            time.sleep(0.1)


@contextlib.contextmanager
def nginx_front(
    prefix: Path, registry_address: str, archives: list[Archive] | None = None
) -> Iterator[KubesaltNginx]:
    """KubesaltNginx started with `archives` (none by default), stopped at the end."""
    prefix.mkdir(parents=True, exist_ok=True)
    front = KubesaltNginx(prefix, registry_address)
    front.write(archives or [])
    (prefix / "nginx.conf").write_text(NGINX_MAIN.format(prefix=prefix))
    log = prefix / "error.log"
    log.touch()
    with open(log, "a") as errors:
        front.proc = subprocess.Popen(
            ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        wait_port(front.port, front.proc, log)
        yield front
    finally:
        stop(front.proc)
