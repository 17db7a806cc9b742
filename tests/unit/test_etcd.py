"""kubesalt.etcd: etcdctl output parsed, quorum counted, membership changes planned.

The outputs below were captured from the real etcd 3.4.23 of the integration test (a
rendered cp1, then cp2 added as a learner, started, promoted).
"""

import pytest

from kubesalt import etcd
from kubesalt.errors import KubesaltError

HEADER = '{"cluster_id":11359140656373167743,"member_id":266128723897562333,"raft_term":2}'
CP1_JSON = (
    '{"ID":266128723897562333,"name":"cp1","peerURLs":["https://10.0.0.10:2380"],'
    '"clientURLs":["https://10.0.0.10:2379"]}'
)
# `etcdctl -w json member add cp2 --peer-urls=https://10.0.0.11:2380 --learner`
MEMBER_ADD = (
    f'{{"header":{HEADER},"member":{{"ID":4339825380032084241,'
    '"peerURLs":["https://10.0.0.11:2380"],"isLearner":true},'
    f'"members":[{CP1_JSON},{{"ID":4339825380032084241,'
    '"peerURLs":["https://10.0.0.11:2380"],"isLearner":true}]}\n'
)
# `etcdctl -w json member list` right after: cp2 has not started (no name, no client URL).
LIST_UNSTARTED = (
    f'{{"header":{HEADER},"members":[{CP1_JSON},{{"ID":4339825380032084241,'
    '"peerURLs":["https://10.0.0.11:2380"],"isLearner":true}]}\n'
)
# ... once etcd runs on cp2, still a learner.
LIST_LEARNER = (
    f'{{"header":{HEADER},"members":[{CP1_JSON},{{"ID":4339825380032084241,"name":"cp2",'
    '"peerURLs":["https://10.0.0.11:2380"],"clientURLs":["https://10.0.0.11:2379"],'
    '"isLearner":true}]}\n'
)
# ... and after `member promote`.
LIST_VOTERS = (
    f'{{"header":{HEADER},"members":[{CP1_JSON},{{"ID":4339825380032084241,"name":"cp2",'
    '"peerURLs":["https://10.0.0.11:2380"],"clientURLs":["https://10.0.0.11:2379"]}]}\n'
)
# `etcdctl -w json endpoint health` with cp3 down (stdout; the exit code is 1).
HEALTH = (
    '[{"endpoint":"https://10.0.0.10:2379","health":true,"took":"4.170757ms"},'
    '{"endpoint":"https://10.0.0.12:2379","health":false,"took":"4.000687402s",'
    '"error":"context deadline exceeded"}]\n'
)
WARN = (
    '{"level":"warn","ts":"2026-11-22T01:48:09.590Z","caller":"clientv3/retry_interceptor.go:62",'
    '"msg":"retrying of unary invoker failed","attempt":0,"error":"rpc error: '
    'code = FailedPrecondition desc = etcdserver: {message}"}}\n'
)
PROMOTE_NOT_READY = (
    WARN.replace("{message}", "can only promote a learner member which is in sync with leader")
    + "Error: etcdserver: can only promote a learner member which is in sync with leader\n"
)
ADD_UNHEALTHY = WARN.replace("{message}", "unhealthy cluster").replace(
    "FailedPrecondition", "Unavailable"
) + ("Error: etcdserver: unhealthy cluster\n")

CP1_ID, CP2_ID = "3b17aaa147134dd", "3c3a283094097911"


def member(name, number, learner=False, started=True):
    ip = f"10.0.0.{9 + number}"
    return etcd.Member(
        id=f"{number:x}",
        name=name if started else "",
        peer_urls=(f"https://{ip}:2380",),
        client_urls=(f"https://{ip}:2379",) if started else (),
        is_learner=learner,
    )


def voters(count):
    return [member(f"cp{n}", n) for n in range(1, count + 1)]


def test_parse_member_list_gives_hex_ids_as_etcdctl_prints_them():
    cp1, cp2 = etcd.parse_member_list(LIST_UNSTARTED)
    # 266128723897562333 = 0x03b17aaa147134dd: etcdctl's %x drops the leading zero.
    assert cp1 == etcd.Member(
        CP1_ID, "cp1", ("https://10.0.0.10:2380",), ("https://10.0.0.10:2379",), False
    )
    assert cp1.started and cp1.voter
    assert cp2 == etcd.Member(CP2_ID, "", ("https://10.0.0.11:2380",), (), True)
    assert not cp2.started and not cp2.voter
    assert cp2.label() == f"unstarted member {CP2_ID} (https://10.0.0.11:2380)"
    assert cp2.to_dict() == {
        "id": CP2_ID,
        "name": "",
        "peer_urls": ["https://10.0.0.11:2380"],
        "client_urls": [],
        "is_learner": True,
    }


def test_parse_member_list_learner_then_voter():
    assert etcd.parse_member_list(LIST_LEARNER)[1].label() == f"cp2 ({CP2_ID})"
    assert etcd.parse_member_list(LIST_LEARNER)[1].is_learner is True
    assert [m.is_learner for m in etcd.parse_member_list(LIST_VOTERS)] == [False, False]


def test_parse_member_add():
    new, every = etcd.parse_member_add(MEMBER_ADD)
    assert new.id == CP2_ID and new.is_learner and not new.started
    assert [m.id for m in every] == [CP1_ID, CP2_ID]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("not json", "etcdctl member list did not print JSON"),
        ("[1]", "etcdctl member list printed list, not a JSON object"),
        ('{"members": [{"name": "x"}]}', "etcdctl member list: {'name': 'x'} is not an etcd"),
    ],
)
def test_parse_member_list_errors(output, message):
    with pytest.raises(etcd.EtcdError, match=message):
        etcd.parse_member_list(output)


def test_parse_endpoint_health():
    assert etcd.parse_endpoint_health(HEALTH) == {
        "https://10.0.0.10:2379": {"health": True, "error": None},
        "https://10.0.0.12:2379": {"health": False, "error": "context deadline exceeded"},
    }
    with pytest.raises(etcd.EtcdError, match="did not print a JSON list"):
        etcd.parse_endpoint_health("{}")
    with pytest.raises(etcd.EtcdError, match="has no endpoint"):
        etcd.parse_endpoint_health('[{"health": true}]')


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (266128723897562333, "3b17aaa147134dd"),
        (13195394291058371180, "b71f75320dc06a6c"),
        (2**64 - 1, "ffffffffffffffff"),
        ("03B17AAA147134DD", "3b17aaa147134dd"),
    ],
)
def test_format_id(value, expected):
    assert etcd.format_id(value) == expected


@pytest.mark.parametrize(("value", "message"), [(0, "above 0"), (2**64, "above 0"), ("cp2", "hex")])
def test_format_id_errors(value, message):
    with pytest.raises(etcd.EtcdError, match=message):
        etcd.format_id(value)


@pytest.mark.parametrize(
    ("stderr", "kind", "message"),
    [
        (
            PROMOTE_NOT_READY,
            etcd.LearnerNotReady,
            "etcdserver: can only promote a learner member which is in sync with leader",
        ),
        (ADD_UNHEALTHY, etcd.UnhealthyCluster, "etcdserver: unhealthy cluster"),
        (
            "Error: etcdserver: can only promote a learner member\n",
            etcd.NotALearner,
            "etcdserver: can only promote a learner member",
        ),
        ("Error: etcdserver: member not found\n", etcd.MemberNotFound, "etcdserver: member"),
        ("Error: etcdserver: Peer URLs already exists", etcd.PeerURLExists, "etcdserver: Peer"),
        (
            "Error: etcdserver: too many learner members in cluster",
            etcd.TooManyLearners,
            "etcdserver: too",
        ),
        ("Error: context deadline exceeded\n", etcd.Unreachable, "context deadline exceeded"),
        ("open /x/ca.crt: no such file or directory\n", etcd.EtcdctlError, "open /x/ca.crt"),
        ("", etcd.EtcdctlError, "no output"),
    ],
)
def test_etcdctl_errors_are_typed(stderr, kind, message):
    error = etcd.etcdctl_error(stderr, command="etcdctl member promote 1")
    assert type(error) is kind
    assert isinstance(error, KubesaltError)
    assert error.message.startswith(message)
    assert str(error).startswith(f"etcdctl member promote 1 failed: {message}")


@pytest.mark.parametrize(("voters_", "needed"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)])
def test_quorum(voters_, needed):
    assert etcd.quorum(voters_) == needed


@pytest.mark.parametrize("bad", [0, -1, True, "3"])
def test_quorum_needs_a_count(bad):
    with pytest.raises(etcd.EtcdError, match="give a count of at least 1"):
        etcd.quorum(bad)


@pytest.mark.parametrize(
    ("count", "remove", "healthy", "keeps"),
    [
        (1, "cp1", {"cp1"}, False),  # nothing left
        (2, "cp2", {"cp1", "cp2"}, True),
        (2, "cp2", {"cp2"}, False),  # cp1, left alone, is down
        (3, "cp3", {"cp1", "cp2"}, True),  # removing the member that is down
        (3, "cp2", {"cp1", "cp2"}, False),  # cp1 + cp3 (down): 1 of 2
        (3, "cp1", {"cp1", "cp2", "cp3"}, True),
        (4, "cp4", {"cp1", "cp2"}, True),  # 2 of 3 left healthy, need 2
        (4, "cp1", {"cp1", "cp2"}, False),  # 1 of 3 left healthy
        (5, "cp1", {"cp1", "cp2", "cp3", "cp4"}, True),  # 3 of 4 left, need 3
        (5, "cp1", {"cp1", "cp2", "cp3"}, False),  # 2 of 4 left
        (5, "cp5", {"cp1", "cp2", "cp3"}, True),  # 3 of 4 left
        (5, "cp5", {"cp1", "cp2"}, False),  # 2 of 4 left
    ],
)
def test_keeps_quorum(count, remove, healthy, keeps):
    members = voters(count)
    target = next(m for m in members if m.name == remove)
    assert etcd.keeps_quorum(members, target, healthy) is keeps


def test_keeps_quorum_ignores_learners_and_accepts_ids():
    members = [*voters(2), member("cp3", 3, learner=True)]
    # cp3 is a healthy learner: it does not help cp1 (down) make a quorum with cp2.
    assert not etcd.keeps_quorum(members, members[1], {"cp2", "cp3"})
    assert etcd.keeps_quorum(members, members[2], {"1", "2"})


def test_plan_add_new_member_as_learner():
    plan = etcd.plan_add(voters(1), "cp2", "https://10.0.0.12:2380")
    assert (plan.action, plan.member, plan.reason) == ("add", None, "cp2 is not a member")


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([*voters(1), member("cp2", 2, learner=True, started=False)], "learner, not started"),
        ([*voters(1), member("cp2", 2, learner=True)], "(learner)"),
        (voters(2), "(voter)"),
    ],
)
def test_plan_add_nothing_when_the_peer_url_is_a_member(members, reason):
    plan = etcd.plan_add(members, "cp2", "https://10.0.0.11:2380")
    assert plan.action == "none" and plan.member.id == "2"
    assert plan.reason.startswith("cp2 is a member already (") and reason in plan.reason


def test_plan_add_refuses_a_peer_url_of_another_member():
    with pytest.raises(etcd.MembershipError) as error:
        etcd.plan_add(voters(2), "cp9", "https://10.0.0.11:2380")
    assert str(error.value) == (
        "cannot add etcd member cp9: its peer URL https://10.0.0.11:2380 belongs to member "
        "cp2 (2); two nodes cannot share an address: check cp9's control-plane IP, or remove "
        "cp2 first (kubesalt_etcd.remove cp2)"
    )


def test_plan_add_refuses_a_name_with_another_peer_url():
    with pytest.raises(etcd.MembershipError) as error:
        etcd.plan_add(voters(2), "cp2", "https://10.0.0.99:2380")
    assert str(error.value) == (
        "cannot add etcd member cp2 with peer URL https://10.0.0.99:2380: a member cp2 exists "
        "with peer URL(s) https://10.0.0.11:2380. If the node's IP changed, remove the old "
        "member first (kubesalt_etcd.remove cp2), stop etcd on cp2 and empty its data "
        "directory, then add it again"
    )


def test_plan_add_refuses_a_second_learner():
    members = [*voters(1), member("cp2", 2, learner=True, started=False)]
    with pytest.raises(etcd.MembershipError) as error:
        etcd.plan_add(members, "cp3", "https://10.0.0.12:2380")
    assert str(error.value) == (
        "cannot add etcd member cp3 yet: unstarted member 2 (https://10.0.0.11:2380) is still "
        "a learner and etcd accepts one learner at a time. Start it and promote it "
        "(kubesalt_etcd.promote), or remove it (kubesalt_etcd.remove), then add cp3; deploy "
        "etcd nodes one after the other"
    )


def test_plan_promote():
    learner = member("cp2", 2, learner=True, started=False)
    plan = etcd.plan_promote([*voters(1), learner], "cp2", "https://10.0.0.11:2380")
    assert (plan.action, plan.member) == ("promote", learner)
    assert etcd.plan_promote([*voters(1), learner], "2").member == learner
    plan = etcd.plan_promote(voters(2), "cp2")
    assert (plan.action, plan.reason) == ("none", "cp2 (2) is a voting member already")
    with pytest.raises(etcd.MembershipError) as error:
        etcd.plan_promote(voters(1), "cp2")
    assert str(error.value) == (
        "cannot promote etcd member cp2: it is not a member (members: cp1 (1)); add it first "
        "(kubesalt_etcd.add_learner)"
    )


def test_find_refuses_a_peer_url_of_another_started_member():
    with pytest.raises(etcd.MembershipError, match=r"belongs to etcd member cp2 \(2\), not cp9"):
        etcd.find(voters(2), "cp9", "https://10.0.0.11:2380")
    assert etcd.find(voters(2), "cp9") is None


def test_plan_remove_absent_member_is_nothing():
    plan = etcd.plan_remove(voters(3), "cp9", set())
    assert (plan.action, plan.member, plan.reason) == ("none", None, "cp9 is not a member")


@pytest.mark.parametrize("force", [False, True])
def test_plan_remove_refuses_the_last_member_even_forced(force):
    with pytest.raises(etcd.LastMemberError) as error:
        etcd.plan_remove(voters(1), "cp1", {"cp1"}, force)
    assert str(error.value) == (
        "refusing to remove etcd member cp1 (1): it is the last voting member, and removing "
        "it would destroy the cluster and its data. To tear the cluster down, stop etcd on it "
        "(kubesalt.etcd.absent), then delete /var/lib/etcd"
    )
    with pytest.raises(etcd.LastMemberError):
        etcd.plan_remove([*voters(1), member("cp2", 2, learner=True)], "cp1", {"cp1"}, force)


@pytest.mark.parametrize(
    ("count", "name", "healthy"),
    [
        (2, "cp2", {"cp1", "cp2"}),
        (3, "cp3", {"cp1", "cp2"}),  # the member that is down
        (3, "cp1", {"cp1", "cp2", "cp3"}),
        (5, "cp5", {"cp1", "cp2", "cp3"}),
    ],
)
def test_plan_remove_when_quorum_holds(count, name, healthy):
    plan = etcd.plan_remove(voters(count), name, healthy)
    assert plan.action == "remove" and plan.member.name == name
    assert plan.reason.endswith("is a member and quorum holds without it")


def test_plan_remove_refuses_to_leave_no_healthy_quorum():
    with pytest.raises(etcd.QuorumError) as error:
        etcd.plan_remove(voters(3), "cp2", {"cp1", "cp2"})
    assert str(error.value) == (
        "refusing to remove etcd member cp2 (2): the 2 voting members left would have 1 "
        "healthy and need 2 for quorum (unhealthy: cp3 (3)), so the cluster would stop "
        "serving. Start the unhealthy members first, or remove them before cp2; force=True "
        "removes it anyway"
    )


def test_plan_remove_refuses_without_quorum_now():
    with pytest.raises(etcd.QuorumError) as error:
        etcd.plan_remove(voters(3), "cp3", {"cp1"})
    assert str(error.value) == (
        "refusing to remove etcd member cp3 (3): the cluster has no quorum now, 1 of 3 voting "
        "members healthy and 2 needed (unhealthy: cp2 (2), cp3 (3)), so etcd cannot commit "
        "any membership change. Start the unhealthy members; if they are lost for good, "
        "restore etcd from a snapshot. force=True skips this check if the health seen here "
        "is wrong"
    )


@pytest.mark.parametrize(("name", "healthy"), [("cp2", {"cp1", "cp2"}), ("cp3", {"cp1"})])
def test_plan_remove_forced(name, healthy):
    plan = etcd.plan_remove(voters(3), name, healthy, force=True)
    assert (plan.action, plan.reason) == ("remove", f"{name} ({name[-1]}) is a member (forced)")


def test_plan_remove_learner_needs_no_quorum():
    learner = member("cp3", 3, learner=True, started=False)
    plan = etcd.plan_remove([*voters(2), learner], "cp3", set(), peer_url=learner.peer_urls[0])
    assert (plan.action, plan.member) == ("remove", learner)
    assert plan.reason.endswith("is a member (a learner, which does not vote)")


def test_initial_cluster_in_member_list_order_with_the_joining_name():
    members = etcd.parse_member_list(LIST_UNSTARTED)
    assert etcd.initial_cluster(members, "cp2", "https://10.0.0.11:2380") == (
        "cp1=https://10.0.0.10:2380,cp2=https://10.0.0.11:2380"
    )
    # Another unstarted member goes under its ID (kubeadm's rule), and a member not listed
    # yet is appended.
    assert etcd.initial_cluster(members, "cp3", "https://10.0.0.12:2380") == (
        "cp1=https://10.0.0.10:2380,3c3a283094097911=https://10.0.0.11:2380,"
        "cp3=https://10.0.0.12:2380"
    )


def test_endpoints_and_healthy_members():
    members = [*voters(2), member("cp3", 3, learner=True), member("cp4", 4, started=False)]
    assert etcd.client_endpoints(members) == [
        "https://10.0.0.10:2379",
        "https://10.0.0.11:2379",
        "https://10.0.0.12:2379",
    ]
    assert etcd.client_endpoints(members, voters_only=True) == [
        "https://10.0.0.10:2379",
        "https://10.0.0.11:2379",
    ]
    health = {
        "https://10.0.0.10:2379": {"health": True, "error": None},
        "https://10.0.0.11:2379": {"health": False, "error": "context deadline exceeded"},
    }
    assert etcd.healthy_members(members, health) == {"1"}


READY_THEN_SLEEP = "import time; print('ready', flush=True); time.sleep(60)"


@pytest.fixture
def etcd_like(tmp_path):
    """A real process whose command line names a data directory, as etcd's does."""
    import subprocess
    import sys

    data = tmp_path / "etcd-data"
    data.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", READY_THEN_SLEEP, f"--data-dir={data}/"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "ready\n"  # it runs, with its command line in /proc
    yield data, proc
    proc.kill()
    proc.wait()


def test_processes_using_finds_an_etcd_running_from_the_directory(etcd_like):
    data, proc = etcd_like
    assert proc.pid in etcd.processes_using(str(data))
    assert etcd.processes_using(str(data) + "-other") == []


def test_processes_using_reads_the_two_argument_form(tmp_path):
    proc_dir = tmp_path / "proc"
    for pid, argv in {"12": ["etcd", "--data-dir", "/var/lib/etcd"], "13": ["sleep", "9"]}.items():
        (proc_dir / pid).mkdir(parents=True)
        (proc_dir / pid / "cmdline").write_bytes("\0".join(argv).encode() + b"\0")
    (proc_dir / "self").mkdir()
    assert etcd.processes_using("/var/lib/etcd/", proc=str(proc_dir)) == [12]
