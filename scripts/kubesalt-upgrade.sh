# shellcheck shell=bash
# kubesalt-upgrade.sh: what upgrade.sh and downgrade.sh share (docs/upgrade.md). Sourced,
# never run: `run_plan DIRECTION ARGS...`.
#
# The plan runs the kubesalt of the archive this file comes from, with the bootstrap node's
# Salt virtualenv python (Salt's LocalClient and kubesalt's dependencies are there): the
# archive's kubesalt wheel, copied and checked against the archive's SHA256SUMS, goes first
# on PYTHONPATH (a pure-Python wheel is importable as it is). The archive as a whole was
# verified, signature included, when kubesalt-iso registered it; the plan refuses an
# archive that is not registered.

salt_python=${KUBESALT_SALT_PYTHON:-/opt/kubesalt/salt/bin/python}

run_plan() {
    local direction=$1 script=$1.sh here root wheel expected actual workdir status=0
    shift
    fail() {
        echo "$script: $*" >&2
        exit 1
    }
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    root=$(cd "$here/.." && pwd)
    [[ -f $root/product.txt && -f $root/SHA256SUMS ]] ||
        fail "$root is not a kubesalt archive (no product.txt or SHA256SUMS): run $script from the scripts/ of a mounted or extracted kubesalt ISO"
    [[ -x $salt_python ]] ||
        fail "$salt_python not found: run $script on the bootstrap node, where bootstrap.sh installed Salt"
    wheel=$(sed -n 's/^KUBESALT_WHEEL=//p' "$root/product.txt")
    [[ $wheel =~ ^wheels/[A-Za-z0-9_.+-]+\.whl$ && $(grep -c '^KUBESALT_WHEEL=' "$root/product.txt") == 1 ]] ||
        fail "$root/product.txt does not name one kubesalt wheel (KUBESALT_WHEEL=wheels/<name>.whl); rebuild the archive with iso/build"
    expected=$(awk -v rel="$wheel" 'substr($0, 67) == rel && substr($0, 65, 2) == "  " { print substr($0, 1, 64) }' "$root/SHA256SUMS")
    [[ $expected =~ ^[0-9a-f]{64}$ ]] ||
        fail "$wheel is not listed once in $root/SHA256SUMS; the archive is damaged: copy or extract the ISO again"
    workdir=$(mktemp -d /tmp/kubesalt-"$direction".XXXXXX)
    # shellcheck disable=SC2064  # $workdir is set now, and must be removed at exit
    trap "rm -rf '$workdir'" EXIT
    cp -- "$root/$wheel" "$workdir/" || fail "$root/$wheel cannot be read; copy or extract the ISO again"
    actual=$(sha256sum <"$workdir/${wheel##*/}" | cut -d' ' -f1)
    [[ $actual == "$expected" ]] ||
        fail "$root/$wheel differs from SHA256SUMS; the archive is damaged or was changed: copy or extract the ISO again"
    PYTHONPATH=$workdir/${wheel##*/}${PYTHONPATH:+:$PYTHONPATH} PYTHONDONTWRITEBYTECODE=1 \
        "$salt_python" -m kubesalt.upgrade "$direction" "$root" "$@" || status=$?
    return "$status"
}
