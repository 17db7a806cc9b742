"""What kubesalt's Salt loader modules share: one translation of errors, one pillar check.

Salt is imported only when an error is raised, so the rest of the package stays usable
without Salt (the scripts, the ISO build, the tests of pure code).
"""

from __future__ import annotations

from kubesalt.errors import KubesaltError

NO_PILLAR = (
    "The pillar has no 'kubesalt' key: is the kubesalt ext_pillar configured, "
    "and /etc/kubesalt/bootstrap.yaml valid? Run kubesalt_config.validate."
)


def _command_error(message: str):
    from salt.exceptions import CommandExecutionError  # noqa: PLC0415 (only with Salt)

    return CommandExecutionError(message)


def call(func, *args, **kwargs):
    """Run `func`; a KubesaltError becomes the CommandExecutionError Salt reports."""
    try:
        return func(*args, **kwargs)
    except KubesaltError as err:
        raise _command_error(f"{type(err).__name__}: {err}") from err


def config_from_pillar(pillar, required: tuple[str, ...] = ()) -> dict:
    """The normalized configuration from pillar `kubesalt`, or an error saying what to check.

    `required` names top-level keys the caller cannot work without (a pillar holding only
    `kubesalt:nodes` has no validated configuration).
    """
    cfg = pillar.get("kubesalt")
    if not isinstance(cfg, dict) or not cfg or any(key not in cfg for key in required):
        raise _command_error(NO_PILLAR)
    return cfg
