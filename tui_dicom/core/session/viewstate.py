"""The interactive state of the image pane, as pure logic: window/level, zoom/pan, rotation, probe,
measurements and cine. The Textual layer maps keys and mouse events onto these methods and re-renders.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, Protocol, overload

from tui_dicom.core.graphics.layout import Shape, ShapeKind, View
from tui_dicom.core.imaging.geometry import Spacing, length, nice_step, roi_stats

if TYPE_CHECKING:
    import numpy as np

    from tui_dicom.core.imaging.windowing import FileWindow, Window

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.25, 32.0
MEASURE_COLOUR = (255, 210, 0)
PENDING_COLOUR = (0, 200, 255)
CROSS_COLOUR = (0, 255, 0)


def screen_to_image(view: View, d_row: float, d_col: float) -> tuple[float, float]:
    """A movement in screen directions expressed in image directions (undoing flips, then rotation)."""
    dr, dc = d_row, d_col
    if view.flip_h:
        dc = -dc
    if view.flip_v:
        dr = -dr
    for _ in range(view.rotation % 4):  # undo clockwise quarter turns
        dr, dc = -dc, dr
    return dr, dc


def _shape_kind(kind: str) -> ShapeKind:
    """The overlay that draws a measurement of ``kind``."""
    return "rect" if kind == "rect" else "ellipse" if kind == "ellipse" else "line"


def cell_step(
    crop: tuple[float, float, float, float], cells: tuple[int, int, int, int]
) -> tuple[float, float]:
    """Image pixels per screen cell along the screen's rows and columns, from a layout's ``crop``
    (top, left, bottom, right, in the oriented image) and ``cells`` (x, y, width, height)."""
    top, left, bottom, right = crop
    return ((bottom - top) / max(1, cells[3]), (right - left) / max(1, cells[2]))


class Measurable(Protocol):
    """What measuring needs of a frame (:class:`~tui_dicom.core.imaging.pixels.Frame` has it): its
    modality values for ROI statistics; an optional ``units`` attribute names them."""

    def modality_values(self) -> np.ndarray:
        """The frame after the modality LUT or rescale, as float."""
        ...


#: what a measurement draws: a length, or a rectangle or ellipse ROI (each a ``Shape`` kind as well)
MeasureKind = Literal["line", "rect", "ellipse"]


@dataclass(frozen=True)
class Measurement:
    """A length, rectangle or ellipse on one slice, with its result text."""

    kind: MeasureKind
    p1: tuple[int, int]
    p2: tuple[int, int]
    text: str


def measure(
    kind: MeasureKind, p1: tuple[int, int], p2: tuple[int, int], frame: Measurable, spacing: Spacing
) -> Measurement:
    """Measure a length (mm or px) or an ROI's statistics in modality units."""
    if kind == "line":
        value = length(p1, p2, spacing)
        text = f"{value:.1f} {spacing.unit}"
        if spacing.warning:
            text += " (uncalibrated)"
        return Measurement(kind, p1, p2, text)
    stats = roi_stats(frame.modality_values(), kind, p1, p2, spacing)
    if stats is None:
        return Measurement(kind, p1, p2, "empty ROI")
    units = getattr(frame, "units", "")
    unit = f" {units}" if units else ""
    text = (
        f"mean {stats.mean:.1f}{unit} sd {stats.std:.1f} min {stats.minimum:.0f} max {stats.maximum:.0f} "
        f"area {stats.area:.1f} {stats.unit}"
    )
    return Measurement(kind, p1, p2, text)


@dataclass
class PaneState:
    """Everything the user changed about how the current series is looked at."""

    #: the window chosen: fixed, the file's n-th, or None (the file's own window, else auto)
    window: Window | FileWindow | None = None
    invert: bool = False
    view: View = field(default_factory=View)
    crosshair: tuple[int, int] | None = None
    pending: tuple[MeasureKind, tuple[int, int]] | None = None  # a measurement waiting for its second point
    #: the measuring tool chosen ("line", "rect", "ellipse") waiting for its first point
    tool: MeasureKind | None = None
    #: where the pointer is while a measurement waits for its second point (drawn as a preview)
    preview: tuple[int, int] | None = None
    #: the pending point was put down by the mouse press of the gesture still going on (a release
    #: elsewhere completes the measurement: press-drag-release)
    pressed: bool = False
    measurements: dict[Hashable, list[Measurement]] = field(default_factory=dict)
    cine: bool = False
    cine_fps: float = 10.0

    # ------------------------------------------------------------------ window / level
    @overload
    def adjust_window(
        self, shown: Window, d_width: float, d_level: float, fine: bool = ..., integer: bool = ...
    ) -> Window: ...
    @overload
    def adjust_window(
        self, shown: None, d_width: float, d_level: float, fine: bool = ..., integer: bool = ...
    ) -> None: ...
    def adjust_window(
        self, shown: Window | None, d_width: float, d_level: float, fine: bool = False, integer: bool = True
    ) -> Window | None:
        """Change width/level by steps proportional to the width shown (see
        :func:`~tui_dicom.core.imaging.windowing.step_window`); returns the new window (None: no
        window is shown, nothing changes)."""
        from tui_dicom.core.imaging.windowing import step_window

        if shown is None:
            return None
        self.window = step_window(shown, d_width, d_level, fine=fine, integer=integer)
        return self.window

    def drag_window(self, start: Window, dx: float, dy: float, value_range: tuple[float, float]) -> Window:
        """Right-drag as in radiology viewers: horizontal = width, vertical = level (cells moved)."""
        from tui_dicom.core.imaging.windowing import Window

        step = nice_step(value_range[1] - value_range[0])
        self.window = Window(
            start.center + dy * step,
            max(1.0, start.width + dx * step),
            start.function,
            "",
        )
        return self.window

    # ------------------------------------------------------------------ zoom / pan / orientation
    def zoom(self, factor: float) -> None:
        """Multiply the magnification (relative to fit)."""
        z = min(MAX_ZOOM, max(MIN_ZOOM, self.view.zoom * factor))
        self.view = replace(self.view, zoom=z, one_to_one=False)

    def fit(self) -> None:
        """Fit the whole image in the pane."""
        self.view = replace(self.view, zoom=1.0, center=None, one_to_one=False)

    def one_to_one(self) -> None:
        """One image pixel per screen pixel (per half-cell in half-block)."""
        self.view = replace(self.view, one_to_one=True)

    def pan(self, d_row: float, d_col: float, image_shape: tuple[int, int], visible: float) -> None:
        """Move the view centre by a fraction ``visible`` of the visible extent, in screen directions."""
        rows, cols = image_shape
        centre = self.view.center or (rows / 2, cols / 2)
        dr, dc = screen_to_image(self.view, d_row, d_col)
        span = max(rows, cols) / max(self.view.zoom, 1e-6) * visible
        r = min(max(centre[0] + dr * span, 0.0), float(rows))
        c = min(max(centre[1] + dc * span, 0.0), float(cols))
        self.view = replace(self.view, center=(r, c))

    def rotate(self) -> None:
        """Rotate 90° clockwise."""
        self.view = replace(self.view, rotation=(self.view.rotation + 1) % 4)

    def flip(self, horizontal: bool) -> None:
        """Mirror left/right (``horizontal``) or top/bottom."""
        if horizontal:
            self.view = replace(self.view, flip_h=not self.view.flip_h)
        else:
            self.view = replace(self.view, flip_v=not self.view.flip_v)

    @property
    def zoom_text(self) -> str:
        """``Zoom fit``, ``Zoom 1:1`` or ``Zoom 2.0×``."""
        if self.view.one_to_one:
            return "Zoom 1:1"
        if abs(self.view.zoom - 1.0) < 1e-6:
            return "Zoom fit"
        return f"Zoom {self.view.zoom:.2f}×"

    # ------------------------------------------------------------------ probe / measurements
    def move_crosshair(
        self, d_row: int, d_col: int, image_shape: tuple[int, int], step: tuple[float, float] = (1.0, 1.0)
    ) -> None:
        """Move the crosshair in screen directions, staying inside the image.

        ``step`` is how many image pixels one press moves along the screen's rows and columns: one
        screen cell's worth (see :func:`cell_step`), or ``(1, 1)`` for a single image pixel.
        """
        moved_r = d_row * max(1, round(step[0]))
        moved_c = d_col * max(1, round(step[1]))
        d_r, d_c = (int(v) for v in screen_to_image(self.view, moved_r, moved_c))
        rows, cols = image_shape
        r, c = self.crosshair or (rows // 2, cols // 2)
        self.crosshair = (min(max(r + d_r, 0), rows - 1), min(max(c + d_c, 0), cols - 1))

    def reset_view(self) -> None:
        """Back to how the series opened: fit, centred, unrotated, unflipped, the file's window, not inverted."""
        self.view = View()
        self.window = None
        self.invert = False

    # Measuring works as in radiology viewers: choose a tool (``arm``), then either press, drag and
    # release, or click at both ends, or (keyboard) move the crosshair and place each end (``place``).
    @property
    def measuring(self) -> bool:
        """A tool is chosen or a measurement waits for its second point."""
        return self.tool is not None or self.pending is not None

    @property
    def readout_visible(self) -> bool:
        """The probe / measurement rows are needed: kept while measuring, probing, or once the series
        has measurements, so the picture does not move under the pointer when they fill in."""
        return self.crosshair is not None or self.measuring or bool(self.measurements)

    def arm(self, kind: MeasureKind) -> None:
        """Choose the tool ``kind``: the next points placed measure it (a measurement in progress is
        dropped)."""
        self.tool, self.pending, self.preview, self.pressed = kind, None, None, False

    def cancel(self) -> bool:
        """Drop the tool and any measurement in progress; True if there was one."""
        had = self.measuring
        self.tool, self.pending, self.preview, self.pressed = None, None, None, False
        return had

    def place(
        self, point: tuple[int, int], key: Hashable, frame: Measurable, spacing: Spacing
    ) -> Measurement | None:
        """Put down the next end of the measurement at ``point`` (a click or a key).

        The first end starts it; the second completes it unless it is the same pixel as the first
        (a zero-length measurement is never made: the end is ignored).

        Returns:
            The completed measurement, or None (started, ignored, or no tool).
        """
        self.pressed = False
        if self.pending is not None:
            kind, start = self.pending
            if point == start:
                return None
            return self._complete(kind, start, point, key, frame, spacing)
        if self.tool is not None:
            self.pending, self.preview = (self.tool, point), None
        return None

    def press(
        self, point: tuple[int, int], key: Hashable, frame: Measurable, spacing: Spacing
    ) -> Measurement | None:
        """The mouse button went down at ``point``: the first end (a drag may follow) or the second."""
        first = self.pending is None
        result = self.place(point, key, frame, spacing)
        self.pressed = first and self.pending is not None
        return result

    def drag_to(self, point: tuple[int, int]) -> bool:
        """The pointer moved to ``point`` while a measurement waits: preview it; True if changed."""
        if self.pending is None or point == self.preview:
            return False
        self.preview = point
        return True

    def release(
        self, point: tuple[int, int], key: Hashable, frame: Measurable, spacing: Spacing
    ) -> Measurement | None:
        """The mouse button went up: a drag from the first end completes here; a click (released on
        the first end) waits for the second click."""
        if not self.pressed or self.pending is None:
            return None
        self.pressed = False
        if point == self.pending[1]:
            return None
        kind, start = self.pending
        return self._complete(kind, start, point, key, frame, spacing)

    def _complete(
        self,
        kind: MeasureKind,
        start: tuple[int, int],
        end: tuple[int, int],
        key: Hashable,
        frame: Measurable,
        spacing: Spacing,
    ) -> Measurement:
        result = measure(kind, start, end, frame, spacing)
        self.measurements.setdefault(key, []).append(result)
        self.tool, self.pending, self.preview, self.pressed = None, None, None, False
        return result

    def place_point(
        self, kind: MeasureKind, point: tuple[int, int], key: Hashable, frame: Measurable, spacing: Spacing
    ) -> Measurement | None:
        """Keyboard measuring in one call: choose ``kind`` if needed, then place an end at ``point``."""
        if self.pending is None or self.pending[0] != kind:
            self.arm(kind)
        return self.place(point, key, frame, spacing)

    def delete_last(self, key: Hashable) -> Measurement | None:
        """Delete the most recent measurement of the slice ``key``."""
        items = self.measurements.get(key)
        if not items:
            return None
        gone = items.pop()
        if not items:
            del self.measurements[key]
        return gone

    def shapes(self, key: Hashable) -> tuple[Shape, ...]:
        """What to draw on the slice ``key``: its measurements, a pending point, the crosshair."""
        out: list[Shape] = []
        for i, m in enumerate(self.measurements.get(key, ()), start=1):
            out.append(Shape(_shape_kind(m.kind), (m.p1, m.p2), MEASURE_COLOUR, f"{i}"))
        if self.pending is not None:
            kind, start = self.pending
            if self.preview is not None and self.preview != start:
                out.append(Shape(_shape_kind(kind), (start, self.preview), PENDING_COLOUR))
            out.append(Shape("point", (start,), PENDING_COLOUR))
        if self.crosshair is not None:
            out.append(Shape("cross", (self.crosshair,), CROSS_COLOUR))
        return tuple(out)
