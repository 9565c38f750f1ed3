"""Pilot tests of the viewer over a real Orthanc: the tree from a query, a series shown while it arrives,
Esc cancelling the retrieve, the search box querying again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from conftest import PYDICOM_FILES, SHARED_DATA
from orthanc import OrthancServer
from pilot import wait_until

from tui_dicom.core.archive.address import parse_address
from tui_dicom.core.archive.browse import ArchiveSession
from tui_dicom.core.archive.diskcache import DiskCache
from tui_dicom.core.archive.query import QueryFilters
from tui_dicom.core.graphics.terminal import detect
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.screens.archive import ArchiveScreen
from tui_dicom.ui.widgets.archive_bar import ArchiveBar
from tui_dicom.ui.widgets.study_tree import StudyTree

CT = SHARED_DATA / "ge_ct_head"


@pytest.fixture(scope="module")
def ct_study(orthanc: OrthancServer) -> pydicom.Dataset:
    if not CT.is_dir():
        pytest.skip(f"shared data ge_ct_head missing (expected in {SHARED_DATA})")
    files = sorted(CT.glob("*.dcm"))
    for f in files:
        orthanc.upload(f)
    return pydicom.dcmread(files[0], stop_before_pixels=True)


@pytest.fixture
def slow_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A slow link: each stored instance takes 0.15 s more, so a series takes seconds to arrive."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    original = DiskCache.stored

    def stored(self: DiskCache, path: Path, nbytes: int) -> None:
        time.sleep(0.15)
        original(self, path, nbytes)

    monkeypatch.setattr(DiskCache, "stored", stored)
    yield


def make_app(
    orthanc: OrthancServer, study_uid: str = "", filters: QueryFilters | None = None, limit: int = 200
) -> DicomViewerApp:
    address = parse_address(f"dicom://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}", config={})
    session = ArchiveSession(
        address=address,
        filters=filters or QueryFilters(study_uid=study_uid),
        limit=limit,
        timeout=10,
        open_study=study_uid,
    )
    return DicomViewerApp([], terminal=detect(override="halfblock", colors="truecolor"), archive=session)


@pytest.mark.slow
async def test_remote_study_shows_first_slice_before_the_last_instance_arrived(
    orthanc: OrthancServer, ct_study: pydicom.Dataset, slow_cache: None
) -> None:
    app = make_app(orthanc, ct_study.StudyInstanceUID)
    async with app.run_test(size=(160, 48)) as pilot:
        # polled every ~20 ms: far shorter than the 150 ms each instance takes to arrive
        assert await wait_until(pilot, lambda: app.main.last_displayed is not None, timeout=30), (
            "no slice displayed"
        )
        screen = app.main
        assert isinstance(screen, ArchiveScreen)
        arrived, total, complete = screen._progress[ct_study.SeriesInstanceUID]
        assert total == 28
        assert arrived < total and not complete, "the first picture must come before the series is complete"
        bar = screen.query_one(ArchiveBar).query_one("#archive-progress")
        assert bar.display, "a progress bar is shown while the series arrives"
        # the tree shows the study from the query, and the series under it
        tree = screen.query_one(StudyTree)
        assert tree._node_by_key.get(("S", ct_study.StudyInstanceUID)) is not None
        assert tree._node_by_key.get(("SE", ct_study.SeriesInstanceUID)) is not None
        # then the rest arrives and the counter grows to the whole series
        assert await wait_until(pilot, lambda: screen._progress[ct_study.SeriesInstanceUID][2], timeout=60)
        assert await wait_until(pilot, lambda: screen.counter_text.endswith("/28"), timeout=10)
        assert not bar.display


@pytest.mark.slow
async def test_escape_cancels_the_retrieve_and_keeps_what_arrived(
    orthanc: OrthancServer, ct_study: pydicom.Dataset, slow_cache: None, tmp_path: Path
) -> None:
    app = make_app(orthanc, ct_study.StudyInstanceUID)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_until(pilot, lambda: app.main.last_displayed is not None, timeout=30)
        screen = app.main
        assert isinstance(screen, ArchiveScreen)
        await pilot.press("escape")
        uid = ct_study.SeriesInstanceUID
        assert await wait_until(pilot, lambda: not screen._retrieving, timeout=20), "the retrieve stopped"
        arrived, total, complete = screen._progress[uid]
        assert 0 < arrived < total and not complete
        note = str(screen.query_one("#archive-note").render())
        assert "cancelled" in note
        kept = list((tmp_path / "cache" / "tui-dicom").rglob("*.dcm"))
        assert len(kept) >= arrived
        assert (
            screen.counter_text.endswith(f"/{len(screen.viewer.slices)}")
            and len(screen.viewer.slices) == arrived
        )


@pytest.mark.slow
async def test_search_box_queries_again(
    orthanc: OrthancServer, ct_study: pydicom.Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    app = make_app(orthanc, filters=QueryFilters(patient_id="NO-SUCH-PATIENT"))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        assert await wait_until(pilot, lambda: "0 studies" in str(screen.query_one("#archive-note").render()))
        await pilot.press("ctrl+f")
        await pilot.press(*f"id:{ct_study.PatientID}")
        await pilot.press("enter")
        tree = screen.query_one(StudyTree)
        assert await wait_until(pilot, lambda: ("S", ct_study.StudyInstanceUID) in tree._node_by_key)
        assert isinstance(screen, ArchiveScreen)
        assert screen.search_filters().patient_id == ct_study.PatientID


@pytest.mark.slow
async def test_cut_results_are_said_and_paged(
    orthanc: OrthancServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("CT_small.dcm", "MR_small.dcm"):
        orthanc.upload(PYDICOM_FILES / name)
    app = make_app(orthanc, filters=QueryFilters(patient_name="CompressedSamples*"), limit=1)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        tree = screen.query_one(StudyTree)

        def studies() -> set[str]:
            return {str(k[1]) for k in tree._node_by_key if isinstance(k, tuple) and k[0] == "S"}

        note = screen.query_one("#archive-note")
        assert await wait_until(pilot, lambda: "more match" in str(note.render()))
        first = studies()
        assert len(first) == 1
        await pilot.press("ctrl+n")
        assert await wait_until(pilot, lambda: bool(studies()) and studies() != first)
        assert len(studies()) == 1 and "studies 2–2" in str(note.render())
        await pilot.press("ctrl+b")
        assert await wait_until(pilot, lambda: studies() == first)


async def test_a_failure_is_one_line_in_the_app(
    orthanc: OrthancServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    address = parse_address(f"dicom://WRONGAET@127.0.0.1:{orthanc.dicom_port}", config={})
    session = ArchiveSession(address=address, timeout=10)
    app = DicomViewerApp([], terminal=detect(override="halfblock", colors="truecolor"), archive=session)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.main
        box = screen.query_one("#pane-message")

        def shown() -> str:
            return str(box.render()) if box.display else ""

        assert await wait_until(pilot, lambda: "WRONGAET" in shown(), timeout=60), (
            f"pane: {shown()!r}; status: {screen.query_one('#status').render()!r}"
        )
        assert "called AE title 'WRONGAET' not recognised" in shown() and "\n" not in shown().strip()


@pytest.mark.slow
async def test_series_option_opens_on_that_series(
    orthanc: OrthancServer, ct_study: pydicom.Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    app = make_app(orthanc, filters=QueryFilters(series_uid=ct_study.SeriesInstanceUID))
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_until(pilot, lambda: app.main.last_displayed is not None, timeout=30)
        assert app.main.viewer.series is not None
        assert app.main.viewer.series.series_instance_uid == ct_study.SeriesInstanceUID
