#!/usr/bin/env bash
# upgrade.sh: move the cluster to the kubesalt archive this script comes from (docs/upgrade.md).
#
#   upgrade.sh [--dry-run] [--skip-phases A,B] [--log-file PATH] [-v]
#
# Run as root on the bootstrap node, from the scripts/ of the new archive, registered first
# (kubesalt-iso add). It prints the plan (versions, stages, verdict) and exits 1 when the
# verdict refuses; --dry-run stops there. Otherwise it moves the bootstrap node's Salt to the
# new archive, then runs the upgrade orchestration; run it again after a failure: it continues.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=kubesalt-upgrade.sh
source "$(dirname "${BASH_SOURCE[0]}")/kubesalt-upgrade.sh"
run_plan upgrade "$@"
