"""``tui-dicom anonymize`` on real data: nothing identifying survives, nothing else is lost.

Each corpus (pydicom's test files and character-set files, pydicom-data, the shared scanner data and
the Japanese clinic CD) is exported once per module with the bare Basic Profile (so every date must go
too) and checked byte for byte: no identifying value of any input — name components in every
component group and character set as the file encodes them, IDs, birth dates, accession numbers,
institution and physician names, dates, UIDs — occurs anywhere in the output's bytes outside the pixel
data, which must be identical. The hierarchy (``ls``) keeps its shape, references that resolved in the
input resolve in the output, and the DICOMDIR reads with DCMTK's ``dcmdump`` and pydicom's FileSet.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pydicom
import pytest
from conftest import DATA_STORE, PYDICOM_CHARSETS, PYDICOM_FILES, REPO, SHARED_DATA, needs_shared, needs_tool
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from tui_dicom.cli import main
from tui_dicom.core.deid.engine import Deidentifier, Settings
from tui_dicom.core.deid.export import Exporter, ExportRefused, ExportResult
from tui_dicom.core.deid.table import load_table
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.hierarchy.index import build_index
from tui_dicom.core.hierarchy.model import Hierarchy

SECRET = b"test secret"
PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)
_ESCAPE = re.compile(rb"\x1b[\x20-\x2f]*[\x30-\x7e]")
#: values whose text identifies, wherever they are
ID_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "AccessionNumber",
    "PatientBirthDate",
    "InstitutionName",
    "InstitutionAddress",
    "PatientAddress",
    "MedicalRecordLocator",
    "StationName",
    "DeviceSerialNumber",
    "RequestedProcedureID",
    "PerformedProcedureStepID",
    "IssuerOfPatientID",
)
ID_TAGS = {pydicom.datadict.tag_for_keyword(k) for k in ID_KEYWORDS}
U_TAGS = {tag for tag, rule in load_table().by_tag.items() if "U" in rule.basic}

#: words the export writes itself (dummy values, defined terms, DICOMDIR record types)
OUR_WORDS = frozenset(
    {
        b"ANONYMIZED",
        b"ANONYMOUS",
        b"REMOVED",
        b"MODIFIED",
        b"UNMODIFIED",
        b"PATIENT",
        b"STUDY",
        b"SERIES",
        b"IMAGE",
    }
)

CORPORA: dict[str, list[Path]] = {
    "pydicom": [PYDICOM_FILES],
    "pydicom-charsets": [PYDICOM_CHARSETS],
    "pydicom-data": [DATA_STORE] if DATA_STORE is not None else [],
    "taichi-cd": [SHARED_DATA / "taichi_mri_cd"],
    "shared-series": [
        SHARED_DATA / n for n in ("ge_ct_head", "dcm_qa_ts", "dcm_qa_enh", "dcm_qa_12bit", "dcm_qa_nih")
    ],
}


@dataclass
class Export:
    """One corpus exported with the bare Basic Profile."""

    inputs: list[Path]
    out: Path
    result: ExportResult
    refs: list[FileRef]
    exported: list[FileRef]
    input_hierarchy: Hierarchy


def _run_export(inputs: list[Path], out: Path, settings: Settings) -> Export:
    hierarchy = build_index(inputs)
    refs = [inst.ref for se in hierarchy.all_series() for inst in se.instances]
    result = Exporter(
        refs,
        out,
        settings,
        inputs=inputs,
        allow_burned_in=True,
        prior_errors=[(e.path, e.reason) for e in hierarchy.errors],
    ).run()
    dropped = {d.ref for d in result.dropped if d.ref is not None}
    exported = [r for r in refs if r not in dropped]
    return Export(inputs, out, result, refs, exported, hierarchy)


_cache: dict[str, Export] = {}


@pytest.fixture(scope="module", params=list(CORPORA))
def basic_export(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Export:
    name = request.param
    inputs = CORPORA[name]
    missing = [p for p in inputs if not p.exists()]
    if not inputs or missing:
        pytest.skip(f"corpus {name} missing: {', '.join(map(str, missing)) or 'not installed'}")
    if name not in _cache:
        out = tmp_path_factory.mktemp(f"deid-{name}") / "OUT"
        _cache[name] = _run_export(inputs, out, Settings(secret=SECRET, options=frozenset()))
    return _cache[name]


# ----------------------------------------------------------------------------------------------- input


def _walk_raw(ds: Dataset, depth: int = 0) -> Iterator[tuple[int, str, bytes]]:
    """(tag, VR, raw value bytes) of every public element at any depth, as encoded in the file."""
    for tag in list(ds.keys()):
        t = int(tag)
        if t >> 16 & 1 or t in PIXEL_TAGS:
            continue
        raw = ds._dict[tag]
        vr = raw.VR
        if vr is None or vr == "UN":
            try:
                vr = dictionary_VR(t).split(" or ")[0]
            except KeyError:
                vr = "UN"
        if vr == "SQ":
            try:
                seq = ds[tag].value
            except Exception:  # noqa: BLE001 - a sequence pydicom cannot parse is not ours to judge
                continue
            for item in seq or []:
                yield from _walk_raw(item, depth + 1)
            continue
        value = raw.value
        if isinstance(value, (bytes, bytearray)):
            yield t, vr, bytes(value)
        elif isinstance(value, str):
            yield t, vr, value.encode("utf-8", "surrogateescape")


def _read(ref: FileRef) -> Dataset:
    return pydicom.dcmread(ref.path, force=True)


def kept_content(ds: Dataset) -> bytes:
    """The raw values of the attributes the profile keeps (not listed in Table E.1-1, or K)."""
    table = load_table()
    return b"\n".join(
        raw
        for tag, vr, raw in _walk_raw(ds)
        if vr not in ("PN", "DA", "DT", "TM", "UI")
        and tag not in ID_TAGS
        and ((rule := table.rule_for(tag)) is None or rule.basic == "K")
    )


def identifying_values(ds: Dataset) -> dict[bytes, str]:
    """Byte strings that must not occur in the output, with where they came from."""
    found: dict[bytes, str] = {}

    def add(value: bytes, why: str) -> None:
        value = value.strip(b" \0")
        ours = PYDICOM_IMPLEMENTATION_UID.encode().startswith(value)  # pydicom's root, in every file meta
        if len(value) >= 4 and value not in OUR_WORDS and not ours:
            found.setdefault(value, why)

    for tag, vr, raw in _walk_raw(ds):
        name = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if vr == "PN":
            for part in re.split(rb"[\^=\\]", raw):
                add(part, f"{name} name component")
                for run in _ESCAPE.split(part):
                    add(run, f"{name} name component in its character set")
        elif tag in ID_TAGS:
            for part in raw.split(b"\\"):
                add(part, f"{name} identifier")
        elif vr in ("DA", "DT"):
            for part in re.split(rb"[\\-]", raw):
                if len(part.strip()) >= 8:
                    add(part.strip()[:8], f"{name} date")
        elif vr == "UI" and tag in U_TAGS:
            for part in raw.split(b"\\"):
                add(part, f"{name} UID")
    return found


def _inflated(data: bytes) -> bytes:
    """A deflated file's meta and inflated dataset: the bytes a leak would be in."""
    meta_end = 132 + 12 + int.from_bytes(data[140:144], "little")  # group length (0002,0000) UL
    return data[:meta_end] + zlib.decompress(data[meta_end:], -zlib.MAX_WBITS)


def output_bytes(out: Path) -> dict[Path, bytes]:
    """Every output file's bytes, with the pixel data value cut out (it is checked separately)."""
    files: dict[Path, bytes] = {}
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name not in ("DICOMDIR", "DEIDENTIFICATION.txt"):
            ds = pydicom.dcmread(path)
            if ds.file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian:
                data = _inflated(data)
            for tag in PIXEL_TAGS:
                if tag in ds and ds[tag].value:
                    pixels = bytes(ds[tag].value)
                    at = data.find(pixels)
                    assert at >= 0, f"{path}: pixel data not found as stored"
                    data = data[:at] + data[at + len(pixels) :]
        files[path] = data
    return files


def _occurs(value: bytes, haystack: bytes) -> bool:
    """``value`` in ``haystack``; a number only as a whole number (digits of a new UID do not count)."""
    if value.isdigit():
        return re.search(rb"(?<![0-9])" + value + rb"(?![0-9])", haystack) is not None
    return value in haystack


def _uid_map() -> Deidentifier:
    return Deidentifier(Settings(secret=SECRET, options=frozenset()))


# ------------------------------------------------------------------------------------------------ tests


@pytest.mark.slow
def test_no_identifying_value_in_output_bytes(basic_export: Export) -> None:
    files = output_bytes(basic_export.out)
    haystack = b"\n".join(files.values())
    datasets = [(ref, _read(ref)) for ref in basic_export.exported]
    # a value some input also holds in an attribute the profile keeps (a manufacturer named like an
    # institution, digits inside waveform samples, template text in a code meaning) proves nothing
    kept = b"\n".join(kept_content(ds) for _ref, ds in datasets)
    leaks: list[str] = []
    checked = 0
    for ref, ds in datasets:
        values = identifying_values(ds)
        checked += len(values)
        for value, why in values.items():
            if _occurs(value, haystack) and value not in kept:
                leaks.append(f"{ref.name}: {why} {value[:40]!r}")
    assert checked > 0
    assert not leaks, f"{len(leaks)} identifying values found in the output:\n" + "\n".join(
        sorted(set(leaks))[:30]
    )


@pytest.mark.slow
def test_pixel_data_unchanged(basic_export: Export) -> None:
    uids = _uid_map()
    by_sop = {}
    for path in basic_export.out.rglob("*"):
        if path.is_file() and path.name not in ("DICOMDIR", "DEIDENTIFICATION.txt"):
            ds = pydicom.dcmread(path)
            by_sop[str(ds.SOPInstanceUID)] = ds
    compared = 0
    for ref in basic_export.exported:
        src = _read(ref)
        out = by_sop[uids.new_uid(str(src.SOPInstanceUID))]
        assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
        for tag in PIXEL_TAGS:
            if tag in src:
                assert tag in out, f"{ref.name}: pixel data lost"
                assert bytes(out[tag].value) == bytes(src[tag].value), f"{ref.name}: pixel data changed"
                compared += 1
    assert len(by_sop) == basic_export.result.instances == len(basic_export.exported)
    assert compared > 0


def _counts(h: Hierarchy, keep: set[FileRef] | None = None) -> tuple[int, int, int, int]:
    patients = studies = series = instances = 0
    for p in h.patients:
        p_has = False
        for st in p.studies:
            st_has = False
            for se in st.series:
                n = sum(1 for i in se.instances if keep is None or i.ref in keep)
                if n:
                    series += 1
                    instances += n
                    st_has = True
            if st_has:
                studies += 1
                p_has = True
        if p_has:
            patients += 1
    return patients, studies, series, instances


@pytest.mark.slow
def test_hierarchy_keeps_its_shape(basic_export: Export) -> None:
    expected = _counts(basic_export.input_hierarchy, set(basic_export.exported))
    got = build_index([basic_export.out])
    assert not got.errors, got.errors[:3]
    assert _counts(got) == expected


def _targets_and_refs(ds: Dataset) -> tuple[set[str], set[str]]:
    """(UIDs this file is: instance, series, study, frame of reference; UIDs it refers to).

    References held in a sequence the bare profile removes (Referenced Study Sequence is X/Z, with
    no Type 2 module needing it) are not counted: a removed reference cannot dangle.
    """
    table = load_table()
    own_keywords = ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID")
    own = {str(ds.get(k, "")) for k in own_keywords}
    refs: set[str] = set()

    def walk(item: Dataset, depth: int) -> None:
        for elem in item:
            if elem.tag.group & 1 or elem.tag.group == 0x0002:
                continue
            if elem.VR == "SQ":
                rule = table.rule_for(int(elem.tag))
                if depth == 0 and rule is not None and rule.basic in ("X", "X/Z", "X/Z/D", "X/D"):
                    continue
                for sub in elem.value or []:
                    walk(sub, depth + 1)
            elif elem.VR == "UI" and elem.value and (depth > 0 or elem.keyword not in own_keywords):
                values = elem.value if elem.VM > 1 else [elem.value]
                refs.update(str(v) for v in values)

    walk(ds, 0)
    return own - {""}, refs


@pytest.mark.slow
def test_references_still_resolve(basic_export: Export) -> None:
    uids = _uid_map()
    in_targets: set[str] = set()
    in_refs: set[str] = set()
    for ref in basic_export.exported:
        t, r = _targets_and_refs(pydicom.dcmread(ref.path, stop_before_pixels=True, force=True))
        in_targets |= t
        in_refs |= r
    out_targets: set[str] = set()
    out_refs: set[str] = set()
    for path in basic_export.out.rglob("*"):
        if path.is_file() and path.name not in ("DICOMDIR", "DEIDENTIFICATION.txt"):
            t, r = _targets_and_refs(pydicom.dcmread(path, stop_before_pixels=True))
            out_targets |= t
            out_refs |= r
    resolved = in_refs & in_targets
    missing = [u for u in resolved if uids.new_uid(u) not in out_refs or uids.new_uid(u) not in out_targets]
    assert not missing, f"{len(missing)} of {len(resolved)} references no longer resolve"
    dangling = {u for u in out_refs if u in {uids.new_uid(t) for t in in_targets}} - out_targets
    assert not dangling


@pytest.mark.slow
@needs_tool("dcmdump")
def test_dicomdir_reads_with_dcmdump_and_fileset(basic_export: Export) -> None:
    dicomdir = basic_export.out / "DICOMDIR"
    proc = subprocess.run(["dcmdump", "-q", str(dicomdir)], capture_output=True, check=False)
    errors = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, errors
    assert "E:" not in errors and b"DirectoryRecordType" in proc.stdout
    fs = FileSet(dicomdir)
    assert len(fs) == basic_export.result.instances
    for instance in list(fs)[:: max(1, len(fs) // 20)]:
        assert Path(instance.path).is_relative_to(basic_export.out / "DICOM")
        assert instance.load().SOPInstanceUID == instance.SOPInstanceUID
    for instance in fs:
        parts = Path(instance.FileID).parts
        assert all(re.fullmatch(r"[A-Z0-9_]{1,8}", p) for p in parts), parts
    assert _empty_type1_keys(dicomdir) == {}


#: record keys of Type 1 in PS3.3 F.5 (PATIENT, STUDY, SERIES, IMAGE) that the profile can empty
DIRECTORY_TYPE1 = {
    "PATIENT": ("PatientID",),
    "STUDY": ("StudyDate", "StudyTime", "StudyID"),
    "SERIES": ("Modality", "SeriesInstanceUID", "SeriesNumber"),
    "IMAGE": ("InstanceNumber",),
}


def _empty_type1_keys(dicomdir: Path) -> dict[tuple[str, str], int]:
    """(record type, keyword) → how many records have that Type 1 key missing or empty."""
    empty: dict[tuple[str, str], int] = {}
    for record in pydicom.dcmread(dicomdir).DirectoryRecordSequence:
        for keyword in DIRECTORY_TYPE1.get(record.DirectoryRecordType, ()):
            value = record.get(keyword, None)
            if value is None or not str(value).strip():  # IS 0 is a value
                key = (record.DirectoryRecordType, keyword)
                empty[key] = empty.get(key, 0) + 1
    return empty


def test_dicomdir_records_keep_type1_keys_the_files_lack(tmp_path: Path) -> None:
    """A file with no date left gets Study Date/Time from the next date it has (as DCMTK's ``dcmmkdir +I``
    does), else a fixed dummy (not the export date); missing Study ID, Series and Instance Number are
    numbered — a DICOMDIR record never has an empty Type 1 key."""
    src = tmp_path / "in"
    src.mkdir()
    ds = pydicom.dcmread(_testfile("CT_small.dcm"))
    ds.save_as(src / "IM1")
    ds.SOPInstanceUID = ds.SOPInstanceUID + ".2"
    ds.StudyInstanceUID = ds.StudyInstanceUID + ".2"
    for element in ds:
        if element.VR in ("DA", "TM", "DT"):
            element.value = ""
    del ds.SeriesNumber, ds.InstanceNumber
    ds.save_as(src / "IM2")
    out = tmp_path / "OUT"
    args = ["anonymize", str(src), "--secret", "s", "-q", "--allow-burned-in"]
    assert main([*args, "-o", str(out), "--shift-days", "-10"]) == 0
    assert _empty_type1_keys(out / "DICOMDIR") == {}
    records = pydicom.dcmread(out / "DICOMDIR").DirectoryRecordSequence
    dates = sorted((str(r.StudyDate), str(r.StudyTime)) for r in records if r.DirectoryRecordType == "STUDY")
    shifted = (date.fromisoformat(str(pydicom.dcmread(src / "IM1").StudyDate)) - timedelta(days=10)).strftime(
        "%Y%m%d"
    )
    assert [d for d, _ in dates] == ["19000101", shifted]
    bare = tmp_path / "BARE"
    assert main([*args, "--profile", "basic", "-o", str(bare)]) == 0
    assert _empty_type1_keys(bare / "DICOMDIR") == {}
    bare_records = pydicom.dcmread(bare / "DICOMDIR").DirectoryRecordSequence
    study_ids = {str(r.StudyID) for r in bare_records if r.DirectoryRecordType == "STUDY"}
    assert len(study_ids) == 2, "one Study ID per study, each with a value"
    numbers = [str(r.SeriesNumber) for r in bare_records if r.DirectoryRecordType == "SERIES"]
    assert len(numbers) == 2 and all(numbers), "IM2 lost its Series Number; the record numbers it"


@pytest.mark.slow
def test_report_lists_options_counts_and_left_out(basic_export: Export) -> None:
    text = (basic_export.out / "DEIDENTIFICATION.txt").read_text()
    assert "Basic Application Level Confidentiality Profile" in text and "2024b" in text
    assert f"{basic_export.result.instances} instance(s)" in text
    assert f"Left out: {len(basic_export.result.dropped)} file(s)." in text
    for ref in basic_export.exported[:20]:
        assert str(ref.path) not in text, "the report inside the output names no input path"


# ------------------------------------------------------------------------------ options and consistency


@pytest.mark.slow
@needs_shared("taichi_mri_cd")
def test_second_opinion_defaults_shift_dates_per_patient(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = SHARED_DATA / "taichi_mri_cd"
    assert main(["anonymize", str(src), "-o", str(tmp_path / "a"), "--secret", "one"]) == 0
    assert main(["anonymize", str(src), "-o", str(tmp_path / "b"), "--secret", "one"]) == 0
    assert main(["anonymize", str(src), "-o", str(tmp_path / "c"), "--secret", "two"]) == 0
    capsys.readouterr()

    def sops(out: Path) -> dict[str, Dataset]:
        return {
            str(ds.SOPInstanceUID): ds
            for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in (out / "DICOM").rglob("IM*"))
        }

    a, b, c = sops(tmp_path / "a"), sops(tmp_path / "b"), sops(tmp_path / "c")
    assert set(a) == set(b), "same secret: same UIDs in every export"
    assert not set(a) & set(c), "another secret: other UIDs"
    deltas = set()
    for path in (src / "DCMDT").iterdir():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        out = a[Deidentifier(Settings(secret=b"one")).new_uid(str(ds.SOPInstanceUID))]
        for kw in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
            if ds.get(kw):
                from datetime import date

                def d(s: str) -> date:
                    return date(int(s[:4]), int(s[4:6]), int(s[6:8]))

                deltas.add((d(str(out.get(kw))) - d(str(ds.get(kw)))).days)
        assert out.LongitudinalTemporalInformationModified == "MODIFIED"
        assert out.PatientAge == ds.PatientAge and out.PatientSex == ds.PatientSex, (
            "patient characteristics kept"
        )
        assert str(out.PatientName).startswith("ANONYMOUS^") and out.PatientID
        assert out.StudyTime == ds.StudyTime, "times of day are kept with shifted dates"
    assert len(deltas) == 1 and -3650 <= deltas.pop() <= -366


@pytest.mark.slow
@needs_shared("taichi_mri_cd")
def test_ls_json_counts_and_zip(tmp_path: Path) -> None:
    src = SHARED_DATA / "taichi_mri_cd"
    out = tmp_path / "share.zip"
    assert main(["anonymize", str(src), "-o", str(out), "--secret", "s", "-q"]) == 0
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    assert "DICOMDIR" in names and "DEIDENTIFICATION.txt" in names
    assert all(n in ("DICOMDIR", "DEIDENTIFICATION.txt") or n.startswith("DICOM/") for n in names)

    def ls(path: Path) -> list[tuple[int, int, int]]:
        proc = subprocess.run(
            [sys.executable, "-m", "tui_dicom", "ls", str(path), "--json"],
            capture_output=True,
            check=True,
            cwd=REPO,
        )
        data = json.loads(proc.stdout)
        return sorted(
            (
                len(p["studies"]),
                sum(len(s["series"]) for s in p["studies"]),
                sum(se["instances"] for s in p["studies"] for se in s["series"]),
            )
            for p in data["patients"]
        )

    assert ls(out) == ls(src) == [(1, 5, 67)]


# -------------------------------------------------------------------------------------- hostile input


def _testfile(name: str) -> str:
    path = pydicom.data.get_testdata_file(name, download=False)
    assert isinstance(path, str), f"pydicom test file {name} missing"
    return path


def _hostile_folder(root: Path) -> Path:
    src = _testfile("CT_small.dcm")
    folder = root / "in"
    folder.mkdir()
    shutil.copy(src, folder / "good.dcm")
    data = Path(src).read_bytes()
    (folder / "unparsable.dcm").write_bytes(
        b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"\x01" * 50
    )
    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.999.1"
    ds.save_as(folder / "truncated.dcm")
    cut = (folder / "truncated.dcm").read_bytes()
    (folder / "truncated.dcm").write_bytes(cut[: len(cut) - 5000])
    for n, (name, value) in enumerate(
        [("bigname.dcm", "Huge" * 2_621_440), ("control.dcm", "Evil\x1b]0;pwned\x07^Mallory")], 2
    ):
        ds = pydicom.dcmread(src)
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.10.999.{n}"
        ds.PatientName = value
        ds.save_as(folder / name)
    assert len(data) > 0
    return folder


def test_hostile_files_left_out_and_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _hostile_folder(tmp_path)
    out = tmp_path / "OUT"
    report = tmp_path / "report.txt"
    assert main(["anonymize", str(folder), "-o", str(out), "--secret", "s", "--report", str(report)]) == 1
    printed = capsys.readouterr().out
    assert str(folder / "control.dcm") in report.read_text(), "--report names the input files"
    assert str(folder) not in (out / "DEIDENTIFICATION.txt").read_text(), "the copy's report does not"
    assert "1 instance(s)" in printed
    for name, reason in [
        ("unparsable.dcm", ""),
        ("truncated.dcm", "truncated"),
        ("bigname.dcm", "characters long"),
        ("control.dcm", "control characters"),
    ]:
        line = next((ln for ln in printed.splitlines() if name in ln), None)
        assert line is not None and reason in line, printed
    assert "\x1b" not in printed and "pwned" not in printed
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert b"pwned" not in everything and b"HugeHuge" not in everything and b"Mallory" not in everything
    assert len(list((out / "DICOM").rglob("IM*"))) == 1


def _tree_hash(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def test_safety_output_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _hostile_folder(tmp_path)
    before = _tree_hash(folder)
    assert main(["anonymize", str(folder), "-o", str(folder / "OUT"), "-q"]) == 2, "OUT inside an input"
    existing = tmp_path / "exists"
    existing.mkdir()
    (existing / "keep").write_text("x")
    assert main(["anonymize", str(folder), "-o", str(existing), "-q"]) == 2, "OUT exists"
    assert (existing / "keep").read_text() == "x"
    assert main(["anonymize", str(folder), "-o", str(tmp_path), "-q", "--force"]) == 2, "an input inside OUT"

    def boom(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSet, "write", boom)
    listing = sorted(os.listdir(tmp_path))
    with pytest.raises(OSError):
        Exporter(
            [FileRef(str(folder / "good.dcm"))], tmp_path / "new", Settings(secret=b"s"), inputs=[folder]
        ).run()
    assert sorted(os.listdir(tmp_path)) == listing, "a failure leaves nothing behind"
    monkeypatch.undo()
    assert main(["anonymize", str(folder), "-o", str(existing), "-q", "--force"]) == 1
    assert not (existing / "keep").exists() and (existing / "DICOMDIR").is_file(), "--force replaces OUT"
    assert _tree_hash(folder) == before, "inputs are never written"


def test_burned_in_stops_the_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    us = _testfile("US1_UNCR.dcm")
    ct = _testfile("CT_small.dcm")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(us, folder / "us.dcm")
    shutil.copy(ct, folder / "ct.dcm")
    assert main(["anonymize", str(folder), "-o", str(tmp_path / "OUT"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "burned into the pixels" in err and "us.dcm" in err and "ct.dcm" not in err
    assert not (tmp_path / "OUT").exists()
    with pytest.raises(ExportRefused):
        Exporter([FileRef(str(folder / "us.dcm"))], tmp_path / "OUT", Settings(secret=b"s")).run()
    assert main(["anonymize", str(folder), "-o", str(tmp_path / "OUT"), "-q", "--allow-burned-in"]) == 0
    assert "2 instance(s)" in (tmp_path / "OUT" / "DEIDENTIFICATION.txt").read_text()


def test_mask_blacks_out_burned_in_text_only_where_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    us = _testfile("US1_UNCR.dcm")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(us, folder / "us.dcm")
    original = pydicom.dcmread(us)
    series = str(original.SeriesInstanceUID)
    assert main(["anonymize", str(folder), "-o", str(tmp_path / "X"), "-q", "--mask", "1.2.3=0,0,10,10"]) == 1
    assert "us.dcm" in capsys.readouterr().err, "a mask for another series does not cover this image"
    out = tmp_path / "OUT"
    assert (
        main(
            [
                "anonymize",
                str(folder),
                "-o",
                str(out),
                "-q",
                "--secret",
                "s",
                "--mask",
                f"{series}=10,20,100,40",
            ]
        )
        == 0
    )
    (path,) = (out / "DICOM").rglob("IM*")
    ds = pydicom.dcmread(path)
    before, after = original.pixel_array, ds.pixel_array
    assert (after[20:60, 10:110] == 0).all()
    outside = after.copy()
    outside[20:60, 10:110] = before[20:60, 10:110]
    assert (outside == before).all(), "only the rectangle changes"
    assert "113101" in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]


def test_cancel_leaves_nothing(tmp_path: Path) -> None:
    folder = _hostile_folder(tmp_path)
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done > total // 3 + 2:  # in the writing pass, with files already de-identified
            cancel.set()

    listing = sorted(os.listdir(tmp_path))
    exporter = Exporter(
        [FileRef(str(p)) for p in sorted(folder.iterdir())],
        tmp_path / "OUT",
        Settings(secret=b"s"),
        inputs=[folder],
        progress=progress,
        cancel=cancel,
    )
    with pytest.raises(ExportRefused, match="cancelled"):
        exporter.run()
    assert max(seen) > len(list(folder.iterdir())), "cancelled while writing, not before"
    assert sorted(os.listdir(tmp_path)) == listing


def test_a_file_that_cannot_be_written_is_left_out_without_a_dangling_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(_testfile("CT_small.dcm"), folder / "ct.dcm")
    shutil.copy(_testfile("MR_small.dcm"), folder / "mr.dcm")
    real_save = Dataset.save_as

    def save_as(self: Dataset, *args: Any, **kwargs: Any) -> None:
        if str(self.get("Modality")) == "MR":
            raise TypeError("cannot encode")
        real_save(self, *args, **kwargs)

    monkeypatch.setattr(Dataset, "save_as", save_as)
    out = tmp_path / "OUT"
    hierarchy = build_index([folder])
    refs = [inst.ref for se in hierarchy.all_series() for inst in se.instances]
    result = Exporter(refs, out, Settings(secret=b"s"), inputs=[folder]).run()
    assert result.instances == 1
    assert [d.reason for d in result.dropped] == ["cannot be written (TypeError)"]
    fs = FileSet(out / "DICOMDIR")
    assert len(fs) == 1 and next(iter(fs)).load().Modality == "CT"
    records = [r.DirectoryRecordType for r in pydicom.dcmread(out / "DICOMDIR").DirectoryRecordSequence]
    assert records == ["PATIENT", "STUDY", "SERIES", "IMAGE"], "no record left for the file that failed"
