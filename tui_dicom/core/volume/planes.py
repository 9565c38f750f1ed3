"""Planes through a volume: axial, coronal, sagittal (and any oblique plane), thick slabs, the shared
crosshair, reference (scout) lines and nearest-position sync between series.

A :class:`Plane` is a picture grid in the patient: the LPS position of its top-left pixel centre, the
unit directions of increasing column (``row_dir``) and increasing row (``col_dir``), the spacing in mm
and the size in pixels — the same four things as an image's ImagePositionPatient,
ImageOrientationPatient, PixelSpacing, Rows/Columns, so a plane and an original slice relate the same way.

Radiological display orientation (as every reading station shows it):

- axial: patient right on screen left, anterior up → row_dir +x (L), col_dir +y (P);
- coronal: patient right on screen left, head up → row_dir +x (L), col_dir −z (F);
- sagittal: anterior on the left, head up → row_dir +y (P), col_dir −z (F).

Sampling is trilinear in voxel space through the volume's affine (so a sheared, gantry-tilted volume is
resampled correctly). When the plane is aligned with the voxel axes — every standard plane of an
unrotated stack — the sampling separates into two 1-D interpolations of one voxel sheet, which keeps a
crosshair move well under the 30 ms a scroll step may take.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tui_dicom.core.imaging.geometry import orientation_labels
from tui_dicom.core.volume.volume import Volume

PlaneKind = Literal["axial", "coronal", "sagittal"]
SlabMode = Literal["mip", "minip", "avg"]
PLANES: tuple[PlaneKind, ...] = ("axial", "coronal", "sagittal")
SLAB_MODES: tuple[SlabMode, ...] = ("mip", "minip", "avg")

#: (row_dir, col_dir) of each standard plane in LPS, radiological convention
_DIRECTIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}
#: the patient axis (LPS index) each standard plane is fixed along: --at gives that coordinate
FIXED_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}
_EPS = 1e-6


@dataclass(frozen=True, eq=False)
class Plane:
    """A picture grid in the patient (see the module docstring).

    Attributes:
        origin: LPS mm of the centre of pixel (row 0, column 0).
        row_dir: unit vector, direction of increasing column (screen right).
        col_dir: unit vector, direction of increasing row (screen down).
        spacing: (between row centres, between column centres) in mm.
        rows: height in pixels.
        cols: width in pixels.
        kind: ``axial``/``coronal``/``sagittal`` for standard planes, ``image`` for an original slice.
    """

    origin: np.ndarray
    row_dir: np.ndarray
    col_dir: np.ndarray
    spacing: tuple[float, float]
    rows: int
    cols: int
    kind: str = ""

    @classmethod
    def from_image(
        cls,
        position: Sequence[float],
        orientation: Sequence[float],
        spacing: Sequence[float],
        rows: int,
        cols: int,
    ) -> Plane:
        """The plane of an original slice (ImagePositionPatient, ImageOrientationPatient, PixelSpacing)."""
        r = np.asarray(orientation[:3], dtype=np.float64)
        c = np.asarray(orientation[3:6], dtype=np.float64)
        return cls(
            np.asarray(position, dtype=np.float64),
            r / np.linalg.norm(r),
            c / np.linalg.norm(c),
            (float(spacing[0]), float(spacing[1])),
            int(rows),
            int(cols),
            "image",
        )

    @property
    def normal(self) -> np.ndarray:
        """Unit normal (row_dir × col_dir)."""
        n = np.cross(self.row_dir, self.col_dir)
        return np.asarray(n / np.linalg.norm(n))

    @property
    def orientation(self) -> tuple[float, ...]:
        """ImageOrientationPatient of the plane (row_dir then col_dir)."""
        return tuple(float(v) for v in (*self.row_dir, *self.col_dir))

    def labels(self) -> dict[str, str]:
        """Orientation letters of the four edges (``{"top": "A", ...}``)."""
        return orientation_labels(self.orientation)

    def patient(self, row: float, col: float) -> np.ndarray:
        """LPS mm of the (fractional) pixel ``(row, col)``."""
        return self.origin + col * self.spacing[1] * self.row_dir + row * self.spacing[0] * self.col_dir

    def pixel(self, point: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
        """``(row, col, distance)`` of LPS ``point``: its pixel and its signed distance (mm) from the plane."""
        d = np.asarray(point, dtype=np.float64) - self.origin
        return (
            float(d @ self.col_dir) / self.spacing[0],
            float(d @ self.row_dir) / self.spacing[1],
            float(d @ self.normal),
        )

    def moved_to(self, point: Sequence[float] | np.ndarray) -> Plane:
        """The parallel plane through ``point`` (same grid, shifted along the normal)."""
        n = self.normal
        shift = float((np.asarray(point, dtype=np.float64) - self.origin) @ n)
        return Plane(
            self.origin + shift * n, self.row_dir, self.col_dir, self.spacing, self.rows, self.cols, self.kind
        )


def standard_plane(volume: Volume, kind: str, point: Sequence[float] | np.ndarray) -> Plane:
    """The axial, coronal or sagittal plane through LPS ``point``, covering the whole volume.

    Square pixels of the volume's smallest in-plane spacing; the grid depends only on the volume (not
    on ``point``), so moving the crosshair never shifts the picture.

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind not in _DIRECTIONS:
        raise ValueError(f"plane must be one of {', '.join(PLANES)}, not {kind!r}")
    r, c = (np.asarray(v, dtype=np.float64) for v in _DIRECTIONS[kind])
    n = np.cross(r, c)
    s = volume.in_plane_spacing
    corners = volume.corners()
    u, v = corners @ r, corners @ c
    u0, v0 = float(u.min()), float(v.min())
    cols = int(math.floor((float(u.max()) - u0) / s + 1e-6)) + 1
    rows = int(math.floor((float(v.max()) - v0) / s + 1e-6)) + 1
    depth = float(np.asarray(point, dtype=np.float64) @ n)
    origin = u0 * r + v0 * c + depth * n
    return Plane(origin, r, c, (s, s), rows, cols, kind)


def plane_at(volume: Volume, kind: str, at_mm: float) -> Plane:
    """The standard plane at patient coordinate ``at_mm`` (x for sagittal, y for coronal, z for axial)."""
    point = volume.centre().copy()
    point[FIXED_AXIS[kind]] = at_mm
    return standard_plane(volume, kind, point)


def _interp_axis(arr: np.ndarray, coords: np.ndarray, axis: int, fill: float) -> np.ndarray:
    """Linear interpolation of ``arr`` along ``axis`` at fractional indices ``coords`` (out → fill)."""
    n = arr.shape[axis]
    inside = (coords >= -0.5) & (coords <= n - 0.5)  # half a voxel beyond the centres: nearest edge
    c = np.clip(coords, 0, n - 1)
    lo = np.floor(c).astype(np.intp)
    lo = np.minimum(lo, max(n - 2, 0))
    w = (c - lo).astype(np.float32)
    hi = np.minimum(lo + 1, n - 1)
    a = np.take(arr, lo, axis=axis).astype(np.float32, copy=False)
    b = np.take(arr, hi, axis=axis).astype(np.float32, copy=False)
    shape = [1] * arr.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    out = a + (b - a) * w
    if not inside.all():
        mask = (~inside).reshape(shape)
        out = np.where(mask, np.float32(fill), out)
    return np.asarray(out, dtype=np.float32)


def _sheet(
    data: np.ndarray, axis: int, coord: float, fill: float, lo_hi: tuple[int, int] | None, mode: str
) -> np.ndarray | None:
    """The 2-D voxel sheet at fractional index ``coord`` along ``axis`` (or a slab reduced over ``lo_hi``)."""
    n = data.shape[axis]
    if lo_hi is not None:
        lo, hi = lo_hi
        lo, hi = max(lo, 0), min(hi, n - 1)
        if hi < lo:
            return None
        block = np.take(data, np.arange(lo, hi + 1), axis=axis)
        if mode == "mip":
            return np.asarray(block.max(axis=axis), dtype=np.float32)
        if mode == "minip":
            return np.asarray(block.min(axis=axis), dtype=np.float32)
        return np.asarray(block.mean(axis=axis, dtype=np.float64), dtype=np.float32)
    if coord < -0.5 or coord > n - 0.5:
        return None
    return _interp_axis(data, np.asarray([coord]), axis, fill).squeeze(axis)


def _axis_map(vector: np.ndarray) -> int | None:
    """The only voxel axis ``vector`` moves along, or None (several, or none)."""
    nz = np.flatnonzero(np.abs(vector) > _EPS * max(1.0, float(np.abs(vector).max())))
    return int(nz[0]) if nz.size == 1 else None


def sample_plane(
    volume: Volume,
    plane: Plane,
    *,
    slab_mm: float = 0.0,
    mode: str = "mip",
    fill: float | None = None,
) -> np.ndarray:
    """The plane's pixels (float32, ``rows × cols``), trilinear; a thick slab when ``slab_mm`` > 0.

    Args:
        volume: The volume (partly loaded is fine: unloaded slices read as their zeros).
        plane: Where to sample.
        slab_mm: Slab thickness in mm, centred on the plane; 0 for a thin plane.
        mode: ``mip`` (maximum), ``minip`` (minimum) or ``avg`` (mean) over the slab.
        fill: Value outside the volume (default: the volume's minimum).

    Raises:
        ValueError: unknown ``mode``.
    """
    if mode not in SLAB_MODES:
        raise ValueError(f"slab mode must be one of {', '.join(SLAB_MODES)}, not {mode!r}")
    fill_v = volume.fill_value if fill is None else float(fill)
    data = volume.data
    inv = volume.inverse
    v0 = inv @ (plane.origin - volume.origin)
    a = inv @ (plane.col_dir * plane.spacing[0])  # per output row
    b = inv @ (plane.row_dir * plane.spacing[1])  # per output column
    nrm = inv @ plane.normal  # voxel step per mm along the normal
    ax_a, ax_b = _axis_map(a), _axis_map(b)
    if ax_a is not None and ax_b is not None and ax_a != ax_b:
        fixed = 3 - ax_a - ax_b
        if _axis_map(nrm) == fixed or slab_mm <= 0:
            return _sample_separable(data, v0, a, b, ax_a, ax_b, fixed, nrm, slab_mm, mode, fill_v, plane)
    scale = max(1.0, float(np.abs(a).max()), float(np.abs(b).max()))
    for fixed in range(3):
        if (
            abs(a[fixed]) < _EPS * scale
            and abs(b[fixed]) < _EPS * scale
            and (slab_mm <= 0 or _axis_map(nrm) == fixed)
        ):
            return _sample_sheet_affine(data, v0, a, b, fixed, nrm, slab_mm, mode, fill_v, plane)
    return _sample_general(data, v0, a, b, nrm, slab_mm, mode, fill_v, plane, volume.spacing)


def _sample_separable(
    data: np.ndarray,
    v0: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    ax_a: int,
    ax_b: int,
    fixed: int,
    nrm: np.ndarray,
    slab_mm: float,
    mode: str,
    fill: float,
    plane: Plane,
) -> np.ndarray:
    """Axis-aligned plane: one voxel sheet (or a slab reduced over whole voxels), then two 1-D resamplings."""
    coord = float(v0[fixed])
    lo_hi = None
    if slab_mm > 0:
        half = abs(float(nrm[fixed])) * slab_mm / 2  # in voxels along the fixed axis
        lo_hi = (int(math.ceil(coord - half - 1e-6)), int(math.floor(coord + half + 1e-6)))
        if lo_hi[1] < lo_hi[0]:  # thinner than a voxel: the nearest one
            lo_hi = (int(round(coord)), int(round(coord)))
    sheet = _sheet(data, fixed, coord, fill, lo_hi, mode)
    if sheet is None:
        return np.full((plane.rows, plane.cols), fill, dtype=np.float32)
    # the sheet keeps the two remaining axes in volume order
    rest = [ax for ax in range(3) if ax != fixed]
    rows_coords = v0[ax_a] + np.arange(plane.rows) * a[ax_a]
    cols_coords = v0[ax_b] + np.arange(plane.cols) * b[ax_b]
    sa, sb = rest.index(ax_a), rest.index(ax_b)
    out = _interp_axis(sheet, rows_coords, sa, fill)
    out = _interp_axis(out, cols_coords, sb, fill)
    return out if sa == 0 else out.T.copy()


_GRIDS: dict[tuple[object, ...], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
_GRIDS_LOCK = threading.Lock()


def _sheet_grid(
    sizes: tuple[int, int, int, int], affine: tuple[float, float, float, float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gather indices, weights and the outside mask of an oblique 2-D grid on a voxel sheet.

    They depend only on the grid and the sheet's shape, not on which sheet: moving the crosshair along
    the fixed axis (scrolling a sagittal plane of a tilted stack) reuses them, so a step costs four
    gathers and three blends. A few grids are kept (three panes and a slab).
    """
    key = (*sizes, *(round(x, 9) for x in affine))
    with _GRIDS_LOCK:
        hit = _GRIDS.get(key)
    if hit is not None:
        return hit
    rows, cols, nu, nv = sizes
    u_0, u_a, u_b, v_0, v_a, v_b = affine
    ii = np.arange(rows, dtype=np.float32)[:, None]
    jj = np.arange(cols, dtype=np.float32)[None, :]
    u = np.float32(u_0) + ii * np.float32(u_a) + jj * np.float32(u_b)
    v = np.float32(v_0) + ii * np.float32(v_a) + jj * np.float32(v_b)
    outside = (u < -0.5) | (u > nu - 0.5) | (v < -0.5) | (v > nv - 0.5)
    np.clip(u, 0, nu - 1, out=u)
    np.clip(v, 0, nv - 1, out=v)
    u0 = np.minimum(u.astype(np.int32), max(nu - 2, 0))
    w0 = np.minimum(v.astype(np.int32), max(nv - 2, 0))
    u -= u0  # now the weights
    v -= w0
    entry = (u0 * nv + w0, u, v, outside)
    with _GRIDS_LOCK:
        if len(_GRIDS) >= 6:
            _GRIDS.pop(next(iter(_GRIDS)))
        _GRIDS[key] = entry
    return entry


def _sample_sheet_affine(
    data: np.ndarray,
    v0: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    fixed: int,
    nrm: np.ndarray,
    slab_mm: float,
    mode: str,
    fill: float,
    plane: Plane,
) -> np.ndarray:
    """A plane that keeps one voxel index constant (e.g. a sagittal plane of a tilted axial stack): one
    voxel sheet (or slab), then bilinear samples along an oblique 2-D grid — 4 gathers instead of 8."""
    coord = float(v0[fixed])
    lo_hi = None
    if slab_mm > 0:
        half = abs(float(nrm[fixed])) * slab_mm / 2
        lo_hi = (int(math.ceil(coord - half - 1e-6)), int(math.floor(coord + half + 1e-6)))
        if lo_hi[1] < lo_hi[0]:
            lo_hi = (int(round(coord)), int(round(coord)))
    sheet = _sheet(data, fixed, coord, fill, lo_hi, mode)
    if sheet is None:
        return np.full((plane.rows, plane.cols), fill, dtype=np.float32)
    p, q = [ax for ax in range(3) if ax != fixed]
    nu, nv = sheet.shape
    i00, u, v, outside = _sheet_grid(
        (plane.rows, plane.cols, nu, nv),
        (float(v0[p]), float(a[p]), float(b[p]), float(v0[q]), float(a[q]), float(b[q])),
    )
    flat = sheet.reshape(-1)
    step_u = 1 if nu > 1 else 0
    step_v = 1 if nv > 1 else 0
    a00 = flat[i00]
    a01 = flat[i00 + step_v]
    top = a00 + (a01 - a00) * v
    a10 = flat[i00 + step_u * nv]
    a11 = flat[i00 + step_u * nv + step_v]
    bottom = a10 + (a11 - a10) * v
    out = top + (bottom - top) * u
    if outside.any():
        out[outside] = fill
    return np.asarray(out, dtype=np.float32)


def _trilinear(data: np.ndarray, k: np.ndarray, r: np.ndarray, c: np.ndarray, fill: float) -> np.ndarray:
    """Trilinear samples of ``data`` at voxel coordinates (flat float arrays)."""
    nk, nr, nc = data.shape
    inside = (k >= -0.5) & (k <= nk - 0.5) & (r >= -0.5) & (r <= nr - 0.5) & (c >= -0.5) & (c <= nc - 0.5)
    out = np.full(k.shape, fill, dtype=np.float32)
    if not inside.any():
        return out
    k, r, c = (np.clip(x[inside], 0, n - 1) for x, n in ((k, nk), (r, nr), (c, nc)))
    k0 = np.minimum(np.floor(k).astype(np.intp), max(nk - 2, 0))
    r0 = np.minimum(np.floor(r).astype(np.intp), max(nr - 2, 0))
    c0 = np.minimum(np.floor(c).astype(np.intp), max(nc - 2, 0))
    wk, wr, wc = (k - k0).astype(np.float32), (r - r0).astype(np.float32), (c - c0).astype(np.float32)
    k1, r1, c1 = np.minimum(k0 + 1, nk - 1), np.minimum(r0 + 1, nr - 1), np.minimum(c0 + 1, nc - 1)
    flat = data.reshape(-1)

    def at(kk: np.ndarray, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        return np.asarray(flat[(kk * nr + rr) * nc + cc], dtype=np.float32)

    c00 = at(k0, r0, c0) * (1 - wc) + at(k0, r0, c1) * wc
    c01 = at(k0, r1, c0) * (1 - wc) + at(k0, r1, c1) * wc
    c10 = at(k1, r0, c0) * (1 - wc) + at(k1, r0, c1) * wc
    c11 = at(k1, r1, c0) * (1 - wc) + at(k1, r1, c1) * wc
    c0_ = c00 * (1 - wr) + c01 * wr
    c1_ = c10 * (1 - wr) + c11 * wr
    out[inside] = c0_ * (1 - wk) + c1_ * wk
    return out


def _sample_general(
    data: np.ndarray,
    v0: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    nrm: np.ndarray,
    slab_mm: float,
    mode: str,
    fill: float,
    plane: Plane,
    spacing: tuple[float, float, float],
) -> np.ndarray:
    """Any plane: trilinear samples; a slab samples parallel planes one voxel apart and reduces them."""
    offsets = [0.0]
    if slab_mm > 0:
        step = min(spacing)
        count = max(1, int(math.floor(slab_mm / step + 1e-6)) + 1)
        offsets = [(m - (count - 1) / 2) * step for m in range(count)]
    result: np.ndarray | None = None
    for off in offsets:
        vals = _thin_oblique(data, v0 + off * nrm, a, b, fill, plane)
        if result is None:
            result = vals
        elif mode == "mip":
            np.maximum(result, vals, out=result)
        elif mode == "minip":
            np.minimum(result, vals, out=result)
        else:
            result += vals
    assert result is not None
    if mode == "avg" and len(offsets) > 1:
        result /= len(offsets)
    return result


def _thin_oblique(
    data: np.ndarray, v0: np.ndarray, a: np.ndarray, b: np.ndarray, fill: float, plane: Plane
) -> np.ndarray:
    """One oblique plane. When one voxel axis follows the columns alone (the axial or coronal plane of a
    gantry-tilted stack: x is the voxel column), each output row is a bilinear blend of 4 voxel lines
    resampled along that axis; otherwise full trilinear sampling."""
    for per_col, per_row, transpose in ((b, a, False), (a, b, True)):
        x = _axis_map(per_col)
        scale = max(1.0, float(np.abs(per_row).max()))
        if x is None or abs(per_row[x]) > _EPS * scale:
            continue
        n_lines = plane.cols if transpose else plane.rows
        n_along = plane.rows if transpose else plane.cols
        p, q = [ax for ax in range(3) if ax != x]
        t = np.arange(n_lines, dtype=np.float64)
        u, v = v0[p] + t * per_row[p], v0[q] + t * per_row[q]
        moved = np.moveaxis(data, (p, q, x), (0, 1, 2))
        nu, nv = moved.shape[0], moved.shape[1]
        inside = (u >= -0.5) & (u <= nu - 0.5) & (v >= -0.5) & (v <= nv - 0.5)
        uc, vc = np.clip(u, 0, nu - 1), np.clip(v, 0, nv - 1)
        u0 = np.minimum(uc.astype(np.intp), max(nu - 2, 0))
        w0 = np.minimum(vc.astype(np.intp), max(nv - 2, 0))
        wu = (uc - u0).astype(np.float32)[:, None]
        wv = (vc - w0).astype(np.float32)[:, None]
        u1, w1 = np.minimum(u0 + 1, nu - 1), np.minimum(w0 + 1, nv - 1)
        top = moved[u0, w0].astype(np.float32) * (1 - wv) + moved[u0, w1] * wv
        bottom = moved[u1, w0].astype(np.float32) * (1 - wv) + moved[u1, w1] * wv
        lines = top * (1 - wu) + bottom * wu
        lines[~inside] = fill
        along = v0[x] + np.arange(n_along, dtype=np.float64) * per_col[x]
        out = _interp_axis(lines, along, 1, fill)
        return np.ascontiguousarray(out.T) if transpose else out
    grid_i, grid_j = np.meshgrid(np.arange(plane.rows), np.arange(plane.cols), indexing="ij")
    ii, jj = grid_i.ravel().astype(np.float64), grid_j.ravel().astype(np.float64)
    k, r, c = (v0[ax] + ii * a[ax] + jj * b[ax] for ax in range(3))
    return _trilinear(data, k, r, c, fill).reshape(plane.rows, plane.cols)


# ----------------------------------------------------------------------------------- crosshair, lines


def crosshair_pixels(
    planes: dict[str, Plane], point: Sequence[float] | np.ndarray
) -> dict[str, tuple[float, float]]:
    """Where the shared crosshair point falls in each pane: ``{kind: (row, col)}``."""
    return {name: plane.pixel(point)[:2] for name, plane in planes.items()}


def _clip_interval(
    t0: float, t1: float, p: np.ndarray, d: np.ndarray, plane: Plane
) -> tuple[float, float] | None:
    """Clip the 3-D line ``p + t d`` (t in [t0, t1]) to ``plane``'s rectangle (half a pixel margin)."""
    for axis, size, sp in (
        (plane.row_dir, plane.cols, plane.spacing[1]),
        (plane.col_dir, plane.rows, plane.spacing[0]),
    ):
        lo, hi = -0.5 * sp, (size - 0.5) * sp
        x0 = float((p - plane.origin) @ axis)
        dx = float(d @ axis)
        if abs(dx) < 1e-12:
            if not lo <= x0 <= hi:
                return None
            continue
        ta, tb = (lo - x0) / dx, (hi - x0) / dx
        if ta > tb:
            ta, tb = tb, ta
        t0, t1 = max(t0, ta), min(t1, tb)
        if t1 < t0:
            return None
    return t0, t1


def reference_line(
    target: Plane, other: Plane, *, clip_to_other: bool = True
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The segment where ``other`` cuts ``target``, in ``target``'s (row, col) pixels, or None.

    None when the planes are parallel or the cut misses ``target`` (or ``other``'s own extent when
    ``clip_to_other``). Only meaningful for planes in one Frame of Reference: check that first.
    """
    n1, n2 = target.normal, other.normal
    d = np.cross(n1, n2)
    if float(np.linalg.norm(d)) < 1e-6:
        return None
    d = d / np.linalg.norm(d)
    # a point on both planes: solve n1·p = n1·o1, n2·p = n2·o2, d·p = 0
    m = np.vstack([n1, n2, d])
    p = np.linalg.solve(m, np.array([n1 @ target.origin, n2 @ other.origin, 0.0]))
    span = 1e9
    interval = _clip_interval(-span, span, p, d, target)
    if interval is not None and clip_to_other:
        interval = _clip_interval(interval[0], interval[1], p, d, other)
    if interval is None:
        return None
    a, b = p + interval[0] * d, p + interval[1] * d
    ra, ca, _ = target.pixel(a)
    rb, cb, _ = target.pixel(b)
    return (ra, ca), (rb, cb)


def nearest_slice(
    positions: Sequence[Sequence[float]] | np.ndarray,
    normal: Sequence[float],
    point: Sequence[float] | np.ndarray,
    offset_mm: float = 0.0,
) -> tuple[int, float]:
    """The slice of another series nearest to ``point`` along that series' ``normal``.

    Args:
        positions: ImagePositionPatient of each slice, in display order.
        normal: That series' slice normal.
        point: The position to match (e.g. the crosshair, or the shown slice's position).
        offset_mm: A user-locked offset along the normal (series in different Frames of Reference).

    Returns:
        (index, distance in mm between the chosen slice and the point along the normal).
    """
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    target = float(np.asarray(point, dtype=np.float64) @ n) + offset_mm
    depth = np.asarray(positions, dtype=np.float64) @ n
    i = int(np.argmin(np.abs(depth - target)))
    return i, float(depth[i] - target)


def length_mm(plane: Plane, p1: tuple[float, float], p2: tuple[float, float]) -> float:
    """Length in mm between two (row, col) pixel positions of ``plane``."""
    return float(np.linalg.norm(plane.patient(*p1) - plane.patient(*p2)))
