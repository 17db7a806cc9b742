"""A fake cluster behind a fake backend: what the engine sees of Salt, salt-ssh, the key
store and the nodes, with every call recorded in order (`FakeBackend.calls`).

The cluster keeps, per node: its minion (installed, key status), its drift (the state
IDs each SLS would still change), its etcd membership and its Node object. A real state
run clears the drift of the SLS it applied; a test=True run reports it with result None.
"""

from __future__ import annotations

import base64
import json
import pathlib
import subprocess

import yaml

from kubesalt import config, inventory
from kubesalt.cluster import cluster_nodes, render
from kubesalt.etcd import EtcdError, plan_remove
from kubesalt.orchestrate.etcdjoin import members_from

SILENT = object()
THREE_NODES = ["cp2", "cp3", "worker1"]
SALTENV = "kubesalt-0.1.0"
IPS = {"bootstrap": "198.51.100.10", "cp2": "198.51.100.11", "cp3": "198.51.100.12",
       "cp4": "198.51.100.13", "etcd1": "198.51.100.14", "worker1": "198.51.100.21"}  # fmt: skip
ROLES = {
    "bootstrap": ("bootstrap", "ca", "control-plane", "etcd", "node"),
    "cp2": ("control-plane", "etcd", "node"),
    "cp3": ("control-plane", "etcd", "node"),
    "cp4": ("control-plane", "etcd", "node"),
    "etcd1": ("etcd",),  # an etcd member alone: its kubelet runs only its etcd pod
    "worker1": ("node",),
}
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
# What a fresh node still has to change, per SLS (the survey's highstate lists them all).
FRESH_DRIFT = {
    "kubesalt.node": ["Choose the addresses"],
    "kubesalt.firewall": [
        "Write the firewalld zone",
        "Restart salt-minion after firewalld's first start",
    ],
    "kubesalt.pki": ["Issue the certificates"],
    "kubesalt.roles.etcd": ["Write the etcd static pod"],
    "kubesalt.roles.control-plane": ["Write the kube-apiserver static pod"],
    "kubesalt.keepalived": ["Write keepalived.conf"],
    "kubesalt.kubelet": ["Write the kubelet configuration"],
}
ROLE_SLS = {"kubesalt.roles.etcd": "etcd", "kubesalt.roles.control-plane": "control-plane",
            "kubesalt.keepalived": "control-plane"}  # fmt: skip


SALT_VENV_SHA256 = "5a" * 32
SALT_VERSION = "3008.3"  # what every minion reports (grain saltversion)
KUBELET_VERSION = "1.33.5-1.1"  # the kubelet package every node reports (pkg.version)


# The addons phase's calls on the CA minion: the cluster-admins binding with
# super-admin.conf, every other object with admin.conf, then the rollout status.
APPLY_SUPER_ADMIN = "bootstrap kubesalt_cluster.apply ClusterRoleBinding with super-admin.conf"
APPLY_ADMIN = ("bootstrap kubesalt_cluster.apply ClusterRole ClusterRoleBinding ConfigMap "
               "DaemonSet Deployment Node Role RoleBinding Service ServiceAccount")  # fmt: skip
ROLLOUT = "bootstrap kubesalt_cluster.rollout_status DaemonSet Deployment"


def lab_config():
    """The lab's configuration (bootstrap.yaml at the top of the checkout), validated."""
    text = (pathlib.Path(__file__).resolve().parents[3] / "bootstrap.yaml").read_text()
    cfg, problems = config.validate(yaml.safe_load(text))
    assert not problems, problems
    return cfg


def pem(node):
    return f"-----BEGIN PUBLIC KEY-----\n{node}-key\n-----END PUBLIC KEY-----\n"


class Cluster:
    def __init__(self, deployed=("bootstrap",), fresh=()):
        self.minions = {}  # node -> {"running": bool, "key": status or None}
        self.drift = {}  # node -> {sls: [ids]}
        self.members = []  # kubesalt_etcd.members entries
        self.node_objects = {}  # node -> labels
        self.api = {}  # (kind, namespace, name) -> the object applied
        self.applied_with = []  # the kubeconfig of each object applied
        self.rollouts = []  # what rollout_status answers pending, one answer per call
        self.grains = {}  # node -> {key: value}
        self.failures = {}  # (node, sls) -> comment
        self.unsynced = set()  # nodes whose modules are not synced yet
        self.installed = set()  # nodes with the minion install done
        self.dead = set()  # powered off: no SSH, no minion, no etcd member answering
        self.etcd_down = set()  # nodes whose etcd member does not answer
        self.etcd_data = set()  # nodes whose /var/lib/etcd holds their member
        self.saltenvs = {}  # node -> its minion's saltenv, when not SALTENV
        self.cordoned = set()  # Node objects made unschedulable
        self.marked = set()  # ... by kubesalt's drain (annotation kubesalt.io/cordoned-by)
        for node in deployed:
            self.deploy(node)
        for node in fresh:
            self.drift[node] = {}

    def deploy(self, node):
        self.minions[node] = {"running": True, "key": "minions"}
        self.installed.add(node)
        self.drift[node] = {}
        self.grains[node] = {"kubesalt:control_plane_ip": IPS[node]}
        if "etcd" in ROLES[node]:
            self.grains[node]["kubesalt:etcd_initial_cluster"] = [["bootstrap", IPS["bootstrap"]]]
            self.members.append(self._member(node, learner=False))
            self.etcd_data.add(node)
        self.node_objects[node] = {f"node-role.kubernetes.io/{r}": "" for r in ROLES[node]
                                   if r != "bootstrap"}  # fmt: skip

    def _member(self, node, learner, started=True):
        return {"id": f"{abs(hash(node)) % 10**12:x}", "name": node if started else "",
                "peer_urls": [f"https://{IPS[node]}:2380"],
                "client_urls": [f"https://{IPS[node]}:2379"] if started else [],
                "is_learner": learner}  # fmt: skip

    def fresh_drift(self, node):
        return {sls: list(ids) for sls, ids in FRESH_DRIFT.items()
                if sls not in ROLE_SLS or ROLE_SLS[sls] in ROLES[node]}  # fmt: skip

    def kill(self, node):
        """Power `node` off without warning."""
        self.dead.add(node)

    def reinstall(self, node):
        """`node`'s disks replaced, its minion key kept (a restore brings it back): no etcd
        data, no grains but its address, its member still listed but not answering."""
        self.dead.discard(node)
        self.etcd_data.discard(node)
        self.etcd_down.add(node)
        self.grains[node] = {"kubesalt:control_plane_ip": IPS[node]}

    def etcd_healthy(self, node):
        return node not in self.dead and node not in self.etcd_down

    # -- minion functions ----------------------------------------------------------
    def answers(self, node):
        minion = self.minions.get(node)
        alive = node not in self.dead
        return bool(alive and minion and minion["running"] and minion["key"] == "minions")

    def respond(self, node, fun, args, kwargs):
        if not self.answers(node):
            return SILENT
        handler = getattr(self, "_" + fun.replace(".", "_"))
        return handler(node, *args, **kwargs)

    def _test_ping(self, node):
        return True

    def _saltutil_sync_all(self, node, saltenv, refresh):
        if node in self.unsynced:
            self.unsynced.discard(node)
            return {"modules": ["kubesalt_etcd"], "states": []}
        return {"modules": [], "states": []}

    def _mine_update(self, node):
        return True

    def _saltutil_refresh_pillar(self, node, wait):
        return True

    def _grains_get(self, node, key):
        if key == "kubesalt":
            return {k.split(":")[1]: v for k, v in self.grains.get(node, {}).items()}
        return self.grains.get(node, {}).get(key, "")

    def _grains_item(self, node, *keys):
        return {key: SALT_VERSION if key == "saltversion" else "" for key in keys}

    def _config_get(self, node, key):
        return self.saltenvs.get(node, SALTENV) if key == "saltenv" else ""

    def _pkg_version(self, node, name):
        return KUBELET_VERSION if name == "kubelet" else ""

    def _grains_set(self, node, key, value, force):
        self.grains.setdefault(node, {})[key] = value
        return {"changes": {key: value}}

    def _state_run(self, node, sls_list, test):
        result, drift = {}, self.drift.setdefault(node, {})
        for index, sls in enumerate(sls_list):
            result[f"test_|-{sls} ok_|-x_|-nop"] = {"__id__": f"{sls} is in order",
                                                 "result": True, "changes": {},
                                                 "comment": "ok", "__sls__": sls,
                                                 "__run_num__": index * 10}  # fmt: skip
            if (node, sls) in self.failures:
                result[f"file_|-{sls} fails_|-x_|-managed"] = {
                    "__id__": f"{sls} fails", "result": False, "changes": {},
                    "comment": self.failures[(node, sls)], "__sls__": sls,
                    "__run_num__": index * 10 + 1}  # fmt: skip
            for number, ident in enumerate(drift.get(sls, [])):
                result[f"file_|-{ident}_|-x_|-managed"] = {
                    "__id__": ident, "result": None if test else True,
                    "changes": {} if test else {"diff": "secret"}, "comment": "",
                    "__sls__": sls, "__run_num__": index * 10 + 2 + number}  # fmt: skip
            if test or (node, sls) in self.failures:
                continue  # a failed run leaves its drift
            if drift.pop(sls, None) and sls == "kubesalt.node":
                self._peers_learn(node)
        return result

    def _peers_learn(self, node):
        """A node's new address: the deployed nodes' firewall (and control-plane peers'
        keepalived) must list it."""
        for other in sorted(self.installed - {node}):
            if other not in self.grains or not self.minions.get(other):
                continue
            drift = self.drift.setdefault(other, {})
            drift.setdefault("kubesalt.firewall", []).append(f"Allow {node}")
            if "control-plane" in ROLES[node] and "control-plane" in ROLES[other]:
                drift.setdefault("kubesalt.keepalived", []).append(f"Add peer {node}")

    def _state_sls(self, node, mods, saltenv, test=False, pillar=None):
        if mods == "kubesalt.salt.minion.remote":
            assert pillar["kubesalt_deploy"]["minion_configs"][node]
            return self._state_run(node, [mods], test)
        return self._state_run(node, mods.split(","), test)

    def _state_highstate(self, node, saltenv, test=False):
        return self._state_run(node, sorted(self.drift.get(node, {})), test)

    # -- CA minion functions -------------------------------------------------------
    def _own_etcd_error(self, node):
        """The answer of a kubesalt_etcd call asked on `node` whose own member is down."""
        if not self.etcd_healthy(node):
            return (f"ERROR: Unreachable: etcdctl member list -w json failed: context "
                    f"deadline exceeded (https://{IPS[node]}:2379)")  # fmt: skip
        return None

    def _file_directory_exists(self, node, path):
        assert path == "/var/lib/etcd/member", path
        return node in self.etcd_data

    def _kubesalt_etcd_members(self, node):
        return self._own_etcd_error(node) or [dict(m) for m in self.members]

    def _kubesalt_etcd_health(self, node, cluster):
        """{client URL: health} of this node's member, or (cluster) of every voter."""
        if cluster and not self.etcd_healthy(node):
            return self._own_etcd_error(node)
        names = [m["name"] for m in self.members if not m["is_learner"]] if cluster else [node]
        return {f"https://{IPS[n]}:2379": {"health": self.etcd_healthy(n),
                                            "error": None if self.etcd_healthy(n) else
                                            "context deadline exceeded"}
                for n in names}  # fmt: skip

    def _kubesalt_certs_wait_serving(self, node, port, cert, timeout):
        if not self.etcd_healthy(node):
            return f"ERROR: 127.0.0.1:{port} does not serve {cert} after {timeout}s"
        return {"serial": f"{node}-serial", "port": port}

    def _kubesalt_etcd_wait_healthy(self, node, timeout, cluster):
        return {"healthy": True}

    def _kubesalt_etcd_add_learner(self, node, name, peer_url):
        found = [m for m in self.members if peer_url in m["peer_urls"]]
        changed = not found
        if changed:
            self.members.append(self._member(name, learner=True, started=False))
        initial = ",".join(f"{m['name'] or name}={m['peer_urls'][0]}" for m in self.members)
        return {"changed": changed, "member": {"id": "abc"}, "initial_cluster": initial}

    def _kubesalt_etcd_promote(self, node, name, timeout):
        for member in self.members:
            if member["peer_urls"][0] == f"https://{IPS[name]}:2380":
                changed = member["is_learner"]
                member.update(is_learner=False, name=name,
                              client_urls=[f"https://{IPS[name]}:2379"])  # fmt: skip
                self.etcd_data.add(name)
                self.etcd_down.discard(name)
                return {"changed": changed}
        raise AssertionError(f"promote {name}: not a member")

    def _kubesalt_etcd_remove(self, node, name, timeout, force=False):
        """As kubesalt_etcd.remove decides: through this node's own member, with the
        quorum rules of kubesalt.etcd.plan_remove on the members' health."""
        if self._own_etcd_error(node):
            return self._own_etcd_error(node)
        members = members_from(self.members)
        healthy = {m["name"] for m in self.members if self.etcd_healthy(m["name"])}
        try:
            plan = plan_remove(members, name, healthy, force)
        except EtcdError as err:
            return f"ERROR: {type(err).__name__}: {err}"
        self.members = [m for m in self.members if m["name"] != name]
        return {"changed": plan.action == "remove", "member": {"name": name}}

    def _cmd_run_all(self, node, command, python_shell):
        name = command[command.index("node") + 1]
        if name not in self.node_objects:
            return {"retcode": 0, "stdout": "", "stderr": ""}
        spec = {"unschedulable": True} if name in self.cordoned else {}
        metadata = {"labels": self.node_objects[name]}
        if name in self.marked:
            metadata["annotations"] = {"kubesalt.io/cordoned-by": "kubesalt"}
        obj = {"kind": "Node", "metadata": metadata, "spec": spec}
        return {"retcode": 0, "stdout": json.dumps(obj), "stderr": ""}

    def _kubesalt_cluster_apply(self, node, objects, test=False, kubeconfig=None):
        """Server-side apply as the API answers it: created, configured, unchanged; a Node
        without a registered kubelet is pending (never created)."""
        outcomes = []
        for obj in objects:
            meta = obj["metadata"]
            key = (obj["kind"], meta.get("namespace", ""), meta["name"])
            if obj["kind"] == "Node":
                live = self.node_objects.get(meta["name"])
                if live is None:
                    outcome = "pending"
                else:
                    wanted = dict(live, **meta.get("labels", {}))
                    outcome = "unchanged" if wanted == live else "configured"
                    if not test:
                        live.update(wanted)
            else:
                before = self.api.get(key)
                outcome = ("created" if before is None else
                           "unchanged" if before == obj else "configured")  # fmt: skip
                if not test:
                    self.api[key] = obj
            self.applied_with.append(kubeconfig or "admin.conf")
            outcomes.append({"object": f"{key[0]} {key[1]}/{key[2]}".replace(" /", " "),
                             "kind": key[0], "namespace": key[1], "name": key[2],
                             "outcome": outcome, "dry_run": bool(test)})  # fmt: skip
        return {"changed": any(o["outcome"] in ("created", "configured") for o in outcomes),
                "objects": outcomes}  # fmt: skip

    def apply_addons(self):
        """The API objects of the deployed nodes applied, as the addons phase leaves them."""
        nodes = cluster_nodes({n: ROLES[n] for n in self.node_objects})
        self._kubesalt_cluster_apply("bootstrap", render(lab_config(), nodes))
        return self

    def _kubesalt_cluster_rollout_status(self, node, objects, timeout):
        pending = self.rollouts.pop(0) if self.rollouts else []
        return {"complete": not pending, "pending": pending}

    def _kubesalt_kubectl_drain(self, node, name, timeout):
        assert name not in self.dead, f"drain of the dead {name}: its evictions never finish"
        changed = name in self.node_objects and name not in self.cordoned
        if changed:
            self.marked.add(name)
        if name in self.node_objects:
            self.cordoned.add(name)
        return {"changed": changed, "cordoned": changed, "evicted": []}

    def _kubesalt_kubectl_uncordon(self, node, name):
        """Only a Node kubesalt's drain cordoned (marked) is made schedulable."""
        cordoned, marked = name in self.cordoned, name in self.marked
        if cordoned:
            action = "uncordon" if marked else "keep-cordoned"
        else:
            action = "unmark" if marked else "nothing"
        if marked:  # uncordoned (if still cordoned) and unmarked
            self.cordoned.discard(name)
            self.marked.discard(name)
        kept = action == "keep-cordoned"
        return {"changed": marked, "action": action, "kept_cordoned": kept,
                "comment": f"node {name} stays cordoned: ..." if kept else ""}  # fmt: skip

    def _kubesalt_kubectl_delete_node(self, node, name, timeout):
        return {"changed": self.node_objects.pop(name, None) is not None}

    # -- salt-ssh --------------------------------------------------------------------
    def salt_ssh(self, node, args):
        assert node not in self.dead, f"salt-ssh to the dead {node}"
        if args[0] == "state.sls":
            pillar = json.loads(args[3][len("pillar="):])  # fmt: skip
            assert pillar["kubesalt_deploy"]["minion_configs"][node]
            fresh = node not in self.installed
            moved = self.drift.get(node, {}).pop("kubesalt.salt.minion.remote", None)
            self.installed.add(node)
            self.saltenvs[node] = pillar["kubesalt_deploy"]["saltenv"]
            if fresh:
                self.minions[node] = {"running": True, "key": "minions_pre"}
                self.drift[node] = self.fresh_drift(node)
                self.grains[node] = {"kubesalt:control_plane_ip": IPS[node]}
                self.unsynced.add(node)
                self.node_objects[node] = {}
            ret = {f"file_|-{n}_|-x_|-managed": {"__id__": n, "result": True,
                                                 "changes": {"x": 1} if fresh or moved else {}}
                   for n in ("Write the salt-minion configuration", "Run salt-minion")}  # fmt: skip
            return 0, {node: ret}
        script = args[1]
        if "base64" in script:
            return 0, {node: {"stdout": base64.b64encode(pem(node).encode()).decode(),
                              "retcode": 0}}  # fmt: skip
        if "changed=" in script:
            changed = self.minions.get(node, {}).get("running", False)
            if "disable --now" in script:
                self.minions[node]["running"] = False
            return 0, {node: {"stdout": f"changed={int(changed)}\n", "retcode": 0}}
        raise AssertionError(f"unexpected salt-ssh script {script}")


class FakeClient:
    def __init__(self, backend):
        self.backend = backend

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
        assert tgt_type == "list" and full_return
        args = list(arg)
        shown = " ".join(str(a) for a in args if not isinstance(a, list | dict))
        if fun == "cmd.run_all":
            shown = "kubectl get node " + args[0][args[0].index("node") + 1]
        if fun.startswith("kubesalt_cluster."):
            shown = " ".join(sorted({o["kind"] for o in args[0]}))
            if (kwarg or {}).get("kubeconfig"):
                shown += " with " + kwarg["kubeconfig"].rsplit("/", 1)[-1]
        self.backend.calls.append(f"{','.join(tgt)} {fun}{' ' + shown if shown else ''}"
                                  + (" test=True" if (kwarg or {}).get("test") else ""))  # fmt: skip
        answer = {}
        for minion in tgt:
            ret = self.backend.cluster.respond(minion, fun, args, kwarg or {})
            if ret is not SILENT:
                answer[minion] = {"ret": ret, "retcode": 0, "jid": "1"}
        return answer


class FakeKeys:
    def __init__(self, backend):
        self.backend = backend

    def accepted(self):
        return [n for n, m in self.backend.cluster.minions.items() if m["key"] == "minions"]

    def status(self, name):
        minion = self.backend.cluster.minions.get(name)
        if not minion or not minion["key"]:
            return None, None
        return minion["key"], pem(name)

    def accept(self, name):
        self.backend.calls.append(f"keys.accept {name}")
        self.backend.cluster.minions[name]["key"] = "minions"

    def delete(self, name):
        self.backend.calls.append(f"keys.delete {name}")
        self.backend.cluster.minions.pop(name, None)


class FakeBackend:
    parallel = False

    def __init__(self, cluster, tmp_path, declared=("bootstrap", "cp2", "cp3", "worker1")):
        self.cluster = cluster
        self.calls = []
        self.client = FakeClient(self)
        self.keys = FakeKeys(self)
        self.master_ip = IPS["bootstrap"]
        self.inventory_dir = str(tmp_path / "nodes")
        self.lock_path = str(tmp_path / "run" / "orchestrate.lock")
        self.log_file = str(tmp_path / "log" / "orchestrate.log")
        self.ca_cert_path = str(tmp_path / "ca.crt")
        self.master_pub_path = str(tmp_path / "master.pub")
        self.hash_type = "sha256"
        self.salt_venv_dir = str(tmp_path / "salt-venv")
        self.files = {}
        self.releases = {}  # node -> the Kubernetes release the inventory records
        self.now = 0.0
        self.http = {}  # url -> status
        (tmp_path / "ca.crt").write_text("CA PEM")
        (tmp_path / "master.pub").write_text(pem("master"))
        archive_root = tmp_path / "archive"
        archive_root.mkdir()
        (archive_root / "kubesalt-archive-key.asc").write_text("ARCHIVE KEY")
        (tmp_path / "salt-venv").mkdir()
        (tmp_path / "salt-venv" / "kubesalt-0.1.0.tar.gz.sha256").write_text(
            f"{SALT_VENV_SHA256}  kubesalt-0.1.0.tar.gz\n"
        )
        self._archive_root = str(archive_root)
        for node in declared:
            entry = inventory.Node(node, IPS[node], ROLES[node], host_keys=(HOST_KEY,))
            path = tmp_path / "nodes" / f"{node}.yaml"
            path.parent.mkdir(exist_ok=True)
            path.write_text(yaml.safe_dump(entry.to_document()))
        for node in cluster.installed:
            self.files[f"/etc/kubesalt/minion-keys/{node}.pub"] = pem(node)

    def clock(self):
        self.now += 0.5
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def archives(self):
        from kubesalt.bootstrap.archive import Archive

        return [Archive("/srv/kubesalt.iso", self._archive_root, "iso", "kubesalt", "0.1.0")]

    def read_text(self, path):
        return open(path, encoding="utf-8").read()

    def kubernetes_versions(self):
        return {node: self.releases.get(node) for node in inventory.load(self.inventory_dir)}

    def record_kubernetes_version(self, node, version):
        self.calls.append(f"record {node} {version}")
        self.releases[node] = version
        return True

    def read_text_or_none(self, path):
        if path == "/etc/salt/pki/minion/minion.pub":
            return pem("bootstrap")
        return self.files.get(path)

    def write_private(self, path, text):
        self.calls.append(f"write {path}")
        self.files[path] = text

    def remove(self, path):
        self.calls.append(f"remove {path}")
        del self.files[path]

    def prepare_ssh(self):
        self.calls.append("prepare salt-ssh")

    def connect(self, host, port, timeout):
        self.calls.append(f"connect {host}:{port}")
        if any(IPS[node] == host for node in self.cluster.dead):
            raise OSError("No route to host")

    def keyscan(self, host, port):
        self.calls.append(f"keyscan {host}:{port}")
        return f"{host} {HOST_KEY}\n", ""

    def http_status(self, url, timeout):
        self.calls.append(f"GET {url}")
        return self.http.get(url, 200)

    def ssh_run(self, argv, timeout):
        node = argv[argv.index("-1") + 1]
        args = argv[argv.index("-1") + 2 :]
        what = args[0] if args[0] != "-r" else "-r " + _script_name(args[1])
        self.calls.append(f"salt-ssh {node} {what}")
        code, reply = self.cluster.salt_ssh(node, args)
        return subprocess.CompletedProcess(argv, code, json.dumps(reply) + "\n", "")


def _script_name(script):
    if "base64" in script:
        return "read the minion key"
    if "restart" in script:
        return "restart salt-minion"
    return "stop salt-minion (check)" if "disable --now" not in script else "stop salt-minion"
