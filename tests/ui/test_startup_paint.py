"""Start-up paint order: the first picture goes out before the study tree and the tag rows are painted.

The tree and the tag panel fill as usual while the first slice decodes (nodes, cursor, focus, widths)
but are painted blank until the picture is displayed, or :data:`~tui_dicom.ui.screens.main.PANELS_LATEST`
after mount when the decode takes longer; they keep their place, so the picture does not move when
they are painted.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pilot import wait_for_index, wait_for_slice, wait_until
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget

from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.graphics.terminal import detect
from tui_dicom.core.hierarchy import index
from tui_dicom.core.imaging.pixels import Frame, decode_frame
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.screens import main as main_screen
from tui_dicom.ui.widgets.image_pane import ImagePane
from tui_dicom.ui.widgets.inspector import TagTree
from tui_dicom.ui.widgets.study_tree import StudyTree

CT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ge_ct_head"

pytestmark = pytest.mark.skipif(not CT.is_dir(), reason=f"real data not found: {CT}")


def _held_decoder(release: threading.Event, started: threading.Event) -> Any:
    """A decoder that waits for ``release`` before decoding (the first picture is held back)."""

    def decoder(ref: FileRef, frame: int, ds: Any) -> Frame:
        started.set()
        release.wait(20)
        return decode_frame(ref, frame, ds)

    return decoder


def _painted(widget: Widget) -> str:
    """The text ``widget`` paints now (its lines as the compositor asks for them), stripped."""
    lines = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return "\n".join(line.text for line in lines).strip()


def _app(decoder: Any) -> DicomViewerApp:
    terminal = detect(override="halfblock", colors="truecolor")
    return DicomViewerApp([str(CT)], terminal=terminal, decoder=decoder)


@contextlib.asynccontextmanager
async def _held_start(
    monkeypatch: pytest.MonkeyPatch, panels_latest: float
) -> AsyncIterator[tuple[DicomViewerApp, Pilot[None], threading.Event, threading.Event]]:
    """The viewer on the CT folder with its first decode held until ``release`` is set (``started`` is
    set when it began), the panels painted at the latest ``panels_latest`` s after mount; the decode is
    released whatever happens."""
    monkeypatch.setattr(main_screen, "PANELS_LATEST", panels_latest)
    release, started = threading.Event(), threading.Event()
    app = _app(_held_decoder(release, started))
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            yield app, pilot, release, started
    finally:
        release.set()


async def test_panels_are_painted_after_the_first_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _held_start(monkeypatch, 30.0) as (app, pilot, release, started):
        assert await wait_for_index(pilot, app)
        assert await wait_until(pilot, started.is_set, 10)
        await pilot.pause()
        tree, tags = app.main.query_one(StudyTree), app.main.query_one(TagTree)
        # no picture yet: the tree holds the CD's nodes, laid out, but neither tree is painted
        assert app.main.last_displayed is None
        assert len(tree.root.children) == 1
        assert tree.paint_held and tags.paint_held
        assert _painted(tree) == "" and _painted(tags) == ""
        # ... and they keep their place: the image pane lies between the two
        width, image = tree.size.width, app.main.query_one(ImagePane).region
        assert width >= 20 and tags.size.width >= 20
        assert tree.region.right <= image.x and tags.region.x >= image.right
        release.set()
        assert await wait_for_slice(pilot, app)
        assert await wait_until(pilot, lambda: not (tree.paint_held or tags.paint_held), 5)
        assert "CT" in _painted(tree)
        assert await wait_until(pilot, lambda: "PatientName" in _painted(tags), 5)
        shown = app.main.last_displayed
        assert shown is not None
        await pilot.pause()
        # the picture did not move when the panels appeared
        assert app.main.query_one(ImagePane).region == image
        assert tree.size.width == width
        # the series chosen while the tree was hidden is highlighted and in view once it is painted
        assert await wait_until(pilot, lambda: tree.cursor_line >= 0, 5)
        assert tree.scroll_offset.y == 0 and tree.cursor_line < tree.size.height  # (the tree fits)
        assert app.main.last_displayed is not None
        assert app.main.last_displayed.region_cells == shown.region_cells


async def test_panels_are_painted_after_a_while_without_a_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _held_start(monkeypatch, 0.3) as (app, pilot, release, started):
        assert await wait_until(pilot, started.is_set, 10)
        start = time.monotonic()
        tree, tags = app.main.query_one(StudyTree), app.main.query_one(TagTree)
        # a slow first decode (a slow CD drive, a large compressed file) does not keep them blank
        assert await wait_until(pilot, lambda: not (tree.paint_held or tags.paint_held), 10)
        assert "CT" in _painted(tree)
        assert app.main.last_displayed is None
        assert time.monotonic() - start < 10


class _PacedIndexer(index.Indexer):
    """The real indexer of the CT folder, whose walk reports three more steps after the folder's scan;
    records how far the viewer pulled it (the walk goes no further than it is let)."""

    pulled: ClassVar[list[int]] = []

    def _index_path(self, path: str) -> Generator[index.IndexProgress, None, None]:
        for _progress in super()._index_path(path):  # the whole folder first, unreported
            pass
        for step in range(3):
            _PacedIndexer.pulled.append(step)
            yield index.IndexProgress(files_done=step + 1, files_total=3, phase="scan")
        _PacedIndexer.pulled.append(3)


async def test_index_walk_waits_for_the_first_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "Indexer", _PacedIndexer)
    _PacedIndexer.pulled.clear()
    async with _held_start(monkeypatch, 30.0) as (app, pilot, release, started):
        assert await wait_until(pilot, started.is_set, 10)
        time.sleep(0.3)  # the index thread would have gone on by now
        await pilot.pause()
        # the first snapshot (with the series being decoded) was reported; the walk waits
        assert _PacedIndexer.pulled == [0]
        assert not app.main.index_done
        release.set()
        assert await wait_for_slice(pilot, app)
        assert await wait_for_index(pilot, app)
        assert _PacedIndexer.pulled == [0, 1, 2, 3]


async def test_main_screen_is_the_first_screen() -> None:
    """No blank default screen under the main one (its mount and the switch cost the start)."""
    app = _app(None)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert [type(screen).__name__ for screen in app.screen_stack] == ["MainScreen"]
        assert app.main is app.screen


def test_dicomdir_walk_holds_after_the_first_series() -> None:
    """``hold``: the progressive DICOMDIR walk (its helper thread too) stops after the first series until
    the event is set."""
    from pydicom.data import get_testdata_file

    dicomdir = get_testdata_file("DICOMDIR", download=False)
    assert dicomdir is not None
    hold = threading.Event()
    indexer = index.Indexer(
        [str(Path(dicomdir).parent)], cancel=threading.Event(), progressive=True, hold=hold
    )
    steps = indexer.run()
    first = next(steps)
    assert first.phase != "done"
    found = len(indexer.snapshot().all_series())
    time.sleep(0.3)
    assert len(indexer.snapshot().all_series()) == found, "the walk went on while held"
    hold.set()
    for _progress in steps:
        pass
    assert len(indexer.snapshot().all_series()) > found


def test_folder_scan_holds_once_a_series_can_be_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hold``: a folder's index, once it has reported a showable instance, goes no further until the
    event is set. (Progress every 10 files: the CT folder is smaller than a report's 200.)"""
    monkeypatch.setattr(index, "PROGRESS_FILES", 10)
    hold = threading.Event()
    indexer = index.Indexer([str(CT)], cancel=threading.Event(), progressive=True, hold=hold)
    steps = indexer.run()
    first = next(steps)
    assert first.phase != "done" and indexer.snapshot().patients
    rest: list[index.IndexProgress] = []
    walker = threading.Thread(target=lambda: rest.extend(steps), daemon=True)
    walker.start()
    walker.join(0.3)
    assert walker.is_alive() and not rest, "the walk went on while held"
    hold.set()
    walker.join(5)
    assert not walker.is_alive() and rest[-1].phase == "done"
