"""Validate and read the kubesalt configuration (bootstrap.yaml).

A thin wrapper over the `kubesalt.config` package: the same validation that the
ext_pillar and `scripts/kubesalt-check-config` use.
"""

from salt.exceptions import CommandExecutionError

try:
    from kubesalt import config as _config
    from kubesalt.errors import KubesaltError

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_config"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def validate(path=None):
    """
    Validate a bootstrap.yaml file and report every problem at once.

    Returns a dict: ``valid`` (bool), ``problems`` (one line each: the key, the
    bad value, what is wrong and the fix) and, when valid, ``summary``.

    path
        The file to check (default ``/etc/kubesalt/bootstrap.yaml``).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_config.validate
        salt-call kubesalt_config.validate path=/root/bootstrap.yaml
    """
    path = path or _config.DEFAULT_PATH
    try:
        cfg = _config.load_file(path)
    except _config.InvalidConfig as err:
        return {"valid": False, "path": path, "problems": [str(p) for p in err.problems]}
    return {"valid": True, "path": path, "problems": [], "summary": _config.summary(cfg)}


def load(path=None):
    """
    Return the normalized configuration (defaults applied) of a valid file.

    Raises an error listing every problem when the file is not valid.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_config.load
    """
    try:
        return _config.load_file(path or _config.DEFAULT_PATH)
    except KubesaltError as err:
        raise CommandExecutionError(f"{type(err).__name__}: {err}") from err
