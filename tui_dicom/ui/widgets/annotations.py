"""Corner annotations as in radiology viewers: two text rows with a left and a right part."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


def two_sided(left: str, right: str, width: int, centre: str = "") -> Text:
    """One row of ``width`` cells: ``left`` flush left, ``right`` flush right, ``centre`` in the middle.

    All parts are plain (already terminal-safe) strings; the result is a Rich ``Text`` (never markup).
    """
    width = max(1, width)
    right = right[: max(0, width - 1)]
    room = max(0, width - len(right) - (1 if right else 0))
    left = left[:room]
    line = [" "] * width
    line[: len(left)] = left
    if right:
        line[width - len(right) :] = right
    if centre:
        start = max(len(left) + 1, (width - len(centre)) // 2)
        end = min(width - len(right) - 1, start + len(centre))
        if end - start == len(centre):
            line[start:end] = centre
    return Text("".join(line))


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
        return Text("\n").join(rows)
