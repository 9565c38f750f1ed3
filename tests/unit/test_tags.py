"""Tests of the pure tag-row core: rows, queries, selection, inspector search, varying tags, DICOM JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataset import Dataset

from tui_dicom.core.dicom.reading import read_dataset
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.inspector.tags import (
    ITEM_TAG,
    Step,
    TagQueryError,
    filter_rows,
    is_bulk,
    json_text,
    parse_tag_query,
    select,
    strip_dataset,
    tag_rows,
    to_dicom_json,
    varying_tags,
    with_ancestors,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
GE_CT = SHARED / "ge_ct_head"


def _read(name: str, *, pixels: bool = False) -> Dataset:
    path = get_testdata_file(name, download=False)
    if path is None and name.startswith("chr"):
        found = get_charset_files(name)
        path = found[0] if found else None
    if path is None:
        pytest.skip(f"pydicom test file {name} not available")
    return read_dataset(FileRef(str(path)), stop_before_pixels=not pixels)


# ------------------------------------------------------------------------------------------------ rows


def test_rows_meta_first_then_dataset_and_sequences_nested() -> None:
    ds = _read("CT_small.dcm", pixels=True)
    rows = tag_rows(ds)
    assert rows[0].tag == 0x00020000 and rows[0].depth == 0
    tags = [r.tag for r in rows if r.depth == 0]
    assert tags == sorted(tags), "top level in tag order, meta first"
    seq = next(i for i, r in enumerate(rows) if r.keyword == "OtherPatientIDsSequence")
    assert rows[seq].is_sequence and rows[seq].value == "2 items"
    item = rows[seq + 1]
    assert item.is_item and item.tag == ITEM_TAG and item.parent == seq and item.depth == 1
    inner = rows[seq + 2]
    assert (inner.keyword, inner.value, inner.depth, inner.parent) == ("PatientID", "ABCD1234", 2, seq + 1)
    assert inner.path == (0x00101002, 0, 0x00100020)
    second_item = rows[seq + 4]
    assert second_item.is_item and second_item.path == (0x00101002, 1)
    pixel = next(r for r in rows if r.tag == 0x7FE00010)
    assert pixel.value == "OW 32,768 bytes, 128×128 16-bit"
    assert pixel.length == 32768


def test_row_values_multi_values_numbers_private_names() -> None:
    rows = {r.path: r for r in tag_rows(_read("CT_small.dcm"))}
    assert rows[(0x00080008,)].value == "ORIGINAL\\PRIMARY\\AXIAL"
    assert rows[(0x00080008,)].length == 22
    assert rows[(0x00200032,)].value == "-158.135803\\-179.035797\\-75.699997"
    full_fidelity = rows[(0x00091001,)]
    assert full_fidelity.private_creator == "GEMS_IDEN_01"
    assert full_fidelity.name == "Full fidelity" and full_fidelity.keyword == "FullFidelity"
    assert rows[(0x00090010,)].keyword == "PrivateCreator"
    assert rows[(0x00431012,)].value == "14\\2\\3"  # SS multi-value


def test_include_private_and_meta_switches() -> None:
    ds = _read("CT_small.dcm")
    rows = tag_rows(ds, include_meta=False, include_private=False)
    assert not any(r.tag >> 16 == 2 for r in rows)
    assert not any((r.tag >> 16) & 1 for r in rows if not r.is_item)


def test_max_depth_limits_expansion() -> None:
    ds = _read("CT_small.dcm")
    top = tag_rows(ds, max_depth=0)
    assert all(r.depth == 0 for r in top)
    assert any(r.is_sequence for r in top)
    assert any(r.depth == 2 for r in tag_rows(ds, max_depth=1))


def test_long_values_cut_with_length_shown() -> None:
    ds = Dataset()
    ds.ImageComments = "x" * 1000
    row = tag_rows(ds, max_value_chars=50)[0]
    assert row.value.startswith("x" * 50) and row.value.endswith("… (1,000 chars)")
    assert len(row.value) < 80
    assert tag_rows(ds, max_value_chars=None)[0].value == "x" * 1000


def test_values_are_terminal_safe() -> None:
    ds = Dataset()
    ds.PatientName = "A\x1b[2J\x9b31m\x07B"
    ds.StudyDescription = "[bold]x[/] [link=http://e]y"
    rows = {r.keyword: r.value for r in tag_rows(ds)}
    assert "\x1b" not in rows["PatientName"] and "\x9b" not in rows["PatientName"]
    assert rows["PatientName"] == "A\\x1b[2J\\x9b31m\\x07B"
    assert rows["StudyDescription"] == "[bold]x[/] [link=http://e]y"  # markup kept literally


def test_charset_values_decoded() -> None:
    rows = {r.keyword: r.value for r in tag_rows(_read("chrH31.dcm"))}
    assert rows["PatientName"] == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    rows = {r.keyword: r.value for r in tag_rows(_read("chrX1.dcm"))}
    assert rows["PatientName"] == "Wang^XiaoDong=王^小東"


def test_rows_for_2000_elements_fast_enough() -> None:
    """Builds rows of a 2,000-element header (the figure is printed; the bound is generous)."""
    ds = Dataset()
    for i in range(2000):
        ds.add_new((0x0011 << 16) | (0x1000 + i), "LO", f"value {i}")
    ds.add_new(0x00110010, "LO", "ACME")
    start = time.perf_counter()
    rows = tag_rows(ds)
    elapsed = time.perf_counter() - start
    print(f"tag_rows: {len(rows)} rows in {elapsed * 1000:.1f} ms")
    assert len(rows) == 2001


# --------------------------------------------------------------------------------------------- queries


@pytest.mark.parametrize(
    "text",
    ["PatientID", "0010,0020", "(0010,0020)", "00100020", "0x00100020", " (0010, 0020) "],
)
def test_query_forms(text: str) -> None:
    assert parse_tag_query(text).steps == (Step(0x00100020),)


def test_query_paths_and_wildcards() -> None:
    q = parse_tag_query("ReferencedImageSequence[0].ReferencedSOPInstanceUID")
    assert q.steps == (Step(0x00081140, 0), Step(0x00081155))
    assert parse_tag_query("(0008,1140)[*].00081155").steps == (Step(0x00081140), Step(0x00081155))
    assert parse_tag_query("*.ReferencedSOPInstanceUID").steps == (Step(None), Step(0x00081155))


@pytest.mark.parametrize("bad", ["", "NoSuchKeyword", "PatientID.*", "Seq[0]", "a..b", "0010,00zz"])
def test_bad_queries_raise(bad: str) -> None:
    with pytest.raises(TagQueryError):
        parse_tag_query(bad)


def test_select_paths_items_and_wildcard() -> None:
    ds = _read("CT_small.dcm")
    assert [m.element.value for m in select(ds, "PatientID")] == ["1CT1"]
    assert [m.element.value for m in select(ds, "OtherPatientIDsSequence[1].PatientID")] == ["1234ABCD"]
    assert [m.element.value for m in select(ds, "OtherPatientIDsSequence.PatientID")] == [
        "ABCD1234",
        "1234ABCD",
    ]
    found = select(ds, "*.PatientID")
    assert [m.path for m in found] == [
        (0x00100020,),
        (0x00101002, 0, 0x00100020),
        (0x00101002, 1, 0x00100020),
    ]
    assert select(ds, "OtherPatientIDsSequence[5].PatientID") == []
    assert select(ds, "AccessionNumber")[0].element.value == ""
    assert select(ds, "TransferSyntaxUID")[0].element.value == "1.2.840.10008.1.2.1"  # from file meta


def test_select_nested_rt_plan() -> None:
    ds = _read("rtplan.dcm")
    found = select(ds, "*.ReferencedSOPInstanceUID")
    assert found and all(m.path[-1] == 0x00081155 for m in found)
    assert all(len(m.path) >= 3 for m in found)


# ----------------------------------------------------------------------------------- inspector search


def test_filter_rows_by_keyword_name_tag_value() -> None:
    rows = tag_rows(_read("CT_small.dcm"))
    by_kw = filter_rows(rows, "patientid")
    assert {rows[i].value for i in by_kw} >= {"1CT1", "ABCD1234", "1234ABCD"}
    assert {rows[i].keyword for i in filter_rows(rows, "Patient's Name")} == {"PatientName"}
    for form in ("0010,0010", "(0010,0010)", "00100010", "0X00100010"):
        assert [rows[i].keyword for i in filter_rows(rows, form)] == ["PatientName"], form
    assert {rows[i].keyword for i in filter_rows(rows, "jfk imaging")} == {"InstitutionName"}
    assert {rows[i].tag >> 16 for i in filter_rows(rows, "0028,")} == {0x0028}
    assert filter_rows(rows, "") == list(range(len(rows)))
    assert filter_rows(rows, "no such text anywhere") == []


def test_filter_matches_shown_with_parents() -> None:
    rows = tag_rows(_read("CT_small.dcm"))
    hits = filter_rows(rows, "ABCD1234")
    assert len(hits) == 1
    shown = with_ancestors(rows, hits)
    assert [rows[i].keyword for i in shown] == ["OtherPatientIDsSequence", "Item", "PatientID"]


def test_varying_tags_on_ge_ct_head() -> None:
    if not GE_CT.is_dir():
        pytest.skip(f"shared data not found at {GE_CT}")
    files = sorted(GE_CT.glob("*.dcm"))
    assert len(files) > 5
    datasets = [read_dataset(FileRef(str(p))) for p in files]
    varying = set(varying_tags(datasets))
    assert (0x00200032,) in varying  # ImagePositionPatient
    assert (0x00200013,) in varying  # InstanceNumber
    assert (0x00100020,) not in varying  # PatientID
    assert (0x00080060,) not in varying  # Modality
    assert varying_tags(datasets[:1]) == []


# ------------------------------------------------------------------------------------------ DICOM JSON


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "rtplan.dcm", "chrH31.dcm", "waveform_ecg.dcm", "nested_priv_SQ.dcm"]
)
def test_json_round_trip_matches_dataset_without_bulk(name: str) -> None:
    ds = _read(name, pixels=True)
    doc = to_dicom_json(ds)
    text = json_text(doc)
    back = Dataset.from_json(json.loads(text))
    expected = strip_dataset(ds)
    assert len(expected) >= 1
    assert "7FE00010" not in doc
    for elem in expected:
        assert elem.tag in back, f"{elem.tag} lost in JSON"
        got = back[elem.tag]
        if elem.VR == "SQ":
            assert len(got.value) == len(elem.value)
        elif elem.VR in ("DS", "IS", "FL", "FD", "OF", "OD"):
            assert str(got.value) == str(elem.value) or got.value == elem.value
        else:
            assert got.value == elem.value or str(got.value) == str(elem.value), elem.tag
    assert {e.tag for e in back} == {e.tag for e in expected}


def test_json_leaves_out_bulk_and_private() -> None:
    ds = _read("CT_small.dcm", pixels=True)
    assert is_bulk(ds["PixelData"])
    doc = to_dicom_json(ds, include_private=False)
    assert "7FE00010" not in doc
    assert not any(int(k[:4], 16) & 1 for k in doc)
    assert doc["00100020"] == {"vr": "LO", "Value": ["1CT1"]}


def test_json_text_is_terminal_safe() -> None:
    text = json_text({"a": "x\x1b[2J\x9b\x07\u202e"})
    assert not any(c in text for c in "\x1b\x9b\x07\u202e")
    assert json.loads(text) == {"a": "x\x1b[2J\x9b\x07\u202e"}
