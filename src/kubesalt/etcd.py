"""etcd membership, decided in pure Python: parse `etcdctl`, count quorum, plan changes.

The loader module `kubesalt_etcd` runs `etcdctl` and calls this module to read its answers
and to decide what to do; nothing here runs a program or touches Salt, so every rule is
unit-tested directly.

Member IDs: etcd's JSON output gives them as uint64 decimals (`13195394291058371180`);
every other etcdctl command (`member promote`, `member remove`) and its table output use
hex (`b71f75320dc06a6c`, up to 16 digits, no leading zeros: Go's `%x`). `Member.id` is
always that hex form.

A member that was added but has not started yet has no name and no client URL (etcdctl
shows it as `unstarted`): it is found by its peer URL or its ID, never by its name.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kubesalt import ports, urls
from kubesalt.errors import KubesaltError


class EtcdError(KubesaltError):
    """An etcd membership operation cannot be planned or was refused."""


def _member_ip(ip, what: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        raise EtcdError(
            f"{what}: {ip!r} is not an IP address; an etcd member is reached on its "
            "control-plane IP (the grain and mine kubesalt control_plane_ip)"
        ) from None


def peer_url(ip: str) -> str:
    """A member's peer URL, `https://<ip>:2380` (port-matrix entry etcd-peer), the one
    every `--initial-cluster` entry and `etcdctl member add` use; IPv6 in brackets."""
    port = ports.port_number("etcd-peer")
    return urls.https(_member_ip(ip, "etcd peer URL"), port, what="etcd peer URL")


def client_url(ip: str) -> str:
    """A member's client URL, `https://<ip>:2379` (port-matrix entry etcd-client)."""
    port = ports.port_number("etcd-client")
    return urls.https(_member_ip(ip, "etcd client URL"), port, what="etcd client URL")


class MembershipError(EtcdError):
    """The wanted membership conflicts with the current one (a name or a peer URL)."""


class LastMemberError(EtcdError):
    """Removing the only member would destroy the cluster."""


class QuorumError(EtcdError):
    """The cluster has, or would be left without, a quorum of healthy voting members."""


class EtcdctlError(EtcdError):
    """etcdctl failed; `message` is etcd's own error (the `Error:` line)."""

    def __init__(self, message: str, command: str = "etcdctl"):
        self.message = message
        self.command = command
        super().__init__(f"{command} failed: {message}")


class LearnerNotReady(EtcdctlError):
    """etcd refuses to promote a learner that has not caught up with the leader yet."""


class UnhealthyCluster(EtcdctlError):
    """etcd refuses a membership change until every voter has been connected for 5 s."""


class MemberNotFound(EtcdctlError):
    """etcd has no member with the given ID."""


class NotALearner(EtcdctlError):
    """etcd refuses to promote a member that is already a voter."""


class PeerURLExists(EtcdctlError):
    """etcd refuses to add a member whose peer URL another member has."""


class TooManyLearners(EtcdctlError):
    """etcd (3.4 and 3.5 by default) accepts only one learner at a time."""


class Unreachable(EtcdctlError):
    """etcdctl reached no endpoint, or the request timed out."""


# etcd's error text (etcdserver/api/v3rpc/rpctypes, etcdctl) -> the exception it becomes.
# Matched as substrings of the `Error:` line, in this order.
ETCDCTL_ERRORS: tuple[tuple[str, type[EtcdctlError]], ...] = (
    ("can only promote a learner member which is in sync with leader", LearnerNotReady),
    ("can only promote a learner member", NotALearner),
    ("unhealthy cluster", UnhealthyCluster),
    ("member not found", MemberNotFound),
    ("Peer URLs already exists", PeerURLExists),
    ("too many learner members in cluster", TooManyLearners),
    ("context deadline exceeded", Unreachable),
    ("all SubConns are in TransientFailure", Unreachable),
    ("connection refused", Unreachable),
    ("request timed out", Unreachable),
)


def etcdctl_error(stderr: str, stdout: str = "", command: str = "etcdctl") -> EtcdctlError:
    """The exception for a failed etcdctl run: etcd's `Error: ...` line, typed."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    errors = [line[len("Error:") :].strip() for line in lines if line.startswith("Error:")]
    if errors:
        message = errors[-1]
    elif lines:
        message = lines[-1]
    else:
        message = (stdout or "").strip() or "no output"
    for text, kind in ETCDCTL_ERRORS:
        if text in message:
            return kind(message, command)
    return EtcdctlError(message, command)


def format_id(value: int | str) -> str:
    """Member ID as etcdctl prints it in its tables and takes it in its commands: lowercase
    hex without leading zeros (Go's `%x`), up to 16 digits."""
    if isinstance(value, str):
        try:
            value = int(value, 16)
        except ValueError:
            raise EtcdError(
                f"etcd member ID {value!r} is not hexadecimal; give the ID as "
                "`etcdctl member list` prints it (16 hex digits)"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**64:
        raise EtcdError(f"etcd member ID {value!r} is not an unsigned 64-bit integer above 0")
    return f"{value:x}"


@dataclass(frozen=True)
class Member:
    """One etcd member as `etcdctl member list` shows it."""

    id: str
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool = False

    @property
    def started(self) -> bool:
        """Whether the member has started (an unstarted member has no name yet)."""
        return bool(self.name)

    @property
    def voter(self) -> bool:
        """Whether the member votes (counts for quorum)."""
        return not self.is_learner

    def label(self) -> str:
        """`cp2 (b71f75320dc06a6c)`, or `unstarted member b71f... (https://...:2380)`."""
        if self.name:
            return f"{self.name} ({self.id})"
        return f"unstarted member {self.id} ({', '.join(self.peer_urls)})"

    def to_dict(self) -> dict:
        """The member as the execution module returns it."""
        return {
            "id": self.id,
            "name": self.name,
            "peer_urls": list(self.peer_urls),
            "client_urls": list(self.client_urls),
            "is_learner": self.is_learner,
        }


def _member(data: dict, where: str) -> Member:
    if not isinstance(data, dict) or "ID" not in data:
        raise EtcdError(f"{where}: {data!r} is not an etcd member (no ID)")
    return Member(
        id=format_id(data["ID"]),
        name=data.get("name") or "",
        peer_urls=tuple(data.get("peerURLs") or ()),
        client_urls=tuple(data.get("clientURLs") or ()),
        is_learner=bool(data.get("isLearner", False)),
    )


def _load(output: str, what: str) -> dict:
    try:
        data = json.loads(output)
    except (TypeError, ValueError) as err:
        raise EtcdError(f"{what} did not print JSON ({err}): {str(output)[:200]!r}") from None
    if not isinstance(data, dict):
        raise EtcdError(f"{what} printed {type(data).__name__}, not a JSON object")
    return data


def parse_member_list(output: str) -> tuple[Member, ...]:
    """Members from `etcdctl -w json member list`, in etcd's order (by ID)."""
    data = _load(output, "etcdctl member list")
    return tuple(_member(m, "etcdctl member list") for m in data.get("members") or ())


def parse_member_add(output: str) -> tuple[Member, tuple[Member, ...]]:
    """(the new member, every member) from `etcdctl -w json member add`."""
    data = _load(output, "etcdctl member add")
    new = _member(data.get("member"), "etcdctl member add")
    return new, tuple(_member(m, "etcdctl member add") for m in data.get("members") or ())


def parse_endpoint_health(output: str) -> dict[str, dict]:
    """`{endpoint: {"health": bool, "error": str | None}}` from
    `etcdctl -w json endpoint health` (the first answer for an endpoint listed twice)."""
    try:
        data = json.loads(output)
    except (TypeError, ValueError) as err:
        raise EtcdError(
            f"etcdctl endpoint health did not print JSON ({err}): {str(output)[:200]!r}"
        ) from None
    if not isinstance(data, list):
        raise EtcdError("etcdctl endpoint health did not print a JSON list")
    result: dict[str, dict] = {}
    for item in data:
        if not isinstance(item, dict) or "endpoint" not in item:
            raise EtcdError(f"etcdctl endpoint health: {item!r} has no endpoint")
        result.setdefault(
            item["endpoint"],
            {"health": item.get("health") is True, "error": item.get("error") or None},
        )
    return result


def quorum(voters: int) -> int:
    """Votes etcd needs to commit anything with `voters` voting members (a majority)."""
    if isinstance(voters, bool) or not isinstance(voters, int) or voters < 1:
        raise EtcdError(f"quorum of {voters!r} voting members: give a count of at least 1")
    return voters // 2 + 1


def _healthy(member: Member, healthy: Iterable[str]) -> bool:
    """A member is healthy when its ID or (for a started member) its name is listed."""
    return member.id in healthy or (member.started and member.name in healthy)


def keeps_quorum(members: Sequence[Member], remove: Member, healthy: Iterable[str]) -> bool:
    """Whether the voters left after removing `remove` still have a healthy quorum."""
    healthy = set(healthy)
    left = [m for m in members if m.voter and m.id != remove.id]
    if not left:
        return False
    return sum(_healthy(m, healthy) for m in left) >= quorum(len(left))


def _as_id(value: str) -> str | None:
    """`value` as a member ID when it is one (hex, any case, leading zeros), else None."""
    try:
        return format_id(value)
    except EtcdError:
        return None


def find(members: Sequence[Member], name: str, peer_url: str | None = None) -> Member | None:
    """The member called `name` (or whose ID is `name`); else, when `peer_url` is given, the
    unstarted member with that peer URL. A started member with that peer URL under another
    name is a conflict."""
    for member in members:
        if member.started and member.name == name:
            return member
    wanted = _as_id(name)
    for member in members:
        if wanted is not None and member.id == wanted:
            return member
    if peer_url:
        for member in members:
            if peer_url in member.peer_urls:
                if member.started:
                    raise MembershipError(
                        f"peer URL {peer_url} belongs to etcd member {member.label()}, not "
                        f"{name}: two nodes cannot share an address; check the node's IP, "
                        f"or remove {member.name} first (kubesalt_etcd.remove {member.name})"
                    )
                return member
    return None


def _labels(members: Iterable[Member]) -> str:
    return ", ".join(m.label() for m in members) or "none"


@dataclass(frozen=True)
class Plan:
    """What to do: `action` is `none`, `add`, `promote` or `remove`; `member` the member
    concerned (None for an add, the member does not exist yet); `reason` says why."""

    action: str
    member: Member | None
    reason: str


def plan_add(members: Sequence[Member], name: str, peer_url: str) -> Plan:
    """Add `name` as a learner, or nothing when a member has its peer URL already."""
    for member in members:
        if peer_url in member.peer_urls:
            if member.started and member.name != name:
                raise MembershipError(
                    f"cannot add etcd member {name}: its peer URL {peer_url} belongs to member "
                    f"{member.label()}; two nodes cannot share an address: check {name}'s "
                    f"control-plane IP, or remove {member.name} first "
                    f"(kubesalt_etcd.remove {member.name})"
                )
            role = "learner" if member.is_learner else "voter"
            state = "" if member.started else ", not started yet"
            return Plan("none", member, f"{name} is a member already ({role}{state})")
    for member in members:
        if member.started and member.name == name:
            raise MembershipError(
                f"cannot add etcd member {name} with peer URL {peer_url}: a member {name} "
                f"exists with peer URL(s) {', '.join(member.peer_urls)}. If the node's IP "
                f"changed, remove the old member first (kubesalt_etcd.remove {name}), stop "
                f"etcd on {name} and empty its data directory, then add it again"
            )
    learners = [m for m in members if m.is_learner]
    if learners:
        raise MembershipError(
            f"cannot add etcd member {name} yet: {_labels(learners)} is still a learner and "
            "etcd accepts one learner at a time. Start it and promote it "
            "(kubesalt_etcd.promote), or remove it (kubesalt_etcd.remove), then add "
            f"{name}; deploy etcd nodes one after the other"
        )
    return Plan("add", None, f"{name} is not a member")


def plan_promote(members: Sequence[Member], name: str, peer_url: str | None = None) -> Plan:
    """Promote the learner `name`, or nothing when it votes already."""
    member = find(members, name, peer_url)
    if member is None:
        raise MembershipError(
            f"cannot promote etcd member {name}: it is not a member (members: "
            f"{_labels(members)}); add it first (kubesalt_etcd.add_learner)"
        )
    if member.voter:
        return Plan("none", member, f"{member.label()} is a voting member already")
    return Plan("promote", member, f"{member.label()} is a learner")


def plan_remove(
    members: Sequence[Member],
    name: str,
    healthy: Iterable[str],
    force: bool = False,
    peer_url: str | None = None,
) -> Plan:
    """Remove `name`, refusing to remove the last member (always) or to leave the voters
    without a healthy quorum (unless `force`); nothing when `name` is not a member.

    `healthy` lists the healthy members by name or ID. Two quorum rules, both about
    voters (learners never count): the cluster must have a healthy quorum now, or etcd
    cannot commit the removal at all; and the voters left afterwards must have one, or the
    cluster stops serving. `force` skips both (for when the health seen from here is wrong);
    etcd's own check (`--strict-reconfig-check`) still applies.
    """
    member = find(members, name, peer_url)
    if member is None:
        return Plan("none", None, f"{name} is not a member")
    voters = [m for m in members if m.voter]
    if len(members) == 1 or (member.voter and len(voters) == 1):
        raise LastMemberError(
            f"refusing to remove etcd member {member.label()}: it is the last voting member, "
            "and removing it would destroy the cluster and its data. To tear the cluster "
            "down, stop etcd on it (kubesalt.etcd.absent), then delete /var/lib/etcd"
        )
    if member.is_learner or force:
        how = "a learner, which does not vote" if member.is_learner else "forced"
        return Plan("remove", member, f"{member.label()} is a member ({how})")
    healthy = set(healthy)
    up = [m for m in voters if _healthy(m, healthy)]
    down = [m for m in voters if not _healthy(m, healthy)]
    if len(up) < quorum(len(voters)):
        raise QuorumError(
            f"refusing to remove etcd member {member.label()}: the cluster has no quorum now, "
            f"{len(up)} of {len(voters)} voting members healthy and {quorum(len(voters))} "
            f"needed (unhealthy: {_labels(down)}), so etcd cannot commit any membership "
            "change. Start the unhealthy members; if they are lost for good, restore etcd "
            "from a snapshot. force=True skips this check if the health seen here is wrong"
        )
    left = [m for m in voters if m.id != member.id]
    left_up = [m for m in left if _healthy(m, healthy)]
    if not keeps_quorum(members, member, healthy):
        raise QuorumError(
            f"refusing to remove etcd member {member.label()}: the {len(left)} voting members "
            f"left would have {len(left_up)} healthy and need {quorum(len(left))} for quorum "
            f"(unhealthy: {_labels(m for m in left if m not in left_up)}), so the cluster "
            "would stop serving. Start the unhealthy members first, or remove them before "
            f"{name}; force=True removes it anyway"
        )
    return Plan("remove", member, f"{member.label()} is a member and quorum holds without it")


def initial_cluster(members: Sequence[Member], name: str, peer_url: str) -> str:
    """`--initial-cluster` for the member joining as `name` (kubeadm's rule): every member
    `name=peerURL` in etcd's order, the joining one under `name`, another unstarted one
    under its ID; the joining member is appended when it is not in `members`."""
    parts, seen = [], False
    for member in members:
        if peer_url in member.peer_urls:
            parts.append(f"{name}={peer_url}")
            seen = True
        elif member.peer_urls:
            parts.append(f"{member.name or member.id}={member.peer_urls[0]}")
    if not seen:
        parts.append(f"{name}={peer_url}")
    return ",".join(parts)


def client_endpoints(members: Sequence[Member], voters_only: bool = False) -> list[str]:
    """Every client URL of the started members (of the voters only, if asked), in order."""
    urls: list[str] = []
    for member in members:
        if voters_only and member.is_learner:
            continue
        urls.extend(url for url in member.client_urls if url not in urls)
    return urls


def healthy_members(members: Sequence[Member], health: dict[str, dict]) -> set[str]:
    """IDs of the members one of whose client URLs answered healthy in `health`."""
    return {
        member.id
        for member in members
        if any(health.get(url, {}).get("health") for url in member.client_urls)
    }


def processes_using(data_dir: str, proc: str = "/proc") -> list[int]:
    """PIDs of the processes whose command line names `data_dir` as etcd's data directory
    (`--data-dir=DIR` or `--data-dir DIR`): an etcd still running from it."""
    wanted = data_dir.rstrip("/") or "/"
    found = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "cmdline"), "rb") as stream:
                argv = stream.read().decode(errors="replace").split("\0")
        except OSError:  # the process ended meanwhile
            continue
        for index, arg in enumerate(argv):
            value = None
            if arg.startswith("--data-dir="):
                value = arg.partition("=")[2]
            elif arg == "--data-dir" and index + 1 < len(argv):
                value = argv[index + 1]
            if value is not None and (value.rstrip("/") or "/") == wanted:
                found.append(int(entry.name))
                break
    return sorted(found)
