"""The lab's side effects on this machine: rootfs, bridge, cgroups, overlays, nodes.

Everything the lab makes is recorded in STATE_DIR/state.json as it is made, so `down`
removes exactly that (processes by PID, mounts, directories, bridge, cgroups, veths), and
also what a crashed `up` left behind; it is safe to run twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from kubesalt_lab import model
from kubesalt_lab.model import LabError

CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_HIERARCHIES = ("systemd", "unified")
STATE_FILE = os.path.join(model.STATE_DIR, "state.json")
ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run(
    cmd: list[str], what: str, check: bool = True, timeout: float = 1800, **kwargs
) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except FileNotFoundError as err:
        raise LabError(f"{what}: {cmd[0]} is not installed; run scripts/dev-env.sh") from err
    except subprocess.TimeoutExpired as err:
        raise LabError(f"{what}: {' '.join(cmd)} did not finish in {timeout:.0f}s") from err
    if check and result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-20:])
        raise LabError(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n{tail}")
    return result


# -- state ---------------------------------------------------------------------------


def load_state() -> dict:
    try:
        return json.loads(Path(STATE_FILE).read_text())
    except FileNotFoundError:
        return {}
    except ValueError as err:
        raise LabError(
            f"{STATE_FILE} is damaged ({err}); remove it and run lab.sh down again"
        ) from err


def save_state(state: dict) -> None:
    os.makedirs(model.STATE_DIR, exist_ok=True)
    tmp = STATE_FILE + ".part"
    Path(tmp).write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, STATE_FILE)


# -- rootfs --------------------------------------------------------------------------


def rootfs(log) -> str:
    """The cached rootfs directory, built with mmdebstrap when its key is not cached."""
    key = model.rootfs_key()
    path = os.path.join(model.CACHE_DIR, f"rootfs-{key}")
    if os.path.isfile(os.path.join(path, "etc", "os-release")):
        log(f"rootfs: cached {path}")
        return path
    os.makedirs(model.CACHE_DIR, exist_ok=True)
    tmp = path + ".part"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"rootfs: building {path} with mmdebstrap ({', '.join(model.ROOTFS_PACKAGES)})")
    os.makedirs(tmp)
    run(model.mmdebstrap_command(tmp + "/"), what="mmdebstrap", timeout=900)
    os.replace(tmp, path)
    return path


# -- network -------------------------------------------------------------------------


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def bridge_up(bridge: str = model.BRIDGE) -> None:
    """A bridge with no address on the host side: nodes reach each other, nothing else."""
    if not link_exists(bridge):
        run(["ip", "link", "add", bridge, "type", "bridge"], what=f"create bridge {bridge}")
    run(["ip", "link", "set", bridge, "up"], what=f"bring up bridge {bridge}")
    addresses = run(
        ["ip", "-j", "addr", "show", "dev", bridge], what="list bridge addresses"
    ).stdout
    for link in json.loads(addresses or "[]"):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet":
                raise LabError(
                    f"bridge {bridge} has the host address {info['local']}: the lab bridge must have "
                    f"none (no way out); run lab.sh down, then up"
                )
    # Bridged frames must not be passed to the host's iptables (no forwarding, no NAT).
    for knob in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
        path = f"/proc/sys/net/bridge/{knob}"
        if os.path.exists(path) and Path(path).read_text().strip() != "0":
            Path(path).write_text("0")
    Path(f"/proc/sys/net/ipv4/conf/{bridge}/forwarding").write_text("0")


def bridge_down(bridge: str = model.BRIDGE) -> bool:
    if link_exists(bridge):
        run(["ip", "link", "del", bridge], what=f"delete bridge {bridge}")
        return True
    return False


def veth_down(name: str) -> bool:
    veth = f"vb-{name}"
    if link_exists(veth):
        run(["ip", "link", "del", veth], what=f"delete veth {veth}", check=False)
        return True
    return False


# -- cgroups -------------------------------------------------------------------------


def cgroup_dirs(name: str) -> list[str]:
    return [os.path.join(CGROUP_ROOT, h, model.NAME, name) for h in CGROUP_HIERARCHIES]


def cgroup_create(name: str) -> list[str]:
    dirs = []
    for path in cgroup_dirs(name):
        if os.path.isdir(os.path.dirname(os.path.dirname(path))):
            os.makedirs(path, exist_ok=True)
            dirs.append(path)
    return dirs


def cgroup_remove(path: str) -> None:
    """Remove a cgroup directory tree, deepest first (cgroupfs needs rmdir per level)."""
    if not os.path.isdir(path):
        return
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda item: -item[0].count("/")):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)


# -- nodes ---------------------------------------------------------------------------


def node_dir(name: str) -> str:
    return os.path.join(model.STATE_DIR, "nodes", name)


def overlay_mount(name: str, lower: str) -> str:
    base = node_dir(name)
    upper, work, merged = (os.path.join(base, d) for d in ("upper", "work", "root"))
    for d in (upper, work, merged):
        os.makedirs(d, exist_ok=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    run(
        ["mount", "-t", "overlay", f"lab-{name}", "-o", options, merged],
        what=f"mount the overlay of {name}",
    )
    return merged


STANDIN_SOURCES = Path(__file__).resolve().parent / "standins"


def ssh_keypair() -> tuple[str, str]:
    """The lab's SSH key pair (private, public), made once per lab in STATE_DIR: the
    bootstrap node's salt-ssh uses it to reach the others (kubesalt_inventory key=...)."""
    key = os.path.join(model.STATE_DIR, "ssh", "id_ed25519")
    if not os.path.exists(key):
        os.makedirs(os.path.dirname(key), mode=0o700, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kubesalt-lab", "-f", key],
            what="make the lab's SSH key")  # fmt: skip
    return Path(key).read_text(), Path(key + ".pub").read_text()


def write_node_files(root: str, node: model.Node, seed: str, nodes=model.NODES) -> None:
    private, public = ssh_keypair()
    files = {
        model.NETWORK_FILE: model.network_file(node.ip),
        "/etc/hostname": node.name + "\n",
        "/etc/hosts": model.hosts_file(nodes),
        "/etc/machine-id": model.machine_id(node.name, seed) + "\n",
        "/usr/sbin/policy-rc.d": model.POLICY_RC_D,
        # The lab's own setup (docs/lab.md): phases this machine cannot run, the SSH key
        # the bootstrap node's salt-ssh uses, the stand-ins and their units.
        "/etc/salt/grains": model.grains_file(),
        "/root/.ssh/authorized_keys": public,
    }
    if node.bootstrap:
        files[model.SSH_KEY] = private
    for unit, (script, _description) in model.STANDINS.items():
        files[f"{model.STANDIN_DIR}/{script}"] = (STANDIN_SOURCES / script).read_text()
        files[f"/etc/systemd/system/{unit}.service"] = model.standin_unit(unit)
    for path, content in files.items():
        target = Path(root + path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    Path(root + "/usr/sbin/policy-rc.d").chmod(0o755)
    Path(root + "/root/.ssh").chmod(0o700)
    for path in ("/root/.ssh/authorized_keys", model.SSH_KEY):
        if os.path.exists(root + path):
            Path(root + path).chmod(0o600)
    wants = Path(root + "/etc/systemd/system/multi-user.target.wants")
    wants.mkdir(parents=True, exist_ok=True)
    for unit in model.STANDINS:
        link = wants / f"{unit}.service"
        if not link.is_symlink():
            link.symlink_to(f"/etc/systemd/system/{unit}.service")
    # Debian's etcd.service would start a second, default etcd when the stand-in installs
    # etcd-server: the lab runs etcd only from the static pod manifest.
    masked = Path(root + "/etc/systemd/system/etcd.service")
    if not masked.is_symlink():
        masked.symlink_to("/dev/null")


def _enter_cgroups(dirs: list[str]):
    def move() -> None:
        for path in dirs:
            with open(os.path.join(path, "cgroup.procs"), "w") as stream:
                stream.write(str(os.getpid()))

    return move


def boot(node: model.Node, root: str) -> int:
    """Start systemd-nspawn for a node in its own cgroup; return the launcher's PID."""
    dirs = cgroup_create(node.name)
    console = open(os.path.join(node_dir(node.name), "console.log"), "ab")  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            model.nspawn_command(node.name, root),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            preexec_fn=_enter_cgroups(dirs),  # noqa: PLW1509 (needed: cgroup before exec)
            start_new_session=True,
        )
    finally:
        console.close()
    return proc.pid


def leader(launcher: int) -> int | None:
    """The node's PID 1 (systemd): the child of the systemd-nspawn launcher."""
    for child in children(launcher):
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                return int(child)
        except OSError:
            continue
    return None


def children(pid: int) -> list[int]:
    """The direct children of `pid` (what nsenter started in a node, seen from the host)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def kill_entered(proc) -> None:
    """SIGKILL, by PID, what an nsenter Popen `proc` runs in a node, then nsenter itself:
    killing nsenter alone leaves its child running in the node."""
    _sigkill(children(proc.pid))
    _sigkill([proc.pid])
    proc.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def nsenter_command(leader_pid: int, cmd: list[str], env: dict | None = None) -> list[str]:
    """A command run inside a node: all its namespaces, a clean environment."""
    variables = {
        "PATH": ENV_PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "TERM": os.environ.get("TERM", "dumb"),
    }
    variables.update(env or {})
    return [
        "nsenter",
        "-t",
        str(leader_pid),
        "-a",
        "--",
        "/usr/bin/env",
        "-i",
        *[f"{k}={v}" for k, v in variables.items()],
        *cmd,
    ]


def wait_booted(name: str, launcher: int, timeout: float = 90) -> int:
    """Wait until the node's systemd reports running (or degraded); return its leader PID."""
    deadline = time.monotonic() + timeout
    state = "not started"
    while time.monotonic() < deadline:
        if not alive(launcher):
            log = os.path.join(node_dir(name), "console.log")
            raise LabError(f"node {name}: systemd-nspawn exited during boot; see {log}")
        pid = leader(launcher)
        if pid:
            result = subprocess.run(
                nsenter_command(pid, ["systemctl", "is-system-running"]),
                capture_output=True,
                text=True,
                check=False,
            )
            state = result.stdout.strip() or state
            if state in ("running", "degraded"):
                return pid
        time.sleep(0.5)
    raise LabError(f"node {name}: not booted after {timeout:.0f}s (systemd state {state!r})")


def is_launcher(pid: int | None) -> bool:
    """Whether `pid` is a live systemd-nspawn: a PID recorded in the state may have been
    reused by another process since."""
    if not pid or not alive(pid):
        return False
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "systemd-nspawn"
    except OSError:
        return False


def cgroup_pids(name: str) -> list[int]:
    """The live processes in the node's cgroups, at every level (the node's systemd makes
    its own cgroups below the one the launcher was started in)."""
    found = set()
    for top in cgroup_dirs(name):
        for dirpath, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError):
                    found.update(int(p) for p in Path(dirpath, "cgroup.procs").read_text().split())
    return sorted(pid for pid in found if alive(pid))


def running(name: str, entry: dict) -> bool:
    """Whether any process of the node lives: its launcher, or anything in its cgroups."""
    return is_launcher(entry.get("launcher")) or bool(cgroup_pids(name))


def _sigkill(pids) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_node(name: str, launcher: int | None, timeout: float = 10) -> list[int]:
    """Pull the plug: SIGKILL, by PID, the node's PID 1 (the kernel then kills every
    process of its PID namespace, commands run in it by nsenter included), its launcher,
    and every process in its cgroups, until none lives. Its mounts stay. Returns the PIDs
    killed."""
    first = []
    if is_launcher(launcher):
        first = [pid for pid in (leader(launcher), launcher) if pid]
    killed = set()
    deadline = time.monotonic() + timeout
    targets = first + cgroup_pids(name)
    while targets:
        _sigkill(targets)
        killed.update(targets)
        if time.monotonic() > deadline:
            raise LabError(
                f"node {name}: processes {', '.join(map(str, targets))} still live {timeout:.0f}s "
                f"after SIGKILL (stuck in the kernel?); see ps -o pid,stat,cmd -p "
                f"{','.join(map(str, targets))}, then lab.sh down"
            )
        time.sleep(0.1)
        targets = [pid for pid in first if alive(pid)] + cgroup_pids(name)
    for path in cgroup_dirs(name):
        cgroup_remove(path)
    return sorted(killed)


def is_mounted(path: str) -> bool:
    return path in mounts_under(path)


def stop(launcher: int, timeout: float = 30) -> None:
    """Power a node off (SIGTERM to nspawn asks its systemd to shut down), then SIGKILL."""
    if not alive(launcher):
        return
    os.kill(launcher, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(launcher):
            return
        time.sleep(0.3)
    os.killpg(launcher, signal.SIGKILL)
    time.sleep(0.5)


def mounts_under(base: str) -> list[str]:
    """Mount points under `base`, deepest first."""
    found = []
    with open("/proc/self/mounts", encoding="utf-8") as stream:
        for line in stream:
            where = line.split()[1].replace("\\040", " ")
            if where == base or where.startswith(base.rstrip("/") + "/"):
                found.append(where)
    return sorted(found, key=lambda p: -p.count("/"))


def unmount_all(base: str) -> list[str]:
    done = []
    for where in mounts_under(base):
        result = run(["umount", where], what=f"unmount {where}", check=False)
        if result.returncode != 0:
            run(["umount", "-l", where], what=f"unmount {where}")
        done.append(where)
    return done
