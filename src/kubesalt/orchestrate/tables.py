"""The orchestrations as data: one table of phases per orchestration.

A new orchestration (renew, backup, upgrade) is a new table here and, where it needs
them, new step kinds in `steps`; the executor and the SLS file stay as they are.
"""

from __future__ import annotations

from kubesalt import roles as _roles
from kubesalt.bootstrap import services
from kubesalt.orchestrate.clustersteps import ETCD_SLS
from kubesalt.orchestrate.model import OrchestrateError, Phase, Step

CP = frozenset({"control-plane"})
ETCD = frozenset({"etcd"})
# The roles that run a kubelet; top.sls gives each containerd and the kubelet (an etcd-only
# node's kubelet runs its etcd static pod).
KUBELET = _roles.KUBELET_ROLES
KUBELET_SLS = ("kubesalt.containerd", "kubesalt.kubelet")
REMOVE_SLS = (
    "kubesalt.keepalived.absent",
    "kubesalt.roles.etcd-absent",
    "kubesalt.etcd.data-absent",  # only when the etcd phase ran: its member is gone
    "kubesalt.roles.control-plane-absent",
    "kubesalt.kubelet.absent",
    "kubesalt.containerd.absent",
    "kubesalt.kubeconfig.absent",
    "kubesalt.pki.absent",
    "kubesalt.firewall.absent",
)


def _apply(target, sls, what, timeout=600, **args):
    return Step("applied", target, what, {"sls": tuple(sls), **args}, timeout)


# The keepalived peer lists of the other control-plane nodes (deploy and remove both
# update them).
OTHER_CP_KEEPALIVED = Step(
    "applied",
    "others",
    "keepalived of the other control-plane nodes",
    {"sls": ("kubesalt.keepalived",)},
    600,
    roles=CP,
)

PREFLIGHT_DEPLOY = Phase(
    "preflight",
    "no other orchestration runs; the nodes are declared and their SSH port answers",
    (
        Step("ssh_port", "nodes", "SSH port answers", timeout=10, retry=1),
        Step("host_keys", "nodes", "SSH host keys recorded", timeout=30),
    ),
    why="checks before any change; the host key is what salt-ssh checks from then on",
)

WAIT_CONTROL_PLANE = Phase(
    "wait-control-plane",
    "the nodes' kube-apiserver answers /readyz",
    (Step("api_ready", "nodes", "kube-apiserver /readyz", timeout=300, retry=5),),
    roles=CP,
)
# kubeadm's API-side objects and the addons (kubesalt.cluster), applied by the CA minion;
# deploy_node's phase and the addons orchestration's (bootstrap.sh runs it).
ADDONS_PHASE = Phase(
    "addons",
    "kubeadm's API objects, the CNI, kube-proxy and CoreDNS applied; the nodes' Node "
    "objects labelled and tainted; the DaemonSets and Deployments rolled out",
    (
        Step("cluster_applied", "ca", "apply the cluster's API objects", timeout=300, retry=5),
        Step("rolled_out", "ca", "wait for the rollouts", timeout=600, retry=5),
    ),
    why="kubeadm creates these through the API once a control plane answers; a node's "
    "labels and taint wait for its kubelet to register",
)

# containerd and the kubelet, before etcd (kubeadm join's kubelet-start before
# control-plane-join): the kubelet runs the etcd member's static pod, which the join waits
# for before it promotes the learner. deploy_node's phase and restore's.
KUBELET_PHASE = Phase(
    "kubelet",
    "containerd, the kubelet and its configuration",
    (_apply("nodes", KUBELET_SLS, "containerd and the kubelet"),),
    roles=KUBELET,
    why="the kubelet runs the static pods the control-plane and etcd phases write",
)

DEPLOY_NODE = (
    PREFLIGHT_DEPLOY,
    Phase(
        "minion",
        "salt-minion installed and configured (a running minion is asked first)",
        (Step("minion_installed", "nodes", "install salt-minion", timeout=900),),
        why="the node's own minion runs every later step",
    ),
    Phase(
        "key",
        "the minion's key accepted, the minion answers test.ping",
        (
            Step("key_accepted", "nodes", "accept the minion key", timeout=90, retry=1),
            Step("minion_answers", "nodes", "minion answers test.ping", timeout=90, retry=2),
        ),
        why="only the key read back over SSH is accepted",
    ),
    Phase(
        "grains",
        "modules synced, addresses in grains and mine, CA pillar refreshed, nodes surveyed",
        (
            Step("synced", "nodes", "saltutil.sync_all", timeout=300),
            _apply("nodes", ["kubesalt.node"], "choose and publish the addresses", 300),
            Step("pillar_refreshed", "ca", "refresh the CA minion's pillar", timeout=60),
            Step("surveyed", "nodes", "dry-run highstate: what is left to change", timeout=600),
        ),
        why="the CA signs only for nodes its pillar lists; the survey tells which nodes "
        "the state phases below still have to change",
    ),
    Phase(
        "firewall",
        "firewall sources updated on the other nodes, then the nodes' firewall",
        (
            _apply("others", ["kubesalt.firewall"], "firewall of the other nodes"),
            _apply("nodes", ["kubesalt.firewall"], "firewall of the nodes", reconnect=True),
        ),
        why="existing etcd members accept peer traffic only from listed addresses",
    ),
    Phase(
        "certs",
        "the nodes' certificates, signed by the CA minion",
        (_apply("nodes", ["kubesalt.pki"], "certificates", "state_timeout"),),
    ),
    Phase(
        "control-plane",
        "the control-plane static pods and kubeconfigs",
        (_apply("nodes", ["kubesalt.roles.control-plane"], "control-plane files"),),
        roles=CP,
    ),
    KUBELET_PHASE,
    Phase(
        "etcd",
        "members added as learners, static pods written, promoted, one node at a time",
        (Step("etcd_joined", "nodes", "join etcd", timeout="timeout"),),
        roles=ETCD,
        why="etcd admits one learner at a time; each join waits for a healthy cluster, and "
        "promotes the learner once the kubelet runs its static pod",
    ),
    Phase(
        "keepalived",
        "peer lists updated on the other control-plane nodes, then the nodes' keepalived",
        (
            OTHER_CP_KEEPALIVED,
            _apply("nodes", ["kubesalt.keepalived"], "keepalived of the nodes"),
        ),
        roles=CP,
        why="the existing VRRP peers learn the new ones before these start",
    ),
    WAIT_CONTROL_PLANE,
    ADDONS_PHASE,
    Phase(
        "highstate",
        "the full highstate of the nodes that had something to change",
        (Step("highstate", "nodes", "state.highstate", timeout=600),),
        why="applies what no earlier phase did (absent states of other roles, a skipped "
        "phase's files); skipped on nodes the survey found settled",
    ),
)

# What stays on a node given up as gone (pillar force) when a step cannot run there.
LEFT_BY_CLEANUP = (
    "kubesalt's files (its static pods and /var/lib/etcd, the certificates and keys under "
    "/etc/kubernetes/pki, the kubeconfigs, the kubelet and containerd, keepalived, the "
    "firewalld zone): if it starts again as it is, its kubelet registers its Node again "
    "and its keepalived may claim the VIP"
)
LEFT_BY_MINION = "salt-minion, enabled, with its configuration and keys under /etc/salt"

# Order: the node is forgotten (inventory) before the peers phase, because the CA
# minion's signing policies and the other nodes' firewall sources and keepalived peers are
# computed from the inventory and the mine. A run that stopped after `inventory` is
# finished by running it again: preflight accepts a node no longer declared
# (declared_or_finishing), and every later step finds what is left of it.
REMOVE_NODE = (
    Phase(
        "preflight",
        "no other orchestration runs; the node is not the CA minion; it answers (SSH port, "
        "minion), or is gone (pillar force), or is no longer declared (its removal finishes)",
        (
            Step("not_ca", "nodes", "not the CA minion"),
            Step("declared_or_finishing", "nodes", "declared, or its removal is finished"),
            Step(
                "etcd_member_left_when_skipped",
                "nodes",
                "with phase etcd skipped: no longer an etcd member",
                timeout=60,
            ),
            Step("ssh_port_or_gone", "nodes", "SSH port answers", timeout=10, retry=1),
            Step(
                "minion_answers_or_gone",
                "nodes",
                "minion answers test.ping",
                timeout=20,
                retry=2,
                needs="ssh",
            ),  # fmt: skip
            Step("host_keys", "nodes", "SSH host keys recorded", timeout=30, needs="ssh"),
        ),
        why="a node that does not answer is refused before any change, unless pillar force "
        "says it is gone for good",
    ),
    Phase(
        "drain",
        "the Node object cordoned and its pods evicted (kubectl drain)",
        (Step("drained", "ca", "drain the Node object", timeout="drain_timeout", needs="ssh"),),
        why="a gone node is not drained: its evictions never finish; its pods go with its "
        "Node object (delete-node)",
    ),
    Phase(
        "etcd",
        "the node's etcd member removed, through a healthy member",
        (Step("etcd_left", "ca", "remove the etcd member", timeout=60),),
        roles=ETCD,
    ),
    Phase(
        "cleanup",
        "the node's kubesalt files removed (the -absent states)",
        (
            Step(
                "applied",
                "nodes",
                "the absent states",
                {"sls": REMOVE_SLS, "only_after": {"kubesalt.etcd.data-absent": "etcd"}},
                600,
                needs="minion",
                leaves=LEFT_BY_CLEANUP,
            ),
        ),  # fmt: skip
    ),
    Phase(
        "delete-node",
        "the Node object deleted, once its kubelet is stopped",
        (Step("node_deleted", "ca", "delete the Node object", timeout=60),),
    ),
    Phase(
        "minion",
        "the node's salt-minion stopped and disabled (salt-ssh)",
        (
            Step(
                "minion_stopped",
                "nodes",
                "stop salt-minion",
                timeout=120,
                needs="ssh",
                leaves=LEFT_BY_MINION,
            ),
        ),  # fmt: skip
    ),
    Phase(
        "key",
        "the node's minion key deleted on the master",
        (Step("key_deleted", "master", "delete the minion key"),),
    ),
    Phase(
        "inventory",
        "the node forgotten",
        (Step("forgotten", "master", "forget the node"),),
    ),
    Phase(
        "peers",
        "CA pillar refreshed; keepalived peers and firewall sources updated on the others",
        (
            Step("pillar_refreshed", "ca", "refresh the CA minion's pillar", timeout=60),
            OTHER_CP_KEEPALIVED,
            _apply("others", ["kubesalt.firewall"], "firewall of the other nodes"),
        ),
    ),
)

BOOTSTRAP_KEY = Phase(
    "key",
    "the bootstrap node's minion key accepted (only its own), the minion answers",
    (
        Step(
            "key_accepted",
            "nodes",
            "accept the minion key",
            {"public_key": services.MINION_PUB},  # the bootstrap node's own key
            timeout=90,
            retry=1,
        ),  # fmt: skip
        Step("minion_answers", "nodes", "minion answers test.ping", timeout=90, retry=2),
    ),
)
SYNCED = Step("synced", "nodes", "saltutil.sync_all", timeout=300)
BOOTSTRAP_HIGHSTATE = Phase(
    "highstate",
    "the bootstrap node's highstate (its bootstrap role and every other role)",
    (Step("highstate", "nodes", "state.highstate", timeout=1200),),
    why="the top file gives the bootstrap node kubesalt.roles.bootstrap first, so the "
    "role needs no run of its own",
)

BOOTSTRAP = (
    Phase("preflight", "no other orchestration runs", ()),
    BOOTSTRAP_KEY,
    Phase("grains", "kubesalt's loader modules synced to the bootstrap node", (SYNCED,)),
    BOOTSTRAP_HIGHSTATE,
)

# bootstrap.sh --restore: the bootstrap node, restored from a backup onto a fresh machine
# (same CA, master keys, minion keys, inventory), joins the cluster that kept running.
RESTORE = (
    Phase("preflight", "no other orchestration runs", ()),
    BOOTSTRAP_KEY,
    Phase(
        "grains",
        "modules synced; every minion answers the restored master and publishes its "
        "addresses again; the CA minion's pillar refreshed",
        (
            SYNCED,
            Step("mine_updated", "nodes", "publish the node's addresses", timeout=60),
            Step(
                "mine_updated",
                "others",
                "the other minions answer and publish their addresses",
                timeout=300,
                retry=5,
            ),  # fmt: skip
            Step("pillar_refreshed", "ca", "refresh the CA minion's pillar", timeout=60),
        ),
        why="the restored master starts with an empty mine: the firewall sources, the "
        "keepalived peers and the signing policies are computed from it",
    ),
    Phase(
        "firewall",
        "the node's firewall, its sources from the mine filled again",
        (_apply("nodes", ["kubesalt.firewall"], "firewall of the node"),),
        why="bootstrap.sh applied it before the master knew the other nodes: the etcd "
        "members could not reach the node's peer port",
    ),
    Phase(
        "certs",
        "the node's certificates, signed by its own restored CA",
        (_apply("nodes", ["kubesalt.pki"], "certificates", "state_timeout"),),
    ),
    KUBELET_PHASE,
    Phase(
        "etcd",
        "the node's stale etcd member removed through another member; the node joins "
        "again as a learner and is promoted",
        (Step("etcd_joined", "nodes", "join etcd again", timeout="timeout"),),
        roles=ETCD,
        why="the backup holds no etcd data of the node: starting its member empty would "
        "split etcd in two",
    ),
    BOOTSTRAP_HIGHSTATE,
)

# The cluster's API objects again, on demand (bootstrap.sh's last phase runs it): the CA
# minion's own control plane answers, then the objects are applied and rolled out.
ADDONS = (
    Phase(
        "preflight",
        "no other orchestration runs; the CA minion answers",
        (Step("minion_answers", "nodes", "minion answers test.ping", timeout=60, retry=2),),
    ),
    WAIT_CONTROL_PLANE,
    ADDONS_PHASE,
)

# -- renew_certificates ----------------------------------------------------------------
# The phases each node goes through, in order; `members` runs them node after node on
# the control-plane and etcd nodes, `workers` once for all the other nodes. Their names
# are skippable like top-level phases (the lab skips kubelet and wait-control-plane).
MEMBERS = CP | ETCD
STATIC_POD_SLS = {_roles.ETCD: "kubesalt.roles.etcd",
                  _roles.CONTROL_PLANE: "kubesalt.roles.control-plane"}  # fmt: skip
RENEW_CERTS = Phase(
    "certs",
    "the node's certificates renewed where due (kubesalt.pki with the run's window)",
    (
        Step(
            "renewed",
            "nodes",
            "renew the certificates",
            {"sls": ("kubesalt.pki",)},
            "state_timeout",
        ),
    ),  # fmt: skip
)
RENEW_KUBECONFIGS = Phase(
    "kubeconfigs",
    "the kubeconfigs embed the renewed client certificates",
    (
        Step(
            "renewed",
            "nodes",
            "rewrite the kubeconfigs",
            {"sls": ("kubesalt.kubeconfig",), "after_renewal": True},
            300,
        ),
    ),  # fmt: skip
)
RENEW_KUBELET = Phase(
    "kubelet",
    "the kubelet's state applied (its kubelet.conf renewed)",
    (
        Step(
            "renewed",
            "nodes",
            "the kubelet",
            {"sls": ("kubesalt.kubelet",), "after_renewal": True},
            600,
        ),
    ),  # fmt: skip
    roles=KUBELET,
)
ETCD_HEALTH = Phase(
    "etcd-health",
    "the node's etcd member serves the certificate on its disk; every member healthy",
    (Step("etcd_renewed", "nodes", "etcd serves the renewed certificate", timeout="timeout"),),
    roles=ETCD,
    why="the next member restarts only once this one is back: quorum holds",
)
RENEW_MEMBER_PHASES = (
    RENEW_CERTS,
    RENEW_KUBECONFIGS,
    Phase(
        "static-pods",
        "the node's static pods rewritten: their config digest changes, the kubelet restarts them",
        (
            Step(
                "renewed",
                "nodes",
                "rewrite the static pods",
                {"role_sls": STATIC_POD_SLS, "after_renewal": True},
                600,
            ),
        ),  # fmt: skip
        roles=MEMBERS,
    ),
    RENEW_KUBELET,
    ETCD_HEALTH,
    WAIT_CONTROL_PLANE,
)
RENEW_WORKER_PHASES = (RENEW_CERTS, RENEW_KUBECONFIGS, RENEW_KUBELET)

RENEW_CERTIFICATES = (
    Phase(
        "preflight",
        "no other orchestration runs; the nodes' minions answer; the CA minion's pillar refreshed",
        (
            Step("minion_answers", "nodes", "minion answers test.ping", timeout=60, retry=2),
            Step("pillar_refreshed", "ca", "refresh the CA minion's pillar", timeout=60),
        ),
        why="a silent node is named before anything is renewed; the CA signs under the "
        "policies of the current inventory",
    ),
    Phase(
        "members",
        "control-plane and etcd nodes, one at a time: certs, kubeconfigs, static-pods, "
        "kubelet, etcd-health, wait-control-plane",
        (
            Step(
                "in_turn",
                "nodes",
                "renew one node after the other",
                {"phases": RENEW_MEMBER_PHASES},
            ),
        ),  # fmt: skip
        roles=MEMBERS,
        why="a member's static pods restart when their certificates change: one member "
        "at a time keeps etcd's quorum and the API up",
    ),
    Phase(
        "workers",
        "the other nodes together: certs, kubeconfigs, kubelet",
        (
            Step(
                "together",
                "nodes",
                "renew the workers together",
                {"phases": RENEW_WORKER_PHASES, "without_roles": MEMBERS},
            ),
        ),  # fmt: skip
        why="a worker restarts no static pod: all of them at once",
    ),
)

# -- upgrade and downgrade ------------------------------------------------------------------
# upgrade.sh (downgrade.sh) moved the bootstrap node's Salt first: its virtualenv, its
# minion's saltenv, the salt-master's configuration, the register's current archive. The
# orchestration, run on the new saltenv, moves the rest; each node's Kubernetes release is
# recorded in the inventory as the target just before its files are applied, so the nodes
# not reached yet keep rendering the release they run (docs/upgrade.md).
RELEASE = Phase(
    "release",
    "the node's Kubernetes release recorded as the target: its files render at it",
    (Step("release_recorded", "nodes", "record the target release"),),
)


def _drain(sls) -> Phase:
    """Drain the node when its dry run of `sls` would change something."""
    return Phase(
        "drain",
        "the Node object cordoned and its pods evicted (kubectl drain), where its states "
        "would change something",
        (
            Step(
                "drained",
                "ca",
                "drain the Node object",
                {"if_changing": tuple(sls)},
                "drain_timeout",
            ),
        ),  # fmt: skip
        roles=KUBELET,
        why="a node already moved (a second run) keeps its pods",
    )


UNCORDON = Phase(
    "uncordon",
    "the Node object schedulable again (kubectl uncordon)",
    (Step("uncordoned", "ca", "uncordon the Node object", timeout=60),),
    roles=KUBELET,
)
# Every etcd member is reached here first by an upgrade (RELEASE first); a downgrade
# reaches them last, each recorded by the workers or control-plane stage already.
ETCD_MEMBER_PHASES = (
    Phase(
        "etcd-pod",
        "the node's etcd static pod (and its certificates) from the new Salt tree",
        (_apply("nodes", ETCD_SLS, "the etcd static pod"),),
    ),
    ETCD_HEALTH,
)
CONTROL_PLANE_SLS = ("kubesalt.roles.control-plane", "kubesalt.keepalived")
# A control-plane node is always an etcd member (stacked etcd): the upgrade recorded its
# release in the etcd stage, before; the downgrade records it here (RELEASE first).
CONTROL_PLANE_NODE_PHASES = (
    _drain(CONTROL_PLANE_SLS),
    Phase(
        "static-pods",
        "the control-plane static pods, kubeconfigs, containerd and the kubelet, keepalived",
        (_apply("nodes", CONTROL_PLANE_SLS, "the control-plane files and keepalived"),),
    ),
    WAIT_CONTROL_PLANE,
    UNCORDON,
)
UPGRADE_WORKER_PHASES = (
    RELEASE,
    _drain(KUBELET_SLS),
    Phase(
        "kubelet",
        "the node's containerd and kubelet: packages, configuration, restart",
        (_apply("nodes", KUBELET_SLS, "containerd and the kubelet"),),
    ),
    UNCORDON,
)


def _in_turn(name, summary, phases, roles, why, without=frozenset()):
    args = {"phases": phases, **({"without_roles": without} if without else {})}
    return Phase(name, summary, (Step("in_turn", "nodes", f"{name}, one node after the other",
                                      args),), roles=roles, why=why)  # fmt: skip


UPGRADE_PREFLIGHT = Phase(
    "preflight",
    "no other orchestration runs; every declared node is in the run and its minion "
    "answers; the plan's checks of the nodes and etcd asked again",
    (
        Step("minion_answers", "nodes", "minion answers test.ping", timeout=90, retry=2),
        Step("verdict", "master", "the plan's checks of the cluster", timeout=60),
    ),
    why="the verdict upgrade.sh printed may be minutes old: a node or an etcd member that "
    "stopped answering since is named before anything changes",
)
UPGRADE_SALT = Phase(
    "salt",
    "every other minion on the new Salt tree and Salt virtualenv, answering again; "
    "modules synced, pillars refreshed",
    (
        Step("minions_moved", "nodes", "install the new salt-minion", timeout=900),
        Step("minion_answers", "nodes", "minion answers test.ping", timeout=90, retry=2),
        SYNCED,
        Step("pillar_refreshed", "nodes", "refresh the pillars", timeout=60),
    ),
    why="the bootstrap node's minion moved with upgrade.sh; the others install the new "
    "Salt virtualenv only where their dry run of the minion install would change something",
)


def _names(phases) -> str:
    return ", ".join(p.name for p in phases)


def _kubernetes_stages(downgrade: bool) -> tuple[Phase, ...]:
    """etcd, control-plane, workers, addons; for a downgrade in reverse, each node's
    release recorded in the first stage that reaches it."""
    etcd = (RELEASE,) * (not downgrade) + ETCD_MEMBER_PHASES
    control_plane = (RELEASE,) * downgrade + CONTROL_PLANE_NODE_PHASES
    stages = (
        _in_turn("etcd", f"etcd members, one at a time, the CA minion's last: {_names(etcd)}",
                 etcd, ETCD,
                 "a member restarts on its new image only once the previous one is back "
                 "and every member is healthy: quorum holds"),
        _in_turn("control-plane", f"control-plane nodes, one at a time, the CA minion last: "
                 f"{_names(control_plane)}", control_plane, CP,
                 "the API stays served by the others while one node restarts its static pods"),
        _in_turn("workers", "the nodes with a kubelet and no control plane (etcd-only nodes "
                 f"too), one at a time: {_names(UPGRADE_WORKER_PHASES)}",
                 UPGRADE_WORKER_PHASES, KUBELET,
                 "one node's pods at a time are evicted", without=CP),
        ADDONS_PHASE,
    )  # fmt: skip
    return stages[::-1] if downgrade else stages


CLUSTER_RELEASE = Phase(
    "cluster-release",
    "every node's recorded Kubernetes release is the target",
    (Step("release_checked", "nodes", "every node runs the target release"),),
    why="a skipped phase leaves nodes on the old release: the run says so and fails",
)
UPGRADE = (UPGRADE_PREFLIGHT, UPGRADE_SALT, *_kubernetes_stages(False), CLUSTER_RELEASE)
# Back to the previous archive: no kubelet or kube-proxy newer than the API server, so the
# Kubernetes stages go in reverse (kubesalt.upgrade.plan.stages gives the same order).
DOWNGRADE = (UPGRADE_PREFLIGHT, UPGRADE_SALT, *_kubernetes_stages(True), CLUSTER_RELEASE)

ORCHESTRATIONS = {"bootstrap": BOOTSTRAP, "deploy_node": DEPLOY_NODE, "remove_node": REMOVE_NODE,
                  "renew_certificates": RENEW_CERTIFICATES, "addons": ADDONS,
                  "restore": RESTORE, "upgrade": UPGRADE, "downgrade": DOWNGRADE}  # fmt: skip
# Orchestrations that move the whole cluster between archives (pillar kubernetes_version).
MOVES_THE_CLUSTER = ("upgrade", "downgrade")
# deploy_node, renew_certificates and the upgrades take several nodes (pillar nodes); the
# others one.
MULTI_NODE = ("deploy_node", "renew_certificates", *MOVES_THE_CLUSTER)
# Orchestrations that act on every declared node when the pillar names none.
EVERY_NODE_BY_DEFAULT = ("renew_certificates", *MOVES_THE_CLUSTER)
# Orchestrations that take a node no longer declared: remove_node finishes its removal.
FINISHES_UNDECLARED = ("remove_node",)


def _nested(phase: Phase) -> tuple[Phase, ...]:
    """The phases a step of `phase` runs for each node (renew_certificates)."""
    return tuple(p for step in phase.steps for p in step.args.get("phases", ()))


def phase_names(orchestration: str) -> list[str]:
    """Every phase name `skip_phases` may give: the table's, then the nested ones."""
    names = []
    for phase in phases_of(orchestration):
        for name in [phase.name, *(p.name for p in _nested(phase))]:
            if name not in names:
                names.append(name)
    return names


def phases_of(orchestration: str) -> tuple[Phase, ...]:
    try:
        return ORCHESTRATIONS[orchestration]
    except KeyError:
        raise OrchestrateError(
            f"unknown orchestration {orchestration!r}; valid: {', '.join(ORCHESTRATIONS)}"
        ) from None
