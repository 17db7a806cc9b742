"""The etcd join plan, every case of the member list."""

import pytest

from kubesalt.etcd import Member, MembershipError
from kubesalt.orchestrate import OrchestrateError, etcdjoin
from kubesalt.orchestrate.etcdjoin import (
    ADD_LEARNER,
    APPLY,
    PROMOTE,
    RECORD,
    STATIC_POD,
    WAIT_HEALTHY,
    plan_join,
)

URL = "https://198.51.100.11:2380"
FIRST = Member("a1", "bootstrap", ("https://198.51.100.10:2380",), ("https://198.51.100.10:2379",))


def member(name="cp2", learner=False, started=True, url=URL):
    return Member("b2", name if started else "", (url,), ("x",) if started else (), learner)


def test_a_new_node_joins_fully():
    plan = plan_join([FIRST], "cp2", URL, recorded=False)
    assert (plan.state, plan.joins) == ("absent", True)
    assert plan.actions == (WAIT_HEALTHY, ADD_LEARNER, RECORD, STATIC_POD, PROMOTE, WAIT_HEALTHY)


def test_a_new_node_with_a_stale_recorded_grain_still_joins_fully():
    assert plan_join([FIRST], "cp2", URL, recorded=True).actions == etcdjoin.FULL_JOIN


@pytest.mark.parametrize("started", [True, False])
def test_a_learner_without_its_grain_gets_it_then_pod_promotion_wait(started):
    plan = plan_join([FIRST, member(learner=True, started=started)], "cp2", URL, False)
    assert plan.state == ("learner" if started else "unstarted-learner")
    assert plan.actions == (ADD_LEARNER, RECORD, STATIC_POD, PROMOTE, WAIT_HEALTHY)


def test_a_learner_with_its_grain_is_only_started_and_promoted():
    plan = plan_join([FIRST, member(learner=True)], "cp2", URL, True)
    assert plan.actions == (STATIC_POD, PROMOTE, WAIT_HEALTHY)


@pytest.mark.parametrize("recorded", [True, False])
def test_an_already_joined_voter_needs_only_its_state(recorded):
    plan = plan_join([FIRST, member()], "cp2", URL, recorded)
    assert (plan.state, plan.actions, plan.joins) == ("voter", (APPLY,), False)


@pytest.mark.parametrize("learner", [False, True])
def test_a_started_member_whose_node_lost_its_data_is_removed_then_joins_afresh(learner):
    plan = plan_join([FIRST, member(learner=learner)], "cp2", URL, False, has_data=False)
    assert (plan.state, plan.joins) == ("stale", True)
    assert plan.actions == (etcdjoin.REMOVE_STALE, *etcdjoin.FULL_JOIN)


def test_an_unstarted_learner_has_no_data_yet_and_is_not_stale():
    plan = plan_join([FIRST, member(learner=True, started=False)], "cp2", URL, True, False)
    assert plan.actions == (STATIC_POD, PROMOTE, WAIT_HEALTHY)


def test_a_voter_found_by_name_with_another_address_is_an_error():
    with pytest.raises(OrchestrateError, match=r"has peer URL\(s\) https://10.0.0.9:2380, not "):
        plan_join([FIRST, member(url="https://10.0.0.9:2380")], "cp2", URL, True)


def test_the_peer_url_of_another_started_member_is_a_conflict():
    with pytest.raises(MembershipError, match="belongs to etcd member cp3"):
        plan_join([FIRST, member(name="cp3")], "cp2", URL, False)


def test_another_learner_blocks_every_join():
    stray = member(name="cp9", learner=True, url="https://10.0.0.9:2380")
    assert etcdjoin.other_learner([FIRST, stray], ["cp2"]) == stray
    assert etcdjoin.other_learner([FIRST, member(learner=True)], ["cp2"]) is None


def test_members_from_the_module_answer():
    listing = [{"id": "a1", "name": "bootstrap", "peer_urls": ["u"], "client_urls": ["c"],
                "is_learner": False}]  # fmt: skip
    assert etcdjoin.members_from(listing) == (Member("a1", "bootstrap", ("u",), ("c",)),)
    with pytest.raises(OrchestrateError, match="not a member list"):
        etcdjoin.members_from("ERROR")


def test_parse_initial_cluster():
    text = "bootstrap=https://198.51.100.10:2380,cp2=https://198.51.100.11:2380"
    assert etcdjoin.parse_initial_cluster(text) == [
        ["bootstrap", "198.51.100.10"], ["cp2", "198.51.100.11"]]  # fmt: skip
    assert etcdjoin.parse_initial_cluster("a=https://[fd00::10]:2380") == [["a", "fd00::10"]]


@pytest.mark.parametrize("text", ["", "cp2", "cp2=https://cp2.example:2380"])
def test_parse_initial_cluster_refuses_garbage(text):
    with pytest.raises(OrchestrateError):
        etcdjoin.parse_initial_cluster(text)
