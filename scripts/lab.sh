#!/usr/bin/env bash
# The kubesalt lab (DESIGN.md §9). Being built: today `up` prepares this machine and
# checks the lab configuration, then says what is not there yet. See docs/lab.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case ${1:-} in
up)
    "$repo/scripts/dev-env.sh"
    "$repo/.venv/bin/python" "$repo/scripts/kubesalt-check-config" "$repo/bootstrap.yaml"
    echo "lab.sh: node boot, ISO build and bootstrap are not implemented yet (issues 4 and 6)" >&2
    exit 1
    ;;
*)
    echo "usage: lab.sh up" >&2
    exit 2
    ;;
esac
