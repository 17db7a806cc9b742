"""The node inventory: which machines are in the cluster, how to reach them, their roles.

The bootstrap node is the source of truth: one YAML file per node under
/etc/kubesalt/nodes/<name>.yaml, written atomically, validated before it is written.
SSH credentials stay in these root-only files; only names and roles reach the pillar.

The inventory also records, once, the node that plays `kubeadm init` (`first-node`): its
etcd starts a new cluster and it alone gets `super-admin.conf`, so a later declaration must
never hand that to another node (docs/inventory.md).

A node's file may record the Kubernetes release the node runs (`kubernetes_version`),
written by `record_kubernetes_version` when a node is moved to another release one node at a
time; a node without it runs the cluster's release (kubesalt.kubeadm.releases).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import netaddr
import yaml

from kubesalt import hostkeys, names
from kubesalt import roles as _roles
from kubesalt.config.problems import InvalidConfig, Problem
from kubesalt.errors import KubesaltError
from kubesalt.kubeadm import images

DEFAULT_DIR = "/etc/kubesalt/nodes"
# In the inventory directory, written from the nodes' host keys; salt-ssh checks against it.
KNOWN_HOSTS = "known_hosts"
# In the inventory directory: the node that plays `kubeadm init`, recorded once.
FIRST_NODE_FILE = "first-node"


class InventoryError(KubesaltError):
    """The inventory cannot be read or changed as asked."""


@dataclass(frozen=True)
class Node:
    name: str
    host: str
    roles: tuple[str, ...]
    port: int = 22
    user: str = "root"
    key: str = "/etc/kubesalt/ssh/id_ed25519"
    host_keys: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, compare=False)
    kubernetes_version: str | None = None

    def to_document(self) -> dict:
        ssh = {"host": self.host, "port": self.port, "user": self.user, "key": self.key}
        if self.host_keys:
            ssh["host_keys"] = list(self.host_keys)
        document = {"name": self.name, "ssh": ssh, "roles": list(self.roles)}
        if self.kubernetes_version:
            document["kubernetes_version"] = self.kubernetes_version
        return document


def parse_roles(roles) -> tuple[str, ...]:
    """Roles as given on a command line ('a,b') or as a list; order kept, duplicates dropped."""
    if isinstance(roles, str):
        roles = roles.split(",")
    ordered = []
    for role in roles or ():
        role = str(role).strip()
        if role and role not in ordered:
            ordered.append(role)
    return tuple(ordered)


def check_node(node: Node, cfg: dict, others: list[Node]) -> list[Problem]:
    """Every problem of `node` against the configuration and the nodes already declared."""
    problems = []
    if not names.is_node_name(node.name):
        problems.append(
            Problem(
                "name",
                f"is not a valid node name ({names.RULE})",
                "use the node's host name in lowercase; it becomes its Salt minion ID and "
                "its Kubernetes node name",
                node.name,
            )
        )
    problems += _check_roles(node, cfg)
    problems += _check_ssh(node, cfg)
    for other in others:
        if other.host == node.host:
            problems.append(
                Problem(
                    "ssh.host",
                    f"is already the address of node {other.name}",
                    "give each node its own address",
                    node.host,
                )
            )
    return problems


def _check_roles(node: Node, cfg: dict) -> list[Problem]:
    if not node.roles:
        return [Problem("roles", "is empty", "give at least one of " + _roles.listing(), [])]
    problems = []
    unknown = _roles.unknown(node.roles)
    if unknown:
        problems.append(
            Problem(
                "roles",
                f"has unknown role(s) {', '.join(unknown)}",
                "use " + _roles.listing(),
                list(node.roles),
            )
        )
    ca_minion = cfg["ca"]["minion"]
    misplaced = [r for r in node.roles if r in _roles.CA_NODE_ROLES and node.name != ca_minion]
    if misplaced:
        problems.append(
            Problem(
                "roles",
                f"gives {', '.join(misplaced)} to {node.name}, but only ca.minion ({ca_minion}) holds them",
                f"remove {', '.join(misplaced)}, or change ca.minion in bootstrap.yaml",
                list(node.roles),
            )
        )
    return problems


def _check_ssh(node: Node, cfg: dict) -> list[Problem]:
    problems = []
    try:
        address = netaddr.IPAddress(node.host, flags=netaddr.INET_PTON)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        address = None
    networks = cfg["networks"]["controlPlane"]["cidr"]
    if address is None:
        problems.append(
            Problem(
                "ssh.host",
                "is not an IP address",
                "give the node's control-plane IP (a name could resolve to another interface)",
                node.host,
            )
        )
    elif not any(address in netaddr.IPNetwork(cidr) for cidr in networks):
        problems.append(
            Problem(
                "ssh.host",
                f"is outside every control-plane CIDR ({', '.join(networks)})",
                "give the node's address on the control-plane network, or add its network to "
                "networks.controlPlane.cidr",
                node.host,
            )
        )
    if isinstance(node.port, bool) or not isinstance(node.port, int) or not 1 <= node.port <= 65535:
        problems.append(
            Problem(
                "ssh.port", "is not a TCP port", "use a port in 1-65535 (default 22)", node.port
            )
        )
    if not node.user:
        problems.append(
            Problem("ssh.user", "is empty", "give the SSH user (default root)", node.user)
        )
    if not os.path.isabs(node.key):
        problems.append(
            Problem(
                "ssh.key", "is not an absolute path", "give the private key's full path", node.key
            )
        )
    for key in node.host_keys:
        try:
            hostkeys.parse_public_key(key)
        except hostkeys.HostKeyError as err:
            # The error starts with the key, which the problem line already shows.
            reason = str(err).partition(": ")[2]
            problems.append(
                Problem("ssh.host_keys", reason, "give the node's public host key", key)
            )
    return problems


def node_from_document(document: dict, source: str) -> Node:
    if not isinstance(document, dict) or not isinstance(document.get("ssh"), dict):
        raise InventoryError(
            f"{source}: not a node document (needs name, ssh and roles); remove or fix it"
        )
    ssh = document["ssh"]
    return Node(
        name=str(document.get("name", "")),
        host=str(ssh.get("host", "")),
        port=ssh.get("port", 22),
        user=str(ssh.get("user", "root")),
        key=str(ssh.get("key", Node.key)),
        host_keys=tuple(str(key) for key in ssh.get("host_keys") or ()),
        roles=parse_roles(document.get("roles")),
        kubernetes_version=_recorded_version(document.get("kubernetes_version"), source),
    )


def _recorded_version(value, source: str) -> str | None:
    """A node file's `kubernetes_version`, checked: a supported release, or absent."""
    if value is None:
        return None
    try:
        return images.supported(str(value))
    except KubesaltError as err:
        raise InventoryError(
            f"{source}: kubernetes_version: {err}; record a supported one with "
            "record_kubernetes_version, or remove the key to run the cluster's release"
        ) from None


def load(directory: str = DEFAULT_DIR) -> dict[str, Node]:
    """Every declared node, by name. A missing directory is an empty inventory."""
    root = pathlib.Path(directory)
    if not root.is_dir():
        return {}
    nodes = {}
    for path in sorted(root.glob("*.yaml")):
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise InventoryError(
                f"{path}: cannot be read as YAML ({err}); fix or remove it"
            ) from err
        node = node_from_document(document, str(path))
        if not names.is_node_name(node.name):
            raise InventoryError(
                f"{path}: declares node {node.name!r}, which is not a valid node name "
                f"({names.RULE}); remove the file and declare the node again"
            )
        if path.stem != node.name:
            raise InventoryError(
                f"{path}: declares node {node.name!r}; the file must be named {node.name}.yaml"
            )
        nodes[node.name] = node
    return nodes


def _write_atomically(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# Asks etcd whether the node named is a member: its label (`cp3 (8e9e05c52164694d)`), or
# None; raises KubesaltError when etcd cannot tell.
EtcdMember = Callable[[str], "str | None"]


def _dropped_etcd(current: Node, node: Node, etcd_member: EtcdMember | None) -> list[Problem]:
    """A declaration that takes the etcd role from a node is refused while etcd still lists
    it: the next highstate would stop its member without removing it from the cluster (a
    voter lost; two such nodes lose quorum). Without `etcd_member`, always refused."""
    if _roles.ETCD not in current.roles or _roles.ETCD in node.roles:
        return []
    fix = (
        "remove the node first with salt-run state.orchestrate kubesalt.orchestrate.remove_node "
        f'pillar=\'{{"node": "{node.name}"}}\' (it removes the etcd member, then forgets the '
        "node), then declare it again with its new roles"
    )
    if etcd_member is None:
        return [Problem("roles", f"drops etcd from {node.name}, and etcd cannot be asked "
                        "whether it is still a member", fix, list(node.roles))]  # fmt: skip
    try:
        label = etcd_member(node.name)
    except KubesaltError as err:
        return [Problem("roles", f"drops etcd from {node.name}, and etcd could not say whether "
                        f"it is still a member ({err})", fix, list(node.roles))]  # fmt: skip
    if label is None:
        return []
    return [
        Problem(
            "roles",
            f"drops etcd from {node.name}, still etcd member {label}: a highstate would stop "
            "that member without removing it from the cluster (two such nodes lose quorum)",
            fix + "; or remove the member first (kubesalt_etcd.remove on the CA minion)",
            list(node.roles),
        )
    ]


def declare(
    node: Node,
    cfg: dict,
    directory: str = DEFAULT_DIR,
    replace: bool = False,
    etcd_member: EtcdMember | None = None,
) -> bool:
    """Validate and write a node; return False when the same declaration already exists.

    A node already declared differently is refused unless `replace` is true; a replacement
    that drops the etcd role is refused while `etcd_member` says the node is still a member
    (always, without `etcd_member`). Raises InvalidConfig listing every problem; nothing is
    written then.
    """
    existing = load(directory)
    current = existing.get(node.name)
    if (
        current is not None
        and not node.host_keys
        and (current.host, current.port)
        == (
            node.host,
            node.port,
        )
    ):
        # Declared again without a host key: keep the one recorded for that address.
        node = dataclasses.replace(node, host_keys=current.host_keys)
    if current is not None and node.kubernetes_version is None:
        # The release a node runs is recorded by the upgrade, never declared: keep it.
        node = dataclasses.replace(node, kubernetes_version=current.kubernetes_version)
    if current is not None and current.to_document() == node.to_document():
        return False
    others = [other for other in existing.values() if other.name != node.name]
    problems = check_node(node, cfg, others)
    if current is not None and not replace:
        problems.insert(
            0,
            Problem(
                "name",
                f"is already declared (ssh.host {current.host}, roles {','.join(current.roles)})",
                "choose another name, or pass replace=True to change its declaration",
                node.name,
            ),
        )
    elif current is not None:
        problems += _dropped_etcd(current, node, etcd_member)
    if problems:
        raise InvalidConfig(f"node {node.name}", problems)
    _record_first_node(existing, directory, node.name, node.roles)
    _write_node(node, directory)
    return True


@dataclass(frozen=True)
class FirstNode:
    """The node chosen to play `kubeadm init`. `retired` once it left the inventory or lost
    a role that `kubeadm init` needs: from then on no node plays it (the cluster exists;
    every etcd member joins it), not even a node declared again under the same name."""

    name: str
    retired: bool = False


def _initial_first_node(nodes: dict[str, Node]) -> str | None:
    """The first node of an inventory that has no record yet: the CA minion (the node with
    the `ca` role) when it has control-plane and etcd, as the bootstrap node declared with
    every role does, else the first such node by name (the rule of inventories written
    before the record existed)."""
    candidates = sorted(
        name for name, node in nodes.items() if set(node.roles) >= _roles.INIT_ROLES
    )
    candidates.sort(key=lambda name: _roles.CA not in nodes[name].roles)
    return candidates[0] if candidates else None


def _first_node_path(directory: str) -> pathlib.Path:
    return pathlib.Path(directory) / FIRST_NODE_FILE


def read_first_node(directory: str = DEFAULT_DIR) -> FirstNode | None:
    """The recorded first node, or None when nothing is recorded yet."""
    path = _first_node_path(directory)
    if not path.exists():
        return None
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise InventoryError(f"{path}: cannot be read as YAML ({err}); restore it") from err
    name = document.get("name") if isinstance(document, dict) else None
    retired = document.get("retired", False) if isinstance(document, dict) else None
    if not names.is_node_name(name) or not isinstance(retired, bool):
        raise InventoryError(
            f"{path}: {document!r} is not a first-node record (name: <node>, retired: "
            "true|false); restore it with the name of the node that ran kubeadm init"
        )
    return FirstNode(name, retired)


def _write_first_node(record: FirstNode, directory: str) -> None:
    text = (
        "# The node that plays kubeadm init, recorded once by kubesalt (docs/inventory.md).\n"
        + yaml.safe_dump(dataclasses.asdict(record), sort_keys=False)
    )
    _write_atomically(_first_node_path(directory), text)


def _recorded_or_initial(nodes: dict[str, Node], directory: str) -> FirstNode | None:
    record = read_first_node(directory)
    if record is None:
        initial = _initial_first_node(nodes)
        record = FirstNode(initial) if initial else None
    return record


def first_node(nodes: dict[str, Node], directory: str = DEFAULT_DIR) -> str | None:
    """The node that plays `kubeadm init`: the recorded one while it is declared with the
    roles it needs and not retired; with no record yet, the initial choice; else None."""
    record = _recorded_or_initial(nodes, directory)
    if record is None or record.retired or record.name not in nodes:
        return None
    if not set(nodes[record.name].roles) >= _roles.INIT_ROLES:
        return None
    return record.name


def _record_first_node(
    existing: dict[str, Node], directory: str, name: str, roles: tuple[str, ...] | None
) -> None:
    """Record the first node before node `name` changes to `roles` (None: forgotten). The
    choice made before the change is kept; a first node that loses an init role or leaves
    is retired; with no choice yet, a node with the init roles becomes the first."""
    before = read_first_node(directory)
    record = _recorded_or_initial(existing, directory)
    has_init_roles = roles is not None and set(roles) >= _roles.INIT_ROLES
    if record is None and has_init_roles:
        record = FirstNode(name)
    elif record is not None and record.name == name and not record.retired and not has_init_roles:
        record = FirstNode(name, retired=True)
    if record is not None and record != before:
        _write_first_node(record, directory)


def _node_file(name, directory: str) -> pathlib.Path:
    """The file of node `name`: the name is checked first, so that it never leaves the
    inventory directory (`../bootstrap` would name /etc/kubesalt/bootstrap.yaml)."""
    return pathlib.Path(directory) / f"{names.check_node_name(name)}.yaml"


def _write_node(node: Node, directory: str) -> None:
    path = _node_file(node.name, directory)
    _write_atomically(path, yaml.safe_dump(node.to_document(), sort_keys=False))
    write_known_hosts(directory)


def record_host_keys(name: str, keys, directory: str = DEFAULT_DIR) -> bool:
    """Record the host keys read from a declared node; False when they are already recorded."""
    _node_file(name, directory)
    node = load(directory).get(name)
    if node is None:
        raise InventoryError(f"node {name} is not declared; declare it first")
    keys = tuple(sorted(hostkeys.parse_public_key(key) for key in keys))
    if node.host_keys == keys:
        return False
    _write_node(dataclasses.replace(node, host_keys=keys), directory)
    return True


def known_hosts_path(directory: str = DEFAULT_DIR) -> str:
    return os.path.join(directory, KNOWN_HOSTS)


def write_known_hosts(directory: str = DEFAULT_DIR) -> bool:
    """Write the known_hosts file of the declared nodes' host keys; False when unchanged."""
    text = hostkeys.known_hosts(
        (node.host, node.port, node.host_keys) for node in load(directory).values()
    )
    path = pathlib.Path(known_hosts_path(directory))
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    _write_atomically(path, text)
    return True


def forget(name: str, directory: str = DEFAULT_DIR) -> bool:
    """Remove a node from the inventory; return False when it was not there. Forgetting
    the first node retires it: no other node ever plays `kubeadm init` after it."""
    path = _node_file(name, directory)
    if not path.exists():
        return False
    _record_first_node(load(directory), directory, name, None)
    path.unlink()
    write_known_hosts(directory)
    return True


def record_kubernetes_version(name: str, version: str, directory: str = DEFAULT_DIR) -> bool:
    """Record that node `name` runs Kubernetes `version` (a supported release, `v1.34.2`);
    False when it is already recorded."""
    _node_file(name, directory)
    node = load(directory).get(name)
    if node is None:
        raise InventoryError(f"node {name} is not declared; declare it first")
    version = _recorded_version(version, f"Kubernetes version of node {name}")
    if node.kubernetes_version == version:
        return False
    _write_node(dataclasses.replace(node, kubernetes_version=version), directory)
    return True


def pillar_nodes(nodes: dict[str, Node]) -> dict[str, dict]:
    """What the pillar may show of the inventory: names, roles and, when recorded, the
    Kubernetes release each node runs; no credentials."""
    result = {}
    for name, node in sorted(nodes.items()):
        result[name] = {"roles": list(node.roles)}
        if node.kubernetes_version:
            result[name]["kubernetes_version"] = node.kubernetes_version
    return result


# salt-ssh runs the target's `python3` from PATH: pin the distribution's, never a shim
# or a virtualenv that a login profile puts first.
ROSTER_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def roster(nodes: dict[str, Node], known_hosts: str) -> dict[str, dict]:
    """salt-ssh roster entries for the declared nodes: the host key is checked against
    `known_hosts` (the recorded keys); an unknown or changed key is refused."""
    return {
        name: {
            "host": node.host,
            "port": node.port,
            "user": node.user,
            "priv": node.key,
            "set_path": ROSTER_PATH,
            "ssh_options": [f"UserKnownHostsFile={known_hosts}", "StrictHostKeyChecking=yes"],
        }
        for name, node in sorted(nodes.items())
    }
