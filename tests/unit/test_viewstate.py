"""Pure interaction logic of the image pane: W/L steps, zoom, pan, measurements."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tui_dicom.core.graphics.layout import View
from tui_dicom.core.imaging.geometry import Spacing
from tui_dicom.core.imaging.windowing import Window
from tui_dicom.core.session.viewstate import PaneState


class FakeFrame:
    units = "HU"

    def __init__(self) -> None:
        self.values = np.arange(100, dtype=np.float64).reshape(10, 10) - 50

    def modality_values(self) -> np.ndarray:
        return self.values


def test_window_steps_scale_with_the_width_and_fine_is_tenth() -> None:
    st = PaneState()
    w = st.adjust_window(Window(40, 80), d_width=+1, d_level=0)
    assert (w.center, w.width) == (40, 88)
    w = st.adjust_window(w, d_width=0, d_level=-1, fine=True)
    assert (w.center, w.width) == (39, 88)


def test_width_never_below_one() -> None:
    st = PaneState()
    w = st.adjust_window(Window(0, 10), d_width=-50, d_level=0)
    assert w.width == 1.0


def test_zoom_fit_and_one_to_one() -> None:
    st = PaneState()
    st.zoom(1.25)
    st.zoom(1.25)
    assert st.view.zoom == pytest.approx(1.5625) and st.zoom_text == "Zoom 1.56×"
    st.one_to_one()
    assert st.view.one_to_one and st.zoom_text == "Zoom 1:1"
    st.fit()
    assert st.view == View() and st.zoom_text == "Zoom fit"


def test_pan_follows_screen_direction_under_rotation() -> None:
    st = PaneState()
    st.zoom(2.0)
    st.pan(0, 1, (100, 100), 0.1)  # screen right, no rotation: column increases
    assert st.view.center == pytest.approx((50, 55))
    st2 = PaneState()
    st2.zoom(2.0)
    st2.rotate()  # after a clockwise turn, screen right is image "up" (row decreasing)
    st2.pan(0, 1, (100, 100), 0.1)
    assert st2.view.center == pytest.approx((45, 50))


def test_length_measurement_in_mm_and_kept_with_slice() -> None:
    st = PaneState()
    sp = Spacing(0.5, 0.5, "PixelSpacing")
    assert st.place_point("line", (0, 0), "s1", FakeFrame(), sp) is None
    m = st.place_point("line", (30, 40), "s1", FakeFrame(), sp)
    assert m is not None and m.text == f"{math.hypot(15, 20):.1f} mm"
    assert len(st.shapes("s1")) == 1 and st.shapes("s2") == ()
    assert st.delete_last("s1") == m and st.shapes("s1") == ()


def test_roi_measurement_reports_modality_statistics() -> None:
    st = PaneState()
    frame = FakeFrame()
    st.place_point("rect", (0, 0), "k", frame, Spacing(1.0, 1.0, "PixelSpacing"))
    m = st.place_point("rect", (1, 1), "k", frame, Spacing(1.0, 1.0, "PixelSpacing"))
    assert m is not None
    expected = frame.values[0:2, 0:2]
    assert f"mean {expected.mean():.1f} HU" in m.text and "area 4.0 mm²" in m.text


def test_uncalibrated_length_says_so() -> None:
    st = PaneState()
    st.place_point("line", (0, 0), "k", FakeFrame(), Spacing(None, None, ""))
    m = st.place_point("line", (3, 4), "k", FakeFrame(), Spacing(None, None, ""))
    assert m is not None and m.text == "5.0 px (uncalibrated)"


def test_crosshair_stays_inside_image() -> None:
    st = PaneState()
    st.move_crosshair(-100, 500, (64, 64))
    assert st.crosshair == (0, 63)


def test_measuring_gestures_press_drag_release_click_click_and_cancel() -> None:
    sp = Spacing(1.0, 1.0, "PixelSpacing")
    st = PaneState()
    assert st.press((1, 1), "k", FakeFrame(), sp) is None and st.pending is None  # no tool: nothing
    st.arm("line")
    assert st.measuring and st.readout_visible and st.pending is None
    assert st.press((0, 0), "k", FakeFrame(), sp) is None and st.pending == ("line", (0, 0))
    assert st.drag_to((3, 4)) and st.shapes("k")[0].kind == "line"  # the preview follows the pointer
    m = st.release((3, 4), "k", FakeFrame(), sp)
    assert m is not None and m.text == "5.0 mm" and not st.measuring
    # click, click: the release on the first end waits for the second click
    st.arm("line")
    st.press((0, 0), "k", FakeFrame(), sp)
    assert st.release((0, 0), "k", FakeFrame(), sp) is None and st.pending == ("line", (0, 0))
    assert st.press((0, 0), "k", FakeFrame(), sp) is None  # the same pixel: never 0.0 mm
    m = st.press((6, 8), "k", FakeFrame(), sp)
    assert m is not None and m.text == "10.0 mm"
    assert st.release((6, 9), "k", FakeFrame(), sp) is None  # the second click's release does nothing
    # Esc
    st.arm("rect")
    st.press((0, 0), "k", FakeFrame(), sp)
    assert st.cancel() and not st.measuring and not st.cancel()
    assert len(st.measurements["k"]) == 2
