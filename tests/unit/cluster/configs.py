"""Configurations and inventories the kubesalt.cluster tests render from: normalized by
kubesalt.config.validate, as the orchestration gets them."""

from kubesalt import config, roles
from kubesalt.cluster.model import cluster_nodes

FAMILIES = {
    "ipv4": {
        "controlPlane": "10.0.0.0/24",
        "pods": "10.233.0.0/16",
        "services": "10.96.0.0/12",
        "host": "10.0.0.100",
    },
    "ipv6": {
        "controlPlane": "fd00:1::/64",
        "pods": "fd00:233::/56",
        "services": "fd00:96::/112",
        "host": "fd00:1::100",
    },
}
DNS_HOST = "api.example.org"

# Three control-plane nodes (stacked etcd, the first also the CA and bootstrap node), one
# worker and a CA-only node that runs no kubelet. Roles come from kubesalt.roles.
NODES = cluster_nodes(
    {
        "cp1": roles.BOOTSTRAP_NODE_ROLES,
        "cp2": (roles.CONTROL_PLANE, roles.ETCD),
        "cp3": (roles.CONTROL_PLANE, roles.ETCD),
        "worker1": (roles.NODE,),
        "ca-only": (roles.CA,),
    }
)


def cluster_config(
    family: str = "ipv4", *, host: str | None = None, port: int | None = None, **keys
) -> dict:
    """A validated configuration of `family`; `host` and `port` replace the API endpoint's
    (a DNS name turns keepalived off), `keys` set other top-level sections."""
    values = FAMILIES[family]
    api_server: dict = {"host": host or values["host"]}
    if port is not None:
        api_server["port"] = port
    if host and host[0].isalpha():
        api_server["keepalived"] = {"enabled": False}
    document = {
        "apiVersion": "kubesalt.io/v1alpha1",
        "kind": "BootstrapConfiguration",
        "networks": {
            "controlPlane": {"cidr": [values["controlPlane"]]},
            "pods": values["pods"],
            "services": values["services"],
        },
        "apiServer": api_server,
        "ca": {"minion": "cp1"},
        "archives": ["/srv/kubesalt.iso"],
        **keys,
    }
    cfg, problems = config.validate(document)
    assert problems == [], problems
    return cfg
