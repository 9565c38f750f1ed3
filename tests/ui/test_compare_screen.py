"""The compare screen on the clinic's lumbar-spine CD: two sagittal series scroll together by position,
an axial slice shows as a reference line on the sagittal one, sync can be switched off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pilot import wait_for_index, wait_for_slice, wait_until

from tui_dicom.core.graphics.terminal import detect
from tui_dicom.core.volume import reference_line
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.screens.compare import CompareScreen, image_plane, slice_centre
from tui_dicom.ui.widgets.picture import PictureView

SHARED = Path(
    os.environ.get("TUI_DICOM_TEST_DATA") or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)
CD = SHARED / "taichi_mri_cd"
needs_cd = pytest.mark.skipif(not CD.is_dir(), reason=f"real data not found: {CD}")


@needs_cd
@pytest.mark.slow
async def test_compare_sync_and_reference_lines() -> None:
    app = DicomViewerApp([str(CD)], terminal=detect(override="halfblock"))
    async with app.run_test(size=(160, 45)) as pilot:
        assert await wait_for_index(pilot, app)
        assert await wait_for_slice(pilot, app)
        by_name = {s.series_description: s for s in app.main.viewer.hierarchy.all_series()}
        app.main.show_series(by_name["T2 SAG"])
        await pilot.press("C")
        assert await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert screen.series["left"].series_description == "T2 SAG"
        # right: T1 SAG (the same 11 positions, one Frame of Reference)
        while screen.series["right"].series_description != "T1 SAG":
            await pilot.press("n")
        assert await wait_until(pilot, lambda: screen.same_frame)
        await pilot.press("down", "down")
        left_i = screen.index["left"]
        assert screen.index["right"] == left_i  # nearest position: the same slice
        gap = screen.gap_mm()
        assert gap is not None and abs(gap) < 0.5
        assert "sync by position" in str(screen.query_one("#cmp-status").render())
        await pilot.press("s", "down")
        assert screen.index["left"] == left_i + 1 and screen.index["right"] == left_i  # sync off
        await pilot.press("s")
        # right: an axial slice; on the sagittal its position is a reference line
        while screen.series["right"].series_description != "T2 AX":
            await pilot.press("n")
        assert await wait_until(
            pilot, lambda: screen.results["left"] is not None and screen.results["right"] is not None
        )
        assert await wait_until(pilot, lambda: bool(screen.geometry["right"]))
        sag = image_plane(screen._geom("left"))
        ax = image_plane(screen._geom("right"))
        assert sag is not None and ax is not None
        line = reference_line(sag, ax)
        assert line is not None
        (r0, _c0), (r1, _c1) = line
        centre = slice_centre(screen._geom("right"))
        assert centre is not None
        # the line passes through the axial slice's centre row on the sagittal (within a pixel)
        row_of_centre = sag.pixel(centre)[0]
        assert min(r0, r1) - 1 <= row_of_centre <= max(r0, r1) + 1
        picture = screen.query_one("#cmp-picture-left", PictureView)

        def drawn_line() -> bool:
            request = picture._request  # what the picture widget was last asked to draw
            return request is not None and any(shape.kind == "line" for shape in request[4])

        assert await wait_until(pilot, drawn_line)
        await pilot.press("escape")
        assert await wait_until(pilot, lambda: not isinstance(app.screen, CompareScreen))
