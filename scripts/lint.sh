#!/usr/bin/env bash
# Lint everything: ruff (Python), shellcheck (shell), yamllint --strict (YAML).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv=${KUBESALT_VENV:-$repo/.venv}

tracked() {
    git ls-files --cached --others --exclude-standard -- "$@"
}

# Extension-less scripts whose shebang names the interpreter matching $1.
scripts_for() {
    local file
    while read -r file; do
        if [[ -f $file && $(basename "$file") != *.* ]] && head -n1 "$file" | grep -q "^#!.*$1"; then
            echo "$file"
        fi
    done < <(tracked scripts iso .ci)
}

mapfile -t python_files < <(tracked '*.py'; scripts_for python)
mapfile -t shell_files < <(tracked '*.sh'; scripts_for 'bash$')
mapfile -t yaml_files < <(tracked '*.yaml' '*.yml' .yamllint)

echo "lint: ruff check (${#python_files[@]} files)"
"$venv/bin/ruff" check "${python_files[@]}"
echo "lint: ruff format --check"
"$venv/bin/ruff" format --check "${python_files[@]}"
echo "lint: shellcheck (${#shell_files[@]} files)"
shellcheck "${shell_files[@]}"
echo "lint: yamllint --strict (${#yaml_files[@]} files)"
"$venv/bin/yamllint" --strict "${yaml_files[@]}"
echo "lint: ok"
