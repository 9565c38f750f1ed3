"""The display pipeline step by step, with arrays small enough to check by hand, plus timings."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import numpy.typing as npt
import pytest

from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.imaging.pixels import Frame, Lut, Overlay, Palette, decode_frame
from tui_dicom.core.imaging.windowing import (
    PRESETS,
    Window,
    apply_window,
    auto_window,
    default_window,
    file_windows,
    minmax_window,
    pixel_aspect,
    render,
    window_by_name,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack needs Python 3.11

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class FrameExtras(TypedDict, total=False):
    """The optional ``Frame`` fields these tests set, so ``grey(..., **extras)`` is checked field by field."""

    rescale_slope: float
    rescale_intercept: float
    modality_lut: Lut
    voi_luts: tuple[Lut, ...]
    windows: tuple[Window, ...]
    presentation_inverse: bool
    palette: Palette
    overlays: tuple[Overlay, ...]
    pixel_spacing: tuple[float, float]
    aspect_ratio: tuple[float, float]


def grey(
    values: list[list[int]],
    *,
    dtype: npt.DTypeLike = np.int16,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 16,
    signed: bool = True,
    **extras: Unpack[FrameExtras],
) -> Frame:
    arr = np.array(values, dtype=dtype)
    return Frame(
        stored=arr,
        photometric=photometric,
        bits_stored=bits_stored,
        signed=signed,
        value_range=(float(arr.min()), float(arr.max())),
        **extras,
    )


def test_linear_window_is_ps33_c11212() -> None:
    w = Window(40, 80)
    # c - 0.5 - (w-1)/2 = 0 and c - 0.5 + (w-1)/2 = 79: 0 -> 0, 79 -> 1, 39.5 -> 0.5
    assert apply_window(np.array([-10, 0, 39.5, 79, 200]), w).tolist() == [0, 0, 0.5, 1, 1]
    assert apply_window(np.array([10.0, 10.5, 11.0]), Window(11, 1)).tolist() == [0, 0, 1]


def test_linear_exact_and_sigmoid() -> None:
    assert apply_window(np.array([-5, 0, 5, 9]), Window(0, 10, "LINEAR_EXACT")).tolist() == [0, 0.5, 1, 1]
    sig = apply_window(np.array([0.0, 10.0, -10.0]), Window(0, 10, "SIGMOID"))
    assert sig[0] == 0.5
    assert sig[1] == pytest.approx(1 / (1 + np.exp(-4)))
    assert sig[2] == pytest.approx(1 - sig[1])


def test_render_rescale_then_window_to_8_bits() -> None:
    # stored 0..3, slope 10, intercept -10 -> -10, 0, 10, 20; window C 5.5 W 21 spans -4.5..15.5 (w-1 = 20)
    f = grey([[0, 1, 2, 3]], rescale_slope=10.0, rescale_intercept=-10.0)
    out = render(f, Window(5.5, 21))
    # 8 bits by truncation, like DCMTK: (0 - 5) / 20 + 0.5 = 0.25 -> 63; 0.75 -> 191
    expected = [0, 63, 191, 255]
    assert out.dtype == np.uint8
    assert out.tolist() == [expected]


def test_monochrome1_and_inverse_shape_invert() -> None:
    f2 = grey([[0, 1, 2, 3]])
    w = Window(2, 4)  # -> 0, 85, 170, 255
    assert render(f2, w).tolist() == [[0, 85, 170, 255]]
    f1 = grey([[0, 1, 2, 3]], photometric="MONOCHROME1")
    assert render(f1, w).tolist() == [[255, 170, 85, 0]]
    assert render(grey([[0, 1, 2, 3]], presentation_inverse=True), w).tolist() == [[255, 170, 85, 0]]
    assert render(f2, w, invert=True).tolist() == [[255, 170, 85, 0]]


def test_modality_lut_sequence_then_voi_lut() -> None:
    mlut = Lut(first_mapped=10, data=np.array([100, 200, 300]), bits=12)
    f = grey([[5, 10, 11, 12, 99]], modality_lut=mlut)
    assert f.modality_values().tolist() == [[100, 100, 200, 300, 300]]
    voi = Lut(first_mapped=100, data=np.array([0, 0, 1]), bits=1)  # entries for 100, 101, 102
    f2 = grey([[99, 100, 101, 102, 103]], voi_luts=(voi,))
    assert render(f2).tolist() == [[0, 0, 0, 255, 255]]  # the file's VOI LUT is the default
    assert default_window(f2) is None


def test_no_voi_maps_full_range() -> None:
    f = grey([[0, 255]], dtype=np.uint8, bits_stored=8, signed=False)
    assert render(f, None, use_voi=False).tolist() == [[0, 255]]
    f12 = grey([[0, 4095, 2048]], dtype=np.uint16, bits_stored=12, signed=False)
    assert render(f12, None, use_voi=False).tolist() == [[0, 255, 127]]  # 2048/4095*255 = 127.5


def test_windows_defaults_and_presets() -> None:
    w1, w2 = Window(40, 80, name="BRAIN"), Window(300, 1500, name="BONE")
    f = grey([[0, 100]], windows=(w1, w2))
    assert file_windows(f) == [w1, w2]
    assert default_window(f) == w1
    assert window_by_name(f, "file") == w1
    assert list(PRESETS)[:2] == ["brain", "subdural"] and len(PRESETS) == 9
    assert (PRESETS["lung"].center, PRESETS["lung"].width) == (-600, 1500)
    assert (PRESETS["temporal bone"].center, PRESETS["temporal bone"].width) == (600, 2800)
    assert window_by_name(f, "Lung") == PRESETS["lung"]
    assert window_by_name(f, "nonsense") is None
    plain = grey([[0, 100]])
    assert default_window(plain) == auto_window(plain)
    mm = minmax_window(grey([[10, 20, 30]]))
    # min-max like DCMTK +Wm: 10 -> 0 and 30 -> 255 exactly, 20 -> 127.5 truncated
    assert render(grey([[10, 20, 30]]), mm).tolist() == [[0, 127, 255]]
    assert window_by_name(plain, "min–max") == minmax_window(plain)
    assert hash(w1) == hash(Window(40, 80, name="BRAIN"))


def test_auto_window_ignores_outliers() -> None:
    values = np.zeros((100, 100), dtype=np.int16)
    values[:, 50:] = 100
    values[0, 0] = 30000  # one hot pixel
    f = grey(values.tolist())
    w = auto_window(f)
    assert w.center - w.width / 2 >= -1 and w.center + w.width / 2 <= 102


def test_overlay_burned_white_and_optional() -> None:
    mask = np.array([[True, False]])
    f = grey([[0, 0], [0, 0]], overlays=(Overlay(1, 0, mask),))
    assert render(f, Window(100, 10)).tolist() == [[0, 0], [255, 0]]
    assert render(f, Window(100, 10), overlays=False).tolist() == [[0, 0], [0, 0]]
    # clipped at the border without error
    g = grey([[0, 0]], overlays=(Overlay(0, 1, np.ones((3, 3), bool)),))
    assert render(g, Window(100, 10)).tolist() == [[0, 255]]


def test_palette_and_rgb() -> None:
    pal = Palette(first_mapped=1, rgb=np.array([[255, 0, 0], [0, 255, 0]], dtype=np.uint8))
    f = Frame(
        stored=np.array([[0, 1, 2, 3]], dtype=np.uint8),
        photometric="PALETTE COLOR",
        bits_stored=8,
        palette=pal,
        value_range=(0, 3),
    )
    assert render(f).tolist() == [[[255, 0, 0], [255, 0, 0], [0, 255, 0], [0, 255, 0]]]
    rgb16 = np.array([[[0, 65535, 32768]]], dtype=np.uint16)
    c = Frame(stored=rgb16, photometric="RGB", bits_stored=16, value_range=(0, 65535))
    assert render(c).tolist() == [[[0, 255, 128]]]
    assert render(c, invert=True).tolist() == [[[255, 0, 127]]]


def test_supplemental_palette_keeps_grey_outside_range() -> None:
    pal = Palette(first_mapped=100, rgb=np.array([[255, 0, 0]], dtype=np.uint8), supplemental=True)
    f = grey([[0, 100, 50]], palette=pal)
    out = render(f, Window(50.5, 101))
    assert out.tolist() == [[[0, 0, 0], [255, 0, 0], [127, 127, 127]]]


def test_pixel_aspect() -> None:
    assert pixel_aspect(grey([[0]], pixel_spacing=(0.5, 0.25))) == 2.0
    assert pixel_aspect(grey([[0]], aspect_ratio=(5.0, 6.0))) == pytest.approx(5 / 6)
    assert pixel_aspect(grey([[0]])) == 1.0


def test_float_frame_renders() -> None:
    f = Frame(
        stored=np.array([[0.0, 0.5, 1.0, np.nan]]),
        photometric="MONOCHROME2",
        bits_stored=32,
        is_float=True,
        value_range=(0.0, 1.0),
    )
    out = render(f, Window(0.5, 1.0, "LINEAR_EXACT"))
    assert out.tolist() == [[0, 127, 255, 0]]


def test_ct_head_brain_window_matches_formula_on_pydicom_hu() -> None:
    """Independent recomputation: pydicom's HU through the PS3.3 formula, truncated to 8 bits."""
    import pydicom
    from pydicom.pixels.processing import apply_modality_lut

    files = sorted((SHARED / "ge_ct_head").glob("*.dcm"))
    if not files:
        pytest.skip("../shared/data/ge_ct_head not available")
    ds = pydicom.dcmread(files[10])
    hu = apply_modality_lut(ds.pixel_array, ds).astype(float)
    c, w = 40.0, 80.0
    y = np.clip((hu - (c - 0.5)) / (w - 1) + 0.5, 0, 1)
    expected = np.floor(y * 255 + 1e-7).astype(np.uint8)
    frame = decode_frame(FileRef(str(files[10])))
    assert np.array_equal(render(frame, PRESETS["brain"]), expected)


def _bench(path: str, label: str) -> None:
    ref = FileRef(path)
    frame = decode_frame(ref)
    render(frame)
    times, renders = [], []
    for _ in range(15):
        t0 = time.perf_counter()
        frame = decode_frame(ref)
        render(frame)
        times.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        render(frame, Window(frame.windows[0].center + 10 if frame.windows else 50, 400))
        renders.append(time.perf_counter() - t1)
    print(
        f"\n[timing] {label}: file->8-bit median {1000 * np.median(times):.1f} ms "
        f"(min {1000 * min(times):.1f}); window change {1000 * np.median(renders):.2f} ms"
    )


def test_print_timings() -> None:
    """Benchmark numbers for the report (printed, not asserted)."""
    paths = []
    files = sorted((SHARED / "ge_ct_head").glob("*.dcm"))
    if files:
        paths.append((str(files[10]), "ge_ct_head 512x512 CT"))
    try:
        import data_store

        base = Path(os.path.dirname(data_store.__file__)) / "data"
        paths += [
            (str(base / "693_UNCR.dcm"), "693_UNCR 512x512 CT"),
            (str(base / "693_J2KR.dcm"), "693_J2KR JPEG 2000"),
        ]
    except ImportError:
        pass
    if not paths:
        pytest.skip("no 512x512 CT available")
    for path, label in paths:
        _bench(path, label)
    assert paths
