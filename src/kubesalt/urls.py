"""`host:port` and URLs built from a host and a port: the one builder.

An IPv6 host goes in brackets (`https://[fd00::10]:6443`, as Go's `net.JoinHostPort`), and an
empty host is an error that says where the host should have come from: a URL such as
`https://:6443/readyz`, built when the mine lacks a node's IP, points nowhere.
"""

from __future__ import annotations

from kubesalt.errors import KubesaltError

HOST_HINT = "give the host's IP address or DNS name"


class UrlError(KubesaltError):
    """A host or a port cannot make an address."""


def _host(host, what: str, hint: str) -> str:
    text = host.strip() if isinstance(host, str) else ""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text:
        raise UrlError(f"{what}: the host is empty ({host!r}); {hint}")
    if any(char.isspace() or char in "/?#@[]" for char in text):
        raise UrlError(f"{what}: {host!r} is not a host name or IP address; {hint}")
    return text


def _port(port, what: str) -> int:
    number = port if isinstance(port, int) and not isinstance(port, bool) else None
    if isinstance(port, str) and port.strip().isdigit():
        number = int(port)
    if number is None or not 1 <= number <= 65535:
        raise UrlError(f"{what}: port {port!r} is not a TCP port; give a number from 1 to 65535")
    return number


def host_port(host, port, *, what: str = "address", hint: str = HOST_HINT) -> str:
    """`host:port`, or `[host]:port` for an IPv6 host."""
    text = _host(host, what, hint)
    number = _port(port, what)
    return f"[{text}]:{number}" if ":" in text else f"{text}:{number}"


def url(
    scheme: str, host, port, path: str = "", *, what: str = "URL", hint: str = HOST_HINT
) -> str:
    """`scheme://host:port/path`, the host bracketed when it is IPv6."""
    if path and not path.startswith("/"):
        raise UrlError(f"{what}: path {path!r} must start with '/'")
    return f"{scheme}://{host_port(host, port, what=what, hint=hint)}{path}"


def https(host, port, path: str = "", *, what: str = "URL", hint: str = HOST_HINT) -> str:
    """`https://host:port/path` (see `url`)."""
    return url("https", host, port, path, what=what, hint=hint)
