#!/usr/bin/env bash
# downgrade.sh: move the cluster back to the previous registered archive (docs/upgrade.md).
#
#   downgrade.sh [--dry-run] [--skip-phases A,B] [--log-file PATH] [-v]
#
# Run as root on the bootstrap node, from the scripts/ of the archive the cluster runs. The
# target is the newest registered archive older than it. It prints the plan (versions,
# stages, verdict) and exits 1 when the verdict refuses; --dry-run stops there. Otherwise it
# moves the bootstrap node's Salt back, then runs the downgrade orchestration; run it again
# after a failure: it continues.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=kubesalt-upgrade.sh
source "$(dirname "${BASH_SOURCE[0]}")/kubesalt-upgrade.sh"
run_plan downgrade "$@"
