"""firewalld for kubesalt nodes: the zone computed from the port matrix.

A thin wrapper over ``kubesalt.firewall`` and ``kubesalt.ports``: it gathers the pillar
(configuration, this node's roles) and the control-plane and workload-plane IPs of every
node (mine ``control_plane_ip`` and ``workload_plane_ip``); the package decides.
"""

from salt.exceptions import CommandExecutionError

try:
    from kubesalt import firewall as _firewall
    from kubesalt import mine as _mine
    from kubesalt import mine_ips as _mine_ips
    from kubesalt import ports as _ports
    from kubesalt import saltglue as _glue

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_firewall"

CONTROL_PLANE = "controlPlane"
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


def _published_ips(function):
    """{minion: IP} of one plane's mine function, from this job's one mine request."""
    return _mine.published(__salt__["mine.get"], __context__, function)  # noqa: F821


def _peers_on(plane, mine):
    """{role: IPs} of `plane` from `mine` ({minion: IP}). A bad entry of another node
    leaves that node out; this node's own is an error here."""
    cfg = _config()
    _glue.call(_mine_ips.check_own, __grains__["id"], mine, cfg, plane)  # noqa: F821
    return _glue.call(_ports.peers_by_role, cfg.get("nodes") or {}, mine, cfg, plane)


def _both_peers():
    """(control-plane peers, workload-plane peers), from one mine request."""
    return (
        _peers_on(CONTROL_PLANE, _published_ips(_mine.CONTROL_PLANE_IP)),
        _peers_on(WORKLOAD_PLANE, _published_ips(_mine.WORKLOAD_PLANE_IP)),
    )


def peers():
    """
    Return, for each role, the control-plane IPs of the nodes that have it (from the
    mine ``control_plane_ip`` and the pillar's roles). A node whose mine entry is bad is
    left out; on that node itself this is an error naming the entry.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_firewall.peers
    """
    return _both_peers()[0]


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
    return _both_peers()[1]


def rules():
    """
    Return the openings of this node's firewall: one entry per protocol, port and
    source (``source: null`` means anyone), with the matrix entries behind it.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_firewall.rules
    """
    control, workload = _both_peers()
    found = _glue.call(_ports.node_rules, roles(), _config(), control, workload_peers=workload)
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
    control, workload = _both_peers()
    return _glue.call(_firewall.zone_xml, _config(), roles(), control, workload_peers=workload)


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
