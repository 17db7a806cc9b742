"""The options of every package state: the archive's pinned version, from the archive's
repository alone, no refresh of other sources (``kubesalt.packages``; the pins come from
the pillar ``kubesalt_packages``).
"""

try:
    from kubesalt import packages as _packages
    from kubesalt import saltglue as _glue

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_packages"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def install_options(*names):
    """
    Return the ``pkg.installed`` arguments that install ``names`` at the versions the
    archive pins, from its repository only: ``pkgs`` ([{name: version}]), ``fromrepo``,
    ``refresh`` (false) and ``install_recommends`` (false). A package the archive does not
    pin is an error naming it.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_packages.install_options kubelet kubectl
    """
    pins = __pillar__.get("kubesalt_packages") or {}  # noqa: F821 (Salt dunder)
    saltenv = pins.get("saltenv") or __opts__.get("saltenv")  # noqa: F821
    family = __grains__["os_family"]  # noqa: F821
    return _glue.call(_packages.install_options, pins, names, family, saltenv)
