#!/usr/bin/env bash
# upgrade.sh: move the cluster to the kubesalt archive this script comes from (docs/upgrade.md).
#
#   upgrade.sh [--dry-run]
#
# Run as root on the bootstrap node, from the scripts/ of the new archive, registered first
# (kubesalt-iso add). --dry-run prints the plan (versions, stages, verdict) and changes
# nothing; it exits 1 when the verdict refuses.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=kubesalt-upgrade.sh
source "$(dirname "${BASH_SOURCE[0]}")/kubesalt-upgrade.sh"
run_plan upgrade "$@"
