"""bootstrap.yaml: load, validate (all problems at once) and normalize.

The one validation used by the ext_pillar, the `kubesalt_config` execution module,
`scripts/kubesalt-check-config` and bootstrap.sh. Needs only PyYAML and netaddr.
"""

from __future__ import annotations

import copy

import yaml

from kubesalt.config.problems import InvalidConfig, Problem
from kubesalt.config.rules import RULES
from kubesalt.config.schema import INVALID, SCHEMA, walk

__all__ = ["InvalidConfig", "Problem", "load_file", "load_text", "summary", "validate"]

DEFAULT_PATH = "/etc/kubesalt/bootstrap.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key written twice (PyYAML keeps the last one)."""


def _construct_unique_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
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


def _parse(text: str) -> tuple[object, list[Problem]]:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader), []  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        what = f"is not valid YAML at {where}: {err.problem or err.context}"
        return None, [Problem("(file)", what, "correct the YAML syntax there")]
    except yaml.YAMLError as err:
        return None, [Problem("(file)", f"is not valid YAML: {err}", "correct the YAML syntax")]


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
            text = stream.read()
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
