"""kubesalt.urls: the one host:port and URL builder, and the URLs built with it."""

import ast
import pathlib
import re

import pytest

from kubesalt import etcd, urls
from kubesalt.kubeadm import kubeconfig, manifests
from kubesalt.kubeadm.model import Node
from tests.unit.kubeadm.reference_vectors import config

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("host", "port", "path", "expected"),
    [
        ("10.0.0.10", 6443, "/readyz", "https://10.0.0.10:6443/readyz"),
        ("::1", 6443, "/readyz", "https://[::1]:6443/readyz"),
        ("[fd00::10]", "2380", "", "https://[fd00::10]:2380"),
        ("api.example.org", 443, "", "https://api.example.org:443"),
    ],
)
def test_urls_bracket_ipv6(host, port, path, expected):
    assert urls.https(host, port, path) == expected


def test_host_port():
    assert urls.host_port("fd00::10", 6443) == "[fd00::10]:6443"
    assert urls.host_port("10.0.0.10", 6443) == "10.0.0.10:6443"
    assert urls.url("http", "127.0.0.1", 2381) == "http://127.0.0.1:2381"


@pytest.mark.parametrize("host", ["", "  ", None, "[]"])
def test_an_empty_host_is_refused_with_the_hint(host):
    with pytest.raises(urls.UrlError) as error:
        urls.https(host, 6443, "/readyz", what="readyz URL of cp2", hint="apply kubesalt.node")
    assert (
        str(error.value) == f"readyz URL of cp2: the host is empty ({host!r}); apply kubesalt.node"
    )


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("10.0.0.1/24", 6443, "URL: '10.0.0.1/24' is not a host name or IP address"),
        ("a b", 6443, "URL: 'a b' is not a host name or IP address"),
        ("10.0.0.1", 0, "URL: port 0 is not a TCP port; give a number from 1 to 65535"),
        ("10.0.0.1", 70000, "URL: port 70000 is not a TCP port"),
        ("10.0.0.1", True, "URL: port True is not a TCP port"),
        ("10.0.0.1", None, "URL: port None is not a TCP port"),
    ],
)
def test_bad_hosts_and_ports(host, port, message):
    with pytest.raises(urls.UrlError, match=re.escape(message)):
        urls.https(host, port)


def test_a_path_starts_with_a_slash():
    with pytest.raises(urls.UrlError, match="path 'readyz' must start with '/'"):
        urls.https("10.0.0.1", 6443, "readyz")


def test_etcd_urls_are_built_once():
    assert etcd.peer_url("10.0.0.11") == "https://10.0.0.11:2380"
    assert etcd.peer_url("fd00:0::11") == "https://[fd00::11]:2380"
    assert etcd.client_url("fd00::11") == "https://[fd00::11]:2379"
    with pytest.raises(etcd.EtcdError, match="etcd peer URL: '' is not an IP address"):
        etcd.peer_url("")


def test_the_renderer_uses_the_etcd_urls_and_brackets_ipv6():
    cfg = config(**{"apiServer.host": "fd00::100"})
    node = Node(
        "cp2", "fd00::11", frozenset({"control-plane", "etcd"}), etcd_members=(("cp1", "fd00::10"),)
    )
    command = manifests.etcd_command(cfg, node)
    assert "--initial-cluster=cp1=https://[fd00::10]:2380,cp2=https://[fd00::11]:2380" in command
    assert "--listen-metrics-urls=http://[::1]:2381" in command
    assert kubeconfig.endpoint_url(cfg) == "https://[fd00::100]:6443"
    assert kubeconfig.local_url(cfg, node) == "https://[fd00::11]:6443"


# Files of the orchestration rewrite (another branch): they still build URLs by hand and
# switch to kubesalt.urls and kubesalt.etcd.peer_url when it lands; then drop them here.
PENDING: set[str] = set()


def _hand_built_urls(path):
    """Lines of f-strings shaped `scheme://{host}:...` (a URL made from a host and a port)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.JoinedStr):
            continue
        parts = node.values
        for before, host, after in zip(parts, parts[1:], parts[2:], strict=False):
            if (
                isinstance(before, ast.Constant)
                and str(before.value).endswith("://")
                and isinstance(host, ast.FormattedValue)
                and isinstance(after, ast.Constant)
                and str(after.value).startswith(":")
            ):
                found.append(node.lineno)
    return found


def test_no_module_builds_a_url_from_a_host_and_port_by_hand(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('host, port = "h", 1\nURL = f"https://{host}:{port}/readyz"\n')
    assert _hand_built_urls(sample) == [2]
    python = sorted((ROOT / "src/kubesalt").rglob("*.py")) + sorted((ROOT / "salt").rglob("*.py"))
    found = {
        str(path.relative_to(ROOT))
        for path in python
        if path.name != "urls.py" and _hand_built_urls(path)
    }
    found |= {
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "salt").rglob("*.sls"))
        if re.search(r"'https?://' ~", path.read_text())
    }
    assert found <= PENDING, f"build these URLs with kubesalt.urls: {sorted(found - PENDING)}"
