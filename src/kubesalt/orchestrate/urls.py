"""Every URL the orchestrations build, in one place (IPv6 hosts in brackets).

Kept together so that a project-wide URL helper can replace them in one edit.
"""

from __future__ import annotations

from kubesalt.kubeadm.model import join_host_port

ETCD_PEER_PORT = 2380
REPOSITORY_PORT = 8443  # the bootstrap node's nginx (kubesalt.nginx)


def etcd_peer_url(ip: str) -> str:
    """`https://<ip>:2380`: the peer URL a joining etcd member is added with."""
    return f"https://{join_host_port(ip, ETCD_PEER_PORT)}"


def repository_url(master_ip: str, saltenv: str, port: int = REPOSITORY_PORT) -> str:
    """`https://<bootstrap>:8443/<saltenv>`: the bootstrap node's archive over HTTPS."""
    return f"https://{join_host_port(master_ip, port)}/{saltenv}"


def wheel_url(master_ip: str, saltenv: str, port: int = REPOSITORY_PORT) -> str:
    return f"{repository_url(master_ip, saltenv, port)}/wheels/"


def apt_url(master_ip: str, saltenv: str, port: int = REPOSITORY_PORT) -> str:
    return f"{repository_url(master_ip, saltenv, port)}/deb"


def readyz_url(ip: str, port: int) -> str:
    """`https://<ip>:<apiServer.port>/readyz` of one node's kube-apiserver."""
    if not ip:
        raise ValueError("no control-plane IP to build the readyz URL from")
    return f"https://{join_host_port(ip, int(port))}/readyz"
