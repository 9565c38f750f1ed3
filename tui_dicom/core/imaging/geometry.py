"""Radiology geometry and measurements: orientation labels, patient coordinates, lengths, ROI statistics.

Coordinates: image ``(row, col)`` pixel indices (pixel ``(i, j)`` is row i, column j); patient coordinates
in the DICOM LPS frame (x to the patient's Left, y Posterior, z Head), in mm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tui_dicom.core.imaging.dataset import functional_group

_LETTERS = (("R", "L"), ("A", "P"), ("F", "H"))  # (negative, positive) along x, y, z


def direction_letters(vector: Sequence[float], threshold: float = 0.25) -> str:
    """Orientation letters of a patient-space direction, strongest first (e.g. ``(0.9, 0.4, 0) → "LP"``)."""
    parts = sorted(range(3), key=lambda i: -abs(vector[i]))
    out = ""
    for i in parts:
        if abs(vector[i]) >= threshold:
            out += _LETTERS[i][1] if vector[i] > 0 else _LETTERS[i][0]
    return out


def orientation_labels(
    orientation: Sequence[float] | None, rotation: int = 0, flip_h: bool = False, flip_v: bool = False
) -> dict[str, str]:
    """Letters for the pane edges ``{"top", "bottom", "left", "right"}`` from ImageOrientationPatient.

    ``rotation`` is in clockwise quarter turns, flips are applied after rotation (on screen), as in
    :class:`tui_dicom.core.graphics.layout.View`. Empty strings when the orientation is unknown.
    """
    if not orientation or len(orientation) != 6:
        return {"top": "", "bottom": "", "left": "", "right": ""}
    row_dir = [float(v) for v in orientation[:3]]  # direction of increasing column: screen right
    col_dir = [float(v) for v in orientation[3:]]  # direction of increasing row: screen down
    labels = {
        "right": direction_letters(row_dir),
        "left": direction_letters([-v for v in row_dir]),
        "bottom": direction_letters(col_dir),
        "top": direction_letters([-v for v in col_dir]),
    }
    for _ in range(rotation % 4):  # clockwise: what was on top goes to the right
        labels = {
            "right": labels["top"],
            "bottom": labels["right"],
            "left": labels["bottom"],
            "top": labels["left"],
        }
    if flip_h:
        labels["left"], labels["right"] = labels["right"], labels["left"]
    if flip_v:
        labels["top"], labels["bottom"] = labels["bottom"], labels["top"]
    return labels


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    """``count`` finite floats from a multi-valued element, else None."""
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == count and all(math.isfinite(v) for v in out) else None


def plane_of(ds: Any, frame: int = 0) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """ImagePositionPatient and ImageOrientationPatient of ``frame`` (per-frame functional groups first).

    One lookup for the viewer's annotations and the volume builder, so single-frame files and enhanced
    multi-frame objects (Plane Position/Orientation macros) are read the same way everywhere.
    """
    position = orientation = None
    item = functional_group(ds, frame, "PlanePositionSequence")
    if item is not None:
        position = _floats(item.get("ImagePositionPatient"), 3)
    item = functional_group(ds, frame, "PlaneOrientationSequence")
    if item is not None:
        orientation = _floats(item.get("ImageOrientationPatient"), 6)
    if position is None:
        position = _floats(ds.get("ImagePositionPatient"), 3)
    if orientation is None:
        orientation = _floats(ds.get("ImageOrientationPatient"), 6)
    return position, orientation


def patient_coords(
    position: Sequence[float] | None,
    orientation: Sequence[float] | None,
    spacing: Sequence[float] | None,
    row: float,
    col: float,
) -> tuple[float, float, float] | None:
    """Patient coordinates (mm) of pixel ``(row, col)`` (PS3.3 C.7.6.2.1.1), None if unknown."""
    if not position or not orientation or not spacing or len(orientation) != 6 or len(position) != 3:
        return None
    dr, dc = float(spacing[0]), float(spacing[1])
    rx, ry, rz = (float(v) for v in orientation[:3])
    cx, cy, cz = (float(v) for v in orientation[3:])
    px, py, pz = (float(v) for v in position)
    return (
        px + rx * dc * col + cx * dr * row,
        py + ry * dc * col + cy * dr * row,
        pz + rz * dc * col + cz * dr * row,
    )


@dataclass(frozen=True)
class Spacing:
    """Pixel spacing used for measurements: ``(row, col)`` in mm, or None (then lengths are in px)."""

    row: float | None
    col: float | None
    source: str  # "PixelSpacing" | "ImagerPixelSpacing" | "NominalScannedPixelSpacing" | ""

    @property
    def calibrated(self) -> bool:
        """True when measurements are in mm of the patient (PixelSpacing present)."""
        return self.source == "PixelSpacing" and bool(self.row) and bool(self.col)

    @property
    def unit(self) -> str:
        """``mm`` when calibrated, else ``px``."""
        return "mm" if self.calibrated else "px"

    @property
    def warning(self) -> str:
        """Why a measurement is not in mm (empty when it is)."""
        if self.calibrated:
            return ""
        if self.source == "ImagerPixelSpacing":
            return "only ImagerPixelSpacing (detector plane, not patient) is present: measured in px"
        if self.source == "NominalScannedPixelSpacing":
            return (
                "only NominalScannedPixelSpacing (the scanned film, not patient) is present: measured in px"
            )
        return "no PixelSpacing in this image: measured in px"


#: where a pixel spacing may come from, in the order tried (PS3.3 10.7.1.3): the patient plane first
#: (per-frame Pixel Measures, then the image's own), then the detector plane, then a scanned film
SPACING_SOURCES = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")


def _spacing_pair(value: Any) -> tuple[float, float] | None:
    pair = _floats(value, 2)
    return (pair[0], pair[1]) if pair is not None and pair[0] > 0 and pair[1] > 0 else None


def spacing_of(ds: Any, frame: int = 0) -> Spacing:
    """The pixel spacing of ``frame`` of an instance header: the one rule for measurements, the display
    aspect of a frame and volumes (per-frame functional groups first, then :data:`SPACING_SOURCES` in
    order; a value that is not two finite positive numbers is passed over)."""
    if ds is None:
        return Spacing(None, None, "")
    measures = functional_group(ds, frame, "PixelMeasuresSequence")
    candidates = [("PixelSpacing", measures.get("PixelSpacing"))] if measures is not None else []
    for keyword in SPACING_SOURCES:
        try:
            candidates.append((keyword, ds.get(keyword)))
        except Exception:  # noqa: BLE001 - a broken value reads as absent
            continue
    for keyword, value in candidates:
        pair = _spacing_pair(value) if value is not None else None
        if pair is not None:
            return Spacing(pair[0], pair[1], keyword)
    return Spacing(None, None, "")


def length(p1: tuple[float, float], p2: tuple[float, float], spacing: Spacing) -> float:
    """Distance between two pixel positions, in mm when calibrated, else in pixels."""
    dr, dc = p2[0] - p1[0], p2[1] - p1[1]
    if spacing.calibrated:
        return math.hypot(dr * spacing.row, dc * spacing.col)  # type: ignore[operator]  # calibrated: floats
    return math.hypot(dr, dc)


@dataclass(frozen=True)
class RoiStats:
    """Statistics of an ROI in modality units."""

    mean: float
    std: float
    minimum: float
    maximum: float
    area: float  # mm² when calibrated, else px²
    pixels: int
    unit: str  # "mm²" or "px²"


def roi_mask(
    shape: tuple[int, int], kind: str, p1: tuple[float, float], p2: tuple[float, float]
) -> np.ndarray:
    """Boolean mask of the pixels inside a rectangle or ellipse given by two opposite corner pixels."""
    rows, cols = shape
    r0, r1 = sorted((int(round(p1[0])), int(round(p2[0]))))
    c0, c1 = sorted((int(round(p1[1])), int(round(p2[1]))))
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, rows - 1), min(c1, cols - 1)
    mask = np.zeros(shape, dtype=bool)
    if r1 < r0 or c1 < c0:
        return mask
    if kind == "ellipse":
        rr, cc = np.mgrid[r0 : r1 + 1, c0 : c1 + 1]
        rc, cc0 = (r0 + r1) / 2, (c0 + c1) / 2
        ar, ac = (r1 - r0) / 2 + 0.5, (c1 - c0) / 2 + 0.5
        mask[r0 : r1 + 1, c0 : c1 + 1] = ((rr - rc) / ar) ** 2 + ((cc - cc0) / ac) ** 2 <= 1.0
    else:
        mask[r0 : r1 + 1, c0 : c1 + 1] = True
    return mask


def roi_stats(
    values: np.ndarray, kind: str, p1: tuple[float, float], p2: tuple[float, float], spacing: Spacing
) -> RoiStats | None:
    """Mean, standard deviation, min, max and area of the ROI over ``values`` (modality values, HxW)."""
    if values.ndim != 2:
        values = values.mean(axis=-1)
    mask = roi_mask(values.shape, kind, p1, p2)
    n = int(mask.sum())
    if n == 0:
        return None
    sel = values[mask].astype(np.float64)
    if spacing.calibrated:
        area, unit = n * spacing.row * spacing.col, "mm²"  # type: ignore[operator]  # calibrated: floats
    else:
        area, unit = float(n), "px²"
    return RoiStats(float(sel.mean()), float(sel.std()), float(sel.min()), float(sel.max()), area, n, unit)


def nice_step(value_range: float, divisions: int = 128) -> float:
    """A round window/level step (1, 2 or 5 × 10^k) for a range of modality values."""
    raw = max(value_range, 1e-9) / divisions
    power = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * power:
            return float(mult * power)
    return float(10 * power)


def cine_rate(ds: Any) -> float:
    """Frames per second for cine: CineRate, RecommendedDisplayFrameRate, 1000/FrameTime, else 10."""
    if ds is not None:
        for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
            try:
                value = float(ds.get(keyword) or 0)
            except (TypeError, ValueError):
                value = 0
            if 0 < value <= 240:
                return value
        try:
            frame_time = float(ds.get("FrameTime") or 0)
        except (TypeError, ValueError):
            frame_time = 0
        if frame_time > 0:
            return min(240.0, 1000.0 / frame_time)
    return 10.0
