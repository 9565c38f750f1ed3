"""The viewer on the hostile corpus, headless: it opens each corpus folder, stays up, lists every
problem, and shows every series either as a picture or as a one-line reason in the pane.

Also: a DICOMDIR record that points outside the file-set root (``..``, an absolute path) is refused
and its target — a readable DICOM file — is never opened, checked with an audit hook on ``open``
while the index runs and while the viewer browses the CD.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from textual.pilot import Pilot

    from tui_dicom.ui.app import DicomViewerApp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_corpus  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------- an audit hook on open

_opened: list[str] = []
_watching = threading.Event()


# the whole module is slow (measured in the quick loop: the viewer on the hostile corpora)
pytestmark = pytest.mark.slow


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _watching.is_set() and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # hooks cannot be removed; this one only records while _watching is set


def _opened_any(targets: tuple[Path, ...]) -> list[str]:
    real = {os.path.realpath(t) for t in targets}
    return [p for p in _opened if os.path.realpath(p) in real]


# ---------------------------------------------------------------------------- helpers

#: what the viewer may spend on one corpus series (reading, inspector rows, decoding), in CPU seconds of
#: this process: the 50,000-item sequence needs several with pydicom, and on a busy machine a wall-clock
#: wait of the same length ran out before the app had had its share of the CPU
SERIES_CPU_S = 30.0
INDEX_CPU_S = 120.0
#: a wall-clock guard only for an app that stopped working altogether (it then uses no CPU at all)
HANG_WALL_S = 600.0


async def wait_cpu(pilot: Any, condition: Callable[[], bool], cpu_s: float) -> bool:
    """Let the app run until ``condition()`` holds, or it has used ``cpu_s`` seconds of CPU (this process,
    all threads) since the call, or :data:`HANG_WALL_S` seconds passed; returns the condition."""
    import asyncio
    import time

    cpu_end = time.process_time() + cpu_s
    wall_end = time.monotonic() + HANG_WALL_S
    while time.process_time() < cpu_end and time.monotonic() < wall_end:
        await pilot.pause()
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


def make_app(*paths: Path) -> DicomViewerApp:
    from tui_dicom.core.graphics.terminal import detect
    from tui_dicom.ui.app import DicomViewerApp

    return DicomViewerApp(
        [str(p) for p in paths], terminal=detect(override="halfblock", colors="truecolor"), cache_mb=64
    )


async def _visit_every_series(app: DicomViewerApp, pilot: Pilot[None]) -> list[str]:
    """Select each series; return the series for which neither a picture nor a reason appeared."""
    from tui_dicom.ui.widgets.study_tree import StudyTree

    main = app.main
    tree = main.query_one(StudyTree)
    message = main.query_one("#pane-message")
    stuck = []
    for series in main.viewer.hierarchy.all_series():
        uids = {inst.sop_instance_uid for inst in series.instances}
        names = {inst.ref.display for inst in series.instances}
        tree.select_series(series)

        def outcome(uids: set[str] = uids, names: set[str] = names) -> bool:
            last = main.last_displayed
            if last is not None and last.sop_instance_uid in uids and not message.display:
                return True
            return bool(message.display) and any(n in str(message.render()) for n in names)

        if not await wait_cpu(pilot, outcome, SERIES_CPU_S):
            stuck.append(series.label())
    return stuck


def _problem_text(app: DicomViewerApp) -> str:
    from tui_dicom.ui.widgets.study_tree import StudyTree

    tree = app.main.query_one(StudyTree)
    branches = [n for n in tree.root.children if str(n.label).startswith("Problems")]
    return "\n".join(str(c.label) for b in branches for c in b.children)


# ---------------------------------------------------------------------------- tests


async def test_viewer_survives_the_corpus_folder(tmp_path: Path) -> None:
    try:
        cases = hostile_corpus.build_files(tmp_path / "files")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    hostile_corpus.good_file(tmp_path / "files", "zz_good.dcm", "good among the bad")
    app = make_app(tmp_path / "files")
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_cpu(pilot, lambda: app.main.index_done, INDEX_CPU_S)
        problems = _problem_text(app)
        unlisted = [
            c.name
            for c in cases
            if c.kind in ("notdicom", "deep") and c.name not in problems and c.name != "random_after_dicm.dcm"
        ]
        assert not unlisted, f"not listed under Problems: {unlisted}"
        assert "deflate_bomb_400mb.dcm" in problems
        for line in problems.splitlines():
            assert "\x1b" not in line and "Traceback" not in line
        stuck = await _visit_every_series(app, pilot)
        assert not stuck, f"series with neither picture nor reason: {stuck}"
        assert app.is_running and app.return_code is None


async def test_viewer_survives_links_fifo_and_loops(tmp_path: Path) -> None:
    from pilot import wait_for_slice

    links = hostile_corpus.build_links_folder(tmp_path / "links")
    app = make_app(links.root)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_cpu(pilot, lambda: app.main.index_done, INDEX_CPU_S), "indexing never finished"
        assert await wait_for_slice(pilot, app, "1/1")
        problems = _problem_text(app)
        for name in ("dangling.dcm", "fifo.dcm"):
            assert name in problems, f"{name} not listed: {problems}"
        assert app.is_running


async def test_hostile_dicomdir_refused_paths_never_opened(tmp_path: Path) -> None:
    from tui_dicom.core.hierarchy.index import build_index

    try:
        cd = hostile_corpus.build_hostile_cd(tmp_path)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    try:
        assert cd.outside.read_bytes()[128:132] == b"DICM" and cd.absolute.read_bytes()[128:132] == b"DICM"
        _opened.clear()
        _watching.set()
        try:
            hierarchy = build_index([str(cd.root)])
        finally:
            _watching.clear()
        assert not _opened_any(cd.refused), f"refused targets were opened: {_opened_any(cd.refused)}"
        listed = {os.path.realpath(i.ref.path) for s in hierarchy.all_series() for i in s.instances}
        assert {os.path.realpath(p) for p in cd.good} <= listed
        assert not listed & {os.path.realpath(p) for p in cd.refused}
        reasons = "\n".join(f"{e.path}: {e.reason}" for e in hierarchy.errors)
        assert "OUTSIDE.DCM" in reasons and "ABS.DCM" in reasons and "MISSING" in reasons, reasons

        # and the viewer browsing the CD
        _opened.clear()
        _watching.set()
        try:
            app = make_app(cd.root)
            async with app.run_test(size=(160, 48)) as pilot:
                assert await wait_cpu(pilot, lambda: app.main.index_done, INDEX_CPU_S)
                stuck = await _visit_every_series(app, pilot)
                assert not stuck
                assert "OUTSIDE.DCM" in _problem_text(app)
        finally:
            _watching.clear()
        assert not _opened_any(cd.refused), f"the viewer opened refused targets: {_opened_any(cd.refused)}"
    finally:
        import shutil

        shutil.rmtree(cd.short_dir, ignore_errors=True)


async def test_viewer_shows_the_complete_frames_of_a_cut_file(tmp_path: Path) -> None:
    """A multi-frame JPEG 2000 file cut inside frame 6 of 10: the first frames are shown as pictures,
    the last one as a one-line reason naming the cut (it said "no pixel data in this file")."""
    from tui_dicom.ui.widgets.image_pane import ImagePane

    try:
        import data_store
    except ImportError:
        pytest.skip("pydicom-data not installed")
    whole = Path(data_store.__file__).parent / "data" / "emri_small_jpeg_2k_lossless.dcm"
    if not whole.exists():
        pytest.skip(f"{whole.name} not available")
    data = whole.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:24000])  # inside the 6th of 10 fragments (one per frame)
    app = make_app(cut)
    async with app.run_test(size=(160, 48)) as pilot:
        main = app.main
        assert await wait_cpu(pilot, lambda: main.index_done, INDEX_CPU_S)
        message = main.query_one("#pane-message")

        def reason_shown(frame: int) -> bool:
            return bool(message.display) and f"frame {frame} of 10 is cut off" in str(message.render())

        # it opens on the middle slice, 6/10: the one the cut runs through
        assert await wait_cpu(pilot, lambda: reason_shown(6), SERIES_CPU_S), str(message.render())
        assert "frames 1–5 are complete" in str(message.render())
        main.query_one(ImagePane).focus()
        await pilot.press("home")
        assert await wait_cpu(
            pilot,
            lambda: (
                main.last_displayed is not None
                and main.last_displayed.slice == "1/10"
                and not message.display
            ),
            SERIES_CPU_S,
        ), str(message.render())
        await pilot.press("end")
        assert await wait_cpu(pilot, lambda: reason_shown(10), SERIES_CPU_S), str(message.render())
        assert app.is_running


async def test_viewer_survives_the_bounds_corpus(tmp_path: Path) -> None:
    """The resource-budget corpus and special files in one folder: indexing ends (the FIFO and the
    device links never block it), each series shows a picture or its one-line reason, and the viewer
    is still running and quits on ``q``."""
    from pilot import wait_for_index

    folder = tmp_path / "bounds"
    try:
        cases = hostile_corpus.build_bounds_files(folder)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    specials = hostile_corpus.build_special_files(folder)
    hostile_corpus.good_file(folder, "zz_good.dcm", "good among the bombs")
    app = make_app(folder)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_for_index(pilot, app, timeout=120), "indexing never finished"
        problems = _problem_text(app)
        for case in specials:
            assert case.name in problems, f"{case.name} not listed: {problems}"
        for name in ("bomb_deflate_1gb.dcm", "values_pn_1m.dcm"):
            assert name in problems, f"{name} not listed: {problems}"
        stuck = await _visit_every_series(app, pilot)
        assert not stuck, f"series with neither picture nor reason: {stuck}"
        assert app.is_running
        await pilot.press("q")
    assert not app.is_running
    assert len(cases) >= 18
