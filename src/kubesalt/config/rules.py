"""Semantic rules of bootstrap.yaml, run on the normalized document.

Each rule is a small function `rule(cfg) -> list[Problem]`. A value that failed its
structural check is `INVALID` and every rule skips it, so one mistake is reported once.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import netaddr

from kubesalt import keyalgorithms, names, ports
from kubesalt.config.problems import Problem
from kubesalt.config.schema import API_VERSION, INVALID, KIND, default_of
from kubesalt.kubeadm import images

# kube-apiserver refuses larger service ranges (20 host bits at most for IPv6,
# and an IPv4 range shorter than /12 is rejected).
MIN_SERVICE_PREFIX = {4: 12, 6: 108}
# kube-controller-manager's default node CIDR mask, and its limit of 2^16 node CIDRs.
NODE_CIDR_MASK = {4: 24, 6: 64}
MAX_NODE_CIDR_BITS = 16
VRRP_PASSWORD_MAX = 8
MTU_RANGE = (1280, 9216)

# A DNS host name (apiServer.host): case does not matter in DNS, so it is not held to the
# lowercase node-name rule (kubesalt.names).
_DNS_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*", re.IGNORECASE)
_K8S_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def is_dns_name(name: str) -> bool:
    """Whether `name` is a DNS host name (RFC 1123, any case)."""
    return len(name) <= 253 and _DNS_NAME.fullmatch(name) is not None


def _valid(*values) -> bool:
    return all(value is not INVALID and value is not None for value in values)


def parse_cidr(path: str, text: str, problems: list[Problem]) -> netaddr.IPNetwork | None:
    """Parse a CIDR written as network/prefix; report malformed ones and host bits."""
    if "/" not in text:
        problems.append(
            Problem(
                path,
                "is not a CIDR (no /prefix)",
                "write it as network/prefix, e.g. 10.0.0.0/24",
                text,
            )
        )
        return None
    try:
        address, prefix = text.split("/", 1)
        # netaddr accepts shorthand ('10/8') and netmasks; require address/prefix.
        netaddr.IPAddress(address, flags=netaddr.INET_PTON)
        if not prefix.isdigit():
            raise ValueError(prefix)
        network = netaddr.IPNetwork(text)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        problems.append(
            Problem(
                path, "is not a valid CIDR", "write it as network/prefix, e.g. 10.0.0.0/24", text
            )
        )
        return None
    if network.ip != network.network:
        problems.append(
            Problem(path, "has host bits set", f"use the network address: {network.cidr}", text)
        )
    return network.cidr


def _cidr_list(cfg, plane: str, problems: list[Problem]) -> list[tuple[str, netaddr.IPNetwork]]:
    """Parse networks.<plane>.cidr; report duplicates and mixed address families."""
    values = cfg["networks"][plane]["cidr"] if _valid(cfg["networks"][plane]) else INVALID
    if not _valid(values):
        return []
    path = f"networks.{plane}.cidr"
    if not values:
        problems.append(Problem(path, "is empty", "give at least one CIDR", values))
        return []
    parsed = []
    seen = {}
    for index, text in enumerate(values):
        item_path = f"{path}[{index}]" if len(values) > 1 else path
        network = parse_cidr(item_path, text, problems)
        if network is None:
            continue
        if network in seen:
            problems.append(
                Problem(item_path, f"duplicates {seen[network]}", "list each CIDR once", text)
            )
            continue
        seen[network] = item_path
        parsed.append((item_path, network))
    versions = {network.version for _, network in parsed}
    if len(versions) > 1:
        problems.append(
            Problem(
                path,
                "mixes IPv4 and IPv6 networks",
                "use one address family per plane (kubesalt is single-stack)",
                values,
            )
        )
    return parsed


def check_identity(cfg) -> list[Problem]:
    problems = []
    if _valid(cfg["apiVersion"]) and cfg["apiVersion"] != API_VERSION:
        problems.append(
            Problem(
                "apiVersion",
                "is not supported",
                f"set apiVersion: {API_VERSION}",
                cfg["apiVersion"],
            )
        )
    if _valid(cfg["kind"]) and cfg["kind"] != KIND:
        problems.append(Problem("kind", "is not supported", f"set kind: {KIND}", cfg["kind"]))
    return problems


def _single(path: str, value, problems: list[Problem]) -> netaddr.IPNetwork | None:
    return parse_cidr(path, value, problems) if _valid(value) else None


def check_networks(cfg) -> list[Problem]:
    """CIDR syntax, families, sizes and overlaps of every network."""
    problems: list[Problem] = []
    if not _valid(cfg["networks"]):
        return problems
    planes = _cidr_list(cfg, "controlPlane", problems)
    if _valid(cfg["networks"]["workloadPlane"]) and cfg["networks"]["workloadPlane"]["cidr"]:
        planes += _cidr_list(cfg, "workloadPlane", problems)
    pods = _single("networks.pods", cfg["networks"]["pods"], problems)
    services = _single("networks.services", cfg["networks"]["services"], problems)
    if services is not None:
        problems += _check_service_size(services)
    if pods is not None:
        problems += _check_pod_size(pods)
    if pods is not None and services is not None and pods.version != services.version:
        problems.append(
            Problem(
                "networks.services",
                f"is IPv{services.version} while networks.pods is IPv{pods.version}",
                "use the same address family for pods and services",
                str(services),
            )
        )
    named = [("networks.pods", pods), ("networks.services", services)]
    problems += _check_overlaps([(p, n) for p, n in named if n is not None], planes)
    return problems


def _check_service_size(services: netaddr.IPNetwork) -> list[Problem]:
    minimum = MIN_SERVICE_PREFIX[services.version]
    if services.prefixlen < minimum:
        return [
            Problem(
                "networks.services",
                f"is larger than kube-apiserver accepts (shorter than /{minimum})",
                f"use a /{minimum} or smaller network, e.g. {services.network}/{minimum}",
                str(services),
            )
        ]
    # The 10th address is the cluster DNS; IPv4 also loses its broadcast address.
    usable = services.size - (1 if services.version == 4 else 0)
    if usable <= 10:
        return [
            Problem(
                "networks.services",
                "is too small to hold its 10th address (the cluster DNS service)",
                "use at least a /28 (IPv4) or /124 (IPv6)",
                str(services),
            )
        ]
    return []


def _check_pod_size(pods: netaddr.IPNetwork) -> list[Problem]:
    node_mask = NODE_CIDR_MASK[pods.version]
    if pods.prefixlen > node_mask:
        return [
            Problem(
                "networks.pods",
                f"is smaller than one node's pod range (/{node_mask})",
                f"use a /{node_mask} or larger network, e.g. {pods.supernet(node_mask)[0]}",
                str(pods),
            )
        ]
    if node_mask - pods.prefixlen > MAX_NODE_CIDR_BITS:
        return [
            Problem(
                "networks.pods",
                f"would hold more than 2^{MAX_NODE_CIDR_BITS} node ranges of /{node_mask}, "
                "which kube-controller-manager refuses",
                f"use a /{node_mask - MAX_NODE_CIDR_BITS} or smaller network",
                str(pods),
            )
        ]
    return []


def _check_overlaps(cluster_networks, planes) -> list[Problem]:
    """Pods and services must overlap neither each other nor any node network."""
    problems = []
    for index, (path, network) in enumerate(cluster_networks):
        others = cluster_networks[index + 1 :] + planes
        for other_path, other in others:
            if network.version == other.version and (network in other or other in network):
                problems.append(
                    Problem(
                        path,
                        f"overlaps {other_path} ({other})",
                        "choose ranges that do not overlap the node networks or each other",
                        str(network),
                    )
                )
    return problems


def _control_plane_networks(cfg) -> list[netaddr.IPNetwork] | None:
    """The control-plane networks, or None when they have problems of their own."""
    problems: list[Problem] = []
    networks = [network for _, network in _cidr_list(cfg, "controlPlane", problems)]
    return None if problems or not networks else networks


def check_api_server(cfg) -> list[Problem]:
    problems: list[Problem] = []
    api = cfg["apiServer"]
    if not _valid(api):
        return problems
    if _valid(api["port"]) and not 1 <= api["port"] <= 65535:
        problems.append(
            Problem(
                "apiServer.port",
                "is not a TCP port",
                f"use a port in 1-65535 (default {default_of('apiServer.port')})",
                api["port"],
            )
        )
    elif _valid(api["port"]):
        problems += _check_api_port_is_free(api["port"])
    keepalived = api["keepalived"]
    enabled = _valid(keepalived) and keepalived["enabled"] is True
    if _valid(keepalived):
        problems += _check_keepalived(keepalived, enabled)
    networks = _control_plane_networks(cfg) if _valid(cfg["networks"]) else None
    if _valid(api["host"]) and networks is not None:
        problems += _check_api_host(api["host"], enabled, networks)
    return problems


def _check_api_port_is_free(port: int) -> list[Problem]:
    """apiServer.port must not be another port of the matrix: the bootstrap node has every
    role, so kube-apiserver would fight etcd, the kubelet or nginx for it."""
    clashes = ports.setting_clashes("apiServer.port", port)
    if not clashes:
        return []
    taken = ", ".join(f"{c.name} ({c.protocol} {c.port})" for c in clashes)
    return [
        Problem(
            "apiServer.port",
            f"is already the port of {taken} in the port matrix (docs/ports.md)",
            f"choose a port no other kubesalt listener uses (default {default_of('apiServer.port')})",
            port,
        )
    ]


def _check_keepalived(keepalived, enabled: bool) -> list[Problem]:
    problems = []
    vrid = keepalived["virtualRouterId"]
    if _valid(vrid) and not 1 <= vrid <= 255:
        problems.append(
            Problem(
                "apiServer.keepalived.virtualRouterId",
                "is outside 1-255",
                "pick a VRRP router ID in 1-255 not used by another VRRP group on this network",
                vrid,
            )
        )
    password = keepalived["authPassword"]
    if _valid(password) and len(password) > VRRP_PASSWORD_MAX:
        problems.append(
            Problem(
                "apiServer.keepalived.authPassword",
                f"is {len(password)} characters; VRRP PASS authentication keeps only "
                f"{VRRP_PASSWORD_MAX}",
                f"use at most {VRRP_PASSWORD_MAX} characters",
                "*" * len(password),
            )
        )
    return problems


def _check_api_host(host: str, keepalived: bool, networks) -> list[Problem]:
    try:
        address = netaddr.IPAddress(host, flags=netaddr.INET_PTON)
    except (netaddr.AddrFormatError, ValueError):
        address = None
    if address is None:
        if not is_dns_name(host):
            return [
                Problem(
                    "apiServer.host",
                    "is neither an IP address nor a valid DNS name",
                    "give the API virtual IP or your load balancer's address or name",
                    host,
                )
            ]
        if keepalived:
            return [
                Problem(
                    "apiServer.host",
                    "is a name, but keepalived needs an IP address for the virtual IP",
                    "give a free IP in a control-plane CIDR, or set "
                    "apiServer.keepalived.enabled: false to use your own load balancer",
                    host,
                )
            ]
        return []
    containing = [network for network in networks if address in network]
    for network in containing:
        reserved = {network.network: "network"}
        if network.version == 4 and network.prefixlen < 31:
            reserved[network.broadcast] = "broadcast"
        if address in reserved:
            return [
                Problem(
                    "apiServer.host",
                    f"is the {reserved[address]} address of {network}",
                    "use a free host address of that network",
                    host,
                )
            ]
    if keepalived and not containing:
        tried = ", ".join(str(network) for network in networks) or "none"
        return [
            Problem(
                "apiServer.host",
                f"is outside every control-plane CIDR ({tried}), so keepalived cannot hold it",
                "use a free IP inside networks.controlPlane.cidr, or set "
                "apiServer.keepalived.enabled: false with your own load balancer",
                host,
            )
        ]
    return []


def check_workload_mtu(cfg) -> list[Problem]:
    plane = cfg["networks"]["workloadPlane"] if _valid(cfg["networks"]) else INVALID
    if not _valid(plane) or not _valid(plane["mtu"]):
        return []
    low, high = MTU_RANGE
    if not low <= plane["mtu"] <= high:
        return [
            Problem(
                "networks.workloadPlane.mtu",
                f"is outside {low}-{high}",
                f"use the MTU of the workload-plane interfaces ({low}-{high}), or remove the key",
                plane["mtu"],
            )
        ]
    return []


def check_ca_and_archives(cfg) -> list[Problem]:
    problems = []
    if (
        _valid(cfg["ca"])
        and _valid(cfg["ca"]["minion"])
        and not names.is_node_name(cfg["ca"]["minion"])
    ):
        problems.append(
            Problem(
                "ca.minion",
                f"is not a valid node name ({names.RULE})",
                "use the Salt minion ID of the bootstrap node, its node name, e.g. bootstrap",
                cfg["ca"]["minion"],
            )
        )
    archives = cfg["archives"]
    if _valid(archives) and not archives:
        problems.append(
            Problem(
                "archives",
                "is empty",
                "list the kubesalt ISO file(s) or extracted ISO directories",
                [],
            )
        )
    return problems


def check_kubernetes(cfg) -> list[Problem]:
    problems = []
    kube = cfg["kubernetes"]
    if not _valid(kube):
        return problems
    if _valid(kube["version"]) and not _K8S_VERSION.fullmatch(kube["version"]):
        problems.append(
            Problem(
                "kubernetes.version",
                "is not a Kubernetes version",
                "write it as v1.33.5, or remove it to use the archive's version",
                kube["version"],
            )
        )
    for key in ("clusterName", "dnsDomain"):
        if _valid(kube[key]) and not names.is_dns_subdomain(kube[key]):
            problems.append(
                Problem(
                    f"kubernetes.{key}",
                    "is not a valid DNS name (RFC 1123)",
                    "use lowercase letters, digits, '-' and '.'",
                    kube[key],
                )
            )
    return problems


def check_proxies(cfg) -> list[Problem]:
    problems = []
    proxies = cfg["proxies"]
    if not _valid(proxies):
        return problems
    for key in ("http", "https"):
        url = proxies[key]
        if not _valid(url):
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(
                Problem(
                    f"proxies.{key}",
                    "is not an http(s) URL",
                    "write it as http://proxy.example:3128",
                    url,
                )
            )
    return problems


def _release(cfg) -> str:
    """The cluster's Kubernetes release: kubernetes.version when it is a valid one, else
    the archive's."""
    kube = cfg["kubernetes"]
    if _valid(kube) and _valid(kube["version"]) and _K8S_VERSION.fullmatch(kube["version"]):
        return kube["version"]
    return images.kubernetes_version()


def _pki_algorithm_problems(algorithm: str, release: str) -> list[Problem]:
    if algorithm not in keyalgorithms.ALGORITHMS:
        return [Problem("pki.algorithm", "is not supported",
                        "use one of " + ", ".join(keyalgorithms.NAMES), algorithm)]  # fmt: skip
    if not keyalgorithms.accepts(algorithm, release):
        since = keyalgorithms.get(algorithm).first_minor
        return [Problem("pki.algorithm", f"is not accepted by Kubernetes {release} (kubeadm's "
                        f"encryptionAlgorithm has it since {since})", "use one of "
                        + ", ".join(keyalgorithms.accepted_by(release))
                        + f", or Kubernetes {since} or later (kubernetes.version, or an "
                        "archive built for it)", algorithm)]  # fmt: skip
    return []


def check_pki(cfg) -> list[Problem]:
    problems = []
    pki = cfg["pki"]
    if not _valid(pki):
        return problems
    if _valid(pki["algorithm"]):
        problems += _pki_algorithm_problems(pki["algorithm"], _release(cfg))
    for key in ("certificateValidityDays", "caCertificateValidityDays"):
        if _valid(pki[key]) and pki[key] < 1:
            problems.append(
                Problem(f"pki.{key}", "must be at least 1", "give a number of days", pki[key])
            )
    leaf, ca = pki["certificateValidityDays"], pki["caCertificateValidityDays"]
    if _valid(leaf, ca) and leaf >= 1 and ca >= 1 and leaf > ca:
        problems.append(
            Problem(
                "pki.certificateValidityDays",
                f"outlives the CA certificates ({ca} days)",
                "keep it at most pki.caCertificateValidityDays",
                leaf,
            )
        )
    problems += _renew_before_problems(pki)
    return problems


def _renew_before_problems(pki) -> list[Problem]:
    """pki.renewBeforeDays: at least 1 day, and below the leaf validity (else every
    certificate is due as soon as it is issued, and every run issues it again)."""
    window, leaf = pki["renewBeforeDays"], pki["certificateValidityDays"]
    if not _valid(window):
        return []
    if window < 1:
        return [Problem("pki.renewBeforeDays", "must be at least 1", "give a number of days",
                        window)]  # fmt: skip
    if _valid(leaf) and window >= leaf:
        return [
            Problem(
                "pki.renewBeforeDays",
                f"is not below pki.certificateValidityDays ({leaf}): every certificate would "
                "be renewed on every run",
                "give fewer days, or leave it out (default: 90, or a quarter of the validity "
                "when that is shorter); to renew everything once, run renew_certificates "
                "with pillar force: true",
                window,
            )
        ]
    return []


RULES = (
    check_identity,
    check_networks,
    check_workload_mtu,
    check_api_server,
    check_ca_and_archives,
    check_kubernetes,
    check_proxies,
    check_pki,
)
