"""Small uncompressed DICOM files written byte by byte, for the edge cases of the pydicom-free reader.

pydicom refuses to write most of these (a value with a tab, a second Pixel Data, a Rows after the pixels,
an unknown VR in the file meta group), so they are assembled here from raw elements, at test time.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"

#: explicit VRs with two reserved bytes and a 32-bit length
_LONG = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UR", b"UT", b"UN", b"SV", b"UV"}
UNDEFINED = 0xFFFFFFFF
#: the "VR" of an ``extra`` entry of :func:`image` whose value is a whole element (a sequence) as it is
RAW = b"raw"


def el(
    tag: int,
    vr: bytes,
    value: bytes | str,
    *,
    little: bool = True,
    explicit: bool = True,
    length: int | None = None,
) -> bytes:
    """One element; a text value is padded to an even length (NUL for UI, space otherwise)."""
    if isinstance(value, str):
        value = value.encode("latin_1")
        if len(value) % 2:
            value += b"\0" if vr == b"UI" else b" "
    group, elem = tag >> 16, tag & 0xFFFF
    n = len(value) if length is None else length
    end = "<" if little else ">"
    if not explicit or group == 0xFFFE:
        return struct.pack(end + "HHI", group, elem, n) + value
    if vr in _LONG:
        return struct.pack(end + "HH2sHI", group, elem, vr, 0, n) + value
    return struct.pack(end + "HH2sH", group, elem, vr, n) + value


def us(*values: int, little: bool = True) -> bytes:
    """US values in the dataset's byte order."""
    return struct.pack(("<" if little else ">") + "H" * len(values), *values)


def item(elements: bytes, *, undefined: bool = False) -> bytes:
    """A sequence item holding ``elements`` (always little endian here)."""
    if undefined:
        return el(0xFFFEE000, b"", elements, length=UNDEFINED) + el(0xFFFEE00D, b"", b"")
    return el(0xFFFEE000, b"", elements)


def sequence(tag: int, items: bytes, *, undefined: bool = False, explicit: bool = True) -> bytes:
    """A sequence element of ``items``, of defined or undefined length."""
    if undefined:
        return el(tag, b"SQ", items, explicit=explicit, length=UNDEFINED) + el(0xFFFEE0DD, b"", b"")
    return el(tag, b"SQ", items, explicit=explicit)


def meta(ts: str, *, vr_of_ts: bytes = b"UI") -> bytes:
    """Preamble, DICM and a file meta group naming ``ts``."""
    body = el(0x00020001, b"OB", b"\0\1") + el(0x00020002, b"UI", "1.2.840.10008.5.1.4.1.1.7")
    body += el(0x00020003, b"UI", "1.2.3.4") + el(0x00020010, vr_of_ts, ts if len(ts) % 2 == 0 else ts + "\0")
    return b"\0" * 128 + b"DICM" + el(0x00020000, b"UL", struct.pack("<I", len(body))) + body


def image(
    *,
    rows: int = 4,
    columns: int = 4,
    bits: int = 16,
    samples: int = 1,
    photometric: str = "MONOCHROME2",
    planar: int | None = None,
    representation: int = 0,
    stored: int | None = None,
    extra: Iterable[tuple[int, bytes, bytes | str]] = (),
    drop: Iterable[int] = (),
    pixels: bytes | None = None,
    pixel_vr: bytes | None = None,
    after: bytes = b"",
    ts: str = EXPLICIT_LE,
    meta_vr: bytes = b"UI",
) -> bytes:
    """A small CT-like image.

    Args:
        extra: ``(tag, vr, value)`` elements added or replacing the defaults; with the VR :data:`RAW`,
            ``value`` is a whole element placed as it is, in tag order (a :func:`sequence`).
        drop: Tags left out.
        after: Bytes written after the Pixel Data element.
    """
    little, explicit = ts != EXPLICIT_BE, ts != IMPLICIT_LE
    elems: dict[int, tuple[bytes, bytes | str]] = {
        0x00080060: (b"CS", "CT"),
        0x00280002: (b"US", us(samples, little=little)),
        0x00280004: (b"CS", photometric),
        0x00280010: (b"US", us(rows, little=little)),
        0x00280011: (b"US", us(columns, little=little)),
        0x00280100: (b"US", us(bits, little=little)),
        0x00280101: (b"US", us(bits if stored is None else stored, little=little)),
        0x00280102: (b"US", us(max(0, (bits if stored is None else stored) - 1), little=little)),
        0x00280103: (b"US", us(representation, little=little)),
    }
    if planar is not None:
        elems[0x00280006] = (b"US", us(planar, little=little))
    for tag, vr, value in extra:
        elems[tag] = (vr, value)
    for tag in drop:
        elems.pop(tag, None)
    body = b"".join(
        v if vr == RAW and isinstance(v, bytes) else el(t, vr, v, little=little, explicit=explicit)
        for t, (vr, v) in sorted(elems.items())
    )
    if pixels is None:
        count = rows * columns * samples * bits // 8
        pixels = np.random.default_rng(1).integers(0, 256, count, dtype=np.uint8).tobytes()
    vr = pixel_vr if pixel_vr is not None else (b"OB" if bits <= 8 else b"OW")
    body += el(0x7FE00010, vr, pixels, little=little, explicit=explicit)
    return meta(ts, vr_of_ts=meta_vr) + body + after


def write(folder: Path, name: str, data: bytes) -> Path:
    """``data`` written as ``folder/name.dcm``."""
    path = folder / f"{name}.dcm"
    path.write_bytes(data)
    return path
