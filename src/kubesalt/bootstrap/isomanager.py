"""`kubesalt-iso`: add, remove and list the archives of the bootstrap node.

An archive is added the way bootstrap.sh registers one (mounts.attach, archive.verify,
archive.describe, the register), then served by the current archive's Salt tree: one
`salt-call --local state.apply` of SERVE_STATES converges the apt sources, the registry,
nginx and salt-master's saltenvs from the register, and restarts or reloads a service only
when its configuration changed. Removing undoes it in the other order. Docs:
docs/kubesalt-iso.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from kubesalt import lock
from kubesalt.bootstrap import archive as karchive
from kubesalt.bootstrap import cli, mounts, preflight, saltout
from kubesalt.bootstrap.phases import BootstrapError
from kubesalt.bootstrap.system import System, open_log
from kubesalt.columns import aligned
from kubesalt.digests import file_sha256
from kubesalt.errors import KubesaltError

PROG = "kubesalt-iso"
DEFAULT_LOG = "/var/log/kubesalt/kubesalt-iso.log"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Everything that serves the registered archives on this node, each computed from the
# register: the apt sources (stale ones removed), the images, nginx's locations, the
# saltenvs of salt-master and of the minion's local mode.
SERVE_STATES = (
    "kubesalt.repo",
    "kubesalt.registry",
    "kubesalt.nginx",
    "kubesalt.salt.master",
    "kubesalt.salt.minion",
)
IMAGES_KEPT = "its images stay in the registry: the registry refuses deletes (docs/kubesalt-iso.md)"
TABLE_COLUMNS = ("VERSION", "NAME", "FLAVOUR", "KIND", "KUBERNETES", "CURRENT", "SOURCE")


class IsoError(BootstrapError):
    """kubesalt-iso refused or failed; the message says what and how to fix it."""


# -- decisions -----------------------------------------------------------------------


def sums_digest(root: str) -> str:
    """What identifies an archive's content: the sha256 of its signed SHA256SUMS."""
    return file_sha256(os.path.join(root, karchive.SUMS))[0]


def already_registered(
    registered: list[karchive.Archive],
    found: karchive.Archive,
    digest_of: Callable[[str], str] = sums_digest,
    register: str = karchive.REGISTER,
) -> karchive.Archive | None:
    """The registered archive that `found` is (same version, same SHA256SUMS), or None when
    its version is new. Another content under a registered version is refused: the nodes
    know an archive by its version alone (saltenv, repository path)."""
    for known in registered:
        if known.version != found.version:
            continue
        try:
            known_digest = digest_of(known.root)
        except OSError as err:
            raise IsoError(
                f"{register}: archive {known.version} (from {known.source}) cannot be read at "
                f"{known.root} ({err.strerror}); mount it again (mount -a), then add "
                f"{found.source} again"
            ) from err
        if known_digest != digest_of(found.root):
            raise IsoError(
                f"{found.source}: version {found.version} is already registered from "
                f"{known.source}, with another content (their {karchive.SUMS} differ); "
                f"nothing was changed. Rebuild this archive with another version, or remove "
                f"the registered one first (kubesalt-iso remove {found.version}) if the "
                "cluster does not run it"
            )
        return known
    return None


def removable(
    archives: list[karchive.Archive], current: str | None, version: str
) -> karchive.Archive:
    """The registered archive of `version`, when it may be removed: it exists and the
    cluster does not run it."""
    for found in archives:
        if found.version == version:
            break
    else:
        registered = ", ".join(a.version for a in archives) or "none"
        raise IsoError(
            f"VERSION {version}: no archive of that version is registered (registered: "
            f"{registered}); see kubesalt-iso list"
        )
    if version == current:
        raise IsoError(
            f"VERSION {version}: this is the current archive, the one the cluster runs "
            f"(saltenv {found.saltenv} of salt-master and the minions); move the cluster to "
            "another archive first (upgrade or downgrade), then remove this one"
        )
    return found


def kubernetes_version(found: karchive.Archive) -> str:
    """The Kubernetes version product.txt records (KUBERNETES_VERSION), `-` when the archive
    does not say, `?` when its product.txt cannot be read (not mounted)."""
    path = found.path(karchive.PRODUCT)
    try:
        with open(path, encoding="utf-8") as stream:
            fields = karchive.parse_product(stream.read(), path)
    except (OSError, BootstrapError):
        return "?"
    return fields.get(karchive.KUBERNETES_VERSION) or "-"


def list_rows(
    archives: list[karchive.Archive],
    current: str | None,
    kubernetes_of: Callable[[karchive.Archive], str] = kubernetes_version,
) -> list[tuple[str, ...]]:
    """One row per registered archive, in TABLE_COLUMNS order."""
    return [
        (
            a.version,
            a.name,
            a.flavour or "-",
            a.kind,
            kubernetes_of(a),
            "*" if a.version == current else "",
            a.source,
        )
        for a in archives
    ]


def table(rows: list[tuple[str, ...]]) -> str:
    """TABLE_COLUMNS and the rows, each column as wide as its widest cell."""
    return "\n".join(aligned(TABLE_COLUMNS, rows))


def taken_mount_point(registered: list[karchive.Archive], attached: mounts.Attached) -> None:
    """Refuse an ISO whose mount point (named after its file) holds another registered ISO:
    what is mounted there is that one, not the file given."""
    for known in registered:
        same_file = os.path.realpath(known.source) == os.path.realpath(attached.source)
        if attached.kind == "iso" and known.root == attached.root and not same_file:
            raise IsoError(
                f"{attached.source}: its mount point {attached.root} already holds archive "
                f"{known.version} from {known.source}; nothing was changed. Give this ISO "
                "file another name (the mount point is /srv/kubesalt/<file name>) and add it "
                "again"
            )


def without(archives: list[karchive.Archive], version: str) -> list[karchive.Archive]:
    return [a for a in archives if a.version != version]


# -- actions -------------------------------------------------------------------------


def serve_with_salt(ctx: cli.Context) -> saltout.StateSummary:
    """Converge SERVE_STATES with salt-call --local (the current archive's Salt tree)."""
    sls = ",".join(SERVE_STATES)
    return cli.salt_json(
        ctx, cli.local_state_apply(ctx, sls), f"salt-call --local state.apply {sls}"
    )


@dataclass
class Manager:
    """The subcommands' actions; the paths and the Salt run are replaceable for tests."""

    ctx: cli.Context
    register: str = field(default_factory=lambda: karchive.REGISTER)
    fstab: str = mounts.FSTAB
    serve: Callable[[cli.Context], saltout.StateSummary] = serve_with_salt

    def say(self, text: str) -> None:
        self.ctx.log.say(text)

    def _registered(self) -> tuple[list[karchive.Archive], str | None]:
        archives = karchive.load_register(self.register)
        if not archives:
            raise IsoError(
                f"{self.register} lists no archive: this is not a bootstrap node yet; run "
                "bootstrap.sh first"
            )
        return archives, karchive.load_current(self.register)

    def _serve(self) -> int:
        summary = self.serve(self.ctx)
        self.say(
            f"{PROG}: served by {', '.join(SERVE_STATES)}: {summary.total} states, "
            f"{len(summary.changed)} changed"
        )
        return len(summary.changed)

    def _examine(self, attached: mounts.Attached, registered: list[karchive.Archive]):
        """Verify a newly attached archive whole (as bootstrap.sh does) and decide:
        (archive, the registered one it already is, or None)."""
        cli.verify_archive(self.ctx, attached.root, report=lambda line: self.say(f"{PROG}: {line}"))
        found = karchive.describe(attached.source, attached.root, attached.kind)
        return found, already_registered(registered, found, register=self.register)

    def add(self, path: str) -> int:
        registered, current = self._registered()
        attached = mounts.attach(self.ctx.system, path)
        try:
            taken_mount_point(registered, attached)
            found, known = self._examine(attached, registered)
        except KubesaltError:
            if attached.mounted_now:
                mounts.unmount(self.ctx.system, attached.root)
            raise
        if known is not None:
            if attached.mounted_now and attached.root != known.root:
                mounts.unmount(self.ctx.system, attached.root)
            self.say(
                f"{PROG}: {known.name} {known.version} is already registered (from "
                f"{known.source}, same {karchive.SUMS})"
            )
            changed = self._serve()
            self.say(f"{PROG}: {'repaired what had drifted' if changed else 'nothing changed'}")
            return EXIT_OK
        mounts.persist(self.ctx.system, attached, self.fstab)
        self.ctx.system.write(self.register, karchive.register_text([*registered, found], current))
        self.say(
            f"{PROG}: registered {found.name} {found.version} at {found.root} ({found.saltenv})"
        )
        self._serve()
        self.say(
            f"{PROG}: added {found.version}; the current archive is still {current} "
            "(an upgrade moves the cluster to another one)"
        )
        return EXIT_OK

    def _removal(self, version: str):
        """(registered archives, current version, the archive to remove), or the refusal."""
        karchive.check_version(version, "VERSION", "give a version that kubesalt-iso list shows")
        archives, current = self._registered()
        return archives, current, removable(archives, current, version)

    def check(self, command: str, argument: str) -> None:
        """The refusals that need no lock: this is a bootstrap node, the version may go.
        add and remove decide again under the lock, from the register as it then is."""
        if command == "remove":
            self._removal(argument)
        else:
            self._registered()

    def remove(self, version: str) -> int:
        archives, current, found = self._removal(version)
        self.ctx.system.write(
            self.register, karchive.register_text(without(archives, version), current)
        )
        self.say(f"{PROG}: unregistered {found.name} {found.version} ({found.saltenv})")
        try:
            self._serve()
        except KubesaltError as err:
            # Registered again, so that the same command, run again, finishes the removal.
            self.ctx.system.write(self.register, karchive.register_text(archives, current))
            raise IsoError(
                f"{err}\n{found.version} is registered again; fix the cause, then run "
                f"kubesalt-iso remove {found.version} again"
            ) from err
        if mounts.detach(self.ctx.system, found, self.fstab):
            self.say(f"{PROG}: unmounted {found.root} and removed its line from {self.fstab}")
        self.say(f"{PROG}: removed {found.version}; {IMAGES_KEPT}")
        return EXIT_OK

    def list(self) -> int:
        archives, current = self._registered()
        print(table(list_rows(archives, current)))
        return EXIT_OK


# -- command line --------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Add, remove and list the kubesalt archives of the bootstrap node "
        "(docs/kubesalt-iso.md).",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print the commands and each state")
    p.add_argument(
        "--log-file", default=DEFAULT_LOG, help=f"log of everything (default {DEFAULT_LOG})"
    )
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = commands.add_parser("add", help="verify, mount, register and serve an archive")
    add.add_argument(
        "path", metavar="PATH", help="an ISO file, or a directory holding an extracted ISO"
    )
    cli.add_fingerprint_option(add, "the archive's")
    remove = commands.add_parser(
        "remove", help="stop serving an archive, unmount it, unregister it"
    )
    remove.add_argument("version", metavar="VERSION", help="the version kubesalt-iso list shows")
    commands.add_parser("list", help="the registered archives, the current one marked *")
    p.set_defaults(archive_fingerprint=None)  # remove and list verify nothing
    return p


def _validate(args: argparse.Namespace) -> None:
    """What the arguments alone can tell, before anything is read or changed."""
    problems = preflight.check_root(os.geteuid())
    if problems:
        raise IsoError(problems[0].replace("bootstrap.sh", PROG))
    if args.command == "add":
        if args.archive_fingerprint:
            karchive.normalize_fingerprint(args.archive_fingerprint)
        karchive.kind_of(args.path)


def run(args: argparse.Namespace, manager: Manager) -> int:
    """The subcommand, under the orchestration lock when it changes something (an upgrade
    must not see an archive come or go)."""
    if args.command == "list":
        return manager.list()
    argument = args.path if args.command == "add" else args.version
    manager.check(args.command, argument)
    held = lock.acquire(f"{PROG} {args.command} {argument}")
    try:
        return manager.add(args.path) if args.command == "add" else manager.remove(args.version)
    finally:
        if held:
            lock.release()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    log = open_log(PROG, args.log_file, args.verbose)
    if log is None:
        return EXIT_USAGE
    ctx = cli.Context(args=args, log=log, system=System(log))
    log.file(f"{PROG} {' '.join(argv if argv is not None else sys.argv[1:])}")
    try:
        _validate(args)
        return run(args, Manager(ctx))
    except KubesaltError as err:
        log.say(f"{PROG}: error: {err}")
        return EXIT_FAILED
    finally:
        log.close()
