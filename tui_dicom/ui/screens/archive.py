"""The main screen over an archive: the tree comes from a query, series arrive while they are shown.

Everything the local viewer does (slices, windowing, inspector, measurements) is :class:`MainScreen`'s;
this subclass only replaces where the hierarchy comes from:

- the index worker becomes a query worker (study level; a search box queries again);
- expanding a study queries its series;
- choosing a series starts one retrieve worker (a newer choice cancels the older retrieve) that fetches
  it into the private cache and posts snapshots as instances arrive, so the first slice shows before the
  series is complete; a progress bar counts them and ``Esc`` cancels (C-CANCEL / abort, what arrived is
  kept). Failures are one line in the pane, the bar and a notification.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.worker import get_current_worker

from tui_dicom.core.archive.browse import ArchiveBrowser, ArchiveSession, SeriesProgress
from tui_dicom.core.archive.errors import ArchiveError
from tui_dicom.core.archive.query import QueryFilters
from tui_dicom.core.hierarchy.index import IndexProgress
from tui_dicom.core.hierarchy.model import Hierarchy, Series, Study
from tui_dicom.core.safe import safe_text
from tui_dicom.ui.messages import IndexUpdated
from tui_dicom.ui.screens.main import MainScreen
from tui_dicom.ui.widgets.archive_bar import ArchiveBar
from tui_dicom.ui.widgets.image_pane import ImagePane
from tui_dicom.ui.widgets.study_tree import StudyTree


@dataclass
class QueryDone(Message):
    """A study query finished (in the query worker)."""

    generation: int
    """Which query it answers (older ones are dropped)."""
    hierarchy: Hierarchy
    """Patients and studies found."""
    cut: bool
    """More studies matched than the limit."""
    error: str = ""
    """One line when the query failed."""


@dataclass
class SeriesListed(Message):
    """The series of a study were queried."""

    study_uid: str
    """The study."""
    series: list[Series]
    """Its series (no instances yet)."""
    error: str = ""
    """One line when the query failed."""


@dataclass
class SeriesArrived(Message):
    """More of a series has arrived in the cache."""

    series_uid: str
    """The series."""
    progress: SeriesProgress
    """The arrived instances (display order) and the counts."""


class ArchiveScreen(MainScreen):
    """:class:`MainScreen` whose hierarchy comes from an archive."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel_retrieve", "Cancel retrieve"),
        Binding("ctrl+f", "focus_search", "Search archive"),
        Binding("ctrl+n", "page(1)", "Next results", show=False),
        Binding("ctrl+b", "page(-1)", "Previous results", show=False),
    ]

    def __init__(self, session: ArchiveSession, browser: ArchiveBrowser | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("source_label", session.address.display)
        super().__init__([], **kwargs)
        self.session = session
        self.browser = browser or ArchiveBrowser(session)
        self.filters = session.filters
        self._generation = 0
        #: the first study of the page shown (``--limit`` studies a page)
        self._offset = 0
        self._cut = False
        self._series_queried: set[str] = set()
        self._retrieve_cancel = threading.Event()
        self._retrieving = ""
        self._open_study = session.open_study
        #: (instances arrived, total) when the first picture of a retrieving series was shown (for tests)
        self.first_picture_at: tuple[int, int] | None = None
        self._progress: dict[str, tuple[int, int, bool]] = {}

    def on_mount(self) -> None:
        """The bar above the body; then the base screen starts the (query) index worker."""
        self.mount(ArchiveBar(id="archive-bar"), before=self.query_one("#body"))
        super().on_mount()

    def _from_first_path(self, series: Series) -> bool:
        """With ``--series UID`` the tree opens on that series."""
        return bool(self.filters.series_uid) and series.series_instance_uid == self.filters.series_uid

    def on_unmount(self) -> None:
        """Stop a running retrieve, close connections."""
        self._retrieve_cancel.set()
        super().on_unmount()

    # ------------------------------------------------------------------------------ query

    @work(thread=True, exclusive=True, group="index", exit_on_error=False)
    def _run_index(self) -> None:
        generation = self._generation
        try:
            hierarchy, cut = self.browser.query(self.filters, self._offset)
        except ArchiveError as exc:
            self.post_message(QueryDone(generation, Hierarchy(), False, str(exc)))
            return
        self.post_message(QueryDone(generation, hierarchy, cut))

    def on_query_done(self, message: QueryDone) -> None:
        """Replace the tree with the answer; say when it was cut; open ``--study``."""
        if message.generation != self._generation:
            return
        bar = self.query_one(ArchiveBar)
        pane = self.query_one(ImagePane)
        if message.error:
            pane.set_message(message.error, error=True)
            bar.show_note(message.error, error=True)
            self.notify(safe_text(message.error), severity="error", markup=False)
            return
        tree = self.query_one(StudyTree)
        tree.clear_hierarchy()
        self._series_queried.clear()
        count = sum(len(p.studies) for p in message.hierarchy.patients)
        n = len(message.hierarchy.patients)
        self.on_index_updated(IndexUpdated(message.hierarchy, IndexProgress(n, n, "done")))
        if count == 0:
            pane.set_message("no studies match the search", error=False)
        self._cut = message.cut
        first = self._offset + 1
        note = f"{count} studies" if not self._offset else f"studies {first}–{self._offset + count}"
        if message.cut:
            note = f"studies {first}–{self._offset + count} shown: more match (ctrl+n: next page, or narrow the search)"
            self.notify(note, severity="warning", markup=False)
        bar.show_note(note)
        studies = [st for p in message.hierarchy.patients for st in p.studies]
        if not self._open_study and self.filters.series_uid and len(studies) == 1:
            self._open_study = studies[0].study_instance_uid  # --series: open its study
        if self._open_study:
            tree.expand_study(self._open_study)
            self._open_study = ""

    @on(ArchiveBar.Search)
    def _search(self, message: ArchiveBar.Search) -> None:
        self.filters = message.filters
        self._offset = 0
        self._generation += 1
        self.query_one(ArchiveBar).show_note("searching…")
        self._run_index()

    def action_page(self, direction: int) -> None:
        """The next (1) or previous (-1) page of ``--limit`` studies."""
        limit = self.session.limit
        if not limit or (direction > 0 and not self._cut) or (direction < 0 and not self._offset):
            return
        self._offset = max(0, self._offset + direction * limit)
        self._generation += 1
        self.query_one(ArchiveBar).show_note("searching…")
        self._run_index()

    def action_focus_search(self) -> None:
        """Put the cursor in the search box."""
        self.query_one("#archive-search").focus()

    # ------------------------------------------------------------------------------ series of a study

    @on(StudyTree.StudyExpanded)
    def _study_expanded(self, message: StudyTree.StudyExpanded) -> None:
        study = message.study
        if study.study_instance_uid in self._series_queried:
            return
        self._series_queried.add(study.study_instance_uid)
        self._list_series(study)

    @work(thread=True, group="series", exit_on_error=False)
    def _list_series(self, study: Study) -> None:
        try:
            series = self.browser.series_of(study.study_instance_uid)
        except ArchiveError as exc:
            self.post_message(SeriesListed(study.study_instance_uid, [], str(exc)))
            return
        self.post_message(SeriesListed(study.study_instance_uid, series))

    def on_series_listed(self, message: SeriesListed) -> None:
        """Hang the series under their study."""
        if message.error:
            self._series_queried.discard(message.study_uid)
            self.query_one(ArchiveBar).show_note(message.error, error=True)
            self.notify(safe_text(message.error), severity="error", markup=False)
            return
        for patient in self.viewer.hierarchy.patients:
            for study in patient.studies:
                if study.study_instance_uid == message.study_uid:
                    study.series = message.series
        self.query_one(StudyTree).update_hierarchy(self.viewer.hierarchy)

    # ------------------------------------------------------------------------------ retrieve

    def _study_of(self, series: Series) -> str:
        for patient in self.viewer.hierarchy.patients:
            for study in patient.studies:
                if any(
                    se is series or se.series_instance_uid == series.series_instance_uid
                    for se in study.series
                ):
                    return study.study_instance_uid
        return ""

    def _set_series(self, series: Series, index: int | None = None, keep_slice: bool = False) -> None:
        uid = series.series_instance_uid
        if not keep_slice and uid != self._retrieving and self._progress.get(uid, (0, 0, False))[2] is False:
            self._start_retrieve(series)
        super()._set_series(series, index, keep_slice)
        if not series.instances:
            self.query_one(ImagePane).set_message("retrieving…", error=False)
        self._show_progress(uid)

    def _start_retrieve(self, series: Series) -> None:
        self._retrieve_cancel.set()  # the older retrieve stops (C-CANCEL)
        self._retrieve_cancel = threading.Event()
        self._retrieving = series.series_instance_uid
        self.first_picture_at = None
        self._retrieve(self._study_of(series), series, self._retrieve_cancel)

    @work(thread=True, exclusive=True, group="retrieve", exit_on_error=False)
    def _retrieve(self, study_uid: str, series: Series, cancel: threading.Event) -> None:
        worker = get_current_worker()
        for progress in self.browser.fetch_series(study_uid, series.series_instance_uid, cancel):
            if worker.is_cancelled:
                cancel.set()
            self.post_message(SeriesArrived(series.series_instance_uid, progress))

    def on_series_arrived(self, message: SeriesArrived) -> None:
        """Swap in the arrived instances; the first arrival shows a slice; the last one says how it ended."""
        p = message.progress
        self._progress[message.series_uid] = (p.arrived, p.total, p.done and not p.error)
        series = next(
            (s for s in self.viewer.hierarchy.all_series() if s.series_instance_uid == message.series_uid),
            None,
        )
        if series is None:
            return
        had = bool(series.instances)
        series.instances = p.instances
        self.query_one(StudyTree).update_hierarchy(self.viewer.hierarchy)
        if (
            self.viewer.series is not None
            and self.viewer.series.series_instance_uid == message.series_uid
            and p.instances
        ):
            if not had:
                self.first_picture_at = (p.arrived, p.total)
            MainScreen._set_series(self, series, keep_slice=had)
        if p.done:
            if self._retrieving == message.series_uid:
                self._retrieving = ""
            if p.error:
                line = p.error if not p.failed else f"{p.error} ({len(p.failed)} not retrieved)"
                self.query_one(ArchiveBar).show_note(line, error=True)
                self.notify(safe_text(line), severity="error", markup=False, timeout=8)
                if not p.instances:
                    self.query_one(ImagePane).set_message(line, error=True)
            else:
                self.query_one(ArchiveBar).show_note(f"{p.arrived} instances retrieved")
        self._show_progress(message.series_uid)

    def _show_progress(self, series_uid: str) -> None:
        arrived, total, complete = self._progress.get(series_uid, (0, 0, False))
        shown = self.viewer.series is not None and self.viewer.series.series_instance_uid == series_uid
        if shown:
            self.query_one(ArchiveBar).show_progress(
                arrived, total, complete or self._retrieving != series_uid
            )
            self._status_progress = "" if complete or not total else f"retrieving {arrived}/{total}…"
            self._update_status()

    def action_cancel_retrieve(self) -> None:
        """Esc: stop the running retrieve (what arrived stays)."""
        if self._retrieving:
            self._retrieve_cancel.set()
            self.query_one(ArchiveBar).show_note("cancelling…")

    def search_filters(self) -> QueryFilters:
        """The filters of the tree shown."""
        return self.filters
