"""The etcd side of a backup: the snapshot taken from a healthy member, read back with
etcd's own tool, and the restore of a cluster that lost quorum (docs/backup.md).

Programs run through `run(argv, timeout, env=None)` (subprocess.run's result; tests give
a fake one). etcdctl is called as `kubesalt_etcd` calls it (docs/etcd.md): API v3, the etcd
CA and the client certificate kubeadm uses (`apiserver-etcd-client`, else the etcd
healthcheck client), bounded dial and command timeouts.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import yaml

from kubesalt import etcd as _etcd
from kubesalt import roles
from kubesalt.backup import SNAPSHOT_MEMBER, BackupError, Snapshot, Verified
from kubesalt.kubeadm.model import Layout

CLIENTS = ("apiserver-etcd-client", "etcd/healthcheck-client")
ETCD_CA = "etcd/ca.crt"
DIAL_TIMEOUT = 2  # seconds
COMMAND_TIMEOUT = 5  # seconds, for health and status (etcd's own request timeout)
SAVE_TIMEOUT = 600  # seconds, for a whole `snapshot save` or `snapshot restore`
STOP_TIMEOUT = 120  # seconds, for the kubelet to stop etcd once its manifest is gone
ETCD_MANIFEST = "etcd.yaml"

Run = Callable[..., subprocess.CompletedProcess]


def run_program(argv: list[str], timeout: float, env: dict | None = None,
                stdin: str | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    """Run a program, its output captured as text, `stdin` (a file's path) as its input; a
    missing program or a timeout is a failed result (exit 127 or 124), the reason on
    stderr."""
    try:
        with open(stdin or os.devnull, "rb") as source:
            return subprocess.run(argv, stdin=source, capture_output=True, text=True,
                                  timeout=timeout, env={**os.environ, **(env or {})},
                                  check=False)  # fmt: skip
    except FileNotFoundError as err:
        missing = err.filename if err.filename == stdin else argv[0]
        return subprocess.CompletedProcess(argv, 127, "", f"{missing}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"no answer within {timeout}s")


def tls_flags(layout: Layout) -> list[str]:
    """--cacert/--cert/--key of the first client certificate present on this node."""
    tried = []
    for client in CLIENTS:
        base = layout.pki(client)
        tried.append(f"{base}.crt")
        if os.path.isfile(f"{base}.crt") and os.path.isfile(f"{base}.key"):
            return [f"--cacert={layout.pki(ETCD_CA)}", f"--cert={base}.crt", f"--key={base}.key"]
    raise BackupError(
        f"no etcd client certificate on this node (looked for {' and '.join(tried)} with their "
        "keys); run this on a control-plane node whose kubesalt.pki state has been applied"
    )


def etcdctl(endpoint: str, tls: list[str], *args: str) -> list[str]:
    return ["etcdctl", f"--endpoints={endpoint}", *tls, f"--dial-timeout={DIAL_TIMEOUT}s",
            f"--command-timeout={COMMAND_TIMEOUT}s", *args]  # fmt: skip


ENV = {"ETCDCTL_API": "3"}


# A Go program that crashes prints a whole traceback; its first line says why.
_CRASH = ("panic:", "fatal error:")


def _failure(result, what: str) -> str:
    """etcd's error line of a failed run; for a crash (etcdctl reading a damaged
    snapshot panics), the panic's line, not the last of its traceback."""
    lines = [line.strip() for line in (result.stderr or "").splitlines()]
    crash = next((line for line in lines if line.startswith(_CRASH)), None)
    if crash and not any(line.startswith("Error:") for line in lines):
        return f"{what} crashed: {crash}"
    return _etcd.etcdctl_error(result.stderr or "", result.stdout or "", what).message


def endpoint_health(endpoint: str, tls: list[str], run: Run) -> str | None:
    """None when `endpoint` answers healthy (a quorum read through it), else why not."""
    result = run(etcdctl(endpoint, tls, "endpoint", "health", "-w", "json"),
                 timeout=DIAL_TIMEOUT + COMMAND_TIMEOUT + 5, env=ENV)  # fmt: skip
    stdout = (result.stdout or "").strip()
    if stdout.startswith("["):
        try:
            answer = _etcd.parse_endpoint_health(stdout).get(endpoint)
        except _etcd.EtcdError as err:
            return str(err)
        if answer and answer["health"]:
            return None
        if answer and answer["error"]:
            return answer["error"]
    return _failure(result, "etcdctl endpoint health")


def parse_endpoint_status(output: str) -> dict:
    """`{member_id (hex), revision}` from `etcdctl -w json endpoint status` (one endpoint)."""
    try:
        header = json.loads(output)[0]["Status"]["header"]
        return {"member_id": _etcd.format_id(int(header["member_id"])),
                "revision": int(header["revision"])}  # fmt: skip
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise BackupError(
            f"etcdctl endpoint status printed no member ({err}): {output[:200]!r}"
        ) from None


def parse_snapshot_status(output: str) -> dict:
    """`{hash, revision, totalKey, totalSize}` from `snapshot status -w json`."""
    try:
        data = json.loads(output)
        return {key: int(data[key]) for key in ("hash", "revision", "totalKey", "totalSize")}
    except (ValueError, KeyError, TypeError) as err:
        raise BackupError(f"snapshot status printed no status ({err}): {output[:200]!r}") from None


def snapshot_tool(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """etcdutl (etcd 3.5 and later), else etcdctl (3.4 has no etcdutl), else None."""
    for tool in ("etcdutl", "etcdctl"):
        if which(tool):
            return tool
    return None


def snapshot_status_with(run: Run, tool: str | None) -> Callable[[str], dict | None]:
    """A `status(path)` for backup.verify: etcd's own reading of a snapshot file
    (`{tool, hash, revision, totalKey, totalSize}`, or `{tool, error}`); None without a
    tool."""

    def status(path: str) -> dict | None:
        if tool is None:
            return None
        result = run([tool, "snapshot", "status", path, "-w", "json"], timeout=SAVE_TIMEOUT,
                     env=ENV)  # fmt: skip
        if result.returncode != 0:
            return {"tool": tool, "error": _failure(result, f"{tool} snapshot status")}
        try:
            return {"tool": tool, **parse_snapshot_status(result.stdout)}
        except BackupError as err:
            return {"tool": tool, "error": str(err)}

    return status


def candidate_endpoints(nodes: dict, first: str) -> list[tuple[str, str]]:
    """(name, client URL) of every node with the etcd role, `first` (this node) first,
    then by name: the members a snapshot is asked from, in order."""
    names = sorted(name for name, node in nodes.items() if roles.ETCD in node.roles)
    ordered = [first] if first in names else []
    ordered += [name for name in names if name != first]
    return [(name, _etcd.client_url(nodes[name].host)) for name in ordered]


def take_snapshot(endpoints: list[tuple[str, str]], dest: str, tls: list[str], run: Run,
                  tool: str | None) -> Snapshot:  # fmt: skip
    """Save a snapshot into `dest` from the first member that answers healthy, asking each
    in order; BackupError naming each member's failure when none gives one."""
    if not endpoints:
        raise BackupError(
            "no etcd member to take a snapshot from: the inventory declares no node with the "
            "etcd role; deploy the cluster first (bootstrap.sh)"
        )
    failures = []
    for name, url in endpoints:
        unhealthy = endpoint_health(url, tls, run)
        if unhealthy:
            failures.append(f"{name} ({url}): not healthy: {unhealthy}")
            continue
        status = run(etcdctl(url, tls, "endpoint", "status", "-w", "json"),
                     timeout=DIAL_TIMEOUT + COMMAND_TIMEOUT + 5, env=ENV)  # fmt: skip
        listing = run(etcdctl(url, tls, "member", "list", "-w", "json"),
                      timeout=DIAL_TIMEOUT + COMMAND_TIMEOUT + 5, env=ENV)  # fmt: skip
        if status.returncode or listing.returncode:
            bad = status if status.returncode else listing
            failures.append(f"{name} ({url}): {_failure(bad, 'etcdctl endpoint status')}")
            continue
        if os.path.exists(dest):
            os.unlink(dest)
        # snapshot save takes no --command-timeout: a large database takes longer than 5 s.
        save = ["etcdctl", f"--endpoints={url}", *tls, f"--dial-timeout={DIAL_TIMEOUT}s",
                "snapshot", "save", dest]  # fmt: skip
        saved = run(save, timeout=SAVE_TIMEOUT, env=ENV)
        if saved.returncode or not os.path.isfile(dest):
            failures.append(f"{name} ({url}): snapshot save failed: "
                            f"{_failure(saved, 'etcdctl snapshot save')}")  # fmt: skip
            continue
        found = snapshot_status_with(run, tool)(dest)
        if found and found.get("error"):
            failures.append(f"{name} ({url}): the snapshot saved cannot be read: "
                            f"{found['error']}")  # fmt: skip
            continue
        member = parse_endpoint_status(status.stdout)
        members = _etcd.parse_member_list(listing.stdout)
        return Snapshot(
            path=dest,
            member=name,
            member_id=member["member_id"],
            endpoint=url,
            revision=found["revision"] if found else None,
            hash=found["hash"] if found else None,
            members=tuple(m.to_dict() for m in members),
        )
    lines = "\n".join(f"  {line}" for line in failures)
    raise BackupError(
        f"no etcd member gave a snapshot ({len(failures)} asked):\n{lines}\nCheck etcd on "
        "these nodes (salt-call kubesalt_etcd.health cluster=True); with quorum lost, see "
        "docs/backup.md (restore-etcd)"
    )


# -- restore for quorum loss ------------------------------------------------------------


@dataclass(frozen=True)
class LocalEtcd:
    """This node's etcd, as its static pod manifest starts it."""

    name: str
    peer_url: str
    client_urls: tuple[str, ...]
    data_dir: str
    initial_cluster: tuple[tuple[str, str], ...]
    manifest: str


def _flags(command: list[str]) -> dict[str, str]:
    flags = {}
    for arg in command:
        if arg.startswith("--") and "=" in arg:
            key, _, value = arg[2:].partition("=")
            flags[key] = value
    return flags


def local_etcd(layout: Layout) -> LocalEtcd:
    """This node's member name, peer and client URLs, data directory and initial cluster,
    read from its etcd manifest (the flags kubesalt rendered)."""
    path = os.path.join(layout.manifests_dir, ETCD_MANIFEST)
    try:
        with open(path, encoding="utf-8") as stream:
            command = yaml.safe_load(stream)["spec"]["containers"][0]["command"]
    except FileNotFoundError:
        raise BackupError(
            f"{path} does not exist: restore-etcd runs on an etcd node, with etcd's static pod "
            "manifest in place (apply kubesalt.etcd on this node first)"
        ) from None
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as err:
        raise BackupError(f"{path}: not an etcd static pod manifest ({err})") from None
    flags = _flags(command)
    missing = [f"--{key}" for key in ("name", "initial-advertise-peer-urls", "data-dir")
               if not flags.get(key)]  # fmt: skip
    if missing:
        raise BackupError(f"{path}: the etcd command has no {', '.join(missing)}")
    cluster = tuple(
        tuple(item.split("=", 1))
        for item in flags.get("initial-cluster", "").split(",")
        if "=" in item
    )
    return LocalEtcd(
        name=flags["name"],
        peer_url=flags["initial-advertise-peer-urls"].split(",")[0],
        client_urls=tuple(u for u in flags.get("advertise-client-urls", "").split(",") if u),
        data_dir=flags["data-dir"],
        initial_cluster=cluster,
        manifest=path,
    )


def _client_of(peer_url: str) -> str | None:
    """The client URL of the member whose peer URL is `peer_url` (same host, port 2379)."""
    host = peer_url.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    try:
        return _etcd.client_url(host)
    except _etcd.EtcdError:
        return None


def endpoints_to_ask(local: LocalEtcd, recorded: Iterable[dict]) -> list[str]:
    """Every client URL a live member could answer on: this node's, the members recorded
    in the backup, and those of this node's initial cluster."""
    urls: list[str] = list(local.client_urls)
    for member in recorded:
        urls += list(member.get("client_urls") or [])
        urls += [u for u in map(_client_of, member.get("peer_urls") or []) if u]
    urls += [u for u in (_client_of(peer) for _, peer in local.initial_cluster) if u]
    return list(dict.fromkeys(urls))


class QuorumExists(BackupError):
    """A member answers healthy: the cluster has quorum and must not be restored."""


def refuse_while_healthy(urls: list[str], tls: list[str], run: Run) -> dict[str, str]:
    """Ask every URL for its health; QuorumExists naming the healthy ones (etcd answers a
    health check only with a quorum), else {url: why it did not answer}."""
    answers = {url: endpoint_health(url, tls, run) for url in urls}
    healthy = [url for url, why in answers.items() if why is None]
    if healthy:
        raise QuorumExists(
            f"refusing to restore etcd: {', '.join(healthy)} answer(s) healthy, so the "
            "cluster has quorum and restoring would throw away every write since the "
            "snapshot. Replace lost members instead (remove_node, then deploy_node); "
            "restore-etcd is for a cluster where no member answers"
        )
    return answers


@dataclass(frozen=True)
class Step:
    """One step of restore-etcd: what it does (`text`), and doing it (`do`)."""

    text: str
    do: Callable[[], None]
    argv: tuple[str, ...] = ()


def restore_steps(local: LocalEtcd, snapshot: str, tool: str, stamp: str, layout: Layout,
                  run: Run, proc: str = "/proc") -> list[Step]:  # fmt: skip
    """The steps on this node (the first member of the restored cluster), in order. The
    old data directory is moved aside, never deleted."""
    aside = f"{local.data_dir}.before-restore-{stamp}"
    parked = os.path.join(layout.kubernetes_dir, f"{ETCD_MANIFEST}.restore-{stamp}")
    restore = (tool, "snapshot", "restore", snapshot, f"--name={local.name}",
               f"--initial-cluster={local.name}={local.peer_url}",
               f"--initial-advertise-peer-urls={local.peer_url}",
               f"--data-dir={local.data_dir}")  # fmt: skip

    def move_data_aside():
        if os.path.exists(local.data_dir):
            os.rename(local.data_dir, aside)

    def restore_snapshot():
        result = run(list(restore), timeout=SAVE_TIMEOUT, env=ENV)
        if result.returncode:
            raise BackupError(
                f"{tool} snapshot restore failed: {_failure(result, tool)}; etcd stays "
                f"stopped: its manifest is at {parked}, the old data at {aside}"
            )

    return [
        Step(f"move {local.manifest} to {parked}: the kubelet stops etcd",
             lambda: os.rename(local.manifest, parked)),
        Step(f"wait (at most {STOP_TIMEOUT}s) until no process runs etcd on {local.data_dir}",
             lambda: wait_stopped(local.data_dir, proc)),
        Step(f"move {local.data_dir} to {aside} (kept: delete it once the cluster is back)",
             move_data_aside),
        Step(f"{tool} snapshot restore into {local.data_dir}: one member, {local.name} "
             f"({local.peer_url})", restore_snapshot, restore),
        Step(f"set {local.data_dir} to mode 0700", lambda: os.chmod(local.data_dir, 0o700)),
        Step(f"move {parked} back to {local.manifest}: the kubelet starts etcd",
             lambda: os.rename(parked, local.manifest)),
    ]  # fmt: skip


def next_steps(local: LocalEtcd, recorded: Iterable[dict]) -> list[str]:
    """What the operator does after restore-etcd, on the other members."""
    others = sorted({m.get("name") for m in recorded} - {local.name, "", None})
    lines = [
        f"wait for etcd on {local.name}: salt-call kubesalt_etcd.wait_healthy timeout=120",
        "restart kube-apiserver on every control-plane node (its cache predates the restore)",
    ]
    if others:
        lines.append(
            f"the other members ({', '.join(others)}) belong to the lost cluster: on each, "
            "stop etcd and empty its data directory (state kubesalt.etcd.data-absent), then "
            "join it again with deploy_node, one node at a time"
        )
    return lines


def wait_stopped(data_dir: str, proc: str = "/proc", sleep=time.sleep,
                 clock=time.monotonic) -> None:  # fmt: skip
    """Wait until no process runs etcd on `data_dir` (bounded by STOP_TIMEOUT)."""
    deadline = clock() + STOP_TIMEOUT
    while True:
        running = _etcd.processes_using(data_dir, proc)
        if not running:
            return
        if clock() > deadline:
            raise BackupError(
                f"etcd still runs on {data_dir} (PID {', '.join(map(str, running))}) "
                f"{STOP_TIMEOUT}s after its manifest was moved away; check the kubelet "
                "(journalctl -u kubelet, crictl ps), then run restore-etcd again"
            )
        sleep(1)


def restore_etcd(verified: Verified, snapshot_file: str, layout: Layout, run: Run,
                 tool: str | None, now: datetime.datetime, dry_run: bool = False,
                 proc: str = "/proc", log=print) -> list[str]:  # fmt: skip
    """Restore this node's etcd from a verified backup's snapshot (`snapshot_file`, already
    extracted), as the one member of a new cluster: refused while any member answers
    healthy. With `dry_run`, print the steps only. Returns the next steps."""
    if tool is None:
        raise BackupError(
            "neither etcdutl nor etcdctl is on the PATH: install etcd-client (Debian) or etcd "
            "(RHEL), which kubesalt.etcd installs on every etcd node"
        )
    local = local_etcd(layout)
    recorded = verified.manifest["etcd"].get("members") or []
    answers = refuse_while_healthy(endpoints_to_ask(local, recorded), tls_flags(layout), run)
    for url, why in answers.items():
        log(f"restore-etcd: {url} does not answer healthy: {why}")
    stamp = now.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    steps = restore_steps(local, snapshot_file, tool, stamp, layout, run, proc)
    for index, step in enumerate(steps, start=1):
        log(f"restore-etcd: {'would ' if dry_run else ''}{index}. {step.text}")
        if not dry_run:
            step.do()
    return next_steps(local, recorded)


def extract_snapshot(archive: str, directory: str) -> str:
    """Extract the snapshot member of `archive` into `directory` (0600); its path."""
    path = os.path.join(directory, "snapshot.db")
    with (
        tarfile.open(archive, mode="r:gz") as tar,
        tar.extractfile(SNAPSHOT_MEMBER) as source,
        open(path, "wb") as target,
    ):
        os.fchmod(target.fileno(), 0o600)
        shutil.copyfileobj(source, target)
    return path
