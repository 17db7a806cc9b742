"""Real servers for the ISO tests, on 127.0.0.1 only: nginx (plain or TLS) and distribution.

Each server is started in the foreground by the test process and stopped by its PID.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def make_ca(workdir: Path) -> dict[str, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = workdir / "ca.key", workdir / "ca.crt"
    key, csr, crt = workdir / "server.key", workdir / "server.csr", workdir / "server.crt"
    ext = workdir / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")

    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2", "-subj", "/CN=kubesalt test CA")  # fmt: skip
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
         "-out", str(csr), "-subj", "/CN=127.0.0.1")  # fmt: skip
    ossl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
         "-out", str(crt), "-days", "2", "-extfile", str(ext))  # fmt: skip
    certs = workdir / "certs.d"  # a --cert-dir for skopeo: the CA only
    certs.mkdir(exist_ok=True)
    (certs / "ca.crt").write_bytes(ca_crt.read_bytes())
    return {"ca": ca_crt, "cert": crt, "key": key, "cert_dir": certs}


NGINX_CONF = """\
user root;
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ application/octet-stream deb rpm whl iso; text/plain txt; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port}{ssl};
        {tls}
        client_max_body_size 0;
        location / {{
            root {root};
            autoindex on;
        }}
        {registry}
    }}
}}
"""

REGISTRY_LOCATION = """\
location /v2/ {{
            proxy_pass http://127.0.0.1:{port};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 300;
        }}"""


@contextlib.contextmanager
def nginx(prefix: Path, root: Path, tls: dict | None = None, registry_port: int | None = None
          ) -> Iterator[str]:  # fmt: skip
    """Serve ``root`` (autoindex on) on 127.0.0.1; yield the base URL."""
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    tls_conf = ""
    if tls:
        tls_conf = f"ssl_certificate {tls['cert']};\n        ssl_certificate_key {tls['key']};"
    registry = REGISTRY_LOCATION.format(port=registry_port) if registry_port else ""
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, ssl=" ssl" if tls else "",
                                      tls=tls_conf, root=root, registry=registry))  # fmt: skip
    log = prefix / "error.log"
    log.touch()
    with open(log, "a") as errors:
        proc = subprocess.Popen(
            ["nginx", "-p", str(prefix), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=errors
        )
    try:
        wait_port(port, proc, log)
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        stop(proc)


REGISTRY_CONF = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


@contextlib.contextmanager
def registry(workdir: Path) -> Iterator[int]:
    """Run distribution (``docker-registry``) on 127.0.0.1; yield its port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "config.yml"
    conf.write_text(REGISTRY_CONF.format(data=workdir / "data", port=port))
    log = workdir / "registry.log"
    with open(log, "w") as output:
        proc = subprocess.Popen(["docker-registry", "serve", str(conf)], stdout=output,
                                stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_port(port, proc, log)
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        stop(proc)
