"""The plan of the deploy_node and remove_node orchestrations, for their SLS files.

Runs on the master (the orchestrate renderer): which phases run for a node, which are skipped
and why, from ``kubesalt.orchestrate`` (the phases as data) and the inventory. An invalid
``skip_phases`` or ``node`` stops the orchestration before anything changes, with the valid
values in the message. See ``docs/orchestrations.md``.
"""

from salt.exceptions import CommandExecutionError

try:
    from kubesalt import inventory as _inventory
    from kubesalt import orchestrate as _orchestrate
    from kubesalt import saltglue as _glue

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


def plan(orchestration, pillar=None):
    """
    Return the plan of ``orchestration`` (``deploy_node`` or ``remove_node``) for the node
    in ``pillar`` (``node``, or for deploy_node a list ``nodes``; ``skip_phases``,
    ``force``): the nodes, their declared roles (empty for a node that is not declared:
    the preflight phase says so), and every phase with the ``nodes`` it acts on, ``run``
    and ``why`` it does not run.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_orchestrate.plan deploy_node '{"nodes": ["cp2", "cp3"], "skip_phases": ["addons"]}'
    """
    pillar = pillar or {}
    if not isinstance(pillar, dict):
        raise CommandExecutionError(f"pillar = {pillar!r}: give a dictionary with the key node")
    names = _glue.call(_orchestrate.check_nodes_pillar, orchestration, pillar)
    declared = _glue.call(_inventory.load, _inventory_dir())
    roles = {name: list(declared[name].roles) if name in declared else [] for name in names}
    phases = _glue.call(_orchestrate.plan, orchestration, roles, pillar.get("skip_phases"))
    return {
        "nodes": names,
        # One node: its name; several: "cp2, cp3, worker1" (for state IDs and messages).
        "label": ", ".join(names),
        "roles": roles,
        "force": pillar.get("force") is True,
        "phases": phases,
        "skipped": [f"{p['name']}: {p['why']}" for p in phases if not p["run"]],
    }
