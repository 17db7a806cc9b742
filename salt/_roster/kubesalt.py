"""salt-ssh roster from the kubesalt inventory (/etc/kubesalt/nodes), so that the
nodes declared with `salt-run kubesalt_inventory.declare` are the ones salt-ssh reaches.

Master configuration::

    roster: kubesalt
    kubesalt_inventory: /etc/kubesalt/nodes   # the default
"""

try:
    from kubesalt import inventory as _inventory

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the master's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def targets(tgt, tgt_type="glob", **kwargs):  # pylint: disable=unused-argument
    """Return the roster entries of the declared nodes that match the target; their host
    keys are checked against the inventory's known_hosts file."""
    directory = __opts__.get("kubesalt_inventory", _inventory.DEFAULT_DIR)  # noqa: F821
    entries = _inventory.roster(_inventory.load(directory), _inventory.known_hosts_path(directory))
    # Salt's matcher reads __opts__, which it has only when loaded as a utils module.
    return __utils__["roster_matcher.targets"](entries, tgt, tgt_type, "ipv4")  # noqa: F821
