"""salt-ssh's command line and replies, the minion-install pillar, the URLs and the
progress lines."""

import base64
import io
import json
import subprocess

import pytest
import yaml

from kubesalt.bootstrap.archive import Archive
from kubesalt.inventory import Node
from kubesalt.orchestrate import OrchestrateError, minionpillar, saltssh
from kubesalt.orchestrate.model import StepFailed
from kubesalt.orchestrate.progress import Progress, node_summary

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
ENTRY = Node("cp2", "198.51.100.11", ("node",), host_keys=(HOST_KEY,))


def fake_run(stdout="", stderr="", code=0, raises=None):
    calls = []

    def run(argv, timeout):
        calls.append((argv, timeout))
        if raises:
            raise raises
        return subprocess.CompletedProcess(argv, code, stdout, stderr)

    run.calls = calls
    return run


def test_the_command_line_uses_the_kubesalt_roster_and_checks_host_keys():
    run = fake_run('{"cp2": {"stdout": "ok", "retcode": 0}}\n')
    reply, code = saltssh.SaltSsh(run).call("cp2", ENTRY, ["-r", "true"], 120, "probe")
    assert (reply, code) == ({"stdout": "ok", "retcode": 0}, 0)
    assert run.calls == [([
        "/opt/kubesalt/salt/bin/salt-ssh", "--roster", "kubesalt", "--roster-file",
        "/etc/kubesalt/salt-ssh/roster", "--out", "json", "--out-indent", "-1", "cp2", "-r",
        "true"], 120)]  # fmt: skip
    assert "--ignore-host-keys" not in run.calls[0][0]


def test_a_refused_host_key_names_the_recorded_fingerprint_and_the_fix():
    run = fake_run(stderr="Host key verification failed.\n", code=255)
    with pytest.raises(StepFailed) as err:
        saltssh.SaltSsh(run).call("cp2", ENTRY, ["test.ping"], 60, "install salt-minion")
    assert err.value.nodes == ("cp2",)
    assert err.value.message.startswith(
        "install salt-minion: the SSH host key of cp2 (198.51.100.11:22) is not the one "
        "recorded (SHA256:"
    )
    assert "declare it again with replace=True host_key=" in err.value.message


def test_a_timeout_says_what_to_check():
    run = fake_run(raises=subprocess.TimeoutExpired("salt-ssh", 900))
    with pytest.raises(StepFailed, match="salt-ssh to cp2 did not finish within 900s; check "
                       "that sshd on cp2 has an sftp subsystem"):  # fmt: skip
        saltssh.SaltSsh(run).call("cp2", ENTRY, ["test.ping"], 900, "install salt-minion")


def test_no_reply_shows_both_outputs_shortened():
    run = fake_run(stdout="x" * 2000, stderr="boom", code=1)
    with pytest.raises(StepFailed) as err:
        saltssh.SaltSsh(run).call("cp2", ENTRY, ["test.ping"], 60, "probe")
    assert "gave no answer for cp2 (exit 1); stdout: " + "x" * 700 + " [...] " in err.value.message
    assert err.value.message.endswith("stderr: boom")


def test_the_reply_is_the_nodes_json_line_whatever_comes_before():
    out = 'deploying thin\n{"cp3": {"x": 1}}\n{"cp2": {"stdout": "ok"}}\n'
    assert saltssh.reply_of(out, "cp2") == {"stdout": "ok"}
    assert saltssh.reply_of(out, "cp3") == {"x": 1}
    assert saltssh.reply_of("{not json\n", "cp2") is None
    raced = (
        "/etc/salt/pki/master/ssh/salt-ssh.rsa already exists.\nOverwrite (y/n)? " + '{"cp2": 1}'
    )
    assert saltssh.reply_of(raced, "cp2") == 1
    assert saltssh.reply_of("", "cp2") is None


def test_a_failing_shell_script_is_named_with_its_stderr():
    run = fake_run(json.dumps({"cp2": {"stdout": "", "stderr": "no such unit", "retcode": 5}}))
    with pytest.raises(StepFailed, match="restart salt-minion on cp2 failed: no such unit"):
        saltssh.SaltSsh(run).shell("cp2", ENTRY, "systemctl restart x", 60, "restart salt-minion")


@pytest.mark.parametrize("check_only", [True, False])
def test_the_stop_script_acts_only_when_asked(check_only, tmp_path):
    script = saltssh.stop_script(check_only)
    assert script.endswith("echo changed=$changed")
    assert ("disable --now" in script) is not check_only
    assert ("rm -f" in script) is not check_only
    for path in saltssh.MINION_FILES:
        assert path in script


def test_read_key_script_waits_and_encodes():
    script = saltssh.read_key_script()
    assert "seq 60" in script and script.endswith("base64 -w0 /etc/salt/pki/minion/minion.pub")
    assert base64.b64decode(base64.b64encode(b"k")) == b"k"


SALT_VENV_SHA256 = "0123456789abcdef" * 4


def rsa_public_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def archive(tmp_path):
    (tmp_path / "kubesalt-archive-key.asc").write_text("ARCHIVE KEY")
    (tmp_path / "master.pub").write_text(rsa_public_pem())
    (tmp_path / "salt-venv").mkdir()
    (tmp_path / "salt-venv" / "kubesalt-0.1.0.tar.gz.sha256").write_text(
        f"{SALT_VENV_SHA256}  kubesalt-0.1.0.tar.gz\n"
    )
    return Archive("/srv/kubesalt-0.1.0.iso", str(tmp_path), "iso", "kubesalt", "0.1.0")


def read(path):
    return open(path, encoding="utf-8").read()


def test_the_minion_pillar_is_built_once_for_every_node(archive, tmp_path):
    (tmp_path / "ca.crt").write_text("CA PEM")
    built = minionpillar.build("kubesalt-0.1.0", "198.51.100.10", [archive],
                               str(tmp_path / "ca.crt"), read,
                               master_pub_path=str(tmp_path / "master.pub"),
                               salt_venv_dir=str(tmp_path / "salt-venv"))  # fmt: skip
    data = built.for_nodes(["cp2", "worker1"])
    assert data["ca_pem"] == "CA PEM" and data["keyring_asc"] == "ARCHIVE KEY"
    assert data["salt_venv"] == {
        "url": "https://198.51.100.10:8443/kubesalt-0.1.0/salt-venv.tar.gz",
        "sha256": SALT_VENV_SHA256,
        "download": "/var/cache/kubesalt/salt-venv.tar.gz",
    }
    assert "URIs: https://198.51.100.10:8443/kubesalt-0.1.0/deb\n" in data["sources"]
    assert "Signed-By: /etc/apt/keyrings/kubesalt-0.1.0.asc\n" in data["sources"]
    assert data["keyring"] == "/etc/apt/keyrings/kubesalt-0.1.0.asc"
    assert data["venv"] == "/opt/kubesalt/salt"
    assert set(data["minion_configs"]) == {"cp2", "worker1"}
    config = yaml.safe_load(data["minion_configs"]["worker1"])
    assert (config["id"], config["master"], config["saltenv"]) == (
        "worker1", "198.51.100.10", "kubesalt-0.1.0")  # fmt: skip
    arg = minionpillar.salt_ssh_argument(data)
    assert json.loads(arg[len("pillar=") :]) == {"kubesalt_deploy": data}


@pytest.mark.parametrize(
    ("saltenv", "master", "message"),
    [
        ("kubesalt-9.9", "198.51.100.10", "no archive with saltenv kubesalt-9.9 is registered"),
        ("kubesalt-0.1.0", "0.0.0.0", "the master's interface option is '0.0.0.0'"),
        ("kubesalt-0.1.0", None, "the master's interface option is None"),
    ],
)
def test_the_minion_pillar_names_what_is_missing(archive, saltenv, master, message):
    with pytest.raises(OrchestrateError, match=message):
        minionpillar.build(saltenv, master, [archive], "/nonexistent", read)


def test_every_minion_config_pins_the_master_key_as_salt_key_prints_it(archive, tmp_path):
    """A new minion must refuse any master but ours on first contact: its configuration
    carries master_finger, the fingerprint salt-call key.finger_master prints (Salt's own function
    computes the reference), with the master's hash_type."""
    from salt.utils.crypt import pem_finger

    (tmp_path / "ca.crt").write_text("CA PEM")
    pub = tmp_path / "master.pub"
    built = minionpillar.build("kubesalt-0.1.0", "198.51.100.10", [archive],
                               str(tmp_path / "ca.crt"), read, master_pub_path=str(pub),
                               salt_venv_dir=str(tmp_path / "salt-venv"))  # fmt: skip
    data = built.for_nodes(["cp2", "worker1"])
    for node in ("cp2", "worker1"):
        config = yaml.safe_load(data["minion_configs"][node])
        assert config["master_finger"] == pem_finger(str(pub), sum_type="sha256")
        assert config["hash_type"] == "sha256"


@pytest.mark.parametrize("hash_type", ["sha256", "sha512", "md5"])
def test_the_master_fingerprint_is_salts_for_each_hash_type(tmp_path, hash_type):
    from salt.utils.crypt import pem_finger

    path = tmp_path / "master.pub"
    path.write_text(rsa_public_pem())
    expected = pem_finger(str(path), sum_type=hash_type)
    assert minionpillar.master_fingerprint(path.read_text(), hash_type) == expected
    windows = path.read_text().replace("\n", "\r\n")
    assert minionpillar.master_fingerprint(windows, hash_type) == expected


@pytest.mark.parametrize(
    ("pem", "hash_type", "message"),
    [
        ("not a key", "sha256", "the master's public key is not a PEM key"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "nohash",
         "the master's hash_type 'nohash' is not a hash Python knows"),
    ],
)  # fmt: skip
def test_a_bad_master_key_or_hash_type_is_named(pem, hash_type, message):
    with pytest.raises(OrchestrateError, match=message):
        minionpillar.master_fingerprint(pem, hash_type)


def test_a_missing_salt_venv_archive_says_to_run_bootstrap_again(archive, tmp_path):
    (tmp_path / "ca.crt").write_text("CA PEM")
    sha = tmp_path / "salt-venv" / "kubesalt-0.1.0.tar.gz.sha256"
    sha.unlink()
    with pytest.raises(OrchestrateError) as raised:
        minionpillar.build("kubesalt-0.1.0", "198.51.100.10", [archive], str(tmp_path / "ca.crt"),
                           read, master_pub_path=str(tmp_path / "master.pub"),
                           salt_venv_dir=str(tmp_path / "salt-venv"))  # fmt: skip
    message = str(raised.value)
    assert f"cannot read {sha}: No such file or directory" in message
    assert "phase salt-install" in message and "run bootstrap.sh again" in message


def test_a_damaged_salt_venv_sha256_is_named(archive, tmp_path):
    (tmp_path / "ca.crt").write_text("CA PEM")
    sha = tmp_path / "salt-venv" / "kubesalt-0.1.0.tar.gz.sha256"
    sha.write_text("not a digest\n")
    with pytest.raises(OrchestrateError, match=f"{sha} does not start with a sha256"):
        minionpillar.build("kubesalt-0.1.0", "198.51.100.10", [archive], str(tmp_path / "ca.crt"),
                           read, master_pub_path=str(tmp_path / "master.pub"),
                           salt_venv_dir=str(tmp_path / "salt-venv"))  # fmt: skip


def test_an_unreadable_master_key_says_which_file(archive, tmp_path):
    (tmp_path / "ca.crt").write_text("CA PEM")
    with pytest.raises(OrchestrateError, match="cannot read /nonexistent/master.pub"):
        minionpillar.build("kubesalt-0.1.0", "198.51.100.10", [archive], str(tmp_path / "ca.crt"),
                           read, master_pub_path="/nonexistent/master.pub")  # fmt: skip


def test_an_unreadable_ca_says_to_run_bootstrap_again(archive):
    with pytest.raises(OrchestrateError, match="cannot read /nonexistent/ca.crt: No such file"):
        minionpillar.build("kubesalt-0.1.0", "198.51.100.10", [archive], "/nonexistent/ca.crt",
                           read)  # fmt: skip


def test_the_repository_urls_of_an_ipv6_master_are_bracketed(archive, tmp_path):
    (tmp_path / "ca.crt").write_text("CA PEM")
    built = minionpillar.build("kubesalt-0.1.0", "fd00::10", [archive], str(tmp_path / "ca.crt"),
                               read, master_pub_path=str(tmp_path / "master.pub"),
                               salt_venv_dir=str(tmp_path / "salt-venv"))  # fmt: skip
    data = built.for_nodes(["cp2"])
    assert data["salt_venv"]["url"] == "https://[fd00::10]:8443/kubesalt-0.1.0/salt-venv.tar.gz"
    assert "URIs: https://[fd00::10]:8443/kubesalt-0.1.0/deb\n" in data["sources"]


def test_progress_counts_without_content(tmp_path):
    stream = io.StringIO()
    progress = Progress("deploy_node cp2", stream, str(tmp_path / "log" / "o.log"), now=lambda: 0)
    progress.started(2, 13, "minion", "salt-minion installed", ["cp2", "cp3"])
    progress.ended("minion", 12.34, {"cp2": {"states": ["a", "b"], "public_key": "/p"}, "cp3": {}})
    progress.ended("certs", 1, {"cp2": {"states": ["x"]}}, test=True)
    progress.skipped(7, 13, "etcd", "members", "not for this node (roles node)")
    progress.failed("certs", 2.0, "phase certs on cp2: boom")
    assert stream.getvalue().splitlines() == [
        "[2/13] minion: salt-minion installed [cp2, cp3] ...",
        "      minion done in 12.3s (changed; cp2: 3 changed, cp3: ok)",
        "      certs done in 1.0s (would change; cp2: 1 would change)",
        "[7/13] etcd: members ... not for this node (roles node)",
        "      certs FAILED after 2.0s: phase certs on cp2: boom",
    ]
    logged = (tmp_path / "log" / "o.log").read_text().splitlines()
    assert logged[0].endswith(
        " deploy_node cp2: [2/13] minion: salt-minion installed [cp2, cp3] ..."
    )
    assert oct((tmp_path / "log").stat().st_mode & 0o777) == "0o700"
    assert node_summary({"a": {}, "b": {"x": {"y": [1, 2]}}}) == "a: ok, b: 2 changed"


def test_a_closed_terminal_does_not_stop_the_run(tmp_path):
    stream = io.StringIO()
    stream.close()
    Progress("x", stream, str(tmp_path / "o.log")).line("still logged")
    assert (tmp_path / "o.log").read_text().endswith("x: still logged\n")


def test_a_restarted_minion_that_never_answers_is_named_once_its_bound_passed():
    """_reconnect: asked only once the minions' own restart began (RESTART_DELAY + 2 s
    after their firewall state), then pinged every 2 s for 90 s."""
    from types import SimpleNamespace

    from kubesalt.orchestrate import steps

    clock = {"now": 0.0}
    pinged = []
    backend = SimpleNamespace(clock=lambda: clock["now"],
                              sleep=lambda s: clock.__setitem__("now", clock["now"] + s))  # fmt: skip
    run = SimpleNamespace(
        backend=backend,
        answering=set(),
        rpc=SimpleNamespace(
            ping=lambda nodes, timeout: (
                pinged.append((clock["now"], list(nodes), timeout)) or {"cp2"}
            )
        ),
    )
    with pytest.raises(StepFailed, match="salt-minion on cp3 did not answer test.ping within 90s"):
        steps._reconnect(run, ["cp2", "cp3"])
    first = steps.RESTART_DELAY + 2
    assert pinged[0] == (first, ["cp2", "cp3"], steps.PING_IN_WAIT)
    assert [nodes for _, nodes, _ in pinged[1:]] == [["cp3"]] * (len(pinged) - 1)
    assert {timeout for _, _, timeout in pinged} == {2}  # short pings: a silent one costs it
    assert len(pinged) == 46  # at 4, 6, ..., 94 s


def test_waiting_for_minions_pings_short_and_remembers_who_answers():
    """minion_answers (and the other waits for a minion): a silent minion costs the ping's
    timeout before the next try, so the pings inside a wait are short (PING_IN_WAIT)."""
    from types import SimpleNamespace

    from kubesalt.orchestrate import steps
    from kubesalt.orchestrate.model import Step

    clock = {"now": 0.0}
    answers = iter([set(), {"cp2"}, {"cp3"}])
    pinged = []

    def ping(nodes, timeout):
        pinged.append((list(nodes), timeout))
        return next(answers)

    run = SimpleNamespace(
        backend=SimpleNamespace(
            clock=lambda: clock["now"],
            sleep=lambda s: clock.__setitem__("now", clock["now"] + s),
        ),
        rpc=SimpleNamespace(ping=ping),
        answering=set(),
        timeout=lambda step: 90,
    )
    step = Step("minion_answers", "nodes", "minion answers test.ping", timeout=90, retry=1)
    assert steps._wait_answering(run, step, ["cp2", "cp3"]) == []
    assert pinged == [(["cp2", "cp3"], 2), (["cp2", "cp3"], 2), (["cp3"], 2)]
    assert run.answering == {"cp2", "cp3"}
    assert clock["now"] == 2  # one retry interval between each try
