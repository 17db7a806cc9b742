"""ext_pillar `kubesalt_packages`: the package versions the node's archive pins.

The node's saltenv (its pillarenv) names the archive, registered on this (the bootstrap)
node; the archive's manifest.lock.yaml gives every package of its repository with its
version. The package states install exactly those versions, from the archive's repository
alone (`kubesalt.packages`, `kubesalt_packages.install_options`).

Master (or masterless minion) configuration::

    ext_pillar:
      - kubesalt_packages: {}

An archive without a lock gives no pins: each package state then fails, naming the
package and the archive, and nothing else is blocked.
"""

import logging

try:
    from kubesalt import packages as _packages
    from kubesalt.bootstrap import archive as _archive
    from kubesalt.errors import KubesaltError

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the master's virtualenv
    HAS_KUBESALT = False

log = logging.getLogger(__name__)

__virtualname__ = "kubesalt_packages"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def ext_pillar(minion_id, pillar):  # pylint: disable=unused-argument
    """Return {'kubesalt_packages': {'saltenv': ..., 'deb': {name: version}, 'rpm': {...}}}
    for the minion's saltenv, or {} when that archive records no versions."""
    opts = __opts__  # noqa: F821 (Salt dunder)
    saltenv = opts.get("pillarenv") or opts.get("saltenv")
    try:
        found = [a for a in _archive.load_register() if a.saltenv == saltenv]
        if not found:
            log.info("kubesalt_packages: no registered archive has saltenv %s", saltenv)
            return {}
        pins = _packages.read_pins(found[0].root)
    except KubesaltError as err:
        log.warning("kubesalt_packages: %s", err)
        return {}
    return {"kubesalt_packages": {"saltenv": saltenv, **pins}}
