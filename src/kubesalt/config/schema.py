"""The shape of bootstrap.yaml: keys, types, defaults; and the walk that checks it.

The walk checks structure only (types, unknown and missing keys) and returns the
normalized document with defaults applied. Values that failed their type check are
replaced by `INVALID`, so the semantic rules (rules.py) skip them instead of
reporting the same mistake twice.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from kubesalt.config.problems import Problem

API_VERSION = "kubesalt.io/v1alpha1"
KIND = "BootstrapConfiguration"


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID = _Invalid()


@dataclass(frozen=True)
class Scalar:
    """A leaf value of one of `types`; `default` is used when the key is absent."""

    types: tuple[type, ...]
    default: object = None
    required: bool = False
    hint: str = ""

    def type_name(self) -> str:
        return " or ".join(_TYPE_NAMES[t] for t in self.types)


@dataclass(frozen=True)
class StrList:
    """A list of strings; a single string is accepted and becomes a one-item list."""

    default: tuple[str, ...] | None = None
    required: bool = False
    comma_separated: bool = False
    hint: str = ""


@dataclass(frozen=True)
class Mapping:
    """A mapping with a fixed set of keys."""

    keys: dict[str, object] = field(default_factory=dict)
    required: bool = False


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false"}

SCHEMA = Mapping(
    required=True,
    keys={
        "apiVersion": Scalar((str,), required=True, hint=f"set apiVersion: {API_VERSION}"),
        "kind": Scalar((str,), required=True, hint=f"set kind: {KIND}"),
        "networks": Mapping(
            required=True,
            keys={
                "controlPlane": Mapping(
                    required=True,
                    keys={
                        "cidr": StrList(
                            required=True,
                            hint="give the network(s) of the nodes' control-plane "
                            "interfaces, e.g. cidr: 198.51.100.0/24",
                        )
                    },
                ),
                "workloadPlane": Mapping(
                    keys={
                        # None means "the control-plane CIDRs", resolved in normalize().
                        "cidr": StrList(),
                        "mtu": Scalar((int,)),
                    }
                ),
                "pods": Scalar((str,), default="10.233.0.0/16"),
                "services": Scalar((str,), default="10.96.0.0/12"),
            },
        ),
        "apiServer": Mapping(
            required=True,
            keys={
                "host": Scalar(
                    (str,),
                    required=True,
                    hint="set apiServer.host to the API virtual IP (keepalived) or "
                    "to your load balancer's address",
                ),
                "port": Scalar((int,), default=6443),
                "keepalived": Mapping(
                    keys={
                        "enabled": Scalar((bool,), default=True),
                        "virtualRouterId": Scalar((int,), default=51),
                        "authPassword": Scalar((str,)),
                    }
                ),
            },
        ),
        "ca": Mapping(
            required=True,
            keys={
                "minion": Scalar(
                    (str,),
                    required=True,
                    hint="set ca.minion to the Salt minion ID of the bootstrap node",
                )
            },
        ),
        "archives": StrList(
            required=True,
            hint="list the kubesalt ISO file(s) or extracted ISO directories",
        ),
        "kubernetes": Mapping(
            keys={
                "version": Scalar((str,)),
                "clusterName": Scalar((str,), default="kubernetes"),
                "dnsDomain": Scalar((str,), default="cluster.local"),
            }
        ),
        "proxies": Mapping(
            keys={
                "http": Scalar((str,)),
                "https": Scalar((str,)),
                "noProxy": StrList(default=(), comma_separated=True),
            }
        ),
        "firewall": Mapping(keys={"enabled": Scalar((bool,), default=True)}),
        "pki": Mapping(
            keys={
                "algorithm": Scalar((str,), default="RSA-2048"),
                "certificateValidityDays": Scalar((int,), default=365),
                "caCertificateValidityDays": Scalar((int,), default=3650),
                # None: 90 days, or a quarter of certificateValidityDays when shorter
                # (kubesalt.renewal.renew_before_days).
                "renewBeforeDays": Scalar((int,)),
            }
        ),
    },
)


def default_of(dotted: str):
    """The default of the key `dotted` (`apiServer.port` -> 6443)."""
    spec = SCHEMA
    for key in dotted.split("."):
        spec = spec.keys[key]
    return spec.default


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _did_you_mean(key: str, allowed: list[str]) -> str:
    folded = {name.lower(): name for name in allowed}
    if isinstance(key, str) and key.lower() in folded:
        return f"did you mean '{folded[key.lower()]}'? Keys are case-sensitive"
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "remove it; allowed keys here: " + ", ".join(allowed)


def walk(spec, value, path: str, problems: list[Problem]):
    """Check `value` against `spec`; return it normalized (defaults applied)."""
    if isinstance(spec, Mapping):
        return _walk_mapping(spec, value, path, problems)
    if isinstance(spec, StrList):
        return _walk_str_list(spec, value, path, problems)
    return _walk_scalar(spec, value, path, problems)


def _walk_mapping(spec: Mapping, value, path: str, problems: list[Problem]):
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.append(
            Problem(
                path or "(file)",
                "must be a mapping of keys",
                "write it as 'key: value' lines",
                value,
            )
        )
        return INVALID
    allowed = list(spec.keys)
    for key in value:
        if key not in spec.keys:
            problems.append(
                Problem(_join(path, str(key)), "is not a known key", _did_you_mean(key, allowed))
            )
    result = {}
    for key, child in spec.keys.items():
        child_path = _join(path, key)
        missing = key not in value or value[key] is None
        if missing and getattr(child, "required", False):
            hint = getattr(child, "hint", "") or f"add the key {child_path}"
            problems.append(Problem(child_path, "is required but missing", hint))
            result[key] = INVALID
            continue
        result[key] = walk(child, value.get(key), child_path, problems)
    return result


def _walk_str_list(spec: StrList, value, path: str, problems: list[Problem]):
    if value is None:
        return None if spec.default is None else list(spec.default)
    if isinstance(value, str):
        parts = value.split(",") if spec.comma_separated else [value]
        return [part.strip() for part in parts if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(
            Problem(
                path,
                "must be a string or a list of strings",
                "write one value or a YAML list",
                value,
            )
        )
        return INVALID
    return list(value)


def _walk_scalar(spec: Scalar, value, path: str, problems: list[Problem]):
    if value is None:
        return spec.default
    # bool is a subclass of int: `port: yes` must not pass as an integer.
    wrong_bool = isinstance(value, bool) and bool not in spec.types
    if wrong_bool or not isinstance(value, spec.types):
        problems.append(
            Problem(
                path, f"must be {spec.type_name()}", f"write {path} as {spec.type_name()}", value
            )
        )
        return INVALID
    return value
