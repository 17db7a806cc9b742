"""containerd's configuration: config.toml and one hosts.toml per mirrored registry.

containerd 1.7, configuration version 2 (`plugins."io.containerd.grpc.v1.cri"`). Registry
mirrors use `config_path` + `certs.d/<registry>/hosts.toml` (the `registry.mirrors` table is
deprecated). Every upstream registry is served by the bootstrap registry only: the mirror is
both the `[host]` entry and the `server`, so nothing falls back to the internet.

The TOML is written by hand (the project has no TOML writer); `toml_string` escapes values
and the tests parse every file back with `tomllib`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import posixpath
from urllib.parse import urlsplit

from kubesalt.kubeadm import RenderError
from kubesalt.kubeadm.images import sandbox_image
from kubesalt.kubeadm.model import Layout, join_host_port

# Upstream registries whose images the bootstrap registry serves, with their real servers.
MIRRORED_REGISTRIES = {
    "registry.k8s.io": "https://registry.k8s.io",
    "docker.io": "https://registry-1.docker.io",
    "quay.io": "https://quay.io",
    "ghcr.io": "https://ghcr.io",
}
# The port nginx fronts the bootstrap registry on, when the caller does not say.
DEFAULT_REGISTRY_PORT = 5000
CRI = 'plugins."io.containerd.grpc.v1.cri"'


def toml_string(value: str) -> str:
    """A TOML basic string (quotes, backslashes and control characters escaped)."""
    out = []
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def registry_endpoint(value: str, what: str = "registry endpoint") -> str:
    """Check and normalize `https://host[:port]` (no path); the host must be an IP or name."""
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or port == -1
        or parts.username
    ):
        raise RenderError(
            f"{what}: {value!r} is not an https://HOST[:PORT] URL; give the bootstrap "
            f"registry, for example https://10.0.0.10:{DEFAULT_REGISTRY_PORT}"
        )
    host = parts.hostname
    with contextlib.suppress(ValueError):
        host = str(ipaddress.ip_address(host))
    return f"https://{join_host_port(host, port)}" if port else f"https://{host}"


def default_registry_endpoint(bootstrap_ip: str) -> str:
    """`https://<bootstrap control-plane IP>:5000`."""
    return f"https://{join_host_port(bootstrap_ip, DEFAULT_REGISTRY_PORT)}"


def certs_dir(layout: Layout) -> str:
    """containerd's `config_path`, /etc/containerd/certs.d."""
    return posixpath.join(layout.containerd_dir, "certs.d")


def config_toml(layout: Layout | None = None) -> bytes:
    """/etc/containerd/config.toml."""
    layout = layout or Layout()
    lines = [
        "# Managed by kubesalt: containerd 1.7, configuration version 2.",
        "version = 2",
        "",
        f"[{CRI}]",
        f"  sandbox_image = {toml_string(sandbox_image())}",
        "",
        f"[{CRI}.containerd]",
        '  default_runtime_name = "runc"',
        "",
        f"[{CRI}.containerd.runtimes.runc]",
        '  runtime_type = "io.containerd.runc.v2"',
        "",
        f"[{CRI}.containerd.runtimes.runc.options]",
        "  SystemdCgroup = true",
        "",
        f"[{CRI}.registry]",
        f"  config_path = {toml_string(certs_dir(layout))}",
    ]
    return ("\n".join(lines) + "\n").encode()


def hosts_toml(registry: str, endpoint: str, ca_path: str) -> bytes:
    """certs.d/<registry>/hosts.toml: `registry` pulled from `endpoint` only, trusting
    the cluster CA at `ca_path`."""
    if registry not in MIRRORED_REGISTRIES:
        raise RenderError(
            f"registry {registry!r} is not mirrored; mirrored: {', '.join(MIRRORED_REGISTRIES)}"
        )
    endpoint = registry_endpoint(endpoint)
    lines = [
        f"# Managed by kubesalt: {registry} (upstream {MIRRORED_REGISTRIES[registry]}) is",
        "# served by the bootstrap registry only; there is no fallback to the internet.",
        f"server = {toml_string(endpoint)}",
        'capabilities = ["pull", "resolve"]',
        f"ca = {toml_string(ca_path)}",
        "",
        f"[host.{toml_string(endpoint)}]",
        '  capabilities = ["pull", "resolve"]',
        f"  ca = {toml_string(ca_path)}",
    ]
    return ("\n".join(lines) + "\n").encode()


def files(endpoint: str, layout: Layout | None = None) -> dict[str, bytes]:
    """config.toml and every hosts.toml, by path."""
    layout = layout or Layout()
    result = {posixpath.join(layout.containerd_dir, "config.toml"): config_toml(layout)}
    for registry in MIRRORED_REGISTRIES:
        path = posixpath.join(certs_dir(layout), registry, "hosts.toml")
        result[path] = hosts_toml(registry, endpoint, layout.pki("ca.crt"))
    return result
