"""Text tables for operators: each column as wide as its widest cell, two spaces between
columns, no trailing spaces (the expiry report, the upgrade plan, kubesalt-iso list, the
lab's status)."""

from __future__ import annotations

from collections.abc import Sequence


def aligned(header: Sequence, rows: Sequence[Sequence]) -> list[str]:
    """The header and the rows as aligned lines (cells given as str() shows them)."""
    lines = [header, *rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(*lines, strict=True)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
            .rstrip() for line in lines]  # fmt: skip
