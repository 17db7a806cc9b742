"""`upgrade.sh` and `downgrade.sh` (docs/upgrade.md): gather the facts, print the plan and
its verdict; without --dry-run, once the verdict allows it, move the cluster
(kubesalt.upgrade.move). The scripts run `python -m kubesalt.upgrade DIRECTION ROOT
[options]` with the kubesalt of the archive they come from.

Exit status: 0 done (with --dry-run: the verdict allows it), or nothing to do; 1 the
verdict refuses, the facts cannot be gathered, or a phase of the move failed (named: run
it again, it continues); 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from kubesalt import config as kconfig
from kubesalt import lock
from kubesalt.bootstrap import archive as karchive
from kubesalt.bootstrap import preflight
from kubesalt.bootstrap.phases import PhaseError, run_phases
from kubesalt.bootstrap.system import System, host_addresses, open_log
from kubesalt.errors import KubesaltError
from kubesalt.orchestrate.options import check_skip
from kubesalt.orchestrate.rpc import Rpc
from kubesalt.orchestrate.tables import phase_names
from kubesalt.upgrade import archives, facts, move, plan

DEFAULT_LOG = "/var/log/kubesalt/upgrade.log"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parser(direction: str) -> argparse.ArgumentParser:
    """The operator's options of `<direction>.sh`."""
    p = argparse.ArgumentParser(
        prog=f"{direction}.sh",
        description=f"Print the {direction} plan of the cluster and its verdict; without "
        f"--dry-run, {direction} the cluster when the verdict allows it.",
    )
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and the verdict; change nothing")  # fmt: skip
    p.add_argument("--skip-phases", metavar="A,B",
                   help=f"phases of the {direction} orchestration to skip, comma-separated: "
                   + ", ".join(phase_names(direction)))  # fmt: skip
    p.add_argument("--log-file", default=DEFAULT_LOG,
                   help=f"log of everything (default {DEFAULT_LOG})")  # fmt: skip
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print the commands and each state")  # fmt: skip
    return p


def local_client():
    """Salt's LocalClient of the salt-master on this node (imported here: the plan's
    pure modules do not need Salt)."""
    import salt.client  # noqa: PLC0415

    return salt.client.LocalClient()


def main(argv: list[str] | None = None, client_factory=local_client, sources=None,
         mover=None) -> int:  # fmt: skip
    """`DIRECTION ROOT [options]`: the scripts give the direction and their archive's root.
    `sources`: where the bootstrap node's files are (facts.Sources; tests move them);
    `mover`: what moves the cluster (move_cluster; tests replace it)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] not in archives.DIRECTIONS:
        print(f"usage: python -m kubesalt.upgrade {{{','.join(archives.DIRECTIONS)}}} "
              "ARCHIVE_ROOT [--dry-run]; run upgrade.sh or downgrade.sh instead",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    direction, root = argv[:2]
    args = parser(direction).parse_args(argv[2:])
    name = f"{direction}.sh"
    try:
        skip = check_skip(direction, args.skip_phases)
    except KubesaltError as err:
        print(f"{name}: --skip-phases: {err}", file=sys.stderr)
        return EXIT_USAGE
    if os.geteuid() != 0:
        print(f"{name}: error: run it as root on the bootstrap node (it asks the "
              "salt-master and reads /etc/kubesalt)", file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    sources = sources or facts.Sources()
    try:
        found = facts.gather(direction, root, Rpc(client_factory()), sources)
    except (KubesaltError, OSError) as err:
        print(f"{name}: error: the plan's facts cannot be gathered: {err}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as err:
        if type(err).__module__.split(".")[0] != "salt":
            raise
        # Salt's own errors (SaltClientError: the master does not answer), named, no traceback.
        print(f"{name}: error: Salt: {type(err).__name__}: {err}; check that salt-master runs "
              "on this node (systemctl status salt-master)", file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    computed = plan.compute(found)
    print(plan.text(computed), end="")
    if computed.refused:
        return EXIT_FAILED
    if args.dry_run or computed.nothing_to_do:
        return EXIT_OK
    sys.stdout.flush()
    return (mover or move_cluster)(direction, computed, found, sources, skip, args)


def move_context(direction, computed: plan.Plan, found: plan.Facts, sources: facts.Sources,
                 skip, log, system, addresses=host_addresses) -> move.MoveContext:  # fmt: skip
    """What the move's phases need: bootstrap.sh's context (the configuration, this node's
    control-plane IP, the registered archives, the target as the current one) and the
    plan's versions."""
    cfg = kconfig.load_file(sources.config)
    _, chosen = preflight.check_addresses(cfg, addresses())
    registered = karchive.load_register(sources.register)
    target = next(a for a in registered if a.version == computed.target.version)
    return move.MoveContext(
        args=argparse.Namespace(config=sources.config, archive_fingerprint=None),
        log=log,
        system=system,
        cfg=cfg,
        control_plane_ip=chosen.get("controlPlane", ""),
        archives=registered,
        current=target,
        direction=direction,
        plan=computed,
        current_release=found.current_versions.kubernetes,
        target_release=found.target_versions.kubernetes,
        skip=list(skip),
        inventory_dir=sources.inventory_dir,
        register=sources.register,
        master_config=sources.master_config,
        restart_pending=sources.restart_pending,
        lock_path=sources.lock,
    )


def move_cluster(direction, computed, found, sources, skip, args,
                 borrowed=move.bootstrap_phases, system_factory=System,
                 addresses=host_addresses) -> int:  # fmt: skip
    """Run the move's phases (kubesalt.upgrade.move), each printed with its duration, to
    the terminal and the log, under the orchestration lock until the orchestration takes
    it; the first failure stops them, named."""
    name = f"{direction}.sh"
    log = open_log(name, args.log_file, args.verbose)
    if log is None:
        return EXIT_USAGE
    # The scripts put the archive's kubesalt wheel on PYTHONPATH for this process only:
    # pip and Salt must see their own virtualenv.
    os.environ.pop("PYTHONPATH", None)
    start = time.monotonic()
    try:
        lock.acquire(f"{name} (moving the bootstrap node's Salt)", sources.lock)
        ctx = move_context(direction, computed, found, sources, skip, log,
                           system_factory(log), addresses)  # fmt: skip
        report = run_phases(move.phases(direction, borrowed), ctx, announce=log.say)
        log.say(f"{name}: done in {time.monotonic() - start:.1f}s: the cluster runs kubesalt "
                f"{computed.target.version} ({'changes made' if report.changed else 'no changes'}). "
                f"Log: {args.log_file}")  # fmt: skip
        return EXIT_OK
    except PhaseError as err:
        log.say(f"{name}: {err}")
        log.say(f"{name}: stopped after {time.monotonic() - start:.1f}s; run it again once "
                f"the cause is fixed: it continues where it stopped. Log: {args.log_file}")  # fmt: skip
        return EXIT_FAILED
    except KubesaltError as err:  # LockBusy, InvalidConfig, BootstrapError
        log.say(f"{name}: error: {err}")
        return EXIT_FAILED
    finally:
        lock.release(sources.lock)
        log.close()
