#!/usr/bin/python3
"""kubesalt lab stand-in for the kubelet, for etcd only (docs/lab.md).

Runs the etcd command of /etc/kubernetes/manifests/etcd.yaml as written
(spec.containers[0].command), restarts it when the manifest changes or the process exits,
and stops it when the manifest is removed. One translation: the binary here is etcd 3.4,
which knows only the experimental names of two flags that kubeadm 1.34 writes in their
graduated etcd 3.6 form (see as_etcd34). The etcd binary is Debian's etcd-server, installed
from the bootstrap node's apt repository the first time a manifest appears (the lab's stand-in
for pulling the etcd image through the registry). Lab only: not part of kubesalt.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

MANIFEST = "/etc/kubernetes/manifests/etcd.yaml"
SALT_PYTHON = "/opt/kubesalt/salt/bin/python3"  # has PyYAML; the plain rootfs has not
LOAD = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
LOG = "/var/log/kubesalt-lab-etcd.log"
# How often the manifest is looked at: the kubelet sees a new static pod at once (inotify);
# a second here made each etcd join wait for the stand-in.
POLL = 0.25


# etcd 3.6 flag (as kubeadm 1.34 writes it) -> the etcd 3.4 flag of the same meaning.
ETCD36_TO_34 = {
    "--feature-gates=InitialCorruptCheck=true": "--experimental-initial-corrupt-check=true",
    "--watch-progress-notify-interval=": "--experimental-watch-progress-notify-interval=",
}


def as_etcd34(cmd):
    """`cmd` with etcd 3.6's graduated flags given their etcd 3.4 names; the rest as is."""
    out = []
    for arg in cmd:
        for new, old in ETCD36_TO_34.items():
            if arg == new or (new.endswith("=") and arg.startswith(new)):
                arg = old + arg[len(new) :]
                break
        out.append(arg)
    return out


def say(text):
    print(text, flush=True)


def command_of(path):
    text = subprocess.run(
        [SALT_PYTHON, "-c", LOAD, path], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    pod = json.loads(text)
    return as_etcd34(pod["spec"]["containers"][0]["command"])


def ensure_etcd():
    if os.path.exists("/usr/bin/etcd"):
        return True
    say("installing etcd-server from the bootstrap node's repository")
    result = subprocess.run(
        [
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "-o",
            "DPkg::Lock::Timeout=120",
            "etcd-server",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive"},
    )
    if result.returncode != 0:
        say(f"apt-get install etcd-server failed: {result.stderr.strip()[-400:]}")
        return False
    return True


def main():
    proc, digest, cmd = None, None, None
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        current = None
        if os.path.exists(MANIFEST) and os.path.exists(SALT_PYTHON):
            with open(MANIFEST, "rb") as stream:
                current = hashlib.sha256(stream.read()).hexdigest()
        if current != digest:
            if proc and proc.poll() is None:
                say("manifest changed or removed: stopping etcd")
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            proc, cmd = None, None
            if current:
                try:
                    cmd = command_of(MANIFEST)
                except (subprocess.SubprocessError, ValueError, KeyError, IndexError) as err:
                    say(f"cannot read {MANIFEST}: {err}")
                    time.sleep(1)
                    continue
            digest = current
        if cmd and (proc is None or proc.poll() is not None):
            if proc is not None:
                say(f"etcd exited with {proc.returncode}; restarting in 1s")
                time.sleep(1)
            if ensure_etcd():
                say("starting: " + " ".join(cmd))
                log = open(LOG, "ab")  # noqa: SIM115 (kept open by the child)
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
                log.close()
        time.sleep(POLL)
    if proc and proc.poll() is None:
        proc.terminate()
        proc.wait(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
