"""The plan of an orchestration, before it runs: which phases act on which nodes.

Runs where the inventory is (the bootstrap node): the phases of ``bootstrap``,
``deploy_node`` or ``remove_node`` (``kubesalt.orchestrate.tables``) for the nodes of a
pillar, each with the nodes it acts on, or why it does not run. An invalid
``skip_phases`` or ``node`` is the error the orchestration itself would stop with. See
``docs/orchestrations.md``.
"""

from salt.exceptions import CommandExecutionError

try:
    from kubesalt import inventory as _inventory
    from kubesalt import saltglue as _glue
    from kubesalt.orchestrate import engine as _engine
    from kubesalt.orchestrate import options as _options

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the master's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_orchestrate"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def _inventory_dir():
    return __opts__.get("kubesalt_inventory", _inventory.DEFAULT_DIR)  # noqa: F821


def plan(orchestration, pillar=None, saltenv=None):
    """
    Return the plan of ``orchestration`` for the nodes in ``pillar`` (``node``, or for
    deploy_node a list ``nodes``; ``skip_phases``; the other options are checked too):
    the nodes, their declared roles, and every phase with the ``nodes`` it acts on,
    ``run`` and ``why`` it does not run. ``kubesalt:ca:minion`` comes from this
    minion's pillar when ``pillar`` does not give it.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_orchestrate.plan deploy_node '{"nodes": ["cp2", "cp3"], "skip_phases": ["addons"]}'
    """
    pillar = pillar or {}
    if not isinstance(pillar, dict):
        raise CommandExecutionError(f"pillar = {pillar!r}: give a dictionary with the key node")
    merged = {"kubesalt": (__pillar__ or {}).get("kubesalt") or {}, **pillar}  # noqa: F821
    inventory = _glue.call(_inventory.load, _inventory_dir())
    options = _glue.call(_options.from_pillar, orchestration, merged, saltenv or "base", inventory)
    phases = _engine.plan(options, inventory)
    return {
        "nodes": list(options.nodes),
        "roles": {n: list(inventory[n].roles) if n in inventory else [] for n in options.nodes},
        "phases": phases,
        "skipped": [f"{p['name']}: {p['why']}" for p in phases if not p["run"]],
    }
