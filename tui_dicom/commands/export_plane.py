"""``tui-dicom export SERIES --plane axial|coronal|sagittal --at MM [--slab MM --mode mip|minip|avg]``.

Builds the series' volume, samples the standard plane through patient coordinate MM (x for sagittal,
y for coronal, z for axial; LPS mm) on square pixels of the series' smallest in-plane spacing, covering
the volume, in radiological orientation, and writes it as a windowed 8-bit PNG. The PNG carries its
geometry as text chunks so other tools can place it: ``tui-dicom:origin`` (LPS mm of the centre of the
top-left pixel), ``tui-dicom:row_direction`` and ``tui-dicom:column_direction`` (unit vectors: the
directions of increasing column and of increasing row), ``tui-dicom:spacing`` (mm between row centres,
then between column centres), numbers separated by backslashes as in DICOM.

SERIES is a series folder, a file of the series, or a CD/ZIP/folder holding several series with
``--series UID``.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from tui_dicom.commands.export import ExportError
from tui_dicom.core.safe import safe_text

if TYPE_CHECKING:
    from tui_dicom.core.hierarchy.model import Series
    from tui_dicom.core.volume import Plane, Volume

#: the geometry text chunks of an exported plane, in order
CHUNKS = ("tui-dicom:origin", "tui-dicom:row_direction", "tui-dicom:column_direction", "tui-dicom:spacing")


class PlaneExportError(ExportError):
    """A one-line reason why the plane cannot be exported."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the plane options to the ``export`` parser."""
    group = parser.add_argument_group(
        "reformatted plane (FILE is then a series: folder, file of it, CD or ZIP)"
    )
    group.add_argument(
        "--plane", choices=("axial", "coronal", "sagittal"), help="export this plane of the series' volume"
    )
    group.add_argument(
        "--at",
        type=float,
        metavar="MM",
        help="patient coordinate of the plane (LPS mm: x sagittal, y coronal, z axial)",
    )
    group.add_argument(
        "--slab", type=float, default=0.0, metavar="MM", help="slab thickness in mm (default 0: thin)"
    )
    group.add_argument(
        "--mode", choices=("mip", "minip", "avg"), default="mip", help="slab projection (default mip)"
    )
    group.add_argument("--series", metavar="UID", help="SeriesInstanceUID when SERIES holds several series")
    group.add_argument(
        "--cache-mb",
        type=int,
        default=1024,
        metavar="MB",
        help="largest volume to hold in memory; beyond it the slices are downsampled (default 1024)",
    )


def _number(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def geometry_chunks(plane: Plane) -> dict[str, str]:
    """The PNG text chunks that place ``plane`` in the patient (see the module docstring)."""
    values: tuple[tuple[float, ...], ...] = (
        tuple(plane.origin),
        tuple(plane.row_dir),
        tuple(plane.col_dir),
        tuple(plane.spacing),
    )
    return {key: "\\".join(_number(float(v)) for v in vals) for key, vals in zip(CHUNKS, values, strict=True)}


def find_series(path: str, series_uid: str | None) -> Series:
    """The series that ``path`` names (see the module docstring).

    Raises:
        PlaneExportError: nothing found, or several series and no (matching) ``--series``.
    """
    from tui_dicom.core.hierarchy.index import build_index

    wanted = series_uid
    root = path
    if (
        os.path.isfile(path)
        and not path.lower().endswith(".zip")
        and os.path.basename(path).upper() != "DICOMDIR"
    ):
        from tui_dicom.core.dicom.reading import read_dataset
        from tui_dicom.core.dicom.source import FileRef

        ds = read_dataset(FileRef(path), stop_before_pixels=True)
        wanted = wanted or str(ds.get("SeriesInstanceUID") or "")
        root = os.path.dirname(os.path.abspath(path))
    elif not os.path.exists(path):
        raise PlaneExportError("no such file or folder")
    hierarchy = build_index([root])
    candidates = hierarchy.all_series()
    if wanted:
        candidates = [s for s in candidates if s.series_instance_uid == wanted]
        if not candidates:
            raise PlaneExportError(f"no series {safe_text(wanted)!r} here")
    if not candidates:
        raise PlaneExportError("no DICOM images here")
    if len(candidates) > 1:
        listed = "; ".join(
            f"{safe_text(s.series_instance_uid)} {safe_text(s.label())}" for s in candidates[:8]
        )
        raise PlaneExportError(f"{len(candidates)} series here: choose one with --series UID ({listed})")
    return candidates[0]


def volume_extent(volume: Volume, axis: int) -> tuple[float, float]:
    """The volume's range (mm) along the patient axis ``axis`` (0 x, 1 y, 2 z)."""
    corners = volume.corners()[:, axis]
    return float(corners.min()), float(corners.max())


def export_plane(args: argparse.Namespace) -> tuple[object, dict[str, str]]:
    """Build the volume and render the plane ``args`` asks for: (uint8 picture, PNG text chunks).

    Raises:
        PlaneExportError, NotAVolume, DicomViewerError, OSError: one-line reasons.
    """
    import numpy as np

    from tui_dicom.core.imaging.pixels import Frame
    from tui_dicom.core.imaging.windowing import Window, default_window, preset_names, render, window_by_name
    from tui_dicom.core.volume import build_volume, plane_at, sample_plane
    from tui_dicom.core.volume.planes import FIXED_AXIS

    if args.at is None:
        raise PlaneExportError("--plane needs --at MM (the plane's patient coordinate)")
    if args.slab < 0:
        raise PlaneExportError("--slab must be ≥ 0 mm")
    series = find_series(args.file, args.series)
    volume = build_volume(
        [sl.key for sl in series.slices()],
        budget_bytes=max(16, args.cache_mb) * 1024**2,
        series_uid=series.series_instance_uid,
    )
    axis = FIXED_AXIS[args.plane]
    lo, hi = volume_extent(volume, axis)
    if not lo - 1e-6 <= args.at <= hi + 1e-6:
        name = "xyz"[axis]
        raise PlaneExportError(
            f"{name} = {args.at:g} mm is outside the volume ({name} from {lo:.1f} to {hi:.1f} mm)"
        )
    plane = plane_at(volume, args.plane, args.at)
    values = sample_plane(volume, plane, slab_mm=args.slab, mode=args.mode)
    frame = Frame(
        stored=values,
        photometric="MONOCHROME1" if volume.monochrome1 else "MONOCHROME2",
        bits_stored=32,
        is_float=True,
        units=volume.units,
        windows=volume.windows,
        modality=volume.modality,
        pixel_spacing=plane.spacing,
        value_range=(float(np.nanmin(values)), float(np.nanmax(values))),
    )
    window = None
    use_voi = not args.no_voi
    if args.window is not None:
        window = Window(args.window[0], args.window[1], "LINEAR", "")
    elif args.preset is not None:
        window = window_by_name(frame, args.preset)
        if window is None:
            raise PlaneExportError(
                f"unknown preset {safe_text(args.preset)!r}; one of: {', '.join(preset_names())}"
            )
    elif use_voi:
        window = default_window(frame)
    picture = render(frame, window, overlays=False, use_voi=use_voi)
    chunks = geometry_chunks(plane)
    chunks["tui-dicom:plane"] = args.plane + (f" slab {args.slab:g} mm {args.mode}" if args.slab > 0 else "")
    if volume.frame_of_reference:
        chunks["tui-dicom:frame_of_reference"] = volume.frame_of_reference
    import sys

    for note in volume.notes:
        print(f"tui-dicom export: note: {safe_text(note)}", file=sys.stderr)
    return picture, chunks
