"""kubesalt.columns: the one text-table layout of the operator commands."""

import pytest

from kubesalt.columns import aligned


def test_each_column_is_as_wide_as_its_widest_cell_and_lines_end_without_spaces():
    assert aligned(("NODE", "DAYS"), [("cp2", 364), ("bootstrap", "-")]) == [
        "NODE       DAYS",
        "cp2        364",
        "bootstrap  -",
    ]


def test_a_row_of_another_width_is_an_error():
    with pytest.raises(ValueError):
        aligned(("A", "B"), [("only one",)])
