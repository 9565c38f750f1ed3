"""The pydicom-free dump reader (:mod:`tui_dicom.core.inspector.quickdump`) against the pydicom path.

``dump`` reads a file without pydicom when it can (start-up), and with pydicom when the quick reader
says :class:`Fallback`. For every file of the test corpora (pydicom's test and charset files and
``../shared/data``), in both reading modes, the quick reader must either fall back or give exactly
the rows the pydicom path gives; ``-t`` selection must pick the same elements. (The pydicom path is
itself checked against DCMTK's dcmdump in ``test_dump_dcmdump_parity.py``, which now runs through
the quick reader wherever it applies.)
"""

from __future__ import annotations

import argparse
import io
import warnings
from collections import Counter
from pathlib import Path

import pytest
from bundled import bundled
from pydicom import dcmread
from pydicom.data import get_charset_files, get_testdata_file
from test_dump_dcmdump_parity import _files, _id

from tui_dicom.commands import dump as dump_cmd
from tui_dicom.core.dicom.reading import read_dataset
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.inspector import quickdump
from tui_dicom.core.inspector.quickdump import Fallback, read_rows
from tui_dicom.core.inspector.tags import (
    DEFAULT_MAX_VALUE_CHARS,
    TagRow,
    parse_tag_query,
    select,
    tag_rows,
)

FILES = _files()


def _pydicom_rows(
    path: Path,
    stop: bool,
    *,
    include_private: bool = True,
    max_depth: int | None = None,
    max_value_chars: int | None = DEFAULT_MAX_VALUE_CHARS,
) -> list[TagRow]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tag_rows(
            read_dataset(FileRef(str(path)), stop_before_pixels=stop),
            include_private=include_private,
            max_depth=max_depth,
            max_value_chars=max_value_chars,
        )


@pytest.mark.slow
def test_quick_rows_equal_pydicom_rows_on_every_corpus_file() -> None:
    quick = fallbacks = 0
    reasons: Counter[str] = Counter()
    mismatches = []
    for path in FILES:
        for stop in (True, False):
            try:
                got = read_rows(FileRef(str(path)), stop_before_pixels=stop, max_value_chars=1024)
            except Fallback as exc:
                fallbacks += 1
                reasons[str(exc)] += 1
                continue
            quick += 1
            want = _pydicom_rows(path, stop, max_value_chars=1024)
            if got.rows != want:
                first = next(
                    (i for i, (a, b) in enumerate(zip(got.rows, want, strict=False)) if a != b),
                    min(len(got.rows), len(want)),
                )
                mismatches.append(
                    f"{_id(path)} stop={stop} row {first}: {got.rows[first : first + 1]} != {want[first : first + 1]}"
                )
    print(f"quick reader: {quick} reads, {fallbacks} fell back to pydicom; reasons: {reasons.most_common()}")
    assert not mismatches, "\n".join(mismatches[:20])
    # the quick reader must actually carry the common case, not fall back on everything
    assert quick >= 0.7 * (quick + fallbacks), reasons.most_common()


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "rtplan.dcm"]
)
def test_options_give_the_same_rows(name: str) -> None:
    path = Path(bundled(name))
    for include_private in (True, False):
        for max_depth in (None, 0, 1):
            for max_chars in (None, 40):
                got = read_rows(
                    FileRef(str(path)),
                    stop_before_pixels=True,
                    include_private=include_private,
                    max_depth=max_depth,
                    max_value_chars=max_chars,
                )
                want = _pydicom_rows(
                    path,
                    True,
                    include_private=include_private,
                    max_depth=max_depth,
                    max_value_chars=max_chars,
                )
                assert got.rows == want, (include_private, max_depth, max_chars)


QUERIES = [
    "PatientName",
    "0010,0020",
    "(0002,0010)",
    "7FE00010",
    "*.ReferencedSOPInstanceUID",
    "ReferencedImageSequence[0].ReferencedSOPInstanceUID",
    "BeamSequence[*].ControlPointSequence[1].GantryAngle",
    "*.ControlPointSequence",
    "*.CodeValue",
    "0009,1001",
    "*.0029,1010",
]


@pytest.mark.slow
def test_selection_matches_pydicom_select_on_every_quick_file() -> None:
    checked = 0
    for path in FILES:
        try:
            got = read_rows(FileRef(str(path)), stop_before_pixels=True, max_value_chars=None)
        except Fallback:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = read_dataset(FileRef(str(path)), stop_before_pixels=True)
        for text in QUERIES:
            query = parse_tag_query(text)
            want = [m.path for m in select(ds, query)]
            have = [got.rows[i].path for i in quickdump.select_rows(got.rows, query.steps)]
            assert have == want, (_id(path), text)
            checked += bool(want)
    assert checked > 100  # the queries do find things


def _dump_text(argv: list[str], *, quick: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    dump_cmd.add_arguments(parser)
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    with monkeypatch.context() as m:
        if not quick:
            m.setattr(dump_cmd, "_try_quick", lambda *a: None)
        code = dump_cmd.dump(args, out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--no-private"],
        ["--depth", "1"],
        ["-t", "PatientID"],
        ["-t", "*.CodeMeaning", "--depth", "0"],
        ["-t", "PatientName", "-t", "StudyDate"],
    ],
)
def test_dump_output_is_the_same_either_way(extra: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    names = [
        "CT_small.dcm",
        "MR_small_bigendian.dcm",
        "rtplan.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
        "waveform_ecg.dcm",
        "examples_overlay.dcm",
        "SC_rgb_rle.dcm",
        "JPEG2000.dcm",
    ]
    for name in names:
        path = get_testdata_file(name, download=False)
        assert isinstance(path, str)
        assert _dump_text([path, *extra], quick=True, monkeypatch=monkeypatch) == _dump_text(
            [path, *extra], quick=False, monkeypatch=monkeypatch
        ), (name, extra)


def test_files_the_quick_reader_cannot_show_exactly_fall_back(tmp_path: Path) -> None:
    # deflated, ISO 2022 Japanese, no DICM marker: pydicom's reading is needed
    for name, reason in [
        ("image_dfl.dcm", "deflated"),
        ("no_meta.dcm", "no DICM marker"),
    ]:
        path = get_testdata_file(name, download=False)
        assert isinstance(path, str)
        with pytest.raises(Fallback, match=reason):
            read_rows(FileRef(path), stop_before_pixels=True, max_value_chars=None)
    # a value cut short by the end of the file
    data = Path(bundled("CT_small.dcm")).read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:1000])
    with pytest.raises(Fallback):
        read_rows(FileRef(str(cut)), stop_before_pixels=True, max_value_chars=None)


def _explicit_file(elements: list[tuple[int, bytes, bytes]], tmp_path: Path, name: str) -> Path:
    """A Part 10 file (explicit VR little endian) whose dataset holds ``elements`` in the order given."""
    import struct

    from pydicom.uid import ExplicitVRLittleEndian

    meta_value = ExplicitVRLittleEndian.encode() + b"\0"
    meta_el = struct.pack("<HH2sH", 0x0002, 0x0010, b"UI", len(meta_value)) + meta_value
    meta = struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(meta_el)) + meta_el
    body = b""
    for tag, vr, value in elements:
        if len(value) % 2:
            value += b"\0" if vr == b"UI" else b" "
        body += struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value
    path = tmp_path / name
    path.write_bytes(b"\0" * 128 + b"DICM" + meta + body)
    return path


def test_elements_out_of_order_are_shown_sorted_like_pydicom(tmp_path: Path) -> None:
    """pydicom shows elements sorted whatever their order in the file; the quick reader does the same
    (the hostile corpus's 50,000-item sequence is such a file), and falls back where reading order
    decides something: a character set or private creator read late, a repeated tag."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import hostile_corpus

    wide = tmp_path / "wide.dcm"
    wide.write_bytes(hostile_corpus._wide(300))
    late_modality = _explicit_file(
        [(0x00100010, b"PN", b"Late^Name"), (0x00080060, b"CS", b"CT"), (0x00100020, b"LO", b"ID1")],
        tmp_path,
        "late.dcm",
    )
    for path in (wide, late_modality):
        for stop in (True, False):
            got = read_rows(FileRef(str(path)), stop_before_pixels=stop, max_value_chars=1024)
            assert got.rows == _pydicom_rows(path, stop, max_value_chars=1024)
    assert [
        r.keyword
        for r in read_rows(FileRef(str(late_modality)), stop_before_pixels=True, max_value_chars=None).rows
        if r.depth == 0
    ][-3:] == ["Modality", "PatientName", "PatientID"]
    fall_back = {
        "charset.dcm": [(0x00100010, b"PN", b"Name"), (0x00080005, b"CS", b"ISO_IR 100")],
        "creator.dcm": [(0x00091001, b"LO", b"value"), (0x00090010, b"LO", b"CREATOR")],
        "repeated.dcm": [(0x00100010, b"PN", b"One"), (0x00100010, b"PN", b"Two")],
    }
    for name, elements in fall_back.items():
        with pytest.raises(Fallback):
            read_rows(
                FileRef(str(_explicit_file(elements, tmp_path, name))),
                stop_before_pixels=True,
                max_value_chars=None,
            )


@pytest.mark.slow
def test_every_hostile_corpus_file_falls_back_or_gives_the_pydicom_rows(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import hostile_corpus

    try:
        cases = hostile_corpus.build_files(tmp_path / "files")
    except FileNotFoundError as exc:
        pytest.skip(f"pydicom test files not available: {exc}")
    quick, mismatches = [], []
    for case in cases:
        if case.kind in ("deep", "notdicom") or case.name.startswith("deflate"):
            continue
        try:
            got = read_rows(FileRef(str(case.path)), stop_before_pixels=True, max_value_chars=1024)
        except Fallback:
            continue
        quick.append(case.name)
        if case.kind == "wide":
            continue  # its rows are checked on a smaller twin above (pydicom takes seconds on this one)
        try:
            want = _pydicom_rows(case.path, True, max_value_chars=1024)
        except Exception as exc:  # noqa: BLE001 - pydicom refuses what the quick reader read: a finding
            mismatches.append(f"{case.name}: pydicom cannot read it ({exc})")
            continue
        if got.rows != want:
            mismatches.append(case.name)
    assert not mismatches, mismatches
    assert "wide_50000_items.dcm" in quick  # a big sequence: the quick reader carries it (7 s with pydicom)


def test_values_remembered_across_files_change_no_row_and_stay_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The value texts the quick reader keeps from file to file (a series repeats most of a header) give
    every file the rows it gets read alone, whatever was read before (files in other character sets and
    byte orders included), and the store is emptied once it holds more than its bound."""
    charsets = [
        get_charset_files(name)[0]
        for name in ("chrRuss.dcm", "chrGreek.dcm", "chrArab.dcm", "chrX1.dcm", "chrFrenMulti.dcm")
    ]
    paths = [Path(p) for p in charsets] + [
        Path(bundled(n)) for n in ("CT_small.dcm", "MR_small_bigendian.dcm")
    ]
    alone = {}
    for path in paths:
        quickdump._SHOWN.clear()
        alone[path] = read_rows(FileRef(str(path)), stop_before_pixels=True, max_value_chars=64).rows
    monkeypatch.setattr(quickdump, "_SHOWN_MAX", 40)
    quickdump._SHOWN.clear()
    for path in [*paths, *reversed(paths), *paths]:
        assert (
            read_rows(FileRef(str(path)), stop_before_pixels=True, max_value_chars=64).rows == alone[path]
        ), path.name
        # emptied before a file when over the bound: at most the bound plus one file's values remain
        assert all(len(memo) <= 40 + len(alone[path]) for memo in quickdump._SHOWN.values())
    assert any(quickdump._SHOWN.values()), "nothing was remembered: the test exercises nothing"


def test_the_same_value_bytes_in_two_character_sets_are_shown_in_each(tmp_path: Path) -> None:
    """One name's bytes, written once under Cyrillic (ISO_IR 144) and once under Latin-1 (ISO_IR 100):
    each file shows its own reading, as pydicom reads it, in either order (the remembered texts are
    kept by character set)."""
    cyrillic = "Иванов^Пётр"
    raw = cyrillic.encode("iso8859_5")
    paths = []
    for charset, name in (("ISO_IR 144", cyrillic), ("ISO_IR 100", raw.decode("latin-1"))):
        ds = dcmread(bundled("CT_small.dcm"))
        ds.SpecificCharacterSet = charset
        ds.PatientName = name
        path = tmp_path / f"{charset.replace(' ', '_')}.dcm"
        ds.save_as(path)
        paths.append(path)
    for order in (paths, paths[::-1]):
        quickdump._SHOWN.clear()
        for path in order:
            got = read_rows(FileRef(str(path)), stop_before_pixels=True, max_value_chars=64).rows
            assert got == _pydicom_rows(path, True, max_value_chars=64), path.name
    names = {
        path.name: next(
            r.value
            for r in read_rows(FileRef(str(path)), stop_before_pixels=True, max_value_chars=64).rows
            if r.keyword == "PatientName"
        )
        for path in paths
    }
    assert "Иванов" in names["ISO_IR_144.dcm"]
    assert "Иванов" not in names["ISO_IR_100.dcm"]
