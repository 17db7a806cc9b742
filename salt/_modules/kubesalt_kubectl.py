"""Kubernetes Node objects for the remove_node and upgrade orchestrations: drain,
uncordon, delete. (Node labels
and taints are applied by server-side apply, kubesalt_cluster.apply.)

Runs ``kubectl`` on the CA (bootstrap) node with kubeadm's ``/etc/kubernetes/admin.conf``
(under the grain ``kubesalt_root``, default ``/``), whose server is the control-plane VIP.
The command lines and the reading of kubectl's answers are in ``kubesalt.kubectl``; every
run is bounded by a time limit. Only the kubeconfig's path is ever passed or reported,
never its content.
"""

import logging
import os

import salt.utils.path

try:
    from kubesalt import kubectl as _kubectl
    from kubesalt import names as _names
    from kubesalt import saltglue as _glue
    from kubesalt.kubeadm.model import Layout

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

log = logging.getLogger(__name__)

__virtualname__ = "kubesalt_kubectl"

ADMIN_CONF = "admin.conf"
# Time limits of the process, in seconds. kubectl has none of its own for a read; drain and
# delete get theirs (--timeout) plus this margin to report their own error.
READ_TIMEOUT = 30
MARGIN = 30


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    if not salt.utils.path.which("kubectl"):
        return (False, "kubectl is not on the PATH (package kubectl, from the kubesalt archive)")
    return __virtualname__


def _kubeconfig(kubeconfig):
    """The kubeconfig to use: the given path, else admin.conf under kubesalt_root."""
    root = __grains__.get("kubesalt_root") or "/"  # noqa: F821
    path = kubeconfig or Layout(root).kubeconfig(ADMIN_CONF)
    if not os.path.isfile(path):
        raise _kubectl.KubectlError(
            f"kubeconfig {path} does not exist: run this on the CA (bootstrap) node, where "
            "kubesalt.kubeconfig writes admin.conf, or pass kubeconfig=<path>"
        )
    return path


def _run(command, timeout):
    """Run kubectl; its stdout, or the KubectlError of its failure."""
    result = __salt__["cmd.run_all"](  # noqa: F821
        command, python_shell=False, ignore_retcode=True, timeout=timeout
    )
    if result.get("retcode"):
        stderr = result.get("stderr") or ""
        # cmd.run_all reports a process it stopped as exit code 1 with this text in stdout.
        if not stderr and "Timed out after" in (result.get("stdout") or ""):
            raise _kubectl.timeout_error(command, timeout)
        raise _kubectl.kubectl_error(command, result["retcode"], stderr)
    return result.get("stdout") or ""


def _read_node(config, node):
    """The Node object, or None when the API server has none by that name."""
    return _kubectl.parse_node(_run(_kubectl.get_node_command(config, node), READ_TIMEOUT))


def _drain(node, timeout, kubeconfig):
    seconds = _kubectl.check_timeout(timeout, "drain timeout")
    _names.check_node_name(node)
    config = _kubeconfig(kubeconfig)
    command = _kubectl.drain_command(config, node, seconds)
    found = _read_node(config, node)
    if found is None:
        return {
            "changed": False,
            "cordoned": False,
            "evicted": [],
            "comment": f"node {node} has no Node object: nothing to drain",
        }
    if not _kubectl.is_cordoned(found):
        # Marked before kubectl drain cordons it: uncordon gives back only what it took.
        _run(_kubectl.mark_cordoned_command(config, node), READ_TIMEOUT)
    done = _kubectl.drain_changes(_run(command, seconds + MARGIN))
    # kubectl drain cordons first: a node that was schedulable is cordoned now, even if a
    # future kubectl words it differently.
    cordoned = done["cordoned"] or not _kubectl.is_cordoned(found)
    evicted = done["evicted"]
    if not cordoned and not evicted:
        return {
            "changed": False,
            "cordoned": False,
            "evicted": [],
            "comment": f"node {node} is in the correct state: cordoned, no pod to evict",
        }
    pods = f"evicted {len(evicted)} pod(s): {', '.join(evicted)}" if evicted else "no pod to evict"
    return {
        "changed": True,
        "cordoned": cordoned,
        "evicted": evicted,
        "comment": f"node {node} {'cordoned and ' if cordoned else ''}drained, {pods}",
    }


def drain(node, timeout=300, kubeconfig=None):
    """
    Drain the node: cordon it (no new pods) and evict its pods, DaemonSet pods excepted
    (``kubectl drain --ignore-daemonsets --delete-emptydir-data``). Evictions refused by a
    PodDisruptionBudget are retried until ``timeout`` seconds have passed, then it fails
    naming the budget as the cause. A schedulable node is first annotated
    ``kubesalt.io/cordoned-by=kubesalt``, so that ``uncordon`` gives back only what kubesalt
    cordoned. Returns ``changed``, ``cordoned`` (it cordoned the node now), ``evicted``
    (``namespace/pod``) and a ``comment``; a node cordoned already with nothing to evict is
    unchanged, a node without a Node object too.

    kubeconfig
        Default ``/etc/kubernetes/admin.conf`` (under the grain ``kubesalt_root``).

    CLI Example:

    .. code-block:: bash

        salt ca.minion kubesalt_kubectl.drain cp3 timeout=600
    """
    return _glue.call(_drain, node, timeout, kubeconfig)


def _uncordon(node, kubeconfig):
    _names.check_node_name(node)
    config = _kubeconfig(kubeconfig)
    found = _read_node(config, node)
    action = _kubectl.uncordon_action(found)
    result = {"changed": action in (_kubectl.UNCORDON, _kubectl.UNMARK), "action": action,
              "kept_cordoned": action == _kubectl.KEEP_CORDONED}  # fmt: skip
    if found is None:
        return {**result, "comment": f"node {node} has no Node object: nothing to uncordon"}
    if action == _kubectl.KEEP_CORDONED:
        return {**result,
                "comment": f"node {node} stays cordoned: it was cordoned before kubesalt "
                f"drained it (no annotation {_kubectl.CORDONED_BY}); once its maintenance "
                f"is over, run: kubectl uncordon {node}"}  # fmt: skip
    schedulable = f"node {node} is in the correct state: schedulable"
    if action == _kubectl.NOTHING:
        return {**result, "comment": schedulable}
    if action == _kubectl.UNCORDON:
        _run(_kubectl.uncordon_command(config, node), READ_TIMEOUT)
    _run(_kubectl.unmark_cordoned_command(config, node), READ_TIMEOUT)
    if action == _kubectl.UNMARK:  # uncordoned by hand after kubesalt's drain
        return {**result, "comment": f"{schedulable} (annotation {_kubectl.CORDONED_BY} removed)"}
    return {**result, "comment": f"node {node} uncordoned"}


def uncordon(node, kubeconfig=None):
    """
    Make the node schedulable again (``kubectl uncordon``), as the upgrade does once the
    node's kubelet runs the new release, if kubesalt's ``drain`` cordoned it (annotation
    ``kubesalt.io/cordoned-by``, removed then). A node cordoned by someone else stays
    cordoned (``kept_cordoned``); a schedulable node, or one without a Node object, is
    unchanged. Returns ``changed``, ``action`` (``kubesalt.kubectl.uncordon_action``),
    ``kept_cordoned`` and a ``comment``.

    kubeconfig
        Default ``/etc/kubernetes/admin.conf`` (under the grain ``kubesalt_root``).

    CLI Example:

    .. code-block:: bash

        salt ca.minion kubesalt_kubectl.uncordon worker1
    """
    return _glue.call(_uncordon, node, kubeconfig)


def _delete_node(node, timeout, kubeconfig):
    seconds = _kubectl.check_timeout(timeout, "delete timeout")
    _names.check_node_name(node)
    command = _kubectl.delete_node_command(_kubeconfig(kubeconfig), node, seconds)
    if not _kubectl.deleted(_run(command, seconds + MARGIN)):
        return {"changed": False, "comment": f"node {node} has no Node object: nothing to delete"}
    return {"changed": True, "comment": f"Node object {node} deleted"}


def delete_node(node, timeout=60, kubeconfig=None):
    """
    Delete the Node object ``node`` and wait (at most ``timeout`` seconds) until it is
    gone; nothing when there is none. Drain it first (``drain``): once its Node is gone, the
    pod garbage collector deletes its pods at once, disruption budgets ignored. Returns
    ``changed`` and a ``comment``.

    kubeconfig
        Default ``/etc/kubernetes/admin.conf`` (under the grain ``kubesalt_root``).

    CLI Example:

    .. code-block:: bash

        salt ca.minion kubesalt_kubectl.delete_node cp3
    """
    return _glue.call(_delete_node, node, timeout, kubeconfig)
