"""``tui-dicom export SERIES --plane ... --at MM``: the PNG's pixels are where its geometry chunks say.

A small CT series is written at test time (HU = a linear function of the patient position, slices in
descending z, non-square pixels), so every exported pixel has a known value at the position computed
from the PNG's own ``tui-dicom:*`` text chunks. The GE head (tilted, irregular) checks real data.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tui_dicom.cli as cli

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("TUI_DICOM_TEST_DATA") or REPO.parent / "shared" / "data")
GRAD = np.array([3.0, -2.0, 5.0])
ROWS, COLS, SPACING, STEP, N = 16, 20, (0.8, 0.6), 2.0, 10


def hu(points: np.ndarray) -> np.ndarray:
    return np.asarray(points @ GRAD + 10.0)


def write_series(folder: Path, *, series_uid: str = "1.2.826.0.1.3680043.8.498.1", n: int = N) -> list[Path]:
    """An axial CT series (files in descending z) whose HU are ``hu(position)``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        z = 40.0 - i * STEP
        origin = np.array([-6.0, -4.0, z])
        rr, cc = np.mgrid[0:ROWS, 0:COLS]
        pts = (
            origin
            + cc[..., None] * SPACING[1] * np.array([1.0, 0, 0])
            + rr[..., None] * SPACING[0] * np.array([0, 1.0, 0])
        )
        stored = np.rint(hu(pts) + 1024).astype(np.int16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.Modality = "Test^Plane", "P1", "CT"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.9", series_uid
        ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.7"
        ds.SeriesNumber, ds.InstanceNumber = 1, i + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [float(v) for v in origin]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = list(SPACING)
        ds.SliceThickness = 5  # not the spacing: must be ignored
        ds.Rows, ds.Columns = ROWS, COLS
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = stored.tobytes()
        path = folder / f"IM{i:04d}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def read_png(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    with Image.open(path) as im:
        pixels = np.asarray(im)
        chunks = {
            k: np.array([float(v) for v in str(t).split("\\")])
            for k, t in im.text.items()
            if k != "tui-dicom:plane" and "frame_of" not in k
        }
    return pixels, chunks


@pytest.mark.parametrize(
    ("plane", "axis", "at", "row_dir", "col_dir"),
    [
        ("sagittal", 0, -1.3, (0, 1, 0), (0, 0, -1)),
        ("coronal", 1, 2.5, (1, 0, 0), (0, 0, -1)),
        ("axial", 2, 27.0, (1, 0, 0), (0, 1, 0)),
    ],
)
def test_plane_pixels_sit_where_the_chunks_say(
    tmp_path: Path, plane: str, axis: int, at: float, row_dir: tuple[int, ...], col_dir: tuple[int, ...]
) -> None:
    write_series(tmp_path / "series")
    out = tmp_path / "out.png"
    lo, hi = -300.0, 500.0
    code = cli.main(
        [
            "export",
            str(tmp_path / "series"),
            "--plane",
            plane,
            "--at",
            str(at),
            f"--window={(lo + hi) / 2},{hi - lo}",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    pixels, ch = read_png(out)
    np.testing.assert_allclose(ch["tui-dicom:row_direction"], row_dir, atol=1e-9)
    np.testing.assert_allclose(ch["tui-dicom:column_direction"], col_dir, atol=1e-9)
    assert tuple(ch["tui-dicom:spacing"]) == (0.6, 0.6)  # square pixels of the smallest in-plane spacing
    assert ch["tui-dicom:origin"][axis] == pytest.approx(at)
    rows, cols = pixels.shape
    rr, cc = np.mgrid[0:rows, 0:cols]
    pts = (
        ch["tui-dicom:origin"]
        + cc[..., None] * 0.6 * ch["tui-dicom:row_direction"]
        + rr[..., None] * 0.6 * ch["tui-dicom:column_direction"]
    )
    # inside the voxel-centre box of the series
    box_lo = np.array([-6.0, -4.0, 40.0 - (N - 1) * STEP])
    box_hi = np.array([-6.0 + (COLS - 1) * SPACING[1], -4.0 + (ROWS - 1) * SPACING[0], 40.0])
    inside = np.all((pts >= box_lo - 1e-6) & (pts <= box_hi + 1e-6), axis=-1)
    assert inside.sum() > 0.5 * inside.size
    expected = np.clip(((hu(pts) - ((lo + hi) / 2 - 0.5)) / (hi - lo - 1) + 0.5) * 255, 0, 255)
    assert np.abs(pixels[inside].astype(float) - expected[inside]).max() <= 1.5
    # the volume covers the whole picture in this orientation: both ends of every axis reach the picture
    assert pts[inside].min(axis=0)[[i for i in range(3) if i != axis]] == pytest.approx(
        box_lo[[i for i in range(3) if i != axis]], abs=0.6
    )


def test_slab_mip_and_avg(tmp_path: Path) -> None:
    write_series(tmp_path / "s")
    outs = {}
    for mode in ("mip", "avg", "minip"):
        outs[mode] = tmp_path / f"{mode}.png"
        assert (
            cli.main(
                [
                    "export",
                    str(tmp_path / "s"),
                    "--plane",
                    "axial",
                    "--at",
                    "30",
                    "--slab",
                    "8",
                    "--mode",
                    mode,
                    "--window=100,800",
                    "-o",
                    str(outs[mode]),
                ]
            )
            == 0
        )
    thin = tmp_path / "thin.png"
    assert (
        cli.main(
            [
                "export",
                str(tmp_path / "s"),
                "--plane",
                "axial",
                "--at",
                "30",
                "--window=100,800",
                "-o",
                str(thin),
            ]
        )
        == 0
    )
    mip, avg, minip, t = (read_png(p)[0].astype(int) for p in (outs["mip"], outs["avg"], outs["minip"], thin))
    # HU grow with z by 5/mm: a ±4 mm slab reaches 20 HU above and below (800 HU over 255 levels: ~6 levels)
    assert np.median(mip - t) == pytest.approx(20 * 255 / 799, abs=1.01)
    assert np.median(t - minip) == pytest.approx(20 * 255 / 799, abs=1.01)
    assert np.abs(avg - t).max() <= 1


def test_series_choice_in_a_zip(tmp_path: Path) -> None:
    a = write_series(tmp_path / "a", series_uid="1.2.3.4.1")
    b = write_series(tmp_path / "b", series_uid="1.2.3.4.2", n=4)
    archive = tmp_path / "cd.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in a + b:
            zf.write(p, f"{p.parent.name}/{p.name}")
    out = tmp_path / "z.png"
    assert cli.main(["export", str(archive), "--plane", "coronal", "--at", "0", "-o", str(out)]) == 1
    assert not out.exists()
    assert (
        cli.main(
            [
                "export",
                str(archive),
                "--series",
                "1.2.3.4.2",
                "--plane",
                "coronal",
                "--at",
                "0",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert read_png(out)[0].shape[0] == int(round(3 * STEP / 0.6)) + 1
    # a file of the series picks its series from its folder
    out2 = tmp_path / "f.png"
    assert cli.main(["export", str(a[3]), "--plane", "sagittal", "--at", "0", "-o", str(out2)]) == 0


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_series(tmp_path / "s")
    out = tmp_path / "x.png"
    assert cli.main(["export", str(tmp_path / "s"), "--plane", "axial", "--at", "99", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "z = 99 mm is outside the volume (z from 22.0 to 40.0 mm)" in err and err.count("\n") == 1
    write_series(tmp_path / "one", n=1)
    assert cli.main(["export", str(tmp_path / "one"), "--plane", "axial", "--at", "40", "-o", str(out)]) == 1
    assert "a volume needs at least 3" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "s"), "--plane", "axial", "-o", str(out)]) == 1
    assert "--at" in capsys.readouterr().err
    assert not out.exists()


def test_real_tilted_head_sagittal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = DATA / "ge_ct_head"
    if not folder.is_dir():
        pytest.skip("ge_ct_head test data is not beside the repository")
    out = tmp_path / "sag.png"
    assert (
        cli.main(
            ["export", str(folder), "--plane", "sagittal", "--at", "0", "--preset", "brain", "-o", str(out)]
        )
        == 0
    )
    assert "gantry tilt" in capsys.readouterr().err
    pixels, ch = read_png(out)
    assert ch["tui-dicom:origin"][0] == 0.0
    assert ch["tui-dicom:spacing"][0] == pytest.approx(0.488281, abs=1e-6)
    assert pixels.std() > 20  # a head, not a blank picture


def test_plane_options_need_plane(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = write_series(tmp_path / "s", n=3)
    out = tmp_path / "x.png"
    assert cli.main(["export", str(paths[0]), "--at", "3", "-o", str(out)]) == 1
    assert "need --plane" in capsys.readouterr().err
    assert not out.exists()
    assert cli.main(["export", str(paths[0]), "-o", str(out)]) == 0  # the plain export is unchanged
