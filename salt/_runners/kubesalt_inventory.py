"""Declare, list and forget the nodes of the cluster (the inventory on the bootstrap node).

A thin wrapper over `kubesalt.inventory`. Paths come from the master configuration
(`kubesalt_config`, default /etc/kubesalt/bootstrap.yaml; `kubesalt_inventory`, default
/etc/kubesalt/nodes) and can be given per call.
"""

import salt.client

try:
    from kubesalt import config as _config
    from kubesalt import hostkeys as _hostkeys
    from kubesalt import inventory as _inventory
    from kubesalt.errors import KubesaltError
    from kubesalt.etcd import find as _find_member
    from kubesalt.orchestrate.etcdjoin import members_from as _members_from
    from kubesalt.orchestrate.rpc import Rpc as _Rpc

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the master's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_inventory"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def _paths(config, inventory):
    opts = __opts__  # noqa: F821 (Salt dunder)
    return (
        config or opts.get("kubesalt_config", _config.DEFAULT_PATH),
        inventory or opts.get("kubesalt_inventory", _inventory.DEFAULT_DIR),
    )


def _failed(err):
    # salt-run exits with the `retcode` of a runner's returned dict.
    return {"result": False, "retcode": 1, "comment": f"{type(err).__name__}: {err}"}


ETCD_TIMEOUT = 60  # seconds the CA minion has to list the etcd members


def _etcd_member(cfg):
    """Asks the CA minion's etcd whether a node is a member: its label, or None (the
    declaration that drops a node's etcd role is refused while it is one)."""
    ca = cfg["ca"]["minion"]

    def member(name):
        client = salt.client.get_local_client(__opts__["conf_file"])  # noqa: F821
        listing = _Rpc(client).call([ca], "kubesalt_etcd.members", timeout=ETCD_TIMEOUT,
                                    what="list the etcd members")[ca]  # fmt: skip
        found = _find_member(_members_from(listing), name)
        return found.label() if found else None

    return member


def declare(
    name,
    host,
    roles,
    port=22,
    user="root",
    key="/etc/kubesalt/ssh/id_ed25519",
    replace=False,
    config=None,
    inventory=None,
    host_key=None,
):
    """
    Declare a node: its name (its Salt minion ID), SSH address and credentials, roles, and
    optionally its SSH host key (``host_key='ssh-ed25519 AAAA...'``, read on the node's
    console: ``cat /etc/ssh/ssh_host_ed25519_key.pub``). Without it, deploy_node reads the
    key when it first reaches the node and records it; salt-ssh then refuses any other key.

    Refused, with every problem listed and nothing written: a name already declared
    (unless ``replace=True``), an address another node has, an unknown role, the
    ``bootstrap``/``ca`` roles on a node other than ``ca.minion``, an address outside
    every control-plane CIDR, and (with ``replace=True``) dropping the ``etcd`` role while
    etcd, asked on the CA minion, still lists the node: run ``remove_node`` instead, which
    removes the member first. Declaring the same node twice changes nothing.

    CLI Example:

    .. code-block:: bash

        salt-run kubesalt_inventory.declare cp2 198.51.100.11 control-plane,etcd,node
        salt-run kubesalt_inventory.declare worker1 198.51.100.20 node port=2222 user=admin
        salt-run kubesalt_inventory.declare cp3 198.51.100.12 control-plane,etcd,node host_key='ssh-ed25519 AAAAC3...'
    """
    config_path, directory = _paths(config, inventory)
    try:
        cfg = _config.load_file(config_path)
        node = _inventory.Node(
            name=str(name),
            host=str(host),
            roles=_inventory.parse_roles(roles),
            port=int(port) if str(port).isdigit() else port,
            user=str(user),
            key=str(key),
            host_keys=(_hostkeys.parse_public_key(host_key),) if host_key else (),
        )
        changed = _inventory.declare(
            node, cfg, directory, replace=bool(replace), etcd_member=_etcd_member(cfg)
        )
    except KubesaltError as err:
        return _failed(err)
    comment = f"Node {name} declared" if changed else f"Node {name} is already declared as asked"
    return {"result": True, "changed": changed, "comment": comment, "node": node.to_document()}


def forget(name, inventory=None):
    """
    Remove a node from the inventory (the ``remove_node`` orchestration calls this last,
    after the node has left etcd and its peers).

    CLI Example:

    .. code-block:: bash

        salt-run kubesalt_inventory.forget cp3
    """
    _, directory = _paths(None, inventory)
    try:
        changed = _inventory.forget(str(name), directory)
    except KubesaltError as err:
        return _failed(err)
    comment = (
        f"Node {name} removed from the inventory" if changed else f"Node {name} is not declared"
    )
    return {"result": True, "changed": changed, "comment": comment}


def list_nodes(inventory=None):
    """
    List the declared nodes: name, SSH address and roles (no credentials).

    CLI Example:

    .. code-block:: bash

        salt-run kubesalt_inventory.list_nodes
    """
    _, directory = _paths(None, inventory)
    try:
        nodes = _inventory.load(directory)
    except KubesaltError as err:
        return _failed(err)
    return {name: {"host": node.host, "roles": list(node.roles)} for name, node in nodes.items()}
