"""The main screen: the mediator between the tree, the image pane and the inspector.

It owns the background work: one index worker (progressive hierarchy), and one long-lived loader thread
that takes the newest slice request from a :class:`~tui_dicom.core.cache.LatestSlot` (so holding a key
never queues decodes) and returns the picture together with the instance's tag rows. Results come back as
messages; only handlers touch widgets, and results older than the picture on screen are dropped.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from tui_dicom.core.cache import LatestSlot
from tui_dicom.core.errors import DicomViewerError
from tui_dicom.core.hierarchy.model import Hierarchy, Patient, Series, SliceRef, Study
from tui_dicom.core.inspector.tags import TagRow
from tui_dicom.core.logging import log_exception
from tui_dicom.core.safe import safe_text
from tui_dicom.core.session.slice_loader import SliceLoader, SliceRequest
from tui_dicom.core.session.viewstate import MeasureKind, PaneState
from tui_dicom.ui.keys import PANE_KEYS
from tui_dicom.ui.messages import IndexUpdated, SliceFailed, SliceReady, VaryingReady
from tui_dicom.ui.widgets.footer import ViewerFooter
from tui_dicom.ui.widgets.image_pane import ImagePane
from tui_dicom.ui.widgets.inspector import TagInspector
from tui_dicom.ui.widgets.picture import PictureView
from tui_dicom.ui.widgets.study_tree import MASK, StudyTree, fmt_date

PREFETCH = 6
#: what the loader thread imports before its first request (see :func:`_run_loader`)
_LOADER_MODULES = (
    "tui_dicom.core.dicom.reading",
    "tui_dicom.core.imaging.pixels",
    "tui_dicom.core.imaging.windowing",
    "tui_dicom.core.inspector.tags",
)
#: screen direction (rows, columns) of each arrow key
_ARROWS = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
#: seconds a slice step may take before its counter is shown ahead of its picture
COUNTER_DELAY = 0.15
#: seconds after mount when the key footer appears even if no picture came yet (a slow CD or decode)
FOOTER_LATEST = 3.0


def _fmt_mm(value: float) -> str:
    """One decimal, without a negative zero."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _fmt_num(value: float) -> str:
    if not math.isfinite(value):  # a hostile header can still yield inf/nan; never crash the app
        return "?"
    return f"{value:.0f}" if abs(value - round(value)) < 1e-6 else f"{value:.1f}"


class MainScreen(Screen[None]):
    """Tree | image | inspector, with header, status line and footer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *PANE_KEYS,
        Binding("a", "toggle_annotations", "Annotations"),
        Binding("p", "toggle_privacy", "Privacy"),
        Binding("t", "toggle_inspector", "Tags panel"),
        Binding("slash", "search_tags", "Search tags", show=False),
        Binding("escape", "stop_indexing", "Stop indexing / back to the image", show=False),
        Binding("P", "mpr", "MPR", show=False),
        Binding("C", "compare", "Compare", show=False),
        Binding("S", "anonymize", "Share a de-identified copy", show=False),
    ]

    privacy: reactive[bool] = reactive(False)
    annotations: reactive[bool] = reactive(True)

    def __init__(
        self,
        paths: list[str],
        *,
        cache_mb: int = 512,
        decoder: Any = None,
        source_label: str = "",
        demo_note: str = "",
    ) -> None:
        super().__init__()
        self.paths = paths
        self.source_label = source_label or " ".join(paths)
        self.demo_note = demo_note
        self.loader = SliceLoader(cache_mb * 1024**2, decoder=decoder)
        self.cache_mb = cache_mb
        self._slot: LatestSlot[SliceRequest] = LatestSlot()
        self._hierarchy = Hierarchy()
        self._series: Series | None = None
        #: the patient and study of the series shown (found once per series, for the annotations)
        self._series_context: tuple[Patient | None, Study | None] = (None, None)
        #: orientation letters of the pane edges for the slice shown
        self._orientation: dict[str, str] = {}
        #: window and view when a mouse drag started
        self._drag_window: Any = None
        self._drag_view: Any = None
        self._slices: list[SliceRef] = []
        self._index = 0
        self._seq = 0
        self._shown_seq = 0
        self._direction = 1
        self.state = PaneState()
        self._overlays = True
        self._shown_window: Any = None
        self._ready: SliceReady | None = None
        self._cine_timer: Any = None
        self._counter_timer: Any = None
        self._current_info: dict[str, Any] = {}
        self._header_ref: Any = None
        self._status_progress = ""
        self._index_cancel = threading.Event()
        #: TUI_DICOM_LAYOUT_JSON: after every displayed frame, where it is and what it shows (for tests
        #: that check a real terminal's screenshot against the picture)
        self._layout_path = os.environ.get("TUI_DICOM_LAYOUT_JSON", "")
        self._layout_slot: LatestSlot[tuple[dict[str, Any], Any]] = LatestSlot()
        self.last_displayed: dict[str, Any] = {}
        self.index_done = False
        self._sized = False
        self._size_note = ""
        #: a series was shown already (the first one, chosen at start, takes the focus to the image)
        self._opened = False

    # ------------------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        """Header, body (tree | centre (image, inspector)), status, footer."""
        yield Header()
        with Horizontal(id="body"):
            yield StudyTree(id="tree")
            with Container(id="centre"):
                yield ImagePane(id="image")
                yield TagInspector(id="inspector")
        yield Static("", id="status")
        # its keys appear with the first picture, not before it (see ViewerFooter)
        yield ViewerFooter(held=True)

    def on_mount(self) -> None:
        """Start indexing and the loader; the tree has focus until the first series is shown."""
        self.title = "tui-dicom"
        self.sub_title = safe_text(self.source_label)
        tree = self.query_one(StudyTree)
        tree.preferred = self._from_first_path
        tree.focus()
        self._update_status()
        self._run_index()
        self._run_loader()
        if self._layout_path:
            self._run_layout_writer()
        if self.demo_note:
            self.notify(self.demo_note, title="Demo", markup=False, timeout=8)
        self.set_timer(FOOTER_LATEST, self._release_footer)

    def _release_footer(self) -> None:
        """Show the key footer (after the first picture, a failure, or :data:`FOOTER_LATEST`)."""
        for footer in self.query(ViewerFooter):  # none in a subclass that composes its own
            footer.release()

    def _from_first_path(self, series: Series) -> bool:
        """True if ``series`` comes from the first path given: that is what the user pointed at first."""
        if not self.paths:
            return False
        first = os.path.abspath(self.paths[0])
        for inst in series.instances:
            path = os.path.abspath(inst.ref.path)
            if path == first or path.startswith(first.rstrip(os.sep) + os.sep):
                return True
        return False

    def on_resize(self) -> None:
        """Inspector to the right on wide terminals, below the image on narrow ones.

        On a short narrow terminal (e.g. 80×24) the image would get only a few rows with the inspector
        below it, so the inspector starts hidden there; ``t`` shows it.
        """
        narrow = self.size.width < 120
        self.set_class(narrow, "-narrow")
        if not self._sized:
            self._sized = True
            if narrow and self.size.height < 32:
                self.query_one(TagInspector).display = False

    def on_unmount(self) -> None:
        """Stop the background threads."""
        self._index_cancel.set()
        self._slot.close()
        self._layout_slot.close()

    # ------------------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="index", exit_on_error=False)
    def _run_index(self) -> None:
        from tui_dicom.core.hierarchy.index import Indexer

        worker = get_current_worker()
        indexer = Indexer(self.paths, cancel=self._index_cancel, progressive=True)
        for progress in indexer.run():
            if worker.is_cancelled:
                return
            self.post_message(IndexUpdated(indexer.snapshot(), progress))

    @work(thread=True, exclusive=True, group="loader", exit_on_error=False)
    def _run_loader(self) -> None:
        worker = get_current_worker()
        slot = self._slot
        if self.paths:
            # the first picture needs pydicom, numpy and the decoders: import them before the first
            # request (the command line imported pydicom already; not an app started otherwise, e.g. in
            # tests). Not for an archive: its network client imports pydicom in its own thread now, and
            # two threads importing the same modules at once can fail with a deadlock error in one
            from tui_dicom.core.dicom.preload import warm_up

            warm_up(_LOADER_MODULES)
        while not worker.is_cancelled and not slot.closed:
            req = slot.take(0.25)
            if req is None:
                continue

            def stale(req: SliceRequest = req) -> bool:
                return worker.is_cancelled or req.seq != self._seq

            result = self.loader.load(req, should_stop=stale)
            if result is None or worker.is_cancelled:
                continue
            if result.error:
                self.post_message(
                    SliceFailed(result.seq, result.slice, result.error, result.rows, result.header_error)
                )
            else:
                # the loader sets both whenever it reports no error
                assert result.picture is not None and result.frame is not None
                self.post_message(
                    SliceReady(
                        result.seq,
                        result.slice,
                        result.picture,
                        result.frame,
                        result.window,
                        result.info,
                        result.rows,
                        result.header_error,
                    )
                )
            self.loader.prefetch(req.prefetch, should_stop=lambda: slot.has_item or worker.is_cancelled)

    @work(thread=True, exclusive=True, group="varying", exit_on_error=False)
    def _compute_varying(self, series: Series) -> None:
        from tui_dicom.core.inspector.tags import varying_tags

        worker = get_current_worker()
        datasets = []
        for inst in series.instances:
            if worker.is_cancelled:
                return
            try:
                datasets.append(self.loader.header(inst.ref))
            except (DicomViewerError, OSError, ValueError):
                continue
        paths = varying_tags(datasets)
        if not worker.is_cancelled:
            self.post_message(VaryingReady(series.series_instance_uid, list(paths)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place for worker failures: log the traceback, show one line."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            err = event.worker.error
            try:
                raise err
            except BaseException:  # noqa: BLE001 - only to log the traceback
                log_exception(f"worker {event.worker.name} failed")
            self.notify(
                f"{event.worker.group or event.worker.name} failed: {safe_text(err)}",
                severity="error",
                markup=False,
            )

    # ------------------------------------------------------------------------------ index

    def on_index_updated(self, message: IndexUpdated) -> None:
        """Grow the tree with the newest snapshot."""
        self._hierarchy = message.hierarchy
        progress = message.progress
        if progress.phase == "done":
            self.index_done = True
            self._status_progress = ""
            if not message.hierarchy.patients:
                reason = "no DICOM images found"
                if message.hierarchy.errors:
                    reason += f" ({len(message.hierarchy.errors)} problems; see the tree)"
                self.query_one(ImagePane).set_message(reason, error=True)
            if self._index_cancel.is_set():
                self._status_progress = f"indexing stopped (Esc) after {progress.files_done:,} files"
        else:
            total = f"/{progress.files_total:,}" if progress.files_total else ""
            what = "records" if progress.phase == "dicomdir" else "files"
            self._status_progress = f"indexing {progress.files_done:,}{total} {what}… (Esc stops)"
        tree = self.query_one(StudyTree)
        tree.update_hierarchy(message.hierarchy)
        if self._series is None and not self._opened and self.paths:
            # the series the tree will select at start: its picture is decoded while the tree expands
            # and highlights it (its SeriesChosen then finds the series already shown); local files
            # only (an archive retrieves a series when the tree chooses it)
            first = tree.first_series()
            if first is not None:
                self._set_series(first)
        elif self._series is not None:  # the shown series may have grown
            for series in message.hierarchy.all_series():
                if series.series_instance_uid == self._series.series_instance_uid:
                    self._set_series(series, keep_slice=True)
                    break
        if self.index_done and self._series is None:  # nothing to show: the keys need not wait
            self._release_footer()
        self._update_status()

    # ------------------------------------------------------------------------------ tree → slices

    @on(StudyTree.SeriesChosen)
    def _series_chosen(self, message: StudyTree.SeriesChosen) -> None:
        first = not self._opened
        self._opened = True
        started = (
            first
            and self._series is not None
            and self._series.series_instance_uid == message.series.series_instance_uid
        )
        # the start-up series was requested when the index found it: keep its slice and request
        self._set_series(message.series, keep_slice=started)
        if first and self._from_first_path(message.series) and isinstance(self.focused, StudyTree):
            # the user pointed at this: arrows and keys go to the image (Tab back to the tree)
            self.query_one(ImagePane).focus()

    @on(StudyTree.SliceChosen)
    def _slice_chosen(self, message: StudyTree.SliceChosen) -> None:
        self._set_series(message.series, index=message.index)

    @on(StudyTree.ProblemChosen)
    def _problem_chosen(self, message: StudyTree.ProblemChosen) -> None:
        from tui_dicom.ui.screens.problem import ProblemScreen

        self.app.push_screen(ProblemScreen(message.problem, message.position, message.total))

    def _set_series(self, series: Series, index: int | None = None, keep_slice: bool = False) -> None:
        same = self._series is not None and self._series.series_instance_uid == series.series_instance_uid
        current = self._slices[self._index] if (same and self._slices) else None
        self._series = series
        self._slices = series.slices()
        self._series_context = self._find_context(series)
        if not self._slices:
            return
        if keep_slice and current is not None:
            keys = [s.key for s in self._slices]
            self._index = keys.index(current.key) if current.key in keys else min(self._index, len(keys) - 1)
            self._update_annotations()
            return
        if not same:
            self._stop_cine()
            self.state = PaneState(measurements=self.state.measurements)
            self._ready = None
        self._index = len(self._slices) // 2 if index is None else max(0, min(index, len(self._slices) - 1))
        self._request()

    def _find_context(self, series: Series) -> tuple[Patient | None, Study | None]:
        for patient in self._hierarchy.patients:
            for study in patient.studies:
                if any(se.series_instance_uid == series.series_instance_uid for se in study.series):
                    return patient, study
        return None, None

    @on(ImagePane.Navigate)
    def _navigate(self, message: ImagePane.Navigate) -> None:
        self._move(message.delta, message.absolute)

    def _move(self, delta: int = 0, absolute: int | None = None) -> None:
        """Step ``delta`` slices, or go to slice ``absolute`` (-1: the last)."""
        if not self._slices:
            return
        n = len(self._slices)
        if absolute is not None:
            new = n - 1 if absolute < 0 else min(absolute, n - 1)
        else:
            new = max(0, min(n - 1, self._index + delta))
            self._direction = 1 if delta >= 0 else -1
        if new != self._index:
            self._index = new
            self._request()

    def _request(self) -> None:
        """Ask the loader for the current slice (replacing any request not yet taken)."""
        if not self._slices:
            return
        self._seq += 1
        sl = self._slices[self._index]
        step = self._direction
        ahead = [
            self._slices[i]
            for i in range(self._index + step, self._index + step * (PREFETCH + 1), step)
            if 0 <= i < len(self._slices)
        ]
        self._slot.put(
            SliceRequest(self._seq, sl, self.state.window, self.state.invert, self._overlays, tuple(ahead))
        )
        # the counter changes with the picture (one screen update per step); only a slow decode shows
        # it earlier
        if self._counter_timer is not None:
            self._counter_timer.stop()
        self._counter_timer = self.set_timer(COUNTER_DELAY, self._counter_late)

    def _counter_late(self) -> None:
        """The requested slice is still not on screen: show its counter anyway."""
        self._counter_timer = None
        if self._shown_seq < self._seq:
            self._update_annotations()

    def _show_tags(self, sl: SliceRef, rows: list[TagRow], error: str) -> None:
        """The inspector follows the slice shown (rows come with the slice from the loader)."""
        if sl.instance.ref != self._header_ref:
            self._header_ref = sl.instance.ref
            self.query_one(TagInspector).show_rows(rows, error=error)

    # ------------------------------------------------------------------------------ results

    def on_slice_ready(self, message: SliceReady) -> None:
        """Show a decoded slice if it is still the one asked for."""
        # show any result newer than the one on screen, if it belongs to the series shown: while a key is
        # held (or in cine) intermediate slices appear at decode speed; the last request always lands
        if not self._slices or message.seq <= self._shown_seq or self._slice_index(message.slice.key) is None:
            return
        self._shown_seq = message.seq
        self._current_info = message.info
        self._shown_window = message.window
        self._ready = message
        self.query_one(ImagePane).set_message(None)

        def texts() -> None:
            # with the picture, in the same screen update: tag values, counter and annotations; only the
            # first picture goes out alone, its hundred tag rows in the update right after it
            if self._header_ref is None:
                self.call_after_refresh(self._show_tags, message.slice, message.rows, message.header_error)
            else:
                self._show_tags(message.slice, message.rows, message.header_error)
            self._update_annotations()

        self._redraw(texts)

    def _redraw(self, then: Callable[[], None] | None = None) -> None:
        """Show the current picture with the current view and drawings (no decoding).

        The texts that go with the picture (measurements, probe, orientation, and ``then()``) are
        updated when the picture widget installs the new picture, so they land in the same frame.
        """
        ready = self._ready
        if ready is None:
            if then is not None:
                then()
            return
        from tui_dicom.core.imaging.windowing import pixel_aspect

        try:
            aspect = pixel_aspect(ready.frame)
        except Exception:  # noqa: BLE001 - aspect is cosmetic; 1.0 is a safe default
            aspect = 1.0
        key = ready.slice.key
        pane = self.query_one(ImagePane)
        # the probe / measurement rows appear with the key that starts probing or measuring, never
        # during a mouse gesture: the picture does not move under the pointer
        pane.reserve_readout(self.state.readout_visible)

        def texts() -> None:
            pane.set_measurements(
                [
                    f"{i}. {m.kind}: {m.text}"
                    for i, m in enumerate(self.state.measurements.get(key, ()), start=1)
                ]
            )
            self._update_probe()
            self._update_orientation()
            if then is not None:
                then()

        pane.picture.show(
            (key, ready.window, self.state.invert, self._overlays),
            ready.picture,
            pixel_aspect=aspect,
            view=self.state.view,
            shapes=self.state.shapes(key),
            on_shown=texts,
        )

    def _slice_index(self, key: Any) -> int | None:
        """Index of the slice with ``key`` (see :attr:`SliceRef.key`) in the series shown, or None."""
        if self._slices and self._slices[self._index].key == key:
            return self._index
        return next((i for i, other in enumerate(self._slices) if other.key == key), None)

    def on_slice_failed(self, message: SliceFailed) -> None:
        """Show why the slice cannot be displayed; its tags stay available."""
        if (
            not self._slices
            or message.seq <= self._shown_seq
            or message.slice.key != self._slices[self._index].key
        ):
            return
        self._shown_seq = message.seq
        self._release_footer()
        self._show_tags(message.slice, message.rows, message.header_error)
        self._current_info = {}
        self.query_one(ImagePane).set_message(
            f"{message.slice.instance.ref.display}\n{message.reason}", error=True
        )
        self._update_annotations()

    @on(TagInspector.VaryingRequested)
    def _varying_requested(self, _message: TagInspector.VaryingRequested) -> None:
        if self._series is not None:
            self._compute_varying(self._series)

    def on_varying_ready(self, message: VaryingReady) -> None:
        """Show the varying tags if they belong to the current series."""
        if self._series is not None and message.series_uid == self._series.series_instance_uid:
            self.query_one(TagInspector).show_varying(message.paths)

    @on(PictureView.Displayed)
    def _displayed(self, message: PictureView.Displayed) -> None:
        """Record what the pane shows; write the layout file for real-terminal checks when asked."""
        self._release_footer()
        if message.picture_view.size_note != self._size_note:  # scaled down for the terminal, or no more
            self._size_note = message.picture_view.size_note
            self._update_status()
        if not self._slices:
            return
        # the picture's key is (slice key, window, invert, overlays): find the slice it shows
        slice_key = message.key[0] if isinstance(message.key, tuple) and message.key else None
        index = self._slice_index(slice_key)
        if index is None:
            return
        shown = self._slices[index]
        self.last_displayed = {
            "region_cells": list(message.region_cells),
            "cell_px": list(message.cell_px),
            "renderer": message.renderer,
            "slice": f"{index + 1}/{len(self._slices)}",
            "sop_instance_uid": shown.instance.sop_instance_uid,
        }
        if self._layout_path:
            self._layout_slot.put((dict(self.last_displayed), message.picture))

    @work(thread=True, exclusive=True, group="layout", exit_on_error=False)
    def _run_layout_writer(self) -> None:
        """One writer thread, so the layout file always ends on the newest frame (never out of order)."""
        from PIL import Image

        worker = get_current_worker()
        path = self._layout_path
        png = path[:-5] + ".expected.png" if path.endswith(".json") else path + ".expected.png"
        while not worker.is_cancelled and not self._layout_slot.closed:
            item = self._layout_slot.take(0.25)
            if item is None:
                continue
            layout, picture = item
            Image.fromarray(picture).save(png + ".tmp", format="PNG")
            os.replace(png + ".tmp", png)
            with open(path + ".tmp", "w", encoding="utf-8") as fh:
                json.dump(layout, fh)
            os.replace(path + ".tmp", path)

    # ------------------------------------------------------------------------------ annotations

    def _update_annotations(self) -> None:
        pane = self.query_one(ImagePane)
        if not self._slices or self._series is None:
            return
        info = self._current_info
        sl = self._slices[self._index]
        patient, study = self._series_context
        name = safe_text((patient.patient_name if patient else "") or info.get("patient_name", ""))
        pid = safe_text((patient.patient_id if patient else "") or info.get("patient_id", ""))
        dob = fmt_date(safe_text((patient.birth_date if patient else "") or info.get("birth_date", "")))
        if self.privacy:
            name, pid, dob = MASK, MASK, MASK if dob else ""
        sdate = fmt_date(safe_text((study.study_date if study else "") or info.get("study_date", "")))
        sdesc = safe_text((study.study_description if study else "") or info.get("study_description", ""))
        se_no = self._series.series_number
        se_desc = safe_text(self._series.series_description)
        top = (
            (name.replace("^", " "), "", f"{sdate} {sdesc}".strip()),
            (
                f"ID {pid}  DOB {dob}".strip() if pid or dob else "",
                "",
                f"Se {se_no if se_no is not None else '?'} {se_desc}".strip(),
            ),
        )
        loc = info.get("location")
        thick = info.get("thickness")
        where = []
        if loc is not None:
            where.append(f"Loc {_fmt_num(loc)} mm")
        if thick is not None:
            where.append(f"Thk {_fmt_num(thick)} mm")
        counter = f"{self._index + 1}/{len(self._slices)}"
        if sl.instance.frames > 1:
            counter += f"  (frame {sl.frame + 1}/{sl.instance.frames})"
        win = self._shown_window
        wl = ""
        if win is not None:
            wl = f"W:{_fmt_num(win.width)} L:{_fmt_num(win.center)}"
            if getattr(win, "name", ""):
                wl += f" ({safe_text(win.name)})"
        if self.state.invert:
            wl += " inv"
        if self.state.cine:
            counter += f"  ▶ {self.state.cine_fps:.0f} fps"
        labels = self._orientation
        top = (top[0], (top[1][0], labels.get("top", ""), top[1][2]))
        bottom = (
            ("  ".join(where), labels.get("bottom", ""), self.state.zoom_text),
            (counter, "", wl),
        )
        pane.set_annotations(top, bottom)

    @property
    def counter_text(self) -> str:
        """The slice counter as shown, e.g. ``37/103``."""
        return f"{self._index + 1}/{len(self._slices)}" if self._slices else ""

    def _update_status(self) -> None:
        parts = []
        picture = self.query_one(PictureView)
        parts.append(f"renderer: {picture.renderer_description}")
        if self._status_progress:
            parts.append(self._status_progress)
        if self._hierarchy.errors:
            parts.append(f"{len(self._hierarchy.errors):,} problems")
        if self.privacy:
            parts.append("PRIVACY")
        self.query_one("#status", Static).update(" │ ".join(parts))

    # ------------------------------------------------------------------------------ actions

    def action_stop_indexing(self) -> None:
        """Stop reading the folder or DICOMDIR (what was found so far stays browsable); once everything
        is read, Esc takes the focus back to the image, as it leaves a panel in other viewers."""
        if not self.index_done and not self._index_cancel.is_set():
            self._index_cancel.set()
            self._status_progress = "stopping indexing…"
            self._update_status()
        elif self.index_done:
            self.query_one(ImagePane).focus()

    def action_toggle_annotations(self) -> None:
        """Show or hide the corner annotations."""
        self.annotations = not self.annotations

    def watch_annotations(self, visible: bool) -> None:
        """Apply the annotation toggle."""
        self.query_one(ImagePane).show_annotations(visible)

    def action_toggle_privacy(self) -> None:
        """Mask patient-identifying text everywhere (for screen sharing)."""
        self.privacy = not self.privacy

    def watch_privacy(self, privacy: bool) -> None:
        """Apply privacy mode to tree, annotations and inspector."""
        self.query_one(StudyTree).privacy = privacy
        self.query_one(TagInspector).privacy = privacy
        self._update_annotations()
        self._update_status()

    def action_toggle_inspector(self) -> None:
        """Show or hide the tag inspector."""
        inspector = self.query_one(TagInspector)
        inspector.display = not inspector.display

    def action_anonymize(self) -> None:
        """Open the share dialog (de-identified copy) for the shown series or its study."""
        if self._series is None:
            self.notify("Choose a series first", timeout=3)
            return
        from tui_dicom.ui.screens.anonymize import AnonymizeDialog  # de-identification loads on use

        self.app.push_screen(AnonymizeDialog(self._series, self._series_context[1], self.paths))

    def action_search_tags(self) -> None:
        """``/`` from the tree or the image: open the tags panel's filter (showing the panel if hidden)."""
        inspector = self.query_one(TagInspector)
        inspector.display = True
        inspector.action_search()

    # ------------------------------------------------------------------------------ viewing commands
    #
    # Every viewer command is an ``action_*`` with named, typed parameters. The image pane binds them
    # (``screen.width(-1)``), the help screen lists those bindings and the command palette runs them.

    def _frame(self) -> Any:
        return self._ready.frame if self._ready is not None else None

    def _modality_range(self) -> tuple[float, float]:
        frame = self._frame()
        if frame is None:
            return (0.0, 255.0)
        import numpy as np

        lo, hi = frame.value_range
        values = frame.modality_transform(np.asarray([lo, hi]))
        return (float(values.min()), float(values.max()))

    def _rerender(self) -> None:
        """The window, inversion or overlays changed: render the slice again (from the cached frame)."""
        self._request()

    def action_step(self, delta: int) -> None:
        """Step ``delta`` slices (negative: back)."""
        self._move(delta=delta)

    def action_goto(self, index: int) -> None:
        """Go to slice ``index`` (0: the first, -1: the last)."""
        self._move(absolute=index)

    def action_arrow(self, direction: str) -> None:
        """An arrow key: moves the probe while it is on, else ↑/↓ step slices (``direction``: up/down/left/right)."""
        if self.state.crosshair is not None and self._ready is not None:
            d_row, d_col = _ARROWS[direction]
            self.state.move_crosshair(d_row, d_col, self._ready.frame.stored.shape[:2], self._cell_step())
            self._redraw()
        elif direction in ("up", "down"):
            self._move(delta=1 if direction == "down" else -1)

    def _cell_step(self) -> tuple[float, float]:
        """Image pixels per screen cell of the picture shown (the probe moves one cell per arrow press)."""
        from tui_dicom.core.session.viewstate import cell_step

        lay = self.query_one(PictureView).layout_now
        if lay is None or lay.empty:
            return (1.0, 1.0)
        return cell_step(lay.crop, lay.cells)

    def action_width(self, direction: int, fine: bool = False) -> None:
        """Widen (``direction`` 1) or narrow (-1) the window; ``fine`` takes a tenth of the step."""
        self._adjust(direction, 0, fine)

    def action_level(self, direction: int, fine: bool = False) -> None:
        """Raise (``direction`` 1) or lower (-1) the window level; ``fine`` takes a tenth of the step."""
        self._adjust(0, direction, fine)

    def _adjust(self, d_width: float, d_level: float, fine: bool) -> None:
        if self._shown_window is None:
            return
        frame = self._frame()
        integer = frame is None or not frame.is_float
        self.state.adjust_window(self._shown_window, d_width, d_level, fine, integer)
        self._shown_window = self.state.window
        self._update_annotations()
        self._rerender()

    def _set_window(self, window: Any) -> None:
        self.state.window = window
        self._rerender()

    def window_presets(self) -> list[Any]:
        """The number keys' windows for the slice shown: CT presets where values are HU, else the file's
        windows, auto, min–max and percentile windows (see :func:`windowing.window_presets`)."""
        from tui_dicom.core.imaging.windowing import window_presets

        frame = self._frame()
        return window_presets(frame) if frame is not None else []

    def action_preset(self, number: int) -> None:
        """Window preset ``number`` (1–9) of the image shown: CT presets for HU, else the file's windows,
        auto, min–max and percentile windows."""
        presets = self.window_presets()
        if 1 <= number <= len(presets):
            self._set_window(presets[number - 1])
        elif self._frame() is not None:
            if not presets:
                self.notify("A colour image has no window presets", timeout=3)
                return
            names = ", ".join(f"{i} {safe_text(w.name)}" for i, w in enumerate(presets, start=1))
            self.notify(f"No preset {number} for this image; its presets: {names}", timeout=5, markup=False)

    def action_file_window(self) -> None:
        """The file's own window; pressed again, its next one (a file may define several)."""
        from tui_dicom.core.imaging.windowing import next_file_window

        frame = self._frame()
        if frame is None:
            return
        if not frame.is_grey:
            self.notify("A colour image has no window", timeout=3)
            return
        window = next_file_window(frame, self.state.window)
        if window is None:
            self.notify("This file defines no window: showing its default (VOI LUT or auto)", timeout=3)
        self._set_window(window)

    def action_auto_window(self) -> None:
        """A window over the 0.5–99.5 percentiles of the slice."""
        from tui_dicom.core.imaging.windowing import auto_window

        if self._frame() is not None:
            self._set_window(auto_window(self._frame()).with_name("auto"))

    def action_minmax_window(self) -> None:
        """A window from the slice's smallest to its largest value."""
        from tui_dicom.core.imaging.windowing import minmax_window

        if self._frame() is not None:
            self._set_window(minmax_window(self._frame()).with_name("min–max"))

    def action_invert(self) -> None:
        """Invert the grey scale."""
        self.state.invert = not self.state.invert
        self._rerender()

    def action_overlays(self) -> None:
        """Show or hide the file's overlays."""
        self._overlays = not self._overlays
        self.notify("Overlays " + ("on" if self._overlays else "off"), timeout=2)
        self._rerender()

    def _view_changed(self) -> None:
        self._redraw(self._update_annotations)

    def action_zoom(self, direction: int) -> None:
        """Zoom in (``direction`` 1) or out (-1) by one step."""
        from tui_dicom.core.session.viewstate import ZOOM_STEP

        self.state.zoom(ZOOM_STEP if direction > 0 else 1 / ZOOM_STEP)
        self._view_changed()

    def action_fit(self) -> None:
        """Fit the whole image in the pane."""
        self.state.fit()
        self._view_changed()

    def action_one_to_one(self) -> None:
        """One image pixel per screen pixel."""
        self.state.one_to_one()
        self._view_changed()

    def action_pan(self, d_row: int, d_col: int) -> None:
        """Pan by a tenth of the view in screen directions (``d_row`` down, ``d_col`` right); with the
        probe on, move the probe by one image pixel instead (the arrows move it one screen cell)."""
        if self._ready is not None and self.state.crosshair is not None:
            self.state.move_crosshair(d_row, d_col, self._ready.frame.stored.shape[:2])
            self._redraw()
        elif self._ready is not None:
            self.state.pan(d_row, d_col, self._ready.frame.stored.shape[:2], 0.1)
            self._view_changed()

    def action_reset_view(self) -> None:
        """Zoom, pan, rotation, flips and window back to how the series opened."""
        self.state.reset_view()
        self._shown_window = None
        self._rerender()
        self._view_changed()

    def action_rotate(self) -> None:
        """Rotate 90° clockwise."""
        self.state.rotate()
        self._view_changed()

    def action_flip(self, horizontal: bool) -> None:
        """Mirror left/right (``horizontal``) or top/bottom."""
        self.state.flip(bool(horizontal))
        self._view_changed()

    # cine
    def action_cine(self) -> None:
        """Play or pause the series as a film."""
        if self.state.cine:
            self._stop_cine()
        elif len(self._slices) > 1:
            self.state.cine = True
            self.state.cine_fps = float(self._current_info.get("cine_fps", 10.0))
            self._start_cine_timer()
        self._update_annotations()

    def _start_cine_timer(self) -> None:
        if self._cine_timer is not None:
            self._cine_timer.stop()
        self._cine_timer = self.set_interval(1.0 / max(0.5, self.state.cine_fps), self._cine_tick)

    def _stop_cine(self) -> None:
        self.state.cine = False
        if self._cine_timer is not None:
            self._cine_timer.stop()
            self._cine_timer = None

    def _cine_tick(self) -> None:
        """Advance one slice, looping; the loader's latest-only slot drops frames it can't keep up with."""
        if not self._slices or not self.state.cine:
            return
        self._direction = 1
        self._index = (self._index + 1) % len(self._slices)
        self._request()

    def action_bracket(self, direction: int) -> None:
        """``]``/``[``: the next/previous series, or faster/slower while the cine plays."""
        if self.state.cine:
            factor = 1.25 if direction > 0 else 0.8
            self.state.cine_fps = min(60.0, max(0.5, self.state.cine_fps * factor))
            self._start_cine_timer()
            self._update_annotations()
        else:
            self.action_series(direction)

    def action_mpr(self) -> None:
        """Axial, coronal and sagittal planes of the shown series with a linked crosshair (MPR screen)."""
        from tui_dicom.ui.screens.mpr import MprScreen

        if self._series is not None:
            self.app.push_screen(MprScreen(self._series, cache_mb=self.cache_mb))

    def action_compare(self) -> None:
        """The shown series beside another one, scrolled together by position (compare screen)."""
        from tui_dicom.ui.screens.compare import CompareScreen

        if self._series is not None:
            self.app.push_screen(
                CompareScreen(self._hierarchy.all_series(), self._series, cache_mb=self.cache_mb // 2)
            )

    def action_series(self, direction: int) -> None:
        """Show the next (``direction`` 1) or previous (-1) series, wrapping around."""
        series = self._hierarchy.all_series()
        if not series or self._series is None:
            return
        uids = [s.series_instance_uid for s in series]
        try:
            pos = uids.index(self._series.series_instance_uid)
        except ValueError:
            pos = 0
        target = series[(pos + direction) % len(series)]
        if target.series_instance_uid == self._series.series_instance_uid:
            self.notify("This is the only series", timeout=2)
            return
        self._set_series(target)
        self.query_one(StudyTree).select_series(target)

    # probe and measurements
    def action_probe(self) -> None:
        """Show or hide the probe crosshair (value, units and patient position under it)."""
        if self.state.crosshair is not None:
            self.state.crosshair = None
        elif self._ready is not None:
            rows, cols = self._ready.frame.stored.shape[:2]
            self.state.crosshair = (rows // 2, cols // 2)
        self._redraw()

    _TOOL_NAMES: ClassVar[dict[str, str]] = {
        "line": "Length",
        "rect": "Rectangle ROI",
        "ellipse": "Ellipse ROI",
    }

    def _measure_context(self) -> tuple[Any, Any, Any] | None:
        """(slice key, frame, spacing) of the picture shown, for measuring; None without one."""
        if self._ready is None:
            return None
        spacing = self._current_info.get("spacing")
        if spacing is None:
            from tui_dicom.core.imaging.geometry import Spacing

            spacing = Spacing(None, None, "")
        return self._ready.slice.key, self._ready.frame, spacing

    def action_measure(self, kind: MeasureKind) -> None:
        """``m``/``R``/``E``: choose the measuring tool (line, rect, ellipse); pressed again, put an end
        down at the crosshair. With the mouse: press-drag-release or click at both ends."""
        context = self._measure_context()
        if context is None:
            return
        name = self._TOOL_NAMES.get(kind, kind)
        if self.state.tool != kind and (self.state.pending is None or self.state.pending[0] != kind):
            self.state.arm(kind)
            if self.state.crosshair is None and self._ready is not None:
                rows, cols = self._ready.frame.stored.shape[:2]
                self.state.crosshair = (rows // 2, cols // 2)
            key = {"line": "m", "rect": "R", "ellipse": "E"}.get(kind, "")
            self.notify(
                f"{name}: drag on the image, or click at both ends (keys: move the crosshair, {key} "
                "at each end); Esc cancels",
                timeout=5,
                markup=False,
            )
        else:
            point = self.state.crosshair
            if point is None:
                return
            before = self.state.pending
            self._measured(self.state.place(point, *context))
            if before is not None and self.state.pending == before:
                self.notify("Move the crosshair (arrows or mouse) to the other end first", timeout=3)
        self._redraw()

    def _measured(self, result: Any) -> None:
        """A measurement was completed: warn when its length is uncalibrated."""
        if result is None:
            return
        spacing = self._current_info.get("spacing")
        if result.kind == "line" and spacing is not None and spacing.warning:
            self.notify(spacing.warning, severity="warning", timeout=5)

    def action_cancel_measurement(self) -> None:
        """Esc: drop the measuring tool and a measurement in progress."""
        if self.state.cancel():
            self.notify("Measurement cancelled", timeout=2)
            self._redraw()

    def action_delete_measurement(self) -> None:
        """Delete the last measurement of the slice shown."""
        if self._ready is not None and self.state.delete_last(self._ready.slice.key) is not None:
            self._redraw()

    def _update_probe(self) -> None:
        pane = self.query_one(ImagePane)
        ready = self._ready
        if self.state.crosshair is None or ready is None:
            pane.set_probe_line(None)
            return
        from tui_dicom.core.imaging.geometry import patient_coords

        row, col = self.state.crosshair
        frame = ready.frame
        stored = frame.stored[row, col]
        value, unit = frame.value_at(row, col)
        if isinstance(value, tuple):
            text = f"r{row} c{col}  RGB {tuple(int(v) for v in value)}"
        else:
            text = f"r{row} c{col}  stored {stored}  value {value:.6g}{(' ' + unit) if unit else ''}"
        info = ready.info
        spacing = info.get("spacing")
        coords = patient_coords(
            info.get("position"),
            info.get("orientation"),
            (spacing.row, spacing.col) if spacing is not None and spacing.calibrated else None,
            row,
            col,
        )
        if coords is not None:
            text += "  (" + ", ".join(_fmt_mm(c) for c in coords) + ") mm"
        pane.set_probe_line(text)

    def _update_orientation(self) -> None:
        from tui_dicom.core.imaging.geometry import orientation_labels

        view = self.state.view
        labels = orientation_labels(
            self._current_info.get("orientation"), view.rotation, view.flip_h, view.flip_v
        )
        self.query_one(ImagePane).set_side_labels(labels["left"], labels["right"])
        self._orientation = labels

    # ------------------------------------------------------------------------------ mouse

    def _pixel(self, image: tuple[float, float] | None) -> tuple[int, int] | None:
        if image is None or self._ready is None:
            return None
        rows, cols = self._ready.frame.stored.shape[:2]
        return (min(max(int(image[0]), 0), rows - 1), min(max(int(image[1]), 0), cols - 1))

    @on(PictureView.Clicked)
    def _mouse_clicked(self, message: PictureView.Clicked) -> None:
        self.query_one(ImagePane).focus()
        self._drag_window = self._shown_window
        self._drag_view = self.state.view
        pixel = self._pixel(message.image)
        context = self._measure_context()
        if message.button != 1 or message.ctrl or pixel is None or context is None:
            return
        if self.state.measuring:  # an end of the measurement goes where the pointer is
            self._measured(self.state.press(pixel, *context))
            if self.state.crosshair is not None:
                self.state.crosshair = pixel
            self._redraw()
        elif self.state.crosshair is not None:
            self.state.crosshair = pixel
            self._redraw()

    @on(PictureView.Released)
    def _mouse_released(self, message: PictureView.Released) -> None:
        pixel = self._pixel(message.image)
        context = self._measure_context()
        if message.button == 1 and pixel is not None and context is not None and self.state.pressed:
            self._measured(self.state.release(pixel, *context))
            self._redraw()

    @on(PictureView.Hovered)
    def _mouse_hovered(self, message: PictureView.Hovered) -> None:
        pixel = self._pixel(message.image)
        if pixel is None:
            return
        changed = self.state.drag_to(pixel)
        if self.state.crosshair is not None and pixel != self.state.crosshair:
            self.state.crosshair = pixel
            changed = True
        if changed:
            self._redraw()

    @on(PictureView.Dragged)
    def _mouse_dragged(self, message: PictureView.Dragged) -> None:
        dx, dy = message.delta_cells
        pixel = self._pixel(message.image)
        if message.button == 1 and not message.ctrl and self.state.pending is not None:
            if pixel is not None and self.state.drag_to(pixel):  # the measurement follows the pointer
                if self.state.crosshair is not None:
                    self.state.crosshair = pixel
                self._redraw()
            return
        if message.button == 3 or (message.button == 1 and message.ctrl):
            start = self._drag_window or self._shown_window
            if start is None:
                return
            self.state.drag_window(start, dx, dy, self._modality_range())
            self._shown_window = self.state.window
            self._update_annotations()
            self._rerender()
        elif message.button == 2 and self._ready is not None:
            start_view = self._drag_view or self.state.view
            self.state.view = start_view
            picture = self.query_one(PictureView)
            lay = picture.layout_now
            if lay is None or lay.empty:
                return
            # move the image with the mouse: the view centre goes the other way, in image pixels
            top, left, bottom, right = lay.crop
            per_cell_r = (bottom - top) / max(1, lay.cells[3])
            per_cell_c = (right - left) / max(1, lay.cells[2])
            self.state.pan(
                -dy * per_cell_r,
                -dx * per_cell_c,
                self._ready.frame.stored.shape[:2],
                self.state.view.zoom / max(self._ready.frame.stored.shape[:2]),
            )
            self._view_changed()

    @on(PictureView.Wheel)
    def _mouse_wheel(self, message: PictureView.Wheel) -> None:
        if message.ctrl:
            self.action_zoom(-message.direction)
        else:
            self._move(delta=message.direction)
