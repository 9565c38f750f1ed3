"""Build a :class:`~tui_dicom.core.volume.volume.Volume` from the slices of a series.

Three steps, each callable from a thread worker:

1. :func:`read_geometries` reads the headers (no pixel data) and takes each frame's position,
   orientation and pixel spacing with :func:`tui_dicom.core.imaging.geometry.plane_of` and
   :func:`~tui_dicom.core.imaging.geometry.spacing_of` (per-frame functional groups first, so enhanced
   multi-frame objects and one-file-per-slice series are read alike).
2. :func:`plan_volume` decides whether the slices make a volume and how: sorted along the slice normal
   (row × column direction of ImageOrientationPatient), spacing from the positions (SliceThickness is the
   slab a slice integrates, not the distance between slices), gantry tilt kept as a sheared affine,
   irregular spacing resampled to a regular grid and flagged, a memory budget honoured by in-plane
   downsampling. What is not a volume (a localizer, mixed orientations, a missing slice, one slice,
   colour images, several images per position) raises :class:`NotAVolume` with the reason.
3. :func:`load_volume` decodes slice by slice into the preallocated array, checking a cancel event
   between slices and reporting progress, so a viewer can show planes while the rest arrives.

Weasis and 3D Slicer do the same checks (Slicer's DICOMScalarVolumePlugin warns on irregular spacing
and tilt; Weasis refuses a stack with missing or non-parallel slices for MPR).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.errors import DicomViewerError
from tui_dicom.core.imaging.geometry import direction_letters, plane_of, spacing_of
from tui_dicom.core.safe import safe_text
from tui_dicom.core.volume.volume import Volume

#: two slices count as parallel when their row and column directions differ by less than ~0.8°
_PARALLEL_COS = 0.9999
#: spacing is regular when every gap is within this fraction of the median gap
_REGULAR = 0.02
#: an in-plane downsampling beyond this factor is refused rather than shown as a blur
MAX_DOWNSAMPLE = 4


class NotAVolume(DicomViewerError):
    """The series cannot be reformatted; ``str(err)`` says why in one line."""


class Cancelled(Exception):
    """The build was cancelled by its caller."""


@dataclass(frozen=True)
class SliceGeometry:
    """Where one frame sits in the patient, read from its header."""

    ref: FileRef
    frame: int
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    spacing: tuple[float, float] | None
    rows: int
    columns: int
    samples: int = 1
    instance_number: int | None = None
    image_type: str = ""
    frame_of_reference: str = ""

    @property
    def key(self) -> Hashable:
        """Identity of the frame: (file, frame)."""
        return (self.ref, self.frame)


@dataclass(frozen=True)
class VolumePlan:
    """How the sorted slices become the volume's array.

    ``targets[j]`` is ``(a, b, w)``: output slice j is ``(1 - w) * slice[a] + w * slice[b]`` of the
    sorted source slices (``a == b`` and ``w == 0`` for a regular stack).
    """

    slices: tuple[SliceGeometry, ...]
    origin: np.ndarray
    matrix: np.ndarray
    shape: tuple[int, int, int]
    downsample: int
    targets: tuple[tuple[int, int, float], ...]
    source_positions: tuple[float, ...]
    notes: tuple[str, ...] = ()
    itemsize: int = 2

    @property
    def nbytes(self) -> int:
        """Bytes the voxels need."""
        return int(math.prod(self.shape) * self.itemsize)


@dataclass
class _Headers:
    """Header datasets of the series' files, kept for decoding frames of multi-frame files."""

    by_ref: dict[FileRef, Any] = field(default_factory=dict)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def geometry_of(ref: FileRef, ds: Any, frame: int) -> SliceGeometry:
    """The :class:`SliceGeometry` of ``frame`` of the header dataset ``ds``."""
    position, orientation = plane_of(ds, frame)
    sp = spacing_of(ds, frame)
    image_type = ds.get("ImageType")
    try:
        kind = "\\".join(str(v) for v in image_type) if image_type is not None else ""
    except TypeError:
        kind = str(image_type)
    return SliceGeometry(
        ref=ref,
        frame=frame,
        position=position,
        orientation=orientation,
        spacing=(sp.row, sp.col) if sp.calibrated else None,  # type: ignore[arg-type]  # calibrated: floats
        rows=_int(ds.get("Rows")) or 0,
        columns=_int(ds.get("Columns")) or 0,
        samples=_int(ds.get("SamplesPerPixel")) or 1,
        instance_number=_int(ds.get("InstanceNumber")),
        image_type=kind.upper(),
        frame_of_reference=safe_text(ds.get("FrameOfReferenceUID") or ""),
    )


def read_geometries(
    slices: Sequence[tuple[FileRef, int]],
    *,
    cancel: threading.Event | None = None,
    headers: dict[FileRef, Any] | None = None,
) -> list[SliceGeometry]:
    """Read the header of every file once and return the geometry of each ``(file, frame)``.

    Args:
        slices: The series' frames, in any order.
        cancel: Checked between files; raises :class:`Cancelled` when set.
        headers: Filled with the header datasets by file (reused by :func:`load_volume`).

    Raises:
        Cancelled, DicomViewerError, OSError.
    """
    from tui_dicom.core.dicom.reading import read_dataset

    cache = headers if headers is not None else {}
    out = []
    for ref, frame in slices:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        ds = cache.get(ref)
        if ds is None:
            ds = read_dataset(ref, stop_before_pixels=True)
            cache[ref] = ds
        out.append(geometry_of(ref, ds, frame))
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _orientation_name(ori: tuple[float, ...]) -> str:
    n = np.cross(np.asarray(ori[:3]), np.asarray(ori[3:]))
    axis = int(np.argmax(np.abs(n)))
    return ("sagittal", "coronal", "axial")[
        axis
    ] + f" ({direction_letters(ori[:3])}/{direction_letters(ori[3:])})"


def plan_volume(
    geometries: Sequence[SliceGeometry], *, budget_bytes: int | None = None, itemsize: int = 2
) -> VolumePlan:
    """Check that ``geometries`` form a volume and plan its array.

    Args:
        geometries: One per frame of the series, any order.
        budget_bytes: Largest array allowed (``--cache-mb``); beyond it the slices are downsampled in
            plane by an integer factor (said in ``notes``), and refused beyond :data:`MAX_DOWNSAMPLE`.
        itemsize: Bytes per voxel (2 for int16 values such as CT HU).

    Raises:
        NotAVolume: with the reason.
    """
    notes: list[str] = []
    geoms = list(geometries)
    if not geoms:
        raise NotAVolume("no images in this series")
    localizers = [g for g in geoms if "LOCALIZER" in g.image_type]
    if localizers:
        if len(localizers) == len(geoms):
            raise NotAVolume("a localizer (scout) series is not a volume")
        geoms = [g for g in geoms if "LOCALIZER" not in g.image_type]
        notes.append(f"{len(localizers)} localizer image(s) left out")
    if len(geoms) < 3:
        raise NotAVolume(f"{len(geoms)} slice{'s' if len(geoms) != 1 else ''}: a volume needs at least 3")
    if any(g.samples != 1 for g in geoms):
        raise NotAVolume("colour images: reformatting needs a grey-scale series")
    missing = [g for g in geoms if g.position is None or g.orientation is None]
    if missing:
        raise NotAVolume(f"{len(missing)} slice(s) have no ImagePositionPatient/ImageOrientationPatient")
    if any(g.spacing is None for g in geoms):
        raise NotAVolume("no PixelSpacing: distances in the patient are unknown")
    sizes = {(g.rows, g.columns) for g in geoms}
    if len(sizes) > 1:
        raise NotAVolume(f"slices of different sizes ({', '.join(f'{c}×{r}' for r, c in sorted(sizes))})")
    spacings = {(round(g.spacing[0], 4), round(g.spacing[1], 4)) for g in geoms if g.spacing}
    if len(spacings) > 1:
        raise NotAVolume("slices have different pixel spacings")
    ori0 = geoms[0].orientation
    assert ori0 is not None
    row_dir = _unit(np.asarray(ori0[:3], dtype=np.float64))
    col_dir = _unit(np.asarray(ori0[3:], dtype=np.float64))
    if abs(float(row_dir @ col_dir)) > 0.01:
        raise NotAVolume("ImageOrientationPatient is not orthogonal")
    kinds: dict[str, int] = {}
    for g in geoms:
        assert g.orientation is not None
        r = _unit(np.asarray(g.orientation[:3], dtype=np.float64))
        c = _unit(np.asarray(g.orientation[3:], dtype=np.float64))
        if r @ row_dir < _PARALLEL_COS or c @ col_dir < _PARALLEL_COS:
            kinds[_orientation_name(g.orientation)] = kinds.get(_orientation_name(g.orientation), 0) + 1
    if kinds:
        kinds[_orientation_name(ori0)] = len(geoms) - sum(kinds.values())
        listed = ", ".join(f"{n} {k}" for k, n in kinds.items())
        raise NotAVolume(f"mixed orientations ({listed}): not one stack of parallel slices")
    normal = _unit(np.cross(row_dir, col_dir))
    pos = np.array([g.position for g in geoms], dtype=np.float64)
    dist = pos @ normal
    order = np.argsort(dist, kind="stable")
    geoms = [geoms[i] for i in order]
    pos, dist = pos[order], dist[order]
    gaps = np.diff(dist)
    same = int(np.sum(gaps < 1e-3))
    if same:
        positions = len(geoms) - same
        raise NotAVolume(
            f"{len(geoms)} images at {positions} positions: several time points, echoes or "
            "duplicates in one series"
        )
    # the stack axis: first to last slice; a tilted gantry makes it oblique to the normal
    axis = pos[-1] - pos[0]
    along = float(np.linalg.norm(axis))
    stack = axis / along
    t = (pos - pos[0]) @ stack
    off_line = np.linalg.norm((pos - pos[0]) - np.outer(t, stack), axis=1)
    sp_row, sp_col = geoms[0].spacing  # type: ignore[misc]  # checked calibrated above
    if float(off_line.max()) > 0.5 * min(sp_row, sp_col) + 0.05:
        raise NotAVolume(
            f"slice positions are not on one line (up to {off_line.max():.1f} mm off): "
            "varying tilt or several stacks"
        )
    cos_tilt = float(abs(stack @ normal))
    tilt = math.degrees(math.acos(min(1.0, cos_tilt)))
    if tilt > 45:
        raise NotAVolume(f"slices are offset by {tilt:.0f}° from their normal: not a stack")
    if tilt > 0.05:
        notes.append(f"gantry tilt {tilt:.1f}°: sheared volume, planes resampled in patient space")
    tgaps = np.diff(t)
    median = float(np.median(tgaps))
    regular = bool(np.all(np.abs(tgaps - median) <= _REGULAR * median + 1e-3))
    numbers = [g.instance_number for g in geoms]
    if not regular:
        ratios = tgaps / median
        big = np.flatnonzero(ratios > 1.5)
        others = np.delete(tgaps, big)
        others_regular = bool(others.size and np.all(np.abs(others - median) <= _REGULAR * median + 1e-3))
        whole = bool(np.all(np.abs(ratios[big] - np.rint(ratios[big])) < 0.1)) if big.size else False
        numbered = all(n is not None for n in numbers)
        number_gap = numbered and any(
            abs(int(numbers[i + 1]) - int(numbers[i])) > 1  # type: ignore[arg-type]  # numbered: no None
            for i in big
        )
        if big.size and others_regular and (whole or number_gap):
            i = int(big[0])
            raise NotAVolume(
                f"slice(s) missing: a {tgaps[i]:.2f} mm gap after slice {i + 1} where the others are "
                f"{median:.2f} mm"
            )
    if regular:
        step = float(tgaps.mean())
        targets = tuple((j, j, 0.0) for j in range(len(geoms)))
    else:
        step = max(float(tgaps.min()), along / (4 * len(geoms)))
        count = int(math.floor(along / step + 1e-6)) + 1
        step = along / (count - 1)
        tlist = []
        for j in range(count):
            tj = j * step
            b = int(np.searchsorted(t, tj - 1e-6))
            b = min(max(b, 1), len(t) - 1)
            a = b - 1
            w = float((tj - t[a]) / (t[b] - t[a]))
            w = min(max(w, 0.0), 1.0)
            tlist.append((a, b, w) if w > 1e-6 else (a, a, 0.0))
        targets = tuple(tlist)
        notes.append(
            f"irregular spacing ({tgaps.min():.2f}–{tgaps.max():.2f} mm): resampled to {step:.2f} mm"
        )
    rows, cols = geoms[0].rows, geoms[0].columns
    factor = 1
    n_out = len(targets)
    if budget_bytes is not None:
        while n_out * (rows // factor) * (cols // factor) * itemsize > budget_bytes:
            factor += 1
            if factor > MAX_DOWNSAMPLE:
                need = n_out * rows * cols * itemsize / 1024**2
                raise NotAVolume(
                    f"the volume needs {need:,.0f} MB, more than --cache-mb {budget_bytes / 1024**2:,.0f} "
                    f"allows even at 1/{MAX_DOWNSAMPLE} resolution"
                )
        if factor > 1:
            need = n_out * rows * cols * itemsize / 1024**2
            notes.append(
                f"{need:,.0f} MB at full resolution is over --cache-mb {budget_bytes / 1024**2:,.0f}: "
                f"downsampled 1/{factor} in plane"
            )
    out_rows, out_cols = rows // factor, cols // factor
    # voxel (k, r, c) of the downsampled grid: centre of a factor×factor block of original pixels
    offset = (factor - 1) / 2
    origin = pos[0] + offset * sp_row * col_dir + offset * sp_col * row_dir
    matrix = np.column_stack([stack * step, col_dir * sp_row * factor, row_dir * sp_col * factor])
    return VolumePlan(
        slices=tuple(geoms),
        origin=origin,
        matrix=matrix,
        shape=(n_out, out_rows, out_cols),
        downsample=factor,
        targets=targets,
        source_positions=tuple(float(x) for x in t),
        notes=tuple(notes),
        itemsize=itemsize,
    )


def _downsample(arr: np.ndarray, factor: int) -> np.ndarray:
    """Mean of ``factor``×``factor`` blocks (the remainder rows/columns are dropped)."""
    if factor == 1:
        return arr
    r, c = arr.shape[0] // factor, arr.shape[1] // factor
    blocks = arr[: r * factor, : c * factor].reshape(r, factor, c, factor)
    return np.asarray(blocks.mean(axis=(1, 3)))


Decoder = Callable[[FileRef, int, Any], Any]
Progress = Callable[[int, int], None]


def empty_volume(plan: VolumePlan, *, frame_of_reference: str = "", series_uid: str = "") -> Volume:
    """An allocated volume for ``plan`` with nothing loaded yet."""
    dtype = np.int16 if plan.itemsize == 2 else np.float32
    return Volume(
        data=np.zeros(plan.shape, dtype=dtype),
        origin=plan.origin,
        matrix=plan.matrix,
        frame_of_reference=frame_of_reference or plan.slices[0].frame_of_reference,
        series_uid=series_uid,
        notes=plan.notes,
        source_positions=plan.source_positions,
    )


def load_volume(
    plan: VolumePlan,
    *,
    headers: dict[FileRef, Any] | None = None,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    decoder: Decoder | None = None,
    volume: Volume | None = None,
) -> Volume:
    """Decode the planned slices into a volume, in stack order.

    Args:
        plan: From :func:`plan_volume`.
        headers: Header datasets by file (from :func:`read_geometries`); multi-frame files decode one
            frame at a time from them.
        cancel: Checked between slices; raises :class:`Cancelled` when set (the partial volume stays
            usable: ``volume.loaded`` says how far it got).
        progress: Called with (slices loaded, total) after each output slice.
        decoder: ``decoder(ref, frame, ds) -> Frame``; :func:`~tui_dicom.core.imaging.pixels.decode_frame`
            by default.
        volume: A volume from :func:`empty_volume` to fill (so a viewer can show it while it fills).

    Raises:
        Cancelled, NotAVolume, DicomViewerError, OSError.
    """
    if decoder is None:
        from tui_dicom.core.imaging.pixels import decode_frame

        decoder = decode_frame
    vol = volume if volume is not None else empty_volume(plan)
    heads = headers or {}
    total = plan.shape[0]
    cache: dict[int, np.ndarray] = {}
    lo, hi = math.inf, -math.inf
    #: the whole dataset (with pixel data) of the multi-frame file being read: parsed once for its frames
    whole: dict[FileRef, Any] = {}

    def source(index: int) -> np.ndarray:
        nonlocal lo, hi
        if index in cache:
            return cache[index]
        g = plan.slices[index]
        ds = heads.get(g.ref)
        multi = ds is not None and (_int(ds.get("NumberOfFrames")) or 1) > 1
        if multi and g.ref not in whole:
            from tui_dicom.core.dicom.reading import read_dataset

            whole.clear()  # one multi-frame file in memory at a time (slices are in stack order)
            whole[g.ref] = read_dataset(g.ref, stop_before_pixels=False)
        # single-frame files are read whole by the decoder; frames of a multi-frame file come from one parse
        frame = decoder(g.ref, g.frame, whole.get(g.ref))
        if getattr(frame, "stored", np.zeros(0)).ndim != 2:
            raise NotAVolume("colour images: reformatting needs a grey-scale series")
        values = frame.modality_values()
        if g is plan.slices[0] or not vol.units:
            vol.units = frame.units
            vol.modality = frame.modality
            vol.windows = tuple(frame.windows)
            vol.monochrome1 = frame.photometric == "MONOCHROME1"
        values = _downsample(values, plan.downsample)
        cache.clear() if len(cache) > 2 else None
        cache[index] = values
        return values

    for j, (a, b, w) in enumerate(plan.targets):
        if cancel is not None and cancel.is_set():
            raise Cancelled
        va = source(a)
        values = va if a == b else (1 - w) * va + w * source(b)
        if vol.data.dtype == np.int16:
            rounded = np.rint(values)
            if (
                float(rounded.min(initial=0)) < -32768
                or float(rounded.max(initial=0)) > 32767
                or (a == b and not np.array_equal(rounded, values))
            ):
                with vol.lock:
                    vol.data = vol.data.astype(np.float32)
                vol.data[j] = values
            else:
                vol.data[j] = rounded
        else:
            vol.data[j] = values
        lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
        vol.value_range = (lo, hi)
        vol.loaded = j + 1
        if progress is not None:
            progress(j + 1, total)
    return vol


def build_volume(
    slices: Sequence[tuple[FileRef, int]],
    *,
    budget_bytes: int | None = None,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    series_uid: str = "",
) -> Volume:
    """Headers, plan and pixels in one call (the export command; tests). See the module docstring.

    Raises:
        NotAVolume, Cancelled, DicomViewerError, OSError.
    """
    headers: dict[FileRef, Any] = {}
    geoms = read_geometries(slices, cancel=cancel, headers=headers)
    plan = plan_volume(geoms, budget_bytes=budget_bytes)
    vol = empty_volume(plan, series_uid=series_uid)
    return load_volume(plan, headers=headers, cancel=cancel, progress=progress, volume=vol)
