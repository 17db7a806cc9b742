"""`bootstrap.sh` (python3 -m kubesalt.bootstrap): the phases and the command line.

Run as root on the future bootstrap node, from the mounted ISO or an extracted one.
Docs: docs/bootstrap.md.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubesalt import backup, backup_etcd, inventory, packages
from kubesalt import config as kconfig
from kubesalt.bootstrap import archive as karchive
from kubesalt.bootstrap import mounts, preflight, saltout, saltvenv, services
from kubesalt.bootstrap.phases import (
    BootstrapError,
    Phase,
    PhaseError,
    PhaseResult,
    UsageError,
    parse_skip,
    run_phases,
)
from kubesalt.bootstrap.system import (
    Log,
    System,
    free_bytes,
    host_addresses,
    open_log,
    unit_of_pid,
)

DEFAULT_LOG = "/var/log/kubesalt/bootstrap.log"
SALT_PREREQUISITES = ("python3-venv",)
WHEEL_STAMP = f"{services.VENV}/.kubesalt-wheels"
MASTER_PKI = "/etc/salt/pki/master"
WAIT_KEY_SECONDS = 90
# Written once a restore put the files back, removed once the restore orchestration ended:
# until then every run of bootstrap.sh rejoins (the plain bootstrap orchestration would
# start the node's etcd as a new one-member cluster).
RESTORE_PENDING = "/var/lib/kubesalt/restore-pending"
SHOWN_FAILURES = 20  # failed states listed on the console, in the order Salt ran them


@dataclass
class Context:
    args: argparse.Namespace
    log: Log
    system: System
    cfg: dict | None = None
    control_plane_ip: str = ""
    archive_sources: list[str] = field(default_factory=list)
    archives: list[karchive.Archive] = field(default_factory=list)
    current: karchive.Archive | None = None
    root: str = "/"  # where --restore puts the files back (tests give a directory)

    @property
    def minion_id(self) -> str:
        return self.cfg["ca"]["minion"]

    def salt(self, program: str) -> str:
        return f"{services.VENV}/bin/{program}"


# -- restore -------------------------------------------------------------------------


def phase_restore(ctx: Context) -> PhaseResult:
    """With --restore: the backup verified whole, the machine checked to have the restored
    node's control-plane IP, then its files put back (none of another content replaced).
    The later phases converge the node; phase orchestrate rejoins the cluster."""
    path = ctx.args.restore
    if not path:
        pending = (
            "; a restore has not ended: phase orchestrate rejoins" if _restore_pending(ctx) else ""
        )
        return PhaseResult(False, f"nothing to restore (no --restore){pending}")
    if os.geteuid() != 0:
        raise BootstrapError("--restore: run bootstrap.sh as root (the files go back as root's)")
    status = backup_etcd.snapshot_status_with(backup_etcd.run_program, backup_etcd.snapshot_tool())
    plan = backup.restore_plan(path, status=status)
    node = backup.restored_node(plan)
    addresses = sorted({a.address for a in host_addresses()})
    if node.host not in addresses:
        raise BootstrapError(
            f"--restore {path}: the backup is of bootstrap node {node.name} at {node.host}, "
            f"an address this machine does not have ({', '.join(addresses) or 'none'}); "
            "restore onto a machine with that address: every other node reaches the "
            "salt-master, the registry and the repositories there"
        )
    changed = backup.apply_restore(plan, ctx.root)
    ctx.log.detail(f"restored from {path}: {', '.join(changed) or 'nothing changed'}")
    if not _restore_pending(ctx):
        # kubesalt's state directory, not a secret one (nginx serves the Salt virtualenv
        # from below it): 0755 as bootstrap.sh would make it.
        os.makedirs(os.path.dirname(_pending_path(ctx)), mode=0o755, exist_ok=True)
        Path(_pending_path(ctx)).write_text(f"{os.path.abspath(path)}\n")
    return PhaseResult(
        bool(changed), f"node {node.name} ({node.host}), {len(changed)} paths put back"
    )


# -- preflight -----------------------------------------------------------------------


def _archive_sources(args, cfg: dict) -> list[str]:
    sources = list(cfg["archives"])
    if args.archive:
        sources = [args.archive] + [s for s in sources if s != args.archive]
    return sources


def phase_preflight(ctx: Context) -> PhaseResult:
    """Every check runs; all problems are reported together; nothing is changed."""
    problems: list[tuple[str, str]] = []
    problems += [("root", p) for p in preflight.check_root(os.geteuid())]
    try:
        os_release = preflight.parse_os_release(Path("/etc/os-release").read_text())
    except OSError:
        os_release = {}
    problems += [("os", p) for p in preflight.check_os(os_release)]
    try:
        cfg = kconfig.load_file(ctx.args.config)
    except kconfig.InvalidConfig as err:
        problems += [("config", f"{err.source}: {p}") for p in err.problems]
        cfg = None
    if ctx.args.archive_fingerprint:
        try:
            karchive.normalize_fingerprint(ctx.args.archive_fingerprint)
        except BootstrapError as err:
            problems.append(("archive", str(err)))
    if cfg is not None:
        ctx.cfg = cfg
        ctx.archive_sources = _archive_sources(ctx.args, cfg)
        for source in ctx.archive_sources:
            try:
                kind = karchive.kind_of(source)
                if kind == "directory":
                    karchive.describe(source, source, kind)
            except BootstrapError as err:
                problems.append(("archive", str(err)))
        address_problems, chosen = preflight.check_addresses(cfg, host_addresses())
        problems += [("addresses", p) for p in address_problems]
        ctx.control_plane_ip = chosen.get("controlPlane", "")
        listeners = []
        for proto, flag in (("tcp", "-t"), ("udp", "-u")):
            out = ctx.system.run(
                ["ss", "-H", "-l", "-n", "-p", flag], what="list listening sockets"
            )
            listeners += preflight.parse_ss(out.stdout, proto)
        units = {pid: unit_of_pid(pid) for listener in listeners for pid in listener.pids}
        problems += [("ports", p) for p in preflight.check_ports(cfg, listeners, units)]
    problems += [("disk", p) for p in preflight.check_disk(free_bytes(preflight.DISK_NEEDS))]
    if problems:
        lines = "\n".join(f"  [{check}] {text}" for check, text in problems)
        raise BootstrapError(
            f"{len(problems)} problem(s) found before any change; nothing was changed:\n{lines}"
        )
    return PhaseResult(False, f"control-plane IP {ctx.control_plane_ip}, minion {ctx.minion_id}")


# -- archive -------------------------------------------------------------------------


def verify_archive(ctx: Context, root: str, report: Callable[[str], None] | None = None) -> None:
    """Check an archive on every run, before anything of it is used: the signature of its
    SHA256SUMS (by the operator's key when a fingerprint is given), every file, no other.
    `report` gets the line saying by whom it is signed (default: the log)."""
    started = time.monotonic()
    signer = karchive.verify(root, ctx.args.archive_fingerprint)
    given = "the fingerprint given" if ctx.args.archive_fingerprint else "no fingerprint given"
    (report or ctx.log.detail)(
        f"{root}: {karchive.SUMS} signed by {signer} ({given}); every file checked in "
        f"{time.monotonic() - started:.1f}s"
    )


def _attach_archive(ctx: Context, source: str) -> tuple[karchive.Archive, bool]:
    """An archive mounted (an ISO, kept in fstab) and checked whole; whether that changed
    something."""
    attached = mounts.attach(ctx.system, source)
    changed = attached.mounted_now | mounts.persist(ctx.system, attached)
    verify_archive(ctx, attached.root)
    return karchive.describe(source, attached.root, attached.kind), changed


def _current_archive(ctx: Context, archives: list[karchive.Archive]) -> karchive.Archive:
    """The archive the cluster runs: --archive when given, else the one the register
    records (an upgrade moves it), else the first of `archives` in bootstrap.yaml."""
    recorded = karchive.load_current(karchive.REGISTER)
    if not ctx.args.archive:
        for found in archives:
            if found.version == recorded:
                return found
    return archives[0]


def phase_archive(ctx: Context) -> PhaseResult:
    """The archives of bootstrap.yaml, then those registered with other versions
    (kubesalt-iso added them; kubesalt-iso remove takes them away), each attached and
    checked; the register written with the current one."""
    changed = False
    archives = []
    for source in ctx.archive_sources:
        found, attached = _attach_archive(ctx, source)
        archives.append(found)
        changed |= attached
    versions = {a.version for a in archives}
    for registered in karchive.load_register(karchive.REGISTER):
        if registered.version not in versions:
            try:
                found, attached = _attach_archive(ctx, registered.source)
            except BootstrapError as err:
                raise BootstrapError(
                    f"{err}\n(archive {registered.version} is in {karchive.REGISTER}, added by "
                    f"kubesalt-iso: put {registered.source} back, or remove it with "
                    f"kubesalt-iso remove {registered.version})"
                ) from err
            archives.append(found)
            changed |= attached
    ctx.archives = archives
    ctx.current = _current_archive(ctx, archives)
    changed |= ctx.system.write(
        karchive.REGISTER, karchive.register_text(archives, ctx.current.version)
    )
    names = ", ".join(f"{a.name} {a.version} at {a.root}" for a in archives)
    return PhaseResult(changed, f"{names}; current {ctx.current.version}")


# -- repository ----------------------------------------------------------------------


def _lists_present(archive: karchive.Archive) -> bool:
    prefix = archive.path(karchive.APT_DIR).strip("/").replace("/", "_")
    return bool(glob.glob(f"/var/lib/apt/lists/*{prefix}*Packages*"))


def _installed(ctx: Context, package: str) -> bool:
    result = ctx.system.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status}", package], what="dpkg-query", check=False
    )
    return result.stdout.strip() == "installed"


def phase_repository(ctx: Context) -> PhaseResult:
    changed = False
    for archive in ctx.archives:
        keyring = Path(archive.path(karchive.KEYRING)).read_bytes()
        wrote = ctx.system.write(karchive.apt_keyring_path(archive), keyring)
        wrote |= ctx.system.write(karchive.apt_sources_path(archive), karchive.apt_sources(archive))
        if wrote or not _lists_present(archive):
            ctx.system.run(
                karchive.apt_update_command(archive), what=f"apt-get update ({archive.saltenv})"
            )
            changed = True
    missing = [p for p in SALT_PREREQUISITES if not _installed(ctx, p)]
    if missing:
        try:
            pins = packages.read_pins(ctx.current.root)
            command = packages.apt_install_command(ctx.current, pins, missing)
        except packages.PackageError as err:
            raise BootstrapError(str(err)) from err
        ctx.system.run(command, what=f"install {', '.join(missing)} from the archive's repository")
        changed = True
    return PhaseResult(changed, f"apt source {karchive.apt_sources_path(ctx.current)}")


# -- Salt ----------------------------------------------------------------------------


def wheel_stamp(root: str) -> str:
    """A digest of the wheelhouse (from SHA256SUMS; hashing the files if it is absent)."""
    sums = Path(root, karchive.SUMS)
    prefix = karchive.WHEELS_DIR + "/"
    if sums.exists():
        lines = sorted(
            line
            for line in sums.read_text().splitlines()
            if line.split("  ", 1)[-1].startswith(prefix)
        )
    else:
        lines = []
        for path in sorted(Path(root, karchive.WHEELS_DIR).glob("*.whl")):
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {prefix}{path.name}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _keep_bytecode_out_of_archives(ctx: Context, python: str) -> bool:
    """Every Python of the venv writes its bytecode under services.PYCACHE_PREFIX: Salt
    imports modules from the archive (module_dirs), and a __pycache__ written into a
    directory archive would be an unlisted file at the next check."""
    purelib = ctx.system.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        what="find the Salt virtualenv's site-packages",
    ).stdout.strip()
    return ctx.system.write(os.path.join(purelib, services.PYCACHE_PTH), services.pycache_pth())


def _archive_for_nodes(ctx: Context, stamp: str) -> bool:
    """The venv archived once per wheelhouse: new nodes unpack it (saltvenv)."""
    started = time.monotonic()
    made = saltvenv.make(services.VENV, ctx.current.saltenv, stamp)
    path = saltvenv.archive_path(ctx.current.saltenv)
    if made:
        ctx.log.detail(f"archived {services.VENV} to {path} in {time.monotonic() - started:.1f}s")
    return made


def phase_salt_install(ctx: Context) -> PhaseResult:
    wheels = ctx.current.path(karchive.WHEELS_DIR)
    own = karchive.kubesalt_wheel(ctx.current)
    salt_wheels = sorted(glob.glob(os.path.join(wheels, "salt-*.whl")))
    if not salt_wheels:
        raise BootstrapError(f"{wheels} holds no salt wheel; rebuild the archive with iso/build")
    stamp = wheel_stamp(ctx.current.root)
    python = ctx.salt("python")
    try:
        installed = Path(WHEEL_STAMP).read_text().strip()
    except OSError:
        installed = ""
    if os.path.exists(python) and installed == stamp:
        changed = _keep_bytecode_out_of_archives(ctx, python)
        changed |= _archive_for_nodes(ctx, stamp)
        return PhaseResult(changed, f"{services.VENV} holds the archive's wheels")
    if not os.path.exists(python):
        ctx.system.run(
            ["/usr/bin/python3", "-m", "venv", services.VENV], what="create the Salt virtualenv"
        )
    # --no-compile: compiling all of Salt took more than half of the install; Python compiles
    # each module once, when it is first imported.
    pip = [python, "-m", "pip", "install", "--no-index", "--find-links", wheels,
           "--disable-pip-version-check", "--no-cache-dir", "--no-compile", "--quiet"]  # fmt: skip
    ctx.system.run(
        [*pip, "salt", "kubernetes", f"kubesalt=={ctx.current.version}"],
        what="install Salt, the kubernetes client and kubesalt from the wheelhouse",
    )
    ctx.system.run([*pip, "--no-deps", "--force-reinstall", own], what="install the kubesalt wheel")
    ctx.system.run(
        [python, "-c", "import salt.version, kubernetes, kubesalt"],
        what="check the Salt virtualenv",
    )
    ctx.system.write(WHEEL_STAMP, stamp + "\n")
    _keep_bytecode_out_of_archives(ctx, python)
    _archive_for_nodes(ctx, stamp)
    return PhaseResult(True, f"{os.path.basename(salt_wheels[-1])}, {os.path.basename(own)}")


def phase_salt_minion(ctx: Context) -> PhaseResult:
    changed = ctx.system.write("/etc/salt/minion_id", ctx.minion_id + "\n")
    changed |= ctx.system.write(
        services.MINION_CONFIG,
        services.minion_config(
            ctx.minion_id, ctx.control_plane_ip, ctx.archives, ctx.current, ctx.args.config
        ),
    )
    # The bootstrap node declares itself in the inventory once (its roles may grow later).
    if ctx.minion_id not in inventory.load(services.INVENTORY_DIR):
        node = inventory.Node(ctx.minion_id, ctx.control_plane_ip, preflight.FIRST_NODE_ROLES)
        changed |= inventory.declare(node, ctx.cfg, services.INVENTORY_DIR)
        ctx.log.detail(f"declared {ctx.minion_id} in {services.INVENTORY_DIR}")
    return PhaseResult(
        changed, f"minion {ctx.minion_id}, local mode, saltenv {ctx.current.saltenv}"
    )


def salt_json(ctx: Context, cmd: list[str], what: str) -> saltout.StateSummary:
    """Run a Salt command whose output is JSON (--out=json): one log line per state; a
    failed state or a non-zero exit is a BootstrapError listing the failures."""
    result = ctx.system.run(cmd, what=what, check=False, quiet_output=True)
    try:
        data = json.loads(result.stdout) if result.stdout.strip() else {}
    except ValueError:
        # Not Salt's JSON: only its first lines are kept, as it may hold diffs (secrets).
        data = [saltout.short_comment(result.stdout)]
    summary = saltout.summarize(data)
    for line in summary.lines:
        ctx.log.detail(line)
    if result.stderr.strip():
        ctx.log.file(result.stderr)
    if summary.failed or summary.errors or result.returncode != 0:
        listed = "\n  ".join(_failure_lines(ctx, summary, result))
        raise BootstrapError(
            f"{what} failed (exit {result.returncode}), {len(summary.failed)} state(s) failed:\n  {listed}\n"
            f"(details in the log: {ctx.log.path})"
        )
    return summary


def _failure_lines(ctx: Context, summary: saltout.StateSummary, result) -> list[str]:
    """One console line per failure; the whole comments (tracebacks included) go to the log."""
    for sid, comment in summary.failed:
        ctx.log.file(f"state {sid!r} failed:\n{comment}")
    for error in summary.errors:
        ctx.log.file(f"error: {error}")
    lines = [f"state {sid!r}: {saltout.short_comment(c)}" for sid, c in summary.failed]
    lines += [saltout.short_comment(error) for error in summary.errors]
    if not lines:
        lines = [(result.stderr or result.stdout).strip()[-1500:]]
    if len(lines) > SHOWN_FAILURES:
        hidden = len(lines) - SHOWN_FAILURES
        lines = lines[:SHOWN_FAILURES] + [f"... and {hidden} more (see the log)"]
    return lines


def local_state_apply(ctx: Context, sls: str) -> list[str]:
    """salt-call --local state.apply of `sls` (one SLS, or several comma-separated), with
    the minion configuration's trees and pillar, its output as JSON for salt_json."""
    return [ctx.salt("salt-call"), "--local", "--retcode-passthrough", "--out=json",
            "--log-level=quiet", "state.apply", sls]  # fmt: skip


# Applied in order with salt-call --local: the node's addresses first (grains and mine),
# because the states of the role read them when they are rendered.
LOCAL_STATES = ("kubesalt.node", "kubesalt.roles.bootstrap")


def phase_local_states(ctx: Context) -> PhaseResult:
    total, changed = 0, 0
    for sls in LOCAL_STATES:
        summary = salt_json(
            ctx, local_state_apply(ctx, sls), f"salt-call --local state.apply {sls}"
        )
        total += summary.total
        changed += len(summary.changed)
    return PhaseResult(bool(changed), f"{total} states, {changed} changed")


def phase_salt_master(ctx: Context) -> PhaseResult:
    """Wait (bounded) for the master to answer and the minion's key to reach it."""
    deadline = time.monotonic() + WAIT_KEY_SECONDS
    names = {
        d: os.path.join(MASTER_PKI, d, ctx.minion_id)
        for d in ("minions", "minions_pre", "minions_rejected", "minions_denied")
    }
    while True:
        for state in ("minions_rejected", "minions_denied"):
            if os.path.exists(names[state]):
                raise BootstrapError(
                    f"the master holds the key of {ctx.minion_id} in {state}; delete it "
                    f"(salt-key -d {ctx.minion_id}) and run bootstrap.sh again"
                )
        if os.path.exists(names["minions"]) or os.path.exists(names["minions_pre"]):
            state = "accepted" if os.path.exists(names["minions"]) else "waiting for acceptance"
            return PhaseResult(False, f"key of {ctx.minion_id} {state}")
        if time.monotonic() > deadline:
            raise BootstrapError(
                f"waited {WAIT_KEY_SECONDS}s for salt-minion {ctx.minion_id} to send its key to the "
                f"master at {ctx.control_plane_ip}:4506; see systemctl status salt-master salt-minion "
                "and /var/log/salt/minion"
            )
        time.sleep(1)


def _pending_path(ctx: Context) -> str:
    return os.path.join(ctx.root, RESTORE_PENDING.lstrip("/"))


def _restore_pending(ctx: Context) -> bool:
    return os.path.exists(_pending_path(ctx))


def orchestration(ctx: Context) -> str:
    """bootstrap; restore with --restore, or while a restore has not ended (the node joins
    the cluster that kept running)."""
    return "restore" if ctx.args.restore or _restore_pending(ctx) else "bootstrap"


def phase_orchestrate(ctx: Context) -> PhaseResult:
    pillar = json.dumps({"kubesalt_bootstrap": {"minion": ctx.minion_id}})
    name = orchestration(ctx)
    sls = f"kubesalt.orchestrate.{name}"
    cmd = [ctx.salt("salt-run"), "--out=json", "--log-level=quiet", "state.orchestrate",
           sls, f"saltenv={ctx.current.saltenv}", f"pillar={pillar}"]  # fmt: skip
    summary = salt_json(ctx, cmd, f"salt-run state.orchestrate {sls}")
    if name == "restore" and _restore_pending(ctx):
        os.unlink(_pending_path(ctx))
    return PhaseResult(
        bool(summary.changed), f"{sls}: {summary.total} states, {len(summary.changed)} changed"
    )


def phase_addons(ctx: Context) -> PhaseResult:
    """kubeadm's API objects and the addons, once this node's kube-apiserver answers."""
    cmd = [ctx.salt("salt-run"), "--out=json", "--log-level=quiet", "state.orchestrate",
           "kubesalt.orchestrate.addons", f"saltenv={ctx.current.saltenv}"]  # fmt: skip
    summary = salt_json(ctx, cmd, "salt-run state.orchestrate kubesalt.orchestrate.addons")
    return PhaseResult(
        bool(summary.changed), f"{summary.total} states, {len(summary.changed)} changed"
    )


PHASES = (
    Phase("restore", "with --restore FILE: verify the backup, put its files back", phase_restore),
    Phase("preflight", "check root, OS, bootstrap.yaml, addresses, ports, disk", phase_preflight),
    Phase("archive", "mount or register the archive", phase_archive),
    Phase("repository", "local apt repository from the archive (file://)", phase_repository),
    Phase(
        "salt-install",
        f"Salt and kubesalt from the archive's wheels into {services.VENV}, "
        f"archived for the other nodes in {saltvenv.ARCHIVE_DIR}",
        phase_salt_install,
    ),
    Phase("salt-minion", "configure salt-minion (local mode first)", phase_salt_minion),
    Phase(
        "bootstrap-states",
        "salt-call --local state.apply kubesalt.node, then kubesalt.roles.bootstrap",
        phase_local_states,
    ),
    Phase("salt-master", "salt-master up, the minion's key submitted", phase_salt_master),
    Phase(
        "orchestrate",
        "salt-run state.orchestrate kubesalt.orchestrate.bootstrap (restore with --restore)",
        phase_orchestrate,
    ),
    Phase(
        "addons",
        "salt-run state.orchestrate kubesalt.orchestrate.addons: kubeadm's API objects, "
        "the CNI, kube-proxy, CoreDNS",
        phase_addons,
    ),
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bootstrap.sh",
        description="Make this machine the kubesalt bootstrap node (docs/bootstrap.md).",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print the commands and each state")
    p.add_argument(
        "--log-file", default=DEFAULT_LOG, help=f"log of everything (default {DEFAULT_LOG})"
    )
    p.add_argument(
        "--skip-phases",
        metavar="A,B",
        help="phases to skip, comma-separated: " + ", ".join(ph.name for ph in PHASES),
    )
    p.add_argument(
        "--config",
        default=kconfig.DEFAULT_PATH,
        help=f"bootstrap.yaml (default {kconfig.DEFAULT_PATH})",
    )
    p.add_argument(
        "--archive",
        help="the ISO or extracted ISO directory to bootstrap from (default: archives[0])",
    )
    p.add_argument(
        "--restore",
        metavar="FILE",
        help="bring the bootstrap node back on a fresh machine with its control-plane IP "
        "from a kubesalt-backup archive (docs/backup.md); bootstrap.yaml comes from it",
    )
    add_fingerprint_option(p, "every archive's")
    return p


def add_fingerprint_option(p: argparse.ArgumentParser, whose: str) -> None:
    """--archive-fingerprint, as bootstrap.sh and kubesalt-iso add take it."""
    p.add_argument(
        "--archive-fingerprint",
        metavar="FPR",
        default=os.environ.get(karchive.FINGERPRINT_ENV) or None,
        help=f"fingerprint of the key that must have signed {whose} SHA256SUMS "
        f"(default: ${karchive.FINGERPRINT_ENV}; docs/bootstrap.md)",
    )


def check_restore_usage(args, skip: set[str]) -> None:
    """--restore brings bootstrap.yaml back to its own path, and needs its own phase."""
    if not args.restore:
        return
    if args.config != kconfig.DEFAULT_PATH:
        raise UsageError(
            f"--config {args.config} with --restore: the backup carries bootstrap.yaml and "
            f"puts it back at {kconfig.DEFAULT_PATH}; drop --config"
        )
    if "restore" in skip:
        raise UsageError("--restore with --skip-phases restore: drop one of them")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        skip = parse_skip(args.skip_phases, PHASES)
        check_restore_usage(args, skip)
    except UsageError as err:
        print(f"bootstrap.sh: {err}", file=sys.stderr)
        return 2
    log = open_log("bootstrap.sh", args.log_file, args.verbose)
    if log is None:
        return 2
    # bootstrap.sh puts this package (unpacked from the archive) on PYTHONPATH for this
    # process only: pip and Salt must see their own virtualenv, not these copies.
    os.environ.pop("PYTHONPATH", None)
    ctx = Context(args=args, log=log, system=System(log))
    log.file(f"bootstrap.sh {' '.join(argv if argv is not None else sys.argv[1:])}")
    start = time.monotonic()
    try:
        if "preflight" in skip:
            # Later phases need the configuration and the address even when the checks are skipped.
            ctx.cfg = kconfig.load_file(args.config)
            ctx.archive_sources = _archive_sources(args, ctx.cfg)
            _, chosen = preflight.check_addresses(ctx.cfg, host_addresses())
            ctx.control_plane_ip = chosen.get("controlPlane", "")
        if skip & {"archive"} and not skip >= {
            "archive",
            "repository",
            "salt-install",
            "salt-minion",
        }:
            ctx.archives = karchive.load_register(karchive.REGISTER)
            for registered in ctx.archives:
                verify_archive(ctx, registered.root)
            recorded = karchive.load_current(karchive.REGISTER)
            ctx.current = next((a for a in ctx.archives if a.version == recorded), None)
            if ctx.current is None:
                raise PhaseError(
                    "archive",
                    f"skipped, but {karchive.REGISTER} is empty: run without skipping it once",
                )
        report = run_phases(PHASES, ctx, skip, announce=log.say)
    except PhaseError as err:
        log.say(f"bootstrap.sh: {err}")
        log.say(
            f"bootstrap.sh: stopped after {time.monotonic() - start:.1f}s; log: {args.log_file}"
        )
        log.close()
        return 1
    except (BootstrapError, kconfig.InvalidConfig) as err:
        log.say(f"bootstrap.sh: error: {err}")
        log.close()
        return 1
    total = time.monotonic() - start
    verdict = "changes made" if report.changed else "no changes"
    log.say(f"bootstrap.sh: done in {total:.1f}s: {verdict}. Log: {args.log_file}")
    log.close()
    return 0
