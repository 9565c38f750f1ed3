"""Folder scans and the fast header reader, checked against pydicom's own reading of the same files."""

from __future__ import annotations

import math
import os
import shutil
import time
import warnings
from pathlib import Path

import pydicom
import pytest
from conftest import DATA_STORE, DICOMDIR_TESTS, PYDICOM_CHARSETS, PYDICOM_FILES, SHARED_DATA, needs_shared

from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.errors import DicomViewerError
from tui_dicom.core.hierarchy.header import read_header
from tui_dicom.core.hierarchy.index import Indexer, build_index

# HeaderInfo field -> pydicom keyword (the reference values come from pydicom.dcmread)
FIELDS = {
    "patient_id": "PatientID",
    "patient_name": "PatientName",
    "birth_date": "PatientBirthDate",
    "sex": "PatientSex",
    "study_instance_uid": "StudyInstanceUID",
    "study_date": "StudyDate",
    "study_time": "StudyTime",
    "study_description": "StudyDescription",
    "accession_number": "AccessionNumber",
    "study_id": "StudyID",
    "series_instance_uid": "SeriesInstanceUID",
    "series_number": "SeriesNumber",
    "modality": "Modality",
    "series_description": "SeriesDescription",
    "body_part": "BodyPartExamined",
    "sop_instance_uid": "SOPInstanceUID",
    "sop_class_uid": "SOPClassUID",
    "instance_number": "InstanceNumber",
    "rows": "Rows",
    "columns": "Columns",
    "frames": "NumberOfFrames",
    "position": "ImagePositionPatient",
    "orientation": "ImageOrientationPatient",
    "slice_location": "SliceLocation",
    "slice_thickness": "SliceThickness",
    "pixel_spacing": "PixelSpacing",
}
GEOMETRY = {"position", "orientation", "slice_thickness", "pixel_spacing"}


def _reference(ds: pydicom.Dataset, keyword: str) -> object:
    """pydicom's value, normalised to the model's types (None when absent or not convertible)."""
    if keyword not in ds:
        return None
    value = ds[keyword].value
    if value is None or value == "":
        return None
    if keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        try:
            floats = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            return None
        expected = {"ImagePositionPatient": 3, "ImageOrientationPatient": 6, "PixelSpacing": 2}[keyword]
        return floats if len(floats) == expected and all(map(math.isfinite, floats)) else None
    if keyword in ("SliceLocation", "SliceThickness"):
        try:
            v = float(value[0] if isinstance(value, (list, pydicom.multival.MultiValue)) else value)
        except (TypeError, ValueError):
            return None
        return v if math.isfinite(v) else None
    if keyword in ("SeriesNumber", "InstanceNumber", "NumberOfFrames", "Rows", "Columns"):
        if isinstance(value, (list, pydicom.multival.MultiValue)):
            value = value[0]
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    if isinstance(value, (list, pydicom.multival.MultiValue)):
        return "\\".join(str(v).rstrip() for v in value)
    return str(value).rstrip("\x00 ")


def _all_files() -> list[Path]:
    roots = [PYDICOM_FILES, PYDICOM_CHARSETS, SHARED_DATA]
    if DATA_STORE is not None:
        roots.append(DATA_STORE)
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*") if p.is_file())


@pytest.mark.slow
def test_fast_header_matches_pydicom_on_every_real_file() -> None:
    """For every file in pydicom's test data, pydicom-data and ../shared/data: our header values equal
    pydicom's dcmread values (files pydicom cannot read are skipped; non-DICOM must be refused by both)."""
    checked = fast = 0
    mismatches = []
    for path in _all_files():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - pydicom can't read it: no reference
            continue
        try:
            info = read_header(FileRef(str(path)))
        except DicomViewerError as exc:
            mismatches.append(f"{path.name}: we refused a file pydicom reads ({exc})")
            continue
        checked += 1
        fast += info.source == "fast"
        for name, keyword in FIELDS.items():
            got, want = getattr(info, name), _reference(ds, keyword)
            if name in ("sop_instance_uid", "sop_class_uid") and want is None:
                continue  # we fall back to the file meta's MediaStorage UIDs
            if name == "frames" and want is None:
                continue
            if name in GEOMETRY and (
                "SharedFunctionalGroupsSequence" in ds or "PerFrameFunctionalGroupsSequence" in ds
            ):
                continue  # enhanced objects: taken from the functional groups (test_enhanced_multiframe...)
            if isinstance(got, str) and want is None:
                want = ""  # absent text is "" in the model
            if got != want:
                mismatches.append(f"{path.name}: {name} {got!r} != pydicom {want!r}")
    # pydicom's and pydicom-data's files alone are about 250; ../shared/data, when present, adds hundreds
    assert checked > (400 if SHARED_DATA.is_dir() else 200) and fast > 0.9 * checked
    assert mismatches == [], "\n".join(mismatches)


@needs_shared("ge_ct_head")
def test_ge_ct_head_is_ordered_by_position_not_file_name() -> None:
    folder = SHARED_DATA / "ge_ct_head"
    hierarchy = build_index([folder])
    assert hierarchy.errors == []  # LICENSE and README.md are skipped silently
    (series,) = hierarchy.all_series()
    # reference: positions projected on the slice normal, computed with pydicom
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.glob("*.dcm"))]
    r = [float(v) for v in datasets[0].ImageOrientationPatient]
    normal = (r[1] * r[5] - r[2] * r[4], r[2] * r[3] - r[0] * r[5], r[0] * r[4] - r[1] * r[3])
    expected = sorted(
        datasets, key=lambda d: sum(float(p) * n for p, n in zip(d.ImagePositionPatient, normal, strict=True))
    )
    assert [i.sop_instance_uid for i in series.instances] == [d.SOPInstanceUID for d in expected]
    assert all(i.header_read for i in series.instances)


@needs_shared("dcm_qa_enh")
def test_enhanced_multiframe_frames_and_positions() -> None:
    hierarchy = build_index([SHARED_DATA / "dcm_qa_enh"])
    assert hierarchy.errors == []
    for inst in (i for se in hierarchy.all_series() for i in se.instances):
        ds = pydicom.dcmread(inst.ref.path, stop_before_pixels=True)
        assert inst.frames == int(ds.NumberOfFrames)
        expected = [
            tuple(float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient)
            for item in ds.PerFrameFunctionalGroupsSequence
        ]
        assert inst.frame_positions == expected


def test_single_file_several_paths_and_duplicates(tmp_path: Path) -> None:
    one = PYDICOM_FILES / "CT_small.dcm"
    shutil.copyfile(one, tmp_path / "copy_of_ct")
    hierarchy = build_index([one, tmp_path, DICOMDIR_TESTS / "DICOMDIR"])
    assert hierarchy.errors == []
    uid = pydicom.dcmread(one).SOPInstanceUID
    listed = [i for se in hierarchy.all_series() for i in se.instances if i.sop_instance_uid == uid]
    assert len(listed) == 1 and listed[0].ref.path == str(one)  # first wins
    assert hierarchy.instance_count() == 32


def test_hostile_folder_is_reported_not_fatal(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copyfile(PYDICOM_FILES / "CT_small.dcm", folder / "sub" / "noext")
    shutil.copyfile(PYDICOM_FILES / "MR_small.dcm", folder / "unreadable")
    (folder / "garbage").write_bytes(b"\x00" * 50 + b"not dicom at all" * 20)
    (folder / "README.txt").write_text("hello")
    (folder / "dir.dcm").mkdir()
    shutil.copyfile(PYDICOM_FILES / "rtplan.dcm", folder / "dir.dcm" / "inside")
    os.symlink(folder, folder / "sub" / "loop")  # a folder link back to an ancestor
    os.symlink(folder / "missing", folder / "dangling")
    os.symlink("selfloop", folder / "selfloop")  # a link to itself: ELOOP
    os.chmod(folder / "unreadable", 0)
    before = sorted(p.name for p in folder.rglob("*") if not p.is_symlink())
    hierarchy = build_index([folder])
    reasons = {Path(e.path).name: e.reason for e in hierarchy.errors}
    assert reasons["garbage"].startswith("not a DICOM file")
    assert "README.txt" not in reasons
    assert "symlink loop" in reasons["loop"]
    assert "dangling" in reasons["dangling"]
    assert "symlink loop" in reasons["selfloop"]
    uids = {i.sop_instance_uid for i in (i for se in hierarchy.all_series() for i in se.instances)}
    assert pydicom.dcmread(PYDICOM_FILES / "CT_small.dcm").SOPInstanceUID in uids
    assert pydicom.dcmread(PYDICOM_FILES / "rtplan.dcm").SOPInstanceUID in uids
    assert sorted(p.name for p in folder.rglob("*") if not p.is_symlink()) == before  # nothing written
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop reads, 'permission denied' cannot be tested")
    assert reasons["unreadable"] == "permission denied"


def test_indexer_progress_and_snapshot(tmp_path: Path) -> None:
    for i in range(450):
        shutil.copyfile(PYDICOM_FILES / "CT_small.dcm", tmp_path / f"f{i}")
    indexer = Indexer([tmp_path])
    progress = list(indexer.run())
    assert progress[-1].phase == "done" and progress[-1].files_done == 450
    assert any(p.phase == "scan" and p.files_total == 450 for p in progress)
    assert len(progress) >= 3  # every ~200 files
    snapshot = indexer.snapshot()
    assert snapshot.instance_count() == 1  # one SOP Instance UID, listed once


def test_cancel_stops_early(tmp_path: Path) -> None:
    import threading

    for i in range(50):
        shutil.copyfile(PYDICOM_FILES / "CT_small.dcm", tmp_path / f"f{i}")
    cancel = threading.Event()
    cancel.set()
    indexer = Indexer([tmp_path], cancel=cancel)
    progress = list(indexer.run())
    assert progress[-1].files_done == 0


@needs_shared("dcm_qa_nih", "taichi_mri_cd", "ge_ct_head")
def test_benchmark_scan_files_per_second(tmp_path: Path) -> None:
    """Prints scan throughput (warm cache) next to pydicom's; nothing asserted on time."""
    files = list((SHARED_DATA / "dcm_qa_nih" / "In").rglob("*.dcm"))
    files += list((SHARED_DATA / "taichi_mri_cd" / "DCMDT").iterdir())
    files += list((SHARED_DATA / "ge_ct_head").glob("*.dcm"))
    folder = tmp_path / "scan"
    folder.mkdir()
    for i, f in enumerate(files):
        shutil.copyfile(f, folder / f"{i:05d}")
    build_index([folder])  # warm the cache
    t0 = time.perf_counter()
    hierarchy = build_index([folder])
    ours = len(files) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for p in folder.iterdir():
        pydicom.dcmread(p, stop_before_pixels=True)
    theirs = len(files) / (time.perf_counter() - t0)
    print(
        f"\nBENCH scan {len(files)} files: {ours:.0f} files/s; pydicom dcmread(stop_before_pixels) {theirs:.0f} files/s"
    )
    assert hierarchy.instance_count() == len(files) and hierarchy.errors == []
