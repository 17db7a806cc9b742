"""Run a kubesalt script with the project's virtualenv python and a checkout's own package.

kubesalt-check-config, kubesalt-backup and render-cluster start with whatever python3 comes
first on PATH, which may lack PyYAML, netaddr or kubesalt itself. This code runs before
kubesalt can be imported, so it cannot live in src/kubesalt: it sits next to the scripts
(the ISO carries the whole scripts/ directory). A script sets sys.dont_write_bytecode (it may
run from the read-only mounted ISO), puts its own directory first on sys.path, imports this
module and calls run_in_project_venv().
"""

import os
import sys

# The Salt virtualenv bootstrap.sh creates on a node (kubesalt.bootstrap.services.VENV).
SALT_VENV = "/opt/kubesalt/salt"


def _python_of(venv):
    python = os.path.join(venv, "bin", "python")
    return python if os.access(python, os.X_OK) else None


def virtualenv_python(scripts_dir, salt_venv):
    """The project's virtualenv python: $KUBESALT_VENV's when set (None when it has none: the
    caller chose), else the checkout's .venv, else, when salt_venv, the node's Salt virtualenv.
    """
    if os.environ.get("KUBESALT_VENV"):
        return _python_of(os.environ["KUBESALT_VENV"])
    venvs = [os.path.join(scripts_dir, "..", ".venv")] + ([SALT_VENV] if salt_venv else [])
    for venv in venvs:
        if _python_of(venv):
            return _python_of(venv)
    return None


def reexec_mark(script):
    """The environment variable set once `script` re-ran itself (KUBESALT_BACKUP_PYTHON for
    kubesalt-backup): one per script, so a script that another one starts still moves."""
    name = os.path.basename(script).removeprefix("kubesalt-")
    return "KUBESALT_" + name.upper().replace("-", "_") + "_PYTHON"


def run_in_virtualenv(script, argv, salt_venv):
    """Re-run `script` with `argv` under the project's virtualenv python; return when there is
    none, this is it, or the script already re-ran itself (a python that is a wrapper around
    another one would otherwise re-run it forever)."""
    python = virtualenv_python(os.path.dirname(script), salt_venv)
    mark = reexec_mark(script)
    if python is None or os.environ.get(mark):
        return
    if os.path.realpath(sys.prefix) == os.path.realpath(os.path.dirname(os.path.dirname(python))):
        return  # already running in it
    os.environ[mark] = python
    os.execv(python, [python, script, *argv])


def put_checkout_package_first(scripts_dir):
    """Put ../src first on sys.path when it holds the kubesalt package (a checkout: its own
    code, ahead of any installed kubesalt; the ISO carries no src/, a node's Salt virtualenv
    has kubesalt installed); return that directory either way."""
    src = os.path.join(os.path.dirname(scripts_dir), "src")
    if os.path.isdir(os.path.join(src, "kubesalt")):
        sys.path.insert(0, src)
    return src


def run_in_project_venv(script_file, argv, *, salt_venv):
    """Re-run the script (its __file__, with `argv`) under the project's virtualenv python once
    (see virtualenv_python), then put a checkout's kubesalt package first on sys.path; return
    the ../src directory looked at, for error messages."""
    script = os.path.realpath(script_file)
    run_in_virtualenv(script, argv, salt_venv)
    return put_checkout_package_first(os.path.dirname(script))
