"""Benchmark inputs built from real data under ``benchmarks/work/`` (gitignored), reused between runs.

* :func:`ct_set`: ``n`` copies of the 28 real GE CT head slices of ``../shared/data/ge_ct_head``
  (512², signed 16-bit), each written to a new file under a new SOP Instance UID, grouped into
  series of ``series_size`` slices with new Series Instance UIDs, positions moved along the slice
  normal so that every series is a plain stack. Files go to ``ROOT/DATA/Snnnn/Innnn`` (no
  extension, like a CD), so DCMTK ``dcmmkdir`` accepts the File IDs.
* :func:`cd`: the same with a ``DICOMDIR`` made by ``dcmmkdir`` at ``ROOT``.
* :func:`transfer_syntaxes`: one 512² CT slice in several transfer syntaxes, made with DCMTK.

A set is rebuilt only when its description changes (a ``.complete`` stamp holds it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from benchmarks.common import SHARED_DATA, Missing, tool

CT_SOURCE = SHARED_DATA / "ge_ct_head"
STAMP = ".complete"
VERSION = 1


def _fresh(root: Path, spec: dict[str, object]) -> bool:
    stamp = root / STAMP
    try:
        stamped = json.loads(stamp.read_text(encoding="utf-8"))
        stamped.pop("dicomdir", None)  # added by cd() once its DICOMDIR is made
        if stamped != spec:
            return False
    except (OSError, ValueError):
        return False
    count = sum(len(files) for _, _, files in os.walk(root / "DATA"))
    return count == spec["n"]


@contextlib.contextmanager
def _locked(work: Path, name: str) -> Iterator[None]:
    """Serialise builders of the same input (two benchmark runs at once must not mix their files)."""
    work.mkdir(parents=True, exist_ok=True)
    with open(work / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _stamp(root: Path, spec: dict[str, object]) -> None:
    (root / STAMP).write_text(json.dumps(spec), encoding="utf-8")


def ct_sources() -> list[Path]:
    """The real CT slices copied into the sets.

    Raises:
        Missing: ``../shared/data/ge_ct_head`` is absent.
    """
    files = sorted(CT_SOURCE.glob("*.dcm"))
    if not files:
        raise Missing(f"real data not found: {CT_SOURCE}")
    return files


def ct_set(work: Path, n: int, series_size: int, *, log=print) -> Path:  # noqa: ANN001
    """A folder of ``n`` CT images (new files, new UIDs) in series of ``series_size``; returns its root.

    The images are under ``ROOT/DATA``; no DICOMDIR is made here.
    """
    sources = ct_sources()
    root = (work / f"ct{n}_s{series_size}").resolve()
    spec = {"v": VERSION, "n": n, "series_size": series_size, "sources": [p.name for p in sources]}
    with _locked(work, root.name):
        if not _fresh(root, spec):
            _build(root, spec, sources, n, series_size, log)
    return root


def _build(root: Path, spec: dict[str, object], sources: list[Path], n: int, series_size: int, log) -> None:  # noqa: ANN001
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    log(f"  building {n:,} CT images in series of {series_size:,} under {root} ...")
    if root.exists():
        shutil.rmtree(root)
    data = root / "DATA"
    data.mkdir(parents=True)
    datasets = [pydicom.dcmread(p) for p in sources]
    base = datasets[0]
    orient = [float(v) for v in base.ImageOrientationPatient]
    normal = np.cross(orient[:3], orient[3:])
    origin = np.array([float(v) for v in base.ImagePositionPatient])
    study_uid = generate_uid()
    series_uid = ""
    series_no = 0
    for i in range(n):
        k = i % series_size
        if k == 0:
            series_no += 1
            series_uid = generate_uid()
            (data / f"S{series_no:04d}").mkdir()
        ds = datasets[i % len(datasets)]
        uid = generate_uid()
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesNumber = series_no
        ds.InstanceNumber = k + 1
        ds.SeriesDescription = f"benchmark copy {series_no}"
        ds.StudyDate = "20240101"
        ds.StudyTime = "120000"
        ds.StudyID = "1"
        ds.ImagePositionPatient = [f"{v:.4f}" for v in origin + normal * (k * 1.0)]
        ds.ImageOrientationPatient = orient
        ds.save_as(data / f"S{series_no:04d}" / f"I{k + 1:04d}", enforce_file_format=True)
    _stamp(root, spec)


def cd(work: Path, n: int, series_size: int, *, log=print) -> Path:  # noqa: ANN001
    """A CD root of ``n`` CT images with a DICOMDIR written by DCMTK ``dcmmkdir``; returns the root.

    Raises:
        Missing: dcmmkdir or the real data is absent.
    """
    dcmmkdir = tool("dcmmkdir")
    root = ct_set(work, n, series_size, log=log)
    with _locked(work, root.name):
        _mkdir(dcmmkdir, root, n, log)
    return root


def _mkdir(dcmmkdir: str, root: Path, n: int, log) -> None:  # noqa: ANN001
    dicomdir = root / "DICOMDIR"
    spec = json.loads((root / STAMP).read_text(encoding="utf-8"))
    if dicomdir.exists() and spec.get("dicomdir"):
        return
    log(f"  dcmmkdir on {n:,} images ...")
    if dicomdir.exists():
        dicomdir.unlink()
    proc = subprocess.run(
        [dcmmkdir, "-q", "+r", "+I", "+id", str(root), "+D", str(dicomdir), "DATA"],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0 or not dicomdir.exists():
        raise RuntimeError(
            f"dcmmkdir failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-300:]}"
        )
    spec["dicomdir"] = True
    _stamp(root, spec)


#: name -> (how to make it from the uncompressed slice: DCMTK command before IN OUT, or None: copy)
SYNTAX_RECIPES: dict[str, tuple[str, ...] | None] = {
    "explicit VR little endian": ("dcmconv", "+te"),
    "implicit VR little endian": ("dcmconv", "+ti"),
    "explicit VR big endian": ("dcmconv", "+tb"),
    "deflated explicit VR little endian": ("dcmconv", "+td"),
    "RLE lossless": ("dcmcrle",),
    "JPEG lossless SV1": ("dcmcjpeg", "+e1"),
    "JPEG-LS lossless": ("dcmcjpls", "+el"),
}


def transfer_syntaxes(work: Path, *, log=print) -> dict[str, Path]:  # noqa: ANN001
    """One 512² CT slice (``ge_ct_head/01.dcm``) per transfer syntax, plus pydicom-data's JPEG 2000 pair.

    Returns:
        label -> file. JPEG 2000 comes from pydicom-data ``693_J2KR.dcm`` (a real 512² CT), with its
        uncompressed twin ``693_UNCR.dcm`` under "693 uncompressed (J2K twin)".
    """
    src = ct_sources()[0]
    folder = (work / "syntaxes").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for label, recipe in SYNTAX_RECIPES.items():
        dest = folder / (label.replace(" ", "_").replace("-", "") + ".dcm")
        if not dest.exists():
            try:
                exe = tool(recipe[0])  # type: ignore[index]
            except Missing as exc:
                log(f"  {label}: {exc}")
                continue
            proc = subprocess.run(
                [exe, *recipe[1:], str(src), str(dest)],  # type: ignore[index]
                capture_output=True,
                check=False,
            )
            if proc.returncode != 0:
                log(f"  {label}: {recipe[0]} failed: {proc.stderr.decode(errors='replace')[-200:]}")
                dest.unlink(missing_ok=True)
                continue
        out[label] = dest
    try:
        import data_store

        base = Path(data_store.__file__).resolve().parent / "data"
        if (base / "693_J2KR.dcm").exists() and (base / "693_UNCR.dcm").exists():
            out["JPEG 2000 lossless (693_J2KR)"] = base / "693_J2KR.dcm"
            out["693 uncompressed (J2K twin)"] = base / "693_UNCR.dcm"
    except ImportError:
        log("  pydicom-data is not installed: no JPEG 2000 input")
    return out
