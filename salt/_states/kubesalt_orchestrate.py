"""The phases of the deploy_node and remove_node orchestrations (run on the master).

Each state is one phase step: it acts through salt-ssh (installing a minion), the master's
LocalClient (states and membership calls on minions), the key store and the inventory. Every
wait is bounded and says what it waited for; every comment starts with the phase; `changes`
is empty when nothing changed, so a second run of an orchestration reports no changes.
See ``docs/orchestrations.md``.
"""

import base64
import concurrent.futures
import os
import socket
import subprocess
import time

import salt.client
import salt.client.ssh.shell
import salt.key
import salt.runner
import salt.utils.thin

try:
    from kubesalt import hostkeys as _hostkeys
    from kubesalt import inventory as _inventory
    from kubesalt import lock as _lock
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


def _declared_nodes(names):
    """{name: inventory entry} of `names`, read once; PhaseFailed for the first undeclared."""
    nodes = _inventory.load(_inventory_dir())
    for node in names:
        if node not in nodes:
            raise PhaseFailed(
                f"node {node} is not declared; declare it first: salt-run "
                f"kubesalt_inventory.declare {node} <control-plane IP> <roles> (docs/inventory.md)"
            )
    return {node: nodes[node] for node in names}


def _declared(node):
    return _declared_nodes([node])[node]


def _client():
    return salt.client.get_local_client(__opts__["conf_file"])  # noqa: F821


def _accepted():
    return set(salt.key.Key(__opts__).list_keys().get("minions", []))  # noqa: F821


def _call_many(minions, fun, args=(), kwargs=None, timeout=120, what=None, state=False):
    """Run `fun` on every minion of `minions` at once (one job, list target); {minion:
    return}, or PhaseFailed naming every minion that did not answer or failed. With
    `state`, state runs' dictionaries are returned even when they failed (the caller lists
    the failed states)."""
    answer = _client().cmd(
        list(minions), fun, arg=list(args), kwarg=kwargs or {}, timeout=timeout,
        tgt_type="list", full_return=True,
    )  # fmt: skip
    what = what or fun
    results, problems = {}, []
    silent = [minion for minion in minions if minion not in answer]
    if silent:
        problems.append(
            f"{what} on {', '.join(silent)}: no answer within {timeout}s; check that "
            f"salt-minion runs there (salt -L {','.join(silent)} test.ping)"
        )
    for minion in minions:
        if minion in silent:
            continue
        reply = answer[minion]
        result = reply.get("ret") if isinstance(reply, dict) else reply
        retcode = reply.get("retcode", 0) if isinstance(reply, dict) else 0
        failed = retcode or (
            isinstance(result, str) and result.startswith(("ERROR", "The minion function"))
        )
        if failed and not (state and isinstance(result, dict)):
            problems.append(f"{what} on {minion} failed: {result}")
        results[minion] = result
    if problems:
        raise PhaseFailed("; ".join(problems))
    return results


def _call(minion, fun, args=(), kwargs=None, timeout=120, what=None, state=False):
    """`_call_many` on one minion: its return, or PhaseFailed."""
    return _call_many([minion], fun, args, kwargs, timeout, what, state)[minion]


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


def _apply(minions, sls, saltenv, timeout, pillar=None):
    """Apply `sls` (a list, or None for the highstate) on `minions` at once; {minion: the
    changed state IDs}. PhaseFailed lists every failed state on every minion."""
    kwargs = {"saltenv": saltenv}
    if pillar:
        kwargs["pillar"] = pillar
    if sls:
        what = f"state.sls {','.join(sls)}"
        fun, args = "state.sls", [",".join(sls)]
    else:
        what, fun, args = "state.highstate", "state.highstate", []
    results = _call_many(minions, fun, args, kwargs, timeout, what, state=True)
    changed, problems = {}, []
    for minion in minions:
        ids, failed = _state_summary(minion, results[minion], what)
        changed[minion] = ids
        if failed:
            problems.append(
                f"{what} on {minion}: {len(failed)} state(s) failed: " + "; ".join(failed)
            )
    if problems:
        raise PhaseFailed(" | ".join(problems))
    return changed


def _each(nodes, action):
    """Run `action(node)` for every node in parallel threads (each waits on a subprocess);
    {node: its return}, or PhaseFailed with every node's failure."""
    if not nodes:
        return {}
    if len(nodes) == 1:
        return {nodes[0]: action(nodes[0])}
    results, problems = {}, []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        futures = {node: pool.submit(action, node) for node in nodes}
        for node, future in futures.items():
            try:
                results[node] = future.result()
            except PhaseFailed as err:
                problems.append(f"{node}: {err}")
    if problems:
        raise PhaseFailed(" | ".join(problems))
    return results


def _as_list(nodes):
    return [nodes] if isinstance(nodes, str) else list(nodes or [])


def _others(exclude, roles=None):
    """Accepted, declared minions not in `exclude` (with one of `roles`, if given), sorted."""
    nodes = _inventory.load(_inventory_dir())
    accepted = _accepted()
    return [
        n
        for n in sorted(nodes)
        if n not in exclude and n in accepted and (not roles or set(roles) & set(nodes[n].roles))
    ]


def _error_text(err):
    return f"{type(err).__name__}: {err}" if isinstance(err, KubesaltError) else str(err)


def skipped(name, phase, why):
    """
    Report a phase that does not run, and why (skipped by the operator, or not for this
    node's roles). Never changes anything.
    """
    return {"name": name, "result": True, "changes": {}, "comment": f"phase {phase}: {why}"}


def locked(name, orchestration, nodes, phase="preflight"):
    """
    Hold the bootstrap node's orchestration lock (kubesalt.lock) until this salt-run ends:
    refused, with the running orchestration named, while another one holds it. Reports no
    changes (a lock changes nothing on any node).
    """
    ret = _ret(name, phase)
    what = f"{orchestration} {', '.join(_as_list(nodes))}"
    try:
        _lock.acquire(what)
    except KubesaltError as err:
        return _fail(ret, phase, str(err))
    return _done(ret, phase, f"no other orchestration runs; {what} holds {_lock.LOCK_FILE}")


def unlocked(name):
    """Release the orchestration lock this salt-run holds (its last state). No changes."""
    held = _lock.release()
    comment = f"{_lock.LOCK_FILE} released" if held else "this run held no orchestration lock"
    return {"name": name, "result": True, "changes": {}, "comment": comment}


def _ssh_answers(node, entry, wait):
    deadline = time.monotonic() + float(wait)
    while True:
        try:
            with socket.create_connection((entry.host, entry.port), timeout=3):
                return
        except OSError as err:
            last = err
        if time.monotonic() > deadline:
            raise PhaseFailed(
                f"node {node}: SSH port {entry.host}:{entry.port} did not answer within "
                f"{wait}s ({last}); check that the node is up and sshd runs, and the "
                "address declared (salt-run kubesalt_inventory.list_nodes)"
            )
        time.sleep(1)


def _read_host_keys(node, entry):
    """The node's SSH host keys, read with ssh-keyscan (the first contact: trust on first
    use, unless the operator gave host_key= when declaring it)."""
    command = _hostkeys.keyscan_command(entry.host, entry.port)
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    keys = _hostkeys.parse_keyscan(result.stdout)
    if not keys:
        raise PhaseFailed(
            f"node {node}: ssh-keyscan read no host key from {entry.host}:{entry.port} "
            f"({result.stderr.strip()[-300:] or 'no answer'}); check sshd there, or declare the "
            "node again with host_key='ssh-ed25519 AAAA...' (cat "
            "/etc/ssh/ssh_host_ed25519_key.pub on the node)"
        )
    return keys


def _pin_host_keys(entries):
    """Record the host keys of nodes that have none yet; {node: fingerprints} recorded."""
    directory = _inventory_dir()
    missing = [node for node, entry in entries.items() if not entry.host_keys]
    read = _each(missing, lambda node: _read_host_keys(node, entries[node]))
    pinned = {}
    for node, keys in read.items():
        if _inventory.record_host_keys(node, keys, directory):
            pinned[node] = [_hostkeys.fingerprint(key) for key in keys]
    _inventory.write_known_hosts(directory)
    return pinned


def node_declared(name, nodes, wait=10, phase="preflight"):
    """
    Check that every node of ``nodes`` (a name or a list) is declared in the inventory and
    that its SSH port answers within ``wait`` seconds (TCP connect); record the SSH host
    key of a node that has none yet (ssh-keyscan), which salt-ssh checks from then on.
    """
    ret = _ret(name, phase)
    nodes = _as_list(nodes)
    try:
        entries = _declared_nodes(nodes)
        _each(nodes, lambda node: _ssh_answers(node, entries[node], wait))
        pinned = {} if __opts__["test"] else _pin_host_keys(entries)  # noqa: F821
    except (PhaseFailed, KubesaltError) as err:
        return _fail(ret, phase, _error_text(err))
    comment = "; ".join(
        f"node {node} is declared (roles {', '.join(entry.roles)}) and its SSH port "
        f"{entry.host}:{entry.port} answers"
        for node, entry in entries.items()
    )
    if pinned:
        comment += "; host keys recorded: " + "; ".join(
            f"{node} {', '.join(prints)}" for node, prints in pinned.items()
        )
    return _done(ret, phase, comment, {"host_keys": pinned} if pinned else {})


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
    # No --ignore-host-keys: the kubesalt roster checks the key recorded at preflight.
    cmd = [SALT_SSH, "--roster", "kubesalt", "--roster-file", _empty_roster_file(),
           "--out", "json", "--out-indent", "-1", node, *args]  # fmt: skip
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise PhaseFailed(
            f"{what}: salt-ssh to {node} did not finish within {timeout}s; check that sshd on "
            f"{node} has an sftp subsystem and accepts the declared key (ssh -i KEY root@HOST)"
        ) from err
    if _hostkeys.refused(result.stdout + result.stderr):
        entry = _declared(node)
        prints = ", ".join(_hostkeys.fingerprint(key) for key in entry.host_keys) or "none"
        raise PhaseFailed(
            f"{what}: the SSH host key of {node} ({entry.host}:{entry.port}) is not the one "
            f"recorded ({prints}); if the node was reinstalled, declare it again with "
            "replace=True host_key='...' (cat /etc/ssh/ssh_host_ed25519_key.pub on it); "
            "otherwise another machine answers on its address"
        )
    reply = _orchestrate.salt_ssh_reply(result.stdout, node)
    if reply is None:
        out = result.stdout.strip()
        shown = out if len(out) <= 1500 else f"{out[:700]} [...] {out[-700:]}"
        raise PhaseFailed(
            f"{what}: salt-ssh to {node} gave no answer for {node} (exit {result.returncode}); "
            f"stdout: {shown or '(empty)'}; stderr: {result.stderr.strip()[-700:] or '(empty)'}"
        )
    return reply, result.returncode


def _prepare_salt_ssh():
    """Make salt-ssh's own key and its thin archive once, here, before salt-ssh runs to
    several nodes in parallel: each salt-ssh process makes them at start when they are
    missing, and processes started together race (ssh-keygen then asks "Overwrite (y/n)?"
    on stdout, and the thin archive is written while another process reads it)."""
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


def _install_minion(node, pillar, saltenv, timeout):
    """salt-ssh installs and configures salt-minion on `node` with its `pillar`
    (_minion_pillar); (changed state IDs, the minion's public key)."""
    arg = _orchestrate.salt_ssh_pillar(pillar)
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
    return changed, base64.b64decode(text.strip()).decode()


def _save_public_key(node, pem):
    """Keep the minion's public key for the key phase; True when it changed."""
    os.makedirs(KEYS_DIR, mode=0o700, exist_ok=True)
    path = os.path.join(KEYS_DIR, f"{node}.pub")
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else None  # noqa: SIM115
    if old == pem:
        return False
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(pem)
    return True


def minion_installed(name, nodes, saltenv, timeout=900, phase="minion"):
    """
    Install salt-minion on every node of ``nodes`` at once, with salt-ssh (roster
    ``kubesalt``, bounded by ``timeout``): apt source of the bootstrap repository over
    HTTPS with the cluster CA, Salt in its virtualenv from the bootstrap node's wheels, the
    minion configuration toward this master; then read each minion's public key back for
    the key phase.
    """
    ret = _ret(name, phase)
    nodes = _as_list(nodes)
    try:
        _declared_nodes(nodes)
        pillars = {node: _minion_pillar(node, saltenv) for node in nodes}
    except (PhaseFailed, KubesaltError) as err:
        return _fail(ret, phase, _error_text(err))
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"installed salt-minion on {', '.join(nodes)} with salt-ssh")
    try:
        if len(nodes) > 1:
            _prepare_salt_ssh()
        installed = _each(
            nodes, lambda node: _install_minion(node, pillars[node], saltenv, timeout)
        )
    except PhaseFailed as err:
        return _fail(ret, phase, str(err))
    changes = {}
    for node, (changed, pem) in installed.items():
        node_changes = {"states": changed} if changed else {}
        if _save_public_key(node, pem):
            node_changes["public_key"] = os.path.join(KEYS_DIR, f"{node}.pub")
        if node_changes:
            changes[node] = node_changes
    where = ", ".join(nodes)
    if changes:
        return _done(ret, phase, f"salt-minion on {where} installed and configured", changes)
    return _done(ret, phase, f"salt-minion on {where} is in the correct state")


def grains_published(name, nodes, saltenv, ca_minion, timeout=300, phase="grains"):
    """
    Sync kubesalt's modules to every node of ``nodes``, choose and publish their addresses
    (kubesalt.node: grains and mine), then refresh the pillar of the CA minion (its signing
    policies now list them).
    """
    ret = _ret(name, phase)
    nodes = _as_list(nodes)
    if __opts__["test"]:  # noqa: F821
        return _test(
            ret, phase, f"synced modules and published the addresses of {', '.join(nodes)}"
        )
    try:
        synced = _call_many(nodes, "saltutil.sync_all", [], {"saltenv": saltenv}, timeout)
        changed = _apply(nodes, ["kubesalt.node"], saltenv, timeout)
        _call(ca_minion, "saltutil.refresh_pillar", [], {"wait": True}, timeout)
        ips = _call_many(nodes, "grains.get", ["kubesalt:control_plane_ip"], {}, 30)
    except PhaseFailed as err:
        return _fail(ret, phase, str(err))
    changes = {}
    for node in nodes:
        modules = {k: v for k, v in (synced[node] or {}).items() if v}
        node_changes = {"synced": modules} if modules else {}
        if changed[node]:
            node_changes["states"] = changed[node]
        if node_changes:
            changes[node] = node_changes
    where = ", ".join(f"{node} has control-plane IP {ips[node]}" for node in nodes)
    return _done(ret, phase, f"{where} in its grains and the mine", changes)


def _restart_minion(minion):
    # Through salt-ssh: the master's own channel to that minion is the one that broke.
    reply, code = _salt_ssh(minion, ["-r", "systemctl restart salt-minion"], 120,
                            "restart salt-minion")  # fmt: skip
    if code:
        raise PhaseFailed(f"systemctl restart salt-minion on {minion} failed: {reply}")


def _reconnect(minions, wait=90):
    """Restart salt-minion on `minions` and wait (bounded) until they answer again.

    Starting firewalld for the first time on a node drops the minion's established
    connection to the master's publish port without the minion noticing (it only finds
    out at its next keepalive, minutes later): jobs published meanwhile are lost."""
    _each(minions, _restart_minion)
    time.sleep(2)
    waiting = list(minions)
    deadline = time.monotonic() + float(wait)
    while waiting and time.monotonic() < deadline:
        answer = _client().cmd(waiting, "test.ping", timeout=5, tgt_type="list")
        waiting = [minion for minion in waiting if answer.get(minion) is not True]
        if waiting:
            time.sleep(2)
    if waiting:
        raise PhaseFailed(
            f"salt-minion on {', '.join(waiting)} did not answer test.ping within {wait}s "
            "after its restart; see journalctl -u salt-minion there"
        )


def applied(
    name, nodes, saltenv, sls=None, scope="node", roles=None, timeout=600, phase=None,
    reconnect=False,
):  # fmt: skip
    """
    Apply ``sls`` (a list; none: the highstate) on ``nodes`` (a name or a list; scope
    ``node``) or on every other accepted, declared node with one of ``roles`` (scope
    ``others``), on all of them at once. The changes list the changed state IDs per node.
    With ``reconnect``, a node where something changed gets its salt-minion restarted and
    answering again (after firewalld starts there for the first time).
    """
    ret = _ret(name, phase)
    nodes = _as_list(nodes)
    if scope not in ("node", "others"):
        return _fail(ret, phase, f"scope = {scope!r}: use node or others")
    targets = nodes if scope == "node" else _others(nodes, roles)
    what = ", ".join(sls) if sls else "the highstate"
    where = ", ".join(targets) or "no other node"
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"applied {what} on {where}")
    if not targets:
        return _done(ret, phase, f"{what}: no other node to update")
    try:
        changed = _apply(targets, sls, saltenv, timeout)
        changes = {target: ids for target, ids in changed.items() if ids}
        if reconnect and changes:
            _reconnect(list(changes))
    except PhaseFailed as err:
        return _fail(ret, phase, str(err))
    if changes:
        return _done(ret, phase, f"{what} applied on {where}", changes)
    return _done(ret, phase, f"{what} on {where} is in the correct state")


def _join_etcd(node, member, saltenv, timeout):
    """One node joins etcd through `member`; (its peer URL, the changes)."""
    changes = {}
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
    changed = _apply([node], ["kubesalt.roles.etcd"], saltenv, timeout * 3)[node]
    if changed:
        changes["states"] = changed
    promoted = _call(member, "kubesalt_etcd.promote", [node], {"timeout": timeout},
                     timeout + 30, what=f"promote the etcd learner {node}")  # fmt: skip
    if promoted.get("changed"):
        changes["promoted"] = node
    _call(member, "kubesalt_etcd.wait_healthy", [], wait, timeout + 30,
          what=f"wait for a healthy etcd cluster with {node}")  # fmt: skip
    return peer_url, changes


def etcd_joined(name, nodes, member, saltenv, timeout=120, phase="etcd"):
    """
    Join every node of ``nodes`` to etcd as kubeadm does, one after the other (etcd admits
    one learner at a time): wait for the cluster to be healthy (seen from the existing
    member ``member``), add the node as a learner there, record the ``--initial-cluster``
    of that moment in the node's grain (so a later join never rewrites this member's
    manifest), write its static pod (kubesalt.roles.etcd), then promote it once it is in
    sync, each wait bounded by ``timeout``.
    """
    ret = _ret(name, phase)
    nodes = _as_list(nodes)
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"joined {', '.join(nodes)} to etcd through {member}")
    changes, joined = {}, []
    try:
        for node in nodes:
            peer_url, node_changes = _join_etcd(node, member, saltenv, timeout)
            joined.append(f"{node} ({peer_url})")
            if node_changes:
                changes[node] = node_changes
    except (PhaseFailed, KubesaltError, KeyError, TypeError, AttributeError) as err:
        done = f" (joined before the failure: {', '.join(joined)})" if joined else ""
        return _fail(ret, phase, _error_text(err) + done)
    if changes:
        return _done(ret, phase, f"{', '.join(joined)} joined etcd as voting members", changes)
    return _done(ret, phase, f"etcd members {', '.join(joined)} are in the correct state")


def _kubectl(member, fun, args, kwargs, timeout, what):
    """Run kubesalt_kubectl.`fun` on the CA minion `member` (it has admin.conf); its return."""
    return _call(member, f"kubesalt_kubectl.{fun}", args, kwargs, timeout + 30, what=what)


def node_labelled(name, nodes, member, roles, phase="addons"):
    """
    Label the Node object of every node of ``nodes`` with its roles
    (``node-role.kubernetes.io/<role>``; ``roles`` maps each node to its roles), with
    kubectl on the CA minion ``member``. Changes list the labels added.
    """
    ret = _ret(name, phase)
    nodes = _as_list(nodes)
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"labelled the Node objects of {', '.join(nodes)}")
    changes = {}
    try:
        for node in nodes:
            result = _kubectl(member, "label_node", [node, roles[node]], {}, 30,
                              f"label the Node object {node}")  # fmt: skip
            if result.get("changed"):
                changes[node] = result.get("added") or result.get("labels")
    except (PhaseFailed, KeyError) as err:
        return _fail(ret, phase, str(err))
    where = ", ".join(nodes)
    if changes:
        return _done(ret, phase, f"the Node objects of {where} are labelled", changes)
    return _done(ret, phase, f"the Node objects of {where} are in the correct state (labelled)")


def node_drained(name, node, member, timeout=300, phase="drain"):
    """
    Cordon ``node``'s Node object and evict its pods (``kubectl drain --ignore-daemonsets
    --delete-emptydir-data``, bounded by ``timeout``: PodDisruptionBudgets are honoured),
    with kubectl on the CA minion ``member``. No Node object: nothing to do.
    """
    ret = _ret(name, phase)
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"drained the Node object {node}")
    try:
        result = _kubectl(member, "drain", [node], {"timeout": timeout}, timeout,
                          f"drain the Node object {node}")  # fmt: skip
    except PhaseFailed as err:
        return _fail(ret, phase, f"{err}; nothing else was changed")
    changes = {}
    if result.get("changed"):
        changes = {"cordoned": result.get("cordoned"), "evicted": result.get("evicted")}
    return _done(ret, phase, result.get("comment", ""), changes)


def node_deleted(name, node, member, timeout=60, phase="delete-node"):
    """
    Delete ``node``'s Node object (after its kubelet was stopped by the cleanup phase, so
    that it does not register again), with kubectl on the CA minion ``member``.
    """
    ret = _ret(name, phase)
    if __opts__["test"]:  # noqa: F821
        return _test(ret, phase, f"deleted the Node object {node}")
    try:
        result = _kubectl(member, "delete_node", [node], {"timeout": timeout},
                          timeout, f"delete the Node object {node}")  # fmt: skip
    except PhaseFailed as err:
        return _fail(ret, phase, str(err))
    changes = {"deleted": node} if result.get("changed") else {}
    return _done(ret, phase, result.get("comment", ""), changes)


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
