"""The viewer session without Textual: the slice cursor, the window, the view, the probe, measurements and
cine driven on real series (a GE head CT, pydicom's test files), with the loader doing the decoding as in
the app. Expected values come from pydicom's reading of the same files, not from our code."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import SHARED_DATA
from pydicom.data import get_testdata_file
from pydicom.pixels.processing import apply_modality_lut

from tui_dicom.core.hierarchy.index import build_index
from tui_dicom.core.hierarchy.model import Hierarchy, Series
from tui_dicom.core.imaging.windowing import FileWindow, Window, window_presets
from tui_dicom.core.session.slice_loader import SliceLoader
from tui_dicom.core.session.viewer import PREFETCH, Change, ViewerSession
from tui_dicom.core.session.viewstate import ZOOM_STEP

CT = SHARED_DATA / "ge_ct_head"
CT_SMALL = Path(str(get_testdata_file("CT_small.dcm", download=False)))
MR_SMALL = Path(str(get_testdata_file("MR_small.dcm", download=False)))
needs_ct = pytest.mark.skipif(not CT.is_dir(), reason=f"real data not found: {CT}")


@pytest.fixture(scope="module")
def ct_hierarchy() -> Hierarchy:
    if not CT.is_dir():
        pytest.skip(f"real data not found: {CT}")
    return build_index([str(CT)])


def session_on(hierarchy: Hierarchy, series: Series | None = None) -> ViewerSession:
    s = ViewerSession()
    s.hierarchy = hierarchy
    s.open_series(series or hierarchy.all_series()[0])
    return s


def show(session: ViewerSession, loader: SliceLoader) -> None:
    """What the screen does with a request: the loader answers it and the session accepts the answer."""
    req = session.request()
    assert req is not None
    result = loader.load(req)
    assert result is not None and result.picture is not None and result.frame is not None, result
    assert session.accept(result.seq, result.slice, result.picture, result.frame, result.window, result.info)


def ds_of(session: ViewerSession) -> pydicom.Dataset:
    assert session.current is not None
    return pydicom.dcmread(session.current.instance.ref.path)


# ------------------------------------------------------------------------------ cursor


@needs_ct
def test_cursor_opens_in_the_middle_and_steps_clamped(ct_hierarchy: Hierarchy) -> None:
    series = ct_hierarchy.all_series()[0]
    s = ViewerSession()
    s.hierarchy = ct_hierarchy
    assert s.open_series(series) == Change.SLICE
    assert len(s.slices) == 28 and s.counter_text == "15/28"
    # display order is along the patient axis, as pydicom reads Image Position (Patient)
    z = [
        float(pydicom.dcmread(sl.instance.ref.path, stop_before_pixels=True).ImagePositionPatient[2])
        for sl in s.slices
    ]
    assert z == sorted(z) or z == sorted(z, reverse=True)
    assert s.move(delta=1) == Change.SLICE and s.counter_text == "16/28" and s.direction == 1
    assert s.move(absolute=-1) == Change.SLICE and s.counter_text == "28/28"
    assert s.move(delta=1) == Change.NONE and s.slice_index == 27  # clamped at the end
    assert s.move(absolute=0) == Change.SLICE and s.counter_text == "1/28"
    assert s.move(delta=-1) == Change.NONE
    assert s.page_step(1) == Change.SLICE and s.counter_text == "11/28"
    assert s.page_step(-1) == Change.SLICE and s.counter_text == "1/28" and s.direction == -1


@needs_ct
def test_a_series_growing_while_indexed_recentres_until_the_user_moves(ct_hierarchy: Hierarchy) -> None:
    """The first index update may hold a few slices of a folder: the session opens on their middle; as the
    series grows it follows the new middle (the viewer opens on the middle slice of the whole series),
    but once the user has moved, a growing series keeps the slice they chose."""
    full = ct_hierarchy.all_series()[0]
    first_batch = dataclasses.replace(full, instances=full.instances[:5])
    s = ViewerSession()
    s.hierarchy = Hierarchy()  # the hierarchy as indexed so far does not hold more of the series
    s.open_series(first_batch)
    assert s.counter_text == "3/5"
    assert s.open_series(full, keep_slice=True) == Change.SLICE and s.counter_text == "15/28"
    assert s.open_series(full, keep_slice=True) == Change.ANNOTATIONS and s.counter_text == "15/28"
    s.open_series(first_batch)
    assert s.move(delta=1) == Change.SLICE and s.counter_text == "4/5"
    kept = s.current
    assert s.open_series(full, keep_slice=True) == Change.ANNOTATIONS
    assert s.current is not None and kept is not None and s.current.key == kept.key


@needs_ct
def test_requests_prefetch_in_the_direction_of_travel(ct_hierarchy: Hierarchy) -> None:
    s = session_on(ct_hierarchy)
    first = s.request()
    assert first is not None and first.seq == 1 and first.slice == s.slices[14]
    # ahead first, then the two just behind (both neighbours of the slice a series opens on)
    assert first.prefetch == (*s.slices[15 : 15 + PREFETCH], s.slices[13], s.slices[12])
    s.move(delta=-1)
    back = s.request()
    assert back is not None and back.seq == 2 and back.slice == s.slices[13]
    assert back.prefetch == (*(s.slices[12 - i] for i in range(PREFETCH)), s.slices[14], s.slices[15])
    s.move(absolute=-1)
    s.move(delta=1)  # at the end: nothing ahead, the two behind
    end = s.request()
    assert end is not None and end.prefetch == (s.slices[-2], s.slices[-3])
    alone = s.request(behind=0)
    assert alone is not None and alone.prefetch == ()
    assert s.waiting


@needs_ct
def test_stale_and_foreign_answers_are_dropped(ct_hierarchy: Hierarchy) -> None:
    s = session_on(ct_hierarchy)
    loader = SliceLoader(64 * 1024**2)
    old = s.request()
    s.move(delta=1)
    new = s.request()
    assert old is not None and new is not None
    new_result, old_result = loader.load(new), loader.load(old)
    assert new_result is not None and old_result is not None
    assert new_result.picture is not None and new_result.frame is not None
    assert s.accept(
        new_result.seq,
        new_result.slice,
        new_result.picture,
        new_result.frame,
        new_result.window,
        new_result.info,
    )
    assert old_result.picture is not None and old_result.frame is not None
    # an answer older than the one on screen never replaces it
    assert not s.accept(
        old_result.seq,
        old_result.slice,
        old_result.picture,
        old_result.frame,
        old_result.window,
        old_result.info,
    )
    assert s.shown is not None and s.shown.slice == s.slices[15] and not s.waiting
    # a failure of an old request, or of another slice, is not shown either
    assert not s.reject(old.seq, old.slice)
    s.move(delta=1)
    req = s.request()
    assert req is not None and s.reject(req.seq, req.slice)
    assert s.info.spacing is None  # the failed slice has no header values


def test_series_step_wraps_and_a_new_series_starts_fresh() -> None:
    hierarchy = build_index([str(CT_SMALL), str(MR_SMALL)])
    series = hierarchy.all_series()
    assert len(series) == 2
    s = session_on(hierarchy, series[0])
    loader = SliceLoader(64 * 1024**2)
    show(s, loader)
    s.zoom(1)
    s.toggle_probe()
    nxt = s.step_series(1)
    assert nxt is series[1] and s.step_series(-1) is series[1]  # two series: both ways lead to the other
    change = s.open_series(series[1])
    assert change == Change.SLICE
    assert s.shown is None and s.pane.view.zoom == 1.0 and s.pane.crosshair is None
    assert s.context[0] is not None and s.context[0].patient_name == str(
        pydicom.dcmread(MR_SMALL).PatientName
    )
    # the same series again (it grew): same slice, only the annotations change
    assert s.open_series(series[1], keep_slice=True) == Change.ANNOTATIONS


# ------------------------------------------------------------------------------ window


@needs_ct
def test_window_starts_from_the_file_and_steps(ct_hierarchy: Hierarchy) -> None:
    s = session_on(ct_hierarchy)
    loader = SliceLoader(64 * 1024**2)
    show(s, loader)
    ds = ds_of(s)
    assert s.shown_window is not None
    assert (s.shown_window.center, s.shown_window.width) == (float(ds.WindowCenter), float(ds.WindowWidth))
    assert s.adjust_window(1, 0) == Change.ANNOTATIONS | Change.SLICE
    assert s.shown_window.width > float(ds.WindowWidth) and s.shown_window.center == float(ds.WindowCenter)
    assert s.pane.window == s.shown_window
    show(s, loader)  # the loader renders with the window asked for
    assert s.shown is not None and s.shown.window == s.pane.window
    # presets: the CT presets, as the number keys list them
    presets = s.window_presets()
    assert s.shown is not None and presets == window_presets(s.shown.frame) and len(presets) == 9
    assert s.preset(2) == Change.SLICE and s.pane.window == presets[1]
    assert s.preset(10) == Change.NONE and s.pane.window == presets[1]
    # the file's windows: the first after a preset, then cycling
    change, window = s.next_file_window()
    assert change == Change.SLICE and window == FileWindow(0)
    # auto: over the percentiles of the HU values pydicom computes
    assert s.auto_window() == Change.SLICE
    assert isinstance(s.pane.window, Window) and s.pane.window.name == "auto"
    hu = apply_modality_lut(ds.pixel_array, ds).astype(float)
    lo, hi = np.percentile(hu, [0.5, 99.5])
    assert s.pane.window.center == pytest.approx((lo + hi) / 2, abs=1.0)
    assert s.minmax_window() == Change.SLICE
    assert isinstance(s.pane.window, Window) and s.pane.window.width == pytest.approx(
        hu.max() - hu.min(), abs=1.0
    )
    assert s.modality_range() == pytest.approx((hu.min(), hu.max()))


@needs_ct
def test_drag_window_is_relative_to_where_the_drag_started(ct_hierarchy: Hierarchy) -> None:
    s = session_on(ct_hierarchy)
    show(s, SliceLoader(64 * 1024**2))
    start = s.shown_window
    assert start is not None
    s.start_drag()
    assert s.drag_window_by(2, 0) == Change.ANNOTATIONS | Change.SLICE
    two = s.shown_window
    assert two is not None and two.width > start.width and two.center == start.center
    s.drag_window_by(1, 0)  # the drag went back one cell: half the change, not added to it
    assert s.shown_window is not None and start.width < s.shown_window.width < two.width
    assert s.reset_view() == Change.SLICE | Change.VIEW
    assert s.shown_window is None and s.pane.window is None and not s.pane.invert


def test_invert_and_overlays_ask_for_a_new_picture() -> None:
    hierarchy = build_index([str(CT_SMALL)])
    s = session_on(hierarchy)
    loader = SliceLoader(64 * 1024**2)
    show(s, loader)
    assert s.shown is not None
    plain = s.shown.picture
    assert s.toggle_invert() == Change.SLICE and s.pane.invert
    show(s, loader)
    assert s.shown is not None and np.array_equal(s.shown.picture, 255 - plain)
    assert s.toggle_overlays() == Change.SLICE and not s.overlays
    req = s.request()
    assert req is not None and not req.overlays and req.invert


# ------------------------------------------------------------------------------ view


def test_zoom_fit_pan_and_orientation() -> None:
    s = session_on(build_index([str(CT_SMALL)]))
    assert s.pan(1, 0) == Change.NONE  # nothing shown yet
    show(s, SliceLoader(64 * 1024**2))
    assert s.zoom(1) == Change.VIEW and s.pane.view.zoom == pytest.approx(ZOOM_STEP)
    assert s.pane.zoom_text == f"Zoom {ZOOM_STEP:.2f}×"
    for _ in range(50):
        s.zoom(1)
    assert s.pane.view.zoom == 32.0  # bounded
    assert s.fit() == Change.VIEW and s.pane.zoom_text == "Zoom fit"
    for _ in range(100):  # panning stops at the image's edge
        s.pan(0, 1)
    assert s.pane.view.center == (64.0, 128.0)
    assert s.one_to_one() == Change.VIEW and s.pane.zoom_text == "Zoom 1:1"
    # orientation letters from Image Orientation (Patient): axial, so A at the top, then rotated
    assert s.refresh_orientation() == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    assert s.rotate() == Change.VIEW
    assert s.refresh_orientation()["right"] == "A"
    assert s.flip(True) == Change.VIEW
    assert s.refresh_orientation()["left"] == "A"


# ------------------------------------------------------------------------------ probe and measurements


@needs_ct
def test_probe_reads_hu_and_patient_position(ct_hierarchy: Hierarchy) -> None:
    s = session_on(ct_hierarchy)
    assert s.probe_text() is None
    show(s, SliceLoader(64 * 1024**2))
    assert s.toggle_probe() == Change.DRAWING and s.pane.crosshair == (256, 256)
    assert s.arrow("right", lambda: (3.0, 3.0)) == Change.DRAWING and s.pane.crosshair == (256, 259)
    assert s.pan(1, 0) == Change.DRAWING and s.pane.crosshair == (257, 259)  # one pixel with the probe on
    ds = ds_of(s)
    hu = apply_modality_lut(ds.pixel_array, ds)
    text = s.probe_text()
    assert text is not None and f"stored {ds.pixel_array[257, 259]}" in text
    assert f"value {float(hu[257, 259]):.6g} HU" in text
    # PS3.3 C.7.6.2.1.1: position + column direction * row spacing * row + row direction * col spacing * col
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    iop = [float(v) for v in ds.ImageOrientationPatient]
    sr, sc = (float(v) for v in ds.PixelSpacing)
    where = ipp + np.array(iop[:3]) * sc * 259 + np.array(iop[3:]) * sr * 257
    assert "(" + ", ".join(f"{v:.1f}" for v in where) + ") mm" in text.replace("-0.0", "0.0")
    # the arrows step slices when the probe is off
    s.toggle_probe()
    assert s.arrow("down") == Change.SLICE and s.counter_text == "16/28"
    assert s.arrow("left") == Change.NONE


@needs_ct
def test_length_by_keys_in_mm(ct_hierarchy: Hierarchy) -> None:
    s = session_on(ct_hierarchy)
    show(s, SliceLoader(64 * 1024**2))
    armed = s.measure_key("line")
    assert armed.armed and s.pane.tool == "line" and s.pane.crosshair == (256, 256)
    first = s.measure_key("line")  # the first end at the crosshair
    assert first.completed is None and s.pane.pending == ("line", (256, 256))
    assert s.measure_key("line").unmoved  # the second end on the first: nothing measured
    for _ in range(30):
        s.arrow("right")
    for _ in range(40):
        s.arrow("down")
    done = s.measure_key("line")
    ds = ds_of(s)
    sr, sc = (float(v) for v in ds.PixelSpacing)
    assert done.completed is not None and done.warning == ""
    assert done.completed.text == f"{math.hypot(40 * sr, 30 * sc):.1f} mm"
    assert s.measurement_lines() == [f"1. line: {done.completed.text}"]
    assert len(s.shapes()) == 2  # the line and the crosshair
    # kept with its slice
    s.move(delta=1)
    show(s, SliceLoader(64 * 1024**2))
    assert s.measurements_here() == []
    assert s.delete_measurement() == Change.NONE
    s.move(delta=-1)
    show(s, SliceLoader(64 * 1024**2))
    assert [m.text for m in s.measurements_here()] == [done.completed.text]
    assert s.delete_measurement() == Change.DRAWING and s.measurements_here() == []


def test_rectangle_by_mouse_and_uncalibrated_length(tmp_path: Path) -> None:
    ds = pydicom.dcmread(CT_SMALL)
    del ds.PixelSpacing  # an edge case, made here: no spacing at all
    bare = tmp_path / "bare.dcm"
    ds.save_as(bare)
    s = session_on(build_index([str(CT_SMALL)]))
    show(s, SliceLoader(64 * 1024**2))
    # press-drag-release with the rectangle tool
    s.measure_key("rect")
    s.start_drag()
    assert s.click(s.pixel((10.7, 20.2))).completed is None and s.pane.pending == ("rect", (10, 20))
    assert s.drag_measure(s.pixel((13.0, 24.0))) == Change.DRAWING and s.pane.preview == (13, 24)
    done = s.release(s.pixel((13.0, 24.0)))
    assert done.completed is not None and done.completed.kind == "rect"
    hu = apply_modality_lut(pydicom.dcmread(CT_SMALL).pixel_array, pydicom.dcmread(CT_SMALL)).astype(float)
    assert f"mean {hu[10:14, 20:25].mean():.1f} HU" in done.completed.text
    # clicks outside the image are clamped to its edge
    assert s.pixel((-5.0, 1e6)) == (0, 127)
    assert s.clear_measurements() == Change.DRAWING and not s.pane.measurements
    # no PixelSpacing: the length is in pixels, with the reason
    s2 = session_on(build_index([str(bare)]))
    show(s2, SliceLoader(64 * 1024**2))
    s2.measure_key("line")
    s2.click((0, 0))
    out = s2.click((3, 4))
    assert out.completed is not None and out.completed.text == "5.0 px (uncalibrated)"
    assert out.warning == "no PixelSpacing in this image: measured in px"
    s2.measure_key("ellipse")
    assert s2.cancel_measurement() == Change.DRAWING and s2.cancel_measurement() == Change.NONE


# ------------------------------------------------------------------------------ cine


@needs_ct
def test_cine_plays_loops_and_changes_rate(ct_hierarchy: Hierarchy) -> None:
    s = session_on(ct_hierarchy)
    show(s, SliceLoader(64 * 1024**2))
    assert s.cine_next() is None
    assert s.toggle_cine() == Change.CINE | Change.ANNOTATIONS
    # no Cine Rate or Frame Time in these headers: 10 frames per second
    assert s.pane.cine and s.pane.cine_fps == 10.0 and s.cine_interval == pytest.approx(0.1)
    assert s.cine_text == "▶ 10 fps"
    s.move(absolute=-1)
    assert s.cine_next() == 0
    assert s.cine_tick() == Change.SLICE and s.counter_text == "1/28" and s.direction == 1
    s.cine_rate(1)
    assert s.pane.cine_fps == pytest.approx(12.5)
    for _ in range(40):
        s.cine_rate(1)
    assert s.pane.cine_fps == 60.0
    for _ in range(60):
        s.cine_rate(-1)
    assert s.pane.cine_fps == 0.5 and s.cine_interval == 2.0
    # another series stops it
    change = s.open_series(Series("other", instances=list(s.series.instances if s.series else [])))
    assert Change.CINE in change and not s.pane.cine
    assert s.stop_cine() == Change.NONE


def test_a_single_image_has_no_cine() -> None:
    s = session_on(build_index([str(CT_SMALL)]))
    show(s, SliceLoader(64 * 1024**2))
    assert s.toggle_cine() == Change.ANNOTATIONS and not s.pane.cine
    assert s.cine_tick() == Change.NONE


def test_the_session_needs_no_ui_toolkit() -> None:
    code = (
        "import sys, tui_dicom.core.session.viewer; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'textual_image')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


_NO_PYDICOM_SLICE = r"""
import json, sys
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.hierarchy.header import read_header
from tui_dicom.core.hierarchy.model import SliceRef
from tui_dicom.core.session.slice_loader import SliceLoader, SliceRequest

ref = FileRef(sys.argv[1])
instance = read_header(ref).to_instance(ref)
result = SliceLoader(64 * 1024**2).load(SliceRequest(1, SliceRef(instance, 0)))
print(json.dumps({
    "pydicom": "pydicom" in sys.modules, "error": result.error, "rows": len(result.rows),
    "modality": result.info.modality, "shape": list(result.picture.shape),
}))
"""


def test_a_new_uncompressed_slice_needs_no_pydicom() -> None:
    """Frame, annotations and inspector rows of an uncompressed slice come from one read without pydicom."""
    proc = subprocess.run(
        [sys.executable, "-c", _NO_PYDICOM_SLICE, str(CT_SMALL)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["pydicom"] is False
    assert got["error"] == "" and got["modality"] == "CT" and got["shape"] == [128, 128]
    assert got["rows"] > 50


def test_loader_reads_a_new_slice_once_and_matches_the_pydicom_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No pydicom header read for an uncompressed slice; the rows and annotations equal pydicom's."""
    from tui_dicom.core.dicom.source import FileRef
    from tui_dicom.core.hierarchy.header import read_header
    from tui_dicom.core.hierarchy.model import SliceRef
    from tui_dicom.core.session.slice_loader import SliceRequest

    ref = FileRef(str(CT_SMALL))
    sl = SliceRef(read_header(ref).to_instance(ref), 0)
    fast = SliceLoader(64 * 1024**2)

    def no_header(_ref: FileRef) -> pydicom.Dataset:
        raise AssertionError("the pydicom header was read")

    monkeypatch.setattr(fast, "header", no_header)
    got = fast.load(SliceRequest(1, sl))
    monkeypatch.undo()
    # the pydicom path: a decoder given (as tests do) takes the old route, header first
    from tui_dicom.core.imaging.pixels import decode_frame

    slow = SliceLoader(64 * 1024**2, decoder=lambda r, f, ds: decode_frame(r, f, ds, native=False))
    want = slow.load(SliceRequest(1, sl))
    assert got is not None and want is not None and not got.error and not want.error
    assert got.rows == want.rows
    assert got.info == want.info
    assert got.picture is not None and want.picture is not None
    assert np.array_equal(got.picture, want.picture)
    assert got.window == want.window


def test_a_new_compressed_slice_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slice the pydicom-free reader refuses (RLE) is parsed by pydicom once for pixels, rows and header."""
    from tui_dicom.core.dicom import reading
    from tui_dicom.core.dicom.source import FileRef
    from tui_dicom.core.hierarchy.header import read_header
    from tui_dicom.core.hierarchy.model import SliceRef
    from tui_dicom.core.inspector.tags import tag_rows
    from tui_dicom.core.session.slice_loader import SliceRequest

    path = str(get_testdata_file("MR_small_RLE.dcm", download=False))
    ref = FileRef(path)
    sl = SliceRef(read_header(ref).to_instance(ref), 0)
    calls: list[bool] = []
    real = reading.read_dataset

    def counting(r: FileRef, *, stop_before_pixels: bool = False) -> pydicom.Dataset:
        calls.append(stop_before_pixels)
        return real(r, stop_before_pixels=stop_before_pixels)

    monkeypatch.setattr(reading, "read_dataset", counting)
    loader = SliceLoader(64 * 1024**2)
    result = loader.load(SliceRequest(1, sl))
    monkeypatch.undo()
    assert result is not None and not result.error and result.picture is not None
    assert calls == [False]  # one whole-file parse, no header-only parse before or after it
    assert result.rows == tag_rows(real(ref, stop_before_pixels=True))
    assert result.info.modality == "MR" and result.info.spacing is not None


@needs_ct
def test_a_series_chosen_from_an_older_snapshot_opens_as_indexed_now(ct_hierarchy: Hierarchy) -> None:
    """The tree's SeriesChosen/SliceChosen carry the series as it was when the tree was filled; while a
    folder is indexed the series can grow before the message is handled. The session shows the
    hierarchy's newest version (all its slices), on the slice the user chose; a chosen copy that is not
    shorter is shown as given."""
    full = ct_hierarchy.all_series()[0]
    snapshot = dataclasses.replace(full, instances=full.instances[10:20])
    s = ViewerSession()
    s.hierarchy = ct_hierarchy
    s.open_series(snapshot)
    assert len(s.slices) == 28 and s.series is full and s.counter_text == "15/28"
    chosen = snapshot.slices()[3]
    s.open_series(snapshot, index=3)
    assert s.current is not None and s.current.key == chosen.key and len(s.slices) == 28
    s.hierarchy = Hierarchy()
    s.open_series(snapshot)
    assert s.series is snapshot and len(s.slices) == 10
