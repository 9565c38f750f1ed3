"""The MPR screen on the real tilted GE head: the volume builds in a worker, three linked planes, the
crosshair is one patient point in all panes, slab and plane keys work, a non-volume says why."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pilot import wait_for_index, wait_for_slice, wait_until

from tui_dicom.core.graphics.terminal import detect
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.screens.mpr import MprScreen

SHARED = Path(
    os.environ.get("TUI_DICOM_TEST_DATA") or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)
CT = SHARED / "ge_ct_head"
needs_ct = pytest.mark.skipif(not CT.is_dir(), reason=f"real data not found: {CT}")


def make_app(*paths: Path) -> DicomViewerApp:
    return DicomViewerApp([str(p) for p in paths], terminal=detect(override="halfblock"))


@needs_ct
@pytest.mark.slow
async def test_mpr_three_linked_planes() -> None:
    app = make_app(CT)
    async with app.run_test(size=(180, 50)) as pilot:
        assert await wait_for_index(pilot, app)
        assert await wait_for_slice(pilot, app)
        await pilot.press("P")
        assert await wait_until(pilot, lambda: isinstance(app.screen, MprScreen))
        screen = app.screen
        assert isinstance(screen, MprScreen)
        assert await wait_until(
            pilot, lambda: screen.volume is not None and screen.volume.complete, timeout=60
        )
        await pilot.pause()
        start = screen.point.copy()  # type: ignore[union-attr]  # set once the volume is complete
        planes = screen.planes()
        for plane in planes.values():  # one patient point in all three panes
            row, col, dist = plane.pixel(start)
            assert dist == pytest.approx(0.0, abs=1e-6)
            np.testing.assert_allclose(plane.patient(row, col), start, atol=1e-6)
        await pilot.press("right", "right", "down")  # in the axial pane: +2 px left→right, +1 px down
        moved = screen.point
        s = planes["axial"].spacing[0]
        np.testing.assert_allclose(moved - start, [2 * s, s, 0.0], atol=1e-6)  # x to the left, y posterior
        assert screen.planes()["sagittal"].pixel(moved)[2] == pytest.approx(0.0, abs=1e-6)
        await pilot.press("x", "pagedown")  # coronal active: one step along its normal (posterior)
        assert screen.active == "coronal"
        assert screen.point is not None and screen.volume is not None and moved is not None
        assert (screen.point - moved)[1] == pytest.approx(min(screen.volume.spacing))
        await pilot.press("right_square_bracket", "right_square_bracket", "m")
        assert screen.slab_mm == 5.0 and screen.slab_mode == "minip"
        status = str(screen.query_one("#mpr-status").render())
        assert "mm LPS" in status and "HU" in status and "gantry tilt" in status
        # a length on the sagittal plane: crosshair points, distance from the plane's geometry
        await pilot.press(
            "left_square_bracket", "left_square_bracket", "left_square_bracket", "left_square_bracket"
        )
        assert screen.slab_mm == 0.0
        await pilot.press("x")
        assert screen.active == "sagittal"
        sag = screen.planes()["sagittal"]
        r0, c0, _ = sag.pixel(screen.point)
        await pilot.press("d", *(["down"] * 12), *(["right"] * 5), "d")
        expected = float(np.linalg.norm(sag.patient(r0 + 12, c0 + 5) - sag.patient(r0, c0)))
        assert screen.length_mm == pytest.approx(expected)
        assert expected == pytest.approx(13 * sag.spacing[0])  # 5-12-13 triangle of square pixels
        assert await wait_until(pilot, lambda: screen._shown_seq == screen._seq)
        assert f"length {expected:.1f} mm" in str(screen.query_one("#mpr-status").render())
        # a click in the coronal pane puts the crosshair there: on the coronal plane, so y is kept
        before = screen.point.copy()
        assert await pilot.click("#picture-coronal", offset=(20, 20))
        assert screen.active == "coronal"
        assert screen.point is not None and not np.allclose(screen.point, before)
        assert screen.point[1] == pytest.approx(before[1])
        await pilot.press("x")  # coronal → sagittal
        await pilot.press("v")
        assert not screen.query_one("#pane-axial").display and screen.query_one("#pane-sagittal").display
        await pilot.press("escape")
        assert await wait_until(pilot, lambda: not isinstance(app.screen, MprScreen))


@pytest.mark.slow
async def test_mpr_says_why_a_series_is_not_a_volume(tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    src = get_testdata_file("CT_small.dcm", download=False)
    if src is None:
        pytest.skip("pydicom test file CT_small.dcm not available")
    app = make_app(Path(src))
    async with app.run_test(size=(150, 40)) as pilot:
        assert await wait_for_index(pilot, app)
        assert await wait_for_slice(pilot, app)
        await pilot.press("P")
        assert await wait_until(pilot, lambda: isinstance(app.screen, MprScreen) and bool(app.screen.reason))
        assert "a volume needs at least 3" in app.screen.reason  # type: ignore[attr-defined]  # MprScreen, waited for
