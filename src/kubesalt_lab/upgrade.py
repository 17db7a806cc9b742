"""`lab.sh upgrade` and `lab.sh downgrade` (docs/lab.md): a cluster moved between two lab
archives while etcd takes writes and the API VIP is watched.

upgrade: builds a newer lab archive (the next product version, the newest Kubernetes
release kubesalt supports), extracts it beside the first on the bootstrap node, adds it with
`kubesalt-iso add`, and runs its `upgrade.sh`. downgrade: runs the current archive's
`downgrade.sh`. Meanwhile a probe in the bootstrap node writes a key into etcd every 100 ms
through the members' own client URLs (standins/etcdwriter.py) and the host reads which
control-plane nodes hold the VIP every 100 ms. The verdict: no write lost or refused, exactly
one VIP holder at every sample, and every node on the target versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from kubesalt import inventory
from kubesalt.bootstrap import archive as karchive
from kubesalt.bootstrap import services
from kubesalt.kubeadm import images
from kubesalt_lab import cli, host, model
from kubesalt_lab.cli import say
from kubesalt_lab.model import LabError

PROBE = model.STANDIN_DIR + "/etcdwriter.py"
# On the node's disk (its overlay), where the host can create it: /run is the node's tmpfs.
STOP_FILE = "/var/tmp/kubesalt-lab-etcdwriter.stop"
SAMPLE_INTERVAL = 0.1


class VipSampler(threading.Thread):
    """Which control-plane nodes hold the VIP, every SAMPLE_INTERVAL seconds, read from
    each node's /proc/<pid>/net/fib_trie on the host (no process started per sample)."""

    def __init__(self, leaders: dict[str, int]):
        super().__init__(daemon=True)
        self.leaders = leaders
        self.samples: list[tuple[float, tuple[str, ...]]] = []
        self.stopping = threading.Event()

    def holders(self) -> tuple[str, ...]:
        found = []
        for name, pid in self.leaders.items():
            try:
                text = Path(f"/proc/{pid}/net/fib_trie").read_text()
            except OSError:
                continue  # a node restarting: it holds nothing
            if model.VIP in model.local_addresses(text):
                found.append(name)
        return tuple(found)

    def run(self):
        start = time.monotonic()
        while not self.stopping.is_set():
            self.samples.append((time.monotonic() - start, self.holders()))
            self.stopping.wait(SAMPLE_INTERVAL)

    def stop(self) -> list[tuple[float, tuple[str, ...]]]:
        self.stopping.set()
        self.join()
        return self.samples


def cluster_nodes(state: dict) -> tuple[model.Node, ...]:
    """The lab's nodes that run (a killed one, removed from the cluster, left out), the
    nodes `lab.sh add` made included."""
    return tuple(n for n in model.lab_nodes(state) if n.name in state["nodes"]
                 and not state["nodes"][n.name].get("killed"))  # fmt: skip


def bootstrap_root(state: dict) -> str:
    return state["nodes"][model.bootstrap_node().name]["root"]


def start_writer(state: dict, prefix: str) -> subprocess.Popen:
    """The etcd probe, started in the bootstrap node (copied there first)."""
    root = bootstrap_root(state)
    probe = Path(root + PROBE)
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text((Path(__file__).parent / "standins" / "etcdwriter.py").read_text())
    Path(root + STOP_FILE).unlink(missing_ok=True)
    endpoints = ",".join(f"https://{n.ip}:2379" for n in cluster_nodes(state) if "etcd" in n.roles)
    cmd = ["/usr/bin/python3", PROBE, "--endpoints", endpoints, "--prefix", prefix,
           "--stop-file", STOP_FILE, "--interval", str(SAMPLE_INTERVAL)]  # fmt: skip
    full = host.nsenter_command(cli.leader_of(model.bootstrap_node().name, state), cmd)
    return subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_writer(state: dict, proc: subprocess.Popen) -> dict:
    Path(bootstrap_root(state) + STOP_FILE).touch()
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        host.kill_entered(proc)
        raise LabError(
            f"the etcd probe did not stop within 120 s of {STOP_FILE} appearing in the "
            "bootstrap node; its read-back hung: is etcd up? (lab.sh status)"
        ) from None
    if proc.returncode != 0:
        raise LabError(f"the etcd probe failed (exit {proc.returncode}): {err.strip()[-800:]}")
    return json.loads(out.strip().splitlines()[-1])


def archives(state: dict) -> tuple[dict[str, karchive.Archive], str | None]:
    """The bootstrap node's registered archives by version, and the current one's version
    (its register read from the host with kubesalt's own reader)."""
    path = bootstrap_root(state) + karchive.REGISTER
    return {a.version: a for a in karchive.load_register(path)}, karchive.load_current(path)


def archive_dir(version: str) -> str:
    return f"{model.ARCHIVE_DIR}-{version}"


def build_archive(version: str, kubernetes: str) -> str:
    """The lab ISO of `version` carrying Kubernetes `kubernetes`."""
    return cli.run_iso_build(os.path.join(cli.ISO_OUT, version),
                             os.path.join(model.CACHE_DIR, f"iso-build-{version}.log"),
                             "--version", version, "--kubernetes-version", kubernetes)  # fmt: skip


def stage_archive(state: dict, iso: str, version: str) -> str:
    """`iso` extracted into the bootstrap node beside the first archive, once."""
    target = bootstrap_root(state) + archive_dir(version)
    if not os.path.isfile(os.path.join(target, karchive.PRODUCT)):
        cli.extract_iso(iso, target, "the bootstrap node")
    return archive_dir(version)


def in_bootstrap(cmd: list[str], what: str, timeout: float = 3600) -> None:
    """A command in the bootstrap node, its output on the terminal; LabError if it fails."""
    result = cli.exec_in(model.bootstrap_node().name, cmd, timeout=timeout)
    if result.returncode != 0:
        raise LabError(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}")


def node_versions(state: dict) -> dict[str, dict[str, str | None]]:
    """What each node runs, read from its files on the host: kubesalt's version in the Salt
    virtualenv, the minion's saltenv, etcd's and the API server's image tags, and the
    release the inventory records for it."""
    declared = inventory.load(bootstrap_root(state) + services.INVENTORY_DIR)
    found = {}
    for node in cluster_nodes(state):
        root = state["nodes"][node.name]["root"]
        site = Path(root + model.SITE_PACKAGES)
        recorded = declared.get(node.name)
        found[node.name] = {
            "kubesalt": model.dist_version(sorted(p.name for p in site.glob("kubesalt-*"))),
            "saltenv": model.minion_saltenv(_text(root + model.MINION_CONFIG)),
            "etcd": model.image_tag(_text(root + model.MANIFESTS["etcd"])),
            "apiserver": model.image_tag(_text(root + model.MANIFESTS["apiserver"])),
            "recorded": recorded.kubernetes_version if recorded else None,
        }
    return found


def _text(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def move(direction: str) -> int:
    """Upgrade or downgrade the lab's cluster with the probes running; the report."""
    state = host.load_state()
    if not state.get("nodes"):
        raise LabError("no lab is up: run lab.sh up first")
    registered, current = archives(state)
    running = registered[current]
    steps = cli.Steps()
    # The plan refuses without a recent backup (docs/upgrade.md): take one, as an operator would.
    steps.run("kubesalt-backup", in_bootstrap,
              [f"{running.root}/scripts/kubesalt-backup"], "kubesalt-backup")  # fmt: skip
    if direction == "upgrade":
        version = model.next_version(current)
        if version in registered:
            # A second run continues the upgrade with the archive added before, as an
            # operator runs the same upgrade.sh again after a failure.
            say(f"lab: kubesalt {version} is registered already: running its upgrade.sh again")
            where = archive_dir(version)
        else:
            kubernetes = images.supported_versions()[-1]
            iso = steps.run(f"build the lab archive {version} (Kubernetes {kubernetes})",
                            build_archive, version, kubernetes)  # fmt: skip
            where = steps.run("extract it into the bootstrap node", stage_archive, state, iso,
                              version)  # fmt: skip
            steps.run(f"kubesalt-iso add {where}", in_bootstrap,
                      [f"{running.root}/scripts/kubesalt-iso", "add", where],
                      "kubesalt-iso add")  # fmt: skip
        script = f"{where}/scripts/upgrade.sh"
    else:
        script = f"{running.root}/scripts/downgrade.sh"
    leaders = {n.name: cli.leader_of(n.name, state) for n in cluster_nodes(state)
               if "control-plane" in n.roles}  # fmt: skip
    sampler = VipSampler(leaders)
    writer = start_writer(state, f"kubesalt-lab/{direction}/{int(time.time())}/")
    sampler.start()
    failure = None
    try:
        steps.run(f"{os.path.basename(script)} (etcd writes and VIP samples every 100 ms)",
                  in_bootstrap, [script, *model.upgrade_options()], script)  # fmt: skip
    except LabError as err:
        failure = err  # the probes' verdict still says what the cluster went through
    finally:
        samples = sampler.stop()
        written = stop_writer(state, writer)
    registered, target = archives(state)  # the move changed the current archive
    report = model.move_report(direction, written, samples, node_versions(state), target,
                               _release_of(state, registered[target]), steps.timings,
                               cluster_nodes(state))  # fmt: skip
    print(report.text)
    state.setdefault("moves", []).append(report.record)
    host.save_state(state)
    if failure is not None:
        raise failure
    return 0 if report.ok else 1


def _release_of(state: dict, found: karchive.Archive) -> dict[str, str]:
    """The Kubernetes release and etcd tag the archive `found` carries (its product.txt)."""
    product = bootstrap_root(state) + found.path(karchive.PRODUCT)
    fields = karchive.parse_product(Path(product).read_text(), product)
    kubernetes = fields.get(karchive.KUBERNETES_VERSION)
    if not kubernetes:
        raise LabError(f"{product}: no {karchive.KUBERNETES_VERSION}=; rebuild the lab archive")
    return {"kubernetes": kubernetes, "etcd": images.image("etcd", kubernetes).tag}
