"""The Salt mine functions kubesalt publishes, and one read of them per Salt job.

Every node publishes its two IPs (pillar/kubesalt/mine.sls); the CA minion also publishes
its CA certificates and the service-account public key (ext_pillar kubesalt_pki). A
highstate needs them in many places (firewall sources, keepalived peers, etcd members,
kubeconfigs, the CA check of the CA minion): each place asked the master on its own, a
round trip each (0.3 to 1.6 s on a loaded lab). One job now asks once for every function,
and every kubesalt module of that job reads the same answer: the modules of one Salt job
share its loader's ``__context__``.
"""

from __future__ import annotations

from collections.abc import Callable

CONTROL_PLANE_IP = "control_plane_ip"
WORKLOAD_PLANE_IP = "workload_plane_ip"
# The CA minion's mine function publishing each CA certificate, by CA kind.
CA_CERTIFICATES = {
    "ca": "kubesalt_ca",
    "etcd-ca": "kubesalt_etcd_ca",
    "front-proxy-ca": "kubesalt_front_proxy_ca",
}
SA_PUB = "kubesalt_sa_pub"
FUNCTIONS = (CONTROL_PLANE_IP, WORKLOAD_PLANE_IP, *CA_CERTIFICATES.values(), SA_PUB)
CONTEXT_KEY = "kubesalt.mine"


def published(mine_get: Callable, context: dict, function: str) -> dict:
    """{minion: data} that the mine holds for `function` (one of FUNCTIONS), from the one
    `mine_get("*", FUNCTIONS)` request of this job (`context` is the loader's
    ``__context__``); a copy, the caller may change it."""
    if function not in FUNCTIONS:
        raise ValueError(f"mine function {function!r} is not kubesalt's: {', '.join(FUNCTIONS)}")
    if CONTEXT_KEY not in context:
        # Salt's mine.get: a list of functions gives {function: {minion: data}}.
        found = mine_get("*", list(FUNCTIONS)) or {}
        context[CONTEXT_KEY] = {name: dict(found.get(name) or {}) for name in FUNCTIONS}
    return dict(context[CONTEXT_KEY][function])
