"""`upgrade.sh` and `downgrade.sh` (docs/upgrade.md): gather the facts, print the plan and
its verdict. The scripts run `python -m kubesalt.upgrade DIRECTION ROOT [--dry-run]`
with the kubesalt of the archive they come from.

Exit status: 0 the verdict allows it (or there is nothing to do); 1 the verdict refuses, or
the facts cannot be gathered; 2 bad usage; 3 the plan allows it, but the upgrade
orchestration is not in this release (nothing was changed).
"""

from __future__ import annotations

import argparse
import os
import sys

from kubesalt.errors import KubesaltError
from kubesalt.orchestrate.rpc import Rpc
from kubesalt.upgrade import archives, facts, plan

NOT_IN_THIS_RELEASE = 3


def parser(direction: str) -> argparse.ArgumentParser:
    """The operator's options of `<direction>.sh`."""
    p = argparse.ArgumentParser(
        prog=f"{direction}.sh",
        description=f"Print the {direction} plan of the cluster and its verdict.",
    )
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and the verdict; change nothing")  # fmt: skip
    return p


def local_client():
    """Salt's LocalClient of the salt-master on this node (imported here: the plan's
    pure modules do not need Salt)."""
    import salt.client  # noqa: PLC0415

    return salt.client.LocalClient()


def main(argv: list[str] | None = None, client_factory=local_client, sources=None) -> int:
    """`DIRECTION ROOT [options]`: the scripts give the direction and their archive's root.
    `sources`: where the bootstrap node's files are (facts.Sources; tests move them)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] not in archives.DIRECTIONS:
        print(f"usage: python -m kubesalt.upgrade {{{','.join(archives.DIRECTIONS)}}} "
              "ARCHIVE_ROOT [--dry-run]; run upgrade.sh or downgrade.sh instead",
              file=sys.stderr)  # fmt: skip
        return 2
    direction, root = argv[:2]
    args = parser(direction).parse_args(argv[2:])
    name = f"{direction}.sh"
    if os.geteuid() != 0:
        print(f"{name}: error: run it as root on the bootstrap node (it asks the "
              "salt-master and reads /etc/kubesalt)", file=sys.stderr)  # fmt: skip
        return 1
    try:
        found = facts.gather(direction, root, Rpc(client_factory()), sources)
    except (KubesaltError, OSError) as err:
        print(f"{name}: error: the plan's facts cannot be gathered: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        if type(err).__module__.split(".")[0] != "salt":
            raise
        # Salt's own errors (SaltClientError: the master does not answer), named, no traceback.
        print(f"{name}: error: Salt: {type(err).__name__}: {err}; check that salt-master runs "
              "on this node (systemctl status salt-master)", file=sys.stderr)  # fmt: skip
        return 1
    computed = plan.compute(found)
    print(plan.text(computed), end="")
    if computed.refused:
        return 1
    if args.dry_run or computed.nothing_to_do:
        return 0
    print(f"{name}: the {direction} orchestration is not in this release: nothing was "
          f"changed. The plan above is what it will do; {name} --dry-run prints it alone "
          "(docs/upgrade.md)", file=sys.stderr)  # fmt: skip
    return NOT_IN_THIS_RELEASE
