"""`render-cluster`: every API object kubesalt would apply, as one multi-document YAML in
apply order, from the same code the deploy orchestration uses (`kubesalt.cluster.render`).
Nothing here contacts a cluster.

Exit status: 0 written; 2 bad usage or invalid configuration; 1 the output could not be
written. See docs/render-cluster.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import yaml

from kubesalt import roles as _roles
from kubesalt.cluster import ClusterNode, cluster_nodes, render
from kubesalt.config import InvalidConfig, load_file
from kubesalt.errors import KubesaltError
from kubesalt.kubeadm import images
from kubesalt.names import NodeNameError, check_node_name

PROG = "render-cluster"
NODE_EXAMPLE = "e.g. --node cp1:control-plane,etcd,node"


class UsageError(KubesaltError):
    """A flag has a bad value; the message names the flag, the value and the fix."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{PROG}: error: {message}; see {PROG} --help\n")


def parser() -> argparse.ArgumentParser:
    result = _Parser(
        prog=PROG,
        description="Print every API object kubesalt would apply to the cluster, in apply "
        "order, as one multi-document YAML. Contacts no cluster.",
    )
    result.add_argument("--config", required=True, metavar="FILE", help="bootstrap.yaml")
    result.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="NAME:ROLE[,ROLE...]",
        help="a node of the inventory with its roles (repeat the flag); its labels and "
        f"taint appear as a Node object. Roles among {_roles.listing()}",
    )
    result.add_argument(
        "--kubernetes-version",
        metavar="VERSION",
        help="the cluster's Kubernetes release (default: kubernetes.version of the "
        "configuration, else the archive's)",
    )
    result.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    return result


def with_version(cfg: dict, version: str | None) -> dict:
    """`cfg` whose `kubernetes.version` is `version` when given (a supported release;
    UsageError listing them otherwise)."""
    if version is None:
        return cfg
    try:
        version = images.supported(version)
    except KubesaltError as err:
        raise UsageError(f"--kubernetes-version: {err}") from None
    return {**cfg, "kubernetes": {**cfg["kubernetes"], "version": version}}


def parse_node(value: str) -> ClusterNode:
    """`cp1:control-plane,etcd` -> ClusterNode; UsageError naming the flag otherwise."""
    name, sep, listed = value.partition(":")
    if not sep or not name:
        raise UsageError(f"--node {value!r}: expected NAME:ROLE[,ROLE...], {NODE_EXAMPLE}")
    try:
        check_node_name(name, f"--node {value!r}")
    except NodeNameError as err:
        raise UsageError(str(err)) from None
    roles = [role.strip() for role in listed.split(",") if role.strip()]
    if not roles:
        raise UsageError(
            f"--node {value!r}: no role given; give roles among {_roles.listing()}, {NODE_EXAMPLE}"
        )
    unknown = _roles.unknown(roles)
    if unknown:
        raise UsageError(
            f"--node {value!r}: unknown role(s) {', '.join(unknown)}; give roles among "
            f"{_roles.listing()}, {NODE_EXAMPLE}"
        )
    return ClusterNode(name, frozenset(roles))


def parse_nodes(values: list[str]) -> tuple[ClusterNode, ...]:
    """Every --node flag, as the orchestration sees the inventory (`cluster_nodes`: sorted
    by name); UsageError when a name is given twice (its roles would be ambiguous)."""
    given: dict[str, str] = {}
    roles_by_node: dict[str, frozenset[str]] = {}
    for value in values:
        node = parse_node(value)
        if node.name in given:
            raise UsageError(
                f"--node {value!r}: node {node.name} is already given by --node "
                f"{given[node.name]!r}; give each node once, with all its roles"
            )
        given[node.name] = value
        roles_by_node[node.name] = node.roles
    return cluster_nodes(roles_by_node)


def to_yaml(objects: list[dict]) -> str:
    """One YAML document per object, each opened by `---`, in the given (apply) order."""
    return yaml.safe_dump_all(
        objects, explicit_start=True, default_flow_style=False, sort_keys=False, width=1 << 30
    )


def _check_out(path: str | None) -> None:
    """A directory as --out is a usage error, found before anything is rendered."""
    if path and os.path.isdir(path):
        raise UsageError(
            f"--out {path}: is a directory; give a file path, e.g. --out {path.rstrip('/')}/"
            "cluster.yaml"
        )


def _config_problems(err: InvalidConfig) -> str:
    """The configuration's problems as kubesalt-check-config prints them, one a line."""
    count = len(err.problems)
    lines = [f"{PROG}: error: --config {err.source}: {count} problem{'s' if count != 1 else ''}:"]
    lines += [f"{err.source}: {problem}" for problem in err.problems]
    return "\n".join(lines)


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(text)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        nodes = parse_nodes(args.node)
        _check_out(args.out)
        cfg = with_version(load_file(args.config), args.kubernetes_version)
        objects = render(cfg, nodes)
    except InvalidConfig as err:
        print(_config_problems(err), file=sys.stderr)
        return 2
    except KubesaltError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    text = to_yaml(objects)
    if not args.out:
        sys.stdout.write(text)
        return 0
    try:
        _write(args.out, text)
    except OSError as err:
        print(f"{PROG}: error: --out {args.out}: cannot write: {err.strerror}; give a file "
              "path in an existing, writable directory", file=sys.stderr)  # fmt: skip
        return 1
    print(f"{PROG}: {len(objects)} objects written to {args.out}", file=sys.stderr)
    return 0
