"""The kubesalt_etcd execution and state modules, with Salt's loader mocked
(configure_loader_modules) and etcd faked at the one boundary they cross: ``cmd.run_all``.

`FakeEtcd` answers etcdctl's command lines the way etcd 3.4 does (its JSON and its error
lines are those captured in test_etcd.py), and keeps the member list, so that the states
are run for real through the execution module: the idempotency trio for each.
"""

import json
import time
from unittest.mock import Mock, patch

import pytest
import salt.modules.cmdmod
import salt.utils.path
from salt.exceptions import CommandExecutionError

from tests.unit.loader import load
from tests.unit.test_etcd import ADD_UNHEALTHY, PROMOTE_NOT_READY

kubesalt_etcd = load("_modules", "kubesalt_etcd")
kubesalt_etcd_state = load("_states", "kubesalt_etcd")

IPS = {"cp1": "10.0.0.10", "cp2": "10.0.0.11", "cp3": "10.0.0.12"}
HEADER = {"cluster_id": 11359140656373167743, "member_id": 266128723897562333, "raft_term": 2}


def peer(name):
    return f"https://{IPS[name]}:2380"


def client(name):
    return f"https://{IPS[name]}:2379"


class FakeEtcd:
    """etcd behind etcdctl: members (as etcd's JSON), failures to inject, the calls seen."""

    def __init__(self):
        self.members = [self._json(266128723897562333, "cp1", learner=False)]
        self.next_id = 4339825380032084241
        self.down = set()  # client URLs that do not answer
        self.not_ready = 0  # `member promote` answers "not in sync" this many times
        self.unhealthy = 0  # `member add` / `member remove` answer "unhealthy cluster"
        self.calls = []

    @staticmethod
    def _json(number, name, learner, peer_url=None):
        data = {"ID": number, "peerURLs": [peer_url or peer(name)]}
        if name:
            data.update(name=name, clientURLs=[client(name)])
        if learner:
            data["isLearner"] = True
        return data

    def start(self, name):
        """etcd starts on `name`: its member gets a name and a client URL."""
        for data in self.members:
            if data["peerURLs"] == [peer(name)]:
                data.update(name=name, clientURLs=[client(name)])

    def find(self, hex_id):
        return next((m for m in self.members if m["ID"] == int(hex_id, 16)), None)

    def listing(self):
        return {"header": HEADER, "members": sorted(self.members, key=lambda m: m["ID"])}

    def run_all(self, cmd, **kwargs):
        self.calls.append((cmd, kwargs))
        options = [arg for arg in cmd[1:] if arg.startswith("--")]
        args = [arg for arg in cmd[1:] if not arg.startswith("--") and arg not in ("-w", "json")]
        flags = dict(option[2:].split("=", 1) for option in options if "=" in option)
        for path in ("cacert", "cert", "key"):
            with open(flags[path]):  # etcdctl reads them
                pass
        answer = getattr(self, "_" + "_".join(args[:2]).replace("-", "_"))(args[2:], flags)
        return {"pid": 1, "retcode": 0, "stdout": "", "stderr": "", **answer}

    @staticmethod
    def _error(stderr):
        return {"retcode": 1, "stderr": stderr}

    def _member_list(self, args, flags):
        return {"stdout": json.dumps(self.listing()) + "\n"}

    def _member_add(self, args, flags):
        if self.unhealthy:
            self.unhealthy -= 1
            return self._error(ADD_UNHEALTHY)
        url = flags["peer-urls"]
        if any(url in m["peerURLs"] for m in self.members):
            return self._error("Error: etcdserver: Peer URLs already exists\n")
        new = self._json(self.next_id, "", learner="--learner" in self.calls[-1][0], peer_url=url)
        self.next_id += 1
        self.members.append(new)
        return {"stdout": json.dumps({**self.listing(), "member": dict(new)}) + "\n"}

    def _member_promote(self, args, flags):
        member = self.find(args[0])
        if member is None:
            return self._error("Error: etcdserver: member not found\n")
        if not member.get("isLearner"):
            return self._error("Error: etcdserver: can only promote a learner member\n")
        if self.not_ready or not member.get("name"):
            self.not_ready = max(0, self.not_ready - 1)
            return self._error(PROMOTE_NOT_READY)
        del member["isLearner"]
        return {"stdout": f"Member {args[0]} promoted in cluster 9da3\n"}

    def _member_remove(self, args, flags):
        if self.unhealthy:
            self.unhealthy -= 1
            return self._error("Error: etcdserver: unhealthy cluster\n")
        member = self.find(args[0])
        if member is None:
            return self._error("Error: etcdserver: member not found\n")
        self.members.remove(member)
        return {"stdout": f"Member {args[0]} removed from cluster 9da3\n"}

    def _endpoint_health(self, args, flags):
        answers = []
        for url in flags["endpoints"].split(","):
            if url in self.down:
                answers.append(
                    {"endpoint": url, "health": False, "error": "context deadline exceeded"}
                )
            else:
                answers.append({"endpoint": url, "health": True, "took": "4.2ms"})
        stdout = json.dumps(answers) + "\n"
        return {
            "stdout": stdout,
            "retcode": 1 if self.down & set(flags["endpoints"].split(",")) else 0,
        }


@pytest.fixture
def fake():
    return FakeEtcd()


@pytest.fixture
def run_all(fake):
    return Mock(spec=salt.modules.cmdmod.run_all, side_effect=fake.run_all)


@pytest.fixture
def root(tmp_path):
    pki = tmp_path / "root" / "etc" / "kubernetes" / "pki"
    (pki / "etcd").mkdir(parents=True)
    for name in ("etcd/ca.crt", "apiserver-etcd-client.crt", "apiserver-etcd-client.key"):
        (pki / name).write_text("PEM\n")
    for name in ("etcd/healthcheck-client.crt", "etcd/healthcheck-client.key"):
        (pki / name).write_text("PEM\n")
    return tmp_path / "root"


@pytest.fixture
def configure_loader_modules(run_all, root):
    grains = {"kubesalt_root": str(root), "kubesalt": {"control_plane_ip": IPS["cp1"]}}
    module = kubesalt_etcd
    return {
        kubesalt_etcd: {"__grains__": grains, "__salt__": {"cmd.run_all": run_all}},
        kubesalt_etcd_state: {
            "__opts__": {"test": False},
            "__salt__": {
                f"kubesalt_etcd.{name}": getattr(module, name)
                for name in ("members", "add_learner", "promote", "remove", "health")
            },
        },
    }


@pytest.fixture
def no_sleep(monkeypatch):
    monkeypatch.setattr(kubesalt_etcd.time, "sleep", Mock(spec=time.sleep))


def test_virtual(monkeypatch):
    monkeypatch.setattr(salt.utils.path, "which", lambda name: f"/usr/bin/{name}")
    assert kubesalt_etcd.__virtual__() == "kubesalt_etcd"
    monkeypatch.setattr(salt.utils.path, "which", lambda name: None)
    assert kubesalt_etcd.__virtual__() == (
        False,
        "etcdctl is not on the PATH (Debian: etcd-client; RHEL: etcd)",
    )
    assert kubesalt_etcd_state.__virtual__() == "kubesalt_etcd"


def test_members_runs_etcdctl_with_the_node_pki_and_bounded_timeouts(run_all, root):
    assert kubesalt_etcd.members() == [
        {
            "id": "3b17aaa147134dd",
            "name": "cp1",
            "peer_urls": [peer("cp1")],
            "client_urls": [client("cp1")],
            "is_learner": False,
        }
    ]
    pki = root / "etc" / "kubernetes" / "pki"
    run_all.assert_called_once_with(
        [
            "etcdctl",
            "--endpoints=https://10.0.0.10:2379",
            f"--cacert={pki}/etcd/ca.crt",
            f"--cert={pki}/apiserver-etcd-client.crt",
            f"--key={pki}/apiserver-etcd-client.key",
            "--dial-timeout=2s",
            "--command-timeout=5s",
            "member",
            "list",
            "-w",
            "json",
        ],
        env={"ETCDCTL_API": "3"},
        python_shell=False,
        ignore_retcode=True,
        timeout=17,
    )


def test_endpoints_given_as_a_list_or_a_string(run_all):
    kubesalt_etcd.members(endpoints=[client("cp2"), client("cp3")])
    kubesalt_etcd.members(endpoints=f"{client('cp2')},{client('cp3')}")
    for call in run_all.call_args_list:
        assert call.args[0][1] == "--endpoints=https://10.0.0.11:2379,https://10.0.0.12:2379"


def test_health_uses_the_healthcheck_client(run_all, root):
    assert kubesalt_etcd.health() == {client("cp1"): {"health": True, "error": None}}
    command = run_all.call_args.args[0]
    assert f"--cert={root}/etc/kubernetes/pki/etcd/healthcheck-client.crt" in command


def test_etcd_only_node_uses_the_healthcheck_client_for_membership(run_all, root):
    (root / "etc/kubernetes/pki/apiserver-etcd-client.crt").unlink()
    kubesalt_etcd.members()
    command = run_all.call_args.args[0]
    assert f"--key={root}/etc/kubernetes/pki/etcd/healthcheck-client.key" in command


def test_no_client_certificate(root):
    for name in ("apiserver-etcd-client.key", "etcd/healthcheck-client.crt"):
        (root / "etc/kubernetes/pki" / name).unlink()
    pki = root / "etc/kubernetes/pki"
    with pytest.raises(CommandExecutionError) as error:
        kubesalt_etcd.members()
    assert str(error.value) == (
        f"EtcdError: no etcd client certificate on this node (looked for "
        f"{pki}/apiserver-etcd-client.crt and {pki}/etcd/healthcheck-client.crt with their "
        "keys); apply kubesalt.pki on this node first, or run this on a control-plane or etcd "
        "node"
    )


def test_no_endpoint_without_the_ip_grain():
    missing = pytest.raises(CommandExecutionError, match="EtcdError: no etcd endpoint: endpoints")
    with patch.dict(kubesalt_etcd.__grains__, {"kubesalt": {}}), missing:
        kubesalt_etcd.members()


def test_add_learner_then_again(fake):
    added = kubesalt_etcd.add_learner("cp2", peer("cp2"))
    assert added == {
        "changed": True,
        "member": {
            "id": "3c3a283094097911",
            "name": "",
            "peer_urls": [peer("cp2")],
            "client_urls": [],
            "is_learner": True,
        },
        "initial_cluster": "cp1=https://10.0.0.10:2380,cp2=https://10.0.0.11:2380",
        "comment": "etcd member cp2 (https://10.0.0.11:2380) added as learner 3c3a283094097911; "
        "start etcd on it with --initial-cluster-state=existing, then promote it",
    }
    assert "--learner" in fake.calls[-1][0]
    again = kubesalt_etcd.add_learner("cp2", peer("cp2"))
    assert again["changed"] is False
    assert again["initial_cluster"] == added["initial_cluster"]
    assert again["comment"] == (
        "etcd member cp2 (https://10.0.0.11:2380) is in the correct state: cp2 is a member "
        "already (learner, not started yet)"
    )
    assert len(fake.members) == 2


def test_add_learner_retries_while_etcd_says_unhealthy(fake, no_sleep):
    fake.unhealthy = 2
    assert kubesalt_etcd.add_learner("cp2", peer("cp2"), interval=0)["changed"] is True
    assert kubesalt_etcd.time.sleep.call_count == 2


def test_add_learner_gives_up_after_the_timeout(fake, no_sleep):
    fake.unhealthy = 100
    with pytest.raises(CommandExecutionError) as error:
        kubesalt_etcd.add_learner("cp2", peer("cp2"), timeout=0)
    assert str(error.value) == (
        "EtcdError: etcd did not accept cp2 (https://10.0.0.11:2380) as a learner within 0s; "
        "last etcd error: etcdserver: unhealthy cluster. Check that every member is up "
        "(kubesalt_etcd.health cluster=True)"
    )


@pytest.mark.parametrize(
    ("name", "url", "message"),
    [
        ("cp9", "https://10.0.0.10:2380", "MembershipError: cannot add etcd member cp9: its peer"),
        ("cp1", "https://10.0.0.99:2380", "MembershipError: cannot add etcd member cp1 with"),
        ("CP2", "https://10.0.0.11:2380", "NodeNameError: etcd member name: 'CP2' is not a valid"),
        ("cp2", "10.0.0.11:2380", "EtcdError: peer URL '10.0.0.11:2380' is not a URL"),
    ],
)
def test_add_learner_refusals(name, url, message):
    with pytest.raises(CommandExecutionError) as error:
        kubesalt_etcd.add_learner(name, url)
    assert str(error.value).startswith(message)


def test_promote_waits_until_the_learner_is_in_sync(fake, no_sleep):
    kubesalt_etcd.add_learner("cp2", peer("cp2"))
    fake.start("cp2")
    fake.not_ready = 3
    promoted = kubesalt_etcd.promote("cp2", interval=0)
    assert promoted["changed"] is True
    assert promoted["member"]["is_learner"] is False
    assert promoted["comment"].startswith("etcd member cp2 (3c3a283094097911) promoted to voter")
    assert kubesalt_etcd.time.sleep.call_count == 3
    again = kubesalt_etcd.promote("cp2")
    assert again["changed"] is False
    assert again["comment"] == (
        "etcd member cp2 is in the correct state: cp2 (3c3a283094097911) is a voting member already"
    )


def test_promote_finds_an_unstarted_learner_by_peer_url_and_times_out(fake, no_sleep):
    kubesalt_etcd.add_learner("cp2", peer("cp2"))
    with pytest.raises(CommandExecutionError) as error:
        kubesalt_etcd.promote("cp2", timeout=0, peer_url=peer("cp2"))
    assert str(error.value) == (
        "EtcdError: etcd learner cp2 was not promoted within 0s: waited for it to start and "
        "catch up with the leader; last etcd error: etcdserver: can only promote a learner "
        "member which is in sync with leader. Check that etcd runs on cp2 (its static pod and "
        "log) and reaches the other members on port 2380"
    )


def test_promote_waits_for_the_learner_to_get_its_name(fake, no_sleep):
    kubesalt_etcd.add_learner("cp2", peer("cp2"))
    with pytest.raises(CommandExecutionError, match="last etcd error: cannot promote etcd member"):
        kubesalt_etcd.promote("cp2", timeout=0)
    kubesalt_etcd.time.sleep.side_effect = lambda _: fake.start("cp2")
    assert kubesalt_etcd.promote("cp2", interval=0)["changed"] is True


def test_promote_an_unknown_member_fails_at_once():
    with pytest.raises(CommandExecutionError) as error:
        kubesalt_etcd.promote("cp3")
    assert str(error.value) == (
        "MembershipError: cannot promote etcd member cp3: it is not a member (members: cp1 "
        "(3b17aaa147134dd)); add it first (kubesalt_etcd.add_learner)"
    )


@pytest.fixture
def three(fake):
    for name in ("cp2", "cp3"):
        kubesalt_etcd.add_learner(name, peer(name))
        fake.start(name)
        kubesalt_etcd.promote(name)
    return fake


def test_remove_checks_quorum_with_every_voter_health(three, run_all):
    three.down = {client("cp3")}
    with pytest.raises(CommandExecutionError) as error:
        kubesalt_etcd.remove("cp2")
    assert str(error.value).startswith(
        "QuorumError: refusing to remove etcd member cp2 (3c3a283094097911): the 2 voting "
        "members left would have 1 healthy and need 2 for quorum (unhealthy: cp3 "
        "(3c3a283094097912))"
    )
    health = run_all.call_args.args[0]
    assert "--endpoints=https://10.0.0.10:2379,https://10.0.0.11:2379,https://10.0.0.12:2379" in (
        health
    )
    assert len(three.members) == 3
    removed = kubesalt_etcd.remove("cp3")
    assert removed == {
        "changed": True,
        "member": {
            "id": "3c3a283094097912",
            "name": "cp3",
            "peer_urls": [peer("cp3")],
            "client_urls": [client("cp3")],
            "is_learner": False,
        },
        "comment": "etcd member cp3 (3c3a283094097912) removed: cp3 (3c3a283094097912) is a "
        "member and quorum holds without it",
    }
    assert kubesalt_etcd.remove("cp3") == {
        "changed": False,
        "member": None,
        "comment": "etcd member cp3 is in the correct state: cp3 is not a member",
    }


def test_remove_forced_skips_the_health_check(three, run_all):
    three.down = {client("cp2"), client("cp3")}
    before = run_all.call_count
    assert kubesalt_etcd.remove("cp2", force=True)["changed"] is True
    commands = [call.args[0][7:9] for call in run_all.call_args_list[before:]]
    assert commands == [["member", "list"], ["member", "remove"]]


def test_remove_the_last_member_is_refused(fake):
    with pytest.raises(CommandExecutionError, match="LastMemberError: refusing to remove etcd"):
        kubesalt_etcd.remove("cp1", force=True)


def test_remove_an_unstarted_learner_by_peer_url(fake):
    kubesalt_etcd.add_learner("cp2", peer("cp2"))
    assert kubesalt_etcd.remove("cp2")["changed"] is False  # no member is named cp2 yet
    assert kubesalt_etcd.remove("cp2", peer_url=peer("cp2"))["changed"] is True
    assert len(fake.members) == 1


def test_remove_retries_while_etcd_refuses_then_says_so(three, no_sleep):
    three.unhealthy = 1
    assert kubesalt_etcd.remove("cp3", interval=0)["changed"] is True
    three.unhealthy = 100
    with pytest.raises(CommandExecutionError) as error:
        kubesalt_etcd.remove("cp2", timeout=0)
    assert str(error.value) == (
        "EtcdError: etcd refused to remove cp2 (3c3a283094097911) for 0s: etcdserver: "
        "unhealthy cluster (etcd's own check: the voters left must have been connected for "
        "5 s and keep a quorum). Start the down members first"
    )


def test_health_of_the_cluster_skips_learners(fake):
    kubesalt_etcd.add_learner("cp2", peer("cp2"))
    fake.start("cp2")
    fake.down = {client("cp2")}
    assert kubesalt_etcd.health(cluster=True) == {client("cp1"): {"health": True, "error": None}}
    assert kubesalt_etcd.health(endpoints=[client("cp1"), client("cp2")]) == {
        client("cp1"): {"health": True, "error": None},
        client("cp2"): {"health": False, "error": "context deadline exceeded"},
    }


def test_wait_healthy_returns_once_healthy(three, no_sleep):
    three.down = {client("cp3")}
    kubesalt_etcd.time.sleep.side_effect = lambda _: three.down.clear()
    result = kubesalt_etcd.wait_healthy(cluster=True, interval=0)
    assert result["healthy"] is True
    assert sorted(result["endpoints"]) == [client("cp1"), client("cp2"), client("cp3")]
    assert kubesalt_etcd.time.sleep.call_count == 1


def test_wait_healthy_names_the_unhealthy_endpoints(three, no_sleep):
    three.down = {client("cp3")}
    with pytest.raises(CommandExecutionError) as error:
        kubesalt_etcd.wait_healthy(cluster=True, timeout=0)
    assert str(error.value) == (
        "EtcdError: etcd not healthy after waiting 0s: https://10.0.0.12:2379 unhealthy for 0s "
        "(context deadline exceeded). Check that etcd runs on those members (static pod, log) "
        "and that port 2379 is open to this node"
    )


def test_etcdctl_failure_is_translated_once(run_all):
    run_all.side_effect = None
    run_all.return_value = {
        "retcode": 1,
        "stdout": "",
        "stderr": "Error: context deadline exceeded",
    }
    with pytest.raises(CommandExecutionError) as error:
        kubesalt_etcd.members()
    assert str(error.value) == (
        "Unreachable: etcdctl member list -w json failed: context deadline exceeded"
    )


# The states: the idempotency trio for each, run through the execution module.


def _state(function, *args, test=False, **kwargs):
    with patch.dict(kubesalt_etcd_state.__opts__, {"test": test}):
        return function(*args, **kwargs)


def test_member_present_trio(fake):
    would = _state(kubesalt_etcd_state.member_present, "cp2", peer("cp2"), test=True)
    assert would == {
        "name": "cp2",
        "result": None,
        "changes": {},
        "comment": "etcd member cp2 (https://10.0.0.11:2380) would have been added as a learner",
    }
    assert len(fake.members) == 1
    created = _state(kubesalt_etcd_state.member_present, "cp2", peer("cp2"))
    assert created["result"] is True
    assert created["changes"] == {
        "added": {"id": "3c3a283094097911", "peer_url": peer("cp2"), "learner": True}
    }
    assert created["comment"].endswith(
        "--initial-cluster=cp1=https://10.0.0.10:2380,cp2=https://10.0.0.11:2380"
    )
    for test in (False, True):
        again = _state(kubesalt_etcd_state.member_present, "cp2", peer("cp2"), test=test)
        assert again == {
            "name": "cp2",
            "result": True,
            "changes": {},
            "comment": "etcd member cp2 is in the correct state: cp2 is a member already "
            "(learner, not started yet)",
        }


def test_member_present_error(fake):
    ret = _state(kubesalt_etcd_state.member_present, "cp9", peer("cp1"))
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].startswith("MembershipError: cannot add etcd member cp9: its peer URL")


def test_member_promoted_trio(fake):
    kubesalt_etcd.add_learner("cp2", peer("cp2"))
    fake.start("cp2")
    would = _state(kubesalt_etcd_state.member_promoted, "cp2", test=True)
    assert (would["result"], would["changes"]) == (None, {})
    assert would["comment"] == "etcd learner cp2 (3c3a283094097911) would have been promoted"
    assert fake.find("3c3a283094097911")["isLearner"] is True
    created = _state(kubesalt_etcd_state.member_promoted, "cp2", timeout=5)
    assert created["result"] is True
    assert created["changes"] == {"promoted": {"id": "3c3a283094097911", "voter": True}}
    for test in (False, True):
        again = _state(kubesalt_etcd_state.member_promoted, "cp2", test=test)
        assert (again["result"], again["changes"]) == (True, {})
        assert again["comment"] == (
            "etcd member cp2 is in the correct state: cp2 (3c3a283094097911) is a voting "
            "member already"
        )


def test_member_promoted_timeout_is_a_failed_state(fake, no_sleep):
    kubesalt_etcd.add_learner("cp2", peer("cp2"))
    ret = _state(kubesalt_etcd_state.member_promoted, "cp2", timeout=0, peer_url=peer("cp2"))
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].startswith("EtcdError: etcd learner cp2 was not promoted within 0s")


def test_member_absent_trio(three):
    would = _state(kubesalt_etcd_state.member_absent, "cp3", test=True)
    assert would == {
        "name": "cp3",
        "result": None,
        "changes": {},
        "comment": "etcd member cp3 (3c3a283094097912) would have been removed",
    }
    assert len(three.members) == 3
    created = _state(kubesalt_etcd_state.member_absent, "cp3")
    assert created["result"] is True
    assert created["changes"] == {"removed": {"id": "3c3a283094097912", "name": "cp3"}}
    for test in (False, True):
        again = _state(kubesalt_etcd_state.member_absent, "cp3", test=test)
        assert again == {
            "name": "cp3",
            "result": True,
            "changes": {},
            "comment": "etcd member cp3 is in the correct state: it is not a member",
        }


@pytest.mark.parametrize("test", [False, True])
def test_member_absent_refused_without_quorum(three, test):
    three.down = {client("cp3")}
    ret = _state(kubesalt_etcd_state.member_absent, "cp2", test=test)
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].startswith("QuorumError: refusing to remove etcd member cp2")
    assert len(three.members) == 3
    forced = _state(kubesalt_etcd_state.member_absent, "cp2", force=True, test=test)
    assert forced["result"] is (None if test else True)
    assert len(three.members) == (3 if test else 2)


READY_THEN_SLEEP = "import time; print('ready', flush=True); time.sleep(60)"


@pytest.fixture
def running_etcd(tmp_path):
    """A real process running "from" a data directory (its command line says so)."""
    import subprocess
    import sys

    data = tmp_path / "var" / "lib" / "etcd"
    (data / "member" / "snap").mkdir(parents=True)
    (data / "member" / "snap" / "db").write_bytes(b"x" * 64)
    proc = subprocess.Popen(
        [sys.executable, "-c", READY_THEN_SLEEP, f"--data-dir={data}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "ready\n"  # it runs, with its command line in /proc
    kubesalt_etcd_state.__opts__ = {"test": False}
    yield data, proc
    proc.kill()
    proc.wait()


def test_data_absent_refuses_while_etcd_runs_from_it(running_etcd):
    data, proc = running_etcd
    ret = kubesalt_etcd_state.data_absent(str(data), wait=1)
    assert ret["result"] is False
    assert ret["changes"] == {}
    assert ret["comment"] == (
        f"etcd still runs from {data} after 1s (PID {proc.pid}); remove its static pod "
        "manifest first (kubesalt.etcd.absent) so the kubelet stops it; nothing was removed"
    )
    assert (data / "member" / "snap" / "db").exists()


def test_data_absent_removes_it_once_etcd_stopped_then_changes_nothing(running_etcd):
    data, proc = running_etcd
    proc.kill()
    proc.wait()
    kubesalt_etcd_state.__opts__ = {"test": True}
    assert kubesalt_etcd_state.data_absent(str(data), wait=0)["result"] is None
    assert data.exists()
    kubesalt_etcd_state.__opts__ = {"test": False}
    ret = kubesalt_etcd_state.data_absent(str(data), wait=0)
    assert (ret["result"], ret["changes"]) == (True, {"removed": str(data)})
    assert not data.exists()
    again = kubesalt_etcd_state.data_absent(str(data), wait=0)
    assert (again["result"], again["changes"]) == (True, {})
    assert again["comment"] == f"etcd data directory {data} is in the correct state (absent)"


# not_a_member: the guard before a node's etcd is stopped (issue 16, item 5).


def test_not_a_member_refuses_while_etcd_lists_the_node(three):
    for test in (False, True):  # it changes nothing: the same answer in a dry run
        ret = _state(kubesalt_etcd_state.not_a_member, "cp3", endpoints=client("cp1"), test=test)
        assert ret["result"] is False and ret["changes"] == {}
        assert ret["comment"].startswith(
            "etcd still lists cp3 as member cp3 (3c3a283094097912): stopping its etcd would "
            "take a voter from the cluster without removing it"
        )
        assert "kubesalt_etcd.remove cp3 on the CA minion" in ret["comment"]


def test_not_a_member_passes_once_the_member_is_removed(three):
    kubesalt_etcd.remove("cp3")
    ret = _state(kubesalt_etcd_state.not_a_member, "cp3", endpoints=client("cp1"))
    assert ret == {
        "name": "cp3",
        "result": True,
        "changes": {},
        "comment": "etcd does not list cp3: its etcd may stop",
    }


def test_not_a_member_asks_the_etcd_peers_and_this_node(three):
    kubesalt_etcd.remove("cp3")
    peers = Mock(return_value={"etcd": [IPS["cp1"], IPS["cp2"], IPS["cp3"]], "node": []})
    grains = {"kubesalt": {"control_plane_ip": IPS["cp3"]}}
    with (
        patch.dict(kubesalt_etcd_state.__salt__, {"kubesalt_firewall.peers": peers}),
        patch.object(kubesalt_etcd_state, "__grains__", grains, create=True),
    ):
        ret = _state(kubesalt_etcd_state.not_a_member, "cp3")
    assert ret["result"] is True
    command = three.calls[-1][0]
    assert f"--endpoints={client('cp1')},{client('cp2')},{client('cp3')}" in command


def test_not_a_member_refuses_when_no_endpoint_answers(three, monkeypatch):
    monkeypatch.setattr(
        three, "_member_list", lambda args, flags: three._error("context deadline exceeded\n")
    )
    ret = _state(kubesalt_etcd_state.not_a_member, "cp3", endpoints=client("cp1"))
    assert ret["result"] is False
    assert ret["comment"].startswith("cannot tell whether cp3 is still an etcd member (")
    assert "its etcd is left running" in ret["comment"]
