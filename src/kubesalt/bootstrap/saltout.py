"""Read Salt's JSON output: which states changed, which failed, without their diffs.

bootstrap.sh logs one line per state (ID, result, the kinds of change) but never the
changes themselves: a diff of a key or of a configuration holding a password must not
reach the log. A failed state's comment is kept whole (for the log); `short_comment`
makes the line a human reads on the console.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATE_KEY_SEP = "_|-"
TRACEBACK_HEAD = "Traceback (most recent call last):"
COMMENT_LIMIT = 400
COMMENT_LINES = 8


@dataclass
class StateSummary:
    total: int = 0
    changed: list[str] = field(default_factory=list)
    # (state label, its whole comment): print `short_comment(comment)`, log the whole.
    failed: list[tuple[str, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    # Whole texts of errors outside any state (render errors, a non-JSON output).
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


def short_comment(comment, limit: int = COMMENT_LIMIT) -> str:
    """What a human needs of a state's comment (or an error), on one line of at most `limit`.

    A traceback, as in Salt's "An exception occurred in this state: Traceback (most recent
    call last): ...", becomes the text before it and the exception's type and message, e.g.
    "An exception occurred in this state: ValueError: bad key": its frames are for the log.
    Other text keeps its first non-empty lines, joined with " | ". A longer result is cut and
    ends with "...", but never loses the exception.
    """
    lines = [line.rstrip() for line in _as_text(comment).splitlines() if line.strip()]
    heads = [index for index, line in enumerate(lines) if TRACEBACK_HEAD in line]
    if not heads:
        return _clip(_joined(lines), limit)
    exception = _clip(_joined(_exception_lines(lines[heads[-1] + 1 :])), limit)
    before = lines[: heads[0]] + [lines[heads[0]].split(TRACEBACK_HEAD)[0]]
    intro = _joined(line for line in before if line.strip())
    if intro and len(intro) + 1 + len(exception) <= limit:
        return f"{intro} {exception}"
    return exception


def _as_text(comment) -> str:
    # Some states return their comment as a list of lines.
    if isinstance(comment, list | tuple):
        return "\n".join(str(item) for item in comment)
    return str(comment or "")


def _exception_lines(trace: list[str]) -> list[str]:
    """The exception of a traceback's body (frames, then the exception): its lines are the
    least indented ones, from the first of them on; the frames are indented deeper."""
    if not trace:
        return []
    least = min(len(line) - len(line.lstrip()) for line in trace)
    start = next(i for i, line in enumerate(trace) if len(line) - len(line.lstrip()) == least)
    return trace[start:]


def _joined(lines) -> str:
    return " | ".join(line.strip() for line in list(lines)[:COMMENT_LINES])


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


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
            summary.failed.append((label, _as_text(ret.get("comment")).strip()))
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
            summary.errors.extend(item.strip() for item in node if isinstance(item, str))
        elif isinstance(node, str) and node.strip():
            summary.errors.append(node.strip())

    visit(data, "")
    return summary
