"""Every row of PS3.15 Table E.1-1, applied: the action the table gives is the action carried out.

The expected action is read from the shipped JSON here, independently of the engine's own lookup: a
single action must be carried out exactly; a combination (``X/Z/D`` ...) must end in one of the
alternatives it allows. Each option set is checked at the top level and two sequence levels down.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from tui_dicom.core.deid.engine import SECOND_OPINION, Deidentifier, DeidError, Settings, shift_date
from tui_dicom.core.deid.table import Option, load_table

ROWS: list[dict[str, str]] = json.loads(
    resources.files("tui_dicom.core.deid")
    .joinpath("data")
    .joinpath("confidentiality_profile_attributes.json")
    .read_text()
)
SHIFT = -400
#: an unlisted sequence: its items are walked like the dataset (PS3.15: K on a sequence cleans it)
CONTAINER = 0x00400260  # Performed Protocol Code Sequence
_TAG = re.compile(r"^\(([0-9A-F]{4}),([0-9A-F]{4})\)$")
_DUMMY_SOURCE = {"PN": "Doe^John", "DA": "20200102", "TM": "101010", "DT": "20200102101010"}


def _value(vr: str, n: int) -> Any:
    if vr in _DUMMY_SOURCE:
        return _DUMMY_SOURCE[vr]
    if vr == "UI":
        return f"1.2.826.0.1.3680043.10.999.{n}"
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"):
        return 7
    if vr in ("DS", "IS"):
        return "7"
    if vr == "AS":
        return "042Y"
    if vr in ("OB", "OW", "UN", "OF", "OD", "OL", "OV"):
        return b"ab"
    if vr == "AT":
        return 0x00100010
    if vr == "CS":
        return "ORIGINAL"
    if vr == "UR":
        return "http://example.org/x"
    return f"v{n:04d}v"  # distinct per attribute: one value never occurs inside another


def _rows_with_tags() -> list[tuple[int, dict[str, str], str]]:
    out = []
    for row in ROWS:
        m = _TAG.match(row["tag"])
        if not m:
            continue
        tag = int(m.group(1) + m.group(2), 16)
        if tag >> 16 in (0x0000, 0x0002, 0x0004):
            continue  # command, file meta and DICOMDIR attributes live outside a stored dataset
        try:
            vr = dictionary_VR(tag).split(" or ")[0]
        except KeyError:
            vr = "LO"  # newer than pydicom's dictionary: read as text
        out.append((tag, row, vr))
    return out


TAGGED = _rows_with_tags()


def _fill(ds: Dataset) -> None:
    for n, (tag, _row, vr) in enumerate(TAGGED):
        if vr == "SQ":
            item = Dataset()
            item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.10.998.{n}"
            item.CodeMeaning = "original text"
            ds.add_new(tag, vr, Sequence([item]))
        else:
            ds.add_new(tag, vr, _value(vr, n))
    ds.add_new(0x50000010, "US", 3)  # curve
    ds.add_new(0x60003000, "OW", b"\0\1")  # overlay data
    ds.add_new(0x60004000, "LT", "overlay comment")
    ds.add_new(0x00090010, "LO", "ACME 1.0")  # private creator and element
    ds.add_new(0x00091001, "LO", "private text")


def _dataset() -> Dataset:
    ds = Dataset()
    _fill(ds)
    inner = Dataset()
    _fill(inner)
    middle = Dataset()
    middle.add_new(CONTAINER, "SQ", Sequence([inner]))
    ds.add_new(CONTAINER, "SQ", Sequence([middle]))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _expected(row: dict[str, str], options: frozenset[Option], vr: str) -> str:
    """The table's action under ``options``, read from the row (date options first for dates)."""
    if vr in ("DA", "DT", "TM"):
        for option in (Option.RETAIN_LONG_FULL_DATES, Option.RETAIN_LONG_MODIFIED_DATES):
            if option in options and option.column in row:
                return row[option.column]
    given = [row[o.column] for o in options if o.column in row]
    if "K" in given:
        return "K"
    if "C" in given:
        return "C"
    return row["basicProfile"]


def _check(
    tag: int, row: dict[str, str], vr: str, before: Any, ds: Dataset, action: str, top: bool
) -> str | None:
    """None when the element of ``ds`` is what ``action`` allows, else what is wrong."""
    present = tag in ds
    value: Any = ds[tag].value if present else None
    empty = present and (value in (None, "", b"") or (vr == "SQ" and len(value) == 0))
    changed = present and not empty and value != before
    if vr == "SQ" and present and len(value):
        uid = value[0].get("ReferencedSOPInstanceUID")
        changed = uid != before[0].ReferencedSOPInstanceUID
    alternatives = action.split("/")
    ok = {
        "X": not present,
        "Z": empty or changed,  # Z: zero length, or a dummy value
        "D": changed or (vr == "SQ" and present),
        "K": present and (value == before or vr == "SQ"),
        "U": present and str(value).startswith("2.25.") if vr == "UI" else changed,
        "U*": vr == "SQ" and present and (len(value) == 0 or changed),
    }
    if action == "C":
        if vr in ("DA", "DT"):
            good = present and value == shift_date(before, vr, SHIFT)
        elif vr == "TM":
            good = present and value == before
        elif vr in ("LO", "SH", "ST", "LT", "UT", "UC", "PN"):
            good = present and value == before  # nothing identifying in the text: kept
        else:
            good = changed or (vr == "SQ" and present)
        return None if good else f"C gave {value!r}"
    if any(ok[a] for a in alternatives):
        return None
    return f"{action} gave {'absent' if not present else repr(value)[:60]}"


OPTION_SETS = {
    "basic": frozenset(),
    "second-opinion": SECOND_OPINION,
    **{o.name.lower(): frozenset({o}) for o in Option},
    "all-retain-full-dates": frozenset(set(Option) - {Option.RETAIN_LONG_MODIFIED_DATES}),
    "all-retain-modified-dates": frozenset(set(Option) - {Option.RETAIN_LONG_FULL_DATES}),
}


@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_every_row_applied(name: str) -> None:
    options = OPTION_SETS[name]
    original = _dataset()
    ds = _dataset()
    Deidentifier(Settings(secret=b"k", options=options, shift_days=SHIFT)).deidentify(ds)
    inner = ds[CONTAINER].value[0][CONTAINER].value[0]
    inner_before = original[CONTAINER].value[0][CONTAINER].value[0]
    problems = []
    for tag, row, vr in TAGGED:
        action = _expected(row, options, vr)
        for where, got, before, top in (("top", ds, original, True), ("nested", inner, inner_before, False)):
            if top and tag in (0x00100010, 0x00100020):
                continue  # replaced by the pseudonym below
            problem = _check(tag, row, vr, before[tag].value, got, action, top)
            if problem:
                problems.append(f"{row['tag']} {row['name']} ({where}): {problem}")
    assert not problems, f"{len(problems)} rows not applied:\n" + "\n".join(problems[:40])
    for item in (ds, inner):
        assert 0x50000010 not in item, "curves are removed"
        assert 0x60003000 not in item and 0x60004000 not in item, "overlays are removed"
        assert 0x00091001 not in item and 0x00090010 not in item, "private attributes are removed"
    assert ds.PatientName != original.PatientName and str(ds.PatientName)
    assert ds.PatientID != original.PatientID and str(ds.PatientID)
    assert ds.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert codes == ["113100"] + sorted(o.code for o in options)
    expected_long = (
        "UNMODIFIED"
        if Option.RETAIN_LONG_FULL_DATES in options
        else "MODIFIED"
        if Option.RETAIN_LONG_MODIFIED_DATES in options
        else "REMOVED"
    )
    assert ds.LongitudinalTemporalInformationModified == expected_long


def test_table_is_the_2024b_edition_with_every_row() -> None:
    table = load_table()
    assert len(table.rules) == 621
    assert len(TAGGED) > 600
    assert table.rule_for(CONTAINER) is None, "the container must be unlisted for the nested check"
    names = [getattr(table.rule_for(tag), "name", None) for tag in (0x50020030, 0x60023000, 0x00291010)]
    assert names == ["Curve Data", "Overlay Data", "Private Attributes"]
    licence = (
        resources.files("tui_dicom.core.deid")
        .joinpath("data")
        .joinpath("LICENSE-dicom-standard.txt")
        .read_text()
    )
    assert "Innolitics" in licence and "Permission is hereby granted" in licence


def test_safe_private_kept_only_with_the_option() -> None:
    def make() -> Dataset:
        ds = _dataset()
        ds.add_new(0x70530010, "LO", "Philips PET Private Group")
        ds.add_new(0x70531000, "DS", "0.00123")  # SUV factor: on the safe list
        ds.add_new(0x70531001, "LO", "not on the list")
        return ds

    kept = make()
    Deidentifier(Settings(secret=b"k", options=frozenset({Option.RETAIN_SAFE_PRIVATE}))).deidentify(kept)
    assert kept[0x70531000].value == "0.00123" and kept[0x70530010].value == "Philips PET Private Group"
    assert 0x70531001 not in kept and 0x00091001 not in kept and 0x00090010 not in kept
    gone = make()
    Deidentifier(Settings(secret=b"k")).deidentify(gone)
    assert not [e.tag for e in gone if e.tag.group & 1]


def test_uids_and_pseudonyms_are_keyed_and_consistent() -> None:
    a, b = Deidentifier(Settings(secret=b"one")), Deidentifier(Settings(secret=b"one"))
    other = Deidentifier(Settings(secret=b"two"))
    uid = "1.2.840.113619.2.55.3.1234"
    assert a.new_uid(uid) == b.new_uid(uid) != other.new_uid(uid)
    assert a.new_uid(uid).startswith("2.25.") and len(a.new_uid(uid)) <= 64
    assert a.pseudonym("id:123") == b.pseudonym("id:123") != a.pseudonym("id:124")
    assert a.date_shift("id:123") == b.date_shift("id:123")
    assert -3650 <= a.date_shift("id:123") <= -366


def test_clean_descriptors_blanks_identifying_text() -> None:
    ds = _dataset()
    ds.PatientName = "Yamada^Taro"
    ds.PatientID = "PID778899"
    ds.StudyDescription = "MRI for yamada taro, id PID778899"
    settings = Settings(secret=b"k", options=frozenset({Option.CLEAN_DESCRIPTORS}))
    Deidentifier(settings).deidentify(ds)
    assert ds.StudyDescription == "MRI for * *, id *"


@pytest.mark.parametrize(
    ("keyword", "value", "reason"),
    [
        ("PatientName", "Evil\x1b]0;owned\x07^Name", "control characters"),
        ("PatientName", "A" * 10_000_000, "characters long"),
        ("InstitutionName", "Clinic\x00Name", "control characters"),
    ],
)
def test_hostile_values_refuse_the_file(keyword: str, value: str, reason: str) -> None:
    ds = _dataset()
    setattr(ds, keyword, value)
    with pytest.raises(DeidError, match=reason) as info:
        Deidentifier(Settings(secret=b"k")).deidentify(ds)
    assert "owned" not in str(info.value) and "AAAA" not in str(info.value)


def test_dates_shift_and_ranges() -> None:
    assert shift_date("20200301", "DA", -1) == "20200229"
    assert shift_date("2020.03.01", "DA", -1) == "20200229"
    assert shift_date("20200301-20200302", "DA", 1) == "20200302-20200303"
    assert shift_date("20200301101010.5+0100", "DT", 1) == "20200302101010.5+0100"
    assert shift_date("2020", "DT", 1) == "", "a partial date cannot be shifted exactly: removed"
    assert shift_date("garbage", "DA", 1) == ""
