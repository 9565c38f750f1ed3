"""Browsing an archive the way the viewer needs it, without the UI: query, expand, fetch a series.

The viewer's workers call these blocking methods; each returns plain model objects so the UI thread only
swaps them in. :meth:`ArchiveBrowser.fetch_series` yields a :class:`SeriesProgress` as instances arrive
(already cached ones first), so the first slice can be shown while the rest is still on the wire.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tui_dicom.core.archive.address import ArchiveAddress
from tui_dicom.core.archive.diskcache import DiskCache
from tui_dicom.core.archive.errors import ArchiveError, Cancelled, RetrieveIncomplete
from tui_dicom.core.archive.query import (
    ArchiveClient,
    InstanceRecord,
    QueryFilters,
    hierarchy_from_studies,
    series_from_records,
)
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.errors import DicomViewerError
from tui_dicom.core.hierarchy.model import Hierarchy, Instance, Series, sort_instances


@dataclass(frozen=True)
class ArchiveSession:
    """What the viewer was asked to browse (from the command line)."""

    address: ArchiveAddress
    filters: QueryFilters = field(default_factory=QueryFilters)
    limit: int | None = 200
    cache_bytes: int = 2048 * 1024 * 1024
    timeout: float = 30.0
    #: open on this study (``--study UID``), like a local path
    open_study: str = ""


@dataclass
class SeriesProgress:
    """A snapshot of one series' retrieve.

    Attributes:
        instances: The instances that have arrived, in display order (a new list each time).
        arrived: How many have arrived.
        total: How many the archive listed.
        done: True for the last snapshot.
        error: One line when the retrieve stopped early or failed (what arrived is kept).
        failed: SOP Instance UIDs that did not arrive.
    """

    instances: list[Instance]
    arrived: int
    total: int
    done: bool = False
    error: str = ""
    failed: list[str] = field(default_factory=list)


class ArchiveBrowser:
    """Query and fetch for the viewer (blocking; call from worker threads)."""

    def __init__(self, session: ArchiveSession, client: ArchiveClient | None = None) -> None:
        self.session = session
        self._client = client
        self._lock = threading.Lock()
        self.cache = DiskCache(session.address.display, session.cache_bytes)
        #: NumberOfSeriesRelatedInstances by series, from the series queries
        self._counts: dict[str, int] = {}

    @property
    def client(self) -> ArchiveClient:
        """The protocol client, made on first use (importing pynetdicom / dicomweb-client then)."""
        with self._lock:
            if self._client is None:
                from tui_dicom.core.archive.connect import open_client

                self._client = open_client(self.session.address, timeout=self.session.timeout)
            return self._client

    def query(self, filters: QueryFilters | None = None, offset: int = 0) -> tuple[Hierarchy, bool]:
        """Patients and studies matching ``filters`` (the session's by default), the page starting at
        ``offset``; and whether more matched."""
        page = self.client.find_studies(
            filters or self.session.filters, limit=self.session.limit, offset=offset
        )
        return hierarchy_from_studies(page.studies), page.cut

    def series_of(self, study_uid: str) -> list[Series]:
        """The series of a study (no instances yet); their instance counts are kept for the retrieve."""
        records = self.client.find_series(study_uid)
        for r in records:
            if r.instance_count is not None:
                self._counts[r.series_instance_uid] = r.instance_count
        return series_from_records(records)

    def _instance(self, path: str) -> Instance:
        from tui_dicom.core.hierarchy.header import read_header

        ref = FileRef(path)
        try:
            return read_header(ref).to_instance(ref)
        except (DicomViewerError, OSError, ValueError):
            return Instance(ref=ref)  # the loader will say what is wrong with it

    def fetch_series(
        self, study_uid: str, series_uid: str, cancel: threading.Event, every: float = 0.15
    ) -> Iterator[SeriesProgress]:
        """Retrieve a series into the cache, yielding snapshots (at most every ``every`` seconds, and at the
        first and last instance). Never raises an :class:`ArchiveError`: its line is in ``error``.

        The retrieve starts at once: the number of instances comes from the series query (an archive
        answers it from its index), and the instance list — which an archive may answer only by opening
        every file (Orthanc does) — is asked for only to name what did not arrive.
        """
        arrived: list[Instance] = []
        have: set[str] = set()
        self.cache.pin(study_uid, series_uid)
        hint = self._counts.get(series_uid)
        folder = self.cache.series_dir(study_uid, series_uid)
        cached = sorted(folder.glob("*.dcm")) if folder.is_dir() else []
        records: list[InstanceRecord] | None = None
        if getattr(self.client, "needs_instance_list", True) or (cached and not hint):
            try:
                records = self.client.find_instances(study_uid, series_uid)
            except ArchiveError as exc:
                yield SeriesProgress([], 0, 0, True, str(exc))
                return
            hint = len(records)
        for path in cached:
            if self.cache.has(path):
                inst = self._instance(str(path))
                arrived.append(inst)
                have.add(inst.sop_instance_uid)
        if arrived:
            sort_instances(arrived)
            complete = hint is not None and len(have) >= hint
            yield SeriesProgress(list(arrived), len(arrived), max(hint or 0, len(arrived)), done=complete)
            if complete:
                return
        error = ""
        last = 0.0
        try:
            for item in self.client.retrieve(study_uid, series_uid, self.cache, records, cancel):
                if item.sop_instance_uid in have:
                    continue
                have.add(item.sop_instance_uid)
                arrived.append(self._instance(str(item.path)))
                now = time.monotonic()
                if len(arrived) == 1 or now - last >= every:
                    last = now
                    sort_instances(arrived)
                    yield SeriesProgress(list(arrived), len(arrived), max(hint or 0, len(arrived)))
        except Cancelled:
            error = f"retrieve cancelled: {len(arrived)} instances kept"
        except RetrieveIncomplete as exc:
            error = str(exc)
        except ArchiveError as exc:
            error = str(exc)
        failed: list[str] = []
        short = hint is not None and len(have) < hint
        if records is None and (short or (error and not cancel.is_set())):
            try:  # name what did not arrive
                records = self.client.find_instances(study_uid, series_uid)
            except ArchiveError:
                records = None
        if records is not None:
            failed = sorted({r.sop_instance_uid for r in records} - have)
            hint = len(records)
        if failed and not error:
            error = f"retrieve incomplete: the archive sent {len(have)} of the {hint} instances it listed"
        sort_instances(arrived)
        yield SeriesProgress(list(arrived), len(arrived), max(hint or 0, len(arrived)), True, error, failed)

    def close(self) -> None:
        """Close the client's connections."""
        with self._lock:
            if self._client is not None:
                self._client.close()
