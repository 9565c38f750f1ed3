"""Measuring with the mouse as in radiology viewers (pilot tests with mouse events, real CT data).

``m`` (or ``R``/``E``) chooses the tool and puts nothing down; then press-drag-release, or click and
click, puts the ends where the pointer is; ``Esc`` cancels; the picture never moves under the pointer
while measuring. Expected lengths come from pydicom's PixelSpacing, not from the viewer.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pilot import wait_for_index, wait_for_slice, wait_until
from pydicom.data import get_testdata_file

from tui_dicom.core.graphics.terminal import detect
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.widgets.image_pane import ImagePane
from tui_dicom.ui.widgets.picture import PictureView

CT = Path(str(get_testdata_file("CT_small.dcm", download=False)))
SIZE = (120, 40)


def _app() -> DicomViewerApp:
    return DicomViewerApp([str(CT)], terminal=detect(override="halfblock"))


async def _ready(pilot: Any, app: DicomViewerApp) -> PictureView:
    assert await wait_for_index(pilot, app)
    assert await wait_for_slice(pilot, app, None)
    picture = app.main.query_one(PictureView)
    assert await wait_until(pilot, lambda: picture.layout_now is not None)
    app.main.query_one(ImagePane).focus()  # the measuring keys are the image's
    await pilot.pause()
    return picture


def _pixel(picture: PictureView, cell: tuple[int, int]) -> tuple[int, int]:
    image = picture.image_coords(*cell)
    assert image is not None, cell
    return int(image[0]), int(image[1])


def _expected_mm(p1: tuple[int, int], p2: tuple[int, int]) -> str:
    ds = pydicom.dcmread(CT, stop_before_pixels=True)
    sr, sc = (float(v) for v in ds.PixelSpacing)
    return f"{math.hypot((p2[0] - p1[0]) * sr, (p2[1] - p1[1]) * sc):.1f} mm"


def _cells(picture: PictureView) -> tuple[tuple[int, int], tuple[int, int]]:
    x, y, w, h = picture.layout_now.cells  # type: ignore[union-attr]  # laid out: a slice is shown
    return (x + w // 4, y + h // 4), (x + 3 * w // 4, y + 2 * h // 3)


async def _settled(pilot: Any, picture: PictureView) -> Any:
    """The picture's placement once it stopped changing (its size depends on the rows below it)."""
    before = None
    for _ in range(100):
        await pilot.pause(0.03)
        now = (picture.region, picture.layout_now.cells if picture.layout_now else None)
        if now == before:
            return now
        before = now
    raise AssertionError("the picture never settled")


@pytest.mark.slow
async def test_m_puts_nothing_down_and_press_drag_release_measures_under_the_pointer() -> None:
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        picture = await _ready(pilot, app)
        await pilot.press("m")
        placed = await _settled(pilot, picture)
        assert app.main.viewer.pane.pending is None and not app.main.viewer.pane.measurements  # no point yet
        a, b = _cells(picture)
        p1, p2 = _pixel(picture, a), _pixel(picture, b)
        await pilot.mouse_down(picture, offset=a)
        assert app.main.viewer.pane.pending == ("line", p1)
        await pilot.hover(picture, offset=((a[0] + b[0]) // 2, (a[1] + b[1]) // 2))  # preview follows
        assert app.main.viewer.pane.preview is not None and app.main.viewer.pane.preview != p1
        await pilot.mouse_up(picture, offset=b)
        assert await wait_until(pilot, lambda: bool(app.main.viewer.pane.measurements))
        (items,) = app.main.viewer.pane.measurements.values()
        assert [(m.p1, m.p2, m.text) for m in items] == [(p1, p2, _expected_mm(p1, p2))]
        assert app.main.viewer.pane.pending is None and app.main.viewer.pane.tool is None
        # nothing moved under the pointer: the rows for the readout were there from the key on
        assert await _settled(pilot, picture) == placed
        assert _expected_mm(p1, p2) in str(app.main.query_one("#measure-list").render())


@pytest.mark.slow
async def test_click_click_measures_and_a_click_on_the_same_pixel_waits() -> None:
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        picture = await _ready(pilot, app)
        await pilot.press("m")
        placed = await _settled(pilot, picture)
        a, b = _cells(picture)
        p1, p2 = _pixel(picture, a), _pixel(picture, b)
        await pilot.click(picture, offset=a)
        assert app.main.viewer.pane.pending == ("line", p1) and not app.main.viewer.pane.measurements
        await pilot.click(picture, offset=a)  # the same pixel again: never a 0.0 mm measurement
        assert app.main.viewer.pane.pending == ("line", p1) and not app.main.viewer.pane.measurements
        await pilot.click(picture, offset=b)
        assert await wait_until(pilot, lambda: bool(app.main.viewer.pane.measurements))
        (items,) = app.main.viewer.pane.measurements.values()
        assert (items[0].p1, items[0].p2, items[0].text) == (p1, p2, _expected_mm(p1, p2))
        assert await _settled(pilot, picture) == placed


@pytest.mark.slow
async def test_escape_cancels_a_measurement_in_progress() -> None:
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        picture = await _ready(pilot, app)
        await pilot.press("R")
        await _settled(pilot, picture)
        a, b = _cells(picture)
        await pilot.click(picture, offset=a)
        assert app.main.viewer.pane.pending is not None
        await pilot.press("escape")
        assert app.main.viewer.pane.pending is None and app.main.viewer.pane.tool is None
        await pilot.click(picture, offset=b)  # no tool any more: nothing is measured
        await pilot.pause(0.1)
        assert not app.main.viewer.pane.measurements


@pytest.mark.slow
async def test_keyboard_measuring_needs_the_crosshair_to_move() -> None:
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        await pilot.press("m", "m", "m")  # tool, first end, the same pixel again: ignored
        assert app.main.viewer.pane.pending is not None and not app.main.viewer.pane.measurements
        await pilot.press("right", "right", "m")
        assert await wait_until(pilot, lambda: bool(app.main.viewer.pane.measurements))


@pytest.mark.parametrize("kind", ["rect", "ellipse"])
@pytest.mark.slow
async def test_roi_by_drag(kind: str) -> None:
    app = _app()
    async with app.run_test(size=SIZE) as pilot:
        picture = await _ready(pilot, app)
        await pilot.press("R" if kind == "rect" else "E")
        await _settled(pilot, picture)
        a, b = _cells(picture)
        await pilot.mouse_down(picture, offset=a)
        await pilot.mouse_up(picture, offset=b)
        assert await wait_until(pilot, lambda: bool(app.main.viewer.pane.measurements))
        (items,) = app.main.viewer.pane.measurements.values()
        assert items[0].kind == kind and "mean" in items[0].text
