"""A problem found in bootstrap.yaml: where, what value, what is wrong, how to fix it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubesalt.errors import ConfigError

_MISSING = object()
# Keys whose value is a secret wherever they stand: never shown, whatever the problem.
SECRET_KEYS = frozenset({"authPassword"})
MASK = "********"
# user:password@ in a URL, with or without its scheme (a proxy with credentials): the
# password is masked.
_URL_PASSWORD = re.compile(r"(?P<head>(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?[^/@:\s]*:)[^/@\s]*(?=@)")


def masked(path: str, value):
    """`value` as it may be shown in an error or a pillar `_errors` entry: a secret key's
    value replaced, and the password of any URL inside it masked, however deep."""
    if path.rsplit(".", 1)[-1] in SECRET_KEYS:
        return MASK
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: m["head"] + MASK, value)
    if isinstance(value, dict):
        return {key: masked(f"{path}.{key}", item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(masked(path, item) for item in value)
    return value


@dataclass(frozen=True)
class Problem:
    """One problem; `path` is dotted (`networks.pods`), `(file)` for the whole file."""

    path: str
    what: str
    fix: str
    value: object = _MISSING

    def __str__(self) -> str:
        shown = "" if self.value is _MISSING else f" = {masked(self.path, self.value)!r}"
        end = "" if self.fix.endswith((".", "?", "!")) else "."
        return f"{self.path}{shown}: {self.what}. Fix: {self.fix}{end}"


class InvalidConfig(ConfigError):
    """bootstrap.yaml has problems; `problems` lists all of them."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        lines = [f"{source}: {count} problem{'s' if count != 1 else ''}:"]
        lines += [f"  {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))
