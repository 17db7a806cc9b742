"""Building blocks of a static pod, as kubeadm's `util/staticpod/utils.go` has them.

Probes with kubeadm's numbers, hostPath volumes and their mounts, proxy variables, the pod
skeleton (`ComponentPod`), and kubesalt's config digest over the files a pod reads.
"""

from __future__ import annotations

import hashlib
import math

from kubesalt.kubeadm import RenderError
from kubesalt.kubeadm.images import image
from kubesalt.kubeadm.model import Layout

PRIORITY = 2000001000
PRIORITY_CLASS = "system-node-critical"
NAMESPACE = "kube-system"
# kubeadm's ControlPlaneComponentHealthCheckTimeout (4 min) over a 10 s period.
STARTUP_FAILURE_THRESHOLD = math.ceil(240 / 10)
# Mounted only when they exist on the host (kubeadm `getHostPathVolumesForTheControlPlane`).
OPTIONAL_CA_DIRS = (
    "/etc/ca-certificates",
    "/etc/pki/ca-trust",
    "/etc/pki/tls/certs",
    "/usr/local/share/ca-certificates",
    "/usr/share/ca-certificates",
)
# kubesalt's own annotation: a digest of the certificates and kubeconfigs the pod reads, so
# that renewing them changes the manifest and the kubelet restarts the pod.
ANNOTATION_CONFIG_DIGEST = "kubesalt.io/config-digest"


def probe(host: str, path: str, port: int, scheme: str, kind: str) -> dict:
    """An httpGet probe with kubeadm's numbers for `kind` (liveness, readiness, startup)."""
    numbers = {
        "liveness": (10, 15, 8, 10),
        "readiness": (0, 15, 3, 1),
        "startup": (10, 15, STARTUP_FAILURE_THRESHOLD, 10),
    }
    if kind not in numbers:
        raise RenderError(f"probe kind {kind!r} is unknown; valid: {', '.join(numbers)}")
    initial_delay, timeout, failure, period = numbers[kind]
    result = {
        "failureThreshold": failure,
        "httpGet": {"host": host, "path": path, "port": port, "scheme": scheme},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
    }
    if initial_delay:  # a zero initialDelaySeconds is omitted, as in kubeadm's YAML
        result["initialDelaySeconds"] = initial_delay
    return result


def host_path(name: str, path: str, path_type: str, read_only: bool) -> tuple[dict, dict]:
    """A hostPath volume and its mount at the same path."""
    volume = {"hostPath": {"path": path, "type": path_type}, "name": name}
    mount = {"mountPath": path, "name": name}
    if read_only:
        mount["readOnly"] = True
    return volume, mount


def optional_ca_volumes(existing_paths: frozenset[str] | set[str]) -> list[tuple[dict, dict]]:
    """The optional host CA directories that exist, read-only (`etc-pki-ca-trust`, ...)."""
    return [
        host_path(path.strip("/").replace("/", "-"), path, "DirectoryOrCreate", True)
        for path in OPTIONAL_CA_DIRS
        if path in existing_paths
    ]


def proxy_env(cfg: dict) -> list[dict]:
    """Proxy variables for the control-plane containers, sorted by name (kubeadm copies the
    `*_proxy`/`*_PROXY` variables of its environment; here they come from `proxies`)."""
    proxies = cfg.get("proxies") or {}
    values = {"HTTP_PROXY": proxies.get("http"), "HTTPS_PROXY": proxies.get("https")}
    values["NO_PROXY"] = ",".join(proxies.get("noProxy") or [])
    env = []
    for name, value in values.items():
        if value:
            env += [{"name": name, "value": value}, {"name": name.lower(), "value": value}]
    return sorted(env, key=lambda item: item["name"])


def used_files(command: list[str], layout: Layout | None = None) -> list[str]:
    """The certificate, key and kubeconfig files a command reads (its flag values under
    /etc/kubernetes), sorted and unique: what `config_digest` covers."""
    layout = layout or Layout()
    prefix = layout.kubernetes_dir.rstrip("/") + "/"
    found = set()
    for argument in command[1:]:
        _, _, value = argument.partition("=")
        for part in value.split(","):
            if part.startswith(prefix) and part.endswith((".crt", ".key", ".pub", ".conf")):
                found.add(part)
    return sorted(found)


def config_digest(files: dict[str, bytes], paths: list[str]) -> str:
    """`sha256:<hex>` over the paths and contents of `paths` (taken from `files`)."""
    missing = [p for p in paths if p not in files]
    if missing:
        raise RenderError(
            f"cannot compute the config digest: no content for {', '.join(missing)}; "
            "render or issue these files first"
        )
    outer = hashlib.sha256()
    for path in sorted(paths):
        outer.update(f"{path}\0{hashlib.sha256(files[path]).hexdigest()}\n".encode())
    return f"sha256:{outer.hexdigest()}"


def static_pod(
    name: str,
    command: list[str],
    *,
    probes: dict[str, dict],
    volumes: list[tuple[dict, dict]],
    requests: dict[str, str],
    annotations: dict[str, str] | None = None,
    env: list[dict] | None = None,
    version: str | None = None,
) -> dict:
    """A static pod as kubeadm's `ComponentPod` builds it (volumes sorted by name), with the
    image of Kubernetes release `version` (default: the archive's)."""
    volumes = sorted(volumes, key=lambda pair: pair[0]["name"])
    container = {
        "command": command,
        "image": image(name, version).pinned_reference,
        "imagePullPolicy": "IfNotPresent",
        "name": name,
        "resources": {"requests": dict(requests)},
        "volumeMounts": [mount for _, mount in volumes],
    }
    for kind, value in probes.items():
        container[f"{kind}Probe"] = value
    if env:
        container["env"] = env
    metadata = {
        "creationTimestamp": None,
        "labels": {"component": name, "tier": "control-plane"},
        "name": name,
        "namespace": NAMESPACE,
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "containers": [container],
            "hostNetwork": True,
            "priority": PRIORITY,
            "priorityClassName": PRIORITY_CLASS,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [volume for volume, _ in volumes],
        },
        "status": {},
    }
