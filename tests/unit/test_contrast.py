"""Modality-aware contrast: w/W/l/L steps proportional to the width shown (alt: a tenth), presets that
fit the modality (CT presets only where values are Hounsfield units; otherwise the file's windows, auto,
min–max and percentile windows), the file's windows cycled, and the probe moving one screen cell."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA_STORE, SHARED_DATA, needs_data_store, needs_shared

from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.graphics.layout import View
from tui_dicom.core.imaging.pixels import Frame, decode_frame
from tui_dicom.core.imaging.windowing import (
    PERCENTILES,
    PRESETS,
    FileWindow,
    Window,
    auto_window,
    is_hounsfield,
    minmax_window,
    next_file_window,
    resolve_window,
    step_window,
    window_presets,
)
from tui_dicom.core.session.viewstate import PaneState, cell_step


def grey(values: list[list[int]], windows: tuple[Window, ...] = ()) -> Frame:
    arr = np.array(values, dtype=np.int16)
    return Frame(
        stored=arr,
        photometric="MONOCHROME2",
        bits_stored=16,
        signed=True,
        value_range=(float(arr.min()), float(arr.max())),
        windows=windows,
    )


def presses_to_halve(window: Window) -> int:
    n, w = 0, window
    while w.width > window.width / 2:
        w = step_window(w, -1, 0)
        n += 1
    return n


def test_steps_are_proportional_to_the_width_shown() -> None:
    brain, mr = Window(40, 80), Window(600, 4000)
    assert step_window(brain, 1, 0).width == 88
    assert step_window(mr, 1, 0).width == 4400
    assert step_window(mr, 0, -1).center == 200  # the level moves by the same step
    # the same few presses halve a brain window and a wide MR window (a fixed 20 took ~60 on the MR)
    assert presses_to_halve(brain) == presses_to_halve(mr) <= 8
    # alt: a tenth of the step
    assert step_window(mr, 1, 0, fine=True).width == 4040
    assert step_window(brain, 0, 1, fine=True).center == 41


def test_integer_steps_at_least_one_and_width_never_below_one() -> None:
    assert step_window(Window(2, 5), -1, 0).width == 4  # 10 % of 5 rounds to 0: one unit instead
    w = Window(0, 3)
    for _ in range(10):
        w = step_window(w, -1, 0)
    assert w.width == 1
    # float data (LINEAR_EXACT): fractional steps, any positive width
    f = step_window(Window(0.5, 0.01, "LINEAR_EXACT"), 1, 0, integer=False)
    assert f.width == pytest.approx(0.011) and f.function == "LINEAR_EXACT"


def test_pane_state_adjust_uses_the_proportional_step() -> None:
    st = PaneState()
    w = st.adjust_window(Window(600, 4000), 1, 0)
    assert w.width == 4400 and st.window == w
    assert st.adjust_window(w, 0, -1, fine=True).center == 600 - 44
    assert st.adjust_window(None, 1, 1) is None


def test_file_windows_are_cycled_all_of_them_per_slice() -> None:
    wins = (Window(40, 80, name="BRAIN"), Window(300, 1500, name="BONE"), Window(50, 350))
    f = grey([[0, 100]], windows=wins)
    # the default already shows the first window: 0 goes on to the second, then the third, then wraps
    assert resolve_window(f, None) == wins[0]
    second = next_file_window(f, None)
    assert second == FileWindow(1)
    third = next_file_window(f, second)
    assert third == FileWindow(2)
    assert next_file_window(f, third) == FileWindow(0)
    shown = resolve_window(f, third)
    assert shown is not None and (shown.center, shown.width, shown.name) == (50, 350, "file 3/3")
    first = resolve_window(f, FileWindow(0))
    assert first is not None and first.name == "BRAIN 1/3"
    # after a preset or a manual change: the file's first window
    assert next_file_window(f, PRESETS["lung"]) == FileWindow(0)
    # the index is applied to each slice's own windows: a slice with fewer falls back to its default
    other = grey([[0, 100]], windows=(Window(35, 100),))
    assert resolve_window(other, FileWindow(0)) == Window(35, 100, name="file")
    assert resolve_window(other, FileWindow(2)) == Window(35, 100)
    assert next_file_window(grey([[0, 1]]), None) is None


def test_non_hounsfield_presets_are_file_windows_auto_minmax_percentiles() -> None:
    f = grey([list(range(0, 1000, 7))], windows=(Window(500, 900, name="T1"),))
    assert not is_hounsfield(f)
    presets = window_presets(f)
    names = [w.name for w in presets]
    assert names[0] == "T1" and names[1:3] == ["auto", "min–max"]
    assert names[3:] == [f"percentile {lo:g}–{hi:g}" for lo, hi in PERCENTILES]
    assert presets[1] == auto_window(f) and (presets[2].center, presets[2].width) == (
        minmax_window(f).center,
        minmax_window(f).width,
    )
    # each percentile window is narrower than the one before it
    widths = [w.width for w in presets[3:]]
    assert widths == sorted(widths, reverse=True)
    assert not any(w.name in PRESETS for w in presets)


@needs_shared("ge_ct_head", "taichi_mri_cd")
def test_ct_presets_only_for_hounsfield_units_on_real_files() -> None:
    ct = decode_frame(FileRef(str(sorted((SHARED_DATA / "ge_ct_head").glob("*.dcm"))[10])))
    assert is_hounsfield(ct) and ct.units == "HU"
    assert window_presets(ct) == list(PRESETS.values())
    mr = decode_frame(FileRef(str(SHARED_DATA / "taichi_mri_cd" / "DCMDT" / "D0000000")))
    assert not is_hounsfield(mr)
    presets = window_presets(mr)
    assert (presets[0].center, presets[0].width) == (620, 1251)  # the file's WindowCenter/Width
    assert "bone" not in {w.name for w in presets} and len(presets) == 6


@needs_data_store
def test_colour_image_has_no_presets() -> None:
    assert DATA_STORE is not None
    us = decode_frame(FileRef(str(DATA_STORE / "US1_UNCR.dcm")))
    assert not us.is_grey and window_presets(us) == []


def test_probe_moves_one_screen_cell_per_press() -> None:
    # a 512² image fitted into 100×50 cells: one cell is 5.12 image pixels each way
    step = cell_step((0.0, 0.0, 512.0, 512.0), (0, 0, 100, 100))
    assert step == (5.12, 5.12)
    st = PaneState(crosshair=(256, 256))
    st.move_crosshair(0, 1, (512, 512), step)
    assert st.crosshair == (256, 261)
    st.move_crosshair(1, 0, (512, 512))  # shift: one image pixel
    assert st.crosshair == (257, 261)
    # rotated a quarter turn: screen right is image down
    st = PaneState(crosshair=(256, 256), view=View(rotation=1))
    st.move_crosshair(0, 1, (512, 512), step)
    assert st.crosshair == (251, 256) or st.crosshair == (261, 256)
    # zoomed in past one pixel per cell: still at least one pixel per press
    st = PaneState(crosshair=(10, 10))
    st.move_crosshair(0, 1, (512, 512), (0.2, 0.2))
    assert st.crosshair == (10, 11)


def test_reset_view_restores_zoom_pan_rotation_flips_and_window() -> None:
    st = PaneState()
    st.zoom(2.0)
    st.pan(1, 1, (512, 512), 0.1)
    st.rotate()
    st.flip(True)
    st.window = PRESETS["bone"]
    st.invert = True
    st.reset_view()
    assert st.view == View() and st.window is None and not st.invert
