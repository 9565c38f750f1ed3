"""Volumes and planes on synthetic stacks with known answers (no files: geometry and a fake decoder).

The voxels hold a linear function of the patient position, ``f(P) = g·P + h``: trilinear interpolation
reproduces a linear function exactly, through any shear, irregular spacing or oblique plane, so every
sampled pixel has a known value ``f(plane.patient(row, col))``.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pytest

from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.imaging.pixels import Frame
from tui_dicom.core.volume import (
    Cancelled,
    NotAVolume,
    Plane,
    SliceGeometry,
    Volume,
    crosshair_pixels,
    length_mm,
    load_volume,
    nearest_slice,
    plan_volume,
    plane_at,
    reference_line,
    sample_plane,
    standard_plane,
)

GRAD = np.array([0.7, -1.3, 2.1])
OFFSET = 5.0
ROWS, COLS = 24, 20
SPACING = (1.5, 1.2)


def f(points: np.ndarray) -> np.ndarray:
    """The known field: linear in patient position."""
    return np.asarray(np.asarray(points, dtype=np.float64) @ GRAD + OFFSET)


def rotation(axis: tuple[float, float, float], degrees: float) -> np.ndarray:
    """Rotation matrix (Rodrigues)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    t = math.radians(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.asarray(np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * (k @ k))


def stack(
    positions: list[np.ndarray],
    row_dir: np.ndarray,
    col_dir: np.ndarray,
    *,
    numbers: list[int] | None = None,
    image_type: str = "ORIGINAL\\PRIMARY\\AXIAL",
) -> list[SliceGeometry]:
    """Slice geometries of a synthetic stack (files are names only: the decoder below makes the pixels)."""
    ori = tuple(float(v) for v in (*row_dir, *col_dir))
    return [
        SliceGeometry(
            ref=FileRef(f"slice{i:03d}"),
            frame=0,
            position=tuple(float(v) for v in p),
            orientation=ori,
            spacing=SPACING,
            rows=ROWS,
            columns=COLS,
            instance_number=numbers[i] if numbers else i + 1,
            image_type=image_type,
            frame_of_reference="1.2.3",
        )
        for i, p in enumerate(positions)
    ]


def decoder_for(geoms: list[SliceGeometry]) -> Any:
    """A decoder that returns the field ``f`` sampled at each pixel of the slice."""
    by_ref = {g.ref: g for g in geoms}

    def decode(ref: FileRef, frame: int, ds: Any) -> Frame:
        g = by_ref[ref]
        assert g.position is not None and g.orientation is not None
        plane = Plane.from_image(g.position, g.orientation, SPACING, ROWS, COLS)
        rr, cc = np.mgrid[0:ROWS, 0:COLS]
        pts = (
            plane.origin
            + cc[..., None] * SPACING[1] * plane.row_dir
            + rr[..., None] * SPACING[0] * plane.col_dir
        )
        values = f(pts).astype(np.float32)
        return Frame(stored=values, photometric="MONOCHROME2", bits_stored=32, is_float=True, units="HU")

    return decode


def build(geoms: list[SliceGeometry], **kw: Any) -> Volume:
    plan = plan_volume(geoms, budget_bytes=kw.pop("budget_bytes", None))
    return load_volume(plan, decoder=decoder_for(geoms), **kw)


def check_plane(vol: Volume, plane: Plane, *, atol: float = 1e-3) -> int:
    """Every pixel inside the volume equals the field at its patient position; returns how many."""
    values = sample_plane(vol, plane, fill=np.nan)
    rr, cc = np.mgrid[0 : plane.rows, 0 : plane.cols]
    pts = (
        plane.origin
        + cc[..., None] * plane.spacing[1] * plane.row_dir
        + rr[..., None] * plane.spacing[0] * plane.col_dir
    )
    vox = vol.to_voxel(pts)
    within = np.all((vox >= -1e-6) & (vox <= np.array(vol.shape) - 1 + 1e-6), axis=-1)
    inside = np.isfinite(values) & within  # half a voxel beyond the centres the edge value is held
    assert np.all(np.isfinite(values[within])), "inside the volume every pixel is sampled"
    assert inside.sum() > 0.1 * values.size, "the plane should cut the volume"
    np.testing.assert_allclose(
        values[inside], f(pts)[inside], atol=atol * max(1.0, float(np.abs(f(pts)).max()))
    )
    return int(inside.sum())


def regular_positions(origin: np.ndarray, step: np.ndarray, n: int) -> list[np.ndarray]:
    return [origin + i * step for i in range(n)]


# --------------------------------------------------------------------------------------------- stacks


def test_axial_stack_standard_planes_and_orientation() -> None:
    geoms = stack(
        regular_positions(np.array([-10.0, -20.0, 30.0]), np.array([0, 0, 2.0]), 12),
        np.array([1.0, 0, 0]),
        np.array([0, 1.0, 0]),
    )
    vol = build(geoms)
    assert vol.shape == (12, ROWS, COLS)
    assert vol.spacing == pytest.approx((2.0, 1.5, 1.2))
    assert not vol.notes
    for kind in ("axial", "coronal", "sagittal"):
        plane = standard_plane(vol, kind, vol.centre())
        assert plane.spacing == (1.2, 1.2)  # square pixels of the smallest in-plane spacing
        check_plane(vol, plane)
    # radiological orientation
    assert standard_plane(vol, "axial", vol.centre()).labels() == {
        "left": "R",
        "right": "L",
        "top": "A",
        "bottom": "P",
    }
    assert standard_plane(vol, "coronal", vol.centre()).labels() == {
        "left": "R",
        "right": "L",
        "top": "H",
        "bottom": "F",
    }
    assert standard_plane(vol, "sagittal", vol.centre()).labels() == {
        "left": "A",
        "right": "P",
        "top": "H",
        "bottom": "F",
    }


def test_oblique_stack_negative_spacing_any_order() -> None:
    rot = rotation((0.3, 1.0, 0.4), 27)
    row_dir, col_dir = rot @ np.array([1.0, 0, 0]), rot @ np.array([0, 1.0, 0])
    normal = np.cross(row_dir, col_dir)
    # positions step *against* the normal (negative spacing) and arrive shuffled
    positions = regular_positions(np.array([5.0, -3.0, 12.0]), -2.5 * normal, 10)
    order = [3, 0, 9, 1, 7, 2, 8, 4, 6, 5]
    geoms = stack([positions[i] for i in order], row_dir, col_dir)
    vol = build(geoms)
    assert vol.shape[0] == 10
    assert vol.spacing[0] == pytest.approx(2.5)
    for kind in ("axial", "coronal", "sagittal"):
        check_plane(vol, standard_plane(vol, kind, vol.centre()))
    # and an original slice's own plane gives back that slice
    g = geoms[4]
    assert g.position is not None and g.orientation is not None
    check_plane(vol, Plane.from_image(g.position, g.orientation, SPACING, ROWS, COLS))


def test_gantry_tilt_is_a_sheared_volume_resampled_in_patient_space() -> None:
    tilt = 20.0
    col_dir = rotation((1, 0, 0), -tilt) @ np.array([0, 1.0, 0])  # the image plane tilts ...
    positions = regular_positions(
        np.array([-12.0, -15.0, 0.0]), np.array([0, 0, 3.0]), 9
    )  # ... the table moves along z
    vol = build(stack(positions, np.array([1.0, 0, 0]), col_dir))
    assert any("tilt 20.0°" in n for n in vol.notes)
    m = vol.matrix
    assert abs(float(m[:, 0] @ np.cross(m[:, 2], m[:, 1]))) > 0  # sheared: slice step not along the normal
    for kind in ("axial", "coronal", "sagittal"):
        check_plane(vol, standard_plane(vol, kind, vol.centre()))


def test_irregular_spacing_is_resampled_and_flagged() -> None:
    z = [0.0, 1.0, 2.0, 3.0, 5.5, 8.0, 10.5, 13.0, 14.0, 15.0]
    positions = [np.array([0.0, 0.0, v]) for v in z]
    vol = build(stack(positions, np.array([1.0, 0, 0]), np.array([0, 1.0, 0])))
    assert any("irregular spacing" in n for n in vol.notes)
    assert vol.shape[0] == 16  # 1 mm steps over 15 mm
    assert vol.spacing[0] == pytest.approx(1.0)
    for kind in ("coronal", "sagittal", "axial"):
        check_plane(vol, standard_plane(vol, kind, vol.centre()))


def test_missing_slice_is_refused_with_the_gap() -> None:
    z = [0.0, 2.0, 4.0, 8.0, 10.0, 12.0]  # 6.0 missing
    geoms = stack(
        [np.array([0.0, 0.0, v]) for v in z],
        np.array([1.0, 0, 0]),
        np.array([0, 1.0, 0]),
        numbers=[1, 2, 3, 5, 6, 7],
    )
    with pytest.raises(
        NotAVolume, match=r"missing: a 4\.00 mm gap after slice 3 where the others are 2\.00 mm"
    ):
        plan_volume(geoms)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("one", "1 slice: a volume needs at least 3"),
        ("localizer", "localizer"),
        ("mixed", "mixed orientations"),
        ("duplicates", r"6 images at 5 positions: several time points"),
        ("sizes", "different sizes"),
        ("nopos", "no ImagePositionPatient"),
    ],
)
def test_not_a_volume_says_why(case: str, reason: str) -> None:
    r, c = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    pos = regular_positions(np.zeros(3), np.array([0, 0, 2.0]), 5)
    geoms = stack(pos, r, c)
    if case == "one":
        geoms = geoms[:1]
    elif case == "localizer":
        geoms = stack(pos, r, c, image_type="ORIGINAL\\PRIMARY\\LOCALIZER")
    elif case == "mixed":
        geoms = geoms[:3] + stack(pos[:2], np.array([0, 1.0, 0]), np.array([0, 0, -1.0]))
    elif case == "duplicates":
        geoms = geoms + stack(pos[:1], r, c)
    elif case == "sizes":
        g = geoms[0]
        geoms = [SliceGeometry(g.ref, 0, g.position, g.orientation, g.spacing, 10, 10), *geoms[1:]]
    elif case == "nopos":
        g = geoms[0]
        geoms = [SliceGeometry(g.ref, 0, None, g.orientation, g.spacing, ROWS, COLS), *geoms[1:]]
    with pytest.raises(NotAVolume, match=reason):
        plan_volume(geoms)


def test_localizers_inside_an_axial_series_are_left_out() -> None:
    r, c = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    axial = stack(regular_positions(np.zeros(3), np.array([0, 0, 2.0]), 5), r, c)
    scout = stack(
        [np.array([0.0, 50, 0])],
        np.array([0, 1.0, 0]),
        np.array([0, 0, -1.0]),
        image_type="ORIGINAL\\PRIMARY\\LOCALIZER",
    )
    plan = plan_volume(axial + scout)
    assert plan.shape[0] == 5 and any("localizer" in n for n in plan.notes)


def test_memory_budget_downsamples_then_refuses() -> None:
    geoms = stack(
        regular_positions(np.zeros(3), np.array([0, 0, 2.0]), 10),
        np.array([1.0, 0, 0]),
        np.array([0, 1.0, 0]),
    )
    full = 10 * ROWS * COLS * 2
    plan = plan_volume(geoms, budget_bytes=full // 3)
    assert plan.downsample == 2 and plan.shape == (10, ROWS // 2, COLS // 2)
    assert any("downsampled 1/2" in n for n in plan.notes)
    vol = load_volume(plan, decoder=decoder_for(geoms))
    assert vol.in_plane_spacing == pytest.approx(2 * 1.2)
    check_plane(vol, standard_plane(vol, "sagittal", vol.centre()))  # block means of a linear field are exact
    with pytest.raises(NotAVolume, match="more than --cache-mb"):
        plan_volume(geoms, budget_bytes=full // 100)


def test_cancel_and_progress() -> None:
    geoms = stack(
        regular_positions(np.zeros(3), np.array([0, 0, 2.0]), 8), np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    )
    plan = plan_volume(geoms)
    seen: list[tuple[int, int]] = []
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 3:
            cancel.set()

    from tui_dicom.core.volume import empty_volume

    vol = empty_volume(plan)
    with pytest.raises(Cancelled):
        load_volume(plan, decoder=decoder_for(geoms), cancel=cancel, progress=progress, volume=vol)
    assert seen == [(1, 8), (2, 8), (3, 8)]
    assert vol.loaded == 3 and not vol.complete


# --------------------------------------------------------------------------------- crosshair, slab, lines


def axial_volume() -> Volume:
    return build(
        stack(
            regular_positions(np.array([-10.0, -20.0, 30.0]), np.array([0, 0, 2.0]), 12),
            np.array([1.0, 0, 0]),
            np.array([0, 1.0, 0]),
        )
    )


def test_crosshair_is_one_patient_point_in_all_three_panes() -> None:
    vol = build(
        stack(
            regular_positions(np.array([1.0, 2.0, 3.0]), np.array([0.3, -0.2, 2.0]), 10),
            np.array([1.0, 0, 0]),
            np.array([0, 1.0, 0]),
        )
    )
    point = vol.centre() + np.array([1.7, -2.3, 3.1])
    planes = {k: standard_plane(vol, k, point) for k in ("axial", "coronal", "sagittal")}
    pixels = crosshair_pixels(planes, point)
    for kind, (row, col) in pixels.items():
        np.testing.assert_allclose(planes[kind].patient(row, col), point, atol=1e-9)
        assert planes[kind].pixel(point)[2] == pytest.approx(0.0, abs=1e-9)
    # moving the crosshair in the axial pane moves the other two planes, and not the axial grid
    moved = planes["axial"].patient(pixels["axial"][0] + 4, pixels["axial"][1] - 3)
    again = {k: standard_plane(vol, k, moved) for k in planes}
    np.testing.assert_allclose(again["axial"].origin, planes["axial"].origin)
    for kind in ("coronal", "sagittal"):
        assert again[kind].pixel(moved)[2] == pytest.approx(0.0, abs=1e-9)


def test_length_on_a_sagittal_plane_equals_the_volume_distance() -> None:
    vol = axial_volume()
    a_vox, b_vox = np.array([2.0, 3.0, 7.0]), np.array([9.0, 17.0, 7.0])  # same column: one sagittal plane
    a, b = vol.to_patient(a_vox), vol.to_patient(b_vox)
    plane = standard_plane(vol, "sagittal", a)
    pa, pb = plane.pixel(a), plane.pixel(b)
    assert pb[2] == pytest.approx(0.0, abs=1e-9)
    expected = math.dist(a, b)
    assert expected == pytest.approx(math.hypot(7 * 2.0, 14 * 1.5))
    assert length_mm(plane, pa[:2], pb[:2]) == pytest.approx(expected)
    # the same with the plane's square pixel spacing, as the viewer's measurement tool does
    from tui_dicom.core.imaging.geometry import Spacing, length

    assert length(pa[:2], pb[:2], Spacing(*plane.spacing, "PixelSpacing")) == pytest.approx(expected)


def test_thick_slab_against_numpy() -> None:
    vol = axial_volume()
    rng = np.random.default_rng(3)
    vol.data = rng.normal(0, 100, vol.shape).astype(np.float32)
    k = 6
    point = vol.to_patient(np.array([k, 0.0, 0.0]))
    plane = standard_plane(vol, "axial", point)
    # 6 mm slab on 2 mm slices: slices k-1, k, k+1 (their centres within ±3 mm)
    block = vol.data[k - 1 : k + 2]
    for mode, ref in (("mip", block.max(0)), ("minip", block.min(0)), ("avg", block.mean(0))):
        got = sample_plane(vol, plane, slab_mm=6.0, mode=mode)
        np.testing.assert_allclose(
            got[: ROWS * 5 // 4 : 5 // 4 or 1][:0], ref[:0]
        )  # shapes differ: compare resampled
        # the axial grid has 1.2 mm pixels over 1.5 mm rows: compare on pixel centres that coincide
        rows = np.arange(0, ROWS, 4)  # 6 mm apart: rows 0,4,8,... at pixels 0,5,10,...
        np.testing.assert_allclose(got[rows * 5 // 4][:, :COLS], ref[rows][:, :COLS], rtol=1e-5, atol=1e-3)
    thin = sample_plane(vol, plane)
    np.testing.assert_allclose(thin[::5][:, :COLS], vol.data[k][::4][:, :COLS], atol=1e-3)


def test_slab_on_an_oblique_plane_uses_the_general_sampler() -> None:
    vol = axial_volume()
    c = vol.centre()
    plane = Plane(
        c - 10 * np.array([1, 0, 0.0]),
        np.array([1.0, 0, 0]),
        rotation((1, 0, 0), 30) @ np.array([0, 1.0, 0]),
        (1.0, 1.0),
        10,
        10,
    )
    thin = sample_plane(vol, plane)
    avg = sample_plane(vol, plane, slab_mm=4.0, mode="avg")
    mip = sample_plane(vol, plane, slab_mm=4.0, mode="mip")
    inside = np.isfinite(sample_plane(vol, plane, fill=np.nan))
    np.testing.assert_allclose(avg[inside], thin[inside], atol=1e-2)  # a linear field averages to its centre
    assert np.all(mip[inside] >= thin[inside] - 1e-3) and np.any(mip[inside] > thin[inside] + 0.1)


def test_reference_lines() -> None:
    vol = axial_volume()
    point = vol.centre()
    ax, sag, cor = (standard_plane(vol, k, point) for k in ("axial", "sagittal", "coronal"))
    line = reference_line(sag, ax)
    assert line is not None
    (r0, c0), (r1, c1) = line
    row_of_point = sag.pixel(point)[0]
    assert r0 == pytest.approx(row_of_point) and r1 == pytest.approx(
        row_of_point
    )  # horizontal at the axial's z
    assert abs(c1 - c0) > 0.8 * sag.cols
    vline = reference_line(ax, cor)
    assert vline is not None and vline[0][0] == pytest.approx(ax.pixel(point)[0])
    assert reference_line(ax, ax.moved_to(point + 5)) is None  # parallel planes never cut
    # an original slice of another series, clipped to its own extent
    # (6 pixels of 1 mm, from their outer edges: 6 mm long)
    small = Plane.from_image(point + np.array([0, -3, 3.0]), (0, 1, 0, 0, 0, -1), (1.0, 1.0), 6, 6)
    cut = reference_line(ax, small)
    assert cut is not None and math.dist(ax.patient(*cut[0]), ax.patient(*cut[1])) == pytest.approx(6.0)
    assert reference_line(ax, small.moved_to(point + np.array([5.0, 0, 0]))) is not None
    assert reference_line(ax, small.moved_to(point + np.array([50.0, 0, 0]))) is None  # beyond the axial pane
    assert (
        reference_line(
            ax, Plane.from_image(point + np.array([0, -3, 30.0]), (0, 1, 0, 0, 0, -1), (1.0, 1.0), 6, 6)
        )
        is None
    )


def test_nearest_slice_sync() -> None:
    positions = [(0.0, 0.0, 2.5 * i) for i in range(10)]
    index, distance = nearest_slice(positions, (0, 0, 1), (40.0, 7.0, 11.0))
    assert index == 4 and distance == pytest.approx(-1.0)
    assert nearest_slice(positions, (0, 0, -1), (0.0, 0.0, 20.4))[0] == 8  # either normal sign
    assert nearest_slice(positions, (0, 0, 1), (0.0, 0.0, 11.0), offset_mm=5.0)[0] == 6


def test_plane_at_export_coordinate() -> None:
    vol = axial_volume()
    for kind, axis in (("sagittal", 0), ("coronal", 1), ("axial", 2)):
        at = float(vol.centre()[axis]) + 3.25
        plane = plane_at(vol, kind, at)
        assert plane.origin[axis] == pytest.approx(at)
        check_plane(vol, plane)


def test_oblique_plane_matches_scipy_map_coordinates() -> None:
    """An independent trilinear resampler (scipy.ndimage, order 1) on random voxels, sheared volume."""
    ndimage = pytest.importorskip("scipy.ndimage")
    col_dir = rotation((1, 0, 0), -15) @ np.array([0, 1.0, 0])
    vol = build(
        stack(regular_positions(np.zeros(3), np.array([0, 0, 2.0]), 12), np.array([1.0, 0, 0]), col_dir)
    )
    vol.data = np.random.default_rng(7).normal(0, 50, vol.shape).astype(np.float32)
    c = vol.centre()
    plane = Plane(
        c - np.array([8.0, 8.0, 0.0]),
        rotation((0, 0, 1), 20) @ np.array([1.0, 0, 0]),
        rotation((1, 1, 0), 35) @ np.array([0, 1.0, 0]),
        (0.7, 0.7),
        24,
        24,
    )
    ours = sample_plane(vol, plane, fill=np.nan)
    rr, cc = np.mgrid[0 : plane.rows, 0 : plane.cols]
    pts = plane.origin + cc[..., None] * 0.7 * plane.row_dir + rr[..., None] * 0.7 * plane.col_dir
    vox = vol.to_voxel(pts)
    within = np.all((vox >= 0) & (vox <= np.array(vol.shape) - 1), axis=-1)
    assert within.sum() > 100
    ref = ndimage.map_coordinates(vol.data, np.moveaxis(vox, -1, 0), order=1, mode="nearest")
    np.testing.assert_allclose(ours[within], ref[within], atol=1e-3)
