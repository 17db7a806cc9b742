"""Benchmarks write their results into one section each of docs/benchmarks.md."""

from __future__ import annotations

import pathlib
import re

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"


def _pattern(title: str) -> re.Pattern:
    return re.compile(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", re.S | re.M)


def read_section(title: str) -> str | None:
    """The body of section `title`, or None when the file or the section is missing."""
    match = _pattern(title).search(DOC.read_text()) if DOC.exists() else None
    return match.group(1) if match else None


def write_section(title: str, body: str) -> None:
    """Replace section `title` (or append it) with `body`; other sections stay as they are."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = _pattern(title)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    DOC.write_text(text)
