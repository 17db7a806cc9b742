"""The step kinds that act on the cluster through the CA minion: etcd membership, the
drain and deletion of Node objects (kubectl with admin.conf), the API server's readiness,
certificate renewal. The API objects kubesalt applies are in `addonsteps`.

Same contract as `steps`: `kind(run, step, nodes, targets) -> StepResult`; a dry run
reads the current state (member list, Node object, readyz) and reports only what would
change.
"""

from __future__ import annotations

import dataclasses

from kubesalt import kubectl as _kubectl
from kubesalt import ports as _ports
from kubesalt import renewal as _renewal
from kubesalt import roles as _roles
from kubesalt import urls as _urls
from kubesalt.etcd import EtcdError, find, healthy_members, peer_url, plan_remove
from kubesalt.kubeadm.model import Layout
from kubesalt.orchestrate import etcdjoin
from kubesalt.orchestrate.model import OrchestrateError, StepFailed, StepResult
from kubesalt.orchestrate.steps import applied, wait

INITIAL_CLUSTER_GRAIN = "kubesalt:etcd_initial_cluster"
# Where a node's etcd keeps its member (etcd --data-dir holds member/ once it started).
ETCD_MEMBER_DIR = f"{Layout().etcd_data_dir}/member"
ETCD_SLS = ("kubesalt.roles.etcd",)


# -- etcd ------------------------------------------------------------------------------
def _members(run, timeout=60):
    listing = run.ca_call("kubesalt_etcd.members", [], {}, timeout, "list the etcd members")
    return etcdjoin.members_from(listing)


ETCD_PHASE = "etcd"  # remove_node's phase that removes the member from the cluster


def etcd_member_left_when_skipped(run, step, nodes, targets):
    """remove_node with phase etcd skipped: refused for an etcd node that etcd still lists
    (asked on the CA minion), before any change. Its cleanup would stop a member that was
    never removed: a voter lost, and two such nodes lose quorum."""
    if ETCD_PHASE not in run.options.skip:
        return StepResult()
    etcd_nodes = [n for n in nodes if _roles.ETCD in run.roles(n) or n in run.forgotten]
    if not etcd_nodes:
        return StepResult()
    ca = run.options.ca_minion
    members = _members(run, run.timeout(step))
    listed = {n: find(members, n) for n in etcd_nodes}
    still = [n for n in etcd_nodes if listed[n] is not None]
    if still:
        raise StepFailed(
            "; ".join(
                f"node {n} is still etcd member {listed[n].label()}: remove_node cannot skip "
                "phase etcd for it (its cleanup would stop a member the cluster still counts, "
                "and two such nodes lose quorum). Run remove_node without skipping etcd, or "
                f"remove the member first (salt {ca} kubesalt_etcd.remove {n})"
                for n in still
            ),
            still,
        )
    return StepResult(notes=[f"{', '.join(etcd_nodes)}: not an etcd member, phase etcd "
                             "may be skipped"])  # fmt: skip


def _intact(run, minion, members, nodes) -> dict[str, bool]:
    """{node: its etcd member still has its data}: the data directory holds a member, or
    the member answers healthy. Asked only once a node is found without its data, so a
    node is never taken for stale on one answer alone."""
    if not nodes:
        return {}
    found = run.rpc.call(nodes, "file.directory_exists", [ETCD_MEMBER_DIR], {}, 30,
                         what="look for the node's etcd data")  # fmt: skip
    intact = {n: found.get(n) is True for n in nodes}
    if all(intact.values()):
        return intact
    health = run.call_on(minion, "kubesalt_etcd.health", [], {"cluster": True}, 60,
                        "etcd health of every voting member")  # fmt: skip
    healthy = healthy_members(members, health if isinstance(health, dict) else {})
    answering = {member.name for member in members if member.id in healthy}
    return {n: intact[n] or n in answering for n in nodes}


def etcd_joined(run, step, nodes, targets):
    """One member list decides which nodes still join; those join one at a time, in the
    order given (etcd admits one learner at a time). A voter only gets its etcd state,
    when the survey left it something to change. A started member whose node lost its
    etcd data (its etcd disk replaced, or the bootstrap node restored from a backup) is removed and
    joins afresh. Membership changes go through a member that answers (`_etcd_minion`):
    the CA minion's own, unless it is the one that lost its data."""
    timeout = run.timeout(step)
    minion = _etcd_minion(run)
    members = etcdjoin.members_from(run.call_on(minion, "kubesalt_etcd.members", [], {},
                                               60, "list the etcd members"))  # fmt: skip
    askable = [n for n in nodes if n not in run.no_minion]
    ips = run.control_plane_ips(askable)
    grains = run.kubesalt_grains(askable)
    intact = _intact(run, minion, members, [n for n in askable if find(members, n)])
    plans = {n: etcdjoin.plan_join(members, n, peer_url(ips[n]),
                                   bool(grains[n].get("etcd_initial_cluster")),
                                   intact.get(n, True))
             for n in askable}  # fmt: skip
    joining = [n for n in askable if plans[n].joins]
    stray = etcdjoin.other_learner(members, nodes) if joining else None
    if stray is not None:
        raise StepFailed(
            f"etcd member {stray.label()} is a learner and etcd admits one at a time: no node "
            "can join until it is promoted or removed (salt-run state.orchestrate "
            "kubesalt.orchestrate.remove_node, or kubesalt_etcd.remove on the CA minion)"
        )
    voters = [n for n in askable if not plans[n].joins]
    voter_step = dataclasses.replace(step, kind="applied", args={"sls": ETCD_SLS},
                                     timeout=timeout * 3)  # fmt: skip
    result = applied(run, voter_step, voters, voters)
    if run.test:
        for node in nodes:
            if node in run.no_minion:
                result.changes[node] = {"etcd": "would join etcd (no minion yet)"}
            elif plans[node].joins:
                result.changes[node] = {"etcd": f"{plans[node].state}: would "
                                        + ", ".join(plans[node].actions)}  # fmt: skip
        return result
    joined = []
    for index, node in enumerate(joining):
        plan = plans[node]
        if index:  # the previous join ended waiting for a healthy cluster
            plan = dataclasses.replace(
                plan, actions=plan.actions[plan.actions[0] == etcdjoin.WAIT_HEALTHY :]
            )
        try:
            result.changes[node] = _join(run, minion, plan, timeout)
        except (StepFailed, OrchestrateError) as err:
            message = err.message if isinstance(err, StepFailed) else f"{type(err).__name__}: {err}"
            done = f" (joined before the failure: {', '.join(joined)})" if joined else ""
            raise StepFailed(message + done, [node]) from err
        joined.append(f"{node} ({plans[node].peer_url})")
    if joined:
        result.notes.append(f"joined etcd as voting members: {', '.join(joined)}")
    return result


def _join(run, minion, plan, timeout) -> dict:
    """Run a JoinPlan's actions for one node, the membership changes on `minion`; its
    changes."""
    node, changes, added = plan.node, {}, None
    healthy = {"timeout": timeout, "cluster": True}
    for action in plan.actions:
        if action == etcdjoin.REMOVE_STALE:
            removed = run.call_on(minion, "kubesalt_etcd.remove", [node],
                                 {"timeout": timeout}, timeout + 30,
                                 f"remove the stale etcd member of {node}")  # fmt: skip
            if isinstance(removed, dict) and removed.get("changed"):
                changes["stale_member_removed"] = node
        elif action == etcdjoin.WAIT_HEALTHY:
            run.call_on(minion, "kubesalt_etcd.wait_healthy", [], healthy, timeout + 30,
                       f"wait for a healthy etcd cluster ({node})")  # fmt: skip
        elif action == etcdjoin.ADD_LEARNER:
            added = run.call_on(minion, "kubesalt_etcd.add_learner", [node, plan.peer_url],
                               {}, timeout, f"add {node} as an etcd learner")  # fmt: skip
            if added.get("changed"):
                changes["learner"] = (added.get("member") or {}).get("id", node)
        elif action == etcdjoin.RECORD:
            members = etcdjoin.parse_initial_cluster(added["initial_cluster"])
            run.rpc.call([node], "grains.set", [INITIAL_CLUSTER_GRAIN, members],
                         {"force": True}, 30)  # fmt: skip
            changes["initial_cluster"] = added["initial_cluster"]
        elif action == etcdjoin.STATIC_POD:
            runs = run.rpc.state([node], ETCD_SLS, run.options.saltenv, timeout * 3)
            if runs[node].changed:
                changes["states"] = runs[node].changed
        elif action == etcdjoin.PROMOTE:
            promoted = run.call_on(minion, "kubesalt_etcd.promote", [node],
                                  {"timeout": timeout}, timeout + 30,
                                  f"promote the etcd learner {node}")  # fmt: skip
            if promoted.get("changed"):
                changes["promoted"] = node
    return changes


def _own_member_healthy(health) -> bool:
    """Whether kubesalt_etcd.health (this minion's own endpoint) answered healthy."""
    return (
        isinstance(health, dict)
        and bool(health)
        and all(isinstance(state, dict) and state.get("health") for state in health.values())
    )


def _etcd_minion(run) -> str:
    """The minion to run etcd membership changes on: the CA minion when its own member
    answers healthy, else the first other etcd node (outside the run) whose member does.
    etcdctl there talks to that member, never to the one being removed, which may be gone.
    The CA node restored from its backup rejoins through another member."""
    ca = run.options.ca_minion
    others = [n for n in run.others(frozenset({_roles.ETCD})) if n != ca]
    seen = {}
    for group in ([ca], others):
        if not group:
            continue
        answers = run.rpc.answers(group, "kubesalt_etcd.health", [], {"cluster": False}, 30)
        for minion in group:
            seen[minion] = answers.get(minion)
            if _own_member_healthy(seen[minion]):
                return minion
    asked = "; ".join(
        f"{minion}: {'no answer, or the call failed' if health is None else _unhealthy_text(health)}"
        for minion, health in seen.items()
    )
    raise StepFailed(
        f"no etcd member answers healthy through its own minion ({asked}): etcd cannot "
        "change its membership now. Check etcd on those nodes (salt <node> "
        "kubesalt_etcd.health cluster=True, the etcd static pod's log); if the cluster lost "
        "its quorum for good, restore etcd from a snapshot"
    )


def _unhealthy_text(health) -> str:
    if not isinstance(health, dict) or not health:
        return f"answered {str(health)[:100]!r}"
    return ", ".join(f"{url} {state.get('error') or 'unhealthy'}"
                     for url, state in health.items() if not (state or {}).get("health"))  # fmt: skip


def _planned_removal(run, minion, node):
    """What kubesalt_etcd.remove would do, decided from the member list and the voters'
    health read through `minion` (a dry run): the same rules, the same refusals."""
    members = etcdjoin.members_from(
        run.call_on(minion, "kubesalt_etcd.members", [], {}, 60, "list the etcd members")
    )
    member = find(members, node)
    healthy = set()
    if member is not None and member.voter:
        health = run.call_on(minion, "kubesalt_etcd.health", [], {"cluster": True}, 60,
                             "etcd health of every voting member")  # fmt: skip
        healthy = healthy_members(members, health or {})
    try:
        return plan_remove(members, node, healthy)
    except EtcdError as err:
        refusal = f"{type(err).__name__}: {err}; the run would refuse it"
        raise StepFailed(_with_quorum_hint(refusal), [node]) from None


# remove_node's pillar force says the node is gone; it never overrides a quorum rule.
QUORUM_HINT = (
    "remove_node never overrides the quorum rules (pillar force means the node is gone: "
    "removing a gone member of three leaves two healthy of two); if the health seen is "
    "wrong (a member that votes while its client port is filtered), remove the member by "
    "hand, kubesalt_etcd.remove NODE force=True on an etcd node, then run remove_node again"
)


def _with_quorum_hint(message: str) -> str:
    return f"{message}. {QUORUM_HINT}" if "QuorumError" in message else message


def etcd_left(run, step, nodes, targets):
    """The node's etcd member removed through a healthy member (`_etcd_minion`), with the
    quorum rules of kubesalt.etcd.plan_remove: never the last voting member, never when
    the voters left would not keep a healthy quorum. A dry run applies the same rules to
    the member list and the voters' health."""
    minion = _etcd_minion(run)
    changes = {}
    for node in nodes:
        if run.test:
            plan = _planned_removal(run, minion, node)
            if plan.action == "remove":
                changes[node] = {"etcd": f"would remove member {plan.member.label()} "
                                 f"(through {minion})"}  # fmt: skip
            continue
        try:
            removed = run.call_on(minion, "kubesalt_etcd.remove", [node],
                                  {"timeout": run.timeout(step)}, run.timeout(step) + 30,
                                  f"remove the etcd member {node}")  # fmt: skip
        except StepFailed as err:
            raise StepFailed(_with_quorum_hint(f"{err.message}; nothing was changed"),
                             [node]) from err  # fmt: skip
        if removed.get("changed"):
            changes[node] = {"removed": removed.get("member")}
    return StepResult(changes)


# -- Node objects ----------------------------------------------------------------------
ADMIN_CONF = Layout().kubeconfig("admin.conf")


def _read_node(run, node):
    """The Node object `node` as the CA minion's kubectl sees it (None: absent)."""
    command = _kubectl.get_node_command(ADMIN_CONF, node)
    out = run.ca_call("cmd.run_all", [command], {"python_shell": False}, 60,
                   f"read the Node object {node}")  # fmt: skip
    if out.get("retcode"):
        raise StepFailed(f"kubectl get node {node} on {run.options.ca_minion} failed: "
                         f"{(out.get('stderr') or '').strip()[-300:]}", [node])  # fmt: skip
    return _kubectl.parse_node(out.get("stdout") or "")


def _changing(run, step, nodes) -> list[str]:
    """The nodes whose dry run of the step's `if_changing` SLS (one job) would change
    something; every node when the step has none."""
    sls = step.args.get("if_changing")
    if not sls or not nodes:
        return list(nodes)
    runs = run.rpc.state(nodes, list(sls), run.options.saltenv, run.options.state_timeout,
                         test=True, pillar=run.dry_run_pillar())  # fmt: skip
    return [n for n in nodes if runs[n].changed]


def drained(run, step, nodes, targets):
    """kubectl drain (cordon, evict; PodDisruptionBudgets honoured until the timeout). No
    Node object: nothing to do. With args `if_changing` (an upgrade), only the nodes whose
    dry run of those SLS would change something: a node already moved keeps its pods. On
    failure nothing else is changed."""
    changes = {}
    for node in _changing(run, step, nodes):
        if run.test:
            found = _read_node(run, node)
            if found is not None:
                changes[node] = {"drain": "would cordon and evict its pods"
                                 if not _kubectl.is_cordoned(found) else "would evict its pods"}  # fmt: skip
            continue
        seconds = run.timeout(step)
        try:
            result = run.ca_call("kubesalt_kubectl.drain", [node], {"timeout": seconds},
                              seconds + 30, f"drain the Node object {node}")  # fmt: skip
        except StepFailed as err:
            raise StepFailed(f"{err.message}; nothing else was changed", [node]) from err
        if result.get("changed"):
            changes[node] = {"cordoned": result.get("cordoned"), "evicted": result.get("evicted")}
    return StepResult(changes)


DRAIN_PHASE = "drain"


def uncordoned(run, step, nodes, targets):
    """kubectl uncordon: the Node schedulable again once its node runs the new release, if
    kubesalt's drain cordoned it (its annotation); a Node cordoned by someone else stays
    cordoned, said in a note. A schedulable Node, or none, is unchanged; a dry run reads
    the Node object. With phase drain skipped (the lab), nothing was cordoned: nothing is
    asked."""
    if DRAIN_PHASE in run.options.skip:
        return StepResult(notes=[f"{', '.join(nodes)}: not drained (phase drain skipped)"])
    changes, notes = {}, []
    for node in nodes:
        if run.test:  # the module's decision, from the Node object it would read
            action = _kubectl.uncordon_action(_read_node(run, node))
            comment = (f"would stay cordoned (cordoned before kubesalt drained it: no "
                       f"annotation {_kubectl.CORDONED_BY})")  # fmt: skip
            done = {_kubectl.UNCORDON: {"uncordon": "would uncordon the Node object"},
                    _kubectl.UNMARK: {"unmark": f"would remove the annotation "
                                                f"{_kubectl.CORDONED_BY}"}}  # fmt: skip
        else:
            result = run.ca_call("kubesalt_kubectl.uncordon", [node], {}, run.timeout(step),
                                 f"uncordon the Node object {node}")  # fmt: skip
            action, comment = result.get("action"), result.get("comment")
            done = {_kubectl.UNCORDON: {"uncordoned": node}, _kubectl.UNMARK: {"unmarked": node}}
        if action in done:
            changes[node] = done[action]
        elif action == _kubectl.KEEP_CORDONED:
            notes.append(f"{node}: {comment}")
    return StepResult(changes, notes)


def node_deleted(run, step, nodes, targets):
    """The Node object deleted (after cleanup stopped the kubelet: it cannot register
    again)."""
    changes = {}
    for node in nodes:
        if run.test:
            if _read_node(run, node) is not None:
                changes[node] = {"deleted": "would delete the Node object"}
            continue
        seconds = run.timeout(step)
        result = run.ca_call("kubesalt_kubectl.delete_node", [node], {"timeout": seconds},
                          seconds + 30, f"delete the Node object {node}")  # fmt: skip
        if result.get("changed"):
            changes[node] = {"deleted": node}
    return StepResult(changes)


# -- readiness -------------------------------------------------------------------------
def api_ready(run, step, nodes, targets):
    """https://<node>:<apiServer.port>/readyz answers 200, asked from the master (bounded).
    A wait changes nothing: a dry run asks once and only notes the answer."""
    askable = [n for n in nodes if n not in run.no_minion]
    ips = run.control_plane_ips(askable)
    port = run.options.api_port
    if port is None:
        raise OrchestrateError(
            "the pillar has no kubesalt:apiServer (no configuration): cannot tell kube-apiserver's "
            "port; check /etc/kubesalt/bootstrap.yaml with kubesalt_config.validate"
        )
    url = {
        n: _urls.https(ips[n], port, "/readyz", what=f"readyz URL of {n}",
                       hint=f"phase grains publishes {n}'s control-plane IP; run it again")
        for n in askable
    }  # fmt: skip
    last = {}

    def not_ready(pending):
        left = []
        for node in pending:
            try:
                last[node] = run.backend.http_status(url[node], 5)
            except OSError as err:
                last[node] = str(err)
            if last[node] != 200:
                left.append(node)
        return left

    if run.test:
        left = not_ready(askable)
        return StepResult(notes=[f"{n}: {url[n]} answers {last[n]}" for n in left])
    left = wait(run, step, askable, not_ready)
    if left:
        raise StepFailed(
            "; ".join(f"{url[n]} did not answer 200 within {run.timeout(step)}s (last: "
                      f"{last[n]}); check kube-apiserver on {n} (crictl ps, its log)"
                      for n in left),
            left,
        )  # fmt: skip
    return StepResult()


# -- certificate renewal (renew_certificates) -------------------------------------------
ETCD_SERVER_CERT = Layout().pki("etcd/server.crt")


def _renewal_pillar(run) -> dict:
    if run.options.renewal is None:
        raise OrchestrateError(
            f"{run.options.orchestration} has no renewal options: the renewed step belongs to "
            "renew_certificates"
        )
    return {_renewal.PILLAR_KEY: run.options.renewal.as_pillar()}


def _sls_groups(run, step, nodes) -> dict[tuple[str, ...], list[str]]:
    """{SLS list: nodes}: the step's `sls`, or per node the `role_sls` of its roles."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for node in nodes:
        if "role_sls" in step.args:
            roles = set(run.roles(node))
            sls = tuple(s for role, s in step.args["role_sls"].items() if role in roles)
        else:
            sls = tuple(step.args["sls"])
        if sls:
            groups.setdefault(sls, []).append(node)
    return groups


def renewed(run, step, nodes, targets):
    """`state.sls` of the step's SLS on the nodes with the run's renewal override (pillar
    kubesalt_renew: window, force, the run's start), one job per SLS list. A dry run runs
    the same job with test=True: the certificates that would be renewed."""
    pillar = _renewal_pillar(run)
    changes = {}
    for sls, group in _sls_groups(run, step, nodes).items():
        runs = run.rpc.state(group, list(sls), run.options.saltenv, run.timeout(step),
                             test=run.test, pillar=pillar)  # fmt: skip
        changes.update({node: {"states": r.changed} for node, r in runs.items() if r.changed})
    return StepResult(changes)


def _step_kinds():
    """Every step kind (engine.KINDS; imported when called: the engine imports this
    module)."""
    from kubesalt.orchestrate.engine import KINDS as ALL_KINDS  # noqa: PLC0415

    return ALL_KINDS


def _renew_phases(run, phases, nodes, result: StepResult) -> None:
    """Run the nested `phases` on `nodes` (each phase on the nodes of its roles), adding
    {node: {phase: changes}} to `result`. Skipped phases (pillar skip_phases) are left
    out. A dry run does not run the steps that follow a renewal (kubeconfigs, static
    pods, kubelet): it says they follow on the nodes with certificates to renew."""
    kinds = _step_kinds()
    for phase in phases:
        if phase.name in run.options.skip:
            continue
        acting = [n for n in nodes if not phase.roles or phase.roles & set(run.roles(n))]
        for step in phase.steps if acting else ():
            if run.test and step.args.get("after_renewal"):
                for node in acting:
                    if node in result.changes:
                        result.changes[node][phase.name] = "would follow the renewal"
                continue
            try:
                got = kinds[step.kind](run, step, acting, run.targets(step, acting))
            except (StepFailed, OrchestrateError) as err:
                message = err.message if isinstance(err, StepFailed) else str(err)
                failed = err.nodes if isinstance(err, StepFailed) and err.nodes else acting
                raise StepFailed(f"{phase.name}: {message}", failed) from err
            for node, changes in got.changes.items():
                if changes:
                    result.changes.setdefault(node, {})[phase.name] = changes
            result.notes.extend(got.notes)


def _without_roles(run, step, nodes) -> list[str]:
    """The nodes without any of the step's roles `without_roles` (none given: all)."""
    without = step.args.get("without_roles", frozenset())
    return [n for n in nodes if not without & set(run.roles(n))]


def _none_without(step) -> str:
    return f"no node without the role(s) {', '.join(sorted(step.args['without_roles']))}"


def in_turn(run, step, nodes, targets):
    """The nested phases (args `phases`) node after node, in the run's order, on the
    nodes without the roles `without_roles`: each node renewed (upgraded), restarted and
    healthy before the next one starts."""
    result = StepResult()
    done = []
    acting = _without_roles(run, step, nodes)
    if not acting:
        result.notes.append(_none_without(step))
    for node in acting:
        start = run.backend.clock()
        try:
            _renew_phases(run, step.args["phases"], [node], result)
        except StepFailed as err:
            before = f" (done before the failure: {', '.join(done)})" if done else ""
            raise StepFailed(err.message + before, err.nodes) from err
        done.append(node)
        result.notes.append(f"{node} done in {run.backend.clock() - start:.1f}s")
    return result


def together(run, step, nodes, targets):
    """The nested phases (args `phases`) once for all the nodes without any of the roles
    `without_roles` (renew_certificates: the workers, after the members)."""
    acting = _without_roles(run, step, nodes)
    result = StepResult()
    if not acting:
        result.notes.append(_none_without(step))
        return result
    _renew_phases(run, step.args["phases"], acting, result)
    return result


def etcd_renewed(run, step, nodes, targets):
    """The node's etcd serves the etcd/server.crt now on disk (the kubelet restarted it
    from its new manifest; asked on the node, bounded), then every voting member answers
    healthy. A dry run asks the cluster's health once and notes it."""
    notes = []
    port = _ports.port_number("etcd-client")
    for node in nodes:
        if run.test:
            health = run.call_on(
                node,
                "kubesalt_etcd.health",
                [],
                {"cluster": True},
                60,
                f"etcd health through {node}",
            )
            bad = sorted(url for url, state in (health or {}).items() if not state.get("health"))
            if bad:
                notes.append(f"{node}: etcd unhealthy at {', '.join(bad)}")
            continue
        seconds = run.timeout(step)
        served = run.call_on(node, "kubesalt_certs.wait_serving", [port, ETCD_SERVER_CERT],
                             {"timeout": seconds}, seconds + 30,
                             f"etcd on {node} serving its renewed certificate")  # fmt: skip
        run.call_on(node, "kubesalt_etcd.wait_healthy", [], {"cluster": True, "timeout": seconds},
                    seconds + 30, f"wait for a healthy etcd cluster ({node})")  # fmt: skip
        notes.append(f"{node}: etcd serves serial {served.get('serial')}, every member healthy")
    return StepResult(notes=notes)


KINDS = {
    "etcd_member_left_when_skipped": etcd_member_left_when_skipped,
    "etcd_joined": etcd_joined, "etcd_left": etcd_left,
    "drained": drained, "uncordoned": uncordoned, "node_deleted": node_deleted,
    "api_ready": api_ready,
    "renewed": renewed, "in_turn": in_turn, "together": together,
    "etcd_renewed": etcd_renewed,
}  # fmt: skip
