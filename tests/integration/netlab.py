"""A small network lab for integration tests: namespaces on a private bridge.

``Lab`` creates one network namespace holding a Linux bridge (the switch) and one
namespace per node, each joined to the bridge by a veth pair (``eth0`` in the node).
The switch namespace has no other interface, no route and no forwarding: lab traffic
cannot leave it. Addresses come from 198.51.100.0/24 (or ranges private to the lab).

Processes started through a node are tracked and killed (by their own process group)
when the lab closes; namespaces and the lab's directory are removed too, on failure
as well. ``VipWatcher`` follows which nodes hold an address through netlink events
(``ip monitor address``): every change is seen, none is sampled.

Also here: helpers to run keepalived and a fake kube-apiserver health endpoint in lab
nodes, and to run firewalld with its own D-Bus (see docs/decisions.md, "Testing
firewalld"). Needs root.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LAB_ROOT = Path("/run/kubesalt-test")  # root-owned, not world-writable: keepalived
# refuses track scripts under a world-writable directory such as /tmp.
SYSTEM_PYTHON = "/usr/bin/python3"


def run(*command: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a command, capture its output, raise with the output on failure."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {result.returncode}: {result.stderr or result.stdout}"
        )
    return result


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 5) -> None:
    """Signal a process group we started, wait for it, SIGKILL it when it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=grace)
    # Children that left the group are not ours to chase; the namespace goes anyway.


@dataclass
class Node:
    """One lab node: a network namespace with ``eth0`` on the lab bridge."""

    lab: Lab
    name: str
    netns: str
    addresses: list[str]
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def ip(self) -> str:
        """The node's first address, without its prefix."""
        return self.addresses[0].split("/")[0]

    def run(self, *command: str, check: bool = True, timeout: float = 30):
        return run("ip", "netns", "exec", self.netns, *command, check=check, timeout=timeout)

    def popen(self, *command: str, log: str | None = None, **kwargs) -> subprocess.Popen:
        """Start a command in the node, in its own process group, tracked for cleanup."""
        output = open(self.lab.dir / log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, *command],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **kwargs,
            )
        finally:
            if log:
                output.close()
        self.processes.append(process)
        return process

    def link(self, up: bool) -> None:
        run("ip", "-n", self.netns, "link", "set", "eth0", "up" if up else "down")

    def has_address(self, address: str) -> bool:
        out = run("ip", "-n", self.netns, "-o", "addr", "show", "dev", "eth0").stdout
        return any(
            line.split()[3].split("/")[0] == address for line in out.splitlines() if line.split()
        )


class Lab:
    """Context manager: ``with Lab() as lab: node = lab.node("cp-1", "198.51.100.11/24")``."""

    def __init__(self, tag: str = "lab"):
        self.prefix = f"ks{secrets.token_hex(2)}"
        self.switch = f"{self.prefix}-sw"
        self.nodes: dict[str, Node] = {}
        self.dir = LAB_ROOT / f"{tag}-{self.prefix}"
        self._closers: list[Callable[[], None]] = []

    def __enter__(self) -> Lab:
        LAB_ROOT.mkdir(mode=0o755, exist_ok=True)
        self.dir.mkdir(mode=0o755)
        try:
            run("ip", "netns", "add", self.switch)
            run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
            # No STP listening delay: ports forward as soon as they are up.
            run("ip", "-n", self.switch, "link", "set", "br0", "type", "bridge", "stp_state", "0")
            run(
                "ip",
                "-n",
                self.switch,
                "link",
                "set",
                "br0",
                "type",
                "bridge",
                "forward_delay",
                "0",
            )
            run("ip", "-n", self.switch, "link", "set", "br0", "up")
        except Exception:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def on_close(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` when the lab closes, before processes and namespaces go."""
        self._closers.append(closer)

    def close(self) -> None:
        errors = []
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception as err:  # keep cleaning up; report at the end
                errors.append(err)
        for node in self.nodes.values():
            for process in node.processes:
                stop_process(process, grace=3)
        for netns in [node.netns for node in self.nodes.values()] + [self.switch]:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            LAB_ROOT.rmdir()  # only when no other lab uses it
        if errors:
            raise errors[0]

    def node(self, name: str, *addresses: str) -> Node:
        """Add a node with ``eth0`` on the bridge carrying ``addresses`` (CIDR notation)."""
        netns = f"{self.prefix}-{name}"
        port = f"{self.prefix[2:]}-{name}"[:15]
        node = Node(self, name, netns, list(addresses))
        self.nodes[name] = node
        run("ip", "netns", "add", netns)
        run("ip", "-n", netns, "link", "set", "lo", "up")
        run(
            "ip", "-n", netns, "link", "add", "eth0", "type", "veth",
            "peer", "name", port, "netns", self.switch,
        )  # fmt: skip
        run("ip", "-n", self.switch, "link", "set", port, "master", "br0", "up")
        for address in addresses:
            extra = ["nodad"] if ":" in address else []
            run("ip", "-n", netns, "addr", "add", address, "dev", "eth0", *extra)
        run("ip", "-n", netns, "link", "set", "eth0", "up")
        return node


class VipWatcher:
    """Which nodes hold ``address``, followed through netlink events.

    ``history`` is a list of (monotonic time, frozenset of holders) for every change.
    Nodes in ``ignored`` (for example one whose keepalived was SIGKILLed and left the
    address behind) do not count as holders.
    """

    def __init__(self, nodes: list[Node], address: str):
        self.address = address
        self.nodes = nodes
        self.ignored: set[str] = set()
        self._raw: set[str] = set()
        self._lock = threading.Condition()
        self.history: list[tuple[float, frozenset[str]]] = []
        self._monitors: list[subprocess.Popen] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> VipWatcher:
        for node in self.nodes:
            monitor = subprocess.Popen(
                ["ip", "-n", node.netns, "-o", "monitor", "address"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            self._monitors.append(monitor)
            thread = threading.Thread(target=self._follow, args=(node, monitor), daemon=True)
            thread.start()
            self._threads.append(thread)
        time.sleep(0.1)  # monitors subscribed before the first snapshot
        with self._lock:
            for node in self.nodes:
                if node.has_address(self.address):
                    self._raw.add(node.name)
            self._record()
        return self

    def __exit__(self, *exc) -> None:
        for monitor in self._monitors:
            stop_process(monitor, grace=2)
        for thread in self._threads:
            thread.join(timeout=2)

    def _follow(self, node: Node, monitor: subprocess.Popen) -> None:
        for line in monitor.stdout:
            fields = line.split()
            deleted = bool(fields) and fields[0] == "Deleted"
            if deleted:
                fields = fields[1:]
            if len(fields) < 4 or fields[2] not in ("inet", "inet6"):
                continue
            if fields[3].split("/")[0] != self.address:
                continue
            with self._lock:
                if deleted:
                    self._raw.discard(node.name)
                else:
                    self._raw.add(node.name)
                self._record()

    def _record(self) -> None:
        holders = frozenset(self._raw - self.ignored)
        if not self.history or self.history[-1][1] != holders:
            self.history.append((time.monotonic(), holders))
        self._lock.notify_all()

    def ignore(self, name: str) -> None:
        with self._lock:
            self.ignored.add(name)
            self._record()

    def unignore(self, name: str) -> None:
        with self._lock:
            self.ignored.discard(name)
            self._record()

    @property
    def holders(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._raw - self.ignored)

    def wait(self, predicate: Callable[[frozenset[str]], bool], timeout: float) -> float:
        """Wait until ``predicate(holders)``; return when it became true (monotonic)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                holders = frozenset(self._raw - self.ignored)
                if predicate(holders):
                    return self.history[-1][0] if self.history else time.monotonic()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"after {timeout} s the holders of {self.address} are "
                        f"{sorted(holders) or 'none'}; history: {self.describe()}"
                    )
                self._lock.wait(left)

    def max_holders(self, since: float = 0.0) -> int:
        """The most nodes that held the address at once since ``since``."""
        with self._lock:
            counts = [len(h) for t, h in self.history if t >= since]
            before = [len(h) for t, h in self.history if t < since][-1:]
            return max(counts + before, default=0)

    def changes(self, since: float) -> int:
        with self._lock:
            return sum(1 for t, _ in self.history if t >= since)

    def describe(self) -> str:
        with self._lock:
            start = self.history[0][0] if self.history else 0.0
            return ", ".join(f"+{t - start:.3f}s {sorted(h)}" for t, h in self.history)

    def check_against_kernel(self) -> None:
        """Fail when the event-built view differs from what ``ip addr`` shows now."""
        time.sleep(0.05)
        actual = {node.name for node in self.nodes if node.has_address(self.address)}
        with self._lock:
            assert actual == self._raw, f"kernel: {sorted(actual)}, events: {sorted(self._raw)}"


HEALTH_SERVER = '''\
"""A fake kube-apiserver /livez: HTTPS on 127.0.0.1:PORT, 200 "ok"."""
import http.server
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path == "/livez" else 404
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[3])), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print("serving", flush=True)
server.serve_forever()
'''


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "health.crt", directory / "health.key"
    if not cert.exists():
        run(
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
            "/CN=kube-apiserver-test", "-keyout", str(key), "-out", str(cert),
        )  # fmt: skip
        (directory / "health_server.py").write_text(HEALTH_SERVER)
    return cert, key


def start_health_server(node: Node, port: int = 6443) -> subprocess.Popen:
    """Serve /livez on the node's 127.0.0.1:port; return once it accepts connections."""
    cert, key = self_signed_certificate(node.lab.dir)
    process = node.popen(
        SYSTEM_PYTHON, str(node.lab.dir / "health_server.py"), str(cert), str(key), str(port),
        log=f"{node.name}-health.log",
    )  # fmt: skip
    deadline = time.monotonic() + 10
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=0.5)"
    while node.run(SYSTEM_PYTHON, "-c", probe, check=False).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            log = (node.lab.dir / f"{node.name}-health.log").read_text()
            raise RuntimeError(f"health server on {node.name} did not start: {log}")
        time.sleep(0.05)
    return process


@dataclass
class Keepalived:
    """keepalived (VRRP only) running in a lab node, with its own files."""

    node: Node
    config: Path
    process: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.node.lab.dir / f"{self.node.name}-keepalived.log"

    def start(self) -> None:
        base = self.node.lab.dir / self.node.name
        self.process = self.node.popen(
            "keepalived", "--dont-fork", "--log-console", "--log-detail", "--no-syslog",
            "--vrrp", "--use-file", str(self.config),
            "--pid", f"{base}.pid", "--vrrp_pid", f"{base}-vrrp.pid",
            log=self.log.name,
        )  # fmt: skip

    def reload(self) -> None:
        os.kill(self.process.pid, signal.SIGHUP)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM)

    def crash(self) -> None:
        """SIGKILL every keepalived process at once: nothing is cleaned up.

        The orphaned VRRP child is reparented to PID 1, which on this host is not an
        init that reaps: its zombie would keep the pid file "alive" and a restarted
        keepalived would refuse to start ("daemon is already running"). systemd reaps
        it at once, so the pid files are removed here as systemd's reaping would.
        """
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=5)
        base = self.node.lab.dir / self.node.name
        for pid_file in (Path(f"{base}.pid"), Path(f"{base}-vrrp.pid")):
            pid_file.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def write_keepalived_config(node: Node, text: str) -> Path:
    path = node.lab.dir / f"{node.name}-keepalived.conf"
    path.write_text(text)
    path.chmod(0o600)
    return path


def write_check_script(lab: Lab, text: str) -> Path:
    path = lab.dir / "check-apiserver"
    path.write_text(text)
    path.chmod(0o755)
    return path


class VrrpCluster:
    """Control-plane nodes running kubesalt's rendered keepalived, each with a fake
    kube-apiserver health endpoint, on one lab bridge (198.51.100.0/24)."""

    def __init__(self, lab: Lab, config: dict, first_host: int = 11):
        from kubesalt import keepalived as rendering

        self.rendering = rendering
        self.lab = lab
        self.config = config
        self.vip = config["apiServer"]["host"]
        self.first_host = first_host
        self.members: list[str] = []
        self.keepalived: dict[str, Keepalived] = {}
        self.health: dict[str, subprocess.Popen] = {}
        port = config["apiServer"]["port"]
        self.check_script = write_check_script(lab, rendering.render_check_script(port))

    def add_node(self, name: str) -> Node:
        """Create the node and its health endpoint (keepalived not started)."""
        index = len(self.lab.nodes)
        node = self.lab.node(name, f"198.51.100.{self.first_host + index}/24")
        self.health[name] = start_health_server(node, self.config["apiServer"]["port"])
        return node

    def render(self, name: str) -> str:
        node = self.lab.nodes[name]
        ips = [self.lab.nodes[member].ip for member in self.members]
        settings = self.rendering.settings(
            self.config, name, node.ip, "eth0", ips, check_script=str(self.check_script)
        )
        return self.rendering.render_conf(settings)

    def write_configs(self) -> None:
        for name in self.members:
            path = write_keepalived_config(self.lab.nodes[name], self.render(name))
            self.keepalived.setdefault(name, Keepalived(self.lab.nodes[name], path))

    def start(self, *names: str) -> None:
        """Make ``names`` members, write every member's config, start keepalived on them."""
        for name in names:
            if name not in self.members:
                self.members.append(name)
        self.write_configs()
        for name in names:
            self.keepalived[name].start()

    def stop_health(self, name: str) -> None:
        stop_process(self.health[name])

    def start_health(self, name: str) -> None:
        self.health[name] = start_health_server(self.lab.nodes[name])

    def nodes(self) -> list[Node]:
        return list(self.lab.nodes.values())


DBUS_CONFIG = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""
FIREWALLD_START = """\
set -e
mount --bind "$KUBESALT_FIREWALLD_ETC" /etc/firewalld
mount -t tmpfs -o mode=0755 tmpfs /run
exec firewalld --nofork --nopid --log-target console
"""


class Firewalld:
    """firewalld in a lab node, with its own system bus and configuration directory.

    The bus listens on an abstract socket, which belongs to the node's network
    namespace: only processes in that namespace (firewalld, firewall-cmd) see it.
    firewalld runs in a private mount namespace where ``/etc/firewalld`` is the lab's
    directory (``self.etc``) and ``/run`` is a fresh tmpfs; the host's are untouched.
    """

    def __init__(self, node: Node):
        self.node = node
        self.etc = node.lab.dir / f"{node.name}-firewalld"
        self.address = f"unix:abstract=/kubesalt-test/{node.lab.prefix}/{node.name}/bus"
        self.env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        (self.etc / "zones").mkdir(parents=True)
        shutil.copy("/etc/firewalld/firewalld.conf", self.etc / "firewalld.conf")
        bus_config = self.node.lab.dir / f"{self.node.name}-dbus.conf"
        bus_config.write_text(DBUS_CONFIG.format(address=self.address))
        self.node.popen(
            "dbus-daemon", f"--config-file={bus_config}", "--nofork", "--nopidfile",
            log=f"{self.node.name}-dbus.log",
        )  # fmt: skip
        self.process = self.node.popen(
            "unshare", "--mount", "--propagation", "private", "sh", "-c", FIREWALLD_START,
            log=f"{self.node.name}-firewalld.log",
            env={**self.env, "KUBESALT_FIREWALLD_ETC": str(self.etc)},
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while self.cmd("--state", check=False).stdout.strip() != "running":
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.node.lab.dir / f"{self.node.name}-firewalld.log").read_text()
                raise RuntimeError(f"firewalld did not start in {self.node.name}: {log}")
            time.sleep(0.2)

    def cmd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["ip", "netns", "exec", self.node.netns, "firewall-cmd", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"firewall-cmd {' '.join(args)}: {result.stderr or result.stdout}")
        return result

    def write_zone(self, name: str, xml: str) -> None:
        (self.etc / "zones" / f"{name}.xml").write_text(xml)

    def set_default_zone_in_config(self, name: str) -> None:
        """What the state does with file.replace on firewalld.conf."""
        path = self.etc / "firewalld.conf"
        lines = path.read_text().splitlines()
        lines = [f"DefaultZone={name}" if ln.startswith("DefaultZone=") else ln for ln in lines]
        path.write_text("\n".join(lines) + "\n")


TCP_PROBE = """\
import socket, sys
host, port, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.settimeout(float(sys.argv[4]))
if source:
    s.bind((source, 0))
try:
    s.connect((host, port))
except socket.timeout:
    sys.exit(2)
except OSError:
    sys.exit(1)
sys.exit(0)
"""
TCP_LISTENER = """\
import selectors, socket, sys
selector = selectors.DefaultSelector()
for port in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port)))
    s.listen(16)
    selector.register(s, selectors.EVENT_READ)
print("listening", flush=True)
while True:
    for key, _ in selector.select():
        connection, _ = key.fileobj.accept()
        connection.close()
"""
RAW_RECEIVER = """\
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, int(sys.argv[1]))
s.settimeout(0.1)
deadline = time.monotonic() + float(sys.argv[2])
seen = set()
print("ready", flush=True)
while time.monotonic() < deadline:
    try:
        _, (source, _) = s.recvfrom(2048)
        seen.add(source)
    except socket.timeout:
        pass
print(" ".join(sorted(seen)), flush=True)
"""
RAW_SENDER = """\
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, int(sys.argv[1]))
for _ in range(5):
    s.sendto(b"\\x31\\x33\\x64\\x01\\x00\\x19\\x00\\x00" + bytes(4), (sys.argv[2], 0))
"""


def tcp_connects(node: Node, host: str, port: int, source: str = "", timeout: float = 1.5) -> str:
    """ "open", "rejected" or "timeout": a real TCP connection from ``node``."""
    code = node.run(
        SYSTEM_PYTHON, "-c", TCP_PROBE, host, str(port), source, str(timeout), check=False
    ).returncode
    return {0: "open", 1: "rejected", 2: "timeout"}.get(code, f"exit {code}")


def listen_tcp(node: Node, *ports: int) -> subprocess.Popen:
    """Accept (and close) connections on ``ports`` of every address of ``node``."""
    process = node.popen(SYSTEM_PYTHON, "-c", TCP_LISTENER, *map(str, ports))
    # Wait until every port accepts on loopback (always allowed by firewalld).
    for port in ports:
        deadline = time.monotonic() + 10
        while tcp_connects(node, "127.0.0.1", port, timeout=0.5) != "open":
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"listener on {node.name}:{port} did not start")
            time.sleep(0.05)
    return process


def ip_protocol_reaches(
    target: Node, senders: list[Node], protocol: int, window: float = 1.5
) -> set[str]:
    """Send IP ``protocol`` packets from each sender to ``target``; return the sources that
    a raw socket on ``target`` received (raw sockets get packets after the INPUT hook,
    so what the firewall drops never shows up)."""
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", target.netns, SYSTEM_PYTHON, "-c", RAW_RECEIVER,
         str(protocol), str(window)],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert receiver.stdout.readline().strip() == "ready"
        for sender in senders:
            sender.run(SYSTEM_PYTHON, "-c", RAW_SENDER, str(protocol), target.ip)
        output, _ = receiver.communicate(timeout=window + 10)
    finally:
        stop_process(receiver, grace=2)
    return set(output.split())
