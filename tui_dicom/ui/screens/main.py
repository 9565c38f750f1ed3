"""The main screen: the mediator between the tree, the image pane and the inspector.

It owns the background work: one index worker (progressive hierarchy), and one long-lived loader thread
that takes the newest slice request from a :class:`~tui_dicom.core.cache.LatestSlot` (so holding a key
never queues decodes) and returns the picture together with the instance's tag rows. Results come back as
messages; only handlers touch widgets, and results older than the picture on screen are dropped.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from tui_dicom.core.cache import LatestSlot
from tui_dicom.core.errors import DicomViewerError
from tui_dicom.core.hierarchy.model import Hierarchy, Series, SliceRef
from tui_dicom.core.inspector.tags import TagRow
from tui_dicom.core.logging import log_exception
from tui_dicom.core.safe import safe_text
from tui_dicom.core.session.slice_loader import Decoder, SliceLoader, SliceRequest
from tui_dicom.core.session.viewer import PREFETCH, Change, MeasureOutcome, ViewerSession, fmt_num
from tui_dicom.core.session.viewstate import MeasureKind, cell_step
from tui_dicom.ui.driver import use_sparse_compositor
from tui_dicom.ui.keys import PANE_KEYS
from tui_dicom.ui.messages import IndexUpdated, SliceFailed, SliceReady, VaryingReady
from tui_dicom.ui.widgets.footer import ViewerFooter
from tui_dicom.ui.widgets.image_pane import ImagePane
from tui_dicom.ui.widgets.inspector import TagInspector
from tui_dicom.ui.widgets.picture import PictureView
from tui_dicom.ui.widgets.study_tree import MASK, StudyTree, fmt_date

if TYPE_CHECKING:
    import numpy as np

    from tui_dicom.core.dicom.source import FileRef
    from tui_dicom.core.imaging.windowing import Window

#: what the loader thread imports once the first picture is out, with pydicom (see :func:`_run_loader`)
_LOADER_MODULES = (
    "tui_dicom.core.dicom.reading",
    "tui_dicom.core.imaging.pixels",
    "tui_dicom.core.imaging.windowing",
    "tui_dicom.core.inspector.tags",
)
#: seconds after the first picture (and of an idle loader) before pydicom is imported in the background
PYDICOM_AFTER = 0.5
#: longest wait of an idle worker thread for its next request (closing its slot wakes it at once)
IDLE_TAKE = 2.0
#: seconds a slice step may take before its counter is shown ahead of its picture
COUNTER_DELAY = 0.15
#: seconds after mount when the key footer appears even if no picture came yet (a slow CD or decode)
FOOTER_LATEST = 3.0
#: seconds after mount when the tree and the tag panel are painted even if no picture came yet
PANELS_LATEST = 1.0
#: slice steps closer together than this are a held key (or cine): the tag inspector then follows
#: when stepping pauses for this long, not at every slice (the picture and its counter always do)
INSPECTOR_SETTLE = 0.2
#: while steps keep coming, the inspector still catches up at least this often (seconds)
INSPECTOR_MAX_LAG = 1.0


def _stored_png(picture: np.ndarray) -> bytes:
    """``picture`` (uint8 grey or RGB) as a PNG without compression (stored deflate blocks).

    For the layout file's picture: a test hook must not weigh on the step it observes. Pillow's PNG
    writer took 4–7 ms of CPU for a 512² slice (filters and zlib); this takes ~0.3 ms, for files
    the size of the pixels.
    """
    import struct
    import zlib

    import numpy as np

    pic = np.ascontiguousarray(picture, dtype=np.uint8)
    height, width = pic.shape[:2]
    colour = 2 if pic.ndim == 3 else 0
    rows = np.zeros((height, 1 + pic[0].size), np.uint8)  # filter byte 0 (none) before each row
    rows[:, 1:] = pic.reshape(height, -1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 0))
        + chunk(b"IEND", b"")
    )


def first_series(hierarchy: Hierarchy, preferred: Callable[[Series], bool] | None) -> Series | None:
    """The series the study tree selects at start (its ``_first_series_nodes`` walk, in display order):
    the first that ``preferred`` accepts, else the first of all. The screen asks for its picture
    before the tree has made its nodes."""
    every = hierarchy.all_series()
    if preferred is not None:
        for series in every:
            if preferred(series):
                return series
    return every[0] if every else None


@dataclass(frozen=True)
class DisplayRecord:
    """What the picture widget last put on screen (for tests and the layout file of real-terminal
    checks)."""

    region_cells: tuple[int, int, int, int]
    """Where the picture is, in cells: x, y, width, height."""
    cell_px: tuple[int, int]
    """The size of a cell in pixels."""
    renderer: str
    """The renderer that drew it (kitty, sixel, halfblock)."""
    slice: str
    """The counter of the slice shown, e.g. ``15/28``."""
    sop_instance_uid: str
    """The instance shown."""


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
        decoder: Decoder | None = None,
        source_label: str = "",
        demo_note: str = "",
    ) -> None:
        super().__init__()
        # a slice step repaints the picture, the counter and a few tag rows: only those are rendered
        use_sparse_compositor(self)
        self.paths = paths
        self.source_label = source_label or " ".join(paths)
        self.demo_note = demo_note
        self.loader = SliceLoader(cache_mb * 1024**2, decoder=decoder)
        self.cache_mb = cache_mb
        #: the viewer's state: series and slice cursor, window, view, probe, measurements, cine
        self.viewer = ViewerSession()
        self._slot: LatestSlot[SliceRequest] = LatestSlot()
        self._cine_timer: Timer | None = None
        #: an asyncio timer, not a Textual one: one per step, and a Textual timer is a task (made at the
        #: step, cancelled at the next), its callback's signature read each time
        self._counter_timer: asyncio.TimerHandle | None = None
        self._header_ref: FileRef | None = None
        #: when the newest slice was requested, and whether it came while the previous step was fresh
        self._step_at = -1.0
        self._repeating = False
        #: tag rows of the picture on screen, not yet in the inspector (keys repeating), and since when
        self._tags_pending: tuple[SliceRef, list[TagRow], str] | None = None
        self._tags_pending_since = 0.0
        self._tags_timer: Timer | None = None
        self._footer_released = False
        self._status_progress = ""
        self._index_cancel = threading.Event()
        #: set once the first picture is out (or PANELS_LATEST after mount): the index walk goes on then
        self._first_picture = threading.Event()
        #: TUI_DICOM_LAYOUT_JSON: after every displayed frame, where it is and what it shows (for tests
        #: that check a real terminal's screenshot against the picture)
        self._layout_path = os.environ.get("TUI_DICOM_LAYOUT_JSON", "")
        self._layout_slot: LatestSlot[tuple[DisplayRecord, Hashable, np.ndarray]] = LatestSlot()
        #: what the picture widget last put on screen (None before the first picture)
        self.last_displayed: DisplayRecord | None = None
        self.index_done = False
        self._sized = False
        self._size_note = ""
        #: what the decoder says about the shown slice's file although its picture is fine
        #: (e.g. "the file is cut short …"), shown in the status line
        self._frame_note = ""
        #: a series was shown already (the first one, chosen at start, takes the focus to the image)
        self._opened = False

    @property
    def series(self) -> Series | None:
        """The series shown."""
        return self.viewer.series

    @property
    def hierarchy(self) -> Hierarchy:
        """Everything indexed so far."""
        return self.viewer.hierarchy

    @property
    def progress_text(self) -> str:
        """The indexing (or retrieving) progress shown in the status line; empty when idle."""
        return self._status_progress

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
        if self.paths:
            self._hold_panels(True)
            self.set_timer(PANELS_LATEST, lambda: self._hold_panels(False))
        else:
            self._first_picture.set()
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
        self._hold_panels(False)
        if self._footer_released:  # once: it is asked after every picture
            return
        self._footer_released = True
        for footer in self.query(ViewerFooter):  # none in a subclass that composes its own
            footer.release()

    def _hold_panels(self, hold: bool) -> None:
        """Paint the tree and the tag rows only once the first picture is out (``hold`` False), or
        :data:`PANELS_LATEST` after mount.

        Until then they fill as usual (nodes, cursor, focus, widths) but are painted blank: a paint of a
        tree costs the main thread ~10 ms, and before the first picture the study tree repainted with
        every index snapshot, expansion and highlight, the empty tag tree with every layout change, all
        on the first picture's way.

        Held once at mount; released once, which sets :attr:`_first_picture`: asked after every
        picture, a release after that does nothing (the two DOM queries cost ~0.7 ms a step).
        """
        if not hold and self._first_picture.is_set():
            return
        for tree in self.query(StudyTree):
            tree.hold_paint(hold)
        for inspector in self.query(TagInspector):
            inspector.hold_paint(hold)
        if not hold:
            self._first_picture.set()

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
        self._first_picture.set()
        self._slot.close()
        self._layout_slot.close()
        if self._counter_timer is not None:
            self._counter_timer.cancel()

    # ------------------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="index", exit_on_error=False)
    def _run_index(self) -> None:
        from tui_dicom.core.hierarchy.index import Indexer

        worker = get_current_worker()
        # once a series can be shown, the walk waits for its picture (or PANELS_LATEST): see ``hold``
        indexer = Indexer(self.paths, cancel=self._index_cancel, progressive=True, hold=self._first_picture)
        for progress in indexer.run():
            if worker.is_cancelled:
                return
            self.post_message(IndexUpdated(indexer.snapshot(), progress))

    @work(thread=True, exclusive=True, group="loader", exit_on_error=False)
    def _run_loader(self) -> None:
        worker = get_current_worker()
        slot = self._slot
        from tui_dicom.core.dicom.preload import FIRST_PICTURE_MODULES, warm_up
        from tui_dicom.core.imaging.native import NATIVE_SYNTAXES

        # pydicom waits for the first picture: an uncompressed slice needs none, and a compressed one
        # imports it when decoded. Not for an archive: its network client imports pydicom in its own
        # thread, and two threads importing the same modules at once can fail with a deadlock error
        pydicom_pending = bool(self.paths)
        if pydicom_pending:
            warm_up(FIRST_PICTURE_MODULES, pydicom=False)  # no-op after the command line's warm-up
        shown_at: float | None = None
        while not worker.is_cancelled and not slot.closed:
            # while pydicom waits for the first picture, look four times a second; then sleep until a
            # request (closing the slot wakes it; the time-out only bounds a cancelled worker's life)
            req = slot.take(0.25 if pydicom_pending else IDLE_TAKE)
            if req is None:
                if pydicom_pending and self.last_displayed is not None:
                    # once the first picture has been out for a while (its frame written, the footer
                    # built) and the loader is idle: import pydicom in the background, rather than in the
                    # way of a compressed slice or a dialog (an import holds the interpreter lock)
                    now = time.monotonic()
                    shown_at = shown_at or now
                    if now - shown_at >= PYDICOM_AFTER:
                        pydicom_pending = False
                        warm_up(_LOADER_MODULES)
                continue
            syntax = req.slice.instance.transfer_syntax_uid
            if pydicom_pending and syntax and syntax not in NATIVE_SYNTAXES:
                pydicom_pending = False  # a compressed slice needs pydicom: import it without its downloader
                warm_up(_LOADER_MODULES)

            def stale(req: SliceRequest = req) -> bool:
                return worker.is_cancelled or req.seq != self.viewer.seq

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
        self.viewer.hierarchy = message.hierarchy
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
        if self.viewer.series is None and not self._opened and self.paths:
            # the series the tree will select at start: its picture is asked for first and decoded while
            # the tree fills, expands and highlights it (filling the tree takes longer than the decode;
            # its SeriesChosen then finds the series already shown); local files only (an archive
            # retrieves a series when the tree chooses it)
            first = first_series(message.hierarchy, self._from_first_path)
            if first is not None:
                self._set_series(first)
            tree.update_hierarchy(message.hierarchy)
        else:
            tree.update_hierarchy(message.hierarchy)
            if self.viewer.series is not None:  # the shown series may have grown
                grown = self.viewer.find_series(self.viewer.series.series_instance_uid)
                if grown is not None:
                    self._set_series(grown, keep_slice=True)
        if self.index_done and self.viewer.series is None:  # nothing to show: the keys need not wait
            self._release_footer()
        self._update_status()

    # ------------------------------------------------------------------------------ tree → slices

    @on(StudyTree.SeriesChosen)
    def _series_chosen(self, message: StudyTree.SeriesChosen) -> None:
        first = not self._opened
        self._opened = True
        started = (
            first
            and self.viewer.series is not None
            and self.viewer.series.series_instance_uid == message.series.series_instance_uid
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

    def show_series(self, series: Series, index: int | None = None) -> None:
        """Show ``series`` at slice ``index`` (None: the middle one), as choosing it in the tree does."""
        self._set_series(series, index)

    def _set_series(self, series: Series, index: int | None = None, keep_slice: bool = False) -> None:
        """Show ``series`` (at slice ``index``; ``keep_slice``: it grew, stay on the slice shown)."""
        self._apply(self.viewer.open_series(series, index, keep_slice))

    @on(ImagePane.Navigate)
    def _navigate(self, message: ImagePane.Navigate) -> None:
        self._apply(self.viewer.move(message.delta, message.absolute))

    # ------------------------------------------------------------------------------ session → widgets

    def _apply(self, change: Change) -> None:
        """Push what a session method changed to the widgets and the loader."""
        if Change.CINE in change:
            self._sync_cine_timer()
        if Change.SLICE in change:
            self._request()
        if Change.VIEW in change:
            self._redraw(self._update_annotations)
        elif Change.DRAWING in change:
            self._redraw()
        if Change.ANNOTATIONS in change and Change.VIEW not in change:
            self._update_annotations()

    def _request(self) -> None:
        """Ask the loader for the current slice (replacing any request not yet taken)."""
        request = self.viewer.request(PREFETCH)
        if request is None:
            return
        self._slot.put(request)
        now = time.monotonic()
        self._repeating = now - self._step_at < INSPECTOR_SETTLE
        self._step_at = now
        # the counter changes with the picture (one screen update per step); only a slow decode shows
        # it earlier
        if self._counter_timer is not None:
            self._counter_timer.cancel()
        self._counter_timer = asyncio.get_running_loop().call_later(COUNTER_DELAY, self._counter_due)

    def _counter_due(self) -> None:
        """(The asyncio timer.) Hand the late counter to the screen's own message loop."""
        self._counter_timer = None
        self.call_next(self._counter_late)

    def _counter_late(self) -> None:
        """The requested slice is still not on screen: show its counter anyway."""
        if self.viewer.waiting:
            self._update_annotations()

    def _show_tags(self, sl: SliceRef, rows: list[TagRow], error: str) -> None:
        """The inspector follows the slice shown (rows come with the slice from the loader)."""
        self._tags_pending = None
        if sl.instance.ref != self._header_ref:
            self._header_ref = sl.instance.ref
            self.query_one(TagInspector).show_rows(rows, error=error)

    def _follow_tags(self, sl: SliceRef, rows: list[TagRow], error: str) -> None:
        """The inspector follows the picture on screen: at once after a single step; while keys repeat
        (or cine plays) once stepping pauses for :data:`INSPECTOR_SETTLE`, as radiology viewers update
        their metadata panels, so a held key repaints the picture and its counter, not a hundred rows."""
        if not self._repeating or sl.instance.ref == self._header_ref:
            self._show_tags(sl, rows, error)
            return
        if self._tags_pending is None:
            self._tags_pending_since = time.monotonic()
        self._tags_pending = (sl, rows, error)
        if self._tags_timer is None:
            self._tags_timer = self.set_timer(INSPECTOR_SETTLE, self._tags_settle)

    def _tags_settle(self) -> None:
        """Show the pending tag rows once stepping has paused (or they waited :data:`INSPECTOR_MAX_LAG`)."""
        self._tags_timer = None
        pending = self._tags_pending
        if pending is None:
            return
        now = time.monotonic()
        quiet_for = now - self._step_at
        if quiet_for < INSPECTOR_SETTLE and now - self._tags_pending_since < INSPECTOR_MAX_LAG:
            self._tags_timer = self.set_timer(INSPECTOR_SETTLE - quiet_for, self._tags_settle)
            return
        self._show_tags(*pending)

    @property
    def tags_pending(self) -> bool:
        """True while the inspector waits for stepping to pause (see :meth:`_follow_tags`)."""
        return self._tags_pending is not None

    # ------------------------------------------------------------------------------ results

    def on_slice_ready(self, message: SliceReady) -> None:
        """Show a decoded slice if it is still the one asked for."""
        if not self.viewer.accept(
            message.seq, message.slice, message.picture, message.frame, message.window, message.info
        ):
            return
        self.query_one(ImagePane).set_message(None)
        self._set_frame_note(message.frame.note)

        def texts() -> None:
            # with the picture, in the same screen update: tag values, counter and annotations; only the
            # first picture goes out alone, its hundred tag rows in the update right after it
            if self._header_ref is None:
                self.call_after_refresh(self._show_tags, message.slice, message.rows, message.header_error)
            else:
                self._follow_tags(message.slice, message.rows, message.header_error)
            self._update_annotations()

        self._redraw(texts)

    def _redraw(self, then: Callable[[], None] | None = None) -> None:
        """Show the current picture with the current view and drawings (no decoding).

        The texts that go with the picture (measurements, probe, orientation, and ``then()``) are
        updated when the picture widget installs the new picture, so they land in the same frame.
        """
        shown = self.viewer.shown
        if shown is None:
            if then is not None:
                then()
            return
        from tui_dicom.core.imaging.windowing import pixel_aspect

        try:
            aspect = pixel_aspect(shown.frame)
        except Exception:  # noqa: BLE001 - aspect is cosmetic; 1.0 is a safe default
            aspect = 1.0
        pane = self.query_one(ImagePane)
        pane_state = self.viewer.pane
        # the probe / measurement rows appear with the key that starts probing or measuring, never
        # during a mouse gesture: the picture does not move under the pointer
        pane.reserve_readout(pane_state.readout_visible)

        def texts() -> None:
            pane.set_measurements(self.viewer.measurement_lines())
            pane.set_probe_line(self.viewer.probe_text())
            labels = self.viewer.refresh_orientation()
            pane.set_side_labels(labels["left"], labels["right"])
            if then is not None:
                then()

        pane.picture.show(
            (shown.slice.key, shown.window, pane_state.invert, self.viewer.overlays),
            shown.picture,
            pixel_aspect=aspect,
            view=pane_state.view,
            shapes=self.viewer.shapes(),
            on_shown=texts,
        )

    def on_slice_failed(self, message: SliceFailed) -> None:
        """Show why the slice cannot be displayed; its tags stay available."""
        if not self.viewer.reject(message.seq, message.slice):
            return
        self._release_footer()
        self._show_tags(message.slice, message.rows, message.header_error)
        self.query_one(ImagePane).set_message(
            f"{message.slice.instance.ref.display}\n{message.reason}", error=True
        )
        self._update_annotations()

    @on(TagInspector.VaryingRequested)
    def _varying_requested(self, _message: TagInspector.VaryingRequested) -> None:
        if self.viewer.series is not None:
            self._compute_varying(self.viewer.series)

    def on_varying_ready(self, message: VaryingReady) -> None:
        """Show the varying tags if they belong to the current series."""
        series = self.viewer.series
        if series is not None and message.series_uid == series.series_instance_uid:
            self.query_one(TagInspector).show_varying(message.paths)

    @on(PictureView.Displayed)
    def _displayed(self, message: PictureView.Displayed) -> None:
        """Record what the pane shows; write the layout file for real-terminal checks when asked."""
        message.stop()  # the app has nothing to do with it (one dispatch less at every slice step)
        self._release_footer()
        if message.picture_view.size_note != self._size_note:  # scaled down for the terminal, or no more
            self._size_note = message.picture_view.size_note
            self._update_status()
        slices = self.viewer.slices
        if not slices:
            return
        # the picture's key is (slice key, window, invert, overlays): find the slice it shows
        slice_key = message.key[0] if isinstance(message.key, tuple) and message.key else None
        index = self.viewer.index_of(slice_key)
        if index is None:
            return
        shown = slices[index]
        self.last_displayed = DisplayRecord(
            region_cells=message.region_cells,
            cell_px=message.cell_px,
            renderer=message.renderer,
            slice=f"{index + 1}/{len(slices)}",
            sop_instance_uid=shown.instance.sop_instance_uid,
        )
        if self._layout_path:
            self._layout_slot.put((self.last_displayed, message.key, message.picture))

    @work(thread=True, exclusive=True, group="layout", exit_on_error=False)
    def _run_layout_writer(self) -> None:
        """One writer thread, so the layout file always ends on the newest frame (never out of order)."""
        import json  # the layout file is a test hook: not on the start's way

        import numpy as np

        worker = get_current_worker()
        path = self._layout_path
        png = path[:-5] + ".expected.png" if path.endswith(".json") else path + ".expected.png"
        # the PNGs of the last pictures written, by what the picture shows (its key and size), checked
        # against the pixels: a slice shown again comes as a new array of the same pixels (each step
        # re-encodes the picture for the pane), and stepping back must cost no new PNG
        encoded: dict[tuple[Hashable, tuple[int, ...]], tuple[np.ndarray, bytes]] = {}
        while not worker.is_cancelled and not self._layout_slot.closed:
            item = self._layout_slot.take(IDLE_TAKE)
            if item is None:
                continue
            record, key, picture = item
            memo_key = (key, picture.shape)
            known = encoded.get(memo_key)
            if known is None or not (known[0] is picture or np.array_equal(known[0], picture)):
                if len(encoded) >= 16:
                    encoded.pop(next(iter(encoded)))
                known = encoded[memo_key] = (picture, _stored_png(picture))
            with open(png + ".tmp", "wb") as fh:
                fh.write(known[1])
            os.replace(png + ".tmp", png)
            with open(path + ".tmp", "w", encoding="utf-8") as fh:
                fh.write(json.dumps({f.name: getattr(record, f.name) for f in fields(record)}))
            os.replace(path + ".tmp", path)

    # ------------------------------------------------------------------------------ annotations

    def _update_annotations(self) -> None:
        pane = self.query_one(ImagePane)
        session = self.viewer
        series, sl = session.series, session.current
        if sl is None or series is None:
            return
        info = session.info
        patient, study = session.context
        name = safe_text((patient.patient_name if patient else "") or info.patient_name)
        pid = safe_text((patient.patient_id if patient else "") or info.patient_id)
        dob = fmt_date(safe_text((patient.birth_date if patient else "") or info.birth_date))
        if self.privacy:
            name, pid, dob = MASK, MASK, MASK if dob else ""
        sdate = fmt_date(safe_text((study.study_date if study else "") or info.study_date))
        sdesc = safe_text((study.study_description if study else "") or info.study_description)
        se_no = series.series_number
        se_desc = safe_text(series.series_description)
        top = (
            (name.replace("^", " "), "", f"{sdate} {sdesc}".strip()),
            (
                f"ID {pid}  DOB {dob}".strip() if pid or dob else "",
                "",
                f"Se {se_no if se_no is not None else '?'} {se_desc}".strip(),
            ),
        )
        where = []
        if info.location is not None:
            where.append(f"Loc {fmt_num(info.location)} mm")
        if info.thickness is not None:
            where.append(f"Thk {fmt_num(info.thickness)} mm")
        counter = session.counter_text
        if sl.instance.frames > 1:
            counter += f"  (frame {sl.frame + 1}/{sl.instance.frames})"
        win = session.shown_window
        wl = ""
        if win is not None:
            wl = f"W:{fmt_num(win.width)} L:{fmt_num(win.center)}"
            if win.name:
                wl += f" ({safe_text(win.name)})"
        if session.pane.invert:
            wl += " inv"
        if session.pane.cine:
            counter += f"  {session.cine_text}"
        labels = session.orientation
        top = (top[0], (top[1][0], labels.get("top", ""), top[1][2]))
        bottom = (
            ("  ".join(where), labels.get("bottom", ""), session.pane.zoom_text),
            (counter, "", wl),
        )
        pane.set_annotations(top, bottom)

    @property
    def counter_text(self) -> str:
        """The slice counter as shown, e.g. ``37/103``."""
        return self.viewer.counter_text

    def _update_status(self) -> None:
        parts = []
        picture = self.query_one(PictureView)
        parts.append(f"renderer: {picture.renderer_description}")
        if self._status_progress:
            parts.append(self._status_progress)
        if self.viewer.hierarchy.errors:
            parts.append(f"{len(self.viewer.hierarchy.errors):,} problems")
        if self._frame_note:
            parts.append(self._frame_note)
        if self.privacy:
            parts.append("PRIVACY")
        # plain Text: never markup, whatever a part says
        self.query_one("#status", Static).update(Text(" │ ".join(parts)), layout=False)  # one row, full width

    def _set_frame_note(self, note: str) -> None:
        """Show (or clear) the decoder's note about the shown slice's file; the status line is
        rewritten only when the note changes, not at every step."""
        note = safe_text(note)
        if note != self._frame_note:
            self._frame_note = note
            self._update_status()

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
        if self.viewer.series is None:
            self.notify("Choose a series first", timeout=3)
            return
        from tui_dicom.ui.screens.anonymize import AnonymizeDialog  # de-identification loads on use

        self.app.push_screen(AnonymizeDialog(self.viewer.series, self.viewer.context[1], self.paths))

    def action_search_tags(self) -> None:
        """``/`` from the tree or the image: open the tags panel's filter (showing the panel if hidden)."""
        inspector = self.query_one(TagInspector)
        inspector.display = True
        inspector.action_search()

    # ------------------------------------------------------------------------------ viewing commands
    #
    # Every viewer command is an ``action_*`` with named, typed parameters. The image pane binds them
    # (``screen.width(-1)``), the help screen lists those bindings and the command palette runs them.
    # Each one calls the session and applies what it says changed; the screen only adds what needs the
    # terminal (the picture's layout) and the notices.

    def action_step(self, delta: int) -> None:
        """Step ``delta`` slices (negative: back)."""
        self._apply(self.viewer.move(delta=delta))

    def action_goto(self, index: int) -> None:
        """Go to slice ``index`` (0: the first, -1: the last)."""
        self._apply(self.viewer.move(absolute=index))

    def action_arrow(self, direction: str) -> None:
        """An arrow key: moves the probe while it is on, else ↑/↓ step slices (``direction``: up/down/left/right)."""
        self._apply(self.viewer.arrow(direction, self._cell_step))

    def _cell_step(self) -> tuple[float, float]:
        """Image pixels per screen cell of the picture shown (the probe moves one cell per arrow press)."""
        lay = self.query_one(PictureView).layout_now
        if lay is None or lay.empty:
            return (1.0, 1.0)
        return cell_step(lay.crop, lay.cells)

    def action_width(self, direction: int, fine: bool = False) -> None:
        """Widen (``direction`` 1) or narrow (-1) the window; ``fine`` takes a tenth of the step."""
        self._apply(self.viewer.adjust_window(direction, 0, fine))

    def action_level(self, direction: int, fine: bool = False) -> None:
        """Raise (``direction`` 1) or lower (-1) the window level; ``fine`` takes a tenth of the step."""
        self._apply(self.viewer.adjust_window(0, direction, fine))

    def window_presets(self) -> list[Window]:
        """The number keys' windows for the slice shown: CT presets where values are HU, else the file's
        windows, auto, min–max and percentile windows (see :func:`windowing.window_presets`)."""
        return self.viewer.window_presets()

    def action_preset(self, number: int) -> None:
        """Window preset ``number`` (1–9) of the image shown: CT presets for HU, else the file's windows,
        auto, min–max and percentile windows."""
        change = self.viewer.preset(number)
        if change:
            self._apply(change)
        elif self.viewer.frame is not None:
            presets = self.viewer.window_presets()
            if not presets:
                self.notify("A colour image has no window presets", timeout=3)
                return
            names = ", ".join(f"{i} {safe_text(w.name)}" for i, w in enumerate(presets, start=1))
            self.notify(f"No preset {number} for this image; its presets: {names}", timeout=5, markup=False)

    def action_file_window(self) -> None:
        """The file's own window; pressed again, its next one (a file may define several)."""
        frame = self.viewer.frame
        if frame is None:
            return
        if not frame.is_grey:
            self.notify("A colour image has no window", timeout=3)
            return
        change, window = self.viewer.next_file_window()
        if window is None:
            self.notify("This file defines no window: showing its default (VOI LUT or auto)", timeout=3)
        self._apply(change)

    def action_auto_window(self) -> None:
        """A window over the 0.5–99.5 percentiles of the slice."""
        self._apply(self.viewer.auto_window())

    def action_minmax_window(self) -> None:
        """A window from the slice's smallest to its largest value."""
        self._apply(self.viewer.minmax_window())

    def action_invert(self) -> None:
        """Invert the grey scale."""
        self._apply(self.viewer.toggle_invert())

    def action_overlays(self) -> None:
        """Show or hide the file's overlays."""
        change = self.viewer.toggle_overlays()
        self.notify("Overlays " + ("on" if self.viewer.overlays else "off"), timeout=2)
        self._apply(change)

    def action_zoom(self, direction: int) -> None:
        """Zoom in (``direction`` 1) or out (-1) by one step."""
        self._apply(self.viewer.zoom(direction))

    def action_fit(self) -> None:
        """Fit the whole image in the pane."""
        self._apply(self.viewer.fit())

    def action_one_to_one(self) -> None:
        """One image pixel per screen pixel."""
        self._apply(self.viewer.one_to_one())

    def action_pan(self, d_row: int, d_col: int) -> None:
        """Pan by a tenth of the view in screen directions (``d_row`` down, ``d_col`` right); with the
        probe on, move the probe by one image pixel instead (the arrows move it one screen cell)."""
        self._apply(self.viewer.pan(d_row, d_col))

    def action_reset_view(self) -> None:
        """Zoom, pan, rotation, flips and window back to how the series opened."""
        self._apply(self.viewer.reset_view())

    def action_rotate(self) -> None:
        """Rotate 90° clockwise."""
        self._apply(self.viewer.rotate())

    def action_flip(self, horizontal: bool) -> None:
        """Mirror left/right (``horizontal``) or top/bottom."""
        self._apply(self.viewer.flip(bool(horizontal)))

    # cine
    def action_cine(self) -> None:
        """Play or pause the series as a film."""
        self._apply(self.viewer.toggle_cine())

    def _sync_cine_timer(self) -> None:
        """Run the cine timer at the session's rate while it plays; stop it otherwise."""
        if self._cine_timer is not None:
            self._cine_timer.stop()
            self._cine_timer = None
        if self.viewer.pane.cine:
            self._cine_timer = self.set_interval(self.viewer.cine_interval, self._cine_tick)

    def _cine_tick(self) -> None:
        """Advance one slice, looping; the loader's latest-only slot drops frames it can't keep up with."""
        self._apply(self.viewer.cine_tick())

    def action_bracket(self, direction: int) -> None:
        """``]``/``[``: the next/previous series, or faster/slower while the cine plays."""
        if self.viewer.pane.cine:
            self._apply(self.viewer.cine_rate(direction))
        else:
            self.action_series(direction)

    def action_mpr(self) -> None:
        """Axial, coronal and sagittal planes of the shown series with a linked crosshair (MPR screen)."""
        from tui_dicom.ui.screens.mpr import MprScreen

        if self.viewer.series is not None:
            self.app.push_screen(MprScreen(self.viewer.series, cache_mb=self.cache_mb))

    def action_compare(self) -> None:
        """The shown series beside another one, scrolled together by position (compare screen)."""
        from tui_dicom.ui.screens.compare import CompareScreen

        if self.viewer.series is not None:
            self.app.push_screen(
                CompareScreen(
                    self.viewer.hierarchy.all_series(), self.viewer.series, cache_mb=self.cache_mb // 2
                )
            )

    def action_series(self, direction: int) -> None:
        """Show the next (``direction`` 1) or previous (-1) series, wrapping around."""
        target = self.viewer.step_series(direction)
        current = self.viewer.series
        if target is None or current is None:
            return
        if target.series_instance_uid == current.series_instance_uid:
            self.notify("This is the only series", timeout=2)
            return
        self._set_series(target)
        self.query_one(StudyTree).select_series(target)

    # probe and measurements
    def action_probe(self) -> None:
        """Show or hide the probe crosshair (value, units and patient position under it)."""
        self._apply(self.viewer.toggle_probe())

    _TOOL_NAMES: ClassVar[dict[str, str]] = {
        "line": "Length",
        "rect": "Rectangle ROI",
        "ellipse": "Ellipse ROI",
    }

    def action_measure(self, kind: MeasureKind) -> None:
        """``m``/``R``/``E``: choose the measuring tool (line, rect, ellipse); pressed again, put an end
        down at the crosshair. With the mouse: press-drag-release or click at both ends."""
        outcome = self.viewer.measure_key(kind)
        if outcome.armed:
            name = self._TOOL_NAMES.get(kind, kind)
            key = {"line": "m", "rect": "R", "ellipse": "E"}.get(kind, "")
            self.notify(
                f"{name}: drag on the image, or click at both ends (keys: move the crosshair, {key} "
                "at each end); Esc cancels",
                timeout=5,
                markup=False,
            )
        self._measured(outcome)
        if outcome.unmoved:
            self.notify("Move the crosshair (arrows or mouse) to the other end first", timeout=3)
        self._apply(outcome.change)

    def _measured(self, outcome: MeasureOutcome) -> None:
        """A measurement was completed: warn when its length is uncalibrated."""
        if outcome.warning:
            self.notify(outcome.warning, severity="warning", timeout=5)

    def action_cancel_measurement(self) -> None:
        """Esc: drop the measuring tool and a measurement in progress."""
        change = self.viewer.cancel_measurement()
        if change:
            self.notify("Measurement cancelled", timeout=2)
            self._apply(change)

    def action_delete_measurement(self) -> None:
        """Delete the last measurement of the slice shown."""
        self._apply(self.viewer.delete_measurement())

    # ------------------------------------------------------------------------------ mouse

    @on(PictureView.Clicked)
    def _mouse_clicked(self, message: PictureView.Clicked) -> None:
        self.query_one(ImagePane).focus()
        self.viewer.start_drag()
        if message.button != 1 or message.ctrl:
            return
        outcome = self.viewer.click(self.viewer.pixel(message.image))
        self._measured(outcome)
        self._apply(outcome.change)

    @on(PictureView.Released)
    def _mouse_released(self, message: PictureView.Released) -> None:
        if message.button == 1:
            outcome = self.viewer.release(self.viewer.pixel(message.image))
            self._measured(outcome)
            self._apply(outcome.change)

    @on(PictureView.Hovered)
    def _mouse_hovered(self, message: PictureView.Hovered) -> None:
        self._apply(self.viewer.hover(self.viewer.pixel(message.image)))

    @on(PictureView.Dragged)
    def _mouse_dragged(self, message: PictureView.Dragged) -> None:
        dx, dy = message.delta_cells
        if message.button == 1 and not message.ctrl and self.viewer.pane.pending is not None:
            # the measurement follows the pointer
            self._apply(self.viewer.drag_measure(self.viewer.pixel(message.image)))
            return
        if message.button == 3 or (message.button == 1 and message.ctrl):
            self._apply(self.viewer.drag_window_by(dx, dy))
        elif message.button == 2:
            lay = self.query_one(PictureView).layout_now
            cell = None if lay is None or lay.empty else cell_step(lay.crop, lay.cells)
            self._apply(self.viewer.drag_pan(dx, dy, cell))

    @on(PictureView.Wheel)
    def _mouse_wheel(self, message: PictureView.Wheel) -> None:
        if message.ctrl:
            self.action_zoom(-message.direction)
        else:
            self._apply(self.viewer.move(delta=message.direction))
