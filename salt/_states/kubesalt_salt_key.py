"""States for orchestrations on the master: a minion's key accepted, the minion answering.

``accepted`` accepts a pending key only when it is the expected public key (for the
bootstrap node: its own ``/etc/salt/pki/minion/minion.pub``), so an impostor that raced
to submit a key under the same ID is refused. Both states wait with a bound and say what
they waited for (docs/orchestrations.md).
"""

import time

import salt.client
import salt.key

__virtualname__ = "kubesalt_salt_key"


def __virtual__():
    return __virtualname__


def _normalize(pem):
    return "".join((pem or "").split())


def _find(keys, minion_id):
    """(status, pem) of a minion's key in the master's key store, or (None, None)."""
    for status, found in keys.key_str(minion_id).items():
        if minion_id in found:
            return status, found[minion_id]
    return None, None


def accepted(name, public_key=None, wait=60):
    """
    Make the master accept the key of minion ``name``, once it is pending.

    name
        The minion ID.
    public_key
        Path of the PEM public key the pending key must equal (on the master's host).
    wait
        Seconds to wait for the minion to submit its key.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    keys = salt.key.Key(__opts__)  # noqa: F821
    expected = None
    if public_key:
        try:
            with open(public_key, encoding="utf-8") as stream:
                expected = stream.read()
        except OSError as err:
            ret["comment"] = f"Cannot read the expected public key {public_key}: {err.strerror}"
            return ret
    deadline = time.monotonic() + float(wait)
    while True:
        status, pem = _find(keys, name)
        if status is not None or time.monotonic() > deadline:
            break
        time.sleep(1)
    if status is None:
        ret["comment"] = (
            f"Waited {wait}s for minion {name} to submit its key; check that salt-minion runs "
            f"on {name} and reaches the master (ports 4505-4506)"
        )
        return ret
    if expected is not None and _normalize(pem) != _normalize(expected):
        ret["comment"] = (
            f"The {status} key of minion {name} is not the expected key {public_key}: refusing "
            f"it. Delete it (salt-key -d {name}) and restart salt-minion on {name}"
        )
        return ret
    if status == "minions":
        ret["result"] = True
        ret["comment"] = f"The key of minion {name} is accepted"
        return ret
    if status != "minions_pre":
        ret["comment"] = (
            f"The key of minion {name} is in {status}; delete it (salt-key -d {name}) and "
            f"restart salt-minion on {name}"
        )
        return ret
    if __opts__["test"]:  # noqa: F821
        ret["result"] = None
        ret["comment"] = f"Would have accepted the key of minion {name}"
        ret["changes"] = {"accepted": name}
        return ret
    keys.accept(match=name)
    status, _ = _find(keys, name)
    if status != "minions":
        ret["comment"] = f"Accepting the key of minion {name} left it in {status}"
        return ret
    ret["result"] = True
    ret["changes"] = {"accepted": name}
    ret["comment"] = f"Accepted the key of minion {name}"
    return ret


def responds(name, wait=90):
    """
    Wait (bounded) until minion ``name`` answers ``test.ping`` through the master.

    name
        The minion ID.
    wait
        Seconds to wait.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    if __opts__["test"]:  # noqa: F821
        ret["result"] = None
        ret["comment"] = f"Would have waited for minion {name} to answer"
        return ret
    client = salt.client.get_local_client(__opts__["conf_file"])  # noqa: F821
    start = time.monotonic()
    deadline = start + float(wait)
    while True:
        answer = client.cmd(name, "test.ping", timeout=10)
        if answer.get(name) is True:
            ret["result"] = True
            ret["comment"] = f"Minion {name} answers (after {time.monotonic() - start:.1f}s)"
            return ret
        if time.monotonic() > deadline:
            ret["comment"] = (
                f"Waited {wait}s for minion {name} to answer test.ping; see "
                f"systemctl status salt-minion and /var/log/salt/minion on {name}"
            )
            return ret
        time.sleep(2)
