"""ext_pillar `kubesalt`: the validated bootstrap.yaml, under the pillar key `kubesalt`.

Master (or masterless minion) configuration::

    ext_pillar:
      - kubesalt:
          config: /etc/kubesalt/bootstrap.yaml

An invalid file does not give a partial pillar: the pillar gets `_errors`, one entry per
problem, and Salt refuses to apply any state while they are there, printing them.
"""

import logging

try:
    from kubesalt import config as _config
    from kubesalt import inventory as _inventory
    from kubesalt import pillar as _pillar
    from kubesalt.errors import KubesaltError

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the master's virtualenv
    HAS_KUBESALT = False

log = logging.getLogger(__name__)

__virtualname__ = "kubesalt"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def ext_pillar(
    minion_id,
    pillar,  # pylint: disable=unused-argument
    config="/etc/kubesalt/bootstrap.yaml",
    inventory="/etc/kubesalt/nodes",
):
    """Return {'kubesalt': <normalized configuration + nodes>} or {'_errors': [...]}.

    `kubesalt:nodes` maps each declared node to its roles; SSH details stay out. Secrets
    reach only the nodes that use them (`kubesalt.pillar.for_node`): the VRRP
    `authPassword` only control-plane nodes running keepalived.
    `kubesalt:first_node` names the node that plays `kubeadm init` (recorded once in the
    inventory), or is None.
    """
    try:
        cfg = _config.load_file(config)
        nodes = _inventory.load(inventory)
        cfg["nodes"] = _inventory.pillar_nodes(nodes)
        cfg["first_node"] = _inventory.first_node(nodes, inventory)
        own_roles = nodes[minion_id].roles if minion_id in nodes else ()
        cfg = _pillar.for_node(cfg, own_roles)
    except _config.InvalidConfig as err:
        log.info("kubesalt ext_pillar: %s", err)
        header = f"kubesalt: {err.source} is not valid ({len(err.problems)} problem(s)); fix it, then run again:"
        return {"_errors": [header] + [str(problem) for problem in err.problems]}
    except KubesaltError as err:
        log.info("kubesalt ext_pillar: %s", err)
        return {"_errors": [f"kubesalt: {err}"]}
    return {"kubesalt": cfg}
