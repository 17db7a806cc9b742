"""`scripts/lab.sh up | down | status | exec NODE CMD... | kill NODE | start NODE |
add NODE [ROLES]` (docs/lab.md)."""

from __future__ import annotations

import argparse
import glob
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from kubesalt import config as kconfig
from kubesalt_lab import host, model
from kubesalt_lab.model import LabError

PROJECT = Path(__file__).resolve().parents[2]
LAB_CONFIG = PROJECT / "scripts" / "lab" / "bootstrap.yaml"
ISO_OUT = os.path.join(model.CACHE_DIR, "iso")
ISO_CACHE = os.path.join(model.CACHE_DIR, "iso-cache")


def say(text: str) -> None:
    print(f"lab: {text}", flush=True)


class Steps:
    """Timed steps, printed as they end (the lab's own timings, for docs/benchmarks.md)."""

    def __init__(self):
        self.timings: list[tuple[str, float]] = []

    def run(self, name: str, func, *args):
        say(f"{name} ...")
        start = time.monotonic()
        result = func(*args)
        seconds = time.monotonic() - start
        self.timings.append((name, seconds))
        say(f"{name}: done in {seconds:.1f}s")
        return result


def build_iso() -> str:
    """Build the `lab` flavour ISO with iso/build (artifacts cached in ISO_CACHE), or take
    the ISO named by $KUBESALT_LAB_ISO (an ISO built before, to iterate faster)."""
    given = os.environ.get("KUBESALT_LAB_ISO")
    if given:
        if not os.path.isfile(given):
            raise LabError(f"KUBESALT_LAB_ISO={given}: no such file; unset it to build the ISO")
        say(f"using the ISO {given} (KUBESALT_LAB_ISO)")
        return given
    return run_iso_build(ISO_OUT, os.path.join(model.CACHE_DIR, "iso-build.log"))


def run_iso_build(out: str, log: str, *options: str) -> str:
    """iso/build --flavour lab (its artifacts cached in ISO_CACHE) with `options` into
    `out`, its output into `log`; the newest ISO of `out`."""
    os.makedirs(ISO_CACHE, exist_ok=True)
    os.makedirs(out, exist_ok=True)
    cmd = [sys.executable, str(PROJECT / "iso" / "build"), "--flavour", "lab", *options,
           "--out", out, "--from", ISO_CACHE, "--fill-cache"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    Path(log).write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise LabError(
            f"iso/build --flavour lab {' '.join(options)} failed (exit {result.returncode}); "
            f"full log {log}:\n{tail}"
        )
    isos = sorted(glob.glob(os.path.join(out, "*.iso")), key=os.path.getmtime)
    if not isos:
        raise LabError(f"iso/build wrote no ISO in {out}; see {log}")
    return isos[-1]


def extract_iso(iso: str, target: str, node: str) -> None:
    """`iso` extracted into `target` (a lab node cannot mount an ISO); xorriso keeps the
    ISO's read-only modes: the tree stays as on the ISO."""
    os.makedirs(target, exist_ok=True)
    host.run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", target],
             what=f"extract {iso} into {node}")  # fmt: skip


def prepare_node(node: model.Node, lower: str, seed: str, iso: str, nodes=model.NODES,
                 config: bool = True) -> str:  # fmt: skip
    """Mount `node`'s overlay and give it the lab's files; the bootstrap node also gets the
    lab ISO extracted and, with `config`, bootstrap.yaml."""
    root = host.overlay_mount(node.name, lower)
    host.write_node_files(root, node, seed, nodes)
    if node.bootstrap:
        extract_iso(iso, root + model.ARCHIVE_DIR, node.name)
        if config:
            dest = Path(root + model.CONFIG_DEST)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(LAB_CONFIG, dest)
    return root


def fresh_disk(state: dict, node: model.Node) -> str:
    """A powered-off node's disk replaced by a fresh one: its overlay's upper layer
    emptied, mounted again on the rootfs, with the files the lab gives a new machine of
    that name (the bootstrap node: the lab ISO, but no bootstrap.yaml: bootstrap.sh
    --restore brings it back)."""
    base = host.node_dir(node.name)
    host.unmount_all(base)
    for layer in ("upper", "work"):
        shutil.rmtree(os.path.join(base, layer), ignore_errors=True)
    return prepare_node(node, lower_dir(state), state["seed"], state["iso"],
                        model.lab_nodes(state), config=False)  # fmt: skip


def boot_nodes(state: dict, lower: str, iso: str) -> None:
    for node in model.NODES:
        root = prepare_node(node, lower, state["seed"], iso)
        launcher = host.boot(node, root)
        state["nodes"][node.name] = {"launcher": launcher, "root": root}
        host.save_state(state)
    for node in model.NODES:
        entry = state["nodes"][node.name]
        entry["leader"] = host.wait_booted(node.name, entry["launcher"])
        host.save_state(state)


def leader_of(name: str, state: dict | None = None) -> int:
    state = state if state is not None else host.load_state()
    entry = model.entry_of(state, name)
    launcher = entry.get("launcher")
    if not host.is_launcher(launcher):
        raise LabError(
            f"node {name} is {model.power(entry, False)}: boot it with: lab.sh start {name}"
        )
    pid = host.leader(launcher)
    if not pid:
        raise LabError(
            f"node {name}: its systemd-nspawn (pid {launcher}) runs no systemd; "
            f"lab.sh kill {name}, then lab.sh start {name}"
        )
    return pid


def exec_in(name: str, cmd: list[str], capture: bool = False, check: bool = False, timeout=None):
    full = host.nsenter_command(leader_of(name), cmd)
    return subprocess.run(full, capture_output=capture, text=True, check=check, timeout=timeout)


def run_bootstrap(extra: list[str] | None = None) -> float:
    node = next(n for n in model.NODES if n.bootstrap)
    start = time.monotonic()
    result = exec_in(node.name, model.bootstrap_command(*(extra or [])))
    if result.returncode != 0:
        raise LabError(
            f"bootstrap.sh failed on {node.name} (exit {result.returncode}); see its log: "
            f"lab.sh exec {node.name} cat /var/log/kubesalt/bootstrap.log"
        )
    return time.monotonic() - start


def salt_run(args: list[str], what: str, timeout: float = 900) -> str:
    """salt-run on the bootstrap node (JSON out); raise LabError naming what failed. Its
    stderr is not captured: an orchestration's live progress (each phase as it starts and
    ends) goes straight to the operator's terminal."""
    node = next(n for n in model.NODES if n.bootstrap)
    # --log-level=error: Salt's own warnings ("unclosed Runner ...") are noise on a terminal.
    cmd = ["salt-run", "--out=json", "--out-indent=-1", "--log-level=error", *args]
    full = host.nsenter_command(leader_of(node.name), cmd)
    try:
        result = subprocess.run(full, stdout=subprocess.PIPE, text=True, check=False,
                                timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired as err:
        raise LabError(f"{what}: salt-run did not finish in {timeout:.0f}s") from err
    failed = model.failed_states(result.stdout)
    if result.returncode != 0 or failed:
        detail = "\n".join(failed) or result.stdout.strip()[-2000:]
        raise LabError(
            f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n{detail}\n"
            f"see: lab.sh exec {node.name} tail -n 100 /var/log/salt/master"
        )
    return result.stdout


def saltenv() -> str:
    """The saltenv of the lab archive, from the extracted ISO on the bootstrap node."""
    node = next(n for n in model.NODES if n.bootstrap)
    root = host.load_state()["nodes"][node.name]["root"]
    return model.saltenv_of(Path(root + model.ARCHIVE_DIR + "/product.txt").read_text())


def declare_nodes(names: list[str]) -> None:
    """Declare lab nodes (those of `lab.sh add` too) with their roles and the lab's key."""
    nodes = model.lab_nodes(host.load_state())
    for name in names:
        salt_run(model.declare_args(model.node(name, nodes)), what=f"declare {name}")


def deploy(names: list[str], together: bool = True) -> list[tuple[str, float, str]]:
    """Declare `names` and deploy them with salt-run: all in one deploy_node (`together`),
    or one deploy_node per node. (what, seconds, state summary) per salt-run."""
    declare_nodes(names)
    timings = []
    for group in [names] if together else [[name] for name in names]:
        label = ", ".join(group)
        start = time.monotonic()
        command = model.orchestrate_command(
            "deploy_node", group if together else group[0], saltenv()
        )
        output = salt_run(command, what=f"deploy_node {label}", timeout=1800)
        seconds = time.monotonic() - start
        summary = model.summary(output)
        say(f"deploy_node {label}: done in {seconds:.1f}s ({summary})")
        timings.append((f"deploy_node {label}", seconds, summary))
    return timings


def deploy_nodes() -> list[tuple[str, float, str]]:
    """Declare every node but the bootstrap node and deploy them together (one salt-run)."""
    return deploy([n.name for n in model.NODES if not n.bootstrap], together=True)


def _in_node(pid: int, cmd: list[str], stderr: bool = False) -> str:
    result = subprocess.run(host.nsenter_command(pid, cmd), capture_output=True, text=True,
                            check=False, timeout=30)  # fmt: skip
    return result.stdout + (result.stderr if stderr else "")


def etcd_summary(pid: int) -> str:
    """`N members, healthy|unhealthy` as seen from this node's etcd (etcdctl, if any)."""
    pki = "/etc/kubernetes/pki"
    tls = [f"--cacert={pki}/etcd/ca.crt", f"--cert={pki}/etcd/healthcheck-client.crt",
           f"--key={pki}/etcd/healthcheck-client.key", "--endpoints=https://127.0.0.1:2379",
           "--dial-timeout=2s", "--command-timeout=4s"]  # fmt: skip
    members = _in_node(pid, ["etcdctl", *tls, "member", "list"]).strip().splitlines()
    if not members:
        return "-"
    # etcdctl prints the health of each endpoint on stderr.
    health = _in_node(pid, ["etcdctl", *tls, "endpoint", "health", "--cluster"], stderr=True)
    healthy = health.count("is healthy")
    return f"{len(members)} members, {healthy} healthy"


def rows() -> list[dict]:
    state = host.load_state()
    out = []
    for node in model.lab_nodes(state):
        entry = state.get("nodes", {}).get(node.name)
        launcher = entry.get("launcher") if entry else None
        pid = host.leader(launcher) if host.is_launcher(launcher) else None
        row = {
            "name": node.name,
            "roles": node.roles,
            "ip": node.ip,
            "state": model.power(entry, False),
            "services": [],
        }
        if pid:
            result = subprocess.run(host.nsenter_command(pid, ["systemctl", "is-system-running"]),
                                    capture_output=True, text=True, check=False)  # fmt: skip
            row["state"] = result.stdout.strip() or "unknown"
            row["ips"] = model.ipv4_addresses(
                _in_node(pid, ["ip", "-j", "-4", "addr", "show", "host0"])
            )
            row["vip"] = model.VIP in row["ips"]
            if "etcd" in node.roles:
                row["etcd"] = etcd_summary(pid)
            wanted = [s for role in node.roles for s in model.SERVICES.get(role, ())]
            if wanted:
                result = subprocess.run(host.nsenter_command(pid, ["systemctl", "is-active", *wanted]),
                                        capture_output=True, text=True, check=False)  # fmt: skip
                states = result.stdout.split()
                row["services"] = [
                    s for s, st in zip(wanted, states, strict=False) if st == "active"
                ]
        out.append(row)
    return out


def cmd_up(args) -> int:
    problems = model.check_nodes()
    if problems:
        raise LabError("the lab's node list is invalid: " + "; ".join(problems))
    kconfig.load_file(str(LAB_CONFIG))
    state = host.load_state()
    if state.get("nodes"):
        raise LabError(f"a lab is already up (state in {host.STATE_FILE}); run lab.sh down first")
    total = time.monotonic()
    steps = Steps()
    iso = steps.run("build the lab ISO (iso/build --flavour lab)", build_iso)
    lower = steps.run("rootfs (mmdebstrap, cached by package list)", host.rootfs, say)
    state = {"seed": secrets.token_hex(8), "bridge": model.BRIDGE, "nodes": {}, "iso": iso,
             "rootfs": lower}  # fmt: skip
    host.save_state(state)
    steps.run(
        f"bridge {model.BRIDGE} ({model.SUBNET}, no host address, no route out)", host.bridge_up
    )
    steps.run(f"boot nodes {', '.join(n.name for n in model.NODES)}", boot_nodes, state, lower, iso)
    if not args.no_bootstrap:
        steps.run("bootstrap.sh on the bootstrap node", run_bootstrap)
        say(
            "this machine cannot run Kubernetes binaries or containers: bootstrap.sh skips "
            f"{', '.join(model.SKIP_BOOTSTRAP_PHASES)} (--skip-phases), the orchestrations "
            f"skip the phases {', '.join(model.SKIP_PHASES)} of deploy_node and "
            f"{', '.join(model.SKIP_REMOVE_PHASES)} of remove_node (pillar skip_phases), and the "
            f"states skip {', '.join(model.SKIP_PHASES_GRAIN)} (grain kubesalt_skip_phases); "
            "lab stand-ins run etcd from its manifest and answer /livez (docs/lab.md)"
        )
        if not args.no_deploy:
            deployed = steps.run(
                "declare and deploy "
                + ", ".join(n.name for n in model.NODES if not n.bootstrap)
                + " (one salt-run deploy_node for the three)",
                deploy_nodes,
            )
            state["deploy"] = deployed
    seconds = time.monotonic() - total
    state["timings"] = steps.timings + [("total", seconds)]
    host.save_state(state)
    print(model.table(rows()))
    say(f"up in {seconds:.1f}s; run commands with: scripts/lab.sh exec NODE CMD...")
    return 0


def cmd_down(_args) -> int:
    state = host.load_state()
    removed = []
    for name, entry in sorted(state.get("nodes", {}).items()):
        # A killed node has no launcher; a recorded PID may belong to another process now.
        if host.is_launcher(entry.get("launcher")):
            host.stop(entry["launcher"])
        # What a shutdown left (or a node killed halfway): every process by PID.
        leftover = host.kill_node(name, None)
        removed.append(f"node {name}" + (f" (killed pids {leftover})" if leftover else ""))
    base = os.path.join(model.STATE_DIR, "nodes")
    removed += [f"mount {m}" for m in host.unmount_all(base)]
    for node in model.lab_nodes(state):
        if host.veth_down(node.name):
            removed.append(f"veth vb-{node.name}")
    for hierarchy in host.CGROUP_HIERARCHIES:
        path = os.path.join(host.CGROUP_ROOT, hierarchy, model.NAME)
        if os.path.isdir(path):
            host.cgroup_remove(path)
            removed.append(f"cgroup {path}")
    if host.bridge_down(state.get("bridge", model.BRIDGE)):
        removed.append(f"bridge {model.BRIDGE}")
    if host.mounts_under(base):
        raise LabError(f"mounts remain under {base}: {', '.join(host.mounts_under(base))}")
    if os.path.isdir(model.STATE_DIR):
        shutil.rmtree(model.STATE_DIR)
        removed.append(f"directory {model.STATE_DIR}")
    say("removed " + (", ".join(removed) if removed else "nothing (no lab was up)"))
    return 0


def cmd_status(_args) -> int:
    if not host.load_state().get("nodes"):
        say("no lab is up (scripts/lab.sh up)")
        return 3
    print(model.table(rows()))
    return 0


def lower_dir(state: dict) -> str:
    """The rootfs the overlays are made on: the one `up` recorded, else (a lab brought up
    before it was recorded) the cached one."""
    return state.get("rootfs") or host.rootfs(say)


def boot_recorded(state: dict, node: model.Node, entry: dict, now: str) -> int:
    """Boot `node` from its overlay (mounted again if it is not), record it, wait until its
    systemd runs; return its PID 1. `now` is its power state before (a running node is
    refused before anything is touched)."""
    entry = model.started_entry(node.name, entry, now)
    root = entry["root"]
    if not host.is_mounted(root):
        host.overlay_mount(node.name, lower_dir(state))
    # The host side of a veth nspawn could not clean up would make it fail with "File exists".
    host.veth_down(node.name)
    entry["launcher"] = host.boot(node, root)
    state["nodes"][node.name] = entry
    host.save_state(state)
    entry["leader"] = host.wait_booted(node.name, entry["launcher"])
    host.save_state(state)
    return entry["leader"]


def cmd_kill(args) -> int:
    state = host.load_state()
    entry = model.entry_of(state, args.node)
    now = model.power(entry, host.running(args.node, entry))
    killed_entry = model.killed_entry(args.node, entry, now)
    pids = host.kill_node(args.node, entry.get("launcher"))
    state["nodes"][args.node] = killed_entry
    host.save_state(state)
    say(f"node {args.node} killed (SIGKILL to pids {', '.join(map(str, pids))}); its disk "
        f"(overlay) stays: lab.sh start {args.node} boots it again")  # fmt: skip
    return 0


def cmd_start(args) -> int:
    state = host.load_state()
    entry = model.entry_of(state, args.node)
    now = model.power(entry, host.running(args.node, entry))
    node = model.node(args.node, model.lab_nodes(state))
    disk = "its overlay"
    if args.fresh:
        model.started_entry(node.name, entry, now)  # a running node: refused, disk untouched
        fresh_disk(state, node)
        disk = "a fresh disk (the rootfs and the lab's files, nothing of kubesalt)"
    leader = boot_recorded(state, node, entry, now)
    say(f"node {node.name} ({node.ip}) booted from {disk}; its systemd runs (pid {leader})")
    return 0


def cmd_add(args) -> int:
    state = host.load_state()
    if not state.get("nodes"):
        raise LabError("no lab is up: lab.sh up first (add puts a node on the lab's bridge)")
    node = model.new_node(args.node, args.roles, state)
    base = host.node_dir(node.name)
    if os.path.exists(base):
        raise LabError(f"{base} is left from an earlier node {node.name}; lab.sh down removes it")
    lower = lower_dir(state)
    # Recorded before anything is made: `down` removes it even if what follows fails.
    entry = model.added_entry(node, os.path.join(base, "root"))
    state["nodes"][node.name] = entry
    host.save_state(state)
    root = host.overlay_mount(node.name, lower)
    host.write_node_files(root, node, state["seed"], model.lab_nodes(state))
    leader = boot_recorded(state, node, entry, model.DOWN)
    say(f"node {node.name} added: {node.ip} on {model.BRIDGE}, a fresh machine (pid {leader}), "
        "not in the cluster")  # fmt: skip
    bootstrap = next(n.name for n in model.NODES if n.bootstrap)
    if node.roles:
        say("declare and deploy it with:")
        declare = ["salt-run", *model.declare_args(node)]
        deploy = ["salt-run", *model.orchestrate_command("deploy_node", node.name, saltenv())]
        for command in (declare, deploy):
            print(f"  scripts/lab.sh exec {bootstrap} {shlex.join(command)}")
    else:
        say(f"no roles recorded; declare it with: scripts/lab.sh exec {bootstrap} salt-run "
            f"kubesalt_inventory.declare {node.name} {node.ip} ROLES key={model.SSH_KEY}")  # fmt: skip
    return 0


def cmd_exec(args) -> int:
    if not args.command:
        raise LabError("lab.sh exec NODE CMD...: give a command")
    return exec_in(args.node, args.command).returncode


def cmd_move(args) -> int:
    from kubesalt_lab import upgrade  # it builds on this module: imported when used

    return upgrade.move(args.action)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lab.sh", description="The kubesalt lab (docs/lab.md).")
    sub = p.add_subparsers(dest="action", required=True)
    up = sub.add_parser("up", help="build the ISO and rootfs, boot the nodes, run bootstrap.sh")
    up.add_argument("--no-bootstrap", action="store_true", help="boot the nodes only")
    up.add_argument(
        "--no-deploy", action="store_true", help="run bootstrap.sh but deploy no other node"
    )
    sub.add_parser("down", help="remove everything the lab made")
    sub.add_parser("status", help="print the nodes and their services")
    ex = sub.add_parser("exec", help="run a command in a node")
    ex.add_argument("node")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    kill = sub.add_parser("kill", help="power a node off without warning (SIGKILL)")
    kill.add_argument("node")
    start = sub.add_parser("start", help="boot a killed node again from its overlay")
    start.add_argument("node")
    start.add_argument(
        "--fresh",
        action="store_true",
        help="on a fresh disk: the same machine (name, address) reinstalled, nothing kept",
    )
    add = sub.add_parser("add", help="boot a fresh node on the bridge, not in the cluster")
    add.add_argument("node")
    add.add_argument(
        "roles", nargs="?", default="", help="e.g. control-plane,etcd,node (recorded, not declared)"
    )
    sub.add_parser(
        "upgrade",
        help="build a newer lab archive (the newest Kubernetes release), add it, run its "
        "upgrade.sh while etcd takes writes and the VIP is watched",
    )
    sub.add_parser("downgrade", help="run the current archive's downgrade.sh, with the same checks")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if os.geteuid() != 0:
        print(
            "lab.sh: run as root (it mounts overlays, creates a bridge and boots nodes)",
            file=sys.stderr,
        )
        return 2
    actions = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "exec": cmd_exec,
               "kill": cmd_kill, "start": cmd_start, "add": cmd_add, "upgrade": cmd_move,
               "downgrade": cmd_move}  # fmt: skip
    try:
        return actions[args.action](args)
    except (LabError, kconfig.InvalidConfig) as err:
        print(f"lab.sh {args.action}: {err}", file=sys.stderr)
        return 1
