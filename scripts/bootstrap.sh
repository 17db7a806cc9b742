#!/usr/bin/env bash
# bootstrap.sh: make this machine the kubesalt bootstrap node (docs/bootstrap.md).
#
#   bootstrap.sh [-v] [--log-file PATH] [--skip-phases A,B] [--config PATH] [--archive PATH]
#                [--archive-fingerprint FPR] [--restore BACKUP]
#
# Run as root from the mounted ISO or from an extracted ISO directory. This script is glue:
# it finds Debian's python3 and the kubesalt package (the archive's wheels, unpacked into a
# temporary directory so nothing on the machine changes before preflight), then runs the
# phases in Python (kubesalt.bootstrap).
#
# Nothing of the archive runs before it is checked: the signature of SHA256SUMS (gpgv, with
# the archive's key; with --archive-fingerprint or KUBESALT_ARCHIVE_FINGERPRINT, the key
# must be that one), product.txt's VERSION and wheel names, and the sha256 of product.txt
# and of the wheels unpacked here. The Python phases then check every file of the archive.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=/usr/bin/python3
# The same patterns as kubesalt.bootstrap.archive (a unit test compares them).
version_pattern='^[0-9]+\.[0-9]+\.[0-9]+([-+.][0-9A-Za-z]+)*$'
wheel_pattern='^wheels/[A-Za-z0-9_.+-]+\.whl$'
keyring=kubesalt-archive-keyring.gpg

fail() {
    echo "bootstrap.sh: $*" >&2
    exit 1
}

if [[ ! -x $python ]]; then
    fail "$python not found; the bootstrap node needs Debian 12's python3"
fi

# The operator's fingerprint of the archive key (the option wins over the environment).
fingerprint=${KUBESALT_ARCHIVE_FINGERPRINT:-}
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
        --archive-fingerprint=*) fingerprint=${args[i]#*=} ;;
        --archive-fingerprint) fingerprint=${args[i + 1]:-} ;;
    esac
done
if [[ -n $fingerprint ]]; then
    fingerprint=${fingerprint// /}
    fingerprint=${fingerprint^^}
    fingerprint=${fingerprint#0X}
    if [[ ! $fingerprint =~ ^[0-9A-F]{40}$ ]]; then
        fail "archive key fingerprint is not 40 hex digits; give the full fingerprint the ISO build printed"
    fi
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

# Every file this script reads or runs is first copied to $checked, and only the copy is
# checked and used: a file changed in the archive meanwhile changes nothing.
checked=$workdir/checked

# Check the signature of SHA256SUMS with the archive's key (and the operator's fingerprint).
verify_signature() {
    local part status signers
    mkdir "$checked"
    for part in "$keyring" SHA256SUMS SHA256SUMS.asc; do
        [[ -f $root/$part ]] || fail "$root/$part is missing: the archive cannot be verified; copy or extract the ISO again"
        cp -- "$root/$part" "$checked/$part"
    done
    command -v gpgv >/dev/null || fail "gpgv not found: install Debian's gpgv package (apt needs it too)"
    if ! status=$(gpgv --status-fd 1 --keyring "$checked/$keyring" "$checked/SHA256SUMS.asc" \
        "$checked/SHA256SUMS" 2>"$workdir/gpgv.err"); then
        fail "$root/SHA256SUMS.asc is not a good signature of SHA256SUMS by the key in $keyring" \
            "($(tail -n 3 "$workdir/gpgv.err" | tr '\n' ' ')); the archive is damaged or was changed: copy or extract the ISO again"
    fi
    signers=$(awk '$1 == "[GNUPG:]" && $2 == "VALIDSIG" { print toupper($12) }' <<<"$status")
    [[ -n $signers ]] || fail "gpgv found no valid signature in $root/SHA256SUMS.asc"
    if [[ -n $fingerprint ]] && ! grep -qxF "$fingerprint" <<<"$signers"; then
        fail "$root/SHA256SUMS is signed by key $signers, not by $fingerprint (the fingerprint you gave): this archive was not built with the key you expect"
    fi
}

# Copy a file of the archive (relative path) to $checked and check the copy against the
# signed SHA256SUMS: listed once, same sha256.
verify_listed() {
    local rel=$1 copy=$checked/${1##*/} expected actual
    expected=$(awk -v rel="$rel" 'length($0) > 66 && substr($0, 65, 2) == "  " && substr($0, 67) == rel { print substr($0, 1, 64) }' "$checked/SHA256SUMS")
    if [[ ! $expected =~ ^[0-9a-f]{64}$ ]]; then
        fail "$rel is not listed once in $root/SHA256SUMS; the archive is damaged or was changed"
    fi
    [[ -f $root/$rel ]] || fail "$root/$rel is missing; copy or extract the ISO again"
    cp -- "$root/$rel" "$copy"
    actual=$(sha256sum <"$copy" | cut -d' ' -f1)
    if [[ $actual != "$expected" ]]; then
        fail "$root/$rel differs from SHA256SUMS; the archive is damaged or was changed: copy or extract the ISO again"
    fi
}

# One KEY=value field of the checked product.txt (exactly one line must hold it).
product_field() {
    local lines
    lines=$(grep -c "^$1=" "$checked/product.txt" || true)
    [[ $lines == 1 ]] || fail "$root/product.txt holds $lines $1= lines, not one; rebuild the archive with iso/build"
    sed -n "s/^$1=//p" "$checked/product.txt"
}

if [[ -n $root ]]; then
    verify_signature
    verify_listed product.txt
    version=$(product_field VERSION)
    if [[ ! $version =~ $version_pattern ]] || ((${#version} > 64)); then
        fail "$root/product.txt: VERSION is not a kubesalt version (digits like 1.2.3, then optional -rc1, +lab or .dev2 parts)"
    fi
    kubesalt_wheel=$(product_field KUBESALT_WHEEL)
    read -r -a library_wheels <<<"$(product_field LIBRARY_WHEELS)"
    # kubesalt and the two libraries it needs, unpacked from the archive's wheelhouse.
    for wheel in "$kubesalt_wheel" "${library_wheels[@]}"; do
        if [[ ! $wheel =~ $wheel_pattern ]]; then
            fail "$root/product.txt names ${wheel@Q}, not a file wheels/<name>.whl; rebuild the archive with iso/build"
        fi
        verify_listed "$wheel"
        "$python" -m zipfile -e "$checked/${wheel##*/}" "$workdir/lib"
    done
    export PYTHONPATH=$workdir/lib
elif [[ -d $here/../src/kubesalt ]]; then
    # A source checkout (development): the package from src/, libraries from the system.
    PYTHONPATH=$(cd "$here/../src" && pwd)
    export PYTHONPATH
else
    fail "run me from a kubesalt archive (mounted or extracted ISO); $here is not one"
fi

export PYTHONDONTWRITEBYTECODE=1
# Not exec: the EXIT trap must still remove $workdir once the phases are done.
status=0
"$python" -m kubesalt.bootstrap "$@" || status=$?
exit "$status"
