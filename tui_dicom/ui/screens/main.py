"""The main screen: the mediator between the tree, the image pane and the inspector.

It owns the background work: one index worker (progressive hierarchy), one long-lived loader thread that
takes the newest slice request from a :class:`~tui_dicom.core.cache.LatestSlot` (so holding a key never
queues decodes), and a header worker for the inspector. Results come back as messages; only handlers
touch widgets, and results for a request that is no longer current are dropped.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from tui_dicom.core.cache import LatestSlot
from tui_dicom.core.errors import DicomViewerError
from tui_dicom.core.loader import SliceLoader, SliceRequest
from tui_dicom.core.logging import log_exception
from tui_dicom.core.model import Hierarchy, Series, SliceRef
from tui_dicom.core.safe import safe_text
from tui_dicom.ui.messages import HeaderReady, IndexUpdated, SliceFailed, SliceReady, VaryingReady
from tui_dicom.ui.widgets.image_pane import ImagePane
from tui_dicom.ui.widgets.inspector import TagInspector
from tui_dicom.ui.widgets.picture import PictureView
from tui_dicom.ui.widgets.study_tree import MASK, StudyTree, fmt_date

PREFETCH = 6


def _fmt_num(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-6 else f"{value:.1f}"


class MainScreen(Screen[None]):
    """Tree | image | inspector, with header, status line and footer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "toggle_annotations", "Annotations"),
        Binding("p", "toggle_privacy", "Privacy"),
        Binding("t", "toggle_inspector", "Tags panel"),
    ]

    privacy: reactive[bool] = reactive(False)
    annotations: reactive[bool] = reactive(True)

    def __init__(self, paths: list[str], *, cache_mb: int = 512, decoder: Any = None,
                 source_label: str = "", demo_note: str = "") -> None:
        super().__init__()
        self.paths = paths
        self.source_label = source_label or " ".join(paths)
        self.demo_note = demo_note
        self.loader = SliceLoader(cache_mb * 1024**2, decoder=decoder)
        self._slot: LatestSlot[SliceRequest] = LatestSlot()
        self._hierarchy = Hierarchy()
        self._series: Series | None = None
        self._slices: list[SliceRef] = []
        self._index = 0
        self._seq = 0
        self._direction = 1
        self._window: Any = None  # None: the file's own window (else auto)
        self._shown_window: Any = None
        self._invert = False
        self._current_info: dict[str, Any] = {}
        self._header_ref: Any = None
        self._status_progress = ""
        self._index_cancel = threading.Event()
        self.last_displayed: dict[str, Any] = {}

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
        yield Footer()

    def on_mount(self) -> None:
        """Start indexing and the loader; the tree has focus."""
        self.title = "tui-dicom"
        self.sub_title = safe_text(self.source_label)
        self.query_one(StudyTree).focus()
        self._update_status()
        self._run_index()
        self._run_loader()
        if self.demo_note:
            self.notify(self.demo_note, title="Demo", markup=False, timeout=8)

    def on_resize(self) -> None:
        """Inspector to the right on wide terminals, below the image on narrow ones."""
        self.set_class(self.size.width < 120, "-narrow")

    def on_unmount(self) -> None:
        """Stop the background threads."""
        self._index_cancel.set()
        self._slot.close()

    # ------------------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="index", exit_on_error=False)
    def _run_index(self) -> None:
        from tui_dicom.core.index import Indexer

        worker = get_current_worker()
        indexer = Indexer(self.paths, cancel=self._index_cancel)
        for progress in indexer.run():
            if worker.is_cancelled:
                return
            self.post_message(IndexUpdated(indexer.snapshot(), progress))

    @work(thread=True, exclusive=True, group="loader", exit_on_error=False)
    def _run_loader(self) -> None:
        worker = get_current_worker()
        slot = self._slot
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
                self.post_message(SliceFailed(result.seq, result.slice, result.error))
            else:
                self.post_message(
                    SliceReady(result.seq, result.slice, result.picture, result.frame, result.window, result.info)
                )
            self.loader.prefetch(req.prefetch, should_stop=lambda: slot.has_item or worker.is_cancelled)

    @work(thread=True, exclusive=True, group="header", exit_on_error=False)
    def _read_header(self, ref: Any) -> None:
        from tui_dicom.core.tags import tag_rows

        worker = get_current_worker()
        try:
            ds = self.loader.header(ref)
            if worker.is_cancelled:
                return
            rows = tag_rows(ds)
        except (DicomViewerError, OSError, ValueError) as exc:
            self.post_message(HeaderReady(ref, [], error=safe_text(f"{ref.display}: {exc}")))
            return
        if not worker.is_cancelled:
            self.post_message(HeaderReady(ref, rows))

    @work(thread=True, exclusive=True, group="varying", exit_on_error=False)
    def _compute_varying(self, series: Series) -> None:
        from tui_dicom.core.tags import varying_tags

        worker = get_current_worker()
        datasets = []
        for inst in series.instances:
            if worker.is_cancelled:
                return
            try:
                datasets.append(self.loader.header(inst.ref))
            except (DicomViewerError, OSError, ValueError):
                continue
        rows = varying_tags(datasets)
        if not worker.is_cancelled:
            self.post_message(VaryingReady(series.series_instance_uid, list(rows)))

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
            self._status_progress = ""
            if not message.hierarchy.patients:
                reason = "no DICOM images found"
                if message.hierarchy.errors:
                    reason += f" ({len(message.hierarchy.errors)} problems; see the tree)"
                self.query_one(ImagePane).set_message(reason, error=True)
        else:
            total = f"/{progress.files_total}" if progress.files_total else ""
            self._status_progress = f"indexing {progress.files_done}{total} files…"
        self.query_one(StudyTree).update_hierarchy(message.hierarchy)
        if self._series is not None:  # the shown series may have grown
            for series in message.hierarchy.all_series():
                if series.series_instance_uid == self._series.series_instance_uid:
                    self._set_series(series, keep_slice=True)
                    break
        self._update_status()

    # ------------------------------------------------------------------------------ tree → slices

    @on(StudyTree.SeriesChosen)
    def _series_chosen(self, message: StudyTree.SeriesChosen) -> None:
        self._set_series(message.series)

    @on(StudyTree.SliceChosen)
    def _slice_chosen(self, message: StudyTree.SliceChosen) -> None:
        self._set_series(message.series, index=message.index)

    def _set_series(self, series: Series, index: int | None = None, keep_slice: bool = False) -> None:
        same = self._series is not None and self._series.series_instance_uid == series.series_instance_uid
        current = self._slices[self._index] if (same and self._slices) else None
        self._series = series
        self._slices = series.slices()
        if not self._slices:
            return
        if keep_slice and current is not None:
            keys = [s.key for s in self._slices]
            self._index = keys.index(current.key) if current.key in keys else min(self._index, len(keys) - 1)
            self._update_annotations()
            return
        if not same:
            self._window = None
            self._invert = False
        self._index = len(self._slices) // 2 if index is None else max(0, min(index, len(self._slices) - 1))
        self._request()

    @on(ImagePane.Navigate)
    def _navigate(self, message: ImagePane.Navigate) -> None:
        if not self._slices:
            return
        n = len(self._slices)
        if message.absolute is not None:
            new = n - 1 if message.absolute < 0 else min(message.absolute, n - 1)
        else:
            new = max(0, min(n - 1, self._index + message.delta))
            self._direction = 1 if message.delta >= 0 else -1
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
        ahead = [self._slices[i] for i in range(self._index + step, self._index + step * (PREFETCH + 1), step)
                 if 0 <= i < len(self._slices)]
        self._slot.put(SliceRequest(self._seq, sl, self._window, self._invert, True, tuple(ahead)))
        self._update_annotations()
        if sl.instance.ref != self._header_ref:
            self._header_ref = sl.instance.ref
            self.set_timer(0.05, lambda ref=sl.instance.ref: self._header_if_current(ref))

    def _header_if_current(self, ref: Any) -> None:
        if ref == self._header_ref:
            self._read_header(ref)

    # ------------------------------------------------------------------------------ results

    def on_slice_ready(self, message: SliceReady) -> None:
        """Show a decoded slice if it is still the one asked for."""
        if not self._slices or message.slice.key != self._slices[self._index].key or message.seq != self._seq:
            return
        self._current_info = message.info
        self._shown_window = message.window
        pane = self.query_one(ImagePane)
        pane.set_message(None)
        aspect = 1.0
        try:
            from tui_dicom.core.windowing import pixel_aspect

            aspect = pixel_aspect(message.frame)
        except Exception:  # noqa: BLE001 - aspect is cosmetic; 1.0 is a safe default
            aspect = 1.0
        pane.picture.show((message.slice.key, message.window, self._invert), message.picture, pixel_aspect=aspect)
        self._update_annotations()

    def on_slice_failed(self, message: SliceFailed) -> None:
        """Show why the slice cannot be displayed; its tags stay available."""
        if not self._slices or message.slice.key != self._slices[self._index].key:
            return
        self._current_info = {}
        self.query_one(ImagePane).set_message(f"{message.slice.instance.ref.display}\n{message.reason}", error=True)
        self._update_annotations()

    def on_header_ready(self, message: HeaderReady) -> None:
        """Fill the inspector if the header is the current instance's."""
        if message.ref != self._header_ref:
            return
        self.query_one(TagInspector).show_rows(message.rows, source=message.ref.display, error=message.error)

    @on(TagInspector.VaryingRequested)
    def _varying_requested(self, _message: TagInspector.VaryingRequested) -> None:
        if self._series is not None:
            self._compute_varying(self._series)

    def on_varying_ready(self, message: VaryingReady) -> None:
        """Show the varying tags if they belong to the current series."""
        if self._series is not None and message.series_uid == self._series.series_instance_uid:
            self.query_one(TagInspector).show_varying(message.rows)

    @on(PictureView.Displayed)
    def _displayed(self, message: PictureView.Displayed) -> None:
        """Record what the pane shows; write the layout file for real-terminal checks when asked."""
        if not self._slices:
            return
        sl = self._slices[self._index]
        self.last_displayed = {
            "region_cells": list(message.region_cells),
            "cell_px": list(message.cell_px),
            "renderer": message.renderer,
            "slice": f"{self._index + 1}/{len(self._slices)}",
            "sop_instance_uid": sl.instance.sop_instance_uid,
        }
        path = os.environ.get("TUI_DICOM_LAYOUT_JSON")
        if path:
            self._write_layout(path, dict(self.last_displayed), message.picture)

    @work(thread=True, exclusive=True, group="layout", exit_on_error=False)
    def _write_layout(self, path: str, layout: dict[str, Any], picture: Any) -> None:
        from PIL import Image

        png = path[:-5] + ".expected.png" if path.endswith(".json") else path + ".expected.png"
        tmp_png = png + ".tmp"
        Image.fromarray(picture).save(tmp_png, format="PNG")
        os.replace(tmp_png, png)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(layout, fh)
        os.replace(tmp, path)

    # ------------------------------------------------------------------------------ annotations

    def _update_annotations(self) -> None:
        pane = self.query_one(ImagePane)
        if not self._slices or self._series is None:
            return
        info = self._current_info
        sl = self._slices[self._index]
        patient = study = None
        for p in self._hierarchy.patients:
            for st in p.studies:
                if any(se.series_instance_uid == self._series.series_instance_uid for se in st.series):
                    patient, study = p, st
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
            (f"ID {pid}  DOB {dob}".strip() if pid or dob else "", "",
             f"Se {se_no if se_no is not None else '?'} {se_desc}".strip()),
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
        if self._invert:
            wl += " inv"
        bottom = (
            ("  ".join(where), "", "Zoom fit"),
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
        parts.append(f"renderer: {getattr(picture, 'renderer_description', None) or picture.renderer}")
        if self._status_progress:
            parts.append(self._status_progress)
        if self._hierarchy.errors:
            parts.append(f"{len(self._hierarchy.errors)} problems")
        if self.privacy:
            parts.append("PRIVACY")
        self.query_one("#status", Static).update(" │ ".join(parts))

    # ------------------------------------------------------------------------------ actions

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
