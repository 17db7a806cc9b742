"""containerd's configuration: config.toml and one hosts.toml per mirrored registry.

containerd 1.7, configuration version 2 (`plugins."io.containerd.grpc.v1.cri"`). Registry
mirrors use `config_path` + `certs.d/<registry>/hosts.toml` (the `registry.mirrors` table is
deprecated). Every upstream registry is served by the bootstrap registry only, through nginx
on the bootstrap node's control-plane IP (port-matrix entry `repository`, 8443). The images
are stored there under their upstream host as first path component (`registry.k8s.io/pause`),
so each upstream gets its own API root, `https://HOST:8443/v2/<upstream>`, with
`override_path = true` (containerd then uses the path as is instead of appending `/v2`). The
mirror is both the `[host]` entry and the `server`: nothing falls back to the internet, and
names never collide across upstreams.

The TOML is written by hand (the project has no TOML writer); `toml_string` escapes values
and the tests parse every file back with `tomllib`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import posixpath
from urllib.parse import urlsplit

from kubesalt import ports, urls
from kubesalt.kubeadm import RenderError
from kubesalt.kubeadm.images import sandbox_image
from kubesalt.kubeadm.model import Layout

# Upstream registries whose images the bootstrap registry serves, with their real servers.
MIRRORED_REGISTRIES = {
    "registry.k8s.io": "https://registry.k8s.io",
    "docker.io": "https://registry-1.docker.io",
    "quay.io": "https://quay.io",
    "ghcr.io": "https://ghcr.io",
}
# The port-matrix entry of nginx, which fronts the bootstrap registry (and the repositories).
REGISTRY_PORT_ENTRY = "repository"
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


def registry_port() -> int:
    """The port nginx fronts the bootstrap registry on, from the port matrix."""
    return ports.port_number(REGISTRY_PORT_ENTRY)


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
            f"registry, for example https://10.0.0.10:{registry_port()}"
        )
    host = parts.hostname
    with contextlib.suppress(ValueError):
        host = str(ipaddress.ip_address(host))
    return urls.https(host, port, what=what) if port else f"https://{host}"


def default_registry_endpoint(bootstrap_ip: str) -> str:
    """`https://<bootstrap control-plane IP>:<nginx port>` (8443)."""
    return urls.https(
        bootstrap_ip,
        registry_port(),
        what="bootstrap registry",
        hint="the bootstrap node needs its control-plane IP in the mine: apply kubesalt.node on it",
    )


def mirror_url(registry: str, endpoint: str) -> str:
    """The API root of `registry` in the bootstrap registry: `<endpoint>/v2/<registry>`."""
    if registry not in MIRRORED_REGISTRIES:
        raise RenderError(
            f"registry {registry!r} is not mirrored; mirrored: {', '.join(MIRRORED_REGISTRIES)}"
        )
    return f"{registry_endpoint(endpoint)}/v2/{registry}"


def certs_dir(layout: Layout) -> str:
    """containerd's `config_path`, /etc/containerd/certs.d."""
    return posixpath.join(layout.containerd_dir, "certs.d")


def config_toml(layout: Layout | None = None, version: str | None = None) -> bytes:
    """/etc/containerd/config.toml; its sandbox image is the pause image of Kubernetes
    release `version` (default: the archive's), the kubelet's."""
    layout = layout or Layout()
    lines = [
        "# Managed by kubesalt: containerd 1.7, configuration version 2.",
        "version = 2",
        "",
        f"[{CRI}]",
        f"  sandbox_image = {toml_string(sandbox_image(version))}",
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
    """certs.d/<registry>/hosts.toml: `registry` pulled from its API root in the bootstrap
    registry (`endpoint`/v2/`registry`, path used as is) only, trusting the cluster CA at
    `ca_path`."""
    url = mirror_url(registry, endpoint)
    settings = [
        'capabilities = ["pull", "resolve"]',
        f"ca = {toml_string(ca_path)}",
        "override_path = true",
    ]
    lines = [
        f"# Managed by kubesalt: {registry} (upstream {MIRRORED_REGISTRIES[registry]}) is",
        "# served by the bootstrap registry only, under its own path; there is no fallback",
        "# to the internet.",
        f"server = {toml_string(url)}",
        *settings,
        "",
        f"[host.{toml_string(url)}]",
        *(f"  {line}" for line in settings),
    ]
    return ("\n".join(lines) + "\n").encode()


def config_path(layout: Layout) -> str:
    """/etc/containerd/config.toml."""
    return posixpath.join(layout.containerd_dir, "config.toml")


def hosts_path(layout: Layout, registry: str) -> str:
    """/etc/containerd/certs.d/<registry>/hosts.toml."""
    return posixpath.join(certs_dir(layout), registry, "hosts.toml")


def paths(layout: Layout) -> tuple[str, ...]:
    """Every file `files` writes: config.toml, then each hosts.toml."""
    return (config_path(layout), *(hosts_path(layout, r) for r in MIRRORED_REGISTRIES))


def files(
    endpoint: str, layout: Layout | None = None, version: str | None = None
) -> dict[str, bytes]:
    """config.toml (for Kubernetes release `version`) and every hosts.toml, by path."""
    layout = layout or Layout()
    result = {config_path(layout): config_toml(layout, version)}
    for registry in MIRRORED_REGISTRIES:
        result[hosts_path(layout, registry)] = hosts_toml(registry, endpoint, layout.pki("ca.crt"))
    return result
