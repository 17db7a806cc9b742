"""SSH host keys: parsed, fingerprinted like ssh-keygen, written as known_hosts."""

import subprocess

import pytest

from kubesalt import hostkeys
from kubesalt.hostkeys import HostKeyError


@pytest.fixture(scope="module")
def real_key(tmp_path_factory):
    """A real ed25519 host key made by ssh-keygen, and ssh-keygen's fingerprint of it."""
    path = tmp_path_factory.mktemp("keys") / "host"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@cp2", "-f",
                    str(path)], check=True)  # fmt: skip
    line = path.with_suffix(".pub").read_text().strip()
    listed = subprocess.run(["ssh-keygen", "-lf", str(path.with_suffix(".pub"))],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    return line, listed.split()[1]


def test_a_public_key_line_loses_its_comment(real_key):
    line, _fp = real_key
    kind, data, comment = line.split()
    assert comment == "root@cp2"
    assert hostkeys.parse_public_key(line) == f"{kind} {data}"


def test_the_fingerprint_is_ssh_keygens(real_key):
    line, expected = real_key
    assert hostkeys.fingerprint(line) == f"{expected} (ssh-ed25519)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"host key '': expected 'TYPE BASE64' with TYPE one of ssh-ed25519, "),
        ("ssh-dss AAAAB3", r"expected 'TYPE BASE64'"),
        ("ssh-ed25519 not*base64", r"host key ssh-ed25519 not\*base64\.\.\.: not valid base64"),
        (
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f",
            r"its data is not a ssh-rsa key \(on the node: cat /etc/ssh/ssh_host_ed25519_key.pub\)",
        ),
    ],
)
def test_a_bad_key_says_what_is_wrong_and_where_to_read_it(text, message):
    with pytest.raises(HostKeyError, match=message):
        hostkeys.parse_public_key(text)


def test_keyscan_output(real_key):
    line, _fp = real_key
    kind, data, _comment = line.split()
    output = f"# 198.51.100.11:22 SSH-2.0-OpenSSH_9.2p1\n198.51.100.11 {kind} {data}\n"
    assert hostkeys.parse_keyscan(output) == [f"{kind} {data}"]
    assert hostkeys.parse_keyscan("") == []


def test_known_hosts_names_a_port_other_than_22_in_brackets(real_key):
    key = hostkeys.parse_public_key(real_key[0])
    text = hostkeys.known_hosts([("198.51.100.12", 2222, [key]), ("fd00::11", 22, [key])])
    assert text == f"[198.51.100.12]:2222 {key}\nfd00::11 {key}\n"


def test_keyscan_command_asks_for_every_supported_type():
    assert hostkeys.keyscan_command("198.51.100.11", 22) == [
        "ssh-keyscan", "-T", "5", "-p", "22", "-t",
        "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-rsa",
        "198.51.100.11",
    ]  # fmt: skip


def test_refused_recognises_both_ssh_refusals():
    assert hostkeys.refused("Host key verification failed.\r\n")
    assert hostkeys.refused("@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @")
    assert not hostkeys.refused("Permission denied (publickey).")
