"""bootstrap.yaml: load, validate (all problems at once) and normalize.

The one validation used by the ext_pillar, the `kubesalt_config` execution module,
`scripts/kubesalt-check-config` and bootstrap.sh. Needs only PyYAML and netaddr.
"""

from __future__ import annotations

import copy
import os

import yaml

from kubesalt.config.problems import InvalidConfig, Problem
from kubesalt.config.rules import RULES
from kubesalt.config.schema import INVALID, SCHEMA, walk

__all__ = ["InvalidConfig", "Problem", "load_file", "load_text", "summary", "validate"]

DEFAULT_PATH = "/etc/kubesalt/bootstrap.yaml"
# Limits that a real bootstrap.yaml (a few KB, a few hundred values) never reaches and a
# hostile one would: each is checked before anything costs more than reading the text.
MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32  # nested mappings and lists
MAX_EXPANDED_NODES = 20_000  # values once every alias is expanded ("billion laughs")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key written twice (PyYAML keeps the last one)."""


def _construct_unique_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                "found a key that is a list or a mapping; every key is a plain name",
                key_node.start_mark,
            )
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found the key {key!r} twice (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _too_big(text: str) -> list[Problem]:
    size = len(text.encode("utf-8", errors="surrogatepass"))
    return [_size_problem(size)] if size > MAX_BYTES else []


def _size_problem(size: int) -> Problem:
    return _limit(f"is {size} bytes, more than {MAX_BYTES}", "a bootstrap.yaml is a few KB")


def _limit(what: str, why: str) -> Problem:
    return Problem("(file)", what, f"{why}: start from the annotated bootstrap.yaml")


def _too_deep(text: str) -> list[Problem]:
    """Nesting deeper than MAX_DEPTH, found from the event stream (no recursion: the
    composer recurses once per level, and thousands of brackets end in a RecursionError)."""
    depth = 0
    for event in yaml.parse(text, Loader=_UniqueKeyLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1
                return [_limit(f"nests lists and mappings more than {MAX_DEPTH} deep (line {line})",
                               "no key of bootstrap.yaml is nested that deep")]  # fmt: skip
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return []


def _expanded_size(root) -> int:
    """How many values the document holds once every alias is expanded: each node counted
    once per path that reaches it, computed once per node (the graph may share nodes)."""
    sizes: dict[int, int] = {}
    order, stack, seen = [], [root], set()
    while stack:  # children before parents, without recursion
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(child for pair in node.value for child in pair)
    for node in reversed(order):
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = []
        sizes[id(node)] = min(1 + sum(sizes.get(id(c), 1) for c in children), 1 << 62)
    return sizes[id(root)]


def _parse(text: str) -> tuple[object, list[Problem]]:
    try:
        problems = _too_big(text) or _too_deep(text)
        if problems:
            return None, problems
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
        if root is not None and _expanded_size(root) > MAX_EXPANDED_NODES:
            return None, [
                _limit(
                    f"expands to more than {MAX_EXPANDED_NODES} values through its aliases (*name)",
                    "write the values out, or use fewer aliases",
                )  # fmt: skip
            ]
        return _construct(root), []
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        what = f"is not valid YAML at {where}: {err.problem or err.context}"
        return None, [Problem("(file)", what, "correct the YAML syntax there")]
    except yaml.YAMLError as err:
        return None, [Problem("(file)", f"is not valid YAML: {err}", "correct the YAML syntax")]


def _construct(root):
    """The Python document of a composed node graph (None for an empty file)."""
    if root is None:
        return None
    loader = _UniqueKeyLoader("")
    try:
        return loader.construct_document(root)
    finally:
        loader.dispose()


def validate(document) -> tuple[dict | None, list[Problem]]:
    """Check a parsed document; return (normalized config or None, problems)."""
    if document is None:
        return None, [Problem("(file)", "is empty", "start from the annotated bootstrap.yaml")]
    if not isinstance(document, dict):
        return None, [
            Problem(
                "(file)",
                f"is a YAML {type(document).__name__}, not a mapping",
                "start from the annotated bootstrap.yaml",
            )
        ]
    problems: list[Problem] = []
    cfg = walk(SCHEMA, copy.deepcopy(document), "", problems)
    for rule in RULES:
        problems += rule(cfg)
    if problems:
        return None, problems
    return _normalize(cfg), []


def _normalize(cfg: dict) -> dict:
    networks = cfg["networks"]
    if not networks["workloadPlane"]["cidr"]:
        networks["workloadPlane"]["cidr"] = list(networks["controlPlane"]["cidr"])
    assert INVALID not in (networks["pods"], networks["services"])
    return cfg


def load_text(text: str, source: str = "bootstrap.yaml") -> dict:
    """Parse and validate YAML text; raise InvalidConfig listing every problem."""
    document, problems = _parse(text)
    if problems:
        raise InvalidConfig(source, problems)
    cfg, problems = validate(document)
    if problems:
        raise InvalidConfig(source, problems)
    return cfg


def load_file(path: str = DEFAULT_PATH) -> dict:
    """Read and validate a bootstrap.yaml file."""
    try:
        with open(path, encoding="utf-8") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > MAX_BYTES:  # refused before it is read
                raise InvalidConfig(path, [_size_problem(size)])
            text = stream.read(MAX_BYTES + 1)
    except OSError as err:
        raise InvalidConfig(
            path,
            [
                Problem(
                    "(file)",
                    f"cannot be read: {err.strerror}",
                    f"check that {path} exists and is readable",
                )
            ],
        ) from err
    except UnicodeDecodeError as err:
        raise InvalidConfig(
            path, [Problem("(file)", f"is not UTF-8 text ({err.reason})", "save it as UTF-8")]
        ) from err
    return load_text(text, source=path)


def summary(cfg: dict) -> str:
    """One line describing a valid configuration."""
    api = cfg["apiServer"]
    keepalived = api["keepalived"]
    endpoint = f"{api['host']}:{api['port']}"
    vip = (
        f"keepalived VIP, VRID {keepalived['virtualRouterId']}"
        if keepalived["enabled"]
        else "external load balancer"
    )
    return (
        f"valid: API {endpoint} ({vip}); control plane {', '.join(cfg['networks']['controlPlane']['cidr'])}; "
        f"workload plane {', '.join(cfg['networks']['workloadPlane']['cidr'])}; "
        f"pods {cfg['networks']['pods']}; services {cfg['networks']['services']}; "
        f"CA on {cfg['ca']['minion']}; {len(cfg['archives'])} archive(s)"
    )
