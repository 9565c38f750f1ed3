"""Corner annotations as in radiology viewers: text rows with a left, a centre and a right part."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.text import Text
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget


def _fit(text: str, cells: int) -> str:
    """``text`` cut to at most ``cells`` terminal cells (wide characters count twice)."""
    if cells <= 0:
        return ""
    if cell_len(text) <= cells:
        return text
    return set_cell_size(text, cells - 1).rstrip() + "…" if cells > 1 else set_cell_size(text, cells)


def two_sided(left: str, right: str, width: int, centre: str = "") -> Text:
    """One row of exactly ``width`` cells: ``left`` flush left, ``right`` flush right, ``centre`` centred.

    All parts are plain (already terminal-safe) strings measured in terminal cells, so CJK names keep
    the right corner in place. The result is a Rich ``Text`` (never markup). The left part wins when
    space is short; the centre is dropped before anything is cut.
    """
    return Text(two_sided_plain(left, right, width, centre), no_wrap=True, overflow="crop")


def two_sided_plain(left: str, right: str, width: int, centre: str = "") -> str:
    """:func:`two_sided` as a plain string."""
    width = max(1, width)
    right = _fit(right, max(0, width // 2 - 1)) if cell_len(left) + cell_len(right) + 1 > width else right
    left = _fit(left, max(0, width - cell_len(right) - (1 if right else 0)))
    gap = width - cell_len(left) - cell_len(right)
    middle = " " * gap
    c_len = cell_len(centre)
    if centre and gap >= c_len + 2:
        start = max(1, (width - c_len) // 2 - cell_len(left))
        start = min(start, gap - c_len - 1)
        middle = " " * start + centre + " " * (gap - start - c_len)
    return left + middle + right


class AnnotationBar(Widget):
    """Two rows of corner text (top or bottom of the image pane)."""

    DEFAULT_CSS = """
    AnnotationBar { height: 2; color: $text-muted; }
    """

    lines: reactive[tuple[tuple[str, str, str], ...]] = reactive((("", "", ""), ("", "", "")), layout=False)

    def render(self) -> Text:
        """Both rows, fitted to the widget's width."""
        width = self.size.width
        rows = [two_sided(left, right, width, centre) for left, centre, right in self.lines]
        text = Text("\n").join(rows)
        text.no_wrap = True
        text.overflow = "crop"
        return text

    def render_line(self, y: int) -> Strip:
        """Row ``y`` as one segment in the widget's style: what Textual makes of :meth:`render` for a
        row of plain text (the same segment, style and selection offset), without building and
        wrapping the whole text. The counter row changes at every slice step; Textual's path took
        ~0.4 ms for the two rows. A text selection takes Textual's path (it styles a part of a row).
        """
        if self.text_selection is not None:
            return super().render_line(y)
        width = self.size.width
        rows = self.lines
        if y >= len(rows) or width <= 0:
            return super().render_line(y)
        left, centre, right = rows[y]
        text = two_sided_plain(left, right, width, centre)
        return Strip([Segment(text, self.visual_style.rich_style_with_offset(0, y))], cell_len(text))
