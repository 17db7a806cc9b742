#!/usr/bin/env bash
# bootstrap.sh: make this machine the kubesalt bootstrap node (docs/bootstrap.md).
#
#   bootstrap.sh [-v] [--log-file PATH] [--skip-phases A,B] [--config PATH] [--archive PATH]
#
# Run as root from the mounted ISO or from an extracted ISO directory. This script is glue:
# it finds Debian's python3 and the kubesalt package (the archive's wheels, unpacked into a
# temporary directory so nothing on the machine changes before preflight), then runs the
# phases in Python (kubesalt.bootstrap).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=/usr/bin/python3

if [[ ! -x $python ]]; then
    echo "bootstrap.sh: $python not found; the bootstrap node needs Debian 12's python3" >&2
    exit 1
fi

# The archive root: bootstrap.sh sits at its top (and in scripts/ of the tree).
root=""
for candidate in "$here" "$here/.."; do
    if [[ -f $candidate/product.txt && -d $candidate/wheels ]]; then
        root=$(cd "$candidate" && pwd)
        break
    fi
done

workdir=$(mktemp -d /tmp/kubesalt-bootstrap.XXXXXX)
trap 'rm -rf "$workdir"' EXIT

if [[ -n $root ]]; then
    # kubesalt and the two libraries it needs, unpacked from the archive's wheelhouse.
    for wheel in kubesalt PyYAML netaddr; do
        mapfile -t found < <(find "$root/wheels" -maxdepth 1 -iname "${wheel}-*.whl" | sort)
        if ((${#found[@]} == 0)); then
            echo "bootstrap.sh: $root/wheels has no $wheel wheel; rebuild the archive with iso/build" >&2
            exit 1
        fi
        "$python" -m zipfile -e "${found[-1]}" "$workdir/lib"
    done
    export PYTHONPATH=$workdir/lib
elif [[ -d $here/../src/kubesalt ]]; then
    # A source checkout (development): the package from src/, libraries from the system.
    PYTHONPATH=$(cd "$here/../src" && pwd)
    export PYTHONPATH
else
    echo "bootstrap.sh: run me from a kubesalt archive (mounted or extracted ISO); $here is not one" >&2
    exit 1
fi

export PYTHONDONTWRITEBYTECODE=1
exec "$python" -m kubesalt.bootstrap "$@"
