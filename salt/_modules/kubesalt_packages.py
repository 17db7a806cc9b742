"""The options of every package state: the archive's pinned version, from the archive's
repository alone, no refresh of other sources (``kubesalt.packages``; the pins come from
the pillar ``kubesalt_packages``).
"""

try:
    from kubesalt import packages as _packages
    from kubesalt import saltglue as _glue
    from kubesalt.kubeadm import releases as _releases

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
    pins, family, saltenv = _pins()
    return _glue.call(_packages.install_options, pins, names, family, saltenv)


def release_hold(*names):
    """
    Return None when the archive pins the Kubernetes packages among ``names`` (kubelet,
    kubectl) at the release this node renders (``kubesalt:nodes:<id>:kubernetes_version``,
    else the cluster's): they are installed as pinned. Otherwise they stay as installed and
    the return says so, ``{"result": ..., "comment": ...}``: result True when they are
    installed at the node's release (in the middle of an upgrade, before the node's stage),
    False when one is missing or at another release, with what to do.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_packages.release_hold kubelet kubectl
    """
    pins, family, saltenv = _pins()
    cfg = _glue.config_from_pillar(__pillar__)  # noqa: F821
    release = _glue.call(_releases.version_of, cfg, __grains__["id"])  # noqa: F821
    return _glue.call(
        _packages.release_hold,
        pins,
        names,
        family,
        saltenv,
        release,
        __salt__["pkg.version"],  # noqa: F821
    )


def _pins():
    """The pillar's pins, the node's os_family and the archive's saltenv."""
    pins = __pillar__.get("kubesalt_packages") or {}  # noqa: F821 (Salt dunder)
    saltenv = pins.get("saltenv") or __opts__.get("saltenv")  # noqa: F821
    return pins, __grains__["os_family"], saltenv  # noqa: F821
