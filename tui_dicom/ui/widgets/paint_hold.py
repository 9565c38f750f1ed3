"""Painting put off: a widget that is laid out, filled and focusable, but painted blank for now.

The viewer's start paints the first picture before the study tree and the tag panel: until then both
fill as usual (nodes, cursor, focus, scrolling) but each paint of them is a blank strip per line. Unlike
``visibility: hidden`` (which takes a widget out of the compositor's map, so its size reads 0 and
width fitting, scrolling and column widths go wrong), the widget keeps its region.
"""

from __future__ import annotations

from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


class PaintHold(Widget):
    """A line-API widget (e.g. a ``Tree``) whose painting can be held: listed before the widget class
    (``class StudyTree(PaintHold, Tree[...])``), so its :meth:`render_lines` comes first."""

    #: filled but painted blank
    paint_held = False

    def hold_paint(self, hold: bool) -> None:
        """Paint blank while ``hold`` (the widget still fills, moves its cursor and keeps its size)."""
        if hold != self.paint_held:
            self.paint_held = hold
            self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        """The widget's lines, or blank ones in its background while painting is held."""
        if self.paint_held:
            return [Strip.blank(crop.width, self.rich_style)] * crop.height
        return super().render_lines(crop)
