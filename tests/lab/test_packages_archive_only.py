"""Packages come from the archive only, at its pinned versions (issue 16, item 2).

Every package kubesalt installed on a lab node is at the version the archive's
manifest.lock.yaml pins. And a node whose apt sources also list another mirror never
touches it: on cp2 a source for http://198.51.100.254/debian (inside the lab's network,
never an outside address) is added, and that address is put on cp2's loopback with a
listener that records every request; etcd-client is removed, and a highstate installs it
again. Before the fix, the first pkg.installed of the highstate ran `apt-get update` over
every source, and the listener saw the mirror's InRelease asked for.

Runs after tests/lab/test_cluster.py (file order), on the converged lab.
"""

from __future__ import annotations

import json

import pytest
import yaml

from kubesalt_lab import model

pytestmark = pytest.mark.lab

NODE = "cp2"  # an etcd member: its etcd-client (etcdctl) is only used by orchestrations
PACKAGE = "etcd-client"
MIRROR_IP = "198.51.100.254"
MIRROR_SOURCE = "/etc/apt/sources.list.d/kubesalt-lab-mirror.list"
MIRROR_UNIT = "kubesalt-lab-mirror"
REQUESTS = "/run/kubesalt-lab-mirror.requests"
# The mirror: every request is appended to REQUESTS and answered 404.
LISTENER = f"""
import http.server
class Mirror(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open({REQUESTS!r}, "a") as out:
            out.write(f"{{self.command}} {{self.path}}\\n")
        self.send_error(404)
    do_HEAD = do_GET
    def log_message(self, *args):
        pass
http.server.HTTPServer(({MIRROR_IP!r}, 80), Mirror).serve_forever()
"""
# Asks the mirror for /probe until it answers (its 404), for at most 30 s; directly, whatever
# proxy the environment names.
PROBE = f"""
import time, urllib.error, urllib.request
direct = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
for _ in range(60):
    try:
        direct.open("http://{MIRROR_IP}/probe", timeout=2)
    except urllib.error.HTTPError:
        break
    except OSError:
        time.sleep(0.5)
"""


def _lock(lab) -> dict:
    text = lab.run(lab.bootstrap_node(), "cat", f"{model.ARCHIVE_DIR}/manifest.lock.yaml").stdout
    return {entry["name"]: entry["version"] for entry in yaml.safe_load(text)["deb"]}


def _installed_version(lab, node, package) -> str:
    result = lab.run(node, "dpkg-query", "-W", "-f=${Status} ${Version}", package, check=False)
    status, _, version = result.stdout.rpartition(" ")
    return version if status == "install ok installed" else ""


def _kubesalt_packages(node: model.Node) -> list[str]:
    """The packages the states and bootstrap.sh installed on `node` (the lab skips the
    containerd and kubelet phases)."""
    found = ["firewalld"]
    if "control-plane" in node.roles:
        found.append("keepalived")
    if "etcd" in node.roles:
        found.append("etcd-client")
    if node.bootstrap:  # the other nodes unpack its Salt virtualenv: no python3-venv there
        found += ["python3-venv", "nginx-light", "docker-registry"]
    return found


@pytest.mark.parametrize("node", model.NODES, ids=lambda n: n.name)
def test_every_package_is_at_the_archives_pinned_version(lab, node):
    pins = _lock(lab)
    for package in _kubesalt_packages(node):
        assert _installed_version(lab, node.name, package) == pins[package], (node.name, package)


def _start_mirror(lab):
    lab.run(NODE, "ip", "address", "add", f"{MIRROR_IP}/32", "dev", "lo")
    lab.run(NODE, "rm", "-f", REQUESTS)
    lab.run(NODE, "systemd-run", f"--unit={MIRROR_UNIT}", "/usr/bin/python3", "-c", LISTENER)
    lab.write(NODE, MIRROR_SOURCE, f"deb http://{MIRROR_IP}/debian {model.SUITE} main\n")


def _stop_mirror(lab):
    lab.run(NODE, "rm", "-f", MIRROR_SOURCE)
    lab.run(NODE, "systemctl", "stop", MIRROR_UNIT, check=False)
    lab.run(NODE, "ip", "address", "del", f"{MIRROR_IP}/32", "dev", "lo", check=False)


def _mirror_requests(lab) -> list[str]:
    return lab.run(NODE, "sh", "-c", f"cat {REQUESTS} 2>/dev/null || true").stdout.splitlines()


def _highstate(lab) -> dict:
    saltenv = lab.archive()["saltenv"]
    result = lab.run(
        lab.bootstrap_node(), "salt", NODE, "state.highstate", f"saltenv={saltenv}",
        "--out=json", "--out-indent=-1", check=False, timeout=900,
    )  # fmt: skip
    states = {}
    for line in result.stdout.splitlines():
        answer = json.loads(line)[NODE]
        assert isinstance(answer, dict), answer  # a list: the highstate did not render
        states.update(answer)
    return states


def test_a_highstate_never_touches_another_mirror_of_the_node(lab):
    pins = _lock(lab)
    _start_mirror(lab)
    try:
        # The listener answers: a request made here is recorded (so no record below means
        # no request, not a dead listener).
        lab.run(NODE, "/usr/bin/python3", "-c", PROBE)
        assert _mirror_requests(lab) == ["GET /probe"]
        lab.run(NODE, "rm", "-f", REQUESTS)
        # dpkg (not apt): no source is read, and it refuses if anything depends on it.
        lab.run(NODE, "dpkg", "--remove", PACKAGE)
        assert _installed_version(lab, NODE, PACKAGE) == ""

        states = _highstate(lab)
        failed = {s["__id__"]: s["comment"] for s in states.values() if s["result"] is not True}
        assert states and not failed, failed
        assert _installed_version(lab, NODE, PACKAGE) == pins[PACKAGE]
        assert _mirror_requests(lab) == []
    finally:
        _stop_mirror(lab)
        if not _installed_version(lab, NODE, PACKAGE):  # leave the lab converged
            _highstate(lab)
