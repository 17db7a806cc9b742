"""bootstrap.yaml validation: one test per rule, each naming its key."""

import copy
import pathlib

import pytest
import yaml

from kubesalt import config
from kubesalt.config import InvalidConfig

REPO = pathlib.Path(__file__).resolve().parents[2]
DELETE = object()

BASE = {
    "apiVersion": "kubesalt.io/v1alpha1",
    "kind": "BootstrapConfiguration",
    "networks": {"controlPlane": {"cidr": "198.51.100.0/24"}},
    "apiServer": {"host": "198.51.100.100"},
    "ca": {"minion": "bootstrap"},
    "archives": ["/srv/kubesalt.iso"],
}


def changed(**paths):
    """BASE with dotted paths set (or deleted with DELETE); '__' stands for '.'."""
    document = copy.deepcopy(BASE)
    for dotted, value in paths.items():
        keys = dotted.split("__")
        node = document
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return document


def problems_of(document):
    cfg, problems = config.validate(document)
    assert cfg is None, "an invalid document must not give a configuration"
    return problems


def only_problem(document):
    problems = problems_of(document)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# (id, document, path named, words in the message)
RULE_CASES = [
    ("wrong-type-port", changed(apiServer__port="6443"), "apiServer.port", "must be an integer"),
    ("bool-is-not-int", changed(apiServer__port=True), "apiServer.port", "must be an integer"),
    ("wrong-type-enabled", changed(firewall__enabled="yes"), "firewall.enabled", "true or false"),
    ("wrong-type-mapping", changed(networks=["198.51.100.0/24"]), "networks", "mapping"),
    ("wrong-type-list", changed(archives={"a": 1}), "archives", "list of strings"),
    ("unknown-key-near", changed(apiServer__prot=6443), "apiServer.prot", "did you mean 'port'"),
    (
        "unknown-key-case",
        changed(networks__Pods="10.1.0.0/16"),
        "networks.Pods",
        "did you mean 'pods'",
    ),
    ("unknown-key-far", changed(zzz=1), "zzz", "allowed keys here"),
    ("wrong-api-version", changed(apiVersion="kubesalt.io/v1"), "apiVersion", "not supported"),
    ("wrong-kind", changed(kind="ClusterConfiguration"), "kind", "not supported"),
    ("missing-host", changed(apiServer__host=DELETE), "apiServer.host", "required"),
    ("missing-ca", changed(ca=DELETE), "ca", "required"),
    (
        "missing-cp-cidr",
        changed(networks__controlPlane__cidr=DELETE),
        "networks.controlPlane.cidr",
        "required",
    ),
    ("missing-archives", changed(archives=DELETE), "archives", "required"),
    (
        "malformed-cidr",
        changed(networks__pods="10.233.0.0/33"),
        "networks.pods",
        "not a valid CIDR",
    ),
    ("cidr-without-prefix", changed(networks__pods="10.233.0.0"), "networks.pods", "no /prefix"),
    (
        "cidr-netmask-form",
        changed(networks__pods="10.233.0.0/255.255.0.0"),
        "networks.pods",
        "not a valid CIDR",
    ),
    (
        "host-bits",
        changed(networks__pods="10.233.1.0/16"),
        "networks.pods",
        "use the network address: 10.233.0.0/16",
    ),
    (
        "duplicate-cidr",
        changed(networks__controlPlane__cidr=["198.51.100.0/24", "198.51.100.0/24"]),
        "networks.controlPlane.cidr[1]",
        "duplicates networks.controlPlane.cidr[0]",
    ),
    (
        "mixed-families",
        changed(networks__controlPlane__cidr=["198.51.100.0/24", "2001:db8::/64"]),
        "networks.controlPlane.cidr",
        "mixes IPv4 and IPv6",
    ),
    (
        "mixed-families-workload",
        changed(networks__workloadPlane__cidr=["203.0.113.0/24", "2001:db8::/64"]),
        "networks.workloadPlane.cidr",
        "mixes IPv4 and IPv6",
    ),
    (
        "pods-overlap-services",
        changed(networks__pods="10.96.0.0/16"),
        "networks.pods",
        "overlaps networks.services",
    ),
    (
        "pods-overlap-control-plane",
        changed(networks__pods="198.51.0.0/16"),
        "networks.pods",
        "overlaps networks.controlPlane.cidr",
    ),
    (
        "services-overlap-workload-plane",
        changed(networks__workloadPlane__cidr="10.100.0.0/24"),
        "networks.services",
        "overlaps networks.workloadPlane.cidr",
    ),
    (
        "services-too-large",
        changed(networks__services="10.0.0.0/11"),
        "networks.services",
        "shorter than /12",
    ),
    (
        "services-too-small",
        changed(networks__services="10.96.0.0/29"),
        "networks.services",
        "10th address",
    ),
    (
        "pods-too-small",
        changed(networks__pods="10.233.0.0/25"),
        "networks.pods",
        "smaller than one node's pod range",
    ),
    (
        "api-host-network-address",
        changed(apiServer__host="198.51.100.0"),
        "apiServer.host",
        "network address",
    ),
    (
        "api-host-broadcast",
        changed(apiServer__host="198.51.100.255"),
        "apiServer.host",
        "broadcast address",
    ),
    (
        "api-host-outside",
        changed(apiServer__host="203.0.113.10"),
        "apiServer.host",
        "outside every control-plane CIDR",
    ),
    (
        "api-host-name-with-keepalived",
        changed(apiServer__host="api.example.com"),
        "apiServer.host",
        "needs an IP",
    ),
    (
        "api-host-garbage",
        changed(apiServer__host="not a host!"),
        "apiServer.host",
        "neither an IP address",
    ),
    (
        "vrid-zero",
        changed(apiServer__keepalived={"virtualRouterId": 0}),
        "apiServer.keepalived.virtualRouterId",
        "1-255",
    ),
    (
        "vrid-256",
        changed(apiServer__keepalived={"virtualRouterId": 256}),
        "apiServer.keepalived.virtualRouterId",
        "1-255",
    ),
    (
        "auth-password-too-long",
        changed(apiServer__keepalived={"authPassword": "123456789"}),
        "apiServer.keepalived.authPassword",
        "at most 8 characters",
    ),
    ("port-zero", changed(apiServer__port=0), "apiServer.port", "1-65535"),
    ("port-too-high", changed(apiServer__port=65536), "apiServer.port", "1-65535"),
    (
        "mtu-low",
        changed(networks__workloadPlane={"mtu": 1279}),
        "networks.workloadPlane.mtu",
        "1280-9216",
    ),
    (
        "mtu-high",
        changed(networks__workloadPlane={"mtu": 9217}),
        "networks.workloadPlane.mtu",
        "1280-9216",
    ),
    ("archives-empty", changed(archives=[]), "archives", "is empty"),
    ("ca-minion-underscore", changed(ca__minion="boot_strap"), "ca.minion", "RFC 1123"),
    ("ca-minion-leading-dash", changed(ca__minion="-bootstrap"), "ca.minion", "RFC 1123"),
    ("proxy-not-url", changed(proxies={"http": "proxy:3128"}), "proxies.http", "http(s) URL"),
    (
        "proxy-wrong-scheme",
        changed(proxies={"https": "socks5://proxy:1080"}),
        "proxies.https",
        "http(s) URL",
    ),
    (
        "k8s-version",
        changed(kubernetes={"version": "1.33"}),
        "kubernetes.version",
        "not a Kubernetes version",
    ),
    (
        "dns-domain",
        changed(kubernetes={"dnsDomain": "cluster_local"}),
        "kubernetes.dnsDomain",
        "RFC 1123",
    ),
    ("pki-algorithm", changed(pki={"algorithm": "DSA"}), "pki.algorithm", "ECDSA-P384"),
    # kubeadm 1.33's encryptionAlgorithm has no ECDSA-P384 (1.34 adds it); the archive's
    # release (v1.33.5) when kubernetes.version is not set.
    (
        "pki-algorithm-p384-at-1.33",
        changed(pki={"algorithm": "ECDSA-P384"}),
        "pki.algorithm",
        "not accepted by Kubernetes v1.33.5 (kubeadm's encryptionAlgorithm has it since 1.34)",
    ),
    (
        "pki-algorithm-p384-at-set-1.33",
        changed(pki={"algorithm": "ECDSA-P384"}, kubernetes={"version": "v1.33.5"}),
        "pki.algorithm",
        "use one of RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, or Kubernetes 1.34 or later",
    ),
    (
        "pki-validity",
        changed(pki={"certificateValidityDays": 0}),
        "pki.certificateValidityDays",
        "at least 1",
    ),
    (
        "pki-renew-before-zero",
        changed(pki={"renewBeforeDays": 0}),
        "pki.renewBeforeDays",
        "at least 1",
    ),
    (
        "pki-renew-before-the-whole-validity",
        changed(pki={"renewBeforeDays": 365}),
        "pki.renewBeforeDays",
        "is not below pki.certificateValidityDays (365): every certificate would be renewed",
    ),
    (
        "pki-leaf-outlives-ca",
        changed(pki={"certificateValidityDays": 4000}),
        "pki.certificateValidityDays",
        "outlives the CA",
    ),
]


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [case[1:] for case in RULE_CASES],
    ids=[case[0] for case in RULE_CASES],
)
def test_each_rule_names_its_key(document, path, words):
    problem = only_problem(document)
    assert problem.path == path
    assert words in str(problem)
    assert str(problem).startswith(path)
    assert "Fix: " in str(problem)


def test_ipv6_services_limit():
    document = changed(
        networks={
            "controlPlane": {"cidr": "2001:db8:1::/64"},
            "pods": "fd00:10::/48",
            "services": "fd00:96::/100",
        },
        apiServer__host="2001:db8:1::100",
    )
    problem = only_problem(document)
    assert problem.path == "networks.services"
    assert "/108" in problem.what


def test_pods_and_services_families_must_match():
    problem = only_problem(changed(networks__pods="fd00:10::/48"))
    assert problem.path == "networks.services"
    assert "same address family" in str(problem)


def test_all_problems_are_reported_at_once():
    document = changed(
        apiVersion="v2", networks__pods="10.233.0.1/16", apiServer__port=0, archives=[], zzz=1
    )
    paths = {problem.path for problem in problems_of(document)}
    assert paths == {"apiVersion", "networks.pods", "apiServer.port", "archives", "zzz"}


def test_password_is_never_shown():
    document = changed(apiServer__keepalived={"authPassword": "verysecret1"})
    assert "verysecret1" not in str(only_problem(document))


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(InvalidConfig) as excinfo:
        config.load_text("apiVersion: a\nkind: b\n  bad: indent\n", source="b.yaml")
    (problem,) = excinfo.value.problems
    assert problem.path == "(file)"
    assert "line 3" in problem.what
    assert str(excinfo.value).startswith("b.yaml: 1 problem:")


def test_a_key_written_twice_is_refused():
    with pytest.raises(InvalidConfig) as excinfo:
        config.load_text("kind: a\napiVersion: b\nkind: c\n")
    assert "found the key 'kind' twice (first on line 1)" in str(excinfo.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("- a\n- b\n", "not a mapping"),
        ("42", "not a mapping"),
    ],
)
def test_empty_file_or_non_mapping(text, words):
    with pytest.raises(InvalidConfig) as excinfo:
        config.load_text(text)
    assert words in str(excinfo.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(InvalidConfig) as excinfo:
        config.load_file(str(tmp_path / "missing.yaml"))
    assert "cannot be read" in str(excinfo.value)


VALID_CASES = {
    "single-cidr": BASE,
    "cidr-lists": changed(
        networks={
            "controlPlane": {"cidr": ["198.51.100.0/24", "10.10.0.0/16"]},
            "workloadPlane": {"cidr": ["10.20.0.0/16", "10.21.0.0/16"], "mtu": 9000},
        },
        apiServer__host="10.10.0.100",
    ),
    "ipv6-single-stack": changed(
        networks={
            "controlPlane": {"cidr": "2001:db8:1::/64"},
            "pods": "fd00:10::/48",
            "services": "fd00:96::/112",
        },
        apiServer__host="2001:db8:1::100",
    ),
    "ecdsa-p384-at-1.34": changed(
        pki={"algorithm": "ECDSA-P384"}, kubernetes={"version": "v1.34.2"}
    ),
    "keepalived-off-dns-name": changed(
        apiServer={"host": "api.cluster.example.com", "keepalived": {"enabled": False}}
    ),
    "keepalived-off-outside-ip": changed(
        apiServer={"host": "203.0.113.10", "keepalived": {"enabled": False}}
    ),
    "everything-set": changed(
        apiServer={
            "host": "198.51.100.100",
            "port": 7443,
            "keepalived": {"enabled": True, "virtualRouterId": 255, "authPassword": "12345678"},
        },
        kubernetes={"version": "v1.33.5", "clusterName": "prod", "dnsDomain": "k8s.example"},
        proxies={
            "http": "http://p:3128",
            "https": "https://p:3129",
            "noProxy": "a.example, b.example",
        },
        firewall={"enabled": False},
        pki={
            "algorithm": "ECDSA-P256",
            "certificateValidityDays": 90,
            "caCertificateValidityDays": 730,
        },
    ),
}


@pytest.mark.parametrize("document", VALID_CASES.values(), ids=VALID_CASES.keys())
def test_valid_variants_pass(document):
    cfg, problems = config.validate(document)
    assert problems == []
    assert cfg["apiServer"]["host"] == document["apiServer"]["host"]


def test_defaults_are_applied():
    cfg, _ = config.validate(BASE)
    assert cfg["networks"] == {
        "controlPlane": {"cidr": ["198.51.100.0/24"]},
        "workloadPlane": {"cidr": ["198.51.100.0/24"], "mtu": None},
        "pods": "10.233.0.0/16",
        "services": "10.96.0.0/12",
    }
    assert cfg["apiServer"] == {
        "host": "198.51.100.100",
        "port": 6443,
        "keepalived": {"enabled": True, "virtualRouterId": 51, "authPassword": None},
    }
    assert cfg["kubernetes"] == {
        "version": None,
        "clusterName": "kubernetes",
        "dnsDomain": "cluster.local",
    }
    assert cfg["proxies"] == {"http": None, "https": None, "noProxy": []}
    assert cfg["firewall"] == {"enabled": True}
    assert cfg["pki"] == {
        "algorithm": "RSA-2048",
        "certificateValidityDays": 365,
        "caCertificateValidityDays": 3650,
        "renewBeforeDays": None,
    }


def test_no_proxy_string_becomes_a_list():
    cfg, _ = config.validate(changed(proxies={"noProxy": "a.example, b.example,,"}))
    assert cfg["proxies"]["noProxy"] == ["a.example", "b.example"]


def test_validate_does_not_change_its_input():
    document = copy.deepcopy(BASE)
    config.validate(document)
    assert document == BASE


def test_the_annotated_example_is_valid_and_lists_every_key():
    text = (REPO / "bootstrap.yaml").read_text()
    cfg = config.load_text(text)
    # Every key of the schema appears in the example, set or commented out.
    for dotted in _schema_paths(config.schema.SCHEMA):
        leaf = dotted.rsplit(".", 1)[-1]
        assert f"{leaf}:" in text, f"bootstrap.yaml does not mention {dotted}"
    assert yaml.safe_load(text)["apiVersion"] == cfg["apiVersion"]


def _schema_paths(spec, prefix=""):
    for key, child in spec.keys.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(child, config.schema.Mapping):
            yield from _schema_paths(child, path)
        else:
            yield path


def test_summary_is_one_line():
    line = config.summary(config.validate(BASE)[0])
    assert "\n" not in line
    assert "198.51.100.100:6443" in line


@pytest.mark.parametrize(
    ("change", "shown", "secret"),
    [
        (
            lambda d: d["apiServer"].setdefault("keepalived", {}).update(authPassword=12345678),
            "apiServer.keepalived.authPassword = '********': must be a string",
            "12345678",
        ),
        (
            lambda d: d.update(proxies={"https": ["http://bob:hunter2@proxy:3128"]}),
            "proxies.https = ['http://bob:********@proxy:3128']",
            "hunter2",
        ),
        (
            lambda d: d.update(proxies={"http": "ftp://bob:hunter2@proxy:3128"}),
            "proxies.http = 'ftp://bob:********@proxy:3128': is not an http(s) URL",
            "hunter2",
        ),
        (
            lambda d: d.update(proxies={"http": "bob:hunter2@proxy:3128"}),
            "proxies.http = 'bob:********@proxy:3128'",
            "hunter2",
        ),
        (
            lambda d: d["apiServer"].update(keepalived=["authPassword", "hunter2"]),
            "apiServer.keepalived = ",
            None,
        ),
    ],
    ids=["password-type", "proxy-list", "proxy-scheme", "proxy-no-scheme", "keepalived-list"],
)
def test_a_secret_is_never_shown_in_a_problem(change, shown, secret):
    """A problem's text goes to the terminal, the logs and every minion's pillar `_errors`:
    the VRRP password and a proxy URL's password are masked, whatever the problem."""
    document = copy.deepcopy(BASE)
    change(document)
    with pytest.raises(config.InvalidConfig) as err:
        config.load_text(yaml.safe_dump(document))
    text = str(err.value)
    assert shown in text, text
    if secret:
        assert secret not in text, text
