"""The bootstrap node: its archives and the configuration of its services.

A thin wrapper over ``kubesalt.bootstrap`` (the same code bootstrap.sh runs): the states
of ``kubesalt.repo``, ``kubesalt.registry``, ``kubesalt.nginx`` and ``kubesalt.salt`` take
every value from here, so templates only place them. The cluster CA itself is
``kubesalt.pki.ca``'s (``kubesalt_kubeadm.pki``).
"""

import glob
import os

from salt.exceptions import CommandExecutionError

try:
    from kubesalt import pkicheck as _pkicheck
    from kubesalt import saltglue as _glue
    from kubesalt import signing_policies as _policies
    from kubesalt.bootstrap import archive as _archive
    from kubesalt.bootstrap import registry as _registry
    from kubesalt.bootstrap import services as _services
    from kubesalt.kubeadm import certs as _certs

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the minion's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_bootstrap"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def _config():
    return _glue.config_from_pillar(__pillar__)  # noqa: F821 (Salt dunder)


def _archives():
    found = _glue.call(_archive.load_register)
    if not found:
        raise CommandExecutionError(
            f"{_archive.REGISTER} lists no archive: run bootstrap.sh on this node first"
        )
    return found


def _current():
    """The archive of this run's saltenv, else the one the register records as current."""
    archives = _archives()
    saltenv = __opts__.get("saltenv")  # noqa: F821
    recorded = _glue.call(_archive.load_current)
    for wanted in (saltenv, _archive.saltenv(recorded)):
        for item in archives:
            if item.saltenv == wanted:
                return item
    return archives[0]


def _config_path():
    """The bootstrap.yaml the kubesalt ext_pillar reads (as bootstrap.sh configured it)."""
    for entry in __opts__.get("ext_pillar") or []:  # noqa: F821
        if isinstance(entry, dict) and "kubesalt" in entry:
            return (entry["kubesalt"] or {}).get("config", _services.CONFIG_PATH)
    return _services.CONFIG_PATH


def _control_plane_ip():
    return __salt__["kubesalt_network.plane_ip"]("controlPlane")  # noqa: F821


def archives():
    """
    List the archives registered on this node (ISO or directory, root, version, saltenv).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.archives
    """
    return [dict(vars(a), saltenv=a.saltenv) for a in _archives()]


def apt_sources():
    """
    Return, for each registered archive, its apt keyring (source and destination) and the
    deb822 source file (``file://`` on this node, which holds the archives).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.apt_sources
    """
    return [
        {
            "saltenv": a.saltenv,
            "keyring_source": a.path(_archive.KEYRING),
            "keyring": _archive.apt_keyring_path(a),
            "path": _archive.apt_sources_path(a),
            "contents": _archive.apt_sources(a),
            "update": " ".join(_archive.apt_update_command(a)),
        }
        for a in _archives()
    ]


def stale_apt_files():
    """
    Return the apt sources and keys of archives no longer registered on this node
    (``kubesalt-iso remove`` took them away), for ``kubesalt.repo`` to remove.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.stale_apt_files
    """
    found = [path for pattern in _archive.apt_file_patterns() for path in glob.glob(pattern)]
    return _archive.stale_apt_files(_archives(), found)


def minion_config():
    """
    Return /etc/salt/minion.d/kubesalt.conf for this node (as bootstrap.sh writes it).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.minion_config
    """
    _config()
    return _glue.call(
        _services.minion_config,
        __grains__["id"],  # noqa: F821
        _control_plane_ip(),
        _archives(),
        _current(),
        _config_path(),
    )


def master_config():
    """
    Return /etc/salt/master.d/kubesalt.conf: bound to the control-plane IP, keys accepted
    only by orchestrations, peer publication limited to x509 remote signing.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.master_config
    """
    cfg = _config()
    return _glue.call(
        _services.master_config,
        _control_plane_ip(),
        cfg["ca"]["minion"],
        _archives(),
        _current(),
        _config_path(),
    )


def salt_unit(program):
    """
    Return the systemd unit of ``salt-master`` or ``salt-minion`` (from the kubesalt
    virtualenv).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.salt_unit salt-master
    """
    units = {
        "salt-master": ("The Salt Master Server (kubesalt)", "control-group"),
        "salt-minion": ("The Salt Minion (kubesalt)", "process"),
    }
    if program not in units:
        raise CommandExecutionError(f"Unknown program {program!r}: use one of {', '.join(units)}")
    description, kill_mode = units[program]
    return _services.systemd_unit(program, description, kill_mode)


def salt_commands():
    """
    Return the Salt commands linked into /usr/local/bin, mapped to their virtualenv path.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.salt_commands
    """
    return {
        f"/usr/local/bin/{name}": f"{_services.VENV}/bin/{name}" for name in _services.SALT_COMMANDS
    }


def registry_config():
    """
    Return the registry's config.yml (loopback only, read-only; nginx fronts it).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.registry_config
    """
    return _services.registry_config()


def nginx_config():
    """
    Return nginx's kubesalt server: TLS on the control-plane IP, each archive under
    ``/<saltenv>/``, ``/v2/`` proxied to the registry.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.nginx_config
    """
    return _glue.call(_services.nginx_config, _control_plane_ip(), _archives())


def image_layouts():
    """
    Return the OCI image layouts of the registered archives (those that have one).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.image_layouts
    """
    layouts = [a.path(_archive.IMAGES_DIR) for a in _archives()]
    return [path for path in layouts if os.path.isfile(os.path.join(path, "index.json"))]


def load_images(layout, registry=None, dry_run=False):
    """
    Push the images of an OCI layout into the registry, skipping those already there with
    the same digest. Returns ``pushed`` and ``present`` image names.

    The served registry is read-only: without ``registry``, images are pushed through a
    writable instance over the same storage, started on a root-only unix socket for the
    time of the fill, and then read back from the served registry.

    layout
        The OCI image layout directory (``<archive>/images``).
    registry
        Push straight to this registry's base URL instead (it must accept pushes).
    dry_run
        Only report what would be pushed (asks the served registry, or ``registry``).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.load_images /srv/kubesalt/kubesalt-0.1.0/images
    """
    served = _registry.Client(f"http://{_services.REGISTRY_ADDRESS}")
    if registry or dry_run:
        client = _registry.Client(registry) if registry else served
        report = _glue.call(_registry.load_layout, client, layout, dry_run=dry_run)
    else:
        instance = _registry.FillInstance(
            config=_services.registry_fill_config(),
            socket_path=_services.REGISTRY_FILL_SOCKET,
            program=_services.REGISTRY_PROGRAM,
            user=_services.REGISTRY_USER,
        )
        report = _glue.call(_registry.fill, layout, served, instance)
    return {
        "pushed": report.pushed,
        "present": report.present,
        "blobs_pushed": report.blobs_pushed,
        "bytes_pushed": report.bytes_pushed,
    }


def ca():
    """
    Return the cluster CA (kubeadm's ``ca``, CN kubernetes, created by ``kubesalt.pki.ca``)
    from the kubeadm certificate table: its paths, subject, extensions, validity, key type;
    nginx's certificate is signed with it on this node.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.ca
    """
    cfg = _config()
    spec = _glue.call(_certs.ca_specs, cfg)["ca"]
    return {
        "cert": spec.cert_path,
        "key": spec.key_path,
        "CN": spec.common_name,
        "subjectAltName": spec.subject_alt_name,
        "basicConstraints": spec.basic_constraints,
        "keyUsage": "critical, " + ", ".join(spec.key_usage),
        "days_valid": spec.validity_days,
        "key_args": _glue.call(_policies.key_args, cfg),
    }


def repository_certificate():
    """
    Return nginx's certificate, signed by the cluster CA on this (the CA) node: CN the
    node's name, SANs its control-plane IP and name, renewed 30 days before expiry;
    ``expected`` is what it must be, for the local check of ``kubesalt_pki``.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_bootstrap.repository_certificate
    """
    cfg = _config()
    days = int(cfg["pki"]["certificateValidityDays"])
    node = __grains__["id"]  # noqa: F821
    ip = _control_plane_ip()
    expected = _glue.call(
        _pkicheck.Expected,
        common_name=node,
        dns_names=(node,),
        ip_addresses=(ip,),
        key_usage=_certs.KEY_USAGE_LEAF,
        extended_key_usage=(_certs.SERVER_AUTH,),
        ca_cert=_glue.call(_certs.ca_specs, cfg)["ca"].cert_path,
    )
    return {
        "cert": _services.REPOSITORY_CERT,
        "key": _services.REPOSITORY_KEY,
        "CN": node,
        "subjectAltName": f"DNS:{node}, IP:{ip}",
        "basicConstraints": "critical, CA:FALSE",
        "keyUsage": "critical, " + ", ".join(_certs.KEY_USAGE_LEAF),
        "extendedKeyUsage": _certs.SERVER_AUTH,
        "days_valid": days,
        "days_remaining": min(30, max(days - 1, 0)),
        "key_args": _glue.call(_policies.key_args, cfg),
        "expected": expected.as_mapping(),
    }
