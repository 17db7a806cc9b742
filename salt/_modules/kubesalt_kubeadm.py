"""What kubeadm would write on this node, for the states of kubesalt.pki, etcd, apiserver, ...

A thin wrapper over ``kubesalt.kubeadm`` (the code ``scripts/render-node`` runs): this node's
roles come from pillar ``kubesalt:nodes``, its IPs (control-plane and workload-plane) from its
grains, the other members and the bootstrap registry from the mine. The states take every value from here; templates only
place them. Certificates are not rendered here: x509_v2 issues them (remote signing on the
CA minion, under the policies of the ``kubesalt_pki`` ext_pillar), and ``content`` reads
them back from disk to embed them in kubeconfigs and to compute the config digest of the
static pods, at the time the state runs.

Files live under the grain ``kubesalt_root`` (default ``/``), which only tests and previews
set (several minions on one machine).
"""

import dataclasses
import logging
import os

from salt.exceptions import CommandExecutionError

try:
    from kubesalt import mine as _mine
    from kubesalt import mine_ips as _published_ips
    from kubesalt import pkicheck as _pkicheck
    from kubesalt import renewal as _renewal
    from kubesalt import roles as _rolenames
    from kubesalt import saltglue as _glue
    from kubesalt import sealing as _sealing
    from kubesalt import signing_policies as _policies
    from kubesalt.kubeadm import cluster as _cluster
    from kubesalt.kubeadm import containerd as _containerd
    from kubesalt.kubeadm import kubeconfig as _kubeconfig
    from kubesalt.kubeadm import paths as _paths
    from kubesalt.kubeadm import pki as _pki
    from kubesalt.kubeadm import render as _render
    from kubesalt.kubeadm import skip as _skip
    from kubesalt.kubeadm import staticpod as _staticpod
    from kubesalt.kubeadm.certs import ca_files_for, ca_specs, node_certificates
    from kubesalt.kubeadm.model import Layout

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

log = logging.getLogger(__name__)

__virtualname__ = "kubesalt_kubeadm"

COMPONENTS = (
    "etcd",
    "apiserver",
    "controller-manager",
    "scheduler",
    "kubeconfig",
    "kubelet",
    "containerd",
)
MANIFESTS = {
    "etcd": "etcd.yaml",
    "apiserver": "kube-apiserver.yaml",
    "controller-manager": "kube-controller-manager.yaml",
    "scheduler": "kube-scheduler.yaml",
}
RESOLVED_CONF = "/run/systemd/resolve/resolv.conf"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def _config():
    return _glue.config_from_pillar(__pillar__, required=("ca",))  # noqa: F821 (Salt dunder)


def _id():
    return __grains__["id"]  # noqa: F821


def _layout():
    return Layout(__grains__.get("kubesalt_root") or "/")  # noqa: F821


def _roles(cfg):
    return _glue.call(_cluster.roles_by_node, cfg.get("nodes"))


def _mine_of(function):
    """{minion: data} of a mine function, from this job's one mine request (kubesalt.mine:
    a highstate renders dozens of files, each needing the peers)."""
    return _mine.published(__salt__["mine.get"], __context__, function)  # noqa: F821


def _mine_ips():
    """Every node's control-plane IP in the mine."""
    return {
        name: ip
        for name, ip in _mine_of(_mine.CONTROL_PLANE_IP).items()
        if isinstance(ip, str) and ip
    }


def _ips(cfg):
    """Every usable control-plane IP: another node's bad mine entry leaves that node out
    (kubesalt.mine_ips); this node's own IP, from its grain, must be good."""
    ips = _mine_ips()
    # The node's own IP from its grain, read every time: kubesalt.node may have chosen it
    # earlier in this same job.
    own = __salt__["grains.get"]("kubesalt:control_plane_ip")  # noqa: F821
    if own:
        ips[_id()] = own
    _glue.call(_published_ips.check_own, _id(), ips, cfg)
    return _published_ips.usable(ips, cfg)


# The etcd members this node joined with (``--initial-cluster``), recorded by the
# deploy_node orchestration at join time (kubesalt_etcd.add_learner's answer), so that a
# later join does not rewrite this member's manifest (docs/orchestrations.md).
INITIAL_CLUSTER_GRAIN = "kubesalt:etcd_initial_cluster"


def _workload_ip(cfg):
    """This node's workload-plane IP (the kubelet's --node-ip), from its grain, read every
    time like the control-plane IP: kubesalt.node may have chosen it earlier in this job."""
    own = __salt__["grains.get"](_cluster.WORKLOAD_IP_GRAIN)  # noqa: F821
    return _glue.call(_cluster.own_workload_ip, cfg, _id(), own)


def _node(cfg, roles=None, ips=None):
    roles = roles if roles is not None else _roles(cfg)
    ips = ips if ips is not None else _ips(cfg)
    host = __grains__.get("host")  # noqa: F821
    version = _cluster.recorded_version(cfg.get("nodes"), _id())
    this = _glue.call(_cluster.build_node, cfg, _id(), roles, ips, host, _workload_ip(cfg), version)
    joined = __salt__["grains.get"](INITIAL_CLUSTER_GRAIN)  # noqa: F821
    if joined and _rolenames.ETCD in this.roles:
        # A first node with the grain lost its etcd data and joined again (a restore).
        members = tuple((str(name), str(ip)) for name, ip in joined)
        this = _glue.call(dataclasses.replace, this, etcd_members=members, rejoined=this.first)
    return this


def _is_ca(cfg):
    return _id() == cfg["ca"]["minion"]


def _mode(value):
    return f"{value:04o}"


def _read(path, what):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise CommandExecutionError(
            f"{what} {path} cannot be read ({err.strerror}); apply kubesalt.pki first"
        ) from err


def node():
    """
    Return this node as the renderer sees it: name, control-plane IP, workload-plane IP
    (the kubelet's ``--node-ip``), roles, whether it plays ``kubeadm init`` (``first``), its
    etcd members and whether it is the CA minion.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_kubeadm.node
    """
    cfg = _config()
    this = _node(cfg)
    return {
        "name": this.name,
        "ip": this.ip,
        "workload_ip": this.workload_ip,
        "roles": sorted(this.roles),
        "first": this.first,
        "rejoined": this.rejoined,
        "etcd_members": [list(member) for member in this.etcd_members],
        "ca": _is_ca(cfg),
        "root": _layout().root,
    }


def pki():
    """
    Return this node's PKI as the states of ``kubesalt.pki`` need it: the CAs (created here
    on the CA minion; elsewhere, the CA certificates published in the mine), the
    service-account key files, and every certificate with its key, signing policy and CA
    server (none on the CA minion, which signs locally under the same policies). Each CA
    and certificate has ``expected``: what it must be once issued, for the local check of
    the ``kubesalt_pki`` states (``kubesalt.pkicheck``; ``ca_cert`` is this node's copy of
    the CA that signs it). ``days_remaining`` is ``pki.renewBeforeDays``; ``renewal`` the
    override of a renew_certificates run (pillar ``kubesalt_renew``), else None.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_kubeadm.pki
    """
    cfg = _config()
    layout = _layout()
    this = _node(cfg)
    is_ca = _is_ca(cfg)
    key_args = _glue.call(_policies.key_args, cfg)
    cas = []
    specs = _glue.call(ca_specs, cfg, layout)
    for kind, with_key in _glue.call(ca_files_for, this).items():
        spec = specs[kind]
        cas.append(
            {
                "kind": kind,
                "cert": spec.cert_path,
                "key": spec.key_path if with_key else None,
                "mine": _mine.CA_CERTIFICATES[kind],
                "CN": spec.common_name,
                "subjectAltName": spec.subject_alt_name,
                "basicConstraints": spec.basic_constraints,
                "keyUsage": "critical, " + ", ".join(spec.key_usage),
                "subjectKeyIdentifier": "hash",
                "days_valid": spec.validity_days,
                "expected": _pkicheck.expected_from_spec(spec, None).as_mapping(),
            }
        )
    certificates = []
    window = _glue.call(_renewal.renew_before_days, cfg)
    override = _glue.call(_renewal.Override.from_pillar, __pillar__.get(_renewal.PILLAR_KEY))  # noqa: F821
    for spec in _glue.call(node_certificates, cfg, this, layout):
        cert, key = _paths.cert_files(spec, layout)
        signer = specs[spec.signer]
        certificates.append(
            {
                "kind": spec.kind,
                "cert": cert,
                "key": key,
                "signing_policy": _policies.policy_name(spec, this.name),
                "days_remaining": window,
                "ca_CN": signer.common_name,
                "expected": _pkicheck.expected_from_spec(spec, signer.cert_path).as_mapping(),
            }
        )
    directories = {layout.kubernetes_dir: "0755", layout.pki_dir: "0755"}
    if this.control_plane or this.has(_rolenames.ETCD) or is_ca:
        directories[layout.pki("etcd")] = "0755"
    if any(spec.kubeconfig_path for spec in node_certificates(cfg, this, layout)):
        directories[layout.pki(_paths.KUBECONFIG_CERT_DIR)] = "0700"
    service_account = None
    if this.control_plane or is_ca:
        service_account = {"key": layout.pki("sa.key"), "pub": layout.pki("sa.pub")}
    return {
        "ca_server": None if is_ca else cfg["ca"]["minion"],
        "is_ca": is_ca,
        "key_args": key_args,
        "directories": directories,
        "cas": cas,
        "certificates": certificates,
        "service_account": service_account,
        "renewal": override.as_pillar() if override else None,
    }


def _registry(cfg, roles, ips):
    bootstrap = sorted(
        name for name, node_roles in roles.items() if _rolenames.BOOTSTRAP in node_roles
    )
    if not bootstrap or not ips.get(bootstrap[0]):
        raise CommandExecutionError(
            "No bootstrap node with a control-plane IP in the inventory and the mine: "
            "containerd pulls every image from the bootstrap registry; declare the "
            "bootstrap node with the bootstrap role and apply kubesalt.node on it"
        )
    return _containerd.default_registry_endpoint(ips[bootstrap[0]])


def _rendered(cfg, component, this, layout):
    """{path: RenderedFile} of `component` (no content for kubeconfigs and manifests)."""
    if component in MANIFESTS:
        wanted = {
            "etcd": this.has(_rolenames.ETCD),
            "apiserver": this.control_plane,
            "controller-manager": this.control_plane,
            "scheduler": this.control_plane,
        }[component]
        if not wanted:
            return {}
        return {os.path.join(layout.manifests_dir, MANIFESTS[component]): None}
    if component == "kubeconfig":
        specs = node_certificates(cfg, this, layout)
        return {spec.kubeconfig_path: None for spec in specs if spec.kubeconfig_path}
    if component == "kubelet":
        return _render.kubelet_files(
            cfg,
            this,
            layout,
            systemd_resolved=os.path.exists(RESOLVED_CONF),
            os_family=__grains__.get("os_family", "Debian"),  # noqa: F821
        )
    if component == "containerd":
        if not _rolenames.runs_kubelet(this.roles):
            return {}
        roles, ips = _roles(cfg), _ips(cfg)
        return _render.containerd_files(cfg, this, layout, _registry(cfg, roles, ips))
    raise CommandExecutionError(
        f"Unknown component {component!r}: use one of {', '.join(COMPONENTS)}"
    )


def files(component):
    """
    Return the files ``component`` writes on this node, by path, with their mode, and the
    directories they need (kubeadm's modes). Components: etcd, apiserver,
    controller-manager, scheduler, kubeconfig, kubelet, containerd.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_kubeadm.files apiserver
    """
    cfg = _config()
    layout = _layout()
    this = _node(cfg)
    rendered = _glue.call(_rendered, cfg, component, this, layout)
    modes = {
        "kubeconfig": _render.KUBECONFIG_MODE,
        **dict.fromkeys(MANIFESTS, _render.MANIFEST_MODE),
    }
    result_files = {
        path: _mode(item.mode if item is not None else modes[component])
        for path, item in rendered.items()
    }
    all_dirs = _render.directories(this, layout)
    parents = set()
    for path in result_files:
        parent = os.path.dirname(path)
        while parent not in ("/", "") and parent != layout.root.rstrip("/"):
            parents.add(parent)
            parent = os.path.dirname(parent)
    if component == "etcd" and result_files:
        parents.add(layout.etcd_data_dir)
    if component == "kubelet" and result_files:
        parents.add(layout.manifests_dir)
    directories = {path: _mode(all_dirs[path].mode) for path in sorted(parents & set(all_dirs))}
    return {"files": result_files, "directories": directories}


class _OnDisk(dict):
    """The files a pod reads, loaded from disk on first use (for the config digest)."""

    def __contains__(self, path):
        return os.path.isfile(path)

    def __missing__(self, path):
        self[path] = _read(path, "the file")
        return self[path]


def _manifest(cfg, this, layout, path):
    name = os.path.basename(path)[: -len(".yaml")]
    existing = frozenset(p for p in _staticpod.OPTIONAL_CA_DIRS if os.path.isdir(p))
    rendered_path, rendered = _glue.call(
        _render.manifest_file, cfg, this, layout, name, _OnDisk(), existing
    )
    if rendered_path != path:
        raise CommandExecutionError(f"{path} is not a static pod of node {this.name}")
    return rendered.content


def _kubeconfig_content(cfg, this, layout, path):
    specs = [s for s in node_certificates(cfg, this, layout) if s.kubeconfig_path == path]
    if not specs:
        raise CommandExecutionError(f"{path} is not a kubeconfig of node {this.name}")
    spec = specs[0]
    cert, key = _paths.cert_files(spec, layout)
    ca = _read(layout.pki("ca.crt"), "the cluster CA certificate")
    cert_pem = _read(cert, "the certificate")
    return _kubeconfig.render(cfg, this, spec, ca, cert_pem, _read(key, "the private key"))


def _service_account_key(cfg, layout):
    path = layout.pki("sa.key")
    ca_minion = cfg["ca"]["minion"]
    published = _mine_of(_mine.SA_PUB).get(ca_minion)
    if not published:
        raise CommandExecutionError(
            f"The CA minion {ca_minion} has not published the service-account public key "
            f"(mine function {_mine.SA_PUB}); apply kubesalt.pki on {ca_minion} first"
        )
    if os.path.isfile(path):
        current = _read(path, "the service-account key")
        key = _glue.call(_pki.load_key, current, path)
        if _pki.public_key_to_pem(key).strip() == published.encode().strip():
            return current
    recipient, public = _sealing.new_recipient()
    answer = __salt__["publish.publish"](  # noqa: F821
        ca_minion,
        "kubesalt_kubeadm.service_account_key",
        arg=[f"public_key={public}"],
        timeout=60,
    )
    answer = (answer or {}).get(ca_minion)
    if not isinstance(answer, dict) or answer.get("errors") or not answer.get("data"):
        detail = (answer or {}).get("errors") if isinstance(answer, dict) else answer
        raise CommandExecutionError(
            f"The CA minion {ca_minion} did not give the service-account key: {detail!r}. "
            f"Check that {ca_minion} is up, that this node has the control-plane role in the "
            "inventory, and that the master's peer configuration allows "
            "kubesalt_kubeadm.service_account_key"
        )
    return _glue.call(_sealing.unseal, answer["data"], recipient)


def content(path):
    """
    Return the content of one file this node gets (a static pod manifest, a kubeconfig,
    sa.key or sa.pub, a kubelet or containerd file), computed now: the templates of the
    states call it when the state runs, after the certificates it embeds or digests were
    issued.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_kubeadm.content /etc/kubernetes/manifests/etcd.yaml
    """
    cfg = _config()
    layout = _layout()
    this = _node(cfg)
    if os.path.dirname(path) == layout.manifests_dir:
        data = _manifest(cfg, this, layout, path)
    elif path in (layout.pki("sa.key"), layout.pki("sa.pub")):
        if not (this.control_plane or _is_ca(cfg)):
            raise CommandExecutionError(
                f"{path}: node {this.name} has no control-plane role, so no service-account key"
            )
        if path == layout.pki("sa.pub"):
            key = _read(layout.pki("sa.key"), "the service-account key")
            data = _pki.public_key_to_pem(_glue.call(_pki.load_key, key, layout.pki("sa.key")))
        elif _is_ca(cfg):
            data = _read(path, "the service-account key")
        else:
            data = _service_account_key(cfg, layout)
    elif os.path.dirname(path) == layout.kubernetes_dir and path.endswith(".conf"):
        data = _kubeconfig_content(cfg, this, layout, path)
    else:
        data = None
        for component in ("kubelet", "containerd"):
            rendered = _glue.call(_rendered, cfg, component, this, layout)
            if path in rendered:
                data = rendered[path].content
        if data is None:
            raise CommandExecutionError(f"{path} is not a file that node {this.name} gets")
    return data.decode()


def ca_certificate(kind):
    """
    Return the PEM certificate of a CA (``ca``, ``etcd-ca``, ``front-proxy-ca``) as the CA
    minion published it in the mine.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_kubeadm.ca_certificate etcd-ca
    """
    if kind not in _mine.CA_CERTIFICATES:
        raise CommandExecutionError(
            f"Unknown CA {kind!r}: use one of {', '.join(_mine.CA_CERTIFICATES)}"
        )
    ca_minion = _config()["ca"]["minion"]
    pem = _mine_of(_mine.CA_CERTIFICATES[kind]).get(ca_minion)
    if not pem:
        raise CommandExecutionError(
            f"The CA minion {ca_minion} has not published the {kind} certificate (mine "
            f"function {_mine.CA_CERTIFICATES[kind]}); apply kubesalt.pki on {ca_minion} first, and check "
            "that its pillar has the kubesalt_pki mine functions"
        )
    return pem


def service_account_key(public_key, **kwargs):
    """
    On the CA minion, called by a control-plane node through the master (peer publish):
    return the service-account key sealed for ``public_key`` (a throwaway X25519 public key,
    base64), if the requesting minion, as the master identifies it, has the control-plane
    role in the inventory. Returns ``data`` (the sealed key) and ``errors``.

    CLI Example:

    .. code-block:: bash

        salt-call publish.publish ca.minion kubesalt_kubeadm.service_account_key arg=<key>
    """
    requester = kwargs.get("__pub_id")
    ret = {"data": None, "errors": []}
    try:
        cfg = _config()
        if not _is_ca(cfg):
            ret["errors"].append(f"{_id()} is not the CA minion ({cfg['ca']['minion']})")
            return ret
        roles = _roles(cfg)
        if not requester or _rolenames.CONTROL_PLANE not in roles.get(requester, ()):
            ret["errors"].append(
                f"minion {requester!r} is not permitted to get the service-account key: "
                "only nodes with the control-plane role in the inventory are"
            )
            return ret
        key = _read(_layout().pki("sa.key"), "the service-account key")
        ret["data"] = _glue.call(_sealing.seal, key, public_key)
    except CommandExecutionError as err:
        log.error("kubesalt_kubeadm.service_account_key: %s", err)
        ret["errors"].append(str(err))
    return ret


def path(name):
    """
    Return where the absolute path ``name`` (as on a real node) lives on this node: under
    the grain ``kubesalt_root`` when it is set, else unchanged.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_kubeadm.path /etc/kubernetes/manifests/etcd.yaml
    """
    return _glue.call(_layout().path, name)


def published():
    """
    On the CA minion, tell whether the mine holds the current CA certificates and the
    service-account public key (False when one is missing or stale: publish again with
    ``mine.update``).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_kubeadm.published
    """
    cfg = _config()
    layout = _layout()
    ca_minion = cfg["ca"]["minion"]
    # The job's one mine answer, often taken while its SLS rendered, before any state ran:
    # a CA file this job wrote differs from it, so the check still says "publish again".
    for kind, function in _mine.CA_CERTIFICATES.items():
        current = _mine_of(function).get(ca_minion)
        file_path = layout.pki(f"{_pki.CA_FILES[kind]}.crt")
        if not current or not os.path.isfile(file_path):
            return False
        if current.strip() != _read(file_path, "the CA certificate").decode().strip():
            return False
    sa_pub = _mine_of(_mine.SA_PUB).get(ca_minion)
    sa_key = layout.pki("sa.key")
    if not sa_pub or not os.path.isfile(sa_key):
        return False
    key = _glue.call(_pki.load_key, _read(sa_key, "the service-account key"), sa_key)
    return _pki.public_key_to_pem(key).decode().strip() == sa_pub.strip()


def skipped(phase):
    """
    Tell whether this node skips ``phase`` (``containerd`` or ``kubelet``): whether it is in
    ``kubesalt_skip_phases``, a list read with ``config.get`` (a grain, a pillar key or a
    minion option; the lab sets the grain). An unknown name, asked for or listed there, is
    an error naming the phases a node can skip.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_kubeadm.skipped kubelet
    """
    value = __salt__["config.get"](_skip.GRAIN, [])  # noqa: F821
    return _glue.call(_skip.skipped, phase, value)


def role_files(role, components=None):
    """
    Return the files this node has because of ``role`` (``etcd``, ``control-plane``,
    ``node``), static pod manifests first: those the renderer gives the node with the role
    and not without it, whether the inventory still lists the role or not. The
    ``kubesalt.roles.<role>-absent`` states remove them. ``components`` limits the list to
    some of ``manifests``, ``kubeconfig``, ``pki``, ``kubelet``, ``containerd``.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_kubeadm.role_files control-plane
        salt-call kubesalt_kubeadm.role_files node '[pki, kubeconfig]'
    """
    cfg = _config()
    wanted = tuple(components) if components else _paths.COMPONENTS
    return _glue.call(
        _paths.role_files, cfg, _id(), role, _roles(cfg), _layout(), components=wanted
    )


def stale_files(component):
    """
    Return the files of ``component`` this node may hold but no longer gets: written for
    another Kubernetes release (``instance-config.yaml`` of 1.34 on a node moved back to
    1.33), for the component's configured state to remove.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_kubeadm.stale_files kubelet
    """
    cfg = _config()
    this = _node(cfg)
    return _glue.call(_paths.stale_files, cfg, this, component, _layout(), _is_ca(cfg))


def component_files(component):
    """
    Return every file of ``component`` (``pki``, ``kubeconfig``, ``kubelet``,
    ``containerd``, ``manifests``) a node can have, for its absent state: on the CA minion
    without the CA certificates and the service-account key; never a CA key.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_kubeadm.component_files pki
    """
    cfg = _config()
    return _glue.call(_paths.component_files, cfg, _id(), component, _layout(), _is_ca(cfg))
