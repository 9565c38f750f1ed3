"""Painting put off: a widget that is laid out, filled and focusable, but painted blank for now.

The viewer's start paints the first picture before the study tree and the tag panel: until then both
fill as usual (nodes, cursor, focus, scrolling) but each paint of them is a blank strip per line. Unlike
``visibility: hidden`` (which takes a widget out of the compositor's map, so its size reads 0 and
width fitting, scrolling and column widths go wrong), the widget keeps its region.
"""

from __future__ import annotations

from typing import Protocol

from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


class Holdable(Protocol):
    """A widget whose ``render_lines`` paints :func:`blank_lines` while ``paint_held`` is set."""

    paint_held: bool

    def refresh(self) -> object:
        """Repaint (Textual's ``Widget.refresh``)."""


def hold_paint(widget: Holdable, hold: bool) -> None:
    """Hold (``hold``) or release ``widget``'s painting; repainted only when that changes."""
    if hold != widget.paint_held:
        widget.paint_held = hold
        widget.refresh()


def blank_lines(widget: Widget, crop: Region) -> list[Strip]:
    """The lines of ``crop`` painted in ``widget``'s background (what a held widget shows)."""
    blank = Strip.blank(crop.width, widget.rich_style)
    return [blank] * crop.height
