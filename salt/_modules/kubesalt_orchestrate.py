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
    in ``pillar`` (``node``, ``skip_phases``, ``force``): the node, its declared roles (empty
    when it is not declared: the preflight phase says so), and every phase with ``run``
    and ``why`` it does not run.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_orchestrate.plan deploy_node '{"node": "cp2", "skip_phases": ["addons"]}'
    """
    pillar = pillar or {}
    if not isinstance(pillar, dict):
        raise CommandExecutionError(f"pillar = {pillar!r}: give a dictionary with the key node")
    name = _glue.call(_orchestrate.check_node_pillar, orchestration, pillar)
    nodes = _glue.call(_inventory.load, _inventory_dir())
    roles = list(nodes[name].roles) if name in nodes else []
    phases = _glue.call(_orchestrate.plan, orchestration, roles, pillar.get("skip_phases"))
    return {
        "node": name,
        "roles": roles,
        "force": pillar.get("force") is True,
        "phases": phases,
        "skipped": [f"{p['name']}: {p['why']}" for p in phases if not p["run"]],
    }
