"""The compare screen: two series side by side, scrolled together, with each other's reference line.

Scrolling the active pane scrolls the other to its slice nearest along that series' normal when both
share a Frame of Reference (a prior with another Frame of Reference follows after ``o`` locks the
current offset). The position of each pane's slice is drawn on the other as a reference (scout) line
when their planes cross (an axial and a sagittal series of one study). Window/level and zoom apply to
the active pane, or to both when linked (``y``). Slices are decoded in a thread worker per pane through
the same :class:`~tui_dicom.core.session.slice_loader.SliceLoader` as the main viewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from tui_dicom.core.graphics.layout import Shape, View
from tui_dicom.core.hierarchy.model import Series, SliceRef
from tui_dicom.core.imaging.windowing import Window
from tui_dicom.core.safe import safe_text
from tui_dicom.core.session.slice_loader import SliceLoader, SliceRequest, SliceResult
from tui_dicom.core.volume import Plane, SliceGeometry, nearest_slice, reference_line
from tui_dicom.ui.driver import use_sparse_compositor
from tui_dicom.ui.widgets.picture import PictureView

SIDES = ("left", "right")
REFERENCE = (0, 200, 255)


def image_plane(g: SliceGeometry | None) -> Plane | None:
    """The plane of an original slice from its header geometry (None without full geometry)."""
    if g is None or g.position is None or not g.orientation or not g.spacing or not g.rows or not g.columns:
        return None
    return Plane.from_image(g.position, g.orientation, g.spacing, g.rows, g.columns)


def slice_centre(g: SliceGeometry | None) -> np.ndarray | None:
    """LPS mm of the centre of a slice (ImagePositionPatient is the top-left pixel's), or None."""
    plane = image_plane(g)
    return None if plane is None else plane.patient((plane.rows - 1) / 2, (plane.cols - 1) / 2)


@dataclass
class ComparedSlice(Message):
    """A decoded slice for one side."""

    side: str
    result: SliceResult


@dataclass
class GeometryRead(Message):
    """Header geometry of every slice of the series on one side (aligned with its slices)."""

    side: str
    series_uid: str
    geometry: list[SliceGeometry | None]


class CompareScreen(Screen[None]):
    """Two series side by side, in sync by position."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back"),
        Binding("tab", "switch", "Other pane"),
        Binding("down,j", "step(1)", "Next slice"),
        Binding("up,k", "step(-1)", "Previous slice"),
        Binding("pagedown", "step(10)", "+10", show=False),
        Binding("pageup", "step(-10)", "-10", show=False),
        Binding("n", "other_series(1)", "Next series right"),
        Binding("N", "other_series(-1)", "Previous series right", show=False),
        Binding("s", "toggle_sync", "Sync"),
        Binding("o", "lock_offset", "Lock offset"),
        Binding("y", "toggle_link", "Link W/L+zoom"),
        Binding("w", "width(-1)", "Width -", show=False),
        Binding("W", "width(1)", "Width +", show=False),
        Binding("l", "level(-1)", "Level -", show=False),
        Binding("L", "level(1)", "Level +", show=False),
        Binding("plus", "zoom(1)", "Zoom in", show=False),
        Binding("minus", "zoom(-1)", "Zoom out", show=False),
    ]

    DEFAULT_CSS = """
    CompareScreen #cmp-panes { height: 1fr; }
    CompareScreen .pane { width: 1fr; height: 1fr; border: round $panel; }
    CompareScreen .pane.-active { border: round $accent; }
    CompareScreen .pane PictureView { height: 1fr; }
    CompareScreen .label { height: 1; }
    CompareScreen #cmp-status { height: 1; }
    """

    def __init__(self, all_series: list[Series], left: Series, *, cache_mb: int = 256) -> None:
        super().__init__()
        use_sparse_compositor(self)  # a step repaints the pictures, labels and status only
        self.all_series = [s for s in all_series if s.slices()]
        self.series: dict[str, Series] = {"left": left, "right": self._pick_right(left)}
        self.slices: dict[str, list[SliceRef]] = {side: self.series[side].slices() for side in SIDES}
        self.index: dict[str, int] = {side: len(self.slices[side]) // 2 for side in SIDES}
        self.windows: dict[str, Window | None] = {"left": None, "right": None}
        self.zoom: dict[str, float] = {"left": 1.0, "right": 1.0}
        self.results: dict[str, SliceResult | None] = {"left": None, "right": None}
        self.geometry: dict[str, list[SliceGeometry | None]] = {"left": [], "right": []}
        self.active = "left"
        self.sync = True
        self.linked = True
        #: a user-locked offset (mm along the right series' normal) for series in different frames
        self.offset_mm: float | None = None
        self.loader = SliceLoader(max(16, cache_mb) * 1024**2)
        self._seq = {"left": 0, "right": 0}

    @property
    def settled(self) -> bool:
        """Both panes show the slice asked for last (for screenshots and tests)."""
        return all(
            (r := self.results[side]) is not None and r.seq == self._seq[side] and bool(self.geometry[side])
            for side in SIDES
        )

    @property
    def surface_state(self) -> tuple[object, ...]:
        """Everything a key may visibly change here (the UI walk compares it before and after a key)."""
        return (
            self.active,
            self.sync,
            self.linked,
            self.offset_mm,
            self.index["left"],
            self.index["right"],
            self.series["right"].series_instance_uid,
            self.windows["left"],
            self.windows["right"],
            self.zoom["left"],
            self.zoom["right"],
        )

    def _pick_right(self, left: Series) -> Series:
        """The next series after ``left`` (wrapping), preferring another series of the same study."""
        others = [s for s in self.all_series if s.series_instance_uid != left.series_instance_uid]
        return others[0] if others else left

    def compose(self) -> ComposeResult:
        """Two panes and a status line."""
        with Horizontal(id="cmp-panes"):
            for side in SIDES:
                with Vertical(classes="pane", id=f"cmp-pane-{side}"):
                    yield Static("", classes="label", id=f"cmp-label-{side}")
                    yield PictureView(id=f"cmp-picture-{side}")
        yield Static("", id="cmp-status")
        yield Footer()

    def on_mount(self) -> None:
        """Load both panes and read the frames of reference."""
        self._mark_active()
        for side in SIDES:
            self._read_geometry(side, self.series[side])
            self._request(side)

    # ------------------------------------------------------------------------------ workers

    @work(thread=True, exclusive=False, exit_on_error=False)
    def _read_geometry(self, side: str, series: Series) -> None:
        """Positions, orientations and frames of reference from the headers (a DICOMDIR may lack them)."""
        from tui_dicom.core.volume.build import geometry_of

        out: list[SliceGeometry | None] = []
        for sl in series.slices():
            try:
                out.append(geometry_of(sl.instance.ref, self.loader.header(sl.instance.ref), sl.frame))
            except Exception:  # noqa: BLE001 - a slice without geometry is simply not synced
                out.append(None)
        self.post_message(GeometryRead(side, series.series_instance_uid, out))

    def _request(self, side: str) -> None:
        self._seq[side] += 1
        req = SliceRequest(self._seq[side], self.slices[side][self.index[side]], self.windows[side])
        if side == "left":
            self._load_left(req)
        else:
            self._load_right(req)

    @work(thread=True, exclusive=True, group="cmp-left", exit_on_error=False)
    def _load_left(self, req: SliceRequest) -> None:
        self._load("left", req)

    @work(thread=True, exclusive=True, group="cmp-right", exit_on_error=False)
    def _load_right(self, req: SliceRequest) -> None:
        self._load("right", req)

    def _load(self, side: str, req: SliceRequest) -> None:
        worker = get_current_worker()
        result = self.loader.load(req, should_stop=lambda: worker.is_cancelled)
        if result is not None and not worker.is_cancelled:
            self.post_message(ComparedSlice(side, result))

    def on_geometry_read(self, message: GeometryRead) -> None:
        """Geometry of one side is known: sync the right pane to the left and draw reference lines."""
        if message.series_uid != self.series[message.side].series_instance_uid:
            return
        self.geometry[message.side] = message.geometry
        if all(self.geometry[side] for side in SIDES):
            before = self.index["right"]
            self._sync_other("left")
            if self.index["right"] != before:
                self._request("right")
        for side in SIDES:
            self._draw(side)
        self._status()

    def _geom(self, side: str, index: int | None = None) -> SliceGeometry | None:
        geoms = self.geometry[side]
        i = self.index[side] if index is None else index
        return geoms[i] if 0 <= i < len(geoms) else None

    def frame_of_reference(self, side: str) -> str:
        """FrameOfReferenceUID of the series on ``side`` ("" until known)."""
        g = self._geom(side, 0)
        return g.frame_of_reference if g is not None else ""

    @property
    def same_frame(self) -> bool:
        """Both series share a (known) Frame of Reference."""
        left, right = self.frame_of_reference("left"), self.frame_of_reference("right")
        return bool(left) and left == right

    def on_compared_slice(self, message: ComparedSlice) -> None:
        """Show a slice if it is the one asked for last on its side."""
        side, result = message.side, message.result
        if result.seq != self._seq[side]:
            return
        self.results[side] = result
        if self.windows[side] is None and result.window is not None:
            self.windows[side] = result.window
        self._draw(side)
        self._draw("right" if side == "left" else "left")  # its reference line moved

    # ------------------------------------------------------------------------------ drawing

    def _draw(self, side: str) -> None:
        result = self.results[side]
        label = self.query_one(f"#cmp-label-{side}", Static)
        n = len(self.slices[side])
        title = f"{safe_text(self.series[side].label())}  {self.index[side] + 1}/{n}"
        if result is None:
            label.update(Text(title))
            return
        if result.error:
            label.update(Text(f"{title}  {result.error}"))
            return
        # the loader sets both whenever it reports no error
        assert result.picture is not None and result.frame is not None
        other = "right" if side == "left" else "left"
        shapes: list[Shape] = []
        mine = image_plane(self._geom(side))
        theirs = image_plane(self._geom(other))
        if self.same_frame and mine is not None and theirs is not None:
            line = reference_line(mine, theirs)
            if line is not None:
                shapes.append(Shape("line", line, REFERENCE))
        from tui_dicom.core.imaging.windowing import pixel_aspect

        try:
            aspect = pixel_aspect(result.frame)
        except Exception:  # noqa: BLE001 - cosmetic
            aspect = 1.0
        self.query_one(f"#cmp-picture-{side}", PictureView).show(
            (result.slice.key, result.window, len(shapes), tuple(s.points for s in shapes)),
            result.picture,
            pixel_aspect=aspect,
            view=View(zoom=self.zoom[side]),
            shapes=tuple(shapes),
        )
        win = result.window
        wl = f"  W:{win.width:.0f} L:{win.center:.0f}" if win is not None else ""
        label.update(Text(f"{title}{wl}"))
        self._status()

    def _status(self) -> None:
        if self.same_frame:
            sync = "sync by position" if self.sync else "sync off"
        elif self.offset_mm is not None and self.sync:
            sync = f"sync by locked offset {self.offset_mm:+.1f} mm"
        else:
            sync = "different Frames of Reference: o locks the current offset" if self.sync else "sync off"
        parts = [sync, "W/L+zoom linked" if self.linked else "W/L+zoom per pane"]
        gap = self.gap_mm()
        if gap is not None:
            parts.append(f"slice gap {gap:.1f} mm")
        self.query_one("#cmp-status", Static).update(Text(" │ ".join(parts)))

    def _mark_active(self) -> None:
        for side in SIDES:
            self.query_one(f"#cmp-pane-{side}").set_class(side == self.active, "-active")

    # ------------------------------------------------------------------------------ sync

    def gap_mm(self) -> float | None:
        """Distance (mm, along the right series' normal) between the two slices shown, or None."""
        left, right_g = slice_centre(self._geom("left")), self._geom("right")
        right = slice_centre(right_g)
        plane = image_plane(right_g)
        if left is None or right is None or plane is None:
            return None
        return float((right - left) @ plane.normal)

    def _sync_other(self, moved: str) -> None:
        """Move the other pane to the slice nearest to ``moved``'s slice (same frame, or locked offset)."""
        if not self.sync or not (self.same_frame or self.offset_mm is not None):
            return
        other = "right" if moved == "left" else "left"
        point = slice_centre(self._geom(moved))
        positions = [slice_centre(g) for g in self.geometry[other]]
        first = image_plane(self._geom(other, 0))
        normal = None if first is None else tuple(float(v) for v in first.normal)
        if point is None or normal is None or not positions or any(p is None for p in positions):
            return
        offset = 0.0 if self.same_frame else (self.offset_mm or 0.0)
        offset = offset if other == "right" else -offset
        # the offset is measured along the right series' normal; on the left's normal its sign follows
        index, _ = nearest_slice(
            np.array([p for p in positions if p is not None]), normal, point, offset_mm=offset
        )
        self.index[other] = index

    # ------------------------------------------------------------------------------ mouse

    def _side_of(self, view: PictureView) -> str | None:
        side = (view.id or "").removeprefix("cmp-picture-")
        return side if side in SIDES else None

    def on_picture_view_clicked(self, message: PictureView.Clicked) -> None:
        """A click makes that pane active."""
        side = self._side_of(message.picture_view)
        if side is not None and side != self.active:
            self.action_switch()

    def on_picture_view_wheel(self, message: PictureView.Wheel) -> None:
        """The wheel scrolls the pane under the mouse (the other follows)."""
        side = self._side_of(message.picture_view)
        if side is not None:
            if side != self.active:
                self.action_switch()
            self.action_step(message.direction)

    # ------------------------------------------------------------------------------ actions

    def action_close(self) -> None:
        """Back to the viewer."""
        self.dismiss(None)

    def action_switch(self) -> None:
        """The other pane becomes active."""
        self.active = "right" if self.active == "left" else "left"
        self._mark_active()

    def action_step(self, delta: int) -> None:
        """Scroll the active pane; the other follows when in sync."""
        side = self.active
        n = len(self.slices[side])
        new = max(0, min(n - 1, self.index[side] + delta))
        if new == self.index[side]:
            return
        self.index[side] = new
        self._request(side)
        before = dict(self.index)
        self._sync_other(side)
        other = "right" if side == "left" else "left"
        if self.index[other] != before[other]:
            self._request(other)
        self._draw(other)

    def action_other_series(self, direction: int) -> None:
        """Show another series in the right pane."""
        uids = [s.series_instance_uid for s in self.all_series]
        try:
            pos = uids.index(self.series["right"].series_instance_uid)
        except ValueError:
            pos = 0
        self.series["right"] = self.all_series[(pos + direction) % len(self.all_series)]
        self.slices["right"] = self.series["right"].slices()
        self.index["right"] = len(self.slices["right"]) // 2
        self.windows["right"] = None
        self.results["right"] = None
        self.geometry["right"] = []
        self.offset_mm = None
        self._read_geometry("right", self.series["right"])
        self._request("right")

    def action_toggle_sync(self) -> None:
        """Scroll together or independently."""
        self.sync = not self.sync
        self._status()

    def action_lock_offset(self) -> None:
        """Keep the current distance between the two slices while scrolling (series in different frames)."""
        self.offset_mm = self.gap_mm()
        self.sync = True
        self._status()

    def action_toggle_link(self) -> None:
        """Window/level and zoom on both panes, or on the active one."""
        self.linked = not self.linked
        self._status()

    def _targets(self) -> tuple[str, ...]:
        return SIDES if self.linked else (self.active,)

    def action_width(self, direction: int) -> None:
        """Narrower or wider window."""
        for side in self._targets():
            w = self.windows[side]
            if w is not None:
                self.windows[side] = Window(w.center, max(1.0, w.width * (1.1 if direction > 0 else 1 / 1.1)))
                self._request(side)

    def action_level(self, direction: int) -> None:
        """Lower or higher level."""
        for side in self._targets():
            w = self.windows[side]
            if w is not None:
                self.windows[side] = Window(w.center + direction * max(1.0, w.width / 20), w.width)
                self._request(side)

    def action_zoom(self, direction: int) -> None:
        """Zoom in or out."""
        for side in self._targets():
            self.zoom[side] = max(1.0, min(16.0, self.zoom[side] * (1.25 if direction > 0 else 0.8)))
            self._draw(side)
