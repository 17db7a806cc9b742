#!/usr/bin/env bash
# Install what this project's tests need on a Debian 12 machine, pinned.
# Idempotent: a second run only checks. Used by scripts/test.sh and .ci/run.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${KUBESALT_VENV:-$repo/.venv}

# Debian 12 packages. Versions pinned where behaviour matters to the tests.
apt_packages=(
    python3-venv python3-dev gcc
    shellcheck
    iproute2 procps psmisc nftables
    etcd-server=3.4.23-4+b4 etcd-client=3.4.23-4+b4
    keepalived=1:2.2.7-1+b2 firewalld=1.3.3-1~deb12u2
    nginx-light
    systemd-container mmdebstrap
    xorriso createrepo-c dnf rpm dpkg-dev apt-utils gnupg
    skopeo umoci docker-registry=2.8.2+ds1-1 fuseiso
    openssh-client openssh-server sshpass
)

missing=()
for spec in "${apt_packages[@]}"; do
    name=${spec%%=*}
    want=${spec#*=}
    have=$(dpkg-query -W -f '${db:Status-Status} ${Version}' "$name" 2>/dev/null || true)
    if [[ $have != installed* ]] || { [[ $spec == *=* ]] && [[ $have != "installed $want" ]]; }; then
        missing+=("$spec")
    fi
done
if ((${#missing[@]})); then
    echo "dev-env: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Services must not start on the test machine just because a package was installed.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

# The Salt virtualenv uses Debian's python3, as on the nodes.
if [[ ! -x $venv/bin/python ]]; then
    /usr/bin/python3 -m venv "$venv"
fi
stamp=$venv/.kubesalt-requirements
want_stamp=$(cat "$repo/requirements.txt" "$repo/constraints.txt" "$repo/pyproject.toml" | sha256sum)
if [[ ! -f $stamp ]] || [[ $(cat "$stamp") != "$want_stamp" ]]; then
    echo "dev-env: installing Python requirements into $venv"
    log=$(mktemp)
    if ! { "$venv/bin/pip" install -q --disable-pip-version-check \
        -r "$repo/requirements.txt" -c "$repo/constraints.txt" &&
        "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -e "$repo"; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "dev-env: pip install failed (output above)" >&2
        exit 1
    fi
    rm -f "$log"
    "$venv/bin/python" -c "import salt, kubesalt, netaddr, yaml, kubernetes, testinfra, saltfactories"
    echo "$want_stamp" >"$stamp"
fi
