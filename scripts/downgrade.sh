#!/usr/bin/env bash
# downgrade.sh: move the cluster back to the previous registered archive (docs/upgrade.md).
#
#   downgrade.sh [--dry-run]
#
# Run as root on the bootstrap node, from the scripts/ of the archive the cluster runs. The
# target is the newest registered archive older than it. --dry-run prints the plan
# (versions, stages, verdict) and changes nothing; it exits 1 when the verdict refuses.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=kubesalt-upgrade.sh
source "$(dirname "${BASH_SOURCE[0]}")/kubesalt-upgrade.sh"
run_plan downgrade "$@"
