"""A reconstructed volume: a 3-D array of modality values and the affine that places it in the patient.

Voxel ``(k, r, c)`` (slice, row, column) sits at patient point ``origin + matrix @ (k, r, c)`` in LPS mm.
The matrix's columns are the slice step, the row step (ImageOrientationPatient's column direction times
the row spacing) and the column step (row direction times the column spacing). A gantry-tilted stack
has a slice step that is not perpendicular to the image plane: the matrix is sheared and every plane is
resampled through it, so the reformat is geometrically right without re-gridding the stack first (the
same correction Slicer applies with its acquisition transform, done at sampling time).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from tui_dicom.core.imaging.windowing import Window


@dataclass(eq=False)
class Volume:
    """Voxels and geometry of one series, filled progressively by the builder.

    Attributes:
        data: ``(slices, rows, columns)`` modality values (HU for CT), int16 or float32.
        origin: LPS mm of voxel ``(0, 0, 0)``'s centre.
        matrix: 3×3, columns = patient step of one voxel along k, r, c (mm).
        frame_of_reference: FrameOfReferenceUID (planes of two volumes relate only when equal).
        series_uid: SeriesInstanceUID.
        modality: Modality (safe text).
        units: ``"HU"`` for CT, else the rescale type or ``""``.
        windows: the first slice's windows, for a default display.
        monochrome1: the series is MONOCHROME1 (low values bright).
        notes: what was done to the series to make it a volume (tilt, resampling, downsampling).
        source_positions: along the stack, the positions (mm from voxel 0) of the original slices.
        loaded: slices of ``data`` filled so far (the builder's progress).
        value_range: (min, max) of the values loaded so far.
    """

    data: np.ndarray
    origin: np.ndarray
    matrix: np.ndarray
    frame_of_reference: str = ""
    series_uid: str = ""
    modality: str = ""
    units: str = ""
    windows: tuple[Window, ...] = ()
    monochrome1: bool = False
    notes: tuple[str, ...] = ()
    source_positions: tuple[float, ...] = ()
    loaded: int = 0
    value_range: tuple[float, float] = (0.0, 0.0)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.origin = np.asarray(self.origin, dtype=np.float64).reshape(3)
        self.matrix = np.asarray(self.matrix, dtype=np.float64).reshape(3, 3)
        self.inverse = np.linalg.inv(self.matrix)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slices, rows, columns)``."""
        s = self.data.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Length in mm of one voxel step along k (slice), r (row) and c (column)."""
        n = np.linalg.norm(self.matrix, axis=0)
        return (float(n[0]), float(n[1]), float(n[2]))

    @property
    def in_plane_spacing(self) -> float:
        """The smallest in-plane pixel spacing (mm): reformatted planes use square pixels of this size."""
        _, r, c = self.spacing
        return min(r, c)

    @property
    def complete(self) -> bool:
        """Every slice is loaded."""
        return self.loaded >= self.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes held by the voxels."""
        return int(self.data.nbytes)

    @property
    def fill_value(self) -> float:
        """Value shown outside the volume: its minimum (air for CT, background for MR)."""
        return float(self.value_range[0])

    def to_patient(self, voxel: np.ndarray) -> np.ndarray:
        """LPS mm of voxel coordinates ``(..., 3)`` (k, r, c; fractional allowed)."""
        return np.asarray(np.asarray(voxel, dtype=np.float64) @ self.matrix.T + self.origin)

    def to_voxel(self, point: np.ndarray) -> np.ndarray:
        """Voxel coordinates ``(..., 3)`` of LPS points ``(..., 3)``."""
        return np.asarray((np.asarray(point, dtype=np.float64) - self.origin) @ self.inverse.T)

    def corners(self) -> np.ndarray:
        """The 8 corner voxel centres in LPS mm, ``(8, 3)``."""
        n = np.array(self.shape, dtype=np.float64) - 1
        idx = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])])
        return self.to_patient(idx)

    def centre(self) -> np.ndarray:
        """LPS mm of the volume's centre."""
        return self.to_patient((np.array(self.shape, dtype=np.float64) - 1) / 2)

    def contains(self, point: np.ndarray, tolerance: float = 0.5) -> bool:
        """True when ``point`` (LPS) lies inside the voxel-centre box, within ``tolerance`` voxels."""
        v = self.to_voxel(point)
        return bool(np.all(v >= -tolerance) and np.all(v <= np.array(self.shape) - 1 + tolerance))

    def value_at(self, point: np.ndarray) -> float | None:
        """Nearest-voxel value at LPS ``point`` (the probe), or None outside the volume."""
        v = np.rint(self.to_voxel(point)).astype(np.int64)
        if np.any(v < 0) or np.any(v >= np.array(self.shape)) or v[0] >= self.loaded:
            return None
        return float(self.data[v[0], v[1], v[2]])
