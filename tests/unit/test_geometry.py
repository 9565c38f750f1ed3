"""Radiology geometry: orientation labels, patient coordinates, lengths and ROI statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydicom.dataset import Dataset

from tui_dicom.core.imaging import geometry as g

AXIAL = (1, 0, 0, 0, 1, 0)  # rows go left→right (patient L), columns go anterior→posterior
SAGITTAL = (0, 1, 0, 0, 0, -1)


def test_axial_labels_follow_radiological_convention() -> None:
    labels = g.orientation_labels(AXIAL)
    assert labels == {"right": "L", "left": "R", "bottom": "P", "top": "A"}


def test_sagittal_labels() -> None:
    labels = g.orientation_labels(SAGITTAL)
    assert (labels["right"], labels["left"], labels["top"], labels["bottom"]) == ("P", "A", "H", "F")


def test_rotation_moves_top_to_right_and_flips_swap() -> None:
    rotated = g.orientation_labels(AXIAL, rotation=1)
    assert (
        rotated["right"] == "A"
        and rotated["bottom"] == "L"
        and rotated["left"] == "P"
        and rotated["top"] == "R"
    )
    assert g.orientation_labels(AXIAL, rotation=4) == g.orientation_labels(AXIAL)
    flipped = g.orientation_labels(AXIAL, flip_h=True)
    assert flipped["right"] == "R" and flipped["left"] == "L"
    flipped_v = g.orientation_labels(AXIAL, flip_v=True)
    assert flipped_v["top"] == "P" and flipped_v["bottom"] == "A"


def test_oblique_gives_two_letters() -> None:
    assert g.direction_letters((0.8, 0.6, 0.0)) == "LP"
    assert g.orientation_labels(None)["top"] == ""


def test_patient_coords_match_ps33_equation() -> None:
    pos = (-100.0, -120.0, 50.0)
    assert g.patient_coords(pos, AXIAL, (0.5, 0.7), 0, 0) == pos
    coords = g.patient_coords(pos, AXIAL, (0.5, 0.7), 10, 20)
    assert coords is not None
    x, y, z = coords
    assert (x, y, z) == pytest.approx((-100 + 20 * 0.7, -120 + 10 * 0.5, 50.0))


def test_length_uses_row_and_column_spacing() -> None:
    sp = g.Spacing(0.5, 0.8, "PixelSpacing")
    assert g.length((0, 0), (30, 40), sp) == pytest.approx(math.hypot(15, 32))
    raw = g.Spacing(0.5, 0.8, "ImagerPixelSpacing")
    assert not raw.calibrated and raw.unit == "px" and "ImagerPixelSpacing" in raw.warning
    assert g.length((0, 0), (3, 4), raw) == pytest.approx(5.0)


def test_spacing_of_prefers_pixel_spacing_then_imager() -> None:
    ds = Dataset()
    ds.ImagerPixelSpacing = [0.2, 0.2]
    assert g.spacing_of(ds).source == "ImagerPixelSpacing"
    ds.PixelSpacing = [0.3, 0.4]
    sp = g.spacing_of(ds)
    assert sp.calibrated and (sp.row, sp.col) == (0.3, 0.4)
    assert g.spacing_of(Dataset()).unit == "px"


def test_spacing_of_falls_back_in_the_standard_order_and_skips_unusable_values() -> None:
    ds = Dataset()
    ds.NominalScannedPixelSpacing = [0.1, 0.1]
    sp = g.spacing_of(ds)
    assert sp.source == "NominalScannedPixelSpacing" and not sp.calibrated and "film" in sp.warning
    ds.ImagerPixelSpacing = [0, 0.2]  # not a spacing: the next source is used
    assert g.spacing_of(ds).source == "NominalScannedPixelSpacing"
    ds.PixelSpacing = [0.5, 0.5]
    per_frame = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [0.7, 0.9]
    per_frame.PixelMeasuresSequence = [measures]
    ds.PerFrameFunctionalGroupsSequence = [Dataset(), per_frame]
    assert (g.spacing_of(ds, 1).row, g.spacing_of(ds, 1).col) == (0.7, 0.9)
    assert (g.spacing_of(ds, 0).row, g.spacing_of(ds, 0).col) == (0.5, 0.5)


def _expected_spacing(ds: Dataset, frame: int) -> tuple[float, float] | None:
    """PS3.3's order, read straight from pydicom's values (not through our helpers)."""
    candidates = []
    for group in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        seq = ds.get(group)
        index = frame if group.startswith("PerFrame") else 0
        if seq and len(seq) > index and "PixelMeasuresSequence" in seq[index]:
            candidates.append(seq[index].PixelMeasuresSequence[0].get("PixelSpacing"))
            break
    candidates += [ds.get(k) for k in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")]
    for value in candidates:
        try:
            r, c = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if r > 0 and c > 0 and math.isfinite(r) and math.isfinite(c):
            return (r, c)
    return None


def test_one_spacing_rule_for_frames_measurements_and_volumes() -> None:
    """The decoded frame's spacing (display aspect) is the measurement spacing, on every pydicom test
    file with pixels, and both follow the standard's order as read from pydicom's own values."""
    import pydicom
    from conftest import PYDICOM_FILES

    from tui_dicom.core.dicom.source import FileRef
    from tui_dicom.core.errors import DicomViewerError
    from tui_dicom.core.imaging.pixels import decode_frame

    checked = with_spacing = 0
    for path in sorted(str(p) for p in PYDICOM_FILES.glob("*.dcm")):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - files pydicom cannot read are other tests' business
            continue
        if "Rows" not in ds:
            continue
        try:
            frame = decode_frame(FileRef(path), 0, None)
        except (DicomViewerError, MemoryError, ValueError, OSError):
            continue
        sp = g.spacing_of(ds, 0)
        expected = _expected_spacing(ds, 0)
        assert frame.pixel_spacing == ((sp.row, sp.col) if sp.row else None), path
        assert frame.pixel_spacing == expected, path
        checked += 1
        with_spacing += expected is not None
    assert checked >= 30 and with_spacing >= 10, (checked, with_spacing)


def test_rect_roi_stats_against_numpy() -> None:
    values = np.arange(100, dtype=np.float64).reshape(10, 10)
    stats = g.roi_stats(values, "rect", (2, 3), (4, 6), g.Spacing(0.5, 2.0, "PixelSpacing"))
    assert stats is not None
    block = values[2:5, 3:7]
    assert (
        stats.pixels == 12
        and stats.mean == pytest.approx(block.mean())
        and stats.std == pytest.approx(block.std())
    )
    assert (stats.minimum, stats.maximum) == (block.min(), block.max())
    assert stats.area == pytest.approx(12 * 1.0) and stats.unit == "mm²"


def test_ellipse_roi_is_inside_its_box() -> None:
    mask = g.roi_mask((50, 50), "ellipse", (10, 10), (30, 30))
    assert mask[20, 20] and not mask[10, 10] and mask.sum() < 21 * 21
    assert mask.sum() == pytest.approx(math.pi * 10.5 * 10.5, rel=0.05)


def test_nice_step_and_cine_rate() -> None:
    assert g.nice_step(4096) == 50.0
    assert g.nice_step(255) == 2.0
    ds = Dataset()
    assert g.cine_rate(ds) == 10.0
    ds.FrameTime = 40
    assert g.cine_rate(ds) == pytest.approx(25.0)
    ds.CineRate = 30
    assert g.cine_rate(ds) == 30.0
