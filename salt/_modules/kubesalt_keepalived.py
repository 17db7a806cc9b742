"""keepalived for the API server virtual IP: the configuration of this control-plane node.

A thin wrapper over ``kubesalt.keepalived``: it gathers the pillar (configuration and
roles), this node's control-plane IP (grain), its interface (``kubesalt_network``) and
the other control-plane nodes' IPs (mine ``control_plane_ip``); the package decides.
"""

from salt.exceptions import CommandExecutionError

try:
    from kubesalt import keepalived as _keepalived
    from kubesalt import mine as _mine
    from kubesalt import ports as _ports
    from kubesalt import saltglue as _glue

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_keepalived"

CP_IP_GRAIN = "kubesalt:control_plane_ip"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def _config():
    return _glue.config_from_pillar(__pillar__)  # noqa: F821 (Salt dunder)


def _node_ip():
    ip = __salt__["grains.get"](CP_IP_GRAIN)  # noqa: F821
    if not ip:
        raise CommandExecutionError(
            f"The grain {CP_IP_GRAIN} is not set on this node: run "
            "saltutil.sync_all and the kubesalt.node states first"
        )
    return ip


def _settings():
    node_ip = _node_ip()
    interface = __salt__["kubesalt_network.interface_of"](node_ip)  # noqa: F821
    return _glue.call(
        _keepalived.settings,
        _config(),
        __grains__["id"],  # noqa: F821
        node_ip,
        interface,
        control_plane_ips(),
    )


def control_plane_ips():
    """
    Return the control-plane IPs of every node with the control-plane role, sorted,
    from the mine (``control_plane_ip``) and the pillar's roles; a bad mine entry is
    left out.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_keepalived.control_plane_ips
    """
    cfg = _config()
    mine = _mine.published(__salt__["mine.get"], __context__, _mine.CONTROL_PLANE_IP)  # noqa: F821
    # A bad entry of another node leaves that node out (kubesalt.mine_ips).
    return _glue.call(_ports.peers_by_role, cfg.get("nodes") or {}, mine, cfg).get(
        "control-plane", []
    )


def settings():
    """
    Return every value of this node's keepalived configuration (VIP with prefix,
    interface, peers, priority, VRRP version, timers), as a dictionary.

    CLI Example:

    .. code-block:: bash

        salt -G 'kubesalt:control_plane_ip:*' kubesalt_keepalived.settings
    """
    result = _settings()
    return {
        "router_id": result.router_id,
        "interface": result.interface,
        "src_ip": result.src_ip,
        "peers": list(result.peers),
        "vip": result.vip,
        "virtual_router_id": result.virtual_router_id,
        "priority": result.priority,
        "version": result.version,
        "advert_int": result.advert_int,
        "authentication": bool(result.auth_pass),
        "check_script": result.check_script,
    }


def config():
    """
    Return the content of /etc/keepalived/keepalived.conf for this node.

    CLI Example:

    .. code-block:: bash

        salt 'cp-1' kubesalt_keepalived.config
    """
    result = _settings()
    return _keepalived.render_conf(result)


def check_script():
    """
    Return the content of the track script that asks the local kube-apiserver for
    /livez (installed as /etc/keepalived/kubesalt-check-apiserver).

    CLI Example:

    .. code-block:: bash

        salt 'cp-1' kubesalt_keepalived.check_script
    """
    port = _glue.call(_ports.port_number, "kube-apiserver", _config())
    return _glue.call(_keepalived.render_check_script, port)
