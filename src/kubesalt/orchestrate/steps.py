"""The step kinds of the orchestration tables: nodes, keys and Salt states.

Each kind is `kind(run, step, nodes, targets) -> StepResult`: `nodes` are the run's nodes
of the phase, `targets` the minions the step's target names (tables.py). With
`run.test`, a kind changes nothing and returns what would change; a kind that finds
nothing to do returns no changes. Cluster kinds (etcd, kubectl, readyz) are in
`clustersteps`.
"""

from __future__ import annotations

import base64
import dataclasses
import posixpath

from kubesalt import hostkeys
from kubesalt import inventory as _inventory
from kubesalt.bootstrap import services
from kubesalt.orchestrate import minionpillar, saltssh
from kubesalt.orchestrate.model import NEEDS, StepFailed, StepResult
from kubesalt.orchestrate.rpc import summarize_state

MINION_SLS = "kubesalt.salt.minion.remote"


def wait(run, step, pending, check):
    """Call `check(pending) -> the nodes still pending` every `step.retry` seconds until
    none is left or the step's timeout passed; the nodes left."""
    return wait_for(run, pending, check, run.timeout(step), step.retry)


# A ping inside a wait: short, as a silent minion costs the whole timeout (plus Salt's
# gather_job_timeout) before the next try; a connected minion answers in well under 1 s.
# A minion whose key was just accepted retries its login after acceptance_wait_time (2 s).
PING_IN_WAIT = 2


def _silent(run, pending, timeout=5) -> list[str]:
    """The nodes of `pending` whose minion does not answer test.ping within `timeout` (one
    job); those that answer are remembered for the run."""
    answering = run.rpc.ping(pending, timeout)
    run.answering.update(answering)
    return [n for n in pending if n not in answering]


def _wait_answering(run, step, pending) -> list[str]:
    """`wait` until every minion of `pending` answers test.ping; the silent ones left."""
    return wait(run, step, pending, lambda left: _silent(run, left, PING_IN_WAIT))


def wait_for(run, pending, check, timeout, interval):
    """`wait` with its bound and interval given (0: ask once)."""
    deadline = run.backend.clock() + timeout
    pending = list(pending)
    while pending:
        pending = list(check(pending))
        if not pending or run.backend.clock() >= deadline or not interval:
            break
        run.backend.sleep(interval)
    return pending


# -- preflight -------------------------------------------------------------------------
def not_ca(run, step, nodes, targets):
    for node in nodes:
        if node == run.options.ca_minion:
            raise StepFailed(
                f"{node} is the CA minion and the bootstrap node (ca.minion); it cannot be "
                "removed with remove_node",
                [node],
            )
    return StepResult()


def _closed_ports(run, step, nodes) -> dict[str, str]:
    """{node: what did not answer} for the nodes whose SSH port stays closed (TCP connect,
    retried every `step.retry` seconds for the step's timeout)."""
    entries = {node: run.entry(node) for node in nodes}
    errors = {}

    def closed(pending):
        left = []
        for node in pending:
            try:
                run.backend.connect(entries[node].host, entries[node].port, 3)
            except OSError as err:
                errors[node] = err
                left.append(node)
        return left

    return {
        n: f"node {n}: SSH port {entries[n].host}:{entries[n].port} did not answer within "
        f"{run.timeout(step)}s ({errors[n]})"
        for n in wait(run, step, nodes, closed)
    }


def ssh_port(run, step, nodes, targets):
    closed = _closed_ports(run, step, nodes)
    if closed:
        raise StepFailed(
            "; ".join(
                f"{text}; check that the node is up and sshd runs, and the address declared "
                "(salt-run kubesalt_inventory.list_nodes)"
                for text in closed.values()
            ),
            list(closed),
        )
    return StepResult()


# -- remove_node: a node gone for good, a removal finished ------------------------------
IF_GONE = (
    "if the machine is gone for good, run again with pillar force: true (its etcd member, "
    "Node object, minion key and inventory entry are then removed without it, and what "
    "stays on its disk is listed)"
)


def declared_or_finishing(run, step, nodes, targets):
    """remove_node: a node no longer declared is one whose removal stopped after phase
    inventory (it comes before peers: the CA minion's signing policies follow the
    inventory). Accepted, to finish: the later steps find what is left of it (etcd member,
    Node object, key, the other nodes' peers); nothing runs on the node, whose address is
    no longer known. Removing what is not there changes nothing, as for any absent state."""
    notes = []
    for node in nodes:
        if node in run.inventory:
            continue
        run.forgotten.add(node)
        run.unreachable[node] = {need: "not declared" for need in NEEDS}
        notes.append(
            f"{node} is not declared: finishing its removal (what is left of it in etcd, "
            "the API, the key store and the other nodes' peers; nothing runs on the node)"
        )
    return StepResult(notes=notes)


def _gone_or_refused(run, problems: dict, needs, why: str, fix: str) -> StepResult:
    """Nodes that did not answer ({node: what}): refused with `fix`, or with pillar force
    given up as gone (`why`) for `needs`: the steps that need them leave the node out, and
    what they would have removed from it is listed at the end of the run."""
    if not problems:
        return StepResult()
    if not run.options.force:
        raise StepFailed(
            "; ".join(f"{text}. {fix}; {IF_GONE}" for text in problems.values()), list(problems)
        )
    notes = []
    for node, text in problems.items():
        run.gone.add(node)
        for need in needs:
            run.unreachable.setdefault(node, {})[need] = why
        notes.append(
            f"{text}: taken as gone (pillar force): the steps that need it are skipped, what "
            "they leave on its disk is listed at the end; wipe the machine before it is "
            "started again on this network"
        )
    return StepResult(notes=notes)


def ssh_port_or_gone(run, step, nodes, targets):
    """remove_node: each declared node's SSH port answers (the machine is up), or, with
    pillar force, the node is gone: nothing at all runs on it."""
    declared = [n for n in nodes if n not in run.forgotten]
    fix = ("remove_node cleans the node through its minion and salt-ssh: start it, check "
           "sshd and the address declared (salt-run kubesalt_inventory.list_nodes)")  # fmt: skip
    return _gone_or_refused(run, _closed_ports(run, step, declared), NEEDS, "gone", fix)


def minion_answers_or_gone(run, step, nodes, targets):
    """remove_node: each node's accepted minion answers test.ping (the cleanup states run
    through it), or, with pillar force, the steps that need it leave the node out. A node
    without an accepted key has no minion to ask: those steps leave it out, force or not
    (an earlier remove_node deletes the key only after the cleanup)."""
    for node in nodes:
        if node not in run.accepted:
            run.unreachable.setdefault(node, {})["minion"] = "no accepted minion key"
    askable = [n for n in nodes if n in run.accepted and n not in run.answering]

    silent = _wait_answering(run, step, askable)
    problems = {n: f"node {n}: its minion did not answer test.ping within "
                   f"{run.timeout(step)}s" for n in silent}  # fmt: skip
    fix = ("remove_node applies the cleanup states through it: start it (systemctl restart "
           "salt-minion on the node; journalctl -u salt-minion)")  # fmt: skip
    return _gone_or_refused(run, problems, ("minion",), "gone: its minion is silent", fix)


def _read_host_keys(run, node, entry):
    stdout, stderr = run.backend.keyscan(entry.host, entry.port)
    keys = hostkeys.parse_keyscan(stdout)
    if not keys:
        raise StepFailed(
            f"node {node}: ssh-keyscan read no host key from {entry.host}:{entry.port} "
            f"({(stderr or '').strip()[-300:] or 'no answer'}); check sshd there, or declare "
            "the node again with host_key='ssh-ed25519 AAAA...' (cat "
            "/etc/ssh/ssh_host_ed25519_key.pub on the node)",
            [node],
        )
    return keys


def host_keys(run, step, nodes, targets):
    """Record the SSH host keys of nodes that have none yet (trust on first use, unless
    the operator gave host_key= when declaring the node)."""
    missing = [node for node in nodes if not run.entry(node).host_keys]
    if not missing:
        return StepResult()
    if run.test:
        return StepResult({n: {"host_keys": "would read with ssh-keyscan and record"}
                           for n in missing})  # fmt: skip
    read = run.each(missing, lambda node: _read_host_keys(run, node, run.entry(node)))
    directory = run.backend.inventory_dir
    changes = {}
    for node, keys in read.items():
        if _inventory.record_host_keys(node, keys, directory):
            changes[node] = {"host_keys": [hostkeys.fingerprint(key) for key in keys]}
    _inventory.write_known_hosts(directory)
    run._inventory = None  # read again: the entries now hold the keys
    return StepResult(changes)


# -- minion ----------------------------------------------------------------------------
def _answering(run, nodes):
    """The nodes whose key is accepted and whose minion answers test.ping (one job)."""
    accepted = [n for n in nodes if n in run.accepted]
    answering = run.rpc.ping(accepted) if accepted else set()
    run.answering.update(answering)
    return answering


def _install(run, node, pillar, timeout):
    """salt-ssh applies the minion install on `node`, then reads its public key back:
    (changed state IDs, the public key)."""
    entry = run.entry(node)
    reply, _code = run.ssh.call(
        node, entry,
        ["state.sls", MINION_SLS, f"saltenv={run.options.saltenv}",
         minionpillar.salt_ssh_argument(pillar)],
        timeout, "install salt-minion",
    )  # fmt: skip
    try:
        state = summarize_state(reply)
    except StepFailed as err:
        raise StepFailed(
            f"salt-ssh state.sls {MINION_SLS} on {node} {err.message}", [node]
        ) from None
    if state.failed:
        raise StepFailed(
            f"salt-ssh state.sls {MINION_SLS} on {node}: "
            + "; ".join(f"{i}: {c}" for i, c in state.failed),
            [node],
        )
    text = run.ssh.shell(node, entry, saltssh.read_key_script(), 120, "read the minion key")
    if not text.strip():
        raise StepFailed(
            f"salt-minion on {node} wrote no public key {services.MINION_PUB} within 30s; see "
            f"journalctl -u salt-minion on {node}",
            [node],
        )
    return state.changed, base64.b64decode(text.strip()).decode()


def _key_path(node):
    return posixpath.join(services.MINION_KEYS_DIR, f"{node}.pub")


def minion_installed(run, step, nodes, targets):
    """A running minion (accepted, answering) is asked first: `state.sls` of the install
    with test=True, one job for all. Only where something would change, or no minion
    answers, salt-ssh installs it (the install restarts salt-minion, which a job of that
    minion cannot survive)."""
    pillar = run.minion_pillar()
    answering = sorted(_answering(run, nodes), key=nodes.index)
    would = {}
    if answering:
        runs = run.rpc.state(answering, [MINION_SLS], run.options.saltenv, run.timeout(step),
                             test=True, pillar=minionpillar.as_pillar(pillar))  # fmt: skip
        would = {node: r.changed for node, r in runs.items() if r.changed}
    to_install = [n for n in nodes if n not in answering or n in would]
    if run.test:
        run.no_minion.update(n for n in nodes if n not in answering)
        changes = {n: {"states": would[n]} for n in would}
        for node in nodes:
            if node not in answering:
                changes[node] = {"salt-ssh": "would install salt-minion (no minion answers)"}
        return StepResult(changes)
    if not to_install:
        return StepResult(notes=[f"minion of {', '.join(nodes)} answers, nothing to change"])
    run.answering.difference_update(to_install)  # the install restarts their minion
    if len(to_install) > 1:
        run.backend.prepare_ssh()  # salt-ssh processes started together race on its key
    installed = run.each(to_install, lambda node: _install(run, node, pillar, run.timeout(step)))
    changes = {}
    for node, (changed, pem) in installed.items():
        node_changes = {"states": changed} if changed else {}
        path = _key_path(node)
        if run.backend.read_text_or_none(path) != pem:
            run.backend.write_private(path, pem)
            node_changes["public_key"] = path
        if node_changes:
            changes[node] = node_changes
    return StepResult(changes)


def minion_stopped(run, step, nodes, targets):
    """salt-ssh: salt-minion stopped and disabled, its configuration, unit and keys
    removed. A dry run runs the same checks without acting."""
    changes = {}
    for node in nodes:
        out = run.ssh.shell(node, run.entry(node), saltssh.stop_script(run.test),
                            run.timeout(step), "stop salt-minion")  # fmt: skip
        if "changed=" not in out:
            raise StepFailed(f"stopping salt-minion on {node} printed no result: {out[-300:]}",
                             [node])  # fmt: skip
        if "changed=1" in out:
            verb = "would stop" if run.test else "stopped"
            changes[node] = {"minion": f"{verb}, disabled, configuration and keys removed"}
    return StepResult(changes)


# -- keys ------------------------------------------------------------------------------
def _normalize(pem):
    return "".join((pem or "").split())


def key_accepted(run, step, nodes, targets):
    """Accept each node's pending key only if it equals the expected public key (read
    back over SSH by the minion phase, or the bootstrap node's own minion.pub), waiting
    (bounded) for the minion to submit it."""
    keys = run.backend.keys
    changes, refused = {}, {}

    def expected(node):
        return run.backend.read_text_or_none(step.args.get("public_key") or _key_path(node))

    def not_accepted(pending):
        left = []
        for node in pending:
            status, pem = keys.status(node)
            want = expected(node)
            if status is not None and want is not None and _normalize(pem) != _normalize(want):
                refused[node] = (
                    f"the {status} key of minion {node} is not the expected key: refusing it. "
                    f"Delete it (salt-key -d {node}) and restart salt-minion on {node}"
                )
            elif status == "minions":
                continue
            elif status == "minions_pre":
                if run.test:
                    changes[node] = {"accepted": "would accept its pending key"}
                    continue
                if want is None:
                    refused[node] = f"no expected key for minion {node}: run the minion phase"
                    continue
                keys.accept(node)
                run.accepted.add(node)
                run.answering.discard(node)
                changes[node] = {"accepted": node}
            elif status is not None:
                refused[node] = (
                    f"the key of minion {node} is in {status}; delete it (salt-key -d {node}) "
                    f"and restart salt-minion on {node}"
                )
            elif run.test:
                changes[node] = {"accepted": "would accept once its minion submits its key"}
            else:
                left.append(node)
        return left

    waiting = wait(run, step, nodes, not_accepted)
    if refused:
        raise StepFailed("; ".join(refused.values()), list(refused))
    if waiting:
        raise StepFailed(
            f"waited {run.timeout(step)}s for minion(s) {', '.join(waiting)} to submit a key; "
            "check that salt-minion runs there and reaches the master (ports 4505-4506)",
            waiting,
        )
    return StepResult(changes)


def minion_answers(run, step, nodes, targets):
    """Wait (bounded) until every node's minion answers test.ping. A dry run asks once
    and waits for no minion it would install."""
    askable = [n for n in nodes if n not in run.no_minion and n not in run.answering]

    if run.test:
        silent = _silent(run, askable) if askable else []
        run.no_minion.update(silent)
        return StepResult(notes=[f"{', '.join(silent)} do not answer test.ping"] if silent else [])
    silent = _wait_answering(run, step, askable)
    if silent:
        raise StepFailed(
            f"waited {run.timeout(step)}s for minion(s) {', '.join(silent)} to answer "
            "test.ping; see systemctl status salt-minion and /var/log/salt/minion there",
            silent,
        )
    return StepResult()


def mine_updated(run, step, nodes, targets):
    """The targets' minions answer (waited for, bounded: the minions of a restored master
    reconnect by themselves) and publish their mine again (a restored master starts with
    an empty one). Publishing changes nothing on a node: no changes. A minion still
    silent is named: its addresses stay out of the mine until it answers."""
    askable = [n for n in targets if n not in run.no_minion]

    silent = _silent(run, askable) if run.test else _wait_answering(run, step, askable)
    answering = [n for n in askable if n not in silent]
    if answering and not run.test:
        run.rpc.call(answering, "mine.update", [], {}, run.timeout(step),
                     what="publish the mine")  # fmt: skip
    if not silent:
        return StepResult()
    return StepResult(notes=[
        f"{', '.join(silent)} did not answer test.ping: their addresses are not in the "
        "mine, so the firewall and keepalived rendered now leave them out. Once they "
        "answer: salt-run state.orchestrate kubesalt.orchestrate.deploy_node with their "
        "names, or a highstate of every node"
    ])  # fmt: skip


def key_deleted(run, step, nodes, targets):
    """The node's key deleted on the master (with its cached data and mine), and the
    public key kept for the key phase."""
    changes = {}
    for node in nodes:
        status, _pem = run.backend.keys.status(node)
        saved = run.backend.read_text_or_none(_key_path(node)) is not None
        if status is None and not saved:
            continue
        if run.test:
            changes[node] = {"key": f"would delete ({status or 'saved copy only'})"}
            continue
        if status is not None:
            run.backend.keys.delete(node)
        if saved:
            run.backend.remove(_key_path(node))
        changes[node] = {"key": f"deleted ({status or 'saved copy only'})"}
    return StepResult(changes)


def forgotten(run, step, nodes, targets):
    changes = {}
    for node in nodes:
        if node not in _inventory.load(run.backend.inventory_dir):
            continue
        if not run.test:
            _inventory.forget(node, run.backend.inventory_dir)
        changes[node] = {"inventory": "would forget" if run.test else "forgotten"}
    return StepResult(changes)


# -- Salt states -----------------------------------------------------------------------
def synced(run, step, nodes, targets):
    """saltutil.sync_all on the targets (one job). A dry run syncs too, as Salt's own
    `state.highstate test=True` does (autoload_dynamic_modules): the dry-run state runs
    that follow must render with the modules the real run would use."""
    askable = [n for n in targets if n not in run.no_minion]
    result = run.rpc.call(askable, "saltutil.sync_all", [],
                          {"saltenv": run.options.saltenv, "refresh": True}, run.timeout(step))  # fmt: skip
    changes = {}
    for node, synced_now in result.items():
        modules = {kind: names for kind, names in (synced_now or {}).items() if names}
        if modules:
            changes[node] = {"synced": modules}
    return StepResult(changes)


def pillar_refreshed(run, step, nodes, targets):
    """The CA minion's pillar refreshed (its signing policies follow the inventory). A
    refresh changes nothing on the node: no changes reported."""
    run.rpc.call(targets, "saltutil.refresh_pillar", [], {"wait": True}, run.timeout(step))
    return StepResult()


def _sls_for(run, step):
    """The step's SLS list; an SLS in `only_after` only when that phase ran."""
    only_after = step.args.get("only_after") or {}
    return [s for s in step.args["sls"] if s not in only_after or only_after[s] in run.ran_phases]


def applied(run, step, nodes, targets):
    """`state.sls` of the step's SLS on its targets, one job. After a survey, settled
    nodes are left out, and the other nodes too when every node of the run is settled
    (their firewall and keepalived depend on the run's nodes only through the inventory
    and the mine, unchanged then). A dry run runs the same job with test=True."""
    if step.target == "nodes":
        targets = [n for n in targets if not run.is_settled(n)]
    elif run.all_settled():
        targets = []
    if not targets:
        return StepResult()
    sls = _sls_for(run, step)
    changes = {}
    if run.test:
        for node in [n for n in targets if n in run.no_minion]:
            changes[node] = {"states": [f"would apply {', '.join(sls)} (no minion yet)"]}
        targets = [n for n in targets if n not in run.no_minion]
    runs = run.rpc.state(targets, sls, run.options.saltenv, run.timeout(step), test=run.test,
                         pillar=run.dry_run_pillar() if run.test else None)  # fmt: skip
    changes.update({node: {"states": r.changed} for node, r in runs.items() if r.changed})
    if step.args.get("reconnect") and not run.test:
        restarted = [n for n in runs if MINION_RESTART in runs[n].changed]
        if restarted:
            _reconnect(run, restarted)
    return StepResult(changes)


# The state of kubesalt.firewall.running that restarts salt-minion on the node, RESTART_DELAY
# seconds after firewalld's first start (which drops the minion's publish connection
# without the minion noticing for minutes).
MINION_RESTART = "Restart salt-minion after firewalld's first start"
RESTART_DELAY = 2


def _reconnect(run, minions, wait=90):
    """Wait until `minions`, whose salt-minion restarts itself RESTART_DELAY seconds after
    their firewall state returned, answer test.ping. Asked only once the restart began: the
    old process, cut off from jobs, would lose any job sent to it."""
    run.backend.sleep(RESTART_DELAY + 2)

    waiting = wait_for(run, minions, lambda left: _silent(run, left, PING_IN_WAIT), wait, 2)
    if waiting:
        raise StepFailed(
            f"salt-minion on {', '.join(waiting)} did not answer test.ping within {wait}s "
            "after it restarted itself (firewalld's first start); see journalctl -u "
            "salt-minion there, or restart it: systemctl restart salt-minion",
            waiting,
        )


def surveyed(run, step, nodes, targets):
    """A dry-run highstate of the nodes (one job): a node with nothing left to change and
    nothing changed earlier in this run is settled; the state phases leave it out. A node
    that changed earlier in this run (a new minion, new addresses) is not asked: it is
    not settled anyway."""
    askable = [n for n in targets if n not in run.no_minion and n not in run.changed]
    runs = run.rpc.state(askable, [], run.options.saltenv, run.timeout(step), test=True,
                         check=False)  # fmt: skip
    run.survey = runs
    run.settled = {n for n, r in runs.items() if not r.changed and not r.failed}
    settled = [n for n in nodes if run.is_settled(n)]
    left = [f"{n} ({len(runs[n].changed)} to change, {len(runs[n].failed)} failing)"
            if n in runs else f"{n} (changed in this run)" for n in targets if n not in settled]  # fmt: skip
    note = f"settled: {', '.join(settled) or 'none'}"
    return StepResult(notes=[note + (f"; left to change: {', '.join(left)}" if left else "")])


def highstate(run, step, nodes, targets):
    """The full highstate of the nodes not settled (all of them without a survey). A dry
    run reports what the survey found, or runs highstate test=True without one."""
    targets = [n for n in targets if not run.is_settled(n)]
    survey = run.survey
    if run.test and survey is not None:
        changes = {n: {"states": survey[n].changed} for n in targets
                   if n in survey and survey[n].changed}  # fmt: skip
        changes.update({n: {"states": ["would apply the highstate (no minion yet)"]}
                        for n in targets if n in run.no_minion})  # fmt: skip
        return StepResult(changes)
    return applied(run, dataclasses.replace(step, kind="applied", args={"sls": ()}), nodes,
                   targets)  # fmt: skip


KINDS = {
    "not_ca": not_ca, "ssh_port": ssh_port, "host_keys": host_keys,
    "declared_or_finishing": declared_or_finishing, "ssh_port_or_gone": ssh_port_or_gone,
    "minion_answers_or_gone": minion_answers_or_gone,
    "minion_installed": minion_installed, "minion_stopped": minion_stopped,
    "key_accepted": key_accepted, "minion_answers": minion_answers,
    "mine_updated": mine_updated,
    "key_deleted": key_deleted, "forgotten": forgotten, "synced": synced,
    "pillar_refreshed": pillar_refreshed, "applied": applied, "surveyed": surveyed,
    "highstate": highstate,
}  # fmt: skip
