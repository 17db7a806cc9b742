"""Read Salt's JSON output: which states changed, which failed, without their diffs.

bootstrap.sh logs one line per state (ID, result, the kinds of change) but never the
changes themselves: a diff of a key or of a configuration holding a password must not
reach the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATE_KEY_SEP = "_|-"


@dataclass
class StateSummary:
    total: int = 0
    changed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _is_state_map(value) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(
            isinstance(k, str) and k.count(STATE_KEY_SEP) >= 3 and isinstance(v, dict)
            for k, v in value.items()
        )
    )


def _first_line(text, limit: int = 400) -> str:
    text = str(text or "").strip()
    if isinstance(text, str) and "\n" in text:
        lines = [line for line in text.splitlines() if line.strip()]
        text = " | ".join(lines[:8])
    return text[:limit]


def _walk_states(states: dict, prefix: str, summary: StateSummary) -> None:
    ordered = sorted(states.items(), key=lambda kv: kv[1].get("__run_num__", 0))
    for key, ret in ordered:
        sid = ret.get("__id__") or key.split(STATE_KEY_SEP)[1]
        label = f"{prefix}{sid}"
        changes = ret.get("changes") or {}
        nested = changes.get("ret") if isinstance(changes, dict) else None
        summary.total += 1
        if isinstance(nested, dict) and all(_is_state_map(v) for v in nested.values()) and nested:
            for minion, sub in nested.items():
                _walk_states(sub, f"{label} [{minion}] / ", summary)
        elif changes:
            summary.changed.append(label)
        result = ret.get("result")
        if result is False:
            summary.failed.append((label, _first_line(ret.get("comment"))))
        kinds = ", ".join(sorted(changes)) if isinstance(changes, dict) else "changed"
        state = {True: "ok", False: "FAILED", None: "pending"}.get(result, str(result))
        summary.lines.append(f"{state}: {label}" + (f" (changed: {kinds})" if changes else ""))


def summarize(data) -> StateSummary:
    """Summarize `salt-call --out=json state.apply` or `salt-run --out=json state.orchestrate`."""
    summary = StateSummary()

    def visit(node, prefix: str) -> None:
        if _is_state_map(node):
            _walk_states(node, prefix, summary)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in ("outputter", "retcode"):
                    continue
                visit(value, prefix)
        elif isinstance(node, list):
            summary.errors.extend(_first_line(item) for item in node if isinstance(item, str))
        elif isinstance(node, str) and node.strip():
            summary.errors.append(_first_line(node))

    visit(data, "")
    return summary
