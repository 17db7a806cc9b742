"""PKI through Salt and the kubeadm-equivalent states, on a real salt-master with three
minions: `ca.minion` (roles bootstrap, ca), `cp1` (control-plane, etcd, node: the first
control-plane node) and `w1` (node).

Each minion keeps its files under its own root (grain `kubesalt_root`), so three "nodes"
share this machine; phases kubelet and containerd are skipped (no packages, no services).
The master reads the repository's salt/ and pillar/ trees, the `kubesalt` and
`kubesalt_pki` ext_pillars, and allows x509 remote signing and the sealed
service-account key by peer publication; pillar `kubesalt_packages` pins etcdctl's package
at the version this machine has (a `cmd_yaml` ext_pillar: no registered archive here), so
kubesalt.etcd installs nothing. It fires an event for every pillar it compiles
(`minion_data_cache_events`), so that the tests can count them, as they count the signing
requests published to the CA minion.
"""

import base64
import json
import os
import pathlib
import stat
import subprocess
import time

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubesalt import sealing
from tests.unit.test_config import BASE

pytestmark = pytest.mark.integration

REPO = pathlib.Path(__file__).resolve().parents[2]
CA = "ca.minion"
NODES = {
    CA: ("198.51.100.10", ["bootstrap", "ca"]),
    "cp1": ("198.51.100.11", ["control-plane", "etcd", "node"]),
    "w1": ("198.51.100.21", ["node"]),
}
CP1_STATES = (
    "kubesalt.pki,kubesalt.etcd,kubesalt.kubeconfig,kubesalt.apiserver,"
    "kubesalt.controller-manager,kubesalt.scheduler,kubesalt.kubelet,kubesalt.containerd"
)
W1_STATES = "kubesalt.pki,kubesalt.kubeconfig,kubesalt.kubelet,kubesalt.containerd"


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    base = tmp_path_factory.mktemp("pki")
    config = dict(BASE, ca={"minion": CA})
    (base / "bootstrap.yaml").write_text(yaml.safe_dump(config))
    (base / "packages.yaml").write_text(yaml.safe_dump(_installed_etcd_client_pin()))
    inventory = base / "nodes"
    inventory.mkdir()
    for name, (ip, roles) in NODES.items():
        document = {"name": name, "roles": roles, "ssh": {"host": ip}}
        (inventory / f"{name}.yaml").write_text(yaml.safe_dump(document))
    roots = {name: base / "roots" / name for name in NODES}
    for root in roots.values():
        root.mkdir(parents=True)
    return {"base": base, "config": base / "bootstrap.yaml", "inventory": inventory, **roots}


def _installed_etcd_client_pin():
    """Pillar kubesalt_packages pinning etcd-client as this machine has it (scripts/dev-env.sh
    installs it), as the kubesalt_packages ext_pillar would from an archive's lock."""
    version = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "etcd-client"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {"kubesalt_packages": {"saltenv": "base", "deb": {"etcd-client": version}, "rpm": {}}}


@pytest.fixture(scope="module")
def master(salt_factories, paths):
    overrides = {
        "file_roots": {"base": [str(REPO / "salt")]},
        "pillar_roots": {"base": [str(REPO / "pillar")]},
        "pillar_dirs": [str(REPO / "salt" / "_pillar")],
        "ext_pillar": [
            {"kubesalt": {"config": str(paths["config"]), "inventory": str(paths["inventory"])}},
            {"kubesalt_pki": {}},
            {"cmd_yaml": f"cat {paths['base'] / 'packages.yaml'}"},
        ],
        "peer": {".*": ["x509.sign_remote_certificate", "kubesalt_kubeadm.service_account_key"]},
        "peer_run": {CA: ["match.compound_matches"]},
        "minion_data_cache_events": True,
    }
    factory = salt_factories.salt_master_daemon("ks-pki-master", overrides=overrides)
    with factory.started():
        yield factory


def _minion(master, paths, name):
    ip, _ = NODES[name]
    overrides = {
        "module_dirs": [str(REPO / "salt")],
        "grains": {
            "kubesalt_root": str(paths[name]),
            "kubesalt": {"control_plane_ip": ip, "workload_plane_ip": ip},
            "kubesalt_skip_phases": ["kubelet", "containerd"],
        },
    }
    return master.salt_minion_daemon(name, overrides=overrides)


@pytest.fixture(scope="module")
def minions(master, paths):
    factories = {name: _minion(master, paths, name) for name in NODES}
    started = []
    try:
        for factory in factories.values():
            factory.start()
            started.append(factory)
        clis = {name: f.salt_call_cli(timeout=120) for name, f in factories.items()}
        for name in ("cp1", "w1", CA):
            ret = clis[name].run("mine.update")
            assert ret.returncode == 0, ret.stderr
        ret = clis[CA].run("saltutil.refresh_pillar", wait=True)
        assert ret.returncode == 0, ret.stderr
        yield clis
    finally:
        for factory in reversed(started):
            factory.terminate()


@pytest.fixture(scope="module")
def ca_applied(minions):
    ret = minions[CA].run("state.apply", "kubesalt.pki.ca")
    _assert_ok(ret)
    return ret


@pytest.fixture(scope="module")
def cp1_applied(minions, ca_applied):
    ret = minions["cp1"].run("state.apply", CP1_STATES)
    _assert_ok(ret)
    return ret


@pytest.fixture(scope="module")
def w1_applied(minions, ca_applied):
    ret = minions["w1"].run("state.apply", W1_STATES)
    _assert_ok(ret)
    return ret


def _assert_ok(ret):
    assert isinstance(ret.data, dict), ret.stdout + ret.stderr
    failed = {v["__id__"]: v["comment"] for v in ret.data.values() if v["result"] is not True}
    assert not failed, "\n".join(f"{k}: {v}" for k, v in failed.items())
    assert ret.returncode == 0, ret.stderr


def _changed(ret):
    return {k: v["changes"] for k, v in ret.data.items() if v["changes"]}


def _load(path):
    return x509.load_pem_x509_certificate(pathlib.Path(path).read_bytes())


def _sans(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    return sorted(str(v) for v in ext.get_values_for_type(x509.DNSName)) + sorted(
        str(v) for v in ext.get_values_for_type(x509.IPAddress)
    )


def _eku(cert):
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _names(cert):
    """The subject's attributes in DER order (kubeadm: O before CN)."""
    short = {NameOID.ORGANIZATION_NAME: "O", NameOID.COMMON_NAME: "CN"}
    return [(short.get(a.oid, a.oid.dotted_string), a.value) for a in cert.subject]


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# --- the CA minion --------------------------------------------------------------------------


def test_ca_keys_only_on_the_ca_minion(paths, cp1_applied, w1_applied):
    ca_pki = paths[CA] / "etc/kubernetes/pki"
    for key in ("ca.key", "etcd/ca.key", "front-proxy-ca.key", "sa.key"):
        assert _mode(ca_pki / key) == 0o600, key
    for name in ("cp1", "w1"):
        pki = paths[name] / "etc/kubernetes/pki"
        for key in ("ca.key", "etcd/ca.key", "front-proxy-ca.key"):
            assert not (pki / key).exists(), (name, key)
    ca = _load(ca_pki / "ca.crt")
    assert ca.subject.rfc4514_string() == "CN=kubernetes"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert _sans(ca) == ["kubernetes"]
    assert _load(ca_pki / "etcd/ca.crt").subject.rfc4514_string() == "CN=etcd-ca"


def test_signing_policies_only_in_the_ca_minion_pillar(minions):
    ret = minions[CA].run("pillar.get", "x509_signing_policies", unmask=True)
    policies = ret.data
    assert "kubesalt-etcd-server-cp1" in policies
    assert "kubesalt-kubelet-client-w1" in policies
    assert "kubesalt-apiserver-w1" not in policies
    assert "kubesalt-etcd-server-w1" not in policies
    assert policies["kubesalt-admin"]["minions"] == "cp1"
    assert policies["kubesalt-kubelet-client-w1"]["csr"] is None
    for name in ("cp1", "w1"):
        ret = minions[name].run("pillar.get", "x509_signing_policies", unmask=True)
        assert ret.data in ({}, "", None), name


# --- a control-plane + etcd node -------------------------------------------------------------


def test_control_plane_node_gets_its_certificates(paths, cp1_applied):
    pki = paths["cp1"] / "etc/kubernetes/pki"
    ca_root = paths[CA] / "etc/kubernetes/pki"
    server = _load(pki / "etcd/server.crt")
    assert server.subject.rfc4514_string() == "CN=cp1"
    assert _sans(server) == ["cp1", "localhost", "127.0.0.1", "198.51.100.11", "::1"]
    assert _eku(server) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    server.verify_directly_issued_by(_load(ca_root / "etcd/ca.crt"))

    apiserver = _load(pki / "apiserver.crt")
    assert apiserver.subject.rfc4514_string() == "CN=kube-apiserver"
    assert _sans(apiserver) == sorted(
        ["cp1", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
        + ["kubernetes.default.svc.cluster.local"]
    ) + sorted(["10.96.0.1", "198.51.100.100", "198.51.100.11"])
    assert _eku(apiserver) == {ExtendedKeyUsageOID.SERVER_AUTH}
    apiserver.verify_directly_issued_by(_load(ca_root / "ca.crt"))
    constraints = apiserver.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is False
    usage = apiserver.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign

    client = _load(pki / "apiserver-kubelet-client.crt")
    assert _names(client) == [
        ("O", "kubeadm:cluster-admins"),
        ("CN", "kube-apiserver-kubelet-client"),
    ]
    assert _sans(client) is None
    _load(pki / "front-proxy-client.crt").verify_directly_issued_by(
        _load(ca_root / "front-proxy-ca.crt")
    )
    for key in pki.rglob("*.key"):
        assert _mode(key) == 0o600, key
    assert (pki / "sa.key").read_bytes() == (ca_root / "sa.key").read_bytes()
    assert _mode(pki / "sa.pub") == 0o600


def test_control_plane_node_gets_every_kubeadm_file(paths, cp1_applied):
    root = paths["cp1"]
    manifests = root / "etc/kubernetes/manifests"
    assert _mode(manifests) == 0o700
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        pod = yaml.safe_load((manifests / f"{name}.yaml").read_text())
        assert _mode(manifests / f"{name}.yaml") == 0o600
        assert pod["metadata"]["annotations"]["kubesalt.io/config-digest"].startswith("sha256:")
        command = pod["spec"]["containers"][0]["command"]
        assert all(str(root) in arg for arg in command if "/etc/kubernetes/pki/" in arg)
    etcd = yaml.safe_load((manifests / "etcd.yaml").read_text())
    assert (
        "--initial-cluster=cp1=https://198.51.100.11:2380"
        in etcd["spec"]["containers"][0]["command"]
    )
    for name in ("admin", "super-admin", "controller-manager", "scheduler", "kubelet"):
        path = root / f"etc/kubernetes/{name}.conf"
        assert _mode(path) == 0o600, name
        conf = yaml.safe_load(path.read_text())
        cert = x509.load_pem_x509_certificate(
            base64.b64decode(conf["users"][0]["user"]["client-certificate-data"])
        )
        assert (
            conf["users"][0]["name"]
            == cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        )
    super_admin = yaml.safe_load((root / "etc/kubernetes/super-admin.conf").read_text())
    assert super_admin["users"][0]["name"] == "kubernetes-super-admin"
    for path in ("var/lib/kubelet/config.yaml", "var/lib/kubelet/kubeadm-flags.env"):
        assert (root / path).is_file(), path
    flags = (root / "var/lib/kubelet/kubeadm-flags.env").read_text()
    assert "--node-ip=198.51.100.11" in flags
    assert (root / "etc/systemd/system/kubelet.service.d/10-kubeadm.conf").is_file()
    hosts = (root / "etc/containerd/certs.d/registry.k8s.io/hosts.toml").read_text()
    assert 'server = "https://198.51.100.10:8443/v2/registry.k8s.io"' in hosts
    assert "override_path = true" in hosts


def test_renewed_certificate_changes_the_manifest_digest(paths, minions, cp1_applied):
    manifest = paths["cp1"] / "etc/kubernetes/manifests/kube-apiserver.yaml"
    before = yaml.safe_load(manifest.read_text())["metadata"]["annotations"]
    (paths["cp1"] / "etc/kubernetes/pki/front-proxy-client.crt").unlink()
    ret = minions["cp1"].run("state.apply", CP1_STATES)
    _assert_ok(ret)
    after = yaml.safe_load(manifest.read_text())["metadata"]["annotations"]
    assert before["kubesalt.io/config-digest"] != after["kubesalt.io/config-digest"]


def test_reapplying_changes_nothing(minions, cp1_applied, w1_applied):
    for name, states in (("cp1", CP1_STATES), ("w1", W1_STATES), (CA, "kubesalt.pki.ca")):
        again = minions[name].run("state.apply", states)
        _assert_ok(again)
        assert _changed(again) == {}, name
        dry = minions[name].run("state.apply", states, test=True)
        assert dry.returncode == 0, dry.stderr
        assert {k: v for k, v in dry.data.items() if v["result"] is None} == {}, name
        assert _changed(dry) == {}, name


# --- a worker ---------------------------------------------------------------------------------


def test_worker_gets_only_its_own_files(paths, w1_applied):
    root = paths["w1"]
    pki = root / "etc/kubernetes/pki"
    assert sorted(p.name for p in pki.iterdir()) == ["ca.crt", "kubeconfig"]
    kubelet = yaml.safe_load((root / "etc/kubernetes/kubelet.conf").read_text())
    assert kubelet["clusters"][0]["cluster"]["server"] == "https://198.51.100.100:6443"
    assert kubelet["users"][0]["name"] == "system:node:w1"
    cert = _load(pki / "kubeconfig/kubelet-client.crt")
    assert _names(cert) == [("O", "system:nodes"), ("CN", "system:node:w1")]
    assert not (root / "etc/kubernetes/manifests/etcd.yaml").exists()
    assert not (root / "etc/kubernetes/admin.conf").exists()


@pytest.fixture(scope="module")
def w1_key(paths, w1_applied):
    return str(paths["w1"] / "etc/kubernetes/pki/kubeconfig/kubelet-client.key")


def _request(minions, key, policy, **kwargs):
    args = [f"{k}={v}" for k, v in kwargs.items()]
    return minions["w1"].run(
        "x509.create_certificate",
        f"ca_server={CA}",
        f"signing_policy={policy}",
        f"private_key={key}",
        *args,
    )


@pytest.mark.parametrize(
    "policy",
    [
        "kubesalt-etcd-server-cp1",
        "kubesalt-etcd-peer-cp1",
        "kubesalt-etcd-healthcheck-client",
        "kubesalt-apiserver-cp1",
        "kubesalt-apiserver-kubelet-client",
        "kubesalt-apiserver-etcd-client",
        "kubesalt-admin",
        "kubesalt-super-admin",
        "kubesalt-controller-manager",
        "kubesalt-kubelet-client-cp1",
    ],
)
def test_worker_is_refused_other_kinds(minions, w1_key, policy):
    ret = _request(minions, w1_key, policy)
    assert ret.returncode != 0
    assert "minion not permitted to use specified signing policy" in ret.stdout + ret.stderr


def test_worker_has_no_policy_for_server_certificates(minions, w1_key):
    for policy in ("kubesalt-etcd-server-w1", "kubesalt-apiserver-w1"):
        ret = _request(minions, w1_key, policy)
        assert ret.returncode != 0
        assert "signing_policy must be specified and defined on signing minion" in (
            ret.stdout + ret.stderr
        )


def test_escalations_are_overridden(paths, minions, w1_key):
    copy_dir = paths["base"] / "copypath"
    ret = _request(
        minions,
        w1_key,
        "kubesalt-kubelet-client-w1",
        CN="system:node:cp1",
        O="system:masters",
        OU="extra",
        basicConstraints="critical, CA:TRUE",
        keyUsage="critical, keyCertSign, cRLSign",
        extendedKeyUsage="serverAuth",
        subjectAltName="DNS:kubernetes",
        nameConstraints="critical, permitted;DNS:example.com",
        days_valid=9999,
        not_before="2000-01-01 00:00:00",
        not_after="2099-01-01 00:00:00",
        serial_number="01",
        copypath=str(copy_dir),
        digest="sha1",
    )
    assert ret.returncode == 0, ret.stdout + ret.stderr
    cert = x509.load_pem_x509_certificate(ret.data.encode())
    assert _names(cert) == [("O", "system:nodes"), ("CN", "system:node:w1")]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert not usage.key_cert_sign and usage.digital_signature
    assert _eku(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert _sans(cert) is None
    names = {type(e.value).__name__ for e in cert.extensions}
    assert "NameConstraints" not in names
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime.days == 365
    assert cert.not_valid_before_utc.year > 2000
    assert cert.serial_number != 1
    assert cert.signature_hash_algorithm.name == "sha256"
    assert not copy_dir.exists()


def test_a_san_inside_a_csr_is_dropped(paths, minions, w1_key):
    key = serialization.load_pem_private_key(pathlib.Path(w1_key).read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system:node:cp1")]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("kubernetes.default")]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    csr_path = paths["base"] / "w1.csr"
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    public_path = paths["base"] / "w1.pub"
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    request = ["ca_server=" + CA, "signing_policy=kubesalt-kubelet-client-w1", f"csr={csr_path}"]
    # The policy nulls the CSR: a CSR alone gives the CA no public key to sign.
    alone = minions["w1"].run("x509.create_certificate", *request)
    assert alone.returncode != 0
    assert "needs public_key, private_key or csr" in alone.stdout + alone.stderr
    # With the public key beside it, the certificate carries nothing from the CSR.
    ret = minions["w1"].run("x509.create_certificate", *request, f"public_key={public_path}")
    assert ret.returncode == 0, ret.stdout + ret.stderr
    cert = x509.load_pem_x509_certificate(ret.data.encode())
    assert _sans(cert) is None
    assert _names(cert) == [("O", "system:nodes"), ("CN", "system:node:w1")]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_worker_is_refused_the_service_account_key(minions, w1_applied):
    _, public = sealing.new_recipient()
    ret = minions["w1"].run(
        "publish.publish",
        CA,
        "kubesalt_kubeadm.service_account_key",
        f"arg=['public_key={public}']",
    )
    answer = ret.data[CA]
    assert answer["data"] is None
    assert "'w1' is not permitted to get the service-account key" in answer["errors"][0]


# --- checked on the node: a converged node asks nothing of the CA ---------------------------
# These run through the salt-minion daemons (the `salt` command), where x509_v2's states
# compile a fresh pillar on the master for each key and certificate.

SIGN = "x509.sign_remote_certificate"


def _apply(master, name, states, **kwargs):
    return master.salt_cli(timeout=300).run("state.apply", states, minion_tgt=name, **kwargs)


def _activity(master, event_listener, name, since):
    """The pillar compiles of `name` and the signing requests to the CA (certificates and
    policies) since `since`, once the master has seen `name`'s last return."""
    returned = event_listener.wait_for_events(
        [(master.id, f"salt/job/*/ret/{name}")], after_time=since, timeout=60
    )
    assert returned.found_all_events, f"no return of {name} on the master's event bus"
    events = event_listener.get_events(
        [(master.id, "salt/job/*/new"), (master.id, f"minion/refresh/{name}")], after_time=since
    )
    compiles = [e for e in events if e.tag == f"minion/refresh/{name}"]
    signing = [e for e in events if e.data.get("fun") == SIGN]
    return compiles, signing


def test_a_converged_node_asks_nothing_of_the_ca(master, event_listener, cp1_applied, w1_applied):
    for name, states in (("cp1", CP1_STATES), ("w1", W1_STATES)):
        for test in (False, True):
            since = time.time()
            ret = _apply(master, name, states, test=test)
            _assert_ok(ret)
            assert _changed(ret) == {}, (name, test)
            compiles, signing = _activity(master, event_listener, name, since)
            assert signing == [], (name, test)
            # The state run's own pillar, and none per key or certificate.
            assert len(compiles) == 1, (name, test, [e.tag for e in compiles])
    # The CA minion itself: no pillar compile per CA key and certificate either.
    since = time.time()
    ret = _apply(master, CA, "kubesalt.pki.ca")
    _assert_ok(ret)
    assert _changed(ret) == {}
    compiles, _ = _activity(master, event_listener, CA, since)
    assert len(compiles) == 1, [e.tag for e in compiles]


def test_the_pillar_compiles_counted_are_those_of_x509_v2(
    master, event_listener, paths, cp1_applied
):
    """The control of the count above: through the daemon, x509_v2's state compiles a pillar
    of its own for an unchanged key (its file test through state.single); the kubesalt_pki
    state in its place compiles none."""
    key = paths["cp1"] / "etc/kubernetes/pki/apiserver.key"
    counts = {}
    for state in ("x509.private_key_managed", "kubesalt_pki.private_key_managed"):
        since = time.time()
        ret = master.salt_cli(timeout=120).run(
            "state.single", state, f"name={key}", "mode='0600'", minion_tgt="cp1"
        )
        _assert_ok(ret)
        assert _changed(ret) == {}, state
        compiles, _ = _activity(master, event_listener, "cp1", since)
        counts[state] = len(compiles)
    # One compile is state.single's own.
    assert counts == {"x509.private_key_managed": 2, "kubesalt_pki.private_key_managed": 1}


def _certificate_state(master, name, kind):
    pki = master.salt_cli(timeout=120).run("kubesalt_kubeadm.pki", minion_tgt=name).data
    return next(c for c in pki["certificates"] if c["kind"] == kind), pki["ca_server"]


def test_a_certificate_in_its_renewal_window_is_renewed_through_the_ca(
    master, event_listener, paths, cp1_applied
):
    cert, ca_server = _certificate_state(master, "cp1", "front-proxy-client")
    before = _load(cert["cert"])
    lifetime = (before.not_valid_after_utc - before.not_valid_before_utc).days
    since = time.time()
    ret = master.salt_cli(timeout=300).run(
        "state.single",
        "kubesalt_pki.certificate_managed",
        f"name={cert['cert']}",
        f"private_key={cert['key']}",
        f"signing_policy={cert['signing_policy']}",
        f"ca_server={ca_server}",
        f"days_remaining={lifetime + 1}",  # beyond its whole life: due now
        f"expected={json.dumps(cert['expected'])}",
        "mode='0644'",
        minion_tgt="cp1",
    )
    _assert_ok(ret)
    (result,) = ret.data.values()
    assert result["changes"].get("expiration") is True, result
    assert "within the renewal window" in result["comment"]
    after = _load(cert["cert"])
    assert after.serial_number != before.serial_number
    after.verify_directly_issued_by(_load(paths[CA] / "etc/kubernetes/pki/front-proxy-ca.crt"))
    _, signing = _activity(master, event_listener, "cp1", since)
    assert signing, "the renewal was not signed by the CA minion"
    again = _apply(master, "cp1", "kubesalt.pki")
    _assert_ok(again)
    assert _changed(again) == {}


def _set_api_host(paths, host):
    document = yaml.safe_load(paths["config"].read_text())
    document["apiServer"]["host"] = host
    paths["config"].write_text(yaml.safe_dump(document))


def _refresh_ca_pillar(minions):
    ret = minions[CA].run("saltutil.refresh_pillar", wait=True)
    assert ret.returncode == 0, ret.stderr


def test_a_new_san_reissues_the_certificate(master, minions, paths, cp1_applied):
    apiserver = paths["cp1"] / "etc/kubernetes/pki/apiserver.crt"
    etcd_server = paths["cp1"] / "etc/kubernetes/pki/etcd/server.crt"
    before, etcd_before = _load(apiserver), _load(etcd_server)
    _set_api_host(paths, "198.51.100.101")
    try:
        _refresh_ca_pillar(minions)
        dry = _apply(master, "cp1", "kubesalt.pki", test=True)
        would = {v["__id__"] for v in dry.data.values() if v["result"] is None}
        assert would == {"Obtain the apiserver certificate from the CA minion"}
        ret = _apply(master, "cp1", "kubesalt.pki")
        _assert_ok(ret)
        assert {v["__id__"] for v in ret.data.values() if v["changes"]} == {
            "Obtain the apiserver certificate from the CA minion"
        }
        after = _load(apiserver)
        assert "198.51.100.101" in _sans(after) and "198.51.100.100" not in _sans(after)
        assert after.serial_number != before.serial_number
        assert _load(etcd_server).serial_number == etcd_before.serial_number
    finally:
        _set_api_host(paths, "198.51.100.100")
        _refresh_ca_pillar(minions)
    restored = _apply(master, "cp1", "kubesalt.pki")
    _assert_ok(restored)
    assert "198.51.100.100" in _sans(_load(apiserver))
