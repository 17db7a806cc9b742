"""Run a kubesalt orchestration on the master: the glue between Salt and the engine.

Builds the real backend (the master's LocalClient, its key store, salt-ssh, the
inventory directory), runs the engine (``kubesalt.orchestrate.engine``) and turns its
report into one state return: ``changes`` keyed by phase then node, the comment listing
every phase. See ``docs/orchestrations.md``.
"""

import os

import salt.client
import salt.client.ssh.shell
import salt.key
import salt.utils.thin

try:
    from kubesalt import inventory as _inventory
    from kubesalt.errors import KubesaltError
    from kubesalt.orchestrate import backend as _backend
    from kubesalt.orchestrate import engine as _engine
    from kubesalt.orchestrate import options as _options

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the master's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_orchestrate"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


def _prepare_ssh():
    """Make salt-ssh's own key and its thin archive once, before salt-ssh runs to several
    nodes in parallel: processes started together race to make them (ssh-keygen then
    asks "Overwrite (y/n)?" on stdout, and the thin archive is read while written)."""
    opts = __opts__  # noqa: F821
    priv = opts.get("ssh_priv") or os.path.join(opts["pki_dir"], "ssh", "salt-ssh.rsa")
    if priv != "agent-forwarding" and not os.path.isfile(priv):
        salt.client.ssh.shell.gen_key(priv)
    salt.utils.thin.gen_thin(
        opts["cachedir"],
        extra_mods=opts.get("thin_extra_mods"),
        overwrite=opts.get("regen_thin", False),
        extended_cfg=opts.get("ssh_ext_alternatives"),
    )


def _inventory_dir():
    return __opts__.get("kubesalt_inventory", _inventory.DEFAULT_DIR)  # noqa: F821


def _make_backend():
    opts = __opts__  # noqa: F821
    return _backend.Backend(
        client=salt.client.get_local_client(opts["conf_file"]),
        keys=_backend.KeyStore(salt.key.Key(opts)),
        prepare_ssh=_prepare_ssh,
        master_ip=opts.get("interface"),
        inventory_dir=_inventory_dir(),
        master_pub_path=os.path.join(opts["pki_dir"], "master.pub"),
        hash_type=opts.get("hash_type") or "sha256",
    )


def state_return(name, report):
    """The engine's report as a state return: failed -> False and no changes (what
    changed before the failure is in the comment); dry run with changes -> None."""
    ret = {"name": name, "result": True, "changes": {}, "comment": report.comment()}
    if not report.ok:
        ret["result"] = False
    elif report.test:
        ret["result"] = None if report.changes else True
        ret["changes"] = report.changes
    else:
        ret["changes"] = report.changes
    return ret


def ran(name, orchestration, saltenv, pillar=None):
    """
    Run the orchestration ``orchestration`` (``bootstrap``, ``deploy_node``,
    ``remove_node``, ``renew_certificates``, ``addons``, ``restore``, ``upgrade``,
    ``downgrade``) on ``saltenv`` with the options of ``pillar``: by default this run's own
    pillar (what ``salt-run state.orchestrate ... pillar='{...}'`` gave: ``node``/``nodes``,
    ``skip_phases``, ``timeout``, ``state_timeout``, ``drain_timeout``, ``force``,
    ``renew_before_days``, ``kubernetes_version``; and
    ``kubesalt:ca:minion``, ``kubesalt:apiServer:port`` from the configuration). The SLS files do not pass it: a pillar written into the rendered SLS
    would carry every secret of the configuration into Salt's debug log. Progress goes to
    this process's stderr and /var/log/kubesalt/orchestrate.log as it happens.
    """
    if pillar is None:
        pillar = __pillar__  # noqa: F821
    try:
        declared = _inventory.load(_inventory_dir())
        options = _options.from_pillar(orchestration, dict(pillar or {}), saltenv, declared)
    except KubesaltError as err:
        return {"name": name, "result": False, "changes": {}, "comment": str(err)}
    report = _engine.execute(options, _make_backend(), test=bool(__opts__.get("test")))  # noqa: F821
    return state_return(name, report)
