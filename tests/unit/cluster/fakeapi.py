"""A small Kubernetes API server stand-in, for testing kubesalt.cluster.apply through the
real kubernetes client.

This machine has no kube-apiserver. FakeAPI answers on 127.0.0.1 (an ephemeral port, a
thread) the requests kubesalt sends, as the Kubernetes API documents them
(https://kubernetes.io/docs/reference/using-api/api-concepts/ and .../server-side-apply/):

- GET of an object: 200 and the object, or 404 with a v1 Status (reason NotFound, details
  name and kind); an unknown resource type: 404 "the server could not find the requested
  resource".
- POST to a collection (create): 201, 409 AlreadyExists, 422 Invalid (no name, a bad name),
  404 for a namespace that does not exist.
- PATCH ``application/apply-patch+yaml`` (server-side apply): create or merge; fieldManager
  is required (400); a field another manager set to another value is a 409 Conflict unless
  force=true (the field then changes owner); a metadata.resourceVersion in the body is a
  precondition (409 Conflict when stale); ``dryRun=All`` answers but stores nothing;
  resourceVersion is bumped, and managedFields updated, only when the stored object changes;
  metadata.generation of a Deployment or DaemonSet counts the changes of its spec; status in
  a body is ignored (status is the controllers'); 201 when it created the object, else 200.
- Authentication by bearer token: a token it does not know is 401 Unauthorized, a user in
  `forbidden` gets 403 Forbidden for everything.

The merge is simplified: maps merge key by key, lists are atomic (the real server merges
associative lists such as containers by key). kubesalt's own behaviour does not depend on it.
"""

from __future__ import annotations

import copy
import datetime
import http.server
import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

APPLY = "application/apply-patch+yaml"
RBAC = "rbac.authorization.k8s.io"
# (group/version, plural) -> (kind, namespaced): the resources this fake serves.
RESOURCES = {
    ("v1", "configmaps"): ("ConfigMap", True),
    ("v1", "secrets"): ("Secret", True),
    ("v1", "serviceaccounts"): ("ServiceAccount", True),
    ("v1", "services"): ("Service", True),
    ("v1", "nodes"): ("Node", False),
    ("v1", "namespaces"): ("Namespace", False),
    (f"{RBAC}/v1", "roles"): ("Role", True),
    (f"{RBAC}/v1", "rolebindings"): ("RoleBinding", True),
    (f"{RBAC}/v1", "clusterroles"): ("ClusterRole", False),
    (f"{RBAC}/v1", "clusterrolebindings"): ("ClusterRoleBinding", False),
    ("apps/v1", "daemonsets"): ("DaemonSet", True),
    ("apps/v1", "deployments"): ("Deployment", True),
}
WITH_GENERATION = {"Deployment", "DaemonSet"}
# RBAC names are path segments (kubeadm:cluster-admins); other names DNS-1123 subdomains.
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
IDENTITY = {"apiVersion", "kind"}
SERVER_META = {"resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"}


class Refusal(Exception):
    """An answer other than success: the HTTP status and the v1 Status body."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
        if details is not None:
            self.body["details"] = details


@dataclass(frozen=True)
class Target:
    """What a URL names."""

    group_version: str
    plural: str
    kind: str
    namespaced: bool
    namespace: str | None
    name: str | None

    @property
    def group(self) -> str:
        return self.group_version.rpartition("/")[0]

    @property
    def key(self) -> tuple:
        return (self.group_version, self.plural, self.namespace, self.name)

    def details(self, name=None) -> dict:
        out = {"name": name or self.name, "kind": self.plural}
        if self.group:
            out["group"] = self.group
        return out


@dataclass
class Stored:
    """One object: what Update-style writers wrote (`base`, by `base_manager`), what each
    apply manager applied last, and the object as served."""

    base: dict
    base_manager: str | None
    applied: dict[str, dict] = field(default_factory=dict)
    object: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict
    content_type: str | None
    user: str | None
    body: object


def _leaves(tree: dict, prefix=()):
    """(path, value) of every leaf of a map; lists and scalars are leaves."""
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def _merge(into: dict, tree: dict) -> dict:
    for key, value in tree.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def _drop(tree: dict, path: tuple) -> None:
    """Remove the leaf at `path`, and the maps it leaves empty."""
    parent = tree
    for key in path[:-1]:
        parent = parent.get(key)
        if not isinstance(parent, dict):
            return
    parent.pop(path[-1], None)
    if len(path) > 1 and not parent:
        _drop(tree, path[:-1])


def _fields_v1(tree: dict) -> dict:
    """managedFields' fieldsV1 of the fields in `tree` (every leaf an "f:" entry)."""
    out = {}
    for key, value in tree.items():
        out[f"f:{key}"] = _fields_v1(value) if isinstance(value, dict) and value else {}
    return out


def _content(obj: dict) -> dict:
    """The fields a writer owns: identity and server-set metadata left out, no status."""
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in IDENTITY | {"status"}}
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if k not in SERVER_META}
    meta.pop("name", None)
    meta.pop("namespace", None)
    if meta:
        out["metadata"] = meta
    else:
        out.pop("metadata", None)
    return out


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeAPI:
    """The fake API server. Use as a context manager; `kubeconfig(path)` writes a
    kubeconfig for it; `requests` records every request it answered."""

    def __init__(
        self,
        tokens: dict[str, str] | None = None,
        forbidden: set[str] = frozenset(),
        namespaces=("default", "kube-system", "kube-public", "kube-node-lease"),
    ):
        self.tokens = dict(tokens or {"admin-token": "kubernetes-admin"})
        self.forbidden = set(forbidden)
        self.namespaces = set(namespaces)
        self.requests: list[Request] = []
        self.delay = 0.0  # seconds every answer waits: a server too slow to answer
        self._stored: dict[tuple, Stored] = {}
        self._versions = itertools.count(100)
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    # -- life -----------------------------------------------------------------------------
    def __enter__(self):
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def kubeconfig(self, path: Path, token: str = "admin-token", server: str | None = None) -> str:
        """Write a kubeconfig whose current context reaches this server with `token`."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": server or self.url}}],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "user"}}],
            "current-context": "fake",
        }
        Path(path).write_text(yaml.safe_dump(config))
        return str(path)

    # -- what tests read and set ----------------------------------------------------------
    def stored(self, path: str) -> dict | None:
        """The object at an API path (e.g. /api/v1/namespaces/kube-system/configmaps/x)."""
        with self._lock:
            found = self._stored.get(self._target(path).key)
            return copy.deepcopy(found.object) if found else None

    def put(self, obj: dict, manager: str = "kubectl-create") -> dict:
        """Store `obj` as another client's create would (an Update by `manager`)."""
        target = self._target(self._collection(obj) + "/" + obj["metadata"]["name"])
        with self._lock:
            return copy.deepcopy(self._create(target, obj, manager, dry_run=False))

    def set_status(self, path: str, status: dict, observed: bool = True) -> None:
        """Give the object `status`, as its controller would; with `observed`,
        status.observedGeneration is the object's generation."""
        with self._lock:
            found = self._stored[self._target(path).key]
            status = copy.deepcopy(status)
            if observed:
                status["observedGeneration"] = found.object["metadata"].get("generation", 1)
            found.object["status"] = status
            found.object["metadata"]["resourceVersion"] = str(next(self._versions))

    def applies(self) -> list[Request]:
        """The server-side apply requests received."""
        return [r for r in self.requests if r.method == "PATCH"]

    # -- the API --------------------------------------------------------------------------
    @staticmethod
    def _collection(obj: dict) -> str:
        group_version = obj["apiVersion"]
        kind = obj["kind"]
        plural = next(
            p for (gv, p), (k, _) in RESOURCES.items() if gv == group_version and k == kind
        )
        base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        namespace = (obj.get("metadata") or {}).get("namespace")
        scope = (
            f"/namespaces/{namespace}"
            if namespace and RESOURCES[(group_version, plural)][1]
            else ""
        )
        return f"{base}{scope}/{plural}"

    @staticmethod
    def _target(path: str) -> Target:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group_version, rest = "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            raise Refusal(404, "NotFound", "the server could not find the requested resource", {})
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2 or (group_version, rest[0]) not in RESOURCES:
            raise Refusal(404, "NotFound", "the server could not find the requested resource", {})
        kind, namespaced = RESOURCES[(group_version, rest[0])]
        if namespaced != (namespace is not None):
            raise Refusal(404, "NotFound", "the server could not find the requested resource", {})
        name = rest[1] if len(rest) == 2 else None
        return Target(group_version, rest[0], kind, namespaced, namespace, name)

    def _authenticate(self, header: str | None) -> str:
        token = (header or "").removeprefix("Bearer ").strip()
        if token not in self.tokens:
            raise Refusal(401, "Unauthorized", "Unauthorized")
        return self.tokens[token]

    def _authorize(self, user: str, verb: str, target: Target, name: str | None) -> None:
        if user not in self.forbidden:
            return
        where = (
            f' in the namespace "{target.namespace}"'
            if target.namespace
            else " at the cluster scope"
        )
        what = f'{target.plural} "{name}"' if name else target.plural
        raise Refusal(
            403,
            "Forbidden",
            f'{what} is forbidden: User "{user}" cannot {verb} resource "{target.plural}" '
            f'in API group "{target.group}"{where}',
            target.details(name),
        )

    def _check_namespace(self, target: Target) -> None:
        if target.namespace is not None and target.namespace not in self.namespaces:
            raise Refusal(
                404,
                "NotFound",
                f'namespaces "{target.namespace}" not found',
                {"name": target.namespace, "kind": "namespaces"},
            )

    def _check_name(self, target: Target, name) -> None:
        if not name:
            raise Refusal(
                422,
                "Invalid",
                f'{target.kind} "" is invalid: metadata.name: Required value: name or '
                "generateName is required",
                {"kind": target.kind, "causes": [{"field": "metadata.name"}]},
            )
        rbac = target.group == RBAC
        valid = (
            "/" not in name and "%" not in name and name not in (".", "..")
            if rbac
            else len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name) is not None
        )
        if not valid:
            rule = (
                "may not contain '/' or '%'"
                if rbac
                else "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character"
            )
            raise Refusal(
                422,
                "Invalid",
                f'{target.kind} "{name}" is invalid: metadata.name: Invalid value: "{name}": {rule}',
                {"name": name, "kind": target.kind, "causes": [{"field": "metadata.name"}]},
            )

    def _check_body(self, target: Target, body, name: str | None) -> None:
        if not isinstance(body, dict):
            raise Refusal(400, "BadRequest", "the body is not an object")
        if (body.get("apiVersion"), body.get("kind")) != (target.group_version, target.kind):
            raise Refusal(
                400,
                "BadRequest",
                f"the API version ({body.get('apiVersion')}) and kind ({body.get('kind')}) in "
                f"the body do not match the URL ({target.group_version}, {target.kind})",
            )
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        if name is not None and meta.get("name") not in (None, name):
            raise Refusal(
                400,
                "BadRequest",
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})",
            )
        if meta.get("namespace") not in (None, target.namespace):
            raise Refusal(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )

    def _serve(self, stored: Stored, target: Target, previous: dict | None, dry_run: bool) -> dict:
        """Recompute the served object of `stored`; a new resourceVersion (and, for a
        changed spec, generation) only when the object changed."""
        content = copy.deepcopy(stored.base)
        for applied in stored.applied.values():
            _merge(content, applied)
        old_meta = (previous or {}).get("metadata") or {}
        meta = {"name": target.name}
        if target.namespace:
            meta["namespace"] = target.namespace
        meta.update(content.pop("metadata", {}))
        meta["uid"] = old_meta.get("uid") or str(uuid.uuid4())
        meta["creationTimestamp"] = old_meta.get("creationTimestamp") or _now()
        meta["managedFields"] = self._managed_fields(stored, target, old_meta)
        obj = {"apiVersion": target.group_version, "kind": target.kind, "metadata": meta, **content}
        if target.kind in WITH_GENERATION:
            generation = old_meta.get("generation", 0)
            changed_spec = previous is None or previous.get("spec") != obj.get("spec")
            meta["generation"] = generation + 1 if changed_spec else generation
        if previous is not None and "status" in previous:
            obj["status"] = copy.deepcopy(previous["status"])
        unchanged = previous is not None and _without_versions(previous) == _without_versions(obj)
        if unchanged:
            return previous
        if dry_run:
            meta["resourceVersion"] = old_meta.get("resourceVersion", "")
            if previous is None:
                meta.pop("resourceVersion")
        else:
            meta["resourceVersion"] = str(next(self._versions))
        return obj

    @staticmethod
    def _managed_fields(stored: Stored, target: Target, old_meta: dict) -> list[dict]:
        old = {(e["manager"], e["operation"]): e for e in old_meta.get("managedFields") or []}
        owners = [(stored.base_manager, "Update", stored.base)] if stored.base_manager else []
        owners += [(manager, "Apply", applied) for manager, applied in stored.applied.items()]
        entries = []
        for manager, operation, tree in owners:
            fields = _fields_v1(tree)
            if not fields:
                continue
            before = old.get((manager, operation))
            same = before is not None and before["fieldsV1"] == fields
            entries.append(
                {
                    "manager": manager,
                    "operation": operation,
                    "apiVersion": target.group_version,
                    "time": before["time"] if same else _now(),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields,
                }
            )
        return entries

    def _create(self, target: Target, body: dict, manager: str, dry_run: bool) -> dict:
        name = (body.get("metadata") or {}).get("name")
        self._check_namespace(target)
        self._check_name(target, name)
        target = Target(**{**target.__dict__, "name": name})
        if target.key in self._stored:
            raise Refusal(
                409,
                "AlreadyExists",
                f'{target.plural} "{name}" already exists',
                target.details(name),
            )
        stored = Stored(base=_content(body), base_manager=manager)
        stored.object = self._serve(stored, target, None, dry_run)
        if not dry_run:
            self._stored[target.key] = stored
        return stored.object

    def _apply(self, target: Target, body: dict, query: dict) -> tuple[int, dict]:
        manager = (query.get("fieldManager") or [None])[0]
        if not manager:
            raise Refusal(
                400, "BadRequest", "PATCH, application/apply-patch+yaml: fieldManager is required"
            )
        force = (query.get("force") or ["false"])[0] == "true"
        dry_run = (query.get("dryRun") or [None])[0] == "All"
        self._check_namespace(target)
        self._check_name(target, (body.get("metadata") or {}).get("name"))
        existing = self._stored.get(target.key)
        stored = copy.deepcopy(existing) if existing else Stored(base={}, base_manager=None)
        wanted_version = (body.get("metadata") or {}).get("resourceVersion")
        if (
            existing
            and wanted_version
            and wanted_version != existing.object["metadata"]["resourceVersion"]
        ):
            raise Refusal(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {target.plural} "{target.name}": the object '
                "has been modified; please apply your changes to the latest version and try again",
                target.details(),
            )
        applied = _content(body)
        self._take_over(stored, target, manager, applied, force)
        stored.applied[manager] = applied
        previous = existing.object if existing else None
        stored.object = self._serve(stored, target, previous, dry_run)
        if not dry_run:
            self._stored[target.key] = stored
        return (201 if existing is None else 200), stored.object

    @staticmethod
    def _take_over(stored: Stored, target: Target, manager: str, applied: dict, force: bool):
        """Fields `applied` sets that another manager holds with another value: a 409
        Conflict, or with force, they leave the other manager."""
        mine = dict(_leaves(applied))
        others = [(stored.base_manager, stored.base)] if stored.base_manager else []
        others += [(m, tree) for m, tree in stored.applied.items() if m != manager]
        conflicts = [
            (other, path)
            for other, tree in others
            for path, value in _leaves(tree)
            if path in mine and mine[path] != value
        ]
        if conflicts and not force:
            listed = "; ".join(f'conflict with "{m}": .{".".join(p)}' for m, p in conflicts)
            raise Refusal(
                409,
                "Conflict",
                f"Apply failed with {len(conflicts)} conflict(s): {listed}",
                target.details(),
            )
        for other, tree in others:
            for path in [p for o, p in conflicts if o == other]:
                _drop(tree, path)

    def handle(self, method: str, raw_path: str, headers, body_bytes: bytes) -> tuple[int, dict]:
        """The answer to one request: (HTTP status, JSON body)."""
        url = urlsplit(raw_path)
        query = parse_qs(url.query)
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip() or None
        with self._lock:
            try:
                body = yaml.safe_load(body_bytes) if body_bytes else None
            except yaml.YAMLError as err:
                body = None
                refusal = Refusal(400, "BadRequest", f"the body is not YAML or JSON: {err}")
            else:
                refusal = None
            user = None
            try:
                if refusal:
                    raise refusal
                user = self._authenticate(headers.get("Authorization"))
                target = self._target(url.path)
                return self._dispatch(method, target, user, content_type, body, query)
            except Refusal as err:
                return err.code, err.body
            finally:
                self.requests.append(Request(method, url.path, query, content_type, user, body))

    def _dispatch(self, method, target: Target, user, content_type, body, query):
        if method == "GET" and target.name:
            self._authorize(user, "get", target, target.name)
            found = self._stored.get(target.key)
            if found is None:
                raise Refusal(
                    404, "NotFound", f'{target.plural} "{target.name}" not found', target.details()
                )
            return 200, found.object
        if method == "POST" and not target.name:
            self._check_body(target, body, None)
            name = body.get("metadata", {}).get("name")
            self._authorize(user, "create", target, name)
            manager = (query.get("fieldManager") or ["kube-client"])[0]
            dry_run = (query.get("dryRun") or [None])[0] == "All"
            return 201, self._create(target, body, manager, dry_run)
        if method == "PATCH" and target.name:
            if content_type != APPLY:
                raise Refusal(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {APPLY} (this fake serves only server-side apply)",
                )
            self._check_body(target, body, target.name)
            self._authorize(user, "patch", target, target.name)
            return self._apply(target, body, query)
        raise Refusal(405, "MethodNotAllowed", f"{method} is not supported here")


def _without_versions(obj: dict) -> dict:
    out = copy.deepcopy(obj)
    out["metadata"].pop("resourceVersion", None)
    for entry in out["metadata"].get("managedFields") or []:
        entry.pop("time", None)
    return out


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart
    api: FakeAPI

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        time.sleep(self.api.delay)
        status, answer = self.api.handle(self.command, self.path, self.headers, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

    def log_message(self, *args):  # the tests read `requests`, not stderr
        pass
