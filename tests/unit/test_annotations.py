"""Corner annotation layout in terminal cells (CJK names take two cells per character)."""

from __future__ import annotations

from rich.cells import cell_len

from tui_dicom.ui.widgets.annotations import two_sided


def test_row_is_exactly_width_cells_with_wide_characters() -> None:
    row = two_sided("ﾌﾙﾊｼ ﾀｲﾁ=古橋 大地", "2018-01-07 LSPINE", 60)
    assert cell_len(row.plain) == 60
    assert row.plain.startswith("ﾌﾙﾊｼ ﾀｲﾁ=古橋 大地") and row.plain.endswith("2018-01-07 LSPINE")


def test_centre_label_is_in_the_middle_and_dropped_when_no_room() -> None:
    row = two_sided("L", "R", 21, "A")
    assert row.plain == "L" + " " * 9 + "A" + " " * 9 + "R"
    tight = two_sided("x" * 10, "y" * 9, 21, "A")
    assert "A" not in tight.plain and cell_len(tight.plain) == 21


def test_long_parts_are_cut_never_wrapped() -> None:
    row = two_sided("古" * 40, "right side text", 30)
    assert cell_len(row.plain) <= 30 and "\n" not in row.plain
    assert "…" in row.plain
