"""The viewer session: everything the main screen shows about a series, as plain state and methods.

A :class:`ViewerSession` holds the series/slice cursor, the window, the view transform, the probe, the
measurements and cine for the series on screen, and knows which picture is on screen (the newest
loader answer it accepted). It never touches a widget, a timer or a thread: each method changes the state
and returns a :class:`Change` saying what the screen has to do about it (ask the loader for another
picture, redraw, refresh the corner texts, restart the cine timer). The screen maps keys, mouse events and
worker results onto these methods and pushes the outcome to its widgets, so the viewer's behaviour is
testable without Textual and the screen stays a mediator.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tui_dicom.core.graphics.layout import Shape, View
from tui_dicom.core.hierarchy.model import Hierarchy, Patient, Series, SliceRef, Study
from tui_dicom.core.imaging.geometry import Spacing
from tui_dicom.core.session.slice_loader import SliceInfo, SliceRequest
from tui_dicom.core.session.viewstate import ZOOM_STEP, MeasureKind, Measurement, PaneState

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from tui_dicom.core.dicom.source import FileRef
    from tui_dicom.core.imaging.pixels import Frame
    from tui_dicom.core.imaging.windowing import FileWindow, Window

#: slices decoded ahead of the one asked for, in the direction of travel
PREFETCH = 6
#: then the slices decoded just behind it: turning back (past a finding and back, the commonest reading
#: gesture) shows them at once, and so do both neighbours of the slice a series opens on. Travelling on,
#: they are the slices just shown, found in the cache.
PREFETCH_BEHIND = 2
#: cine rate bounds (frames per second) and the factor ``]``/``[`` change it by
MIN_FPS, MAX_FPS = 0.5, 60.0
FPS_STEP = 1.25
#: screen direction (rows, columns) of each arrow key
ARROWS: dict[str, tuple[int, int]] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


class Change(enum.Flag):
    """What a session method changed, i.e. what the screen must update."""

    NONE = 0
    #: the slice to show, or how it is rendered (window, inversion, overlays): ask the loader again
    SLICE = enum.auto()
    #: zoom, pan, rotation or flips: redraw the picture and the texts that depend on the view
    VIEW = enum.auto()
    #: the drawings on the picture (measurements, pending point, probe): redraw, no new picture
    DRAWING = enum.auto()
    #: the corner annotations (counter, window, cine rate)
    ANNOTATIONS = enum.auto()
    #: cine started, stopped or changed its rate: (re)start or stop the timer
    CINE = enum.auto()


@dataclass(frozen=True)
class Shown:
    """The picture on screen: a loader answer the session accepted."""

    seq: int
    """The request number it answered."""
    slice: SliceRef
    picture: np.ndarray
    """The windowed 8-bit picture."""
    frame: Frame
    """The decoded frame (for the probe, measurements and windows computed from its values)."""
    window: Window | None
    """The window it was rendered with (None for colour images)."""
    info: SliceInfo

    @property
    def shape(self) -> tuple[int, int]:
        """Rows and columns of the image."""
        rows, cols = self.frame.stored.shape[:2]
        return int(rows), int(cols)


@dataclass(frozen=True)
class MeasureOutcome:
    """The result of a measuring key or mouse event."""

    change: Change = Change.NONE
    #: the tool was just chosen (the screen explains how to measure with it)
    armed: bool = False
    #: the measurement this event completed
    completed: Measurement | None = None
    #: the second end was put on the first one: nothing measured, the user must move first
    unmoved: bool = False
    #: why a completed length is not in mm (empty when it is, or for an ROI)
    warning: str = ""


def fmt_mm(value: float) -> str:
    """One decimal, without a negative zero."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


class ViewerSession:
    """The state of the viewer for the series on screen, free of any UI (see the module docstring).

    Attributes:
        hierarchy: the newest snapshot of everything indexed (the series list).
        series: the series shown, or None before the first choice.
        context: the patient and study of ``series`` (found once per series, for the annotations).
        slices: the slices of ``series`` in display order.
        slice_index: the cursor: which of ``slices`` is asked for (the picture may lag behind it).
        direction: 1 or -1, the direction of the last step (prefetch goes that way).
        pane: window, inversion, view transform, probe, measurements and cine (:class:`PaneState`).
        overlays: burn the file's overlays into the picture.
        shown: the picture on screen (None until one arrives for this series).
        shown_window: the window of the picture on screen, as changed by the keys or a drag since.
        info: header values of the slice on screen (empty when its header could not be read).
        seq: number of the newest request; shown_seq: of the newest answer shown.
        orientation: edge letters of the picture as last drawn.
    """

    def __init__(self) -> None:
        self.hierarchy = Hierarchy()
        self.series: Series | None = None
        self.context: tuple[Patient | None, Study | None] = (None, None)
        self.slices: list[SliceRef] = []
        self.slice_index = 0
        #: the slice the session chose itself (the middle one) and the cursor has not left: a series that
        #: grows while indexed re-centres on its new middle instead of staying on the first batch's
        self._centred_on: SliceRef | None = None
        self.direction = 1
        self.pane = PaneState()
        self.overlays = True
        self.shown: Shown | None = None
        self.shown_window: Window | None = None
        self.info = SliceInfo()
        self.seq = 0
        self.shown_seq = 0
        self.orientation: dict[str, str] = {}
        #: window and view when a mouse drag started (the drag changes them relative to that)
        self.drag_window: Window | None = None
        self.drag_view: View | None = None

    # ------------------------------------------------------------------------------ series / slices

    def find_series(self, uid: str) -> Series | None:
        """The series with ``uid`` in the hierarchy, or None."""
        return next((s for s in self.hierarchy.all_series() if s.series_instance_uid == uid), None)

    def _find_context(self, series: Series) -> tuple[Patient | None, Study | None]:
        for patient in self.hierarchy.patients:
            for study in patient.studies:
                if any(se.series_instance_uid == series.series_instance_uid for se in study.series):
                    return patient, study
        return None, None

    def open_series(self, series: Series, index: int | None = None, keep_slice: bool = False) -> Change:
        """Show ``series`` at slice ``index`` (None: the middle one).

        ``keep_slice``: the series shown grew (indexing, a retrieve) — stay on the same slice. Another
        series starts with a fresh pane (measurements are kept, per slice) and stops cine.
        """
        series, index = self._latest(series, index)
        same = self.series is not None and self.series.series_instance_uid == series.series_instance_uid
        current = self.slices[self.slice_index] if (same and self.slices) else None
        self.series = series
        self.slices = series.slices()
        self.context = self._find_context(series)
        if not self.slices:
            return Change.NONE
        if keep_slice and current is not None:
            n = len(self.slices)
            if (
                self._centred_on is not None
                and self._centred_on.key == current.key
                and n // 2 != self.slice_index
            ):
                # still on the middle the session chose, of fewer slices: the middle of the grown series
                self.slice_index = n // 2
                self._centred_on = self.slices[self.slice_index]
                return Change.SLICE
            keys = [s.key for s in self.slices]
            self.slice_index = (
                keys.index(current.key) if current.key in keys else min(self.slice_index, len(keys) - 1)
            )
            return Change.ANNOTATIONS
        change = Change.SLICE
        if not same:
            if self.pane.cine:
                change |= Change.CINE
            self.pane = PaneState(measurements=self.pane.measurements)
            self.shown = None
        n = len(self.slices)
        self.slice_index = n // 2 if index is None else max(0, min(index, n - 1))
        self._centred_on = self.slices[self.slice_index] if index is None else None
        return change

    def _latest(self, series: Series, index: int | None) -> tuple[Series, int | None]:
        """The hierarchy's newest version of ``series`` when it holds more slices, with ``index`` moved to
        the same slice. A series chosen in the tree travels in a message; while a folder is indexed, the
        index can grow the series before that message is handled, and showing the older, shorter copy
        left the viewer on 87 of 150 slices once indexing was done."""
        latest = self.find_series(series.series_instance_uid)
        if latest is None or latest is series:
            return series, index
        chosen, grown = series.slices(), latest.slices()
        if len(grown) <= len(chosen):
            return series, index
        if index is not None and 0 <= index < len(chosen):
            keys = [s.key for s in grown]
            key = chosen[index].key
            index = keys.index(key) if key in keys else index
        return latest, index

    def step_series(self, direction: int) -> Series | None:
        """The next (``direction`` 1) or previous (-1) series in the hierarchy, wrapping around (the
        series shown itself when it is the only one); None before a series is shown."""
        series = self.hierarchy.all_series()
        if not series or self.series is None:
            return None
        uids = [s.series_instance_uid for s in series]
        try:
            pos = uids.index(self.series.series_instance_uid)
        except ValueError:
            pos = 0
        return series[(pos + direction) % len(series)]

    @property
    def current(self) -> SliceRef | None:
        """The slice the cursor is on."""
        return self.slices[self.slice_index] if self.slices else None

    @property
    def counter_text(self) -> str:
        """The slice counter, e.g. ``37/103`` (empty without slices)."""
        return f"{self.slice_index + 1}/{len(self.slices)}" if self.slices else ""

    def index_of(self, key: tuple[FileRef, int] | None) -> int | None:
        """Index of the slice with ``key`` (see :attr:`SliceRef.key`) in the series shown, or None."""
        if self.slices and self.slices[self.slice_index].key == key:
            return self.slice_index
        return next((i for i, other in enumerate(self.slices) if other.key == key), None)

    def move(self, delta: int = 0, absolute: int | None = None) -> Change:
        """Step ``delta`` slices (clamped at both ends), or go to slice ``absolute`` (-1: the last)."""
        if not self.slices:
            return Change.NONE
        n = len(self.slices)
        if absolute is not None:
            new = n - 1 if absolute < 0 else min(absolute, n - 1)
        else:
            new = max(0, min(n - 1, self.slice_index + delta))
            self.direction = 1 if delta >= 0 else -1
        if new == self.slice_index:
            return Change.NONE
        self._centred_on = None  # the user chose a slice: a growing series keeps it
        self.slice_index = new
        return Change.SLICE

    def page_step(self, pages: int, page: int = 10) -> Change:
        """Step ``pages`` pages of ``page`` slices (Page Down / Page Up)."""
        return self.move(delta=pages * page)

    def request(self, prefetch: int = PREFETCH, behind: int = PREFETCH_BEHIND) -> SliceRequest | None:
        """A new loader request for the slice under the cursor, rendered as the pane says, with the next
        ``prefetch`` slices in the direction of travel and then the ``behind`` slices behind it to
        prefetch; None without slices."""
        if not self.slices:
            return None
        self.seq += 1
        step = self.direction
        i = self.slice_index
        order = [
            *range(i + step, i + step * (prefetch + 1), step),
            *range(i - step, i - step * (behind + 1), -step),
        ]
        ahead = tuple(self.slices[j] for j in order if 0 <= j < len(self.slices))
        return SliceRequest(
            self.seq, self.slices[i], self.pane.window, self.pane.invert, self.overlays, ahead
        )

    @property
    def waiting(self) -> bool:
        """The newest request has not been answered on screen yet."""
        return self.shown_seq < self.seq

    # ------------------------------------------------------------------------------ loader answers

    def accept(
        self,
        seq: int,
        sl: SliceRef,
        picture: np.ndarray,
        frame: Frame,
        window: Window | None,
        info: SliceInfo,
    ) -> bool:
        """Take a decoded picture if it is newer than the one on screen and belongs to the series shown
        (while a key is held or in cine intermediate slices appear at decode speed; the last request
        always lands). Returns True if it is to be shown."""
        if not self.slices or seq <= self.shown_seq or self.index_of(sl.key) is None:
            return False
        self.shown_seq = seq
        self.info = info
        self.shown_window = window
        self.shown = Shown(seq, sl, picture, frame, window, info)
        return True

    def reject(self, seq: int, sl: SliceRef) -> bool:
        """A request failed: True if the failure is about the slice under the cursor and newer than the
        picture on screen (the screen then shows the reason instead)."""
        current = self.current
        if current is None or seq <= self.shown_seq or sl.key != current.key:
            return False
        self.shown_seq = seq
        self.info = SliceInfo()
        return True

    @property
    def frame(self) -> Frame | None:
        """The decoded frame on screen."""
        return self.shown.frame if self.shown is not None else None

    def modality_range(self) -> tuple[float, float]:
        """The range of modality values of the frame on screen (0–255 without one)."""
        frame = self.frame
        if frame is None:
            return (0.0, 255.0)
        import numpy as np

        lo, hi = frame.value_range
        values = frame.modality_transform(np.asarray([lo, hi]))
        return (float(values.min()), float(values.max()))

    # ------------------------------------------------------------------------------ window

    def set_window(self, window: Window | FileWindow | None) -> Change:
        """Render with ``window`` (None: the file's own, else auto)."""
        self.pane.window = window
        return Change.SLICE

    def adjust_window(self, d_width: float, d_level: float, fine: bool = False) -> Change:
        """Widen/narrow (``d_width``) or raise/lower (``d_level``) the window shown by one step."""
        if self.shown_window is None:
            return Change.NONE
        frame = self.frame
        integer = frame is None or not frame.is_float
        self.shown_window = self.pane.adjust_window(self.shown_window, d_width, d_level, fine, integer)
        return Change.ANNOTATIONS | Change.SLICE

    def window_presets(self) -> list[Window]:
        """The number keys' windows for the frame shown (see :func:`windowing.window_presets`)."""
        from tui_dicom.core.imaging.windowing import window_presets

        frame = self.frame
        return window_presets(frame) if frame is not None else []

    def preset(self, number: int) -> Change:
        """Window preset ``number`` (1-based); nothing when there is no such preset."""
        presets = self.window_presets()
        if 1 <= number <= len(presets):
            return self.set_window(presets[number - 1])
        return Change.NONE

    def next_file_window(self) -> tuple[Change, FileWindow | None]:
        """The file's own window; again, its next one. Returns the change and the file window chosen
        (None when the file defines none: its default, VOI LUT or auto, is shown)."""
        from tui_dicom.core.imaging.windowing import next_file_window

        frame = self.frame
        if frame is None or not frame.is_grey:
            return Change.NONE, None
        window = next_file_window(frame, self.pane.window)
        return self.set_window(window), window

    def auto_window(self) -> Change:
        """A window over the 0.5–99.5 percentiles of the frame shown."""
        from tui_dicom.core.imaging.windowing import auto_window

        frame = self.frame
        return self.set_window(auto_window(frame).with_name("auto")) if frame is not None else Change.NONE

    def minmax_window(self) -> Change:
        """A window from the smallest to the largest value of the frame shown."""
        from tui_dicom.core.imaging.windowing import minmax_window

        frame = self.frame
        return (
            self.set_window(minmax_window(frame).with_name("min–max")) if frame is not None else Change.NONE
        )

    def toggle_invert(self) -> Change:
        """Invert the grey scale."""
        self.pane.invert = not self.pane.invert
        return Change.SLICE

    def toggle_overlays(self) -> Change:
        """Show or hide the file's overlays."""
        self.overlays = not self.overlays
        return Change.SLICE

    def start_drag(self) -> None:
        """A mouse button went down: remember the window and view the drag starts from."""
        self.drag_window = self.shown_window
        self.drag_view = self.pane.view

    def drag_window_by(self, dx: float, dy: float) -> Change:
        """Right-drag by (``dx``, ``dy``) cells from where it started: width and level."""
        start = self.drag_window or self.shown_window
        if start is None:
            return Change.NONE
        self.shown_window = self.pane.drag_window(start, dx, dy, self.modality_range())
        return Change.ANNOTATIONS | Change.SLICE

    # ------------------------------------------------------------------------------ view

    def zoom(self, direction: int) -> Change:
        """Zoom in (``direction`` 1) or out (-1) by one step."""
        self.pane.zoom(ZOOM_STEP if direction > 0 else 1 / ZOOM_STEP)
        return Change.VIEW

    def fit(self) -> Change:
        """Fit the whole image in the pane."""
        self.pane.fit()
        return Change.VIEW

    def one_to_one(self) -> Change:
        """One image pixel per screen pixel."""
        self.pane.one_to_one()
        return Change.VIEW

    def pan(self, d_row: int, d_col: int) -> Change:
        """Pan by a tenth of the view in screen directions; with the probe on, move the probe by one
        image pixel instead."""
        if self.shown is None:
            return Change.NONE
        if self.pane.crosshair is not None:
            self.pane.move_crosshair(d_row, d_col, self.shown.shape)
            return Change.DRAWING
        self.pane.pan(d_row, d_col, self.shown.shape, 0.1)
        return Change.VIEW

    def drag_pan(self, dx: float, dy: float, cell: tuple[float, float] | None) -> Change:
        """Middle-drag by (``dx``, ``dy``) cells from where it started: the image follows the mouse.

        ``cell`` is the image pixels per screen cell along rows and columns (None: nothing drawn yet).
        """
        if self.shown is None:
            return Change.NONE
        self.pane.view = self.drag_view or self.pane.view
        if cell is None:
            return Change.NONE
        shape = self.shown.shape
        # the view centre moves the other way, in image pixels
        self.pane.pan(-dy * cell[0], -dx * cell[1], shape, self.pane.view.zoom / max(shape))
        return Change.VIEW

    def rotate(self) -> Change:
        """Rotate 90° clockwise."""
        self.pane.rotate()
        return Change.VIEW

    def flip(self, horizontal: bool) -> Change:
        """Mirror left/right (``horizontal``) or top/bottom."""
        self.pane.flip(horizontal)
        return Change.VIEW

    def reset_view(self) -> Change:
        """Zoom, pan, rotation, flips, inversion and window back to how the series opened."""
        self.pane.reset_view()
        self.shown_window = None
        return Change.SLICE | Change.VIEW

    def refresh_orientation(self) -> dict[str, str]:
        """Work out the edge letters for the slice shown and the view (kept in :attr:`orientation`)."""
        from tui_dicom.core.imaging.geometry import orientation_labels

        view = self.pane.view
        self.orientation = orientation_labels(self.info.orientation, view.rotation, view.flip_h, view.flip_v)
        return self.orientation

    # ------------------------------------------------------------------------------ probe

    def toggle_probe(self) -> Change:
        """Show the probe crosshair at the image centre, or hide it."""
        if self.pane.crosshair is not None:
            self.pane.crosshair = None
        elif self.shown is not None:
            rows, cols = self.shown.shape
            self.pane.crosshair = (rows // 2, cols // 2)
        return Change.DRAWING

    def arrow(self, direction: str, cell: Callable[[], tuple[float, float]] = lambda: (1.0, 1.0)) -> Change:
        """An arrow key (``up``, ``down``, ``left``, ``right``): moves the probe by one screen cell
        (``cell()`` image pixels, asked only then: a slice step needs no screen lookup) while it is on,
        else ↑/↓ step slices."""
        if self.pane.crosshair is not None and self.shown is not None and direction in ARROWS:
            d_row, d_col = ARROWS[direction]
            self.pane.move_crosshair(d_row, d_col, self.shown.shape, cell())
            return Change.DRAWING
        if direction in ("up", "down"):
            return self.move(delta=1 if direction == "down" else -1)
        return Change.NONE

    def pixel(self, image: tuple[float, float] | None) -> tuple[int, int] | None:
        """The image pixel at image coordinates ``image`` (clamped to the image); None without one."""
        if image is None or self.shown is None:
            return None
        rows, cols = self.shown.shape
        return (min(max(int(image[0]), 0), rows - 1), min(max(int(image[1]), 0), cols - 1))

    def probe_text(self) -> str | None:
        """The probe line: position, stored and modality value, patient coordinates; None when off."""
        shown = self.shown
        if self.pane.crosshair is None or shown is None:
            return None
        from tui_dicom.core.imaging.geometry import patient_coords

        row, col = self.pane.crosshair
        frame = shown.frame
        stored = frame.stored[row, col]
        value, unit = frame.value_at(row, col)
        if isinstance(value, tuple):
            text = f"r{row} c{col}  RGB {tuple(int(v) for v in value)}"
        else:
            text = f"r{row} c{col}  stored {stored}  value {value:.6g}{(' ' + unit) if unit else ''}"
        info = shown.info
        spacing = info.spacing
        coords = patient_coords(
            info.position,
            info.orientation,
            (spacing.row, spacing.col)
            if spacing is not None and spacing.calibrated and spacing.row and spacing.col
            else None,
            row,
            col,
        )
        if coords is not None:
            text += "  (" + ", ".join(fmt_mm(c) for c in coords) + ") mm"
        return text

    # ------------------------------------------------------------------------------ measurements

    def _measure_context(self) -> tuple[tuple[FileRef, int], Frame, Spacing] | None:
        """(slice key, frame, spacing) of the picture shown, for measuring; None without one."""
        if self.shown is None:
            return None
        spacing = self.info.spacing or Spacing(None, None, "")
        return self.shown.slice.key, self.shown.frame, spacing

    def _outcome(self, result: Measurement | None, change: Change = Change.DRAWING) -> MeasureOutcome:
        """What the screen needs after a measuring event: a completed length warns when uncalibrated."""
        warning = ""
        spacing = self.info.spacing
        if result is not None and result.kind == "line" and spacing is not None:
            warning = spacing.warning
        return MeasureOutcome(change, completed=result, warning=warning)

    def measure_key(self, kind: MeasureKind) -> MeasureOutcome:
        """``m``/``R``/``E``: choose the tool ``kind`` (the probe appears to place the ends with the
        arrows); pressed again, put an end down at the crosshair."""
        context = self._measure_context()
        if context is None:
            return MeasureOutcome()
        pane = self.pane
        if pane.tool != kind and (pane.pending is None or pane.pending[0] != kind):
            pane.arm(kind)
            if pane.crosshair is None and self.shown is not None:
                rows, cols = self.shown.shape
                pane.crosshair = (rows // 2, cols // 2)
            return MeasureOutcome(Change.DRAWING, armed=True)
        point = pane.crosshair
        if point is None:
            return MeasureOutcome()
        before = pane.pending
        outcome = self._outcome(pane.place(point, *context))
        if before is not None and pane.pending == before:
            return replace(outcome, unmoved=True)
        return outcome

    def cancel_measurement(self) -> Change:
        """Drop the measuring tool and a measurement in progress."""
        return Change.DRAWING if self.pane.cancel() else Change.NONE

    def delete_measurement(self) -> Change:
        """Delete the last measurement of the slice shown."""
        if self.shown is not None and self.pane.delete_last(self.shown.slice.key) is not None:
            return Change.DRAWING
        return Change.NONE

    def clear_measurements(self) -> Change:
        """Delete every measurement of every slice (and one in progress)."""
        had = bool(self.pane.measurements) | self.pane.cancel()
        self.pane.measurements.clear()
        return Change.DRAWING if had else Change.NONE

    def measurements_here(self) -> list[Measurement]:
        """The measurements of the slice shown."""
        if self.shown is None:
            return []
        return list(self.pane.measurements.get(self.shown.slice.key, ()))

    def measurement_lines(self) -> list[str]:
        """One line per measurement of the slice shown: ``1. line: 42.0 mm``."""
        return [f"{i}. {m.kind}: {m.text}" for i, m in enumerate(self.measurements_here(), start=1)]

    def shapes(self) -> tuple[Shape, ...]:
        """What to draw on the picture shown: measurements, a pending point, the crosshair."""
        return self.pane.shapes(self.shown.slice.key) if self.shown is not None else ()

    def click(self, pixel: tuple[int, int] | None) -> MeasureOutcome:
        """The left button went down on ``pixel``: an end of the measurement (a drag may follow), or
        the probe moves there."""
        context = self._measure_context()
        if pixel is None or context is None:
            return MeasureOutcome()
        pane = self.pane
        if pane.measuring:
            outcome = self._outcome(pane.press(pixel, *context))
            if pane.crosshair is not None:
                pane.crosshair = pixel
            return outcome
        if pane.crosshair is not None:
            pane.crosshair = pixel
            return MeasureOutcome(Change.DRAWING)
        return MeasureOutcome()

    def release(self, pixel: tuple[int, int] | None) -> MeasureOutcome:
        """The left button went up on ``pixel``: a drag from the first end completes there."""
        context = self._measure_context()
        if pixel is None or context is None or not self.pane.pressed:
            return MeasureOutcome()
        return self._outcome(self.pane.release(pixel, *context))

    def hover(self, pixel: tuple[int, int] | None) -> Change:
        """The pointer moved to ``pixel``: preview a pending measurement, move the probe."""
        if pixel is None:
            return Change.NONE
        changed = self.pane.drag_to(pixel)
        if self.pane.crosshair is not None and pixel != self.pane.crosshair:
            self.pane.crosshair = pixel
            changed = True
        return Change.DRAWING if changed else Change.NONE

    def drag_measure(self, pixel: tuple[int, int] | None) -> Change:
        """A left-drag while a measurement waits: its preview (and the probe) follow the pointer."""
        if pixel is None or not self.pane.drag_to(pixel):
            return Change.NONE
        if self.pane.crosshair is not None:
            self.pane.crosshair = pixel
        return Change.DRAWING

    # ------------------------------------------------------------------------------ cine

    @property
    def cine_interval(self) -> float:
        """Seconds between cine frames."""
        return 1.0 / max(MIN_FPS, self.pane.cine_fps)

    def toggle_cine(self) -> Change:
        """Play the series as a film at its own rate (Cine Rate, Frame Time, else 10 fps), or pause."""
        if self.pane.cine:
            self.pane.cine = False
        elif len(self.slices) > 1:
            self.pane.cine = True
            self.pane.cine_fps = float(self.info.cine_fps)
        else:
            return Change.ANNOTATIONS
        return Change.CINE | Change.ANNOTATIONS

    def stop_cine(self) -> Change:
        """Pause the cine (nothing when it is not playing)."""
        if not self.pane.cine:
            return Change.NONE
        self.pane.cine = False
        return Change.CINE | Change.ANNOTATIONS

    def cine_rate(self, direction: int) -> Change:
        """Faster (``direction`` 1) or slower (-1) by one step, within 0.5–60 fps."""
        factor = FPS_STEP if direction > 0 else 1 / FPS_STEP
        self.pane.cine_fps = min(MAX_FPS, max(MIN_FPS, self.pane.cine_fps * factor))
        return Change.CINE | Change.ANNOTATIONS

    def cine_next(self) -> int | None:
        """The slice index the next cine frame shows (looping), None when not playing."""
        if not self.slices or not self.pane.cine:
            return None
        return (self.slice_index + 1) % len(self.slices)

    def cine_tick(self) -> Change:
        """Advance the film by one slice, looping (the loader's latest-only slot drops frames it cannot
        keep up with)."""
        nxt = self.cine_next()
        if nxt is None:
            return Change.NONE
        self.direction = 1
        self.slice_index = nxt
        self._centred_on = None
        return Change.SLICE

    @property
    def cine_text(self) -> str:
        """``▶ 10 fps`` while playing, else empty."""
        return f"▶ {self.pane.cine_fps:.0f} fps" if self.pane.cine else ""


def fmt_num(value: float) -> str:
    """A whole number without decimals, else one decimal; ``?`` for inf/nan (a hostile header)."""
    if not math.isfinite(value):
        return "?"
    return f"{value:.0f}" if abs(value - round(value)) < 1e-6 else f"{value:.1f}"
