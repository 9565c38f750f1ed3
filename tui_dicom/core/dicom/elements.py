"""The DICOM element reader: how an element header is laid out in the bytes, written down once.

Every fast reader of the program (the index's header reader, the DICOMDIR parser, the ``dump`` reader,
the sniff and deflate checks before pydicom) walks the same structure (PS3.5 section 7):

- a tag (group, element) of two 16-bit numbers in the dataset's byte order;
- in explicit VR, a two-letter VR, then a 16-bit length, or (for :data:`LONG_VRS`) two reserved bytes
  and a 32-bit length; in implicit VR (and for the item and delimiter tags of group FFFE, which never
  carry a VR) a 32-bit length;
- a length of :data:`UNDEFINED` for a sequence, an item or encapsulated pixel data, whose end is a
  delimiter (:data:`SEQ_END`, :data:`ITEM_END`) rather than a byte count;
- inside a VR ``UN`` value of undefined length, implicit VR little endian whatever the dataset's syntax.

:func:`element_header` decodes one header and returns ``(tag, vr, length, value_offset)``;
:func:`iter_elements` walks a dataset and :func:`skip_sequence` / :func:`skip_item` jump over
undefined-length values. They raise :class:`NeedMore` when a partial buffer (a file prefix) ends
inside what they must read, so the caller reads more and calls again, and :class:`Unsupported` when
the bytes are malformed or the buffer is the whole file. Nesting is bounded by :data:`MAX_DEPTH` and
the elements of one dataset by the ``dataset_elements`` limit.

The readers whose per-element cost matters (a 2,000-file scan reads ~200,000 elements, a million-record
DICOMDIR ten million) unroll the header decoding in their loops with the unpackers and VR sets below:
a Python call per element measured 13 % (scan) and 21 % (DICOMDIR) slower (``ARCHITECTURE.md``).
Everything else calls :func:`element_header`.

This module imports only ``struct`` and the limits: ``tui-dicom dump`` loads it at start-up.
"""

from __future__ import annotations

import struct

from tui_dicom.core import limits

#: ``typing`` is for the type checker only (``tui-dicom dump`` must start fast)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

#: the length of a value that ends with a delimiter
UNDEFINED = 0xFFFFFFFF
#: the group of the item and delimiter tags (never a VR, always a 32-bit length)
DELIMITER_GROUP = 0xFFFE
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQ_END = 0xFFFEE0DD
#: sequences nested deeper than this are refused (pydicom recurses; hostile files nest thousands deep)
MAX_DEPTH = 64

#: the transfer syntaxes that say how the dataset itself is encoded (PS3.5 section 10 and annex A);
#: every other one (the compressed pixel syntaxes) is explicit VR little endian
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"

#: every VR of the standard (PS3.5 table 6.2-1), as the two bytes found in the file
KNOWN_VRS = frozenset(
    b"AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV "
    b"OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
#: explicit-VR VRs with two reserved bytes and a 32-bit length (PS3.5 table 7.1-1)
LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
)
#: known VRs with a 16-bit length
SHORT_VRS = KNOWN_VRS - LONG_VRS
#: any two capital letters that are not a long VR: read with a 16-bit length (the index's meta and
#: sequence skipping accept a VR they do not know, as long as it looks like one)
LETTER_VRS = frozenset(bytes((a, b)) for a in range(65, 91) for b in range(65, 91)) - LONG_VRS
#: the same sets as text, for readers that keep VRs as ``str``
VR_NAMES = frozenset(vr.decode("ascii") for vr in KNOWN_VRS)
LONG_VR_NAMES = frozenset(vr.decode("ascii") for vr in LONG_VRS)
SHORT_VR_NAMES = VR_NAMES - LONG_VR_NAMES

#: group, element, VR and 16-bit length of an explicit-VR header, by ``little`` (endianness)
EXPLICIT = {True: struct.Struct("<HH2sH").unpack_from, False: struct.Struct(">HH2sH").unpack_from}
#: group, element and 32-bit length of an implicit-VR (or item/delimiter) header
IMPLICIT = {True: struct.Struct("<HHI").unpack_from, False: struct.Struct(">HHI").unpack_from}
#: group and element
TAG = {True: struct.Struct("<HH").unpack_from, False: struct.Struct(">HH").unpack_from}
U32 = {True: struct.Struct("<I").unpack_from, False: struct.Struct(">I").unpack_from}
U16 = {True: struct.Struct("<H").unpack_from, False: struct.Struct(">H").unpack_from}


class Unsupported(Exception):
    """The bytes are not an encoding the fast readers handle (malformed, or cut short in a whole file);
    the caller reads the file with pydicom instead, or reports it."""


class NeedMore(Exception):
    """A partial buffer ends before what must be read; ``needed`` bytes are required."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


def syntax_encoding(transfer_syntax: str) -> tuple[bool, bool]:
    """``(little_endian, explicit_vr)`` of the dataset of a transfer syntax.

    Deflated datasets are explicit VR little endian once inflated: whether a reader inflates them
    (or hands them to pydicom) is the caller's decision. A new transfer syntax that changes how the
    dataset is encoded goes here, for every fast reader at once.
    """
    return transfer_syntax != EXPLICIT_BE, transfer_syntax != IMPLICIT_LE


def need(buf: bytes, end: int, complete: bool) -> None:
    """Check that ``buf`` holds ``end`` bytes.

    Raises:
        NeedMore: it does not and ``buf`` is a prefix (``complete`` false).
        Unsupported: it does not and ``buf`` is the whole file.
    """
    if end > len(buf):
        if complete:
            raise Unsupported("truncated header")
        raise NeedMore(end)


def element_header(
    buf: bytes,
    pos: int,
    little: bool,
    explicit: bool,
    complete: bool = True,
    short_vrs: frozenset[bytes] = LETTER_VRS,
) -> tuple[int, bytes, int, int]:
    """Decode the element header at ``pos``.

    Args:
        buf: The bytes (a whole file, or a prefix of it when ``complete`` is false).
        pos: Where the header starts.
        little: Little endian (else big endian).
        explicit: Explicit VR (else implicit VR).
        complete: ``buf`` is all there is: running past its end is :class:`Unsupported`, not
            :class:`NeedMore`.
        short_vrs: The VRs read with a 16-bit length; any other VR that is not in :data:`LONG_VRS` is
            refused. :data:`LETTER_VRS` (the default) accepts any two capital letters,
            :data:`SHORT_VRS` only the standard's.

    Returns:
        ``(tag, vr, length, value_offset)``; ``vr`` is ``b""`` in implicit VR and for group FFFE.

    Raises:
        NeedMore, Unsupported: see :func:`need`; Unsupported also for a VR refused.
    """
    if pos + 8 > len(buf):
        need(buf, pos + 8, complete)
    if explicit:
        group, elem, vr, length = EXPLICIT[little](buf, pos)
        if group != DELIMITER_GROUP:
            if vr in short_vrs:
                return group << 16 | elem, vr, length, pos + 8
            if vr in LONG_VRS:
                if pos + 12 > len(buf):
                    need(buf, pos + 12, complete)
                return group << 16 | elem, vr, U32[little](buf, pos + 8)[0], pos + 12
            raise Unsupported(f"unknown VR at offset {pos}")
    group, elem, length = IMPLICIT[little](buf, pos)
    return group << 16 | elem, b"", length, pos + 8


def skip_item(
    buf: bytes, pos: int, little: bool, explicit: bool, complete: bool = True, depth: int = 0
) -> int:
    """Skip the elements of an undefined-length item whose value starts at ``pos``.

    Returns:
        The offset just after the item delimiter (the delimiter itself starts 8 bytes before).
    """
    while True:
        tag, vr, length, vpos = element_header(buf, pos, little, explicit, complete)
        if tag == ITEM_END:
            return vpos
        if length == UNDEFINED:
            pos = skip_sequence(buf, vpos, little, explicit, complete, depth + 1, vr)
        else:
            pos = vpos + length


def skip_sequence(
    buf: bytes,
    pos: int,
    little: bool,
    explicit: bool,
    complete: bool = True,
    depth: int = 0,
    vr: bytes = b"",
) -> int:
    """Skip an undefined-length value (a sequence or encapsulated pixel data) whose items start at ``pos``.

    Args:
        vr: The VR of the element being skipped: the items of a ``UN`` value are implicit VR little
            endian whatever the dataset's encoding.

    Returns:
        The offset just after the sequence delimiter.

    Raises:
        Unsupported: nested deeper than :data:`MAX_DEPTH`, or something else than an item where an
            item must be; NeedMore: see :func:`need`.
    """
    if vr == b"UN":
        little, explicit = True, False
    if depth > MAX_DEPTH:
        raise Unsupported("sequences nested too deeply")
    while True:
        tag, _vr, length, vpos = element_header(buf, pos, little, False, complete)
        if tag == SEQ_END:
            return vpos
        if tag != ITEM:
            raise Unsupported(f"unexpected tag {tag:08X} in a sequence")
        if length == UNDEFINED:
            pos = skip_item(buf, vpos, little, explicit, complete, depth)
        else:
            pos = vpos + length


def iter_items(
    buf: bytes, pos: int, length: int, little: bool, explicit: bool, complete: bool = True, vr: bytes = b""
) -> Iterator[tuple[int, int]]:
    """Yield ``(value_offset, value_end)`` for each item of the sequence whose value starts at ``pos``.

    ``length`` is the sequence's (:data:`UNDEFINED` or a byte count); an undefined-length item's end
    is found by skipping its elements and is where its delimiter starts. Walk an item's own elements
    with :func:`iter_elements` over ``buf[value_offset:value_end]``.

    Raises:
        Unsupported: something else than an item, or an item longer than its sequence;
            NeedMore: see :func:`need`.
    """
    if vr == b"UN" and length == UNDEFINED:
        little, explicit = True, False
    end = None if length == UNDEFINED else pos + length
    while end is None or pos < end:
        tag, _vr, ilen, vpos = element_header(buf, pos, little, False, complete)
        if tag == SEQ_END and end is None:
            return
        if tag != ITEM:
            raise Unsupported(f"unexpected tag {tag:08X} in a sequence")
        if ilen == UNDEFINED:
            after = skip_item(buf, vpos, little, explicit, complete, 1)
            yield vpos, after - 8
            pos = after
        else:
            if end is not None and vpos + ilen > end:
                raise Unsupported(f"item at offset {pos} runs past its sequence")
            if vpos + ilen > len(buf):
                need(buf, vpos + ilen, complete)
            yield vpos, vpos + ilen
            pos = vpos + ilen


def iter_elements(
    buf: bytes,
    pos: int,
    end: int,
    little: bool,
    explicit: bool,
    complete: bool = True,
    short_vrs: frozenset[bytes] = LETTER_VRS,
) -> Iterator[tuple[int, bytes, int, int]]:
    """Yield ``(tag, vr, length, value_offset)`` for each element of the dataset in ``buf[pos:end]``.

    An undefined-length value (``length`` :data:`UNDEFINED`) is skipped to its delimiter before the
    walk goes on: read its items with :func:`iter_items` while the element is the current one. Fewer
    than 8 bytes left before ``end`` are trailing padding, not an element.

    Raises:
        Unsupported: malformed, nested too deeply, or more elements than the ``dataset_elements``
            limit; NeedMore: see :func:`need`.
    """
    max_elements = limits.current().dataset_elements
    count = 0
    while end - pos >= 8:
        count += 1
        if count > max_elements:
            raise Unsupported("more elements than the dataset_elements limit")
        tag, vr, length, vpos = element_header(buf, pos, little, explicit, complete, short_vrs)
        yield tag, vr, length, vpos
        if length == UNDEFINED:
            pos = skip_sequence(buf, vpos, little, explicit, complete, 0, vr)
        else:
            pos = vpos + length


def read_meta(buf: bytes, complete: bool = True) -> tuple[int, dict[int, tuple[bytes, bytes]]]:
    """Read the file meta group (always explicit VR little endian) of a Part 10 file.

    Returns:
        ``(dataset_offset, {tag: (vr, raw value)})``; ``(0, {})`` when ``buf`` has no preamble and
        DICM marker. A repeated element keeps its last value, as pydicom keeps it.

    Raises:
        NeedMore, Unsupported: see :func:`need`; Unsupported also for an undefined length.
    """
    values: dict[int, tuple[bytes, bytes]] = {}
    if len(buf) < 132 or buf[128:132] != b"DICM":
        return 0, values
    pos = 132
    group_of = U16[True]
    while True:
        need(buf, pos + 8, complete)
        if group_of(buf, pos)[0] != 0x0002:
            return pos, values
        tag, vr, length, vpos = element_header(buf, pos, True, True, complete)
        if length == UNDEFINED:
            raise Unsupported("undefined length in file meta")
        need(buf, vpos + length, complete)
        values[tag] = (vr, buf[vpos : vpos + length])
        pos = vpos + length


def meta_transfer_syntax(prefix: bytes) -> str | None:
    """The Transfer Syntax UID (0002,0010) of a Part 10 file from its first bytes.

    Returns:
        The UID; ``""`` when the meta group has none; None when ``prefix`` has no DICM marker or the
        meta group cannot be read to its end within it.
    """
    if len(prefix) < 132 or prefix[128:132] != b"DICM":
        return None
    try:
        _pos, values = read_meta(prefix, False)
    except (NeedMore, Unsupported):
        return None
    ts = values.get(0x00020010)
    return ascii_value(ts[1]) if ts is not None else ""


def ascii_value(raw: bytes) -> str:
    """A UI/CS/AE value as text: Latin-1, trailing NUL and space padding removed."""
    return raw.decode("latin_1").rstrip("\x00 ")
