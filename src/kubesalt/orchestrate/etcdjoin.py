"""What a node still needs to become a voting etcd member, decided from one member list.

kubeadm's join, one node at a time: wait for a healthy cluster, add the node as a
learner, record the `--initial-cluster` of that moment (so a later join never rewrites
this member's manifest), write its static pod, promote it once in sync, wait for a
healthy cluster again. A node found further along skips what is done; an already-joined
voter needs only its state applied (no add, no promotion, no wait). A started member
whose node has no etcd data (its etcd disk replaced, or the bootstrap node restored from a
backup) is stale: it is removed, then the node joins afresh. Pure: the step kind
`etcd_joined` runs the actions (docs/orchestrations.md, phase etcd).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubesalt.etcd import Member, find
from kubesalt.orchestrate.model import OrchestrateError

WAIT_HEALTHY = "wait-healthy"
ADD_LEARNER = "add-learner"
RECORD = "record-initial-cluster"
STATIC_POD = "write-static-pod"
PROMOTE = "promote"
APPLY = "apply-state"  # a voter: its etcd state, when something is left to change
REMOVE_STALE = "remove-stale-member"  # the member of a node whose etcd data is gone

FULL_JOIN = (WAIT_HEALTHY, ADD_LEARNER, RECORD, STATIC_POD, PROMOTE, WAIT_HEALTHY)


@dataclass(frozen=True)
class JoinPlan:
    """`actions` in order; `state` is what the member list says: absent, learner,
    unstarted-learner or voter."""

    node: str
    peer_url: str
    state: str
    actions: tuple[str, ...]

    @property
    def joins(self) -> bool:
        """Whether the membership changes (anything but applying the state)."""
        return self.actions not in ((), (APPLY,))


def plan_join(members: Sequence[Member], node: str, peer_url: str, recorded: bool,
              has_data: bool = True) -> JoinPlan:  # fmt: skip
    """The actions for `node` (peer URL `peer_url`) from the current member list;
    `recorded`: its grain already holds an --initial-cluster; `has_data`: its etcd data
    directory holds a member. A conflict (the peer URL of another started member) raises
    kubesalt.etcd.MembershipError."""
    member = find(members, node, peer_url)
    if member is not None and peer_url not in member.peer_urls:
        raise OrchestrateError(
            f"etcd member {member.label()} has peer URL(s) {', '.join(member.peer_urls)}, "
            f"not {peer_url}: the node's control-plane IP changed. Remove the member first "
            f"(remove_node {node}), then deploy the node again"
        )
    if member is None:
        return JoinPlan(node, peer_url, "absent", FULL_JOIN)
    if member.started and not has_data:
        # Its etcd would start empty under a member ID the cluster counts: never.
        return JoinPlan(node, peer_url, "stale", (REMOVE_STALE, *FULL_JOIN))
    if member.voter:
        return JoinPlan(node, peer_url, "voter", (APPLY,))
    record = () if recorded else (ADD_LEARNER, RECORD)  # add_learner gives it back
    state = "learner" if member.started else "unstarted-learner"
    return JoinPlan(node, peer_url, state, (*record, STATIC_POD, PROMOTE, WAIT_HEALTHY))


def other_learner(members: Sequence[Member], nodes: Sequence[str]) -> Member | None:
    """A learner that is none of `nodes`: etcd admits one learner at a time, so no node
    can join until it is promoted or removed."""
    for member in members:
        if member.is_learner and member.name not in nodes:
            return member
    return None


def parse_initial_cluster(text: str) -> list[list[str]]:
    """`--initial-cluster` (`a=https://10.0.0.1:2380,b=...`) as [[name, ip], ...], the
    form of the grain kubesalt:etcd_initial_cluster."""
    members = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, url = item.strip().partition("=")
        host = urlsplit(url).hostname if sep else None
        try:
            ip = str(ipaddress.ip_address(host or ""))
        except ValueError:
            raise OrchestrateError(
                f"--initial-cluster entry {item!r}: expected NAME=https://IP:2380 (from "
                "kubesalt_etcd.add_learner); check the etcd member list with "
                "kubesalt_etcd.members"
            ) from None
        members.append([name, ip])
    if not members:
        raise OrchestrateError(
            f"--initial-cluster {text!r} is empty; check kubesalt_etcd.add_learner's answer"
        )
    return members


def members_from(listing) -> tuple[Member, ...]:
    """kubesalt_etcd.members' return (a list of dicts) as Members."""
    try:
        return tuple(
            Member(
                id=item["id"],
                name=item.get("name") or "",
                peer_urls=tuple(item.get("peer_urls") or ()),
                client_urls=tuple(item.get("client_urls") or ()),
                is_learner=bool(item.get("is_learner")),
            )
            for item in listing
        )
    except (TypeError, KeyError, AttributeError):
        raise OrchestrateError(
            f"kubesalt_etcd.members answered {str(listing)[:200]!r}, not a member list"
        ) from None
