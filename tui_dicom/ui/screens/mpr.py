"""The MPR screen: axial, coronal and sagittal planes of one series' volume with a linked crosshair.

The volume is built in a thread worker (headers, checks, slice by slice with a cancel event); progress
comes back as messages and the planes are drawn as the slices arrive. The crosshair is one patient point
(LPS mm) shared by the three panes: moving it in the active pane moves the other two planes. ``x``
switches the active pane between axial, coronal and sagittal, ``v`` shows the three panes or only the
active one; thick slab (``[``/``]`` thickness in mm, ``m`` MIP/MinIP/average), window/level, and the
crosshair doubles as the probe (HU and LPS mm in the status line). Planes have square pixels, so the
picture widget's cell-aspect correction gives the right shape on any terminal.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar

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
from tui_dicom.core.hierarchy.model import Series
from tui_dicom.core.imaging.windowing import Window
from tui_dicom.core.safe import safe_text
from tui_dicom.core.volume import PLANES, SLAB_MODES, Volume
from tui_dicom.ui.driver import use_sparse_compositor
from tui_dicom.ui.widgets.picture import PictureView

#: the last complete volume, by (series UID, slice count, budget)
_LAST_VOLUME: dict[tuple[str, int, int], Volume] = {}
#: slab thicknesses the [ and ] keys step through, in mm (0: a thin plane)
SLABS = (0.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
CROSS = (255, 200, 0)
REFERENCE = (0, 200, 255)
MEASURE = (255, 80, 80)


@dataclass
class VolumeProgress(Message):
    """Slices loaded so far."""

    loaded: int
    total: int
    volume: Volume

    def can_replace(self, message: Message) -> bool:
        """Only the newest progress matters."""
        return isinstance(message, VolumeProgress)


@dataclass
class VolumeFailed(Message):
    """The series is not a volume, or could not be read: one line why."""

    reason: str


@dataclass(frozen=True)
class _Snapshot:
    """What the render worker draws: the state at the time of the request."""

    seq: int
    volume: Volume
    point: np.ndarray
    kinds: tuple[str, ...]
    slab_mm: float
    slab_mode: str
    window: Window | None
    zoom: float
    measure: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class RenderedPane:
    """One pane's picture, drawings and title."""

    kind: str
    key: tuple[Any, ...]
    picture: np.ndarray
    view: View
    shapes: tuple[Shape, ...]
    label: str


@dataclass
class PlanesReady(Message):
    """Rendered panes for request ``seq``; ``window`` is the window used (the default on first draw)."""

    seq: int
    panes: tuple[RenderedPane, ...]
    window: Window | None


def render_pane(snap: _Snapshot, kind: str, window: Window | None) -> tuple[RenderedPane, Window | None]:
    """Sample and window plane ``kind`` through the crosshair, with crosshair, reference lines and the
    length measurement drawn where they lie (pure: numpy and the core only)."""
    from tui_dicom.core.imaging.pixels import Frame
    from tui_dicom.core.imaging.windowing import default_window, render
    from tui_dicom.core.volume import reference_line, sample_plane, standard_plane

    vol, point = snap.volume, snap.point
    planes: dict[str, Any] = {k: standard_plane(vol, k, point) for k in PLANES}
    plane = planes[kind]
    values = sample_plane(vol, plane, slab_mm=snap.slab_mm, mode=snap.slab_mode)
    frame = Frame(
        stored=values,
        photometric="MONOCHROME1" if vol.monochrome1 else "MONOCHROME2",
        bits_stored=32,
        is_float=True,
        units=vol.units,
        windows=vol.windows,
        value_range=(float(values.min()), float(values.max())),
        pixel_spacing=plane.spacing,
    )
    if window is None:
        window = default_window(frame)
    picture = render(frame, window, overlays=False)
    row, col, _ = plane.pixel(point)
    shapes = [Shape("cross", ((row, col),), CROSS)]
    for other_kind, other in planes.items():
        if other_kind != kind:
            line = reference_line(plane, other, clip_to_other=False)
            if line is not None:
                shapes.append(Shape("line", line, REFERENCE))
    half_voxel = min(vol.spacing) / 2
    ends = [plane.pixel(p) for p in snap.measure]
    if ends and all(abs(d) <= half_voxel for _, _, d in ends):
        if len(ends) == 2:
            length = float(np.linalg.norm(snap.measure[1] - snap.measure[0]))
            shapes.append(Shape("line", (ends[0][:2], ends[1][:2]), MEASURE, f"{length:.1f} mm"))
        else:
            shapes.append(Shape("point", (ends[0][:2],), MEASURE))
    labels = plane.labels()
    slab = f"  slab {snap.slab_mm:g} mm {snap.slab_mode.upper()}" if snap.slab_mm else ""
    key = (
        "mpr",
        kind,
        tuple(np.round(point, 3)),
        snap.slab_mm,
        snap.slab_mode,
        window,
        vol.loaded,
        len(ends),
    )
    view = View(zoom=snap.zoom, center=(row, col) if snap.zoom > 1 else None)
    label = f"{kind}  {labels['left']}←→{labels['right']}  {labels['top']}↑{slab}"
    return RenderedPane(kind, key, picture, view, tuple(shapes), label), window


class MprScreen(Screen[None]):
    """Three linked planes (or one) through the volume of a series."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back"),
        Binding("x", "next_plane", "Axial/coronal/sagittal"),
        Binding("v", "toggle_layout", "1 or 3 panes"),
        Binding("up", "cross(-1, 0)", "Crosshair up", show=False),
        Binding("down", "cross(1, 0)", "Crosshair down", show=False),
        Binding("left", "cross(0, -1)", "Crosshair left", show=False),
        Binding("right", "cross(0, 1)", "Crosshair right", show=False),
        Binding("shift+up", "cross(-10, 0)", "Crosshair up 10", show=False),
        Binding("shift+down", "cross(10, 0)", "Crosshair down 10", show=False),
        Binding("shift+left", "cross(0, -10)", "Crosshair left 10", show=False),
        Binding("shift+right", "cross(0, 10)", "Crosshair right 10", show=False),
        Binding("pageup,k", "depth(-1)", "Plane back"),
        Binding("pagedown,j", "depth(1)", "Plane forward"),
        Binding("right_square_bracket", "slab(1)", "Thicker slab"),
        Binding("left_square_bracket", "slab(-1)", "Thinner slab"),
        Binding("m", "slab_mode", "MIP/MinIP/avg"),
        Binding("d", "measure", "Length (2 crosshair points)"),
        Binding("w", "width(-1)", "Width -", show=False),
        Binding("W", "width(1)", "Width +", show=False),
        Binding("l", "level(-1)", "Level -", show=False),
        Binding("L", "level(1)", "Level +", show=False),
        Binding("0", "file_window", "File window", show=False),
        Binding("plus", "zoom(1)", "Zoom in", show=False),
        Binding("minus", "zoom(-1)", "Zoom out", show=False),
    ]

    DEFAULT_CSS = """
    MprScreen #panes { height: 1fr; }
    MprScreen .pane { width: 1fr; height: 1fr; border: round $panel; }
    MprScreen .pane.-active { border: round $accent; }
    MprScreen .pane PictureView { height: 1fr; }
    MprScreen .label { height: 1; }
    MprScreen #mpr-status { height: 1; }
    """

    def __init__(self, series: Series, *, cache_mb: int = 512) -> None:
        super().__init__()
        use_sparse_compositor(self)  # a step repaints the pictures, labels and status only
        self.series = series
        self.cache_mb = cache_mb
        self.volume: Volume | None = None
        self.point: np.ndarray | None = None
        self.active = "axial"
        self.three = True
        self.slab_index = 0
        self.slab_mode = "mip"
        self.window: Window | None = None
        self.zoom = 1.0
        self.reason = ""
        self.progress = (0, 0)
        self._cancel = threading.Event()
        self._seq = 0
        self._shown_seq = 0
        #: the length measurement: up to two crosshair points (LPS mm)
        self.measure: list[np.ndarray] = []

    @property
    def settled(self) -> bool:
        """The volume is loaded and the newest planes are on screen (for screenshots and tests)."""
        return self.volume is not None and self.volume.complete and self._shown_seq == self._seq

    @property
    def surface_state(self) -> tuple[object, ...]:
        """Everything a key may visibly change here (the UI walk compares it before and after a key)."""
        point = None if self.point is None else tuple(round(float(v), 4) for v in self.point)
        return (
            self.active,
            self.three,
            self.slab_index,
            self.slab_mode,
            self.window,
            self.zoom,
            point,
            len(self.measure),
            self.reason,
        )

    @property
    def slab_mm(self) -> float:
        """The slab thickness in mm (0: thin)."""
        return SLABS[self.slab_index]

    def compose(self) -> ComposeResult:
        """Three panes side by side and a status line."""
        with Horizontal(id="panes"):
            for kind in PLANES:
                with Vertical(classes="pane", id=f"pane-{kind}"):
                    yield Static(kind, classes="label", id=f"label-{kind}")
                    yield PictureView(id=f"picture-{kind}")
        yield Static("", id="mpr-status")
        yield Footer()

    def on_mount(self) -> None:
        """Start building the volume (or reuse the last one built, for the same series and budget)."""
        self._layout()
        self._status()
        key = (self.series.series_instance_uid, len(self.series.slices()), self.cache_mb)
        cached = _LAST_VOLUME.get(key)
        if cached is not None:
            self.post_message(VolumeProgress(cached.shape[0], cached.shape[0], cached))
        else:
            self._build()

    def on_unmount(self) -> None:
        """Stop the build."""
        self._cancel.set()

    # ------------------------------------------------------------------------------ the volume

    @work(thread=True, exclusive=True, group="volume", exit_on_error=False)
    def _build(self) -> None:
        from tui_dicom.core.errors import DicomViewerError
        from tui_dicom.core.volume import Cancelled, empty_volume, load_volume, plan_volume, read_geometries

        worker = get_current_worker()
        headers: dict[Any, Any] = {}
        try:
            geoms = read_geometries(
                [sl.key for sl in self.series.slices()], cancel=self._cancel, headers=headers
            )
            plan = plan_volume(geoms, budget_bytes=max(16, self.cache_mb) * 1024**2)
            vol = empty_volume(plan, series_uid=self.series.series_instance_uid)
            step = max(1, plan.shape[0] // 20)

            def progress(done: int, total: int) -> None:
                if done == total or done % step == 0:
                    self.post_message(VolumeProgress(done, total, vol))

            load_volume(plan, headers=headers, cancel=self._cancel, progress=progress, volume=vol)
            # the last complete volume is kept (one only: it may be large) so reopening the MPR is instant
            _LAST_VOLUME.clear()
            _LAST_VOLUME[(self.series.series_instance_uid, len(self.series.slices()), self.cache_mb)] = vol
        except Cancelled:
            return
        except (DicomViewerError, OSError, ValueError) as exc:
            if not worker.is_cancelled:
                self.post_message(VolumeFailed(safe_text(str(exc))))

    def on_volume_progress(self, message: VolumeProgress) -> None:
        """Show what is loaded; the crosshair starts at the volume's centre."""
        self.progress = (message.loaded, message.total)
        if self.volume is None:
            self.volume = message.volume
            self.point = message.volume.centre()
        self._draw()

    def on_volume_failed(self, message: VolumeFailed) -> None:
        """Say why there is no MPR."""
        self.reason = f"cannot reformat: {message.reason}"
        for kind in PLANES:
            self.query_one(f"#label-{kind}", Static).update(Text(self.reason))
        self._status()

    # ------------------------------------------------------------------------------ drawing

    def _layout(self) -> None:
        for kind in PLANES:
            pane = self.query_one(f"#pane-{kind}")
            pane.display = self.three or kind == self.active
            pane.set_class(kind == self.active, "-active")

    def planes(self) -> dict[str, Any]:
        """The three planes through the crosshair (empty before the volume exists)."""
        from tui_dicom.core.volume import standard_plane

        if self.volume is None or self.point is None:
            return {}
        return {kind: standard_plane(self.volume, kind, self.point) for kind in PLANES}

    def _draw(self) -> None:
        """Ask the render worker for the visible planes (the newest request wins)."""
        if self.volume is None or self.point is None:
            return
        self._seq += 1
        snapshot = _Snapshot(
            seq=self._seq,
            volume=self.volume,
            point=self.point.copy(),
            kinds=tuple(k for k in PLANES if self.three or k == self.active),
            slab_mm=self.slab_mm,
            slab_mode=self.slab_mode,
            window=self.window,
            zoom=self.zoom,
            measure=tuple(self.measure),
        )
        self._render_planes(snapshot)
        self._status()

    @work(thread=True, exclusive=True, group="mpr-render", exit_on_error=False)
    def _render_planes(self, snap: _Snapshot) -> None:
        """Sample, window and annotate the planes off the UI thread; stale work stops between panes."""
        worker = get_current_worker()
        panes = []
        window = snap.window
        for kind in snap.kinds:
            if worker.is_cancelled:
                return
            pane, window = render_pane(snap, kind, window)
            panes.append(pane)
        if not worker.is_cancelled:
            self.post_message(PlanesReady(snap.seq, tuple(panes), window))

    def on_planes_ready(self, message: PlanesReady) -> None:
        """Show rendered planes newer than those on screen."""
        if message.seq <= self._shown_seq:
            return
        self._shown_seq = message.seq
        if self.window is None:
            self.window = message.window
        for pane in message.panes:
            self.query_one(f"#picture-{pane.kind}", PictureView).show(
                pane.key, pane.picture, pixel_aspect=1.0, view=pane.view, shapes=pane.shapes
            )
            self.query_one(f"#label-{pane.kind}", Static).update(Text(pane.label))
        self._status()

    def _status(self) -> None:
        parts = [safe_text(self.series.label())]
        if self.reason:
            parts.append(self.reason)
        loaded, total = self.progress
        if total and loaded < total:
            parts.append(f"building volume {loaded}/{total}")
        elif self.reason == "" and total == 0:
            parts.append("reading headers…")
        vol, point = self.volume, self.point
        if vol is not None and point is not None:
            value = vol.value_at(point)
            shown = "—" if value is None else f"{value:.0f} {vol.units}".strip()
            parts.append(f"+ ({point[0]:.1f}, {point[1]:.1f}, {point[2]:.1f}) mm LPS  {shown}")
            if self.window is not None:
                parts.append(f"W:{self.window.width:.0f} L:{self.window.center:.0f}")
            if self.length_mm is not None:
                parts.append(f"length {self.length_mm:.1f} mm")
            elif self.measure:
                parts.append("length: move the crosshair, press d again")
            parts.extend(safe_text(n) for n in vol.notes)
        self.query_one("#mpr-status", Static).update(Text(" │ ".join(parts)))

    # ------------------------------------------------------------------------------ mouse

    def _pane_of(self, view: PictureView) -> str | None:
        kind = (view.id or "").removeprefix("picture-")
        return kind if kind in PLANES else None

    def _point_at(self, view: PictureView, image: tuple[float, float] | None) -> None:
        """Put the crosshair where the mouse is in that pane (which becomes active)."""
        kind = self._pane_of(view)
        planes = self.planes()
        if kind is None or image is None or not planes:
            return
        if kind != self.active:
            self.active = kind
            self._layout()
        self.point = planes[kind].patient(image[0], image[1])
        self._draw()

    def on_picture_view_clicked(self, message: PictureView.Clicked) -> None:
        """A left click moves the crosshair there."""
        if message.button == 1:
            self._point_at(message.picture_view, message.image)

    def on_picture_view_dragged(self, message: PictureView.Dragged) -> None:
        """Dragging with the left button drags the crosshair."""
        if message.button == 1:
            self._point_at(message.picture_view, message.image)

    def on_picture_view_wheel(self, message: PictureView.Wheel) -> None:
        """The wheel scrolls the plane under the mouse along its normal."""
        kind = self._pane_of(message.picture_view)
        if kind is not None:
            if kind != self.active:
                self.active = kind
                self._layout()
            self.action_depth(message.direction)

    # ------------------------------------------------------------------------------ actions

    def action_close(self) -> None:
        """Back to the viewer."""
        self._cancel.set()
        self.dismiss(None)

    def action_measure(self) -> None:
        """Mark the crosshair as one end of a length; a third press starts a new length."""
        if self.point is None:
            return
        if len(self.measure) >= 2:
            self.measure = []
        self.measure.append(self.point.copy())
        self._draw()

    @property
    def length_mm(self) -> float | None:
        """The measured length in mm (two points set), else None."""
        if len(self.measure) < 2:
            return None
        return float(np.linalg.norm(self.measure[1] - self.measure[0]))

    def action_next_plane(self) -> None:
        """The active pane becomes the next of axial, coronal, sagittal."""
        self.active = PLANES[(PLANES.index(self.active) + 1) % len(PLANES)]
        self._layout()
        self._draw()

    def action_toggle_layout(self) -> None:
        """Three panes, or only the active one."""
        self.three = not self.three
        self._layout()
        self._draw()

    def action_cross(self, d_row: int, d_col: int) -> None:
        """Move the crosshair one pixel in the active pane (the other planes follow)."""
        planes = self.planes()
        if not planes or self.point is None:
            return
        plane = planes[self.active]
        row, col, _ = plane.pixel(self.point)
        self.point = plane.patient(row + d_row, col + d_col)
        self._draw()

    def action_depth(self, direction: int) -> None:
        """Move the active plane along its normal by one voxel step (scrolling through it)."""
        planes = self.planes()
        if not planes or self.point is None or self.volume is None:
            return
        step = min(self.volume.spacing)
        self.point = self.point + direction * step * planes[self.active].normal
        self._draw()

    def action_slab(self, direction: int) -> None:
        """Thicker or thinner slab."""
        self.slab_index = max(0, min(len(SLABS) - 1, self.slab_index + direction))
        self._draw()

    def action_slab_mode(self) -> None:
        """MIP → MinIP → average."""
        self.slab_mode = SLAB_MODES[(SLAB_MODES.index(self.slab_mode) + 1) % len(SLAB_MODES)]
        self._draw()

    def action_width(self, direction: int) -> None:
        """Narrower or wider window."""
        if self.window is not None:
            w = self.window
            self.window = Window(
                w.center, max(1.0, w.width * (1.1 if direction > 0 else 1 / 1.1)), w.function, ""
            )
            self._draw()

    def action_level(self, direction: int) -> None:
        """Lower or higher level."""
        if self.window is not None:
            w = self.window
            self.window = Window(w.center + direction * max(1.0, w.width / 20), w.width, w.function, "")
            self._draw()

    def action_file_window(self) -> None:
        """Back to the series' own window."""
        self.window = None
        self._draw()

    def action_zoom(self, direction: int) -> None:
        """Zoom around the crosshair."""
        self.zoom = max(1.0, min(16.0, self.zoom * (1.25 if direction > 0 else 0.8)))
        self._draw()
