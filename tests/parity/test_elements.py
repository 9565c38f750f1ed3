"""The element reader (:mod:`tui_dicom.core.dicom.elements`) against pydicom's own reader.

Every element of real files (pydicom's test files in each transfer syntax, inflated deflate files,
DICOMDIRs, the shared corpus) and of synthetic datasets in every combination of explicit/implicit VR,
little/big endian and defined/undefined lengths, with sequences nested inside items, is walked by both
readers; the ``(depth, tag, VR, length, value offset)`` lists must be equal. pydicom is the
reference: the expected offsets are never worked out by this test.
"""

from __future__ import annotations

import contextlib
import io
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.filereader import read_dataset, read_sequence

from tui_dicom.core import limits
from tui_dicom.core.dicom import elements as el
from tui_dicom.core.dicom.reading import is_deflated

REPO = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
SHARED = REPO.parent / "shared" / "data"
Walk = list[tuple[int, int, str | None, int, int]]


def _pydicom_files() -> Path:
    import pydicom.data

    return Path(pydicom.data.__file__).parent / "test_files"


# ------------------------------------------------------------------------------------- both walkers


def _dict_vr(tag: int) -> str | None:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _is_sequence(tag: int, vr: str | None, length: int, buf: bytes, vpos: int, little: bool) -> bool:
    """The rule pydicom reads a sequence by: an SQ VR (implicit: the dictionary's), or an undefined
    length whose value starts with an item when the dictionary does not know the tag."""
    if vr == "SQ":
        return True
    if vr is not None and vr != "UN":
        return False
    if vr is None and _dict_vr(tag) == "SQ":
        return True
    if length != el.UNDEFINED or vr == "UN":
        return False
    return _dict_vr(tag) is None and buf[vpos : vpos + 4] == struct.pack(
        "<HH" if little else ">HH", 0xFFFE, 0xE000
    )


def ours(buf: bytes, pos: int, end: int, little: bool, explicit: bool, depth: int = 0) -> Walk:
    """The element reader's walk, descending into every sequence item."""
    out: Walk = []
    for tag, vr_bytes, length, vpos in el.iter_elements(buf, pos, end, little, explicit):
        vr = vr_bytes.decode() if vr_bytes else None
        out.append((depth, tag, vr, length, vpos))
        if _is_sequence(tag, vr, length, buf, vpos, little):
            for start, stop in el.iter_items(buf, vpos, length, little, explicit):
                out.extend(ours(buf, start, stop, little, explicit, depth + 1))
    return out


def _ref_dataset(fp: io.BytesIO, raw: Mapping[Any, Any], little: bool, implicit: bool, depth: int) -> Walk:
    out: Walk = []
    for tag, elem in raw.items():
        if isinstance(elem, RawDataElement):
            vr = None if implicit else elem.VR  # implicit: pydicom may fill in the dictionary's
            out.append((depth, int(tag), vr, elem.length, elem.value_tell))
            data = fp.getvalue()
            if elem.length != el.UNDEFINED and _is_sequence(
                tag, vr, elem.length, data, elem.value_tell, little
            ):
                fp.seek(elem.value_tell)
                seq = read_sequence(fp, implicit, little, elem.length, "iso8859")
                for item in seq:
                    out.extend(_ref_dataset(fp, item._dict, little, implicit, depth + 1))
        else:  # an undefined-length sequence, read whole by pydicom
            out.append((depth, int(tag), None if implicit else elem.VR, el.UNDEFINED, elem.file_tell))
            for item in elem.value:
                out.extend(_ref_dataset(fp, item._dict, little, implicit, depth + 1))
    return out


def reference(buf: bytes, pos: int, little: bool, explicit: bool) -> Walk:
    """pydicom's reading of the dataset at ``pos`` (to the end of ``buf``), nested items included."""
    fp = io.BytesIO(buf)
    fp.seek(pos)
    ds = read_dataset(fp, not explicit, little, bytelength=len(buf) - pos)
    return _ref_dataset(fp, ds._dict, little, not explicit, 0)


def _encoding(buf: bytes) -> tuple[int, bool, bool]:
    """Dataset offset and (little, explicit) of a Part 10 file: the byte order its meta group says,
    explicit VR when the first element has a VR (pydicom trusts the bytes over the meta group too)."""
    pos, meta = el.read_meta(buf)
    ts = el.ascii_value(meta[0x00020010][1]) if 0x00020010 in meta else ""
    vr = buf[pos + 4 : pos + 6]
    return pos, ts != "1.2.840.10008.1.2.2", vr.isalpha() and vr.isupper()


# -------------------------------------------------------------------------------------- real files

#: pydicom test files whose dataset pydicom itself reads differently from the standard's layout
#: (each reason checked by hand); the walkers are not compared on them
_NOT_COMPARED = {
    "UN_sequence.dcm": "pydicom reads an undefined-length UN as a sequence in the dataset's VR, "
    "the standard says implicit VR little endian",
    "badVR.dcm": "invalid VR: pydicom guesses, the element reader refuses (test_unknown_vr)",
    "MR_truncated.dcm": "truncated (test_truncation)",
    "rtplan_truncated.dcm": "truncated (test_truncation)",
    "meta_missing_tsyntax.dcm": "no transfer syntax: pydicom guesses the encoding",
    "image_dfl.dcm": "deflated (test_deflated_file)",
    "DICOMDIR-nooffset": "its last record declares more bytes than its sequence and the file hold: "
    "pydicom stops at the end, the element reader calls it truncated (test_item_past_its_end)",
    "JPEG2000-embedded-sequence-delimiter.dcm": "pydicom stops the encapsulated value at an embedded "
    "delimiter inside a fragment",
}


def _real_files() -> list[Path]:
    files = sorted(p for p in _pydicom_files().glob("*.dcm") if p.name not in _NOT_COMPARED)
    files += sorted(
        p for p in (_pydicom_files() / "dicomdirtests").glob("DICOMDIR*") if p.name not in _NOT_COMPARED
    )
    ts_dir = SHARED / "dcm_qa_ts"
    if ts_dir.is_dir():
        files += sorted(p for p in ts_dir.rglob("*") if p.is_file() and p.suffix in ("", ".dcm"))[:12]
    cd = SHARED / "taichi_mri_cd" / "DICOMDIR"
    if cd.is_file():
        files.append(cd)
    return files


@pytest.mark.parametrize("path", _real_files(), ids=lambda p: p.name)
def test_real_file_walk_equals_pydicom(path: Path) -> None:
    buf = path.read_bytes()
    if buf[128:132] != b"DICM":
        pytest.skip("no DICM marker: the encoding is a guess (test_no_meta_files)")
    pos, little, explicit = _encoding(buf)
    walk = ours(buf, pos, len(buf), little, explicit)
    assert walk == reference(buf, pos, little, explicit)
    assert walk


def test_real_files_cover_every_encoding() -> None:
    """The corpus above holds big endian, implicit VR, undefined lengths and nesting, or the
    comparison proves less than it claims."""
    seen: set[object] = set()
    for path in _real_files():
        buf = path.read_bytes()
        if buf[128:132] != b"DICM":
            continue
        pos, little, explicit = _encoding(buf)
        walk = ours(buf, pos, len(buf), little, explicit)
        seen.add(("little" if little else "big", "explicit" if explicit else "implicit"))
        if any(length == el.UNDEFINED for _d, _t, _v, length, _p in walk):
            seen.add("undefined")
        if any(depth >= 2 for depth, *_ in walk):
            seen.add("nested")
    assert {
        ("little", "explicit"),
        ("big", "explicit"),
        ("little", "implicit"),
        "undefined",
        "nested",
    } <= seen


@pytest.mark.parametrize("name", ["ExplVR_BigEndNoMeta.dcm", "ExplVR_LitEndNoMeta.dcm", "no_meta.dcm"])
def test_no_meta_files(name: str) -> None:
    buf = (_pydicom_files() / name).read_bytes()
    assert el.read_meta(buf) == (0, {})
    little = struct.unpack_from("<H", buf)[0] < 0x0100
    explicit = buf[4:6].isalpha()
    assert ours(buf, 0, len(buf), little, explicit) == reference(buf, 0, little, explicit)


def test_deflated_file() -> None:
    """A deflated dataset walks like any explicit VR little endian one once inflated."""
    buf = (_pydicom_files() / "image_dfl.dcm").read_bytes()
    pos, meta = el.read_meta(buf)
    assert el.ascii_value(meta[0x00020010][1]) == "1.2.840.10008.1.2.1.99"
    assert el.meta_transfer_syntax(buf[:4096]) == "1.2.840.10008.1.2.1.99"
    assert is_deflated(buf[:4096])
    data = zlib.decompress(buf[pos:], -zlib.MAX_WBITS)
    walk = ours(data, 0, len(data), True, True)
    assert walk == reference(data, 0, True, True)
    assert any(tag == 0x7FE00010 for _d, tag, *_ in walk)


def test_deflate_check_reads_the_meta_group() -> None:
    """The deflate UID elsewhere than the Transfer Syntax UID does not make a file deflated; without a
    readable meta group the UID anywhere still does (pydicom might find it)."""
    buf = (_pydicom_files() / "CT_small.dcm").read_bytes()
    assert el.meta_transfer_syntax(buf[:4096]) == "1.2.840.10008.1.2.1"
    assert not is_deflated(buf[:4096])
    uid = b"1.2.840.10008.1.2.1.99\x00"
    assert not is_deflated(buf[:4096] + uid)
    assert is_deflated(b"\x00" * 200 + uid)
    # a second Transfer Syntax UID: pydicom keeps the last one, so must the check
    pos, _meta = el.read_meta(buf)
    second = _element(0x00020010, "UI", uid, True, True)
    twice = buf[:pos] + second + buf[pos:]
    assert el.meta_transfer_syntax(twice[:4096]) == "1.2.840.10008.1.2.1.99"
    assert is_deflated(twice[:4096])


# -------------------------------------------------------------------------------- synthetic datasets


def _element(tag: int, vr: str, value: bytes, little: bool, explicit: bool, undefined: bool = False) -> bytes:
    e = "<" if little else ">"
    head = struct.pack(e + "HH", tag >> 16, tag & 0xFFFF)
    length = el.UNDEFINED if undefined else len(value)
    if not explicit:
        return head + struct.pack(e + "I", length) + value
    if vr.encode() in el.LONG_VRS:
        return head + vr.encode() + b"\0\0" + struct.pack(e + "I", length) + value
    return head + vr.encode() + struct.pack(e + "H", length) + value


def _sequence(
    tag: int, items: list[bytes], little: bool, explicit: bool, seq_undef: bool, item_undef: bool
) -> bytes:
    e = "<" if little else ">"
    body = b""
    for item in items:
        if item_undef:
            body += struct.pack(e + "HHI", 0xFFFE, 0xE000, el.UNDEFINED) + item
            body += struct.pack(e + "HHI", 0xFFFE, 0xE00D, 0)
        else:
            body += struct.pack(e + "HHI", 0xFFFE, 0xE000, len(item)) + item
    if seq_undef:
        body += struct.pack(e + "HHI", 0xFFFE, 0xE0DD, 0)
    return _element(tag, "SQ", body, little, explicit, undefined=seq_undef)


def _dataset(little: bool, explicit: bool, seq_undef: bool, item_undef: bool) -> bytes:
    """A dataset with two levels of sequences (ReferencedImageSequence in a Procedure Code item)."""

    def text(tag: int, vr: str, value: bytes) -> bytes:
        return _element(tag, vr, value, little, explicit)

    us = struct.pack("<H" if little else ">H", 512)
    inner = text(0x00081150, "UI", b"1.2.3\x00") + text(0x00081155, "UI", b"1.2.3.4.5\x00")
    deeper = _sequence(0x00081140, [inner, inner], little, explicit, seq_undef, item_undef)
    item = text(0x00080100, "SH", b"CODE01") + text(0x00080104, "LO", b"Head") + deeper
    return (
        text(0x00080005, "CS", b"ISO_IR 100")
        + text(0x00080060, "CS", b"CT")
        + _sequence(0x00081032, [item, item], little, explicit, seq_undef, item_undef)
        + text(0x00100010, "PN", b"Doe^John")
        + _sequence(0x00400275, [], little, explicit, seq_undef, item_undef)
        + text(0x00280010, "US", us)
        + text(0x7FE00010, "OW", b"\x01\x02\x03\x04")
    )


COMBINATIONS = [
    (little, explicit, seq_undef, item_undef)
    for little in (True, False)
    for explicit in (True, False)
    for seq_undef in (False, True)
    for item_undef in (False, True)
    if little or explicit  # there is no implicit VR big endian
]


@pytest.mark.parametrize(("little", "explicit", "seq_undef", "item_undef"), COMBINATIONS)
def test_synthetic_walk_equals_pydicom(
    little: bool, explicit: bool, seq_undef: bool, item_undef: bool
) -> None:
    buf = _dataset(little, explicit, seq_undef, item_undef)
    walk = ours(buf, 0, len(buf), little, explicit)
    assert walk == reference(buf, 0, little, explicit)
    assert max(depth for depth, *_ in walk) == 2
    assert [t for d, t, *_ in walk if d == 0][-1] == 0x7FE00010


@pytest.mark.parametrize(("little", "explicit"), [(True, True), (False, True), (True, False)])
def test_encapsulated_pixel_data_is_skipped(little: bool, explicit: bool) -> None:
    e = "<" if little else ">"
    fragments = (
        struct.pack(e + "HHI", 0xFFFE, 0xE000, 0) + struct.pack(e + "HHI", 0xFFFE, 0xE000, 4) + b"abcd"
    )
    fragments += struct.pack(e + "HHI", 0xFFFE, 0xE0DD, 0)
    buf = _element(0x00280010, "US", b"\0\x02", little, explicit)
    buf += _element(0x7FE00010, "OB", fragments, little, explicit, undefined=True)
    buf += _element(0xFFFCFFFC, "OB", b"", little, explicit)  # trailing padding element
    walk = ours(buf, 0, len(buf), little, explicit)
    assert walk == reference(buf, 0, little, explicit)
    assert [length for _d, _t, _v, length, _p in walk] == [2, el.UNDEFINED, 0]


def test_un_of_undefined_length_is_implicit_little_endian() -> None:
    """PS3.5 6.2.2: the items of an undefined-length UN value are implicit VR little endian, whatever
    the dataset's encoding; the walk continues after them in big endian."""
    inner = _element(0x00081150, "UI", b"1.2\x00", True, False)
    items = struct.pack("<HHI", 0xFFFE, 0xE000, el.UNDEFINED) + inner + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    items += struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    buf = _element(0x00091010, "UN", items, False, True, undefined=True)
    buf += _element(0x00100010, "PN", b"A^B\x00", False, True)
    walk = list(el.iter_elements(buf, 0, len(buf), False, True))
    assert [(tag, vr, length) for tag, vr, length, _p in walk] == [
        (0x00091010, b"UN", el.UNDEFINED),
        (0x00100010, b"PN", 4),
    ]
    assert walk[1][3] == len(buf) - 4
    assert list(el.iter_items(buf, 12, el.UNDEFINED, False, True, vr=b"UN")) == [(20, 20 + len(inner))]


# ------------------------------------------------------------------------------ truncation, bounds


@pytest.mark.parametrize(("little", "explicit", "seq_undef", "item_undef"), COMBINATIONS)
def test_truncation(little: bool, explicit: bool, seq_undef: bool, item_undef: bool) -> None:
    """Cut anywhere inside a header or an undefined-length value: a prefix asks for more bytes
    (NeedMore, never fewer than it has), the whole file is Unsupported; never a struct.error."""
    buf = _dataset(little, explicit, seq_undef, item_undef)
    complete = list(el.iter_elements(buf, 0, len(buf), little, explicit))
    for cut in range(1, len(buf)):
        part = buf[:cut]
        try:
            got = list(el.iter_elements(part, 0, cut, little, explicit, complete=False))
        except el.NeedMore as more:
            assert more.needed > cut
        else:
            # the walk ended cleanly: every element it gave is one of the whole file's
            assert got == complete[: len(got)]
        with contextlib.suppress(el.Unsupported):
            list(el.iter_elements(part, 0, cut, little, explicit, complete=True))


def test_truncated_real_file() -> None:
    buf = (_pydicom_files() / "rtplan_truncated.dcm").read_bytes()
    pos, little, explicit = _encoding(buf)
    with pytest.raises(el.NeedMore):
        for _tag, _vr, length, vpos in el.iter_elements(buf, pos, len(buf), little, explicit, complete=False):
            if length != el.UNDEFINED:
                el.need(buf, vpos + length, False)
    with pytest.raises(el.Unsupported, match="truncated"):
        for _tag, _vr, length, vpos in el.iter_elements(buf, pos, len(buf), little, explicit):
            if length != el.UNDEFINED:
                el.need(buf, vpos + length, True)


def test_item_past_its_end() -> None:
    buf = (_pydicom_files() / "dicomdirtests" / "DICOMDIR-nooffset").read_bytes()
    pos, little, explicit = _encoding(buf)
    *_, (tag, vr, length, vpos) = el.iter_elements(buf, pos, len(buf), little, explicit)
    assert (tag, vr, vpos + length) == (0x00041220, b"SQ", len(buf))  # the records run to the end
    with pytest.raises(el.Unsupported, match="runs past its sequence"):
        list(el.iter_items(buf, vpos, length, little, explicit))
    with pytest.raises(el.NeedMore):
        list(el.iter_items(buf, vpos, el.UNDEFINED, little, explicit, complete=False))


def test_unknown_vr() -> None:
    """Two capital letters that are no VR pass by default (the index's lenient reading) and are refused
    with the standard's VRs only; anything else is refused."""
    buf = _element(0x00100010, "PN", b"A^B\x00", True, True)
    odd = buf[:4] + b"XY" + buf[6:]
    assert el.element_header(odd, 0, True, True) == (0x00100010, b"XY", 4, 8)
    with pytest.raises(el.Unsupported, match="unknown VR"):
        el.element_header(odd, 0, True, True, short_vrs=el.SHORT_VRS)
    with pytest.raises(el.Unsupported, match="unknown VR"):
        el.element_header(buf[:4] + b"\x04\x00" + buf[6:], 0, True, True)


def test_nesting_bound() -> None:
    """Sequences nested deeper than MAX_DEPTH are refused, not recursed into until the stack ends."""
    body = b""
    for _ in range(el.MAX_DEPTH + 5):
        body = _sequence(0x00081032, [body], True, True, True, True)
    with pytest.raises(el.Unsupported, match="nested too deeply"):
        list(el.iter_elements(body, 0, len(body), True, True))
    shallow = b""
    for _ in range(el.MAX_DEPTH):
        shallow = _sequence(0x00081032, [shallow], True, True, True, True)
    assert len(list(el.iter_elements(shallow, 0, len(shallow), True, True))) == 1


def test_element_count_bound() -> None:
    """More elements in one dataset than the dataset_elements limit: refused."""
    one = _element(0x00091010, "LO", b"ab", True, True)
    buf = one * 20
    saved = limits.current()
    try:
        limits.set_limits(limits.parse_spec(["dataset-elements=10"], saved))
        with pytest.raises(el.Unsupported, match="dataset_elements"):
            list(el.iter_elements(buf, 0, len(buf), True, True))
    finally:
        limits.set_limits(saved)
    assert len(list(el.iter_elements(buf, 0, len(buf), True, True))) == 20


def test_not_an_item_in_a_sequence() -> None:
    seq = _element(
        0x00081032, "SQ", _element(0x00100010, "PN", b"AB", True, True), True, True, undefined=True
    )
    with pytest.raises(el.Unsupported, match="in a sequence"):
        list(el.iter_elements(seq, 0, len(seq), True, True))


def test_meta_reading() -> None:
    buf = (_pydicom_files() / "MR_small_bigendian.dcm").read_bytes()
    pos, meta = el.read_meta(buf)
    assert el.ascii_value(meta[0x00020010][1]) == "1.2.840.10008.1.2.2"
    assert struct.unpack_from("<H", buf, pos)[0] != 0x0002
    with pytest.raises(el.NeedMore):
        el.read_meta(buf[:150], complete=False)
    with pytest.raises(el.Unsupported):
        el.read_meta(buf[:150], complete=True)
    assert el.meta_transfer_syntax(buf[:150]) is None
