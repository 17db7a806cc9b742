"""The phases of the deploy_node and remove_node orchestrations (run on the master).

Each state is one phase step: it acts through salt-ssh (installing a minion), the master's
LocalClient (states and membership calls on minions), the key store and the inventory. Every
wait is bounded and says what it waited for; every comment starts with the phase; `changes`
is empty when nothing changed, so a second run of an orchestration reports no changes.
See ``docs/orchestrations.md``.
"""

import base64
import json
import os
import socket
import subprocess
import time

import salt.client
import salt.key
import salt.runner

try:
    from kubesalt import inventory as _inventory
    from kubesalt import orchestrate as _orchestrate
    from kubesalt.bootstrap import archive as _archive
    from kubesalt.bootstrap import services as _services
    from kubesalt.errors import KubesaltError
    from kubesalt.kubeadm.model import Layout

    HAS_KUBESALT = True
except ImportError:  # pragma: no cover - depends on the master's virtualenv
    HAS_KUBESALT = False

__virtualname__ = "kubesalt_orchestrate"

SALT_SSH = f"{_services.VENV}/bin/salt-ssh" if HAS_KUBESALT else "salt-ssh"
KEYS_DIR = "/etc/kubesalt/minion-keys"  # public keys read back from new minions
MINION_PUB = "/etc/salt/pki/minion/minion.pub"
INITIAL_CLUSTER_GRAIN = "kubesalt:etcd_initial_cluster"
EMPTY_ROSTER = "/etc/kubesalt/salt-ssh/roster"


def __virtual__():
    if not HAS_KUBESALT:
        return (False, "the kubesalt Python package is not installed in Salt's virtualenv")
    return __virtualname__


class PhaseFailed(Exception):
    """A phase step failed; the message says what and what to do."""


def _ret(name, phase):
    return {"name": name, "result": True, "changes": {}, "comment": "", "phase": phase}


def _fail(ret, phase, message):
    ret.update(result=False, changes={}, comment=f"phase {phase}: {message}")
    ret.pop("phase", None)
    return ret


def _done(ret, phase, message, changes=None):
    ret["changes"] = changes or {}
    ret["comment"] = f"phase {phase}: {message}"
    ret.pop("phase", None)
    return ret


def _test(ret, phase, message):
    ret.update(result=None, comment=f"phase {phase}: would have {message}")
    ret.pop("phase", None)
    return ret


def _inventory_dir():
    return __opts__.get("kubesalt_inventory", _inventory.DEFAULT_DIR)  # noqa: F821


def _declared(node):
    nodes = _inventory.load(_inventory_dir())
    if node not in nodes:
        raise PhaseFailed(
            f"node {node} is not declared; declare it first: salt-run kubesalt_inventory.declare "
            f"{node} <control-plane IP> <roles> (docs/inventory.md)"
        )
    return nodes[node], nodes


def _client():
    return salt.client.get_local_client(__opts__["conf_file"])  # noqa: F821


def _accepted():
    return set(salt.key.Key(__opts__).list_keys().get("minions", []))  # noqa: F821


def _call(minion, fun, args=(), kwargs=None, timeout=120, what=None, state=False):
    """Run `fun` on one minion through the master; its return, or PhaseFailed. With
    `state`, a state run's dictionary is returned even when it failed (the caller lists
    the failed states)."""
    answer = _client().cmd(
        minion, fun, arg=list(args), kwarg=kwargs or {}, timeout=timeout, full_return=True
    )
    what = what or fun
    if minion not in answer:
        raise PhaseFailed(
            f"{what} on {minion}: no answer within {timeout}s; check that salt-minion runs "
            f"on {minion} (salt {minion} test.ping)"
        )
    reply = answer[minion]
    result = reply.get("ret") if isinstance(reply, dict) else reply
    retcode = reply.get("retcode", 0) if isinstance(reply, dict) else 0
    if state and isinstance(result, dict):
        return result
    if retcode or (isinstance(result, str) and result.startswith(("ERROR", "The minion function"))):
        raise PhaseFailed(f"{what} on {minion} failed: {result}")
    return result


def _state_summary(minion, result, what):
    """(changed IDs, failures) of a state run's return; PhaseFailed on a render error."""
    if isinstance(result, list | str):
        raise PhaseFailed(f"{what} on {minion} did not render: {result}")
    changed, failed = [], []
    for key, item in (result or {}).items():
        if not isinstance(item, dict):
            continue
        ident = item.get("__id__") or key
        if item.get("result") is False:
            failed.append(f"{ident}: {item.get('comment')}")
        elif item.get("changes"):
            changed.append(ident)
    return changed, failed


def _apply(minion, sls, saltenv, timeout, pillar=None):
    """Apply `sls` (a list, or None for the highstate) on `minion`; the changed state IDs."""
    kwargs = {"saltenv": saltenv}
    if pillar:
        kwargs["pillar"] = pillar
    if sls:
        what = f"state.sls {','.join(sls)}"
        result = _call(minion, "state.sls", [",".join(sls)], kwargs, timeout, what, state=True)
    else:
        what = "state.highstate"
        result = _call(minion, "state.highstate", [], kwargs, timeout, what, state=True)
    changed, failed = _state_summary(minion, result, what)
    if failed:
        raise PhaseFailed(
            f"{what} on {minion}: {len(failed)} state(s) failed: " + "; ".join(failed)
        )
    return changed


def _others(node, roles=None):
    """Accepted, declared minions other than `node` (with one of `roles`, if given), sorted."""
    nodes = _inventory.load(_inventory_dir())
    accepted = _accepted()
    return [
        n
        for n in sorted(nodes)
        if n != node and n in accepted and (not roles or set(roles) & set(nodes[n].roles))
    ]


def _error_text(err):
    return f"{type(err).__name__}: {err}" if isinstance(err, KubesaltError) else str(err)


def skipped(name, phase, why):
    """
    Report a phase that does not run, and why (skipped by the operator, or not for this
    node's roles). Never changes anything.
    """
    return {"name": name, "result": True, "changes": {}, "comment": f"phase {phase}: {why}"}


def node_declared(name, node, wait=10, phase="preflight"):
    """
    Check that ``node`` is declared in the inventory and that its SSH port answers within
    ``wait`` seconds (TCP connect).
    """
    ret = _ret(name, phase)
    try:
        entry, _nodes = _declared(node)
    except (PhaseFailed, KubesaltError) as err:
        return _fail(ret, phase, _error_text(err))
    deadline = time.monotonic() + float(wait)
    last = None
    while True:
        try:
            with socket.create_connection((entry.host, entry.port), timeout=3):
                break
        except OSError as err:
            last = err
        if time.monotonic() > deadline:
            return _fail(
                ret,
                phase,
                f"node {node}: SSH port {entry.host}:{entry.port} did not answer within "
                f"{wait}s ({last}); check that the node is up and sshd runs, and the "
                "address declared (salt-run kubesalt_inventory.list_nodes)",
            )
        time.sleep(1)
    return _done(
        ret,
        phase,
        f"node {node} is declared (roles {', '.join(entry.roles)}) and its SSH port "
        f"{entry.host}:{entry.port} answers",
    )


def _minion_pillar(node, saltenv):
    """What the minion install needs on the node, computed here on the bootstrap node."""
    archives = _archive.load_register()
    current = next((a for a in archives if a.saltenv == saltenv), None)
    if current is None:
        raise PhaseFailed(
            f"no archive with saltenv {saltenv} is registered on the master "
            f"({_archive.REGISTER}); run bootstrap.sh with that archive"
        )
    master_ip = __opts__.get("interface")  # noqa: F821
    if not master_ip or master_ip in ("0.0.0.0", "::"):
        raise PhaseFailed(
            f"the master's interface option is {master_ip!r}: kubesalt binds the master to the "
            "bootstrap node's control-plane IP (kubesalt.salt.master); run bootstrap.sh again"
        )
    ca_path = Layout().pki("ca.crt")
    try:
        with open(ca_path, encoding="utf-8") as stream:
            ca_pem = stream.read()
        with open(current.path("kubesalt-archive-key.asc"), encoding="utf-8") as stream:
            key_asc = stream.read()
    except OSError as err:
        raise PhaseFailed(f"cannot read {err.filename}: {err.strerror}; run bootstrap.sh") from err
    keyring = f"/etc/apt/keyrings/{saltenv}.asc"
    sources = _archive.apt_sources(
        current, base_url=_orchestrate.apt_url(master_ip, saltenv)
    ).replace(_archive.apt_keyring_path(current), keyring)
    return {
        "saltenv": saltenv,
        "version": current.version,
        "ca_pem": ca_pem,
        "keyring": keyring,
        "keyring_asc": key_asc,
        "sources_path": _archive.apt_sources_path(current),
        "sources": sources,
        "apt_update": " ".join(_archive.apt_update_command(current)),
        "wheels": _orchestrate.wheel_url(master_ip, saltenv),
        "venv": _services.VENV,
        "minion_config": _services.minion_config(node, master_ip, archives, current),
        "minion_unit": _services.systemd_unit(
            "salt-minion", "The Salt Minion (kubesalt)", "process"
        ),
    }


def _empty_roster_file():
    """salt-ssh parses a flat roster file whenever the target resolves as a host name
    (salt.client.ssh.SSH._expand_target), even with another roster, and fails when there
    is none: give it an empty one (the nodes come from the kubesalt roster)."""
    if not os.path.exists(EMPTY_ROSTER):
        os.makedirs(os.path.dirname(EMPTY_ROSTER), exist_ok=True)
        with open(EMPTY_ROSTER, "w", encoding="utf-8") as stream:
            stream.write(
                "# Empty on purpose: salt-ssh reaches nodes through the kubesalt roster.\n"
            )
    return EMPTY_ROSTER


def _salt_ssh(node, args, timeout, what):
    cmd = [SALT_SSH, "--roster", "kubesalt", "--roster-file", _empty_roster_file(),
           "--ignore-host-keys", "--out", "json", "--out-indent", "-1", node, *args]  # fmt: skip
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise PhaseFailed(
            f"{what}: salt-ssh to {node} did not finish within {timeout}s; check that sshd on "
            f"{node} has an sftp subsystem and accepts the declared key (ssh -i KEY root@HOST)"
        ) from err
    try:
        data = json.loads(result.stdout or "{}")
    except ValueError:
        data = {}
    reply = data.get(node) if isinstance(data, dict) else None
    if reply is None:
        tail = (result.stderr or result.stdout).strip()[-1500:]
        raise PhaseFailed(f"{what}: salt-ssh to {node} failed (exit {result.returncode}): {tail}")
    return reply, result.returncode


def minion_installed(name, node, saltenv, timeout=900, phase="minion"):
    """
    Install salt-minion on ``node`` with salt-ssh (roster ``kubesalt``, bounded by
    ``timeout``): apt source of the bootstrap repository over HTTPS with the cluster CA,
    Salt in its virtualenv from the bootstrap node's wheels, the minion configuration
    toward this master; then read the minion's public key back for the key phase.
    """
    ret = _ret(name, phase)
    try:
        _declared(node)
        pillar = _minion_pillar(node, saltenv)
    except (PhaseFailed, KubesaltError) as err:
        return _fail(ret, phase, _error_text(err))
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"installed salt-minion on {node} with salt-ssh")
    arg = _orchestrate.salt_ssh_pillar(pillar)
    try:
        reply, _code = _salt_ssh(
            node,
            ["state.sls", "kubesalt.salt.minion.remote", f"saltenv={saltenv}", arg],
            timeout,
            "install salt-minion",
        )
        changed, failed = _state_summary(node, reply, "state.sls kubesalt.salt.minion.remote")
        if failed:
            raise PhaseFailed(
                f"salt-ssh state.sls kubesalt.salt.minion.remote on {node}: " + "; ".join(failed)
            )
        wait = "for i in $(seq 60); do test -s {0} && break; sleep 0.5; done; base64 -w0 {0}"
        raw, code = _salt_ssh(node, ["-r", wait.format(MINION_PUB)], 120, "read the minion key")
        text = raw.get("stdout", "") if isinstance(raw, dict) else ""
        if code or not text.strip():
            raise PhaseFailed(
                f"salt-minion on {node} wrote no public key {MINION_PUB} within 30s; see "
                f"journalctl -u salt-minion on {node}"
            )
        pem = base64.b64decode(text.strip()).decode()
    except PhaseFailed as err:
        return _fail(ret, phase, str(err))
    os.makedirs(KEYS_DIR, mode=0o700, exist_ok=True)
    path = os.path.join(KEYS_DIR, f"{node}.pub")
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else None  # noqa: SIM115
    if old != pem:
        with open(path, "w", encoding="utf-8") as stream:
            stream.write(pem)
    changes = {"states": changed} if changed else {}
    if old != pem:
        changes["public_key"] = path
    if changes:
        return _done(ret, phase, f"salt-minion on {node} installed and configured", changes)
    return _done(ret, phase, f"salt-minion on {node} is in the correct state")


def grains_published(name, node, saltenv, ca_minion, timeout=300, phase="grains"):
    """
    Sync kubesalt's modules to ``node``, choose and publish its addresses (kubesalt.node:
    grains and mine), then refresh the pillar of the CA minion (its signing policies now
    list ``node``).
    """
    ret = _ret(name, phase)
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"synced modules and published the addresses of {node}")
    try:
        synced = _call(node, "saltutil.sync_all", [], {"saltenv": saltenv}, timeout)
        changed = _apply(node, ["kubesalt.node"], saltenv, timeout)
        _call(ca_minion, "saltutil.refresh_pillar", [], {"wait": True}, timeout)
        ip = _call(node, "grains.get", ["kubesalt:control_plane_ip"], {}, 30)
    except PhaseFailed as err:
        return _fail(ret, phase, str(err))
    changes = {}
    modules = {k: v for k, v in (synced or {}).items() if v}
    if modules:
        changes["synced"] = modules
    if changed:
        changes["states"] = changed
    return _done(
        ret, phase, f"{node} has control-plane IP {ip} in its grains and the mine", changes
    )


def _reconnect(minion, wait=90):
    """Restart salt-minion on `minion` and wait (bounded) until it answers again.

    Starting firewalld for the first time on a node drops the minion's established
    connection to the master's publish port without the minion noticing (it only finds
    out at its next keepalive, minutes later): jobs published meanwhile are lost."""
    # Through salt-ssh: the master's own channel to that minion is the one that broke.
    _reply, code = _salt_ssh(minion, ["-r", "systemctl restart salt-minion"], 120,
                             "restart salt-minion")  # fmt: skip
    if code:
        raise PhaseFailed(f"systemctl restart salt-minion on {minion} failed: {_reply}")
    time.sleep(2)
    deadline = time.monotonic() + float(wait)
    while time.monotonic() < deadline:
        answer = _client().cmd(minion, "test.ping", timeout=5)
        if answer.get(minion) is True:
            return
        time.sleep(2)
    raise PhaseFailed(
        f"salt-minion on {minion} did not answer test.ping within {wait}s after its restart; "
        f"see journalctl -u salt-minion on {minion}"
    )


def applied(
    name, node, saltenv, sls=None, scope="node", roles=None, timeout=600, phase=None,
    reconnect=False,
):  # fmt: skip
    """
    Apply ``sls`` (a list; none: the highstate) on ``node`` (scope ``node``) or on every
    other accepted, declared node with one of ``roles`` (scope ``others``), one after the
    other. The changes list the changed state IDs per node. With ``reconnect``, a node
    where something changed gets its salt-minion restarted and answering again (after
    firewalld starts there for the first time).
    """
    ret = _ret(name, phase)
    if scope not in ("node", "others"):
        return _fail(ret, phase, f"scope = {scope!r}: use node or others")
    targets = [node] if scope == "node" else _others(node, roles)
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"applied {sls or 'the highstate'} on {', '.join(targets)}")
    changes = {}
    try:
        for target in targets:
            changed = _apply(target, sls, saltenv, timeout)
            if changed:
                changes[target] = changed
                if reconnect:
                    _reconnect(target)
    except PhaseFailed as err:
        return _fail(ret, phase, str(err))
    what = ", ".join(sls) if sls else "the highstate"
    where = ", ".join(targets) or "no other node"
    if changes:
        return _done(ret, phase, f"{what} applied on {where}", changes)
    return _done(ret, phase, f"{what} on {where} is in the correct state")


def etcd_joined(name, node, member, saltenv, timeout=120, phase="etcd"):
    """
    Join ``node`` to etcd as kubeadm does: wait for the cluster to be healthy (seen from the
    existing member ``member``), add ``node`` as a learner there, record the
    ``--initial-cluster`` of that moment in the node's grain (so a later join never rewrites
    this member's manifest), write its static pod (kubesalt.roles.etcd), then promote it
    once it is in sync, each wait bounded by ``timeout``.
    """
    ret = _ret(name, phase)
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"joined {node} to etcd through {member}")
    changes = {}
    try:
        ip = _call(node, "grains.get", ["kubesalt:control_plane_ip"], {}, 30)
        if not ip:
            raise PhaseFailed(f"{node} has no grain kubesalt:control_plane_ip; run phase grains")
        peer_url = _orchestrate.etcd_peer_url(ip)
        wait = {"timeout": timeout, "cluster": True}
        _call(member, "kubesalt_etcd.wait_healthy", [], wait, timeout + 30,
              what="wait for a healthy etcd cluster")  # fmt: skip
        added = _call(member, "kubesalt_etcd.add_learner", [node, peer_url], {}, timeout,
                      what=f"add {node} as an etcd learner")  # fmt: skip
        if added.get("changed"):
            changes["learner"] = added.get("member")
        recorded = _call(node, "grains.get", [INITIAL_CLUSTER_GRAIN], {}, 30)
        if not recorded:
            members = _orchestrate.parse_initial_cluster(added["initial_cluster"])
            _call(node, "grains.set", [INITIAL_CLUSTER_GRAIN, members], {"force": True}, 30)
            changes["initial_cluster"] = added["initial_cluster"]
        changed = _apply(node, ["kubesalt.roles.etcd"], saltenv, timeout * 3)
        if changed:
            changes["states"] = changed
        promoted = _call(member, "kubesalt_etcd.promote", [node], {"timeout": timeout},
                         timeout + 30, what=f"promote the etcd learner {node}")  # fmt: skip
        if promoted.get("changed"):
            changes["promoted"] = node
        _call(member, "kubesalt_etcd.wait_healthy", [], wait, timeout + 30,
              what=f"wait for a healthy etcd cluster with {node}")  # fmt: skip
    except (PhaseFailed, KubesaltError, KeyError, TypeError, AttributeError) as err:
        return _fail(ret, phase, _error_text(err))
    if changes:
        return _done(ret, phase, f"{node} ({peer_url}) joined etcd as a voting member", changes)
    return _done(ret, phase, f"etcd member {node} ({peer_url}) is in the correct state")


def etcd_left(name, node, member, force=False, timeout=60, phase="etcd"):
    """
    Remove ``node``'s etcd member, asked on ``member``: refused for the last member, and
    (unless ``force``) when the voters left would lose quorum (kubesalt_etcd.remove).
    """
    ret = _ret(name, phase)
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"removed {node} from etcd through {member}")
    try:
        removed = _call(member, "kubesalt_etcd.remove", [node],
                        {"force": bool(force), "timeout": timeout}, timeout + 30,
                        what=f"remove the etcd member {node}")  # fmt: skip
    except PhaseFailed as err:
        return _fail(ret, phase, f"{err}; nothing was changed (pillar force: true overrides "
                     "the quorum check, never the last-member check)")  # fmt: skip
    if removed.get("changed"):
        return _done(ret, phase, removed.get("comment", ""), {"removed": removed.get("member")})
    return _done(ret, phase, removed.get("comment", f"{node} is not an etcd member"))


def minion_stopped(name, node, timeout=120, phase="minion"):
    """
    Stop and disable salt-minion on ``node`` and remove its kubesalt configuration and keys
    there (through salt-ssh, bounded by ``timeout``).
    """
    ret = _ret(name, phase)
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"stopped salt-minion on {node}")
    files = [_services.MINION_CONFIG, "/etc/systemd/system/salt-minion.service",
             "/etc/salt/pki/minion/minion.pem", MINION_PUB]  # fmt: skip
    script = (
        "changed=0; if systemctl is-enabled -q salt-minion 2>/dev/null || "
        "systemctl is-active -q salt-minion; then systemctl disable --now -q salt-minion; "
        "changed=1; fi; for f in " + " ".join(files) + "; do if [ -e $f ]; then rm -f $f; "
        "changed=1; fi; done; systemctl daemon-reload; echo changed=$changed"
    )
    try:
        _declared(node)
        reply, code = _salt_ssh(node, ["-r", script], timeout, "stop salt-minion")
    except (PhaseFailed, KubesaltError) as err:
        return _fail(ret, phase, _error_text(err))
    out = reply.get("stdout", "") if isinstance(reply, dict) else ""
    if code or "changed=" not in out:
        return _fail(ret, phase, f"stopping salt-minion on {node} failed: {reply}")
    if "changed=1" in out:
        return _done(ret, phase, f"salt-minion on {node} stopped, disabled, its keys removed",
                     {"stopped": node})  # fmt: skip
    return _done(ret, phase, f"salt-minion on {node} is in the correct state (stopped)")


def key_absent(name, node, phase="key"):
    """Delete the key of minion ``node`` on the master (and its cached data, mine included)."""
    ret = _ret(name, phase)
    keys = salt.key.Key(__opts__)  # noqa: F821
    present = [s for s, names in keys.list_keys().items() if node in names]
    saved = os.path.join(KEYS_DIR, f"{node}.pub")
    if not present and not os.path.exists(saved):
        return _done(ret, phase, f"the key of minion {node} is in the correct state (absent)")
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"deleted the key of minion {node}")
    if present:
        keys.delete_key(match=node, preserve_minions=False)
    if os.path.exists(saved):
        os.remove(saved)
    return _done(ret, phase, f"the key of minion {node} is deleted", {"deleted": present})


def forgotten(name, node, phase="inventory"):
    """Drop ``node`` from the inventory (kubesalt_inventory.forget)."""
    ret = _ret(name, phase)
    if node not in _inventory.load(_inventory_dir()):
        return _done(ret, phase, f"node {node} is in the correct state (not in the inventory)")
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"forgotten node {node}")
    runner = salt.runner.RunnerClient(__opts__)  # noqa: F821
    result = runner.cmd("kubesalt_inventory.forget", [node], print_event=False)
    if node in _inventory.load(_inventory_dir()):
        return _fail(ret, phase, f"kubesalt_inventory.forget {node} left it declared: {result}")
    return _done(ret, phase, f"node {node} is forgotten", {"forgotten": node})


def pillar_refreshed(name, minion, phase=None, timeout=60):
    """Refresh the pillar of ``minion`` (the CA minion: its signing policies follow the
    inventory). Reports no changes: a refresh changes nothing on the node."""
    ret = _ret(name, phase)
    try:
        _call(minion, "saltutil.refresh_pillar", [], {"wait": True}, timeout)
    except PhaseFailed as err:
        return _fail(ret, phase, str(err))
    return _done(ret, phase, f"the pillar of {minion} is refreshed")
