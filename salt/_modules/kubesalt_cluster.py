"""The cluster's API objects, applied on the CA (bootstrap) node with the kubernetes Python
client: server-side apply under the field manager ``kubesalt``, and the rollout status of
the DaemonSets and Deployments applied.

The objects are plain mappings (apiVersion, kind, metadata...), as kubesalt renders them;
they are applied in the order given. The kubeconfig defaults to kubeadm's
``/etc/kubernetes/admin.conf`` (under the grain ``kubesalt_root``, default ``/``), whose
server is the control-plane VIP; the ClusterRoleBinding ``kubeadm:cluster-admins``, which
gives admin.conf its rights, is applied with ``super-admin.conf``. The logic is in
``kubesalt.cluster.apply`` and ``kubesalt.cluster.rollout``; only the kubeconfig's path is
ever reported, never its content.
"""

import logging

try:
    from kubesalt import saltglue as _glue
    from kubesalt.kubeadm.model import Layout

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

try:
    from kubesalt.cluster import apply as _apply
    from kubesalt.cluster import rollout as _rollout

    HAS_CLIENT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_CLIENT = False

log = logging.getLogger(__name__)

__virtualname__ = "kubesalt_cluster"

ADMIN_CONF = "admin.conf"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    if not HAS_CLIENT:
        return (
            False,
            "the kubernetes Python client is not installed in Salt's virtualenv (the bootstrap "
            "node installs it from the archive's wheels)",
        )
    return __virtualname__


def _kubeconfig(kubeconfig):
    """The kubeconfig to use: the given path, else admin.conf under kubesalt_root."""
    root = __grains__.get("kubesalt_root") or "/"  # noqa: F821
    return kubeconfig or Layout(root).kubeconfig(ADMIN_CONF)


def _apply_objects(objects, kubeconfig, test):
    _apply.check_objects(objects)  # every object checked before the kubeconfig is read
    with _apply.client_from_kubeconfig(_kubeconfig(kubeconfig)) as client:
        results = _apply.apply_objects(client, objects, dry_run=bool(test))
    return {
        "changed": any(result.changed for result in results),
        "test": bool(test),
        "objects": [result.as_dict() for result in results],
        "pending": [str(result.ref) for result in results if result.outcome == _apply.PENDING],
        "comment": _apply.summary(results),
    }


def apply(objects, kubeconfig=None, test=False):
    """
    Server-side apply ``objects`` (a list of API objects, each a mapping) in the order given,
    with the field manager ``kubesalt`` and force: kubesalt's values win, and a field it no
    longer renders is removed. Every object is checked first (a kind kubesalt does not
    apply, a missing name or namespace: nothing is sent); the first refusal of the API
    stops the apply and names the object and the API's answer.

    Each object's ``outcome`` is ``created``, ``configured``, ``unchanged`` (from the API's
    answers: a second apply of the same objects reports every object unchanged) or
    ``pending``: a Node whose kubelet has not registered, which is never created (apply
    again once it has). Returns ``changed``, ``test``, ``objects`` (object, kind,
    namespace, name, outcome, dry_run, comment), ``pending`` (the Nodes) and a ``comment``.

    test
        A dry run (``dryRun=All``): the API server checks every object and stores nothing;
        the outcomes say what would be done.

    kubeconfig
        Default ``/etc/kubernetes/admin.conf`` (under the grain ``kubesalt_root``).

    CLI Example:

    .. code-block:: bash

        salt ca.minion kubesalt_cluster.apply '[{apiVersion: v1, kind: ConfigMap, metadata: {name: x, namespace: kube-system}, data: {a: "1"}}]' test=True
    """
    return _glue.call(_apply_objects, objects, kubeconfig, test)


def _rollout_status(objects, kubeconfig, timeout):
    seconds = _timeout(timeout)
    _apply.check_objects(objects)
    with _apply.client_from_kubeconfig(_kubeconfig(kubeconfig)) as client:
        pending = _rollout.wait_for_rollout(client, objects, seconds)
    if pending:
        waited = f" after {seconds}s" if seconds else ""
        comment = f"{len(pending)} rollout(s) incomplete{waited}: " + "; ".join(pending)
    else:
        comment = "every DaemonSet and Deployment has rolled out"
    return {"complete": not pending, "pending": pending, "comment": comment}


def _timeout(timeout):
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        seconds = -1
    if isinstance(timeout, bool) or not 0 <= seconds <= 3600:
        raise _apply.ApplyError(
            f"timeout {timeout!r}: give the seconds to wait, from 0 (ask once) to 3600"
        )
    return seconds


def rollout_status(objects, kubeconfig=None, timeout=0):
    """
    Whether the DaemonSets and Deployments among ``objects`` have rolled out, as
    ``kubectl rollout status`` decides (the controller observed the latest spec; every pod
    updated and available); other kinds are skipped. Waits at most ``timeout`` seconds
    (default 0: ask once), asking every 2 s. Returns ``complete``, ``pending`` (each
    incomplete rollout and what it waits for) and a ``comment``; a Deployment past its
    progress deadline is an error.

    kubeconfig
        Default ``/etc/kubernetes/admin.conf`` (under the grain ``kubesalt_root``).

    CLI Example:

    .. code-block:: bash

        salt ca.minion kubesalt_cluster.rollout_status '[{apiVersion: apps/v1, kind: Deployment, metadata: {name: coredns, namespace: kube-system}}]' timeout=300
    """
    return _glue.call(_rollout_status, objects, kubeconfig, timeout)
