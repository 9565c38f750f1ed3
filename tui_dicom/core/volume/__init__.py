"""Volumes from series: multiplanar reformatting (MPR), thick slabs, crosshair, reference lines, sync.

Pure numpy over the imaging layer (no Textual). :mod:`.build` turns a series into a
:class:`~.volume.Volume`, :mod:`.planes` samples planes through it.
"""

from __future__ import annotations

from tui_dicom.core.volume.build import (
    Cancelled,
    NotAVolume,
    SliceGeometry,
    VolumePlan,
    build_volume,
    empty_volume,
    load_volume,
    plan_volume,
    read_geometries,
)
from tui_dicom.core.volume.planes import (
    PLANES,
    SLAB_MODES,
    Plane,
    crosshair_pixels,
    length_mm,
    nearest_slice,
    plane_at,
    reference_line,
    sample_plane,
    standard_plane,
)
from tui_dicom.core.volume.volume import Volume

__all__ = [
    "PLANES",
    "SLAB_MODES",
    "Cancelled",
    "NotAVolume",
    "Plane",
    "SliceGeometry",
    "Volume",
    "VolumePlan",
    "build_volume",
    "crosshair_pixels",
    "empty_volume",
    "length_mm",
    "load_volume",
    "nearest_slice",
    "plan_volume",
    "plane_at",
    "read_geometries",
    "reference_line",
    "sample_plane",
    "standard_plane",
]
