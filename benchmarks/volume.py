"""[volume] Building a CT volume and reformatting a plane after a crosshair move.

Input: a 140-slice 512² CT series tiled from the real GE head slices (``inputs.ct_set``; 40 slices in
quick mode). Ours is :func:`tui_dicom.core.volume.build_volume` (headers, sort along the normal,
checks, decode, HU) and :func:`~tui_dicom.core.volume.sample_plane` of a sagittal plane through a new
crosshair point (the stack is oblique, so the plane is resampled through the affine). The plain-numpy
references, measured in the same run: ``pydicom.dcmread`` of every file, sort by position,
``np.stack`` of ``pixel_array * slope + intercept``; and for the plane, nearest-neighbour fancy
indexing of the same output grid (what the simplest resampler costs).
"""

from __future__ import annotations

import numpy as np

from benchmarks import inputs
from benchmarks.common import Context, Missing, Row, at_most, interleaved, median, ratio, timed

GOAL_PLANE_MS = 30.0
GOAL_BUILD_RATIO = 1.5


def _plain_numpy_volume(paths: list[str]) -> np.ndarray:
    import pydicom

    datasets = [pydicom.dcmread(p) for p in paths]
    normal = np.cross(
        np.asarray(datasets[0].ImageOrientationPatient[:3], float),
        np.asarray(datasets[0].ImageOrientationPatient[3:], float),
    )
    datasets.sort(key=lambda ds: float(np.asarray(ds.ImagePositionPatient, float) @ normal))
    return np.stack(
        [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in datasets]
    ).astype(np.int16)


def run(ctx: Context) -> list[Row]:
    """Measure the group; returns its rows."""
    n = ctx.size(140, 40)
    name_build = f"[volume] build a {n}-slice 512² CT volume"
    name_plane = f"[volume] sagittal plane after a crosshair move, {n}-slice 512² CT"
    try:
        root = inputs.ct_set(ctx.work, n, n, log=ctx.log)
    except Missing as exc:
        return [
            Row(name_build, "ms", None, "plain numpy", None, None, "—", False, str(exc)),
            Row(
                name_plane,
                "ms",
                None,
                "plain numpy",
                None,
                None,
                f"≤ {GOAL_PLANE_MS:.0f} ms",
                False,
                str(exc),
            ),
        ]
    from tui_dicom.core.dicom.source import FileRef
    from tui_dicom.core.volume import build_volume, sample_plane, standard_plane

    paths = sorted(str(p) for p in (root / "DATA").rglob("I*"))
    refs = [(FileRef(p), 0) for p in paths]
    built = interleaved(
        {
            "ours": lambda: timed(lambda: build_volume(refs)),
            "ref": lambda: timed(lambda: _plain_numpy_volume(paths)),
        },
        ctx.runs,
    )
    volume = build_volume(refs)
    centre = volume.centre()
    moves = [centre + np.array([dx, 0.0, 0.0]) for dx in np.linspace(-40, 40, 9)]
    planes = [standard_plane(volume, "sagittal", p) for p in moves]
    inv, origin = volume.inverse, volume.origin
    shape = np.array(volume.shape)

    def nearest(plane: object) -> np.ndarray:
        pl = plane  # the same output grid, nearest voxel, no bounds handling beyond a clip
        rr, cc = np.mgrid[0 : pl.rows, 0 : pl.cols]  # type: ignore[attr-defined]
        pts = (
            pl.origin  # type: ignore[attr-defined]
            + cc[..., None] * pl.spacing[1] * pl.row_dir  # type: ignore[attr-defined]
            + rr[..., None] * pl.spacing[0] * pl.col_dir  # type: ignore[attr-defined]
        )
        vox = np.clip(np.rint((pts - origin) @ inv.T).astype(np.intp), 0, shape - 1)
        return np.asarray(volume.data[vox[..., 0], vox[..., 1], vox[..., 2]])

    counter = {"ours": 0, "ref": 0}

    def ours_plane() -> float:
        counter["ours"] += 1
        return timed(lambda: sample_plane(volume, planes[counter["ours"] % len(planes)]))

    def ref_plane() -> float:
        counter["ref"] += 1
        return timed(lambda: nearest(planes[counter["ref"] % len(planes)]))

    plane_runs = interleaved({"ours": ours_plane, "ref": ref_plane}, max(ctx.runs, 9))
    bo, br = median(built["ours"]), median(built["ref"])
    po, pr = median(plane_runs["ours"]), median(plane_runs["ref"])
    bo, br, po, pr = (None if v is None else v * 1000 for v in (bo, br, po, pr))
    build_ratio = ratio(bo, br)
    return [
        Row(
            name_build,
            "ms",
            bo,
            "plain numpy: pydicom dcmread + sort + np.stack of HU",
            br,
            build_ratio,
            f"≤ {GOAL_BUILD_RATIO}× the plain numpy stack",
            build_ratio is not None and build_ratio <= GOAL_BUILD_RATIO,
        ),
        Row(
            name_plane,
            "ms",
            po,
            "plain numpy: nearest-voxel fancy indexing of the same grid",
            pr,
            ratio(po, pr),
            f"≤ {GOAL_PLANE_MS:.0f} ms",
            at_most(po, GOAL_PLANE_MS),
        ),
    ]
