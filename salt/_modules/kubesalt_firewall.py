"""firewalld for kubesalt nodes: the zone computed from the port matrix.

A thin wrapper over ``kubesalt.firewall`` and ``kubesalt.ports``: it gathers the pillar
(configuration, this node's roles) and the control-plane and workload-plane IPs of every
node (mine ``control_plane_ip`` and ``workload_plane_ip``); the package decides.
"""

from salt.exceptions import CommandExecutionError

try:
    from kubesalt import firewall as _firewall
    from kubesalt import mine_ips as _mine_ips
    from kubesalt import ports as _ports
    from kubesalt import saltglue as _glue

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_firewall"

MINE_FUNCTION = "control_plane_ip"
WORKLOAD_MINE_FUNCTION = "workload_plane_ip"
WORKLOAD_PLANE = "workloadPlane"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def _config():
    return _glue.config_from_pillar(__pillar__)  # noqa: F821 (Salt dunder)


def enabled():
    """
    Return True when kubesalt manages firewalld (``firewall.enabled`` in the pillar).

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_firewall.enabled
    """
    return bool((_config().get("firewall") or {}).get("enabled"))


def roles():
    """
    Return this node's roles, from the pillar ``kubesalt:nodes:<minion id>:roles``.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_firewall.roles
    """
    minion = __grains__["id"]  # noqa: F821
    node = (_config().get("nodes") or {}).get(minion)
    if not node or not node.get("roles"):
        raise CommandExecutionError(
            f"The pillar has no roles for {minion} (kubesalt:nodes:{minion}:roles): "
            "declare the node in the inventory on the bootstrap node, then "
            "saltutil.refresh_pillar"
        )
    return list(node["roles"])


def peers():
    """
    Return, for each role, the control-plane IPs of the nodes that have it (from the
    mine ``control_plane_ip`` and the pillar's roles). A node whose mine entry is bad is
    left out; on that node itself this is an error naming the entry.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_firewall.peers
    """
    cfg = _config()
    mine = __salt__["mine.get"]("*", MINE_FUNCTION)  # noqa: F821
    # A bad entry of another node leaves that node out; this node's own is an error here.
    _glue.call(_mine_ips.check_own, __grains__["id"], mine, cfg)  # noqa: F821
    return _glue.call(_ports.peers_by_role, cfg.get("nodes") or {}, mine, cfg)


def workload_peers():
    """
    Return, for each role, the workload-plane IPs of the nodes that have it (from the
    mine ``workload_plane_ip`` and the pillar's roles): the addresses they use to reach
    a node's InternalIP (the kubelet's ``--node-ip``). A node whose mine entry is bad is
    left out; on that node itself this is an error naming the entry.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_firewall.workload_peers
    """
    cfg = _config()
    mine = __salt__["mine.get"]("*", WORKLOAD_MINE_FUNCTION)  # noqa: F821
    _glue.call(_mine_ips.check_own, __grains__["id"], mine, cfg, WORKLOAD_PLANE)  # noqa: F821
    return _glue.call(_ports.peers_by_role, cfg.get("nodes") or {}, mine, cfg, WORKLOAD_PLANE)


def rules():
    """
    Return the openings of this node's firewall: one entry per protocol, port and
    source (``source: null`` means anyone), with the matrix entries behind it.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_firewall.rules
    """
    found = _glue.call(
        _ports.node_rules, roles(), _config(), peers(), workload_peers=workload_peers()
    )
    return [
        {
            "protocol": rule.protocol,
            "port": rule.port,
            "source": rule.source,
            "family": rule.family,
            "entries": list(rule.entries),
        }
        for rule in found
    ]


def zone_xml():
    """
    Return the content of /etc/firewalld/zones/kubesalt.xml for this node.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_firewall.zone_xml
    """
    return _glue.call(
        _firewall.zone_xml, _config(), roles(), peers(), workload_peers=workload_peers()
    )


def required_free_ports():
    """
    Return the ports this node's roles need unused before installing (for preflight),
    as ``{"name", "protocol", "port", "listener"}`` entries.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_firewall.required_free_ports
    """
    entries = _glue.call(_ports.ports_to_free, roles(), _config())
    return [
        {"name": e.name, "protocol": e.protocol, "port": e.port, "listener": e.listener}
        for e in entries
    ]
