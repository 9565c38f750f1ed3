"""Pilot tests of radiology interaction: probe HU, length, ROI, zoom 1:1, rotate/flip labels, cine, series
navigation, and the inspector's search/copy/varying toggle. Expected values come from pydicom, not from us."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pilot import wait_for_index, wait_for_slice, wait_until
from pydicom.pixels.processing import apply_modality_lut
from textual.pilot import Pilot

from tui_dicom.core.graphics.terminal import detect
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.widgets.annotations import AnnotationBar
from tui_dicom.ui.widgets.inspector import TagInspector
from tui_dicom.ui.widgets.picture import PictureView
from tui_dicom.ui.widgets.study_tree import StudyTree

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CT = SHARED / "ge_ct_head"
TAICHI = SHARED / "taichi_mri_cd"
pytestmark = pytest.mark.skipif(
    not CT.is_dir() or not TAICHI.is_dir(), reason=f"real data not found: {SHARED}"
)


def make_app(*paths: Path) -> DicomViewerApp:
    return DicomViewerApp([str(p) for p in paths], terminal=detect(override="halfblock"))


async def ready(pilot: Pilot[None], app: DicomViewerApp, counter: str | None = None) -> None:
    assert await wait_for_index(pilot, app)
    assert await wait_for_slice(pilot, app, counter)


def probe_text(app: DicomViewerApp) -> str:
    return str(app.main.query_one("#probe-line").render())


@pytest.mark.slow
async def test_probe_shows_hu_of_known_pixel_as_pydicom_computes() -> None:
    app = make_app(CT)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app, "15/28")
        ds = pydicom.dcmread(CT / "15.dcm")
        hu = apply_modality_lut(ds.pixel_array, ds)
        await pilot.press("c")
        assert await wait_until(pilot, lambda: "value" in probe_text(app))
        # crosshair starts at the centre; move it 10 image pixels right and 5 down (shift+arrows)
        for _ in range(10):
            await pilot.press("shift+right")
        for _ in range(5):
            await pilot.press("shift+down")
        row, col = 256 + 5, 256 + 10
        text = probe_text(app)
        assert f"r{row} c{col}" in text
        assert f"stored {ds.pixel_array[row, col]}" in text
        assert f"value {float(hu[row, col]):.6g} HU" in text
        # patient coordinates from ImagePositionPatient/Orientation/PixelSpacing (PS3.3 C.7.6.2.1.1)
        ipp = np.array(ds.ImagePositionPatient, dtype=float)
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        sr, sc = (float(v) for v in ds.PixelSpacing)
        xyz = ipp + iop[:3] * sc * col + iop[3:] * sr * row
        assert "({:.1f}, {:.1f}, {:.1f}) mm".format(*xyz) in text
        # arrows move the crosshair, not the slice, while the probe is on: one screen cell per press
        assert app.main.counter_text == "15/28"
        lay = app.main.query_one(PictureView).layout_now
        assert lay is not None
        per_cell = (lay.crop[3] - lay.crop[1]) / lay.cells[2]
        assert per_cell > 2  # a 512² image in fewer than 256 columns
        await pilot.press("right")
        assert app.main.viewer.pane.crosshair == (row, col + round(per_cell))
        await pilot.press("c")
        assert await wait_until(pilot, lambda: not app.main.query_one("#probe-line").display)


@pytest.mark.slow
async def test_length_between_known_pixels_equals_pixel_spacing_distance() -> None:
    app = make_app(CT)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app, "15/28")
        await pilot.press("m", "m")  # the tool, then the first end at the crosshair (256, 256)
        for _ in range(30):
            await pilot.press("shift+right")
        for _ in range(40):
            await pilot.press("shift+down")
        await pilot.press("m")
        ds = pydicom.dcmread(CT / "15.dcm", stop_before_pixels=True)
        sr, sc = (float(v) for v in ds.PixelSpacing)
        expected = math.hypot(40 * sr, 30 * sc)
        assert app.main.viewer.shown is not None
        key = app.main.viewer.shown.slice.key
        items = app.main.viewer.pane.measurements[key]
        assert len(items) == 1 and items[0].text == f"{expected:.1f} mm"
        listing = str(app.main.query_one("#measure-list").render())
        assert f"{expected:.1f} mm" in listing
        # kept with their slice: gone on the next slice, back on return; the rows stay reserved meanwhile
        # (the picture keeps its size while stepping through a measured series)
        await pilot.press("j")
        assert await wait_for_slice(pilot, app, "16/28")
        assert "mm" not in str(app.main.query_one("#measure-list").render())
        assert app.main.query_one("#measure-list").display
        await pilot.press("k")
        assert await wait_for_slice(pilot, app, "15/28")
        assert f"{expected:.1f} mm" in str(app.main.query_one("#measure-list").render())
        await pilot.press("x")
        assert key not in app.main.viewer.pane.measurements


@pytest.mark.slow
async def test_rectangle_roi_statistics_in_hu() -> None:
    app = make_app(CT)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app, "15/28")
        ds = pydicom.dcmread(CT / "15.dcm")
        hu = apply_modality_lut(ds.pixel_array, ds).astype(float)
        await pilot.press("R", "R")
        for _ in range(4):
            await pilot.press("shift+right")
        for _ in range(3):
            await pilot.press("shift+down")
        await pilot.press("R")
        block = hu[256:260, 256:261]
        assert app.main.viewer.shown is not None
        text = app.main.viewer.pane.measurements[app.main.viewer.shown.slice.key][0].text
        assert f"mean {block.mean():.1f} HU" in text and f"min {block.min():.0f}" in text
        sr, sc = (float(v) for v in ds.PixelSpacing)
        assert f"area {20 * sr * sc:.1f} mm²" in text


@pytest.mark.slow
async def test_zoom_one_to_one_shows_expected_crop() -> None:
    app = make_app(CT)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app, "15/28")
        picture = app.main.query_one(PictureView)
        await pilot.press("exclamation_mark")
        assert await wait_until(
            pilot, lambda: picture.layout_now is not None and picture.layout_now.view.one_to_one
        )
        lay = picture.layout_now
        assert lay is not None
        top, left, bottom, right = lay.crop
        # half-block: one image pixel per half-cell -> the crop is exactly the cells (w x 2h) around the centre
        x, y, w, h = lay.cells
        assert right - left == pytest.approx(w) and bottom - top == pytest.approx(2 * h)
        assert (left + right) / 2 == pytest.approx(256, abs=1) and (top + bottom) / 2 == pytest.approx(
            256, abs=1
        )
        bar = app.main.query_one("#ann-bottom", AnnotationBar)
        assert "Zoom 1:1" in " ".join(" ".join(r) for r in bar.lines)
        await pilot.press("equals_sign")
        assert await wait_until(
            pilot, lambda: picture.layout_now is not None and not picture.layout_now.view.one_to_one
        )
        assert picture.layout_now is not None
        assert picture.layout_now.crop == pytest.approx((0, 0, 512, 512))


async def test_rotation_and_flip_update_orientation_labels() -> None:
    app = make_app(CT)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app, "15/28")
        before = dict(app.main.viewer.orientation)
        assert before["left"] == "R" and before["right"] == "L"
        await pilot.press("r")
        await pilot.pause()
        assert app.main.viewer.orientation["right"] == before["top"]
        await pilot.press("h")
        await pilot.pause()
        assert app.main.viewer.orientation["left"] == before["top"]


@pytest.mark.slow
async def test_cine_advances_loops_and_stops() -> None:
    app = make_app(CT)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app, "15/28")
        await pilot.press("end")
        assert await wait_for_slice(pilot, app, "28/28")
        await pilot.press("space")
        assert app.main.viewer.pane.cine
        # looped to the start
        assert await wait_until(pilot, lambda: app.main.viewer.slice_index not in (27,), 5)
        assert await wait_until(pilot, lambda: app.main.viewer.slice_index >= 2, 5)
        await pilot.press("space")
        stopped_at = app.main.viewer.slice_index
        await pilot.pause(0.5)
        assert not app.main.viewer.pane.cine and app.main.viewer.slice_index == stopped_at


@pytest.mark.slow
async def test_next_series_key_moves_tree_and_image() -> None:
    app = make_app(TAICHI)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        first = app.main.viewer.series
        assert first is not None
        await pilot.press("n")
        assert await wait_until(pilot, lambda: app.main.viewer.series is not first)
        second = app.main.viewer.series
        assert first is not None and second is not None and second.series_number != first.series_number
        tree = app.main.query_one("#tree", StudyTree)

        def tree_on_second() -> bool:
            node = tree.cursor_node
            return node is not None and node.data is not None and node.data.obj is second

        assert await wait_until(pilot, tree_on_second)
        await pilot.press("N")
        assert await wait_until(
            pilot,
            lambda: (
                app.main.viewer.series is not None
                and app.main.viewer.series.series_instance_uid == first.series_instance_uid
            ),
        )


@pytest.mark.slow
async def test_inspector_search_next_match_copy_and_varying() -> None:
    app = make_app(CT)
    copied: list[str] = []
    app.copy_to_clipboard = copied.append  # type: ignore[method-assign,assignment]  # spy; append takes object
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        inspector = app.main.query_one(TagInspector)
        assert await wait_until(pilot, lambda: len(inspector._rows) > 20)
        await pilot.press("tab")
        assert inspector.tag_tree.has_focus or inspector.has_focus_within
        await pilot.press("slash", *"0020,0013")
        assert await wait_until(pilot, lambda: len(inspector._matches) == 1)
        await pilot.press("enter")  # to the tree, on the first match
        node = inspector.tag_tree.cursor_node
        assert node is not None and str(node.label).startswith("(0020,0013)")
        await pilot.press("y")
        assert copied == ["15"]
        await pilot.press("escape")
        # "/" also works from the image pane, even with the tags panel hidden: it shows the panel
        await pilot.press("shift+tab")
        assert not inspector.has_focus_within
        await pilot.press("t")
        assert not inspector.display
        await pilot.press("slash", *"PatientID")
        assert inspector.display
        assert await wait_until(pilot, lambda: len(inspector._matches) >= 1)
        await pilot.press("escape")  # clears the filter, focus on the tags
        assert inspector.has_focus_within
        await pilot.press("V")
        assert await wait_until(pilot, lambda: inspector._varying_paths is not None, 20)
        shown = {str(n.label)[:11] for n in inspector.tag_tree.root.children}
        assert "(0020,0032)" in shown and "(0020,0013)" in shown  # ImagePositionPatient, InstanceNumber
        assert "(0010,0020)" not in shown  # PatientID is the same for every slice
