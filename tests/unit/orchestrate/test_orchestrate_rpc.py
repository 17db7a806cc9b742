"""The Salt RPC layer against a fake LocalClient: one job per call, silent and failed
minions named, state runs summarised with the exception's last line."""

import pytest

from kubesalt.orchestrate.model import StepFailed
from kubesalt.orchestrate.rpc import Rpc, summarize_state


class FakeLocalClient:
    """LocalClient.cmd as a master answers: full returns of the minions that answered."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []
        self.options = []

    def cmd(
        self,
        tgt,
        fun,
        arg=(),
        kwarg=None,
        timeout=None,
        tgt_type="glob",
        full_return=False,
        **options,
    ):
        self.calls.append((tgt, fun, arg, kwarg, timeout, tgt_type, full_return))
        self.options.append(options)
        return {m: a for m, a in self.answers.items() if m in tgt}


def ok(ret):
    return {"ret": ret, "retcode": 0}


TRACEBACK = (
    "An exception occurred in this state: Traceback (most recent call last):\n"
    '  File "/opt/kubesalt/salt/lib/python3.11/site-packages/salt/state.py", line 2428, in call\n'
    "    ret = self.states[cdata['full']](\n"
    "          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    "salt.exceptions.CommandExecutionError: ca_server did not respond\n"
)


def test_a_failed_state_that_raised_is_reported_with_its_exception_not_the_frames():
    run = summarize_state({"x509_|-Create the key_|-/k_|-private_key_managed": {
        "__id__": "Create the key", "result": False, "changes": {}, "comment": TRACEBACK}})  # fmt: skip
    assert run.failed == [("Create the key", "An exception occurred in this state: "
                           "salt.exceptions.CommandExecutionError: ca_server did not respond")]  # fmt: skip


def test_one_job_for_every_minion_and_each_silent_one_named():
    client = FakeLocalClient({"cp2": ok(True), "cp3": ok(True)})
    rpc = Rpc(client)
    assert rpc.call(["cp2", "cp3"], "test.ping", timeout=5) == {"cp2": True, "cp3": True}
    assert client.calls == [(["cp2", "cp3"], "test.ping", [], {}, 5, "list", True)]
    with pytest.raises(StepFailed) as err:
        rpc.call(["cp2", "worker1", "cp9"], "saltutil.sync_all", timeout=60)
    assert err.value.nodes == ("worker1", "cp9")
    assert err.value.message == (
        "saltutil.sync_all: no answer from worker1, cp9 within 60s; check that salt-minion "
        "runs there (salt -L worker1,cp9 test.ping)"
    )


def test_a_failed_call_is_named_with_its_last_line():
    client = FakeLocalClient({"bootstrap": {"ret": "ERROR: EtcdError: boom\n", "retcode": 1}})
    with pytest.raises(StepFailed) as err:
        Rpc(client).call(["bootstrap"], "kubesalt_etcd.add_learner", ["cp2"], what="add cp2")
    assert err.value.message == "add cp2 on bootstrap failed: ERROR: EtcdError: boom"
    assert err.value.nodes == ("bootstrap",)


def test_no_minion_no_job():
    client = FakeLocalClient({})
    assert Rpc(client).call([], "test.ping") == {}
    assert Rpc(client).ping([]) == set()
    assert client.calls == []


def test_ping_returns_who_answers():
    client = FakeLocalClient({"cp2": ok(True), "cp3": {"ret": "ERROR", "retcode": 1}})
    assert Rpc(client).ping(["cp2", "cp3", "worker1"]) == {"cp2"}


STATES = {
    "a": {"__id__": "Write a", "result": True, "changes": {"diff": "x"}, "__sls__": "k.a",
          "__run_num__": 1},
    "b": {"__id__": "Keep b", "result": True, "changes": {}, "__run_num__": 0},
    "c": {"__id__": "Would c", "result": None, "changes": {}, "__sls__": "k.c",
          "__run_num__": 2},
}  # fmt: skip


def test_summarize_state_real_and_test():
    run = summarize_state(STATES)
    assert (run.changed, run.failed, run.sls, run.total) == (["Write a"], [], {"k.a"}, 3)
    dry = summarize_state(STATES, test=True)
    assert dry.changed == ["Write a", "Would c"] and dry.sls == {"k.a", "k.c"}


def test_a_state_run_that_did_not_render_says_why():
    with pytest.raises(StepFailed, match="did not render: Rendering SLS 'x' failed"):
        summarize_state(["Rendering SLS 'x' failed"])


def test_state_runs_in_one_job_and_every_failure_is_named():
    bad = {"ret": {"f": {"__id__": "Write b", "result": False, "changes": {},
                         "comment": TRACEBACK}}, "retcode": 2}  # fmt: skip
    client = FakeLocalClient({"cp2": ok(STATES), "cp3": bad, "cp4": ok(["render error"])})
    rpc = Rpc(client)
    runs = rpc.state(["cp2"], ["kubesalt.pki"], "kubesalt-0.1.0", 60, test=True,
                     pillar={"p": 1})  # fmt: skip
    assert runs["cp2"].changed == ["Write a", "Would c"]
    assert client.calls[-1][1:4] == ("state.sls", ["kubesalt.pki"],
                                     {"saltenv": "kubesalt-0.1.0", "test": True, "pillar": {"p": 1}})  # fmt: skip
    with pytest.raises(StepFailed) as err:
        rpc.state(["cp2", "cp3", "cp4"], ["kubesalt.pki", "kubesalt.firewall"], "s", 60)
    assert err.value.nodes == ("cp3", "cp4")
    assert err.value.message == (
        "state.sls kubesalt.pki,kubesalt.firewall on cp3: 1 state(s) failed: Write b: An exception "
        "occurred in this state: salt.exceptions.CommandExecutionError: ca_server did not respond | "
        "state.sls kubesalt.pki,kubesalt.firewall on cp4 did not render: render error"
    )
    unchecked = rpc.state(["cp3", "cp4"], [], "s", 60, test=True, check=False)
    assert client.calls[-1][1:3] == ("state.highstate", [])
    assert unchecked["cp3"].failed and unchecked["cp4"].failed == [
        ("render", "did not render: render error")]  # fmt: skip


def test_state_names_a_silent_minion():
    with pytest.raises(StepFailed) as err:
        Rpc(FakeLocalClient({})).state(["cp2"], [], "s", 600)
    assert err.value.message.startswith("state.highstate: no answer from cp2 within 600s")


def test_a_ping_waits_one_second_for_a_minion_that_missed_it():
    """A minion that missed the job is asked with find_job, then waited for for
    gather_job_timeout (Salt's 10 s): for a ping, 1 s."""
    client = FakeLocalClient({"cp2": ok(True)})
    assert Rpc(client).ping(["cp2", "cp3"]) == {"cp2"}
    assert client.options == [{"gather_job_timeout": 1}]
    Rpc(client).call(["cp2"], "grains.items")
    assert client.options[-1] == {}
