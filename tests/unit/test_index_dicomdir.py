"""DICOMDIR indexing on real DICOMDIRs, checked against pydicom's and DCMTK's reading of them."""

from __future__ import annotations

import os
import shutil
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from conftest import DICOMDIR_TESTS, SHARED_DATA, BuiltCD, copy_cd, make_cd, needs_shared, needs_tool
from pydicom.fileset import FileSet

from tui_dicom.core.hierarchy.index import build_index
from tui_dicom.core.hierarchy.model import Hierarchy

VARIANTS = ["DICOMDIR", "DICOMDIR-bigEnd", "DICOMDIR-implicit", "DICOMDIR-nooffset", "DICOMDIR-reordered"]

# ------------------------------------------------------------------------------ opened-file watch

_OPENED: list[str] | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def index_watching_opens(paths: list[Path]) -> tuple[Hierarchy, list[str]]:
    """build_index, returning also every file the process opened meanwhile."""
    global _OPENED
    _OPENED = []
    try:
        hierarchy = build_index(paths)
        return hierarchy, list(_OPENED)
    finally:
        _OPENED = None


def quads(h: Hierarchy) -> set[tuple[str, str, str, str]]:
    """(patient ID, study UID, series UID, SOP instance UID) for every instance."""
    return {
        (p.patient_id, st.study_instance_uid, se.series_instance_uid, inst.sop_instance_uid)
        for p in h.patients
        for st in p.studies
        for se in st.series
        for inst in se.instances
    }


def pydicom_quads(dicomdir: Path) -> set[tuple[str, str, str, str]]:
    """The same, as pydicom's FileSet reads the DICOMDIR (the reference)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fs = FileSet(pydicom.dcmread(dicomdir))
    out = set()
    for inst in fs:
        node = inst.node
        series, study, patient = node.parent, node.parent.parent, node.parent.parent.parent
        out.add(
            (
                str(patient._record.PatientID),
                str(study._record.StudyInstanceUID),
                str(series._record.SeriesInstanceUID),
                str(node._record.ReferencedSOPInstanceUIDInFile),
            )
        )
    return out


@pytest.mark.parametrize("name", VARIANTS)
def test_dicomdirtests_variants_match_pydicom(name: str) -> None:
    path = DICOMDIR_TESTS / name
    hierarchy, opened = index_watching_opens([path])
    assert hierarchy.errors == []
    reference = pydicom_quads(path)
    assert len(reference) == 31
    assert quads(hierarchy) == reference
    counts = (
        len(hierarchy.patients),
        sum(len(p.studies) for p in hierarchy.patients),
        len(hierarchy.all_series()),
    )
    assert counts == (2, 6, 13)
    # built from the DICOMDIR alone: no image file was opened
    assert [o for o in opened if o.startswith(str(DICOMDIR_TESTS)) and "DICOMDIR" not in o] == []
    inst = hierarchy.all_series()[0].instances[0]
    assert inst.header_read is False and inst.sop_class_uid and inst.transfer_syntax_uid


def test_dicomdir_without_patient_level() -> None:
    """PATIENT records turned into UNKNOWN (and a root offset pointing at an IMAGE record): pydicom's
    FileSet refuses it; we show the same 31 instances as the intact DICOMDIR, patient values taken from
    the unknown records that carry them."""
    path = DICOMDIR_TESTS / "DICOMDIR-nopatient"
    with pytest.raises(ValueError):
        FileSet(pydicom.dcmread(path))
    hierarchy = build_index([path])
    assert quads(hierarchy) == pydicom_quads(DICOMDIR_TESTS / "DICOMDIR")


def test_empty_dicomdir_and_pydicom_written_fileset() -> None:
    empty = build_index([DICOMDIR_TESTS / "DICOMDIR-empty.dcm"])
    assert empty.patients == [] and empty.errors == []
    tiny = DICOMDIR_TESTS / "TINY_ALPHA"
    hierarchy = build_index([tiny])
    assert quads(hierarchy) == pydicom_quads(tiny / "DICOMDIR")
    assert hierarchy.instance_count() == 50


@needs_shared("taichi_mri_cd")
def test_taichi_clinic_cd() -> None:
    root = SHARED_DATA / "taichi_mri_cd"
    hierarchy, opened = index_watching_opens([root])
    assert hierarchy.errors == []
    assert sorted(len(se.instances) for se in hierarchy.all_series()) == [11, 11, 11, 17, 17]
    assert [o for o in opened if "DCMDT" in o] == []
    ds = pydicom.dcmread(root / "DICOMDIR")
    patient = next(r for r in ds.DirectoryRecordSequence if r.DirectoryRecordType == "PATIENT")
    (p,) = hierarchy.patients
    assert p.patient_name == str(patient.PatientName)
    assert "古橋^大地" in p.patient_name and "ﾌﾙﾊｼ" in p.patient_name
    descriptions = {se.series_description for se in hierarchy.all_series()}
    assert descriptions == {"T1 AX", "T2 AX", "T1 SAG", "T2 SAG", "STIR SAG"}


#: patient ID and name, study and series UIDs, series number, modality, SOP instance UID, instance
#: number, path
HierRow = tuple[str, str, str, str, int | None, str, str, int | None, str]


def _hier_view(h: Hierarchy, root: Path) -> set[HierRow]:
    """Everything both readings must agree on, with paths relative to ``root`` and upper-cased."""
    out: set[HierRow] = set()
    for p in h.patients:
        for st in p.studies:
            for se in st.series:
                for inst in se.instances:
                    rel = os.path.relpath(inst.ref.path, root) if inst.ref.member is None else inst.ref.member
                    out.add(
                        (
                            p.patient_id,
                            p.patient_name,
                            st.study_instance_uid,
                            se.series_instance_uid,
                            se.series_number,
                            se.modality,
                            inst.sop_instance_uid,
                            inst.instance_number,
                            rel.upper().replace(os.sep, "/"),
                        )
                    )
    return out


def test_dcmtk_cd_dicomdir_equals_folder_scan(dcmtk_cd: BuiltCD, tmp_path: Path) -> None:
    via_dicomdir, opened = index_watching_opens([dcmtk_cd.root])
    assert via_dicomdir.errors == []
    assert [o for o in opened if "IMAGES" in o] == []
    assert via_dicomdir.instance_count() == len(dcmtk_cd.sources)
    scan_copy = copy_cd(dcmtk_cd, tmp_path / "scan")
    (scan_copy.root / "DICOMDIR").unlink()
    via_scan = build_index([scan_copy.root])
    assert via_scan.errors == []
    assert _hier_view(via_dicomdir, dcmtk_cd.root) == _hier_view(via_scan, scan_copy.root)
    # and both equal pydicom's FileSet reading of the DCMTK DICOMDIR
    assert quads(via_dicomdir) == pydicom_quads(dcmtk_cd.dicomdir)


def _rename_tree(root: Path, rename: Callable[[str], str]) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            new = rename(name)
            if new != name:
                os.rename(os.path.join(dirpath, name), os.path.join(dirpath, new))


@pytest.mark.parametrize("style", ["lower", "version"])
def test_dcmtk_cd_with_other_case_and_version_suffix(dcmtk_cd: BuiltCD, tmp_path: Path, style: str) -> None:
    cd = copy_cd(dcmtk_cd, tmp_path / "cd")
    if style == "lower":
        _rename_tree(cd.root, str.lower)  # a CD mounted with lowercase names: dicomdir, images/im000001
        assert (cd.root / "dicomdir").exists()
    else:
        _rename_tree(cd.root / "IMAGES", lambda n: n + ";1")
    hierarchy = build_index([cd.root])
    assert hierarchy.errors == []
    expected = _hier_view(build_index([dcmtk_cd.root]), dcmtk_cd.root)
    got = {v[:-1] + (v[-1].replace(";1", ""),) for v in _hier_view(hierarchy, cd.root)}
    assert got == expected


def test_several_dicomdirs_under_one_root(tmp_path: Path) -> None:
    shutil.copytree(DICOMDIR_TESTS, tmp_path / "cd1")
    shutil.copytree(DICOMDIR_TESTS / "TINY_ALPHA", tmp_path / "disc" / "cd2")
    hierarchy = build_index([tmp_path])
    assert hierarchy.errors == []
    assert quads(hierarchy) == pydicom_quads(DICOMDIR_TESTS / "DICOMDIR") | pydicom_quads(
        DICOMDIR_TESTS / "TINY_ALPHA" / "DICOMDIR"
    )


def test_nested_directory_file_is_followed(tmp_path: Path) -> None:
    """A STUDY record whose File ID names another directory file (Philips DIRFILE style): its SERIES and
    IMAGE records come from that file and their File IDs stay relative to the root."""
    shutil.copytree(DICOMDIR_TESTS, tmp_path / "cd")
    root = tmp_path / "cd"
    ds = pydicom.dcmread(root / "DICOMDIR")
    records = list(ds.DirectoryRecordSequence)
    study = next(r for r in records if r.DirectoryRecordType == "STUDY")
    # the sub file: a copy of the DICOMDIR whose root is this study's first series
    sub = pydicom.dcmread(root / "DICOMDIR")
    sub.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = (
        study.OffsetOfReferencedLowerLevelDirectoryEntity
    )
    sub.save_as(root / "DIRFILE")
    study.ReferencedFileID = "DIRFILE"
    study.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    _save_with_fixed_offsets(ds, records, root / "DICOMDIR")
    hierarchy = build_index([root])
    assert hierarchy.errors == []
    assert quads(hierarchy) == pydicom_quads(DICOMDIR_TESTS / "DICOMDIR")


# ------------------------------------------------------------------------------------ hostile


def _save_with_fixed_offsets(ds: pydicom.Dataset, records: list[pydicom.Dataset], dest: Path) -> None:
    """Save ``ds`` after its records changed size, re-pointing every offset at the same record."""
    index_of = {r.seq_item_tell: i for i, r in enumerate(records)}
    ds.save_as(dest)
    new_offsets = [r.seq_item_tell for r in pydicom.dcmread(dest).DirectoryRecordSequence]
    for record in ds.DirectoryRecordSequence:
        for kw in ("OffsetOfTheNextDirectoryRecord", "OffsetOfReferencedLowerLevelDirectoryEntity"):
            value = record.get(kw)
            if value:
                setattr(record, kw, new_offsets[index_of[value]])
    for kw in (
        "OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity",
        "OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity",
    ):
        if ds.get(kw):
            setattr(ds, kw, new_offsets[index_of[ds.get(kw)]])
    ds.save_as(dest)
    # pydicom itself agrees that every offset now points at a record
    check = pydicom.dcmread(dest)
    assert [r.seq_item_tell for r in check.DirectoryRecordSequence] == new_offsets


def test_hostile_dicomdir_refuses_and_reports(tmp_path: Path) -> None:
    """Traversal, absolute, missing and self-referencing File IDs: each reported, none opened, the other
    26 instances shown. The traversal and absolute targets are real, readable DICOM files."""
    root = tmp_path / "cd"
    shutil.copytree(DICOMDIR_TESTS, root)
    secret = tmp_path / "SECRET"
    shutil.copyfile(DICOMDIR_TESTS / "77654033" / "CR1" / "6154", secret)
    ds = pydicom.dcmread(root / "DICOMDIR")
    records = list(ds.DirectoryRecordSequence)
    images = [r for r in records if r.DirectoryRecordType == "IMAGE"]
    abs_parts = ["", *str(secret).strip("/").split("/")]
    hostile = {
        0: ["..", "SECRET"],
        1: abs_parts,
        2: ["77654033", "CR1", "NOPE"],
        3: ["DICOMDIR"],
        4: [str(secret)],  # one component holding a POSIX absolute path
    }
    for i, file_id in hostile.items():
        images[i].ReferencedFileID = file_id
    _save_with_fixed_offsets(ds, records, root / "DICOMDIR")
    hierarchy, opened = index_watching_opens([root])
    assert str(secret) not in opened
    # the 5 images the hostile records no longer list are still beside the DICOMDIR: read from their
    # own headers (a partial DICOMDIR must not hide them), and said so in one more line
    assert hierarchy.instance_count() == 31
    reasons = [e.reason for e in hierarchy.errors]
    assert len(reasons) == len(hostile) + 1, reasons
    assert (
        "5 DICOM files in the DICOMDIR's folder are not listed in it; read from their own header" in reasons
    )
    assert sum("outside the DICOMDIR's folder; refused" in r for r in reasons) == 2
    assert any("absolute" in r and "refused" in r for r in reasons)
    assert "record points at a missing file 77654033/CR1/NOPE" in reasons
    assert any("DICOMDIR itself" in r for r in reasons)
    assert all(e.path in (str(root / "DICOMDIR"), str(root)) for e in hierarchy.errors)


def test_symlink_out_of_the_cd_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "cd"
    shutil.copytree(DICOMDIR_TESTS, root)
    secret = tmp_path / "SECRET"
    shutil.copyfile(DICOMDIR_TESTS / "77654033" / "CR1" / "6154", secret)
    target = root / "77654033" / "CR1" / "6154"
    target.unlink()
    target.symlink_to(secret)
    hierarchy, opened = index_watching_opens([root])
    assert str(secret) not in opened
    assert hierarchy.instance_count() == 30
    assert any("symbolic link; refused" in e.reason for e in hierarchy.errors)


# ------------------------------------------------------------------------------------ benchmark


@needs_tool("dcmmkdir")
@needs_shared("dcm_qa_nih")
@pytest.mark.slow
def test_benchmark_2000_record_dicomdir(tmp_path: Path) -> None:
    """Prints the time to index a ~2,000-image DICOMDIR (a benchmark: nothing is asserted on time)."""
    from pydicom.uid import generate_uid

    src = sorted((SHARED_DATA / "dcm_qa_nih" / "In" / "20180918GE").glob("*/*.dcm"))
    work = tmp_path / "src"
    work.mkdir()
    files: list[Path] = []
    copies = -(-2000 // len(src))
    for c in range(copies):
        study, series = generate_uid(), generate_uid()
        for f in src:
            ds = pydicom.dcmread(f)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.SeriesNumber = c + 1
            out = work / f"{len(files):05d}.dcm"
            ds.save_as(out)
            files.append(out)
    cd = make_cd(tmp_path / "cd", files[:2000])
    for _ in range(2):  # warm
        build_index([cd.root])
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        hierarchy = build_index([cd.root])
        runs.append(time.perf_counter() - t0)
    assert hierarchy.instance_count() == 2000 and hierarchy.errors == []
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        FileSet(pydicom.dcmread(cd.dicomdir))
    fileset_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pydicom.dcmread(cd.dicomdir)
    dcmread_s = time.perf_counter() - t0
    print(
        f"\nBENCH dicomdir 2000 images: build_index best {min(runs) * 1000:.0f} ms, median "
        f"{sorted(runs)[2] * 1000:.0f} ms; pydicom FileSet {fileset_s * 1000:.0f} ms; dcmread {dcmread_s * 1000:.0f} ms"
    )
    assert Counter(len(se.instances) for se in hierarchy.all_series())[150] >= 13
