"""The image pane: the picture with corner annotations and orientation labels; slice navigation keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Static

from tui_dicom.core.imaging.windowing import PRESETS
from tui_dicom.ui.keys import PANE_KEYS
from tui_dicom.ui.widgets.annotations import AnnotationBar
from tui_dicom.ui.widgets.picture import PictureView

PRESET_NAMES = list(PRESETS)[:9]
#: rows kept for the measurement list while measuring (the newest measurements are listed)
MEASURE_ROWS = 3


class ImagePane(Vertical, can_focus=True):
    """Annotations above and below, the picture in between.

    Its keys run the screen's typed viewer actions; the mouse wheel posts :class:`Navigate`.
    """

    #: The viewer's commands are actions of the screen (the mediator that owns the view state), bound
    #: here so that they work while the image has focus. Every action names its parameters: Textual
    #: passes an action only as many arguments as its signature names.
    BINDINGS: ClassVar[list[BindingType]] = [
        *PANE_KEYS,
        # the slice keys (held down, they repeat) are priority bindings of the focused pane: Textual runs
        # them when the key arrives, not after the key event has bubbled through every container back
        # to the app (~0.5 ms of a step's main-thread time); the pane has no focusable child they could hide
        Binding(
            "down",
            "screen.arrow('down')",
            "Next slice",
            tooltip="with the probe on: move it one cell down",
            priority=True,
        ),
        Binding(
            "up",
            "screen.arrow('up')",
            "Previous slice (with the probe on: move it one cell up)",
            show=False,
            priority=True,
        ),
        Binding("left", "screen.arrow('left')", "Probe one screen cell left", show=False),
        Binding("right", "screen.arrow('right')", "Probe one screen cell right", show=False),
        Binding("j", "screen.step(1)", "Next slice (also with the probe on)", show=False, priority=True),
        Binding("k", "screen.step(-1)", "Previous slice (also with the probe on)", show=False, priority=True),
        Binding("pagedown", "screen.step(10)", "10 slices forward", show=False, priority=True),
        Binding("pageup", "screen.step(-10)", "10 slices back", show=False, priority=True),
        Binding("home", "screen.goto(0)", "First slice", show=False),
        Binding("end", "screen.goto(-1)", "Last slice", show=False),
        Binding("w", "screen.width(-1)", "Window width down (more contrast)", show=False),
        Binding("W", "screen.width(1)", "Window width up (less contrast)", show=False),
        Binding("l", "screen.level(-1)", "Window level down (brighter)", show=False),
        Binding("L", "screen.level(1)", "Window level up (darker)", show=False),
        Binding("alt+w", "screen.width(-1, True)", "Window width down, fine step", show=False),
        Binding("alt+W,alt+shift+w", "screen.width(1, True)", "Window width up, fine step", show=False),
        Binding("alt+l", "screen.level(-1, True)", "Window level down, fine step", show=False),
        Binding("alt+L,alt+shift+l", "screen.level(1, True)", "Window level up, fine step", show=False),
        *[
            Binding(str(i + 1), f"screen.preset({i + 1})", f"Window preset {i + 1} (CT: {name})", show=False)
            for i, name in enumerate(PRESET_NAMES)
        ],
        Binding("0", "screen.file_window", "The file's window (again: its next one)", show=False),
        Binding("A", "screen.auto_window", "Auto window (0.5–99.5 percentiles)", show=False),
        Binding("M", "screen.minmax_window", "Min–max window", show=False),
        Binding("i", "screen.invert", "Invert"),
        Binding("o", "screen.overlays", "Overlays on/off", show=False),
        Binding("plus", "screen.zoom(1)", "Zoom in"),
        Binding("minus", "screen.zoom(-1)", "Zoom out", show=False),
        Binding("equals_sign", "screen.fit", "Fit to pane", show=False),
        Binding("backspace", "screen.reset_view", "Reset zoom, pan, rotation, flips and window", show=False),
        Binding("exclamation_mark", "screen.one_to_one", "Zoom 1:1", show=False),
        Binding(
            "shift+up", "screen.pan(-1, 0)", "Pan up (with the probe on: move it one image pixel)", show=False
        ),
        Binding(
            "shift+down",
            "screen.pan(1, 0)",
            "Pan down (with the probe on: move it one image pixel)",
            show=False,
        ),
        Binding(
            "shift+left",
            "screen.pan(0, -1)",
            "Pan left (with the probe on: move it one image pixel)",
            show=False,
        ),
        Binding(
            "shift+right",
            "screen.pan(0, 1)",
            "Pan right (with the probe on: move it one image pixel)",
            show=False,
        ),
        Binding("r", "screen.rotate", "Rotate 90°", show=False),
        Binding("h", "screen.flip(True)", "Flip left/right", show=False),
        Binding("v", "screen.flip(False)", "Flip up/down", show=False),
        Binding("space", "screen.cine", "Cine"),
        Binding("right_square_bracket", "screen.bracket(1)", "Next series (in cine: faster)", show=False),
        Binding("left_square_bracket", "screen.bracket(-1)", "Previous series (in cine: slower)", show=False),
        Binding("n", "screen.series(1)", "Next series", show=False),
        Binding("N", "screen.series(-1)", "Previous series", show=False),
        Binding("c", "screen.probe", "Probe"),
        Binding("m", "screen.measure('line')", "Measure"),
        Binding("R", "screen.measure('rect')", "Rectangle ROI", show=False),
        Binding("E", "screen.measure('ellipse')", "Ellipse ROI", show=False),
        Binding("x,delete", "screen.delete_measurement", "Delete the slice's last measurement", show=False),
        Binding("escape", "screen.cancel_measurement", "Cancel the measurement in progress", show=False),
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
        yield Static("", id="probe-line")
        yield AnnotationBar(id="ann-bottom")
        yield Static("", id="measure-list")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._texts: dict[str, str] = {}
        self._reserved = False

    def on_mount(self) -> None:
        """No message, probe line or measurement list until there is one."""
        for wid in ("#pane-message", "#probe-line", "#measure-list"):
            self.query_one(wid, Static).display = False

    def _set_static(self, wid: str, text: str, style: str) -> None:
        """Update a Static only when its text changes; a layout pass only when its size may change (the
        one-row probe line keeps its size: a repaint of that row is enough)."""
        box = self.query_one(wid, Static)
        visible = bool(text) or (self._reserved and wid in ("#probe-line", "#measure-list"))
        if box.display != visible:
            box.display = visible
        if self._texts.get(wid) != text:
            self._texts[wid] = text
            box.update(Text(text, style=style), layout=wid != "#probe-line")

    def set_probe_line(self, text: str | None) -> None:
        """The probe readout (None hides it)."""
        self._set_static("#probe-line", text or "", "green")

    def set_measurements(self, lines: list[str]) -> None:
        """The measurements of the current slice, one per line (empty hides the list unless reserved;
        while reserved the newest :data:`MEASURE_ROWS` are listed)."""
        if self._reserved:
            lines = lines[-MEASURE_ROWS:]
        self._set_static("#measure-list", "\n".join(lines), "yellow")

    def reserve_readout(self, reserve: bool) -> None:
        """Keep the probe row and :data:`MEASURE_ROWS` measurement rows on screen, filled or not.

        While measuring, a probe line or a measurement appearing below the picture would shrink it
        and move it under the pointer; with the rows reserved (from the key that starts measuring)
        the picture stays put.
        """
        if reserve == self._reserved:
            return
        self._reserved = reserve
        box = self.query_one("#measure-list", Static)
        box.styles.height = MEASURE_ROWS if reserve else "auto"
        for wid, style in (("#probe-line", "green"), ("#measure-list", "yellow")):
            self._set_static(wid, self._texts.get(wid, ""), style)

    @property
    def readout_reserved(self) -> bool:
        """True while the probe and measurement rows are kept (see :meth:`reserve_readout`)."""
        return self._reserved

    @property
    def picture(self) -> PictureView:
        """The picture widget."""
        return self.query_one("#picture", PictureView)

    def set_message(self, message: str | None, *, error: bool = False) -> None:
        """Show ``message`` instead of the picture (None: show the picture again)."""
        box = self.query_one("#pane-message", Static)
        pic = self.picture
        if message is None:
            if box.display:
                box.display = False
            if not pic.display:
                pic.display = True
            return
        box.update(Text(message, style="bold red" if error else "dim"))
        box.display = True
        pic.display = False

    def set_annotations(
        self, top: tuple[tuple[str, str, str], ...], bottom: tuple[tuple[str, str, str], ...]
    ) -> None:
        """Corner texts: rows of (left, centre, right); plain, already terminal-safe strings."""
        self.query_one("#ann-top", AnnotationBar).lines = top
        self.query_one("#ann-bottom", AnnotationBar).lines = bottom

    def set_side_labels(self, left: str, right: str) -> None:
        """Orientation letters at the left and right edges (vertically centred)."""
        for wid, label in (("#orient-left", left), ("#orient-right", right)):
            widget = self.query_one(wid, Static)
            text = "\n" * (max(1, widget.size.height) // 2) + label
            if self._texts.get(wid) != text:
                self._texts[wid] = text
                widget.update(Text(text, style="bold yellow"), layout=False)  # one column, any height

    def show_annotations(self, visible: bool) -> None:
        """Show or hide both annotation bars."""
        for bar in self.query(AnnotationBar):
            bar.visible = visible

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
