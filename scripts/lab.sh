#!/usr/bin/env bash
# The kubesalt lab (docs/lab.md):
#   lab.sh up | down | status | exec NODE CMD... | kill NODE | start NODE | add NODE [ROLES]
# `up` installs what this machine lacks (scripts/dev-env.sh), builds the lab ISO and a
# rootfs, boots the nodes on a private bridge and runs bootstrap.sh on the bootstrap node.
# The logic is Python (src/kubesalt_lab); this is the wrapper.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${KUBESALT_VENV:-$repo/.venv}
if [[ ${1:-} == up ]]; then
    "$repo/scripts/dev-env.sh"
fi
if [[ ! -x $venv/bin/python ]]; then
    echo "lab.sh: $venv is missing; run scripts/dev-env.sh (or lab.sh up) first" >&2
    exit 1
fi
PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}" exec "$venv/bin/python" -m kubesalt_lab "$@"
