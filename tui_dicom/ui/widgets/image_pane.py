"""The image pane: the picture with corner annotations and orientation labels; slice navigation keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Static

from tui_dicom.ui.widgets.annotations import AnnotationBar
from tui_dicom.ui.widgets.picture import PictureView


class ImagePane(Vertical, can_focus=True):
    """Annotations above and below, the picture in between. Posts :class:`Navigate` for slice keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "step(1)", "Next slice"),
        Binding("up,k", "step(-1)", "Prev slice"),
        Binding("pagedown", "step(10)", "+10", show=False),
        Binding("pageup", "step(-10)", "-10", show=False),
        Binding("home", "goto(0)", "First", show=False),
        Binding("end", "goto(-1)", "Last", show=False),
    ]

    @dataclass
    class Navigate(Message):
        """Move through the series: by ``delta`` slices, or to ``absolute`` (-1: last)."""

        delta: int = 0
        """Relative step."""
        absolute: int | None = None
        """Absolute index (-1 for the last slice), or None."""

    def compose(self) -> ComposeResult:
        """Top annotations, [orientation label | picture | orientation label], bottom annotations."""
        yield AnnotationBar(id="ann-top")
        with Horizontal(id="pic-row"):
            yield Static("", id="orient-left", classes="orient")
            yield PictureView(id="picture")
            yield Static("", id="pane-message")
            yield Static("", id="orient-right", classes="orient")
        yield AnnotationBar(id="ann-bottom")

    def on_mount(self) -> None:
        """No message until there is one."""
        self.query_one("#pane-message", Static).display = False

    @property
    def picture(self) -> PictureView:
        """The picture widget."""
        return self.query_one("#picture", PictureView)

    def set_message(self, message: str | None, *, error: bool = False) -> None:
        """Show ``message`` instead of the picture (None: show the picture again)."""
        box = self.query_one("#pane-message", Static)
        pic = self.picture
        if message is None:
            box.display = False
            pic.display = True
            return
        box.update(Text(message, style="bold red" if error else "dim"))
        box.display = True
        pic.display = False

    def set_annotations(self, top: tuple[tuple[str, str, str], ...], bottom: tuple[tuple[str, str, str], ...]) -> None:
        """Corner texts: rows of (left, centre, right); plain, already terminal-safe strings."""
        self.query_one("#ann-top", AnnotationBar).lines = top
        self.query_one("#ann-bottom", AnnotationBar).lines = bottom

    def set_side_labels(self, left: str, right: str) -> None:
        """Orientation letters at the left and right edges (vertically centred)."""
        for wid, label in (("#orient-left", left), ("#orient-right", right)):
            widget = self.query_one(wid, Static)
            height = max(1, widget.size.height)
            widget.update(Text("\n" * (height // 2) + label, style="bold yellow"))

    def show_annotations(self, visible: bool) -> None:
        """Show or hide both annotation bars."""
        for bar in self.query(AnnotationBar):
            bar.visible = visible

    def action_step(self, delta: int) -> None:
        """Step ``delta`` slices."""
        self.post_message(self.Navigate(delta=delta))

    def action_goto(self, index: int) -> None:
        """Go to slice ``index`` (-1: the last)."""
        self.post_message(self.Navigate(absolute=index))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        """The wheel steps through the series."""
        if not event.ctrl:
            event.stop()
            self.post_message(self.Navigate(delta=1))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        """The wheel steps through the series."""
        if not event.ctrl:
            event.stop()
            self.post_message(self.Navigate(delta=-1))

