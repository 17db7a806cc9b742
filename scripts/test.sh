#!/usr/bin/env bash
# Run kubesalt's test suite: installs what is missing (pinned), then pytest.
# Usage: scripts/test.sh [PYTEST ARGS...]     (as root: integration tests build
# network namespaces and run real etcd, keepalived, firewalld, nginx, Salt)
# Benchmarks marked slow_benchmark run only with --run-slow-benchmarks (docs/benchmarks.md).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
    echo "test.sh: run as root (integration tests create network namespaces)" >&2
    exit 2
fi
"$repo/scripts/dev-env.sh"
cd "$repo"
exec "$repo/.venv/bin/python" -m pytest "$@"
