"""ZIP archives (patient-portal downloads) are indexed in memory, with or without a DICOMDIR."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Set as AbstractSet
from pathlib import Path

import pydicom
import pytest
from conftest import DICOMDIR_TESTS, PYDICOM_FILES, BuiltCD

from tui_dicom.core.dicom.source import open_ref
from tui_dicom.core.hierarchy.index import build_index
from tui_dicom.core.hierarchy.model import Hierarchy


def _zip_folder(folder: Path, dest: Path, *, prefix: str = "", skip: AbstractSet[str] = frozenset()) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_file() and path.name not in skip:
                zf.write(path, prefix + rel)
    return dest


def _view(h: Hierarchy) -> set[tuple[object, ...]]:
    return {
        (
            p.patient_id,
            st.study_instance_uid,
            se.series_instance_uid,
            se.series_number,
            i.sop_instance_uid,
            i.instance_number,
            (i.ref.member or os.path.basename(i.ref.path)).rsplit("/", 1)[-1],
        )
        for p in h.patients
        for st in p.studies
        for se in st.series
        for i in se.instances
    }


def test_zip_with_dicomdir_equals_the_cd(dcmtk_cd: BuiltCD, tmp_path: Path) -> None:
    archive = _zip_folder(dcmtk_cd.root, tmp_path / "portal.zip", prefix="download/")
    from_zip = build_index([archive])
    assert from_zip.errors == []
    assert _view(from_zip) == _view(build_index([dcmtk_cd.root]))
    inst = from_zip.all_series()[0].instances[0]
    assert (
        inst.ref.path == str(archive)
        and inst.ref.member is not None
        and inst.ref.member.startswith("download/IMAGES/")
    )
    assert inst.header_read is False  # from the DICOMDIR record
    with open_ref(inst.ref) as fh:  # the member reads back as the DICOM file it names
        assert pydicom.dcmread(fh).SOPInstanceUID == inst.sop_instance_uid
    assert not (tmp_path / "download").exists()  # nothing extracted


@pytest.mark.slow
def test_zip_without_dicomdir_is_sniffed(dcmtk_cd: BuiltCD, tmp_path: Path) -> None:
    archive = _zip_folder(dcmtk_cd.root, tmp_path / "plain.zip", skip={"DICOMDIR"})
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("README.txt", "not dicom")
        zf.writestr("junk", b"\x01\x02" * 100)
    hierarchy = build_index([archive])
    assert [(e.path, e.reason.split(" (")[0]) for e in hierarchy.errors] == [
        (f"{archive}!junk", "not a DICOM file")
    ]
    assert {v[:-1] for v in _view(hierarchy)} == {v[:-1] for v in _view(build_index([dcmtk_cd.root]))}
    assert all(i.header_read for se in hierarchy.all_series() for i in se.instances)


def test_zip_of_pydicom_dicomdirtests(tmp_path: Path) -> None:
    archive = _zip_folder(DICOMDIR_TESTS, tmp_path / "cd.zip")
    hierarchy = build_index([archive])
    # only the root DICOMDIR is used for its folder; the variants beside it are not separate CDs
    assert hierarchy.instance_count() == 31 + 50  # dicomdirtests + TINY_ALPHA (its own DICOMDIR)
    assert hierarchy.errors == []


def test_zip_single_file_and_bad_zip(tmp_path: Path) -> None:
    archive = tmp_path / "one.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(PYDICOM_FILES / "CT_small.dcm", "a/b/ct")
    assert build_index([archive]).instance_count() == 1
    broken = tmp_path / "broken.zip"
    broken.write_bytes(archive.read_bytes()[:60])
    hierarchy = build_index([broken])
    assert hierarchy.instance_count() == 0 and len(hierarchy.errors) == 1
