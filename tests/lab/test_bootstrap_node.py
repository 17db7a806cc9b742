"""The lab bootstrap node, end to end (issue 4): bootstrap.sh from the extracted `lab` ISO,
its services, the repository and the registry seen from another node, no way out, a
second run that changes nothing, and a bad bootstrap.yaml stopped before any change."""

from __future__ import annotations

import json
import textwrap

import pytest

from kubesalt_lab import model

pytestmark = pytest.mark.lab

BOOTSTRAP_IP = "198.51.100.10"
REPO_PORT = 8443
PHASES = ("restore", "preflight", "archive", "repository", "salt-install", "salt-minion",
          "bootstrap-states", "salt-master", "orchestrate", "addons")  # fmt: skip
CA_ON_WORKER = "/etc/kubesalt/ca.crt"


def test_bootstrap_sh_succeeds_from_the_extracted_lab_iso(lab):
    assert "bootstrap.sh: done in" in lab.up_output
    ran = [phase for phase, _seconds, _state in lab.first_bootstrap_phases()]
    assert ran == [p for p in PHASES if p not in model.SKIP_BOOTSTRAP_PHASES]
    assert "addons: salt-run state.orchestrate kubesalt.orchestrate.addons" in lab.up_output
    assert "skipped (--skip-phases)" in lab.up_output
    log = lab.host("bootstrap").file("/var/log/kubesalt/bootstrap.log")
    assert log.mode == 0o600
    assert "salt-call --local" in log.content_string
    archive = lab.archive()
    assert archive["root"] == "/srv/kubesalt/kubesalt-lab"
    assert archive["kind"] == "directory"
    assert archive["flavour"] == "lab"


@pytest.mark.parametrize(
    "service", ["salt-master", "salt-minion", "nginx", "docker-registry", "firewalld"]
)
def test_bootstrap_service_running_and_enabled(lab, service):
    unit = lab.host("bootstrap").service(service)
    assert unit.is_running
    assert unit.is_enabled


def test_bootstrap_services_bound_to_the_control_plane_ip(lab):
    host = lab.host("bootstrap")
    for port in (4505, 4506, REPO_PORT):
        assert host.socket(f"tcp://{BOOTSTRAP_IP}:{port}").is_listening, port
    assert host.socket("tcp://127.0.0.1:5000").is_listening
    listening = host.socket.get_listening_sockets()
    for port in (4505, 4506, REPO_PORT, 5000):
        assert f"tcp://0.0.0.0:{port}" not in listening
        assert f"tcp://:::{port}" not in listening
    assert not any(s.endswith((":80", ":443")) for s in listening), listening


def test_the_minion_key_was_accepted_by_the_orchestration(lab):
    keys = json.loads(lab.run("bootstrap", "salt-key", "-L", "--out=json").stdout)
    # The bootstrap node's own key, and those deploy_node accepted (tests/lab/test_cluster.py).
    assert keys["minions"] == sorted(n.name for n in model.NODES)
    assert keys["minions_pre"] == []
    master = lab.host("bootstrap").file("/etc/salt/master.d/kubesalt.conf").content_string
    assert "auto_accept: false" in master
    ping = json.loads(lab.run("bootstrap", "salt", "bootstrap", "test.ping", "--out=json").stdout)
    assert ping == {"bootstrap": True}


def test_the_cluster_ca_and_the_nginx_certificate(lab):
    host = lab.host("bootstrap")
    key = host.file("/etc/kubernetes/pki/ca.key")
    assert key.mode == 0o600 and key.user == "root"
    assert host.file("/etc/kubesalt/pki/repository.key").mode == 0o600
    script = textwrap.dedent(
        """
        from cryptography import x509
        ca = x509.load_pem_x509_certificate(open("/etc/kubernetes/pki/ca.crt", "rb").read())
        leaf = x509.load_pem_x509_certificate(open("/etc/kubesalt/pki/repository.crt", "rb").read())
        ca.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
            __import__("cryptography.hazmat.primitives.asymmetric.padding", fromlist=["x"]).PKCS1v15(),
            leaf.signature_hash_algorithm)
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        print(ca.subject.rfc4514_string(), ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        print(leaf.issuer.rfc4514_string(), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)])
        """
    )
    out = lab.run("bootstrap", "/opt/kubesalt/salt/bin/python", "-c", script).stdout.splitlines()
    assert out[0] == "CN=kubernetes True"
    assert out[1] == f"CN=kubernetes ['{BOOTSTRAP_IP}']"


def test_the_firewall_opens_the_bootstrap_ports(lab):
    zone = lab.run("bootstrap", "firewall-cmd", "--get-default-zone").stdout.strip()
    assert zone == "kubesalt"
    rules = lab.run("bootstrap", "firewall-cmd", "--zone=kubesalt", "--list-all").stdout
    for port in ("4505", "4506", str(REPO_PORT)):
        assert f'port="{port}"' in rules, rules
    assert 'port="5000"' not in rules


@pytest.fixture(scope="module")
def worker_trusts_the_cluster_ca(lab):
    """What deploy_node will do on a new node: trust the CA, know the archive's apt key."""
    archive = lab.archive()
    ca = lab.run("bootstrap", "cat", "/etc/kubernetes/pki/ca.crt").stdout
    lab.write("worker1", CA_ON_WORKER, ca)
    keyring = lab.run(
        "bootstrap", "base64", "-w0", f"/etc/apt/keyrings/{archive['saltenv']}.gpg"
    ).stdout
    lab.run(
        "worker1",
        "sh",
        "-c",
        f"mkdir -p /etc/apt/keyrings && echo {keyring} | base64 -d > /etc/apt/keyrings/kubesalt.gpg",
    )
    return archive


def test_a_package_installs_on_another_node_from_the_bootstrap_repository_over_tls(
    lab, worker_trusts_the_cluster_ca
):
    """worker1's apt source is the one deploy_node configured (HTTPS, the cluster CA in the
    system trust store, the archive's key): a package the node lacks installs from it."""
    saltenv = worker_trusts_the_cluster_ca["saltenv"]
    source = lab.run("worker1", "cat", f"/etc/apt/sources.list.d/{saltenv}.sources").stdout
    assert f"URIs: https://{BOOTSTRAP_IP}:{REPO_PORT}/{saltenv}/deb" in source
    lab.run("worker1", "apt-get", "install", "-y", "--no-install-recommends", "socat")
    assert lab.host("worker1").package("socat").is_installed
    policy = lab.run("worker1", "apt-cache", "policy", "socat").stdout
    assert f"https://{BOOTSTRAP_IP}:{REPO_PORT}/{saltenv}/deb kubesalt/main" in policy


def test_an_image_is_pulled_from_another_node_through_nginx(lab, worker_trusts_the_cluster_ca):
    archive = worker_trusts_the_cluster_ca
    index = json.loads(lab.run("bootstrap", "cat", f"{archive['root']}/images/index.json").stdout)
    wanted = {
        d["annotations"]["org.opencontainers.image.ref.name"]: d["digest"]
        for d in index["manifests"]
    }
    assert wanted, "the lab ISO holds images"
    script = textwrap.dedent(
        f"""
        import hashlib, json, ssl, sys, urllib.request
        ctx = ssl.create_default_context(cafile="{CA_ON_WORKER}")
        accept = ", ".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json"])
        def get(path):
            req = urllib.request.Request("https://{BOOTSTRAP_IP}:{REPO_PORT}" + path, headers={{"Accept": accept}})
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                return resp.headers, resp.read()
        out = {{}}
        for ref, digest in json.loads(sys.argv[1]).items():
            name, tag = ref.rsplit(":", 1)
            headers, body = get(f"/v2/{{name}}/manifests/{{tag}}")
            got = "sha256:" + hashlib.sha256(body).hexdigest()
            manifest = json.loads(body)
            if "manifests" in manifest:
                _, body = get(f"/v2/{{name}}/manifests/{{manifest['manifests'][0]['digest']}}")
                manifest = json.loads(body)
            blobs = [manifest["config"], *manifest["layers"]]
            ok = all("sha256:" + hashlib.sha256(get(f"/v2/{{name}}/blobs/{{b['digest']}}")[1]).hexdigest() == b["digest"] for b in blobs)
            out[ref] = [got, headers["Docker-Content-Digest"], ok, len(blobs)]
        print(json.dumps(out))
        """
    )
    pulled = json.loads(lab.run("worker1", "python3", "-c", script, json.dumps(wanted)).stdout)
    for ref, digest in wanted.items():
        got, header, blobs_ok, count = pulled[ref]
        assert got == header == digest, ref
        assert blobs_ok and count >= 2, ref


@pytest.mark.parametrize("node", ["bootstrap", "worker1"])
def test_nodes_have_no_route_out(lab, node):
    routes = lab.run(node, "ip", "-j", "route", "show", "table", "all").stdout
    assert '"dst":"default"' not in routes.replace(" ", "")
    out = lab.run(node, "ip", "route", "get", "192.0.2.1", check=False)
    assert out.returncode != 0 and "unreachable" in out.stderr
    probe = "import socket; s=socket.socket(); s.settimeout(3); s.connect(('192.0.2.1', 80))"
    result = lab.run(node, "python3", "-c", probe, check=False)
    assert result.returncode != 0 and "Network is unreachable" in result.stderr


@pytest.mark.parametrize("run", [1, 2, 3])
def test_bootstrap_sh_run_again_succeeds_and_changes_nothing(lab, run):
    """Three runs in a row right after `lab.sh up` (issue 10: a second run once failed in phase
    orchestrate while the cluster was still settling): each succeeds, every phase says "no
    changes", and each is faster than the first bootstrap."""
    from tests.lab.session import parse_phase_times

    result, _wall = lab.rerun_bootstrap(run)[run - 1]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "no changes" in result.stdout.splitlines()[-1], result.stdout
    again = parse_phase_times(result.stdout)
    assert [p for p, _s, _st in again] == [
        p for p in PHASES if p not in model.SKIP_BOOTSTRAP_PHASES
    ]
    assert {st for _p, _s, st in again} == {"no changes"}, again
    first_total = sum(s for _p, s, _st in lab.first_bootstrap_phases())
    assert sum(s for _p, s, _st in again) < first_total


def test_a_bad_bootstrap_yaml_stops_bootstrap_before_any_change(lab):
    """On worker1, a fresh server with the ISO extracted: nothing may be installed."""
    import subprocess

    target = lab.node_root("worker1") + "/srv/kubesalt/kubesalt-lab"
    subprocess.run(["mkdir", "-p", target], check=True)
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", lab.iso(), "-extract", "/", target],
                   check=True, capture_output=True)  # fmt: skip
    bad = textwrap.dedent(
        """\
        apiVersion: kubesalt.io/v1alpha1
        kind: BootstrapConfiguration
        networks:
          controlPlane:
            cidr: [198.51.100.0/24]
          pods: 10.233.0.0/33
        apiServer:
          host: 198.51.100.100
        ca:
          minion: worker1
        archives: [/srv/kubesalt/kubesalt-lab]
        flannel: true
        """
    )
    lab.write("worker1", "/root/bad.yaml", bad)
    host = lab.host("worker1")
    # worker1 is a deployed node by now (deploy_node): what it has must stay as it is.
    watched = ("/opt/kubesalt", "/etc/salt", "/etc/kubesalt/archives.yaml", "/etc/kubesalt/nodes")
    existed = {path: host.file(path).exists for path in watched}
    assert not existed["/etc/kubesalt/archives.yaml"] and not existed["/etc/kubesalt/nodes"]
    before = lab.run(
        "worker1", "sh", "-c", "ls /etc/apt/sources.list.d /etc; dpkg -l | wc -l"
    ).stdout
    result = lab.run(
        "worker1",
        "/srv/kubesalt/kubesalt-lab/bootstrap.sh",
        "--config",
        "/root/bad.yaml",
        check=False,
    )
    assert result.returncode == 1
    out = result.stdout
    assert "error in phase preflight" in out
    assert "/root/bad.yaml" in out and "networks.pods" in out and "flannel" in out
    assert "[2/9] archive" not in out
    assert {path: host.file(path).exists for path in watched} == existed
    assert (
        lab.run("worker1", "sh", "-c", "ls /etc/apt/sources.list.d /etc; dpkg -l | wc -l").stdout
        == before
    )


def test_skip_phases_refuses_an_unknown_phase(lab):
    result = lab.run(
        "bootstrap",
        "/srv/kubesalt/kubesalt-lab/bootstrap.sh",
        "--skip-phases",
        "preflight,firewall",
        check=False,
    )
    assert result.returncode == 2
    assert "unknown phase 'firewall'" in result.stderr
    assert "valid phases, in order: " + ", ".join(PHASES) in result.stderr


def test_the_bootstrap_role_in_test_mode_would_change_nothing(lab):
    out = lab.run(
        "bootstrap",
        "salt-call",
        "--local",
        "--out=json",
        "state.apply",
        "kubesalt.roles.bootstrap",
        "test=True",
    )
    states = json.loads(out.stdout)["local"]
    assert len(states) > 30
    pending = [s["__id__"] for s in states.values() if s["result"] is not True or s["changes"]]
    assert pending == []
