"""Dump rows without pydicom, for the common file: so ``tui-dicom dump`` starts in milliseconds.

``import pydicom`` loads numpy and every pixel decoder (about 0.25 s) before a single tag is read,
which made ``$(tui-dicom dump f -t PatientID)`` no faster than ``pydicom show``. This module reads a
Part 10 file with ``struct`` and produces the very rows :func:`tui_dicom.core.inspector.tags.tag_rows` makes
from a pydicom dataset: same VRs, keywords, values (pydicom's conversion rules, reproduced), lengths,
nesting and order.

It is deliberately strict. Whatever it does not reproduce exactly — deflated or guessed transfer
syntaxes, ISO 2022 code extensions and multi-valued character sets, ambiguous VRs it cannot resolve,
VR ``UN`` that pydicom would re-type, a value pydicom would refuse or repair, truncation, anything
malformed — raises :class:`Fallback`, and the caller reads the file with pydicom instead (which also
produces the proper error message for broken files). ``tests/parity/test_quickdump.py`` checks that every
file of the test corpora either falls back or yields rows equal to the pydicom path.
"""

from __future__ import annotations

import gc
import io
import os
import struct
from collections.abc import Callable

from tui_dicom.core import limits
from tui_dicom.core.dicom.charset import SINGLE_CODEC_CHARSETS
from tui_dicom.core.dicom.elements import (
    DEFLATED,
    ITEM_END,
    MAX_DEPTH,
    SEQ_END,
    SHORT_VR_NAMES,
    SHORT_VRS,
    TAG,
    U16,
    UNDEFINED,
    NeedMore,
    Unsupported,
    element_header,
    syntax_encoding,
)
from tui_dicom.core.dicom.elements import VR_NAMES as _VRS
from tui_dicom.core.dicom.source import FileRef, open_ref
from tui_dicom.core.inspector.tags import (
    BINARY_VRS,
    ITEM_TAG,
    PIXEL_DATA_TAGS,
    TagRow,
    binary_text,
    join_value_texts,
    pixel_summary,
    select_rows,
    subtree,
    walk_rows,
)

__all__ = ["Fallback", "QuickFile", "parse", "read_rows", "rows_from_buffer", "select_rows", "subtree"]
from tui_dicom.core.safe import safe_text

#: ``typing`` is for the type checker only (``tui-dicom dump`` must start fast)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

PIXEL_DATA = 0x7FE00010
CHARSET = 0x00080005
#: bytes per value of the binary VRs shown as one number per value
_VALUE_SIZE = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "SV": 8, "UV": 8}
_NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_SPLIT_STRINGS = frozenset({"AS", "CS", "DA", "DT", "TM"})  # latin-1, split on backslash, not stripped
_TEXT = frozenset({"SH", "LO", "UC"})  # character set, split, each stripped of trailing spaces/NULs
_SINGLE_TEXT = frozenset({"ST", "LT", "UT"})  # character set, never split
#: display values of elements up to this size are remembered (see :data:`_SHOWN`)
_MEMO_MAX_BYTES = 64
#: the texts of short values already shown, by (byte order, value width), then (tag, VR, bytes,
#: character set). A slice step's header repeats ~90 % of the last one's values: parsing its rows took
#: ~1 ms of the loader's time a slice, a third of it making these texts again. Bounded: emptied when it
#: holds more than _SHOWN_MAX entries (a 64-byte value and its text: under 0.6 KB each, 2.5 MB in all).
_SHOWN: dict[tuple[bool, int | None], dict[tuple[int, str, bytes, str], str]] = {}
_SHOWN_MAX = 4096
_LUT_DESCRIPTORS = frozenset({0x00281101, 0x00281102, 0x00281103, 0x00283002})


class Fallback(Exception):
    """The file needs pydicom to be shown exactly as the rest of the program shows it; ``str()`` says why."""


class _PastEnd(Fallback):
    """The parse ran past the end of the bytes read: more of the file may be needed (or it is cut short)."""


class _Elem:
    """One element as read: its VR as pydicom would report it, and where its value is.

    These three records are plain slotted classes, not dataclasses: importing ``dataclasses`` costs
    more than reading a whole header, and this module is the fast path of ``tui-dicom dump``.
    """

    __slots__ = ("tag", "vr", "length", "value", "size", "items")

    def __init__(
        self,
        tag: int,
        vr: str,
        length: int,
        value: bytes | None = None,
        size: int = 0,
        items: list[_Dataset] | None = None,
    ) -> None:
        self.tag = tag
        self.vr = vr
        self.length = length  # as declared in the file (UNDEFINED for undefined length)
        self.value = value  # None for sequences and for values not loaded (pixel data)
        self.size = size  # bytes of the value (for pixel data whose bytes are not kept)
        self.items = items


class _Dataset:
    """A dataset or sequence item: elements by tag, its parent and its character set."""

    __slots__ = ("elems", "parent", "encoding", "creators", "ordered", "stopped_early")

    def __init__(self, parent: _Dataset | None = None, encoding: str = "iso8859") -> None:
        self.elems: dict[int, _Elem] = {}
        self.parent = parent
        self.encoding = encoding
        self.creators: dict[int, str] = {}  # creator tag -> creator string
        self.ordered = True  # the elements were read in tag order (no sorting needed)
        self.stopped_early = False  # the top-level parse stopped before the end of the bytes (at pixel data)


class QuickFile:
    """What :func:`read_rows` found: the rows, and which top-level tags are file meta."""

    __slots__ = ("rows", "meta_tags")

    def __init__(self, rows: list[TagRow], meta_tags: frozenset[int]) -> None:
        self.rows = rows
        self.meta_tags = meta_tags

    def __repr__(self) -> str:
        return f"QuickFile(rows=<{len(self.rows)} rows>, meta_tags={sorted(self.meta_tags)!r})"


# ------------------------------------------------------------------------------------------- parsing


class _Reader:
    """Parses one buffer: meta group (explicit LE), then the dataset in its transfer syntax."""

    def __init__(self, buf: Any, little: bool, explicit: bool) -> None:
        self.buf = buf
        self.n = len(buf)
        self.little = little
        self.explicit = explicit
        self.u16x2 = TAG[little]
        self.u16 = U16[little]
        budget = limits.current()
        # over budget: pydicom's path (read_dataset) refuses with the limit named
        self.max_elements = budget.dataset_elements
        self.max_values = budget.element_values

    def header(self, pos: int) -> tuple[int, str | None, int, int]:
        """``(tag, vr or None, value offset, length)`` of the element at ``pos`` (the element reader's)."""
        try:
            tag, vr, length, vpos = element_header(
                self.buf, pos, self.little, self.explicit, False, SHORT_VRS
            )
        except NeedMore:
            raise _PastEnd("element header runs past the end of the file") from None
        except Unsupported as exc:
            raise Fallback(str(exc)) from None
        return tag, vr.decode("latin-1") if vr else None, vpos, length

    def dataset(
        self,
        ds: _Dataset,
        pos: int,
        end: int | None,
        depth: int,
        *,
        stop_at: Callable[[int], bool] | None = None,
    ) -> int:
        """Read elements into ``ds`` from ``pos`` to ``end`` (None: up to an item delimiter).

        Returns the offset after the last element read (after the delimiter for undefined items).
        """
        if depth > MAX_DEPTH:
            raise Fallback("sequences nested too deeply")
        limit = self.n if end is None else end
        last = -1
        explicit, u16 = self.explicit, self.u16
        count = 0
        while pos < limit:
            count += 1
            if count > self.max_elements:
                raise Fallback("more elements than the dataset_elements limit")
            if limit - pos < 8:
                raise _PastEnd("stray bytes at the end of a dataset")
            group, elem = self.u16x2(self.buf, pos)
            if stop_at is not None and stop_at(group << 16 | elem):
                return pos
            tag = group << 16 | elem
            if explicit and group != 0xFFFE and pos + 8 <= limit:
                # the common element (a standard VR with a 16-bit length), read here rather than by
                # self.header(): a call per element counts
                vr = self.buf[pos + 4 : pos + 6].decode("latin-1")
                if vr in SHORT_VR_NAMES:
                    vpos, length = pos + 8, u16(self.buf, pos + 6)[0]
                else:
                    tag, vr, vpos, length = self.header(pos)
            else:
                tag, vr, vpos, length = self.header(pos)
            if tag == ITEM_END and end is None and depth > 0:
                return vpos
            if tag >> 16 == 0xFFFE:
                raise Fallback(
                    f"delimiter ({tag >> 16:04X},{tag & 0xFFFF:04X}) where an element was expected"
                )
            if tag <= last:
                # pydicom keeps elements by tag and shows them sorted, so an element out of order is
                # shown where it belongs. What it decides while reading (the character set, private
                # creators and what they name) and a repeated tag (the last one wins) need pydicom.
                if tag in ds.elems or tag == CHARSET or group & 1:
                    raise Fallback("elements repeated, or out of order where the order matters")
                ds.ordered = False
            else:
                last = tag
            if vr is None:
                vr = self.implicit_vr(ds, tag, length, vpos)
            elif vr == "UN":
                self.check_un(ds, tag, length)
            if length == UNDEFINED:
                pos = self.undefined(ds, tag, vr, vpos, depth)
                if end is not None and pos > end:
                    raise Fallback("element runs past the end of its item")
                continue
            stop = vpos + length
            if stop > self.n:
                raise _PastEnd("value runs past the end of the file")
            if end is not None and stop > end:
                raise Fallback("element runs past the end of its item")
            if vr == "SQ":
                # like pydicom, read the items from the sequence's own bytes: nothing inside can reach past it
                inner = _Reader(bytes(self.buf[vpos:stop]), self.little, self.explicit)
                items = inner.items(0, length, depth, ds)
                ds.elems[tag] = _Elem(tag, vr, length, None, length, items)
            elif tag in PIXEL_DATA_TAGS:
                ds.elems[tag] = _Elem(tag, vr, length, None, length)
            else:
                value = bytes(self.buf[vpos:stop])
                if length > 2 * self.max_values and (
                    value.count(b"\\") >= self.max_values
                    or length // _VALUE_SIZE.get(vr, length) > self.max_values
                ):
                    raise Fallback("more values than the element_values limit")
                ds.elems[tag] = _Elem(tag, vr, length, value, length)
                if tag == CHARSET:
                    ds.encoding = _charset(value, ds.parent)
                elif tag >> 16 & 1 and 0x0010 <= tag & 0xFFFF <= 0x00FF:
                    ds.creators[tag] = _creator(value, vr, ds)
            pos = stop
        if end is None and depth > 0:
            raise _PastEnd("item without its delimiter")
        return pos

    def undefined(self, ds: _Dataset, tag: int, vr: str, vpos: int, depth: int) -> int:
        """Read an undefined-length element: a sequence or encapsulated pixel data."""
        if vr == "SQ":
            items: list[_Dataset] = []
            pos = self.item_list(vpos, None, depth, ds, items)
            ds.elems[tag] = _Elem(tag, vr, UNDEFINED, None, 0, items)
            return pos
        if tag == PIXEL_DATA and vr in ("OB", "OW"):
            pos = vpos
            while True:
                item, _vr, ipos, length = self.header(pos)
                if item == SEQ_END:
                    ds.elems[tag] = _Elem(tag, vr, UNDEFINED, None, pos - vpos)
                    return ipos
                if item != ITEM_TAG or length == UNDEFINED or ipos + length > self.n:
                    raise _PastEnd("malformed encapsulated pixel data")
                pos = ipos + length
        raise Fallback(f"undefined length for VR {vr}")

    def items(self, pos: int, end: int, depth: int, parent: _Dataset) -> list[_Dataset]:
        items: list[_Dataset] = []
        self.item_list(pos, end, depth, parent, items)
        return items

    def item_list(self, pos: int, end: int | None, depth: int, parent: _Dataset, out: list[_Dataset]) -> int:
        """Read sequence items from ``pos`` to ``end`` (None: up to the sequence delimiter)."""
        while end is None or pos < end:
            tag, _vr, ipos, length = self.header(pos)
            if tag == SEQ_END and end is None:
                return ipos
            if tag != ITEM_TAG:
                raise Fallback(f"unexpected ({tag >> 16:04X},{tag & 0xFFFF:04X}) in a sequence")
            item = _Dataset(parent=parent, encoding=parent.encoding)
            if length == UNDEFINED:
                pos = self.dataset(item, ipos, None, depth + 1)
            else:
                if ipos + length > (self.n if end is None else end):
                    raise Fallback("item runs past its sequence")
                pos = self.dataset(item, ipos, ipos + length, depth + 1)
            out.append(item)
        return pos

    def implicit_vr(self, ds: _Dataset, tag: int, length: int, vpos: int) -> str:
        """The VR pydicom gives an implicit-VR element (ambiguous ones resolved later, when shown)."""
        from tui_dicom.core.dicom.dictionary import private_entry, public_entry

        group, elem = tag >> 16, tag & 0xFFFF
        if group & 1:
            if 0x0010 <= elem <= 0x00FF:
                return "LO"
            creator = ds.creators.get(group << 16 | elem >> 8) if elem & 0xFF00 else None
            if length == UNDEFINED:  # pydicom looks ahead: items make it a sequence
                if self.next_is_item(vpos):
                    return "SQ"
                raise Fallback("undefined-length private element that is not a sequence")
            private = private_entry(tag, creator) if creator else None
            if private is None:
                return "UN"
            if private[0] not in _VRS:
                raise Fallback(f"private element with dictionary VR {private[0]!r}")
            return private[0]
        entry = public_entry(tag)
        if entry is None:
            if elem == 0:
                return "UL"
            raise Fallback("implicit VR element not in the dictionary")
        vr = entry[0]
        if vr == "OB or OW" and tag == PIXEL_DATA:
            return "OB" if length == UNDEFINED else "OW"
        if vr == "US or SS" and tag not in _LUT_DESCRIPTORS:
            return vr  # resolved from PixelRepresentation when the row is made
        if vr not in _VRS:
            raise Fallback(f"ambiguous VR {vr!r}")
        return vr

    def next_is_item(self, pos: int) -> bool:
        return pos + 4 <= self.n and self.u16x2(self.buf, pos) == (0xFFFE, 0xE000)

    def check_un(self, ds: _Dataset, tag: int, length: int) -> None:
        """pydicom re-types a UN element whose VR it knows; those need pydicom."""
        from tui_dicom.core.dicom.dictionary import private_entry, public_entry

        group, elem = tag >> 16, tag & 0xFFFF
        if length == UNDEFINED:
            raise Fallback("UN with undefined length")
        if group & 1:
            if 0x0010 <= elem <= 0x00FF:
                raise Fallback("private creator stored as UN")
            creator = ds.creators.get(group << 16 | elem >> 8) if elem & 0xFF00 else None
            if creator and private_entry(tag, creator) is not None:
                raise Fallback("UN element of a known private tag")
        elif length < 0xFFFF and public_entry(tag) is not None:
            raise Fallback("UN element of a known public tag")


def _charset(value: bytes, parent: _Dataset | None) -> str:
    terms = value.decode("latin-1").rstrip(" \x00").split("\\")
    if len(terms) != 1 or terms[0] not in SINGLE_CODEC_CHARSETS:
        raise Fallback("character set with code extensions or an unknown term")
    if terms[0] == "" and parent is not None and parent.encoding != "iso8859":
        raise Fallback("empty character set inside an item")
    return SINGLE_CODEC_CHARSETS[terms[0]]


def _creator(value: bytes, vr: str, ds: _Dataset) -> str:
    if vr != "LO":
        raise Fallback(f"private creator with VR {vr}")
    text = _decode(value, ds.encoding)
    if "\\" in text:
        raise Fallback("multi-valued private creator")
    return text.rstrip("\x00 ")


def _decode(raw: bytes, encoding: str) -> str:
    """Decode text as pydicom does for one character set without code extensions."""
    if b"\x1b" in raw:
        raise Fallback("escape sequence in text")
    try:
        return raw.decode(encoding)
    except UnicodeError:
        return raw.decode(encoding, errors="replace")


# ------------------------------------------------------------------------------------------- values


def _numbers_text(tag: int, vr: str, raw: bytes, little: bool) -> list[str]:
    fmt = _NUMBERS[vr]
    size = struct.calcsize("=" + fmt)
    if len(raw) % size:
        raise Fallback(f"{vr} value of {len(raw)} bytes")
    values = struct.unpack(f"{'<' if little else '>'}{len(raw) // size}{fmt}", raw)
    if tag in _LUT_DESCRIPTORS and vr == "SS" and len(values) > 1 and values[0] < 0:
        raise Fallback("LUT descriptor pydicom corrects")
    if vr == "FL":
        return [f"{v:.7g}" for v in values]
    if vr == "FD":
        return [repr(v) for v in values]
    return [str(v) for v in values]


def _number_strings(vr: str, raw: bytes) -> list[str]:
    """DS and IS: pydicom keeps each number's own text (stripped); a value it cannot parse falls back."""
    text = raw.decode("latin-1")
    if vr == "DS":
        text = text.strip()
    out = []
    for token in text.rstrip(" \x00").split("\\"):
        if token.strip() == "":
            out.append(token)
            continue
        try:
            if vr == "DS":
                float(token)
            else:
                try:
                    int(token)
                except ValueError:
                    int(float(token))
        except (ValueError, OverflowError):
            raise Fallback(f"{vr} value {token!r} pydicom cannot convert") from None
        out.append(token.strip())
    return out


def _person_name(text: str) -> str:
    if "\ufffd" in text:
        raise Fallback("undecodable person name")
    groups = text.split("=")
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups)


def _value_items(elem: _Elem, ds: _Dataset, little: bool) -> list[str] | str | bytes:
    """The value as pydicom converts it: a list of item texts, a single string, or bytes."""
    vr, raw = elem.vr, elem.value or b""
    if vr in _NUMBERS:
        return _numbers_text(elem.tag, vr, raw, little)
    if vr in ("DS", "IS"):
        return _number_strings(vr, raw)
    if vr in BINARY_VRS:
        return raw
    if vr == "AT":
        if len(raw) % 4:
            raise Fallback("AT value not a multiple of 4 bytes")
        pairs = struct.unpack(f"{'<' if little else '>'}{len(raw) // 2}H", raw)
        return [f"({pairs[i]:04X},{pairs[i + 1]:04X})" for i in range(0, len(pairs), 2)]
    if vr == "AE":
        return [s.strip() for s in raw.decode("latin-1").split("\\")]
    if vr in _SPLIT_STRINGS:
        return raw.decode("latin-1").rstrip(" \x00").split("\\")
    if vr == "UI":  # pydicom's UID strips each value of whitespace
        return [uid.strip() for uid in raw.decode("latin-1").rstrip("\x00 ").split("\\")]
    if vr == "UR":
        return raw.decode("latin-1").rstrip()
    if vr in _TEXT:
        return [s.rstrip("\x00 ") for s in _decode(raw, ds.encoding).split("\\")]
    if vr in _SINGLE_TEXT:
        return _decode(raw, ds.encoding).rstrip("\x00 ")
    if vr == "PN":
        return [_person_name(s) for s in _decode(raw.rstrip(b"\x00 "), ds.encoding).split("\\")]
    raise Fallback(f"VR {vr} not handled")


def _resolve_us_ss(ds: _Dataset) -> str:
    """US or SS from the nearest PixelRepresentation, as pydicom resolves it."""
    node: _Dataset | None = ds
    while node is not None:
        rep = node.elems.get(0x00280103)
        if rep is not None and rep.value:
            if rep.vr != "US" or len(rep.value) != 2:
                raise Fallback("odd PixelRepresentation")
            return "SS" if rep.value != b"\x00\x00" else "US"
        node = node.parent
    raise Fallback("US or SS without PixelRepresentation")


def _first_int(ds: _Dataset, tag: int, little: bool) -> Any:
    """``ds.get(keyword)`` as the pixel summary uses it: an int for a single integer value, else something else."""
    elem = ds.elems.get(tag)
    if elem is None or not elem.value:
        return None
    fmt = _NUMBERS.get(elem.vr)
    if fmt in ("H", "h", "L", "l") and len(elem.value) == struct.calcsize(fmt):
        return struct.unpack(("<" if little else ">") + fmt, elem.value)[0]
    if elem.vr == "IS":
        values = _number_strings("IS", elem.value)
        if len(values) == 1 and values[0].strip():
            try:
                return int(values[0])
            except ValueError:
                return int(float(values[0]))
        return ""
    return "other"


def _display(elem: _Elem, ds: _Dataset, little: bool, max_chars: int | None) -> str:
    vr = elem.vr
    if vr == "SQ":
        n = len(elem.items or [])
        return f"{n} item" + ("" if n == 1 else "s")
    if elem.size == 0:
        return ""
    if elem.tag in PIXEL_DATA_TAGS and elem.value is None:
        return pixel_summary(
            vr,
            elem.size,
            elem.length == UNDEFINED,
            rows=_first_int(ds, 0x00280010, little),
            cols=_first_int(ds, 0x00280011, little),
            bits=_first_int(ds, 0x00280100, little),
            frames=_first_int(ds, 0x00280008, little),
            spp=_first_int(ds, 0x00280002, little),
        )
    value = _value_items(elem, ds, little)
    if isinstance(value, bytes):
        if elem.tag in PIXEL_DATA_TAGS:
            raise Fallback("pixel data in an unexpected form")
        return safe_text(binary_text(vr, value, little, max_chars))
    if isinstance(value, str):
        return join_value_texts([value], max_chars)
    return join_value_texts(value, max_chars)


# --------------------------------------------------------------------------------------------- rows


class _QuickSource:
    """:class:`tags.RowSource` over the quick reader's datasets, read in byte order ``little``."""

    def __init__(self, little: bool, max_chars: int | None) -> None:
        self.little = little
        self.max_chars = max_chars
        # items of a sequence repeat the same short values (codes, class UIDs), and the slices of a
        # series most of their header: each is shown once (see _SHOWN)
        self.memo = _SHOWN.setdefault((little, max_chars), {})
        if len(self.memo) > _SHOWN_MAX:
            self.memo.clear()

    def tags(self, ds: _Dataset) -> list[int]:
        return list(ds.elems) if ds.ordered else sorted(ds.elems)

    def creator(self, ds: _Dataset, tag: int) -> str:
        return ds.creators.get(tag, "")

    def element(self, ds: _Dataset, tag: int) -> tuple[str, str, int | None, list[_Dataset] | None]:
        elem = ds.elems[tag]
        if elem.vr == "US or SS":
            elem = _Elem(elem.tag, _resolve_us_ss(ds), elem.length, elem.value, elem.size, elem.items)
        raw = elem.value
        if raw is not None and len(raw) <= _MEMO_MAX_BYTES:
            key = (tag, elem.vr, raw, ds.encoding)
            value = self.memo.get(key)
            if value is None:
                value = self.memo[key] = _display(elem, ds, self.little, self.max_chars)
        else:
            value = _display(elem, ds, self.little, self.max_chars)
        return elem.vr, value, _length(elem), elem.items


def _length(elem: _Elem) -> int | None:
    if elem.length != UNDEFINED:
        return elem.length
    return None if elem.vr == "SQ" else elem.size


# ---------------------------------------------------------------------------------------------- API


def _ascii_value(elem: _Elem | None) -> str:
    if elem is None or elem.value is None:
        return ""
    return elem.value.decode("latin-1").rstrip("\x00 ")


def parse(buf: Any, *, stop_before_pixels: bool) -> tuple[_Dataset, _Dataset, bool]:
    """Parse a whole Part 10 file held in ``buf``: ``(file meta, dataset, little endian)``.

    ``buf`` may be only the start of the file when ``stop_before_pixels`` is set: :func:`read_rows`
    checks that the parse stopped at the pixel data, not at the end of the bytes it had.

    Raises:
        Fallback: the file needs pydicom (see the module docstring).
    """
    if len(buf) < 132 or bytes(buf[128:132]) != b"DICM":
        raise Fallback("no DICM marker")
    meta = _Dataset()
    reader = _Reader(buf, True, True)
    pos = reader.dataset(meta, 132, None, 0, stop_at=lambda tag: tag >> 16 != 0x0002)
    ts = _ascii_value(meta.elems.get(0x00020010))
    if not ts or ts == DEFLATED:
        raise Fallback("no transfer syntax, or a deflated dataset")
    little, explicit = syntax_encoding(ts)
    if pos + 6 <= len(buf):  # pydicom trusts the bytes over the declared syntax: so must we, or fall back
        vr = bytes(buf[pos + 4 : pos + 6])
        if (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90) != explicit:
            raise Fallback("transfer syntax does not match the encoding")
        if U16[little](buf, pos)[0] < 0x0008:
            raise Fallback("dataset starts with a group pydicom may read in the other byte order")
    data = _Dataset()
    reader = _Reader(buf, little, explicit)
    stop = (lambda tag: tag in PIXEL_DATA_TAGS) if stop_before_pixels else None
    end = reader.dataset(data, pos, None, 0, stop_at=stop)
    if end < len(buf):
        data.stopped_early = True
    if any(tag >> 16 == 0x0002 for tag in data.elems):
        raise Fallback("file meta elements inside the dataset")
    return meta, data, little


#: the first read of a file whose pixel data is skipped; grown x8 while the header runs past it
_FIRST_READ = 256 * 1024


def _parse_file(fh: BinaryIO, ref: FileRef, stop_before_pixels: bool) -> tuple[_Dataset, _Dataset, bool]:
    """Read the file into memory (no ``mmap``: a file that shrinks while mapped kills the process with
    SIGBUS) and parse it. Headers-only reads start with a small prefix and grow it while the header
    runs past it, so a 500 MB multi-frame file costs its header, not its pixels.

    Raises:
        Fallback: see :func:`parse`; LimitExceeded: a file larger than the ``file_bytes`` limit.
    """
    cap = limits.current().file_bytes
    try:
        size = os.fstat(fh.fileno()).st_size
    except (OSError, io.UnsupportedOperation):
        size = -1  # a ZIP member in memory: read it all (it is already held)
    want = min(size, _FIRST_READ) if stop_before_pixels and size > _FIRST_READ else max(size, 0)
    while True:
        fh.seek(0)
        buf = fh.read(min(want, cap + 1)) if want > 0 else fh.read(cap + 1)
        if len(buf) > cap:
            raise limits.LimitExceeded(ref.display, "file_bytes", size if size > 0 else None, cap)
        if not buf:
            raise Fallback("empty file")
        whole = len(buf) < want or len(buf) >= size or want <= 0
        try:
            meta, data, little = parse(buf, stop_before_pixels=stop_before_pixels)
        except _PastEnd:
            if whole:
                raise
            want *= 8
            continue
        if whole or data.stopped_early:
            return meta, data, little
        want *= 8


def read_rows(
    ref: FileRef,
    *,
    stop_before_pixels: bool,
    include_private: bool = True,
    max_depth: int | None = None,
    max_value_chars: int | None,
) -> QuickFile:
    """Read ``ref`` and return its rows, as :func:`tags.tag_rows` would from a pydicom dataset.

    Raises:
        Fallback: read the file with pydicom instead.
        OSError: the file cannot be opened.
    """
    # The reader keeps every object it makes (a few per element) until the rows are built, so the
    # cyclic collector, run every few hundred allocations, would walk them all again and again and
    # find nothing to free: a third of the time of a sequence of 50,000 items. It is paused here only.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _read_rows(ref, stop_before_pixels, include_private, max_depth, max_value_chars)
    finally:
        if collecting:
            gc.enable()


def _read_rows(
    ref: FileRef,
    stop_before_pixels: bool,
    include_private: bool,
    max_depth: int | None,
    max_value_chars: int | None,
) -> QuickFile:
    with open_ref(ref) as fh:
        meta, data, little = _parse_file(fh, ref, stop_before_pixels)
    return _rows(meta, data, little, include_private, max_depth, max_value_chars)


def rows_from_buffer(buf: bytes, *, max_value_chars: int | None) -> QuickFile:
    """The rows of the header in ``buf`` (a file's bytes up to and including its Pixel Data element's
    header, as the viewer's uncompressed-slice reader keeps them), as :func:`tags.tag_rows` makes them
    from the header pydicom reads with ``stop_before_pixels``: the same file gives one read, no pydicom.

    Raises:
        Fallback: read the header with pydicom instead (also when ``buf`` does not reach Pixel Data).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        meta, data, little = parse(buf, stop_before_pixels=True)
        if not data.stopped_early:
            raise Fallback("the bytes end before the pixel data")
        return _rows(meta, data, little, True, None, max_value_chars)
    finally:
        if collecting:
            gc.enable()


def _rows(
    meta: _Dataset,
    data: _Dataset,
    little: bool,
    include_private: bool,
    max_depth: int | None,
    max_value_chars: int | None,
) -> QuickFile:
    rows: list[TagRow] = []
    if meta.elems:
        walk_rows(
            _QuickSource(True, max_value_chars),
            meta,
            rows,
            include_private=include_private,
            max_depth=max_depth,
        )
    walk_rows(
        _QuickSource(little, max_value_chars),
        data,
        rows,
        include_private=include_private,
        max_depth=max_depth,
    )
    return QuickFile(rows, frozenset(meta.elems))
