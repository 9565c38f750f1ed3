"""Our displayed pixels against DCMTK's ``dcmj2pnm`` (a reference nobody here wrote).

For every image in pydicom's test files, pydicom-data and ``../shared/data``:

* grey: ``tui-dicom export --window C,W`` vs ``dcmj2pnm +Ww C W`` (C,W spanning the middle half of the
  frame's values, so both clamps and the slope are exercised), and the file's own first window vs
  ``+Wi 1`` (or its VOI LUT vs ``+Wl 1``): max absolute difference <= 1 grey level. MONOCHROME1
  included.
* colour (RGB, YBR, palette) without a window vs plain ``dcmj2pnm``: <= 2.
* multi-frame: the first, middle and last frame (``+F N``).
* JPEG-LS is rendered by ``dcml2pnm``; JPEG 2000 / HTJ2K (which DCMTK cannot decode) are transcoded to
  explicit little endian by GDCM first, and DCMTK renders that.

Each (file, frame, mode) is one test id; every exclusion is a skip with its reason (``-ra`` lists
them) and every comparison prints its file and max difference (``-s`` shows them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np
import pytest

import tui_dicom.cli as cli

if TYPE_CHECKING:
    from _pytest.mark import ParameterSet  # what pytest.param returns; pytest does not export the name
    from pydicom import Dataset

DCMJ2PNM = shutil.which("dcmj2pnm")
DCML2PNM = shutil.which("dcml2pnm")
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

JPEG_LS = {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}
J2K = {
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
}
#: files DCMTK misreads, compared with DCMTK's picture of their little-endian twin instead:
#: dcmj2pnm 3.6.7 reads 32-bit explicit big endian values byte-swapped (max 4292345870 where the
#: twin, and pydicom on both files, give 1254000)
TWINS = {"rtdose_expb.dcm": "rtdose.dcm", "rtdose_expb_1frame.dcm": "rtdose_1frame.dcm"}


def _roots() -> list[tuple[str, Path]]:
    roots = []
    try:
        import pydicom

        roots.append(("pydicom", Path(pydicom.__file__).parent / "data" / "test_files"))
    except ImportError:
        pass
    try:
        import data_store

        roots.append(("pydicom-data", Path(os.path.dirname(data_store.__file__)) / "data"))
    except ImportError:
        pass
    if SHARED.is_dir():
        roots.append(("shared", SHARED))
    return roots


def _cases() -> list[ParameterSet]:
    """(path, frame 1-based, mode) for every image found; header read only."""
    import pydicom

    cases = []
    for label, root in _roots():
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.suffix.lower() in (
                ".py",
                ".txt",
                ".md",
                ".json",
                ".gz",
                ".bz2",
                ".zip",
                ".xml",
                ".nii",
                ".bval",
                ".bvec",
            ):
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
                rows = int(ds.get("Rows") or 0)
            except Exception:  # noqa: BLE001 - not an image we can compare
                continue
            if not rows or "DirectoryRecordSequence" in ds:
                continue
            rel = f"{label}/{path.relative_to(root)}"
            try:
                nframes = max(1, int(ds.get("NumberOfFrames") or 1))
            except (TypeError, ValueError):
                nframes = 1
            frames = sorted({1, (nframes + 1) // 2, nframes})
            pi = str(ds.get("PhotometricInterpretation", "")).upper()
            grey = pi.startswith("MONOCHROME")
            modes = ["window"] if grey else ["colour"]
            if grey and "WindowCenter" in ds or _has_frame_voi(ds):
                modes.append("file")
            elif grey and "VOILUTSequence" in ds:
                modes.append("voilut")
            for frame in frames:
                for mode in modes:
                    cases.append(pytest.param(str(path), frame, mode, id=f"{rel}#{frame}:{mode}"))
    return cases


def _has_frame_voi(ds: Dataset) -> bool:
    for kw in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        seq = ds.get(kw)
        if seq and len(seq) and "FrameVOILUTSequence" in seq[0]:
            return True
    return False


def _skip(path: str, reason: str) -> NoReturn:
    """Skip, naming the file (so ``-rs`` lists every exclusion with its reason)."""
    pytest.skip(f"{_short_name(path)}: {reason}")


def _short_name(path: str) -> str:
    for label, root in _roots():
        if str(path).startswith(str(root)):
            return f"{label}/{Path(path).relative_to(root)}"
    return str(path)


def _read_pnm(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im)


def _gdcm_transcode(src: str, dst: Path) -> None:
    """Decode JPEG 2000 with GDCM and write explicit little endian for DCMTK to render."""
    import gdcm

    for quiet in ("DebugOff", "WarningOff", "ErrorOff"):
        getattr(gdcm.Trace, quiet)()
    reader = gdcm.ImageReader()
    reader.SetFileName(src)
    if not reader.Read():
        _skip(src, "GDCM cannot read it, no reference")
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.ExplicitVRLittleEndian))
    change.SetInput(reader.GetImage())
    if not change.Change():
        _skip(src, "GDCM cannot decode it, no reference")
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(dst))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
        _skip(src, "GDCM cannot write the transcoded twin")


def _reference(path: str, frame: int, opts: list[str], ts: str, tmp: Path) -> np.ndarray:
    """DCMTK's picture (8-bit), or skip with DCMTK's reason."""
    src = path
    tool = DCMJ2PNM
    if ts in JPEG_LS:
        tool = DCML2PNM
    elif ts in J2K:
        try:
            import gdcm  # noqa: F401
        except ImportError:
            _skip(path, "JPEG 2000: DCMTK cannot decode it and python-gdcm is not installed")
        src = str(tmp / "twin.dcm")
        _gdcm_transcode(path, Path(src))
    if tool is None:
        _skip(path, "DCMTK tool not installed")
    out = tmp / "ref.pnm"
    cmd = [tool, "+F", str(frame), *opts, "+op", src, str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or not out.exists():
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        _skip(path, f"DCMTK cannot render it: {reason}")
    return _read_pnm(out)


def _ours(path: str, frame: int, args: list[str], tmp: Path) -> np.ndarray:
    out = tmp / "ours.png"
    rc = cli.main(["export", path, "--frame", str(frame), *args, "-o", str(out)])
    assert rc == 0, f"export failed for {path} (DCMTK renders it)"
    return _read_pnm(out)


def _window_for(path: str, frame: int) -> tuple[float, float]:
    """C,W over the middle half of the frame's modality values (a choice of test input only)."""
    from tui_dicom.core.dicom.source import FileRef
    from tui_dicom.core.imaging.pixels import decode_frame

    f = decode_frame(FileRef(path), frame - 1)
    mv = f.modality_values()
    lo, hi = float(np.min(mv)), float(np.max(mv))
    width = max((hi - lo) / 2, 2.0)
    return round((lo + hi) / 2, 3), round(width, 3)


def _dcmtk_window(ds: Dataset, frame: int, c: float, w: float) -> tuple[float, float]:
    """The +Ww arguments that make DCMTK show what we show for window (c, w).

    dcmj2pnm 3.6.7 reads the rescale from the shared functional groups but ignores a per-frame Pixel
    Value Transformation (checked with ``dcmj2pnm -v -im``: Philips fMAP shows stored values), so
    there it windows stored values: move the LINEAR window into stored units with the slope and
    intercept read here by pydicom (exact: c' - 0.5 = (c - 0.5 - b) / k, w' - 1 = (w - 1) / k).
    """
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        return c, w
    per = ds.get("PerFrameFunctionalGroupsSequence")
    if not (per and len(per) >= frame and "PixelValueTransformationSequence" in per[frame - 1]):
        return c, w
    item = per[frame - 1].PixelValueTransformationSequence[0]
    k = float(item.get("RescaleSlope", 1) or 1)
    b = float(item.get("RescaleIntercept", 0) or 0)
    return (c - 0.5 - b) / k + 0.5, (w - 1) / k + 1


def _grey_part(path: str, frame: int, ours: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from tui_dicom.core.dicom.source import FileRef
    from tui_dicom.core.imaging.pixels import decode_frame

    f = decode_frame(FileRef(path), frame - 1)
    pal = f.palette
    assert pal is not None and pal.supplemental
    outside = (f.stored < pal.first_mapped) | (f.stored >= pal.first_mapped + len(pal.rgb))
    assert outside.any()
    assert (ours[outside][:, 0] == ours[outside][:, 1]).all(), "grey pixels are not grey"
    return ours[..., 0][outside], ref[outside]


needs_dcmtk = pytest.mark.skipif(DCMJ2PNM is None, reason="DCMTK (dcmj2pnm) not installed")


@needs_dcmtk
@pytest.mark.slow
@pytest.mark.parametrize(("path", "frame", "mode"), _cases())
def test_matches_dcmtk(path: str, frame: int, mode: str, tmp_path: Path) -> None:
    import pydicom

    assert DCMJ2PNM is not None  # needs_dcmtk skips the test otherwise

    from tui_dicom.core.errors import DicomViewerError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    ts = str(getattr(getattr(ds, "file_meta", None), "get", lambda *_: "")("TransferSyntaxUID", "") or "")
    if mode == "window":
        try:
            c, w = _window_for(path, frame)
        except DicomViewerError as exc:
            ref_ok = (
                subprocess.run([DCMJ2PNM, "+F", str(frame), "-o", path], capture_output=True).returncode == 0
            )
            if ref_ok and ts not in J2K | JPEG_LS:
                pytest.fail(f"we refuse ({exc}) but DCMTK reads it")
            _skip(path, f"unreadable pixel data: {exc}")
        ours_args, tol = [f"--window={c},{w}"], 1
        rc, rw = _dcmtk_window(ds, frame, c, w)
        ref_opts = ["+Ww", repr(rc), repr(rw)]
    elif mode == "file":
        ours_args, ref_opts, tol = [], ["+Wi", "1"], 1
    elif mode == "voilut":
        ours_args, ref_opts, tol = [], ["+Wl", "1"], 1
    else:
        ours_args, ref_opts, tol = [], [], 2
    twin = TWINS.get(Path(path).name)
    ref_path = str(Path(path).with_name(twin)) if twin else path
    ref = _reference(ref_path, frame, ref_opts, ts, tmp_path)
    ours = _ours(path, frame, ours_args, tmp_path)
    if (
        ours.ndim == 3
        and ref.ndim == 2
        and str(ds.get("PixelPresentation", "")).upper() in ("COLOR", "MIXED")
    ):
        # DCMTK ignores supplemental palettes: compare the grey pixels (outside the palette's range)
        ours, ref = _grey_part(path, frame, ours, ref)
    assert ours.shape == ref.shape, f"shape {ours.shape} vs DCMTK {ref.shape}"
    diff = int(np.abs(ours.astype(np.int16) - ref.astype(np.int16)).max())
    print(f"compared {path} frame {frame} {mode} {' '.join(ref_opts)}: max diff {diff}")
    assert diff <= tol, (
        f"max abs diff {diff} > {tol} ({np.count_nonzero(np.abs(ours.astype(int) - ref.astype(int)) > tol)} pixels)"
    )
