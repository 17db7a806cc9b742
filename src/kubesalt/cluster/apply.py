"""Server-side apply of kubesalt's API objects with the kubernetes Python client.

Every object is sent as it was rendered (a plain dict), in the order given, by one PATCH
with ``Content-Type: application/apply-patch+yaml`` under one field manager
(``FIELD_MANAGER``) with ``force=true``: kubesalt's values win over any other writer's, and a
field kubesalt stops rendering is removed by the API server. The request goes through the
client's generic ``ApiClient`` (no discovery round trip): the few kinds kubesalt applies are
in ``KINDS``.

What each object's apply did is read from the API's answers, never guessed: a GET before the
apply (absent: ``created``), then the resourceVersion of the applied object against the one
read (the API server writes, and bumps resourceVersion, only when something changed:
``configured``, else ``unchanged``). A dry run (``dryRun=All``, nothing stored) compares the
object the server would store with the live one, the fields the server sets on every write
left out. A Node is never created (its kubelet registers it): an absent Node is ``pending``.

Nothing here reads Salt or the configuration; the loader module ``kubesalt_cluster`` is the
glue.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from kubernetes import config as _kubeconfig
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from kubesalt.cluster.model import FIELD_MANAGER
from kubesalt.errors import KubesaltError

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
REQUEST_TIMEOUT = (5, 30)  # seconds to connect, then to read one answer

CREATED = "created"
CONFIGURED = "configured"
UNCHANGED = "unchanged"
PENDING = "pending"  # a Node whose kubelet has not registered: nothing was sent
CHANGED = frozenset({CREATED, CONFIGURED})
NODE_PENDING = "its kubelet has not registered"
TAINT_MANAGER = f"{FIELD_MANAGER}-taints"  # the only writer of a Node's spec.taints


class ApplyError(KubesaltError):
    """The objects cannot be applied: a bad object, a bad kubeconfig, or the API's refusal.

    `status` and `reason` are the API's answer when there was one (HTTP status, Status
    reason), else None."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Kind:
    """A kind kubesalt applies: where the API serves it."""

    kind: str
    api_version: str  # "v1", or "<group>/<version>"
    plural: str
    namespaced: bool

    def path(self, namespace: str | None, name: str) -> str:
        """The object's URL path, e.g. /apis/apps/v1/namespaces/kube-system/deployments/x."""
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        scope = f"/namespaces/{namespace}" if self.namespaced else ""
        return f"{base}{scope}/{self.plural}/{name}"


RBAC = "rbac.authorization.k8s.io/v1"
KINDS = {
    kind.kind: kind
    for kind in (
        Kind("ConfigMap", "v1", "configmaps", True),
        Kind("Secret", "v1", "secrets", True),
        Kind("ServiceAccount", "v1", "serviceaccounts", True),
        Kind("Service", "v1", "services", True),
        Kind("Node", "v1", "nodes", False),
        Kind("Role", RBAC, "roles", True),
        Kind("RoleBinding", RBAC, "rolebindings", True),
        Kind("ClusterRole", RBAC, "clusterroles", False),
        Kind("ClusterRoleBinding", RBAC, "clusterrolebindings", False),
        Kind("DaemonSet", "apps/v1", "daemonsets", True),
        Kind("Deployment", "apps/v1", "deployments", True),
    )
}


@dataclass(frozen=True)
class Ref:
    """Which object: its kind, namespace (None for a cluster-scoped kind) and name."""

    kind: Kind
    namespace: str | None
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.kind} {where}{self.name}"

    @property
    def path(self) -> str:
        return self.kind.path(self.namespace, self.name)


@dataclass(frozen=True)
class Applied:
    """What applying one object did (with `dry_run`: would do)."""

    ref: Ref
    outcome: str  # CREATED, CONFIGURED, UNCHANGED or PENDING
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return self.outcome in CHANGED

    def describe(self) -> str:
        if self.outcome == PENDING:
            return (
                f"{self.ref} pending: {NODE_PENDING} (its Node object appears when the "
                f"kubelet on {self.ref.name} starts; apply again then)"
            )
        if self.dry_run and self.changed:
            return f"{self.ref} would be {self.outcome}"
        return f"{self.ref} {self.outcome}"

    def as_dict(self) -> dict:
        """The JSON-able form the loader module returns."""
        return {
            "object": str(self.ref),
            "kind": self.ref.kind.kind,
            "namespace": self.ref.namespace,
            "name": self.ref.name,
            "outcome": self.outcome,
            "dry_run": self.dry_run,
            "comment": self.describe(),
        }


# -- the objects -------------------------------------------------------------------------
def _label(obj, index: int) -> str:
    """How a problem names an object that may be malformed: its position, kind and name."""
    if not isinstance(obj, dict):
        return f"object #{index}"
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    where = f"{meta['namespace']}/" if isinstance(meta.get("namespace"), str) else ""
    if not meta.get("name"):
        return f"object #{index} ({obj.get('kind')}, no name)"
    return f"object #{index} ({obj.get('kind')} {where}{meta['name']})"


def _ref_problems(obj, index: int) -> tuple[Ref | None, list[str]]:
    """The object's Ref, or None and what is wrong with it."""
    if not isinstance(obj, dict):
        return None, [f"object #{index}: not a mapping but {type(obj).__name__}"]
    label = _label(obj, index)
    kind = KINDS.get(obj.get("kind"))
    if kind is None:
        known = ", ".join(sorted(KINDS))
        return None, [
            f"{label}: kind {obj.get('kind')!r} is not one kubesalt applies ({known}); "
            "add it to kubesalt.cluster.apply.KINDS with its group/version and plural"
        ]
    problems = []
    if obj.get("apiVersion") != kind.api_version:
        problems.append(
            f"{label}: apiVersion {obj.get('apiVersion')!r}, but kubesalt applies "
            f"{kind.kind} as {kind.api_version}"
        )
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return None, [*problems, f"{label}: metadata is missing or not a mapping"]
    name, namespace = meta.get("name"), meta.get("namespace")
    # The name becomes part of the URL: it must be one path segment.
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        problems.append(
            f"{label}: metadata.name {name!r} is not a name (a non-empty string, no '/')"
        )
    if kind.namespaced and (not isinstance(namespace, str) or not namespace or "/" in namespace):
        problems.append(f"{label}: a {kind.kind} needs metadata.namespace (got {namespace!r})")
    if not kind.namespaced and namespace is not None:
        problems.append(f"{label}: a {kind.kind} has no namespace (got {namespace!r})")
    if problems:
        return None, problems
    return Ref(kind, namespace if kind.namespaced else None, name), []


def check_objects(objects) -> list[Ref]:
    """The Ref of every object, in order; an ApplyError listing every problem (unknown
    kind, wrong apiVersion, no name or namespace, an object listed twice) otherwise, so that
    nothing is sent when one object is wrong."""
    if not isinstance(objects, Sequence) or isinstance(objects, (str, bytes)):
        raise ApplyError(f"objects: give a list of API objects (mappings), not {objects!r:.80}")
    refs, problems, seen = [], [], {}
    for index, obj in enumerate(objects, 1):
        ref, found = _ref_problems(obj, index)
        problems += found
        if ref is None:
            continue
        if ref in seen:
            problems.append(f"object #{index}: {ref} is listed twice (also object #{seen[ref]})")
        seen.setdefault(ref, index)
        refs.append(ref)
    if problems:
        raise ApplyError(
            f"{len(problems)} problem(s) in the objects to apply, nothing was sent: "
            + "; ".join(problems)
        )
    return refs


# -- the client --------------------------------------------------------------------------
def client_from_kubeconfig(path: str) -> ApiClient:
    """An ApiClient for the cluster, user and CA of the kubeconfig's current context. The
    file is only read (the client never writes a refreshed token back)."""
    if not isinstance(path, str) or not os.path.isfile(path):
        raise ApplyError(
            f"kubeconfig {path}: no such file; on the CA (bootstrap) node kubesalt.kubeconfig "
            "writes /etc/kubernetes/admin.conf and super-admin.conf"
        )
    try:
        return _kubeconfig.new_client_from_config(config_file=path, persist_config=False)
    except (ConfigException, ValueError, TypeError, KeyError, OSError) as err:
        raise ApplyError(f"kubeconfig {path} cannot be used: {err}") from None


def _server(client: ApiClient) -> str:
    return client.configuration.host


def _request(client: ApiClient, method: str, path: str, query=(), body=None, content_type=None):
    """(HTTP status, decoded JSON body or None) of one request; transport failures raise."""
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    method, url, headers, body, post = client.param_serialize(
        method=method,
        resource_path=path,
        query_params=list(query),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = client.call_api(method, url, headers, body, post, _request_timeout=REQUEST_TIMEOUT)
    data = response.read()
    try:
        decoded = json.loads(data) if data else None
    except ValueError:
        decoded = {"message": data[:200].decode("utf-8", "replace")}
    return response.status, decoded


def _transport_error(ref: Ref, verb: str, server: str, err: Exception) -> ApplyError:
    """A request that got no HTTP answer: refused, timed out, or TLS failed."""
    said = getattr(err, "reason", None) or err
    text = str(said)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
        hint = (
            "TLS failed: the kubeconfig's certificate-authority-data must be the cluster CA "
            "that signed the API server's certificate (kubesalt.pki)"
        )
    elif isinstance(said, urllib3.exceptions.TimeoutError) and not isinstance(
        said,
        urllib3.exceptions.NewConnectionError,  # a subclass of the connect timeout
    ):
        hint = (
            f"the API server at {server} did not answer within {REQUEST_TIMEOUT[1]}s: check "
            "kube-apiserver and etcd on the control-plane nodes (crictl ps, crictl logs)"
        )
    else:
        host = urlsplit(server).hostname or server
        hint = (
            f"nothing answers at {server}: check that keepalived holds the API VIP {host} "
            "(ip addr on the control-plane nodes) and that kube-apiserver runs there "
            "(crictl ps, journalctl -u kubelet)"
        )
    return ApplyError(f"{verb} {ref} failed: no answer from {server} ({text}). Hint: {hint}")


def _hint(ref: Ref, status: int, details: dict) -> str | None:
    """What to do about the API's refusal, for the common ones."""
    if status == 401:
        return (
            "the API server does not accept the kubeconfig's credentials (a client certificate "
            "expired or from another CA): renew admin.conf with kubesalt.kubeconfig on the CA node"
        )
    if status == 403:
        return (
            "the kubeconfig's user lacks the right: admin.conf's group kubeadm:cluster-admins has "
            "rights only through the ClusterRoleBinding kubeadm:cluster-admins (to cluster-admin), "
            "which kubesalt applies first with super-admin.conf; check that it exists "
            "(kubectl --kubeconfig /etc/kubernetes/super-admin.conf get clusterrolebinding "
            "kubeadm:cluster-admins)"
        )
    if status == 404 and details.get("kind") == "namespaces":
        return f"the namespace {ref.namespace} does not exist: create it before its objects"
    if status == 404:
        return (
            f"the API server does not serve {ref.kind.api_version} {ref.kind.plural}: is it "
            "Kubernetes 1.33? (kubectl api-resources)"
        )
    if status == 409:
        return (
            "another client changed the object at the same moment, or the object carries a "
            "stale metadata.resourceVersion (a rendered object must carry none): apply again"
        )
    if status == 422:
        return (
            "the API server refused the object as invalid (its message names the field): a "
            "rendering bug in kubesalt or a configuration value kubesalt does not check"
        )
    if status == 429 or status >= 500:
        return (
            "the API server is overloaded or failing: check kube-apiserver and etcd on the "
            "control-plane nodes (crictl ps, crictl logs), then apply again"
        )
    return None


def api_error(ref: Ref, verb: str, status: int, answer) -> ApplyError:
    """The API's refusal as a person reads it: the object, the HTTP status, the Status
    reason and message, and what to do for the common ones."""
    answer = answer if isinstance(answer, dict) else {}
    reason = answer.get("reason") or ""
    message = answer.get("message") or "no message"
    details = answer.get("details") if isinstance(answer.get("details"), dict) else {}
    said = f"HTTP {status}{' ' + reason if reason else ''}: {message}"
    hint = _hint(ref, status, details)
    text = f"{verb} {ref} failed: {said}" + (f". Hint: {hint}" if hint else "")
    return ApplyError(text, status=status, reason=reason or None)


def _call(client: ApiClient, ref: Ref, verb: str, method: str, query=(), body=None, ctype=None):
    try:
        return _request(client, method, ref.path, query, body, ctype)
    except (urllib3.exceptions.HTTPError, ApiException, OSError) as err:
        raise _transport_error(ref, verb, _server(client), err) from None


def read_object(client: ApiClient, ref: Ref) -> dict | None:
    """The live object, or None when the API server has none by that name."""
    status, answer = _call(client, ref, "read", "GET")
    if status == 404 and isinstance(answer, dict) and answer.get("reason") == "NotFound":
        # Only a 404 naming this object means it is absent; one about the resource type
        # ("the server could not find the requested resource") is an error.
        details = answer.get("details") if isinstance(answer.get("details"), dict) else {}
        if details.get("kind") == ref.kind.plural and details.get("name") == ref.name:
            return None
    if status != 200:
        raise api_error(ref, "read", status, answer)
    return answer


# -- applying ----------------------------------------------------------------------------
def _server_apply(
    client: ApiClient, ref: Ref, obj: dict, dry_run: bool, manager: str = FIELD_MANAGER
) -> dict:
    query = [("fieldManager", manager), ("force", "true")]
    if dry_run:
        query.append(("dryRun", "All"))
    verb = "dry-run apply" if dry_run else "apply"
    status, answer = _call(client, ref, verb, "PATCH", query, obj, APPLY_CONTENT_TYPE)
    if status not in (200, 201):
        raise api_error(ref, verb, status, answer)
    return answer or {}


def _resource_version(obj: dict | None):
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


def comparable(obj: dict) -> dict:
    """The object without what the API server sets on every write (resourceVersion, the
    times in managedFields): equal for two answers exactly when the stored object is."""
    out = copy.deepcopy(obj)
    meta = out.get("metadata") or {}
    meta.pop("resourceVersion", None)
    for entry in meta.get("managedFields") or []:
        if isinstance(entry, dict):
            entry.pop("time", None)
    return out


def _outcome(before: dict | None, after: dict, dry_run: bool) -> str:
    if before is None:
        return CREATED
    if dry_run:
        return UNCHANGED if comparable(after) == comparable(before) else CONFIGURED
    return UNCHANGED if _resource_version(after) == _resource_version(before) else CONFIGURED


def _same_taint(one: dict, other: dict) -> bool:
    # The API identifies a taint by key and effect; its value is not part of the identity.
    return one.get("key") == other.get("key") and one.get("effect") == other.get("effect")


def split_node_patch(obj: dict, live: dict) -> tuple[dict, dict | None]:
    """A Node patch as two applies: (everything but spec.taints, under FIELD_MANAGER; the
    taints to add, under TAINT_MANAGER, or None when the live Node has them all).

    spec.taints is an atomic list for server-side apply: its applier owns the whole list,
    and a later apply without it removes it. So kubesalt's own manager never sends it, and
    the taints are applied only when one is missing, as the live list plus the missing
    ones: taints set by the node controller or an operator are kept, and a second run
    sends nothing."""
    rest = copy.deepcopy(obj)
    wanted = (rest.pop("spec", None) or {}).get("taints") or []
    current = (live.get("spec") or {}).get("taints") or []
    missing = [t for t in wanted if not any(_same_taint(t, c) for c in current)]
    if not missing:
        return rest, None
    taints = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
              "metadata": {"name": obj["metadata"]["name"]},
              "spec": {"taints": [*current, *missing]}}  # fmt: skip
    return rest, taints


def apply_object(client: ApiClient, ref: Ref, obj: dict, dry_run: bool = False) -> Applied:
    """Server-side apply one object (checked by `check_objects`); what it did."""
    before = read_object(client, ref)
    if ref.kind.kind != "Node":
        after = _server_apply(client, ref, obj, dry_run)
        return Applied(ref, _outcome(before, after, dry_run), dry_run)
    if before is None:
        # The kubelet creates its Node; an apply would create a Node without a kubelet.
        # (A Node deleted between the read and the apply would still be created: the window
        # is one request wide.)
        return Applied(ref, PENDING, dry_run)
    labels, taints = split_node_patch(obj, before)
    outcome = _outcome(before, _server_apply(client, ref, labels, dry_run), dry_run)
    if taints is not None:  # a taint is missing: adding it changes the Node
        _server_apply(client, ref, taints, dry_run, TAINT_MANAGER)
        outcome = CONFIGURED
    return Applied(ref, outcome, dry_run)


def apply_objects(
    client: ApiClient, objects: Sequence[dict], dry_run: bool = False
) -> list[Applied]:
    """Server-side apply `objects` in the order given, with field manager FIELD_MANAGER and
    force; with `dry_run`, the API server checks and answers but stores nothing. Every
    object is checked before the first request. On the first refusal it stops: the error
    names the object, the API's answer and how many objects were applied before it."""
    refs = check_objects(objects)
    done: list[Applied] = []
    for ref, obj in zip(refs, objects, strict=True):
        try:
            done.append(apply_object(client, ref, obj, dry_run))
        except ApplyError as err:
            left = len(refs) - len(done) - 1
            raise ApplyError(
                f"{err} ({len(done)} object(s) before it applied; the {left} after it not sent)",
                status=err.status,
                reason=err.reason,
            ) from None
    return done


def summary(results: Sequence[Applied]) -> str:
    """One line for people: counts per outcome, then each pending Node."""
    counts = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    order = (CREATED, CONFIGURED, UNCHANGED, PENDING)
    would = "would be " if results and results[0].dry_run else ""
    parts = [
        f"{counts[outcome]} {would if outcome in CHANGED else ''}{outcome}"
        for outcome in order
        if outcome in counts
    ]
    text = f"{len(results)} object(s): {', '.join(parts) or 'none'}"
    pending = [result.describe() for result in results if result.outcome == PENDING]
    return "; ".join([text, *pending])
