"""A problem found in bootstrap.yaml: where, what value, what is wrong, how to fix it."""

from __future__ import annotations

from dataclasses import dataclass

from kubesalt.errors import ConfigError

_MISSING = object()


@dataclass(frozen=True)
class Problem:
    """One problem; `path` is dotted (`networks.pods`), `(file)` for the whole file."""

    path: str
    what: str
    fix: str
    value: object = _MISSING

    def __str__(self) -> str:
        shown = "" if self.value is _MISSING else f" = {self.value!r}"
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
