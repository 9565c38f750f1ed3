"""Read a compressed frame's own header before any decoder sees it, and refuse streams that lie.

Decoders allocate what the *stream* says, whatever Rows and Columns say: a JPEG SOF declaring
65,000 x 65,000 inside a 3 KB file made a decoder take 6 GB. :func:`check_frame` parses the header of
each codec the viewer decodes — JPEG SOF (baseline, extended, lossless, JPEG-LS SOF55), JPEG 2000 SIZ
(raw codestream or inside JP2 boxes), RLE's segment table — and raises :class:`PixelDataError` when
the size, the number of components or the layout disagrees with the Image Pixel module, or
:class:`LimitExceeded` when the decoded frame would exceed the ``frame_bytes`` limit. Pure ``struct``
work on the first bytes of the frame: microseconds.
"""

from __future__ import annotations

import struct

from tui_dicom.core import limits
from tui_dicom.core.errors import PixelDataError

JPEG_SYNTAXES = frozenset(
    {
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.81",
    }
)
J2K_SYNTAXES = frozenset(
    {
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.92",
        "1.2.840.10008.1.2.4.93",
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202",
        "1.2.840.10008.1.2.4.203",
    }
)
RLE_SYNTAX = "1.2.840.10008.1.2.5"

#: JPEG start-of-frame markers (not DHT C4, JPG C8, DAC CC) plus JPEG-LS SOF55 (F7)
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7})
#: the standard's maximum number of tiles in a JPEG 2000 image (Isot is 16 bits)
_MAX_TILES = 65535
#: how far into a JPEG stream a frame header may start (APPn segments, e.g. an ICC profile)
_JPEG_SCAN_BYTES = 1 << 20


class StreamHeader:
    """What a stream's header declares: columns, rows, components and bits per sample."""

    __slots__ = ("bits", "columns", "components", "rows")

    def __init__(self, columns: int, rows: int, components: int, bits: int) -> None:
        self.columns = columns
        self.rows = rows
        self.components = components
        self.bits = bits

    def __repr__(self) -> str:
        return f"StreamHeader({self.columns}x{self.rows}x{self.components}, {self.bits} bits)"


def jpeg_header(data: bytes) -> StreamHeader:
    """The frame header (SOF) of a JPEG or JPEG-LS stream.

    Raises:
        PixelDataError: no SOI, no frame header, or a segment running past the data.
    """
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise PixelDataError("JPEG stream does not start with an SOI marker")
    pos = 2
    end = min(len(data), _JPEG_SCAN_BYTES)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            raise PixelDataError(f"JPEG stream: no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            break  # EOI or start of scan before any frame header
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2:
            raise PixelDataError(f"JPEG stream: segment length {length} at byte {pos}")
        if marker in _SOF:
            if pos + 2 + 8 > len(data):
                break
            bits, rows, cols, comps = struct.unpack_from(">BHHB", data, pos + 4)
            return StreamHeader(cols, rows, comps, bits)
        pos += 2 + length
    raise PixelDataError("JPEG stream has no frame header (SOF) before its scan")


def _siz(data: bytes, pos: int) -> StreamHeader:
    """Parse a JPEG 2000 SIZ segment whose marker is at ``pos``."""
    if pos + 40 > len(data) or data[pos : pos + 2] != b"\xff\x51":
        raise PixelDataError("JPEG 2000 codestream has no SIZ segment after SOC")
    (_lsiz, _rsiz, xsiz, ysiz, xo, yo, xt, yt, xto, yto, csiz) = struct.unpack_from(
        ">HHIIIIIIIIH", data, pos + 2
    )
    width, height = xsiz - xo, ysiz - yo
    if xsiz <= xo or ysiz <= yo or xt == 0 or yt == 0 or xto > xo or yto > yo or csiz == 0:
        raise PixelDataError("JPEG 2000 SIZ segment is not valid (empty image or tile grid)")
    tiles = -(-(xsiz - xto) // xt) * -(-(ysiz - yto) // yt)
    if tiles > _MAX_TILES:
        raise PixelDataError(f"JPEG 2000 stream declares {tiles:,} tiles (at most {_MAX_TILES:,} allowed)")
    bits = 0
    base = pos + 2 + 38
    for comp in range(min(csiz, 16384)):
        if base + 3 * comp + 3 > len(data):
            raise PixelDataError("JPEG 2000 SIZ segment is cut short")
        ssiz, dx, dy = data[base + 3 * comp], data[base + 3 * comp + 1], data[base + 3 * comp + 2]
        if dx == 0 or dy == 0:
            raise PixelDataError("JPEG 2000 SIZ segment has a zero sub-sampling factor")
        bits = max(bits, (ssiz & 0x7F) + 1)
    return StreamHeader(width, height, csiz, bits)


def j2k_header(data: bytes) -> StreamHeader:
    """The SIZ of a JPEG 2000 codestream, bare or in a JP2 file (boxes walked to ``jp2c``).

    A JP2 box whose length is 0 ("to the end of the file") is only valid for the last box; one
    before the codestream made openjpeg loop forever, so it is refused here.

    Raises:
        PixelDataError: no codestream, a malformed box, or a malformed SIZ.
    """
    if data[:4] == b"\xff\x4f\xff\x51":
        return _siz(data, 2)
    pos = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if length == 1:
            if pos + 16 > len(data):
                break
            (length,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        if kind == b"jp2c":
            start = pos + header
            if data[start : start + 4] != b"\xff\x4f\xff\x51":
                raise PixelDataError("JP2 codestream box does not start with SOC and SIZ")
            return _siz(data, start + 2)
        if length == 0:
            raise PixelDataError(f"JP2 box {kind!r} has length 0 but is not the last box")
        if length < header:
            raise PixelDataError(f"JP2 box {kind!r} has length {length}")
        if kind == b"jp2h":  # a super-box: walk into it
            pos += header
            continue
        pos += length
    raise PixelDataError("JPEG 2000 data has neither a codestream nor a JP2 codestream box")


def rle_segments(data: bytes, expected: int | None = None) -> int:
    """The number of segments in an RLE frame, its 64-byte header checked.

    Raises:
        PixelDataError: fewer than 64 bytes, more than 15 segments, offsets not increasing or outside.
    """
    if len(data) < 64:
        raise PixelDataError(f"RLE frame is {len(data)} bytes, shorter than its 64-byte header")
    count, *offsets = struct.unpack_from("<16I", data, 0)
    if not 1 <= count <= 15:
        raise PixelDataError(f"RLE header declares {count} segments (1 to 15 allowed)")
    if expected is not None and count != expected:
        raise PixelDataError(f"RLE frame has {count} segments, {expected} expected")
    used = offsets[:count]
    if used[0] != 64 or any(b <= a for a, b in zip(used, used[1:], strict=False)) or used[-1] >= len(data):
        raise PixelDataError("RLE segment offsets are not increasing within the frame")
    return int(count)


def check_frame(
    ts: str,
    data: bytes,
    *,
    rows: int,
    columns: int,
    samples: int,
    bits_allocated: int,
    file: str = "",
) -> None:
    """Refuse a compressed frame whose own header disagrees with the Image Pixel module or whose
    decoded size exceeds the ``frame_bytes`` limit. Syntaxes without a header to read pass.

    Raises:
        PixelDataError: the header is malformed or disagrees with Rows/Columns/Samples per Pixel.
        LimitExceeded: the stream's decoded frame is larger than the limit.
    """
    cap = limits.current().frame_bytes
    if ts == RLE_SYNTAX:
        rle_segments(data, samples * max(1, bits_allocated // 8))
        return
    if ts in JPEG_SYNTAXES:
        head = jpeg_header(data)
        what = "JPEG-LS" if ts.endswith((".80", ".81")) else "JPEG"
    elif ts in J2K_SYNTAXES:
        head = j2k_header(data)
        what = "JPEG 2000"
    else:
        return
    decoded = head.columns * max(head.rows, 1) * head.components * max(1, (head.bits + 7) // 8)
    if decoded > cap:
        raise limits.LimitExceeded(file, "frame_bytes", decoded, cap)
    # a JPEG SOF may leave the height to a later DNL segment (rows 0): the width still must match
    if head.columns != columns or (head.rows != 0 and head.rows != rows):
        raise PixelDataError(
            f"{what} stream is {head.columns}x{head.rows}, the header says {columns}x{rows} (Columns x Rows)"
        )
    # JPEG-LS and JPEG may code three samples as one component per scan, but never as one component
    if head.components != samples:
        raise PixelDataError(
            f"{what} stream has {head.components} components, Samples per Pixel is {samples}"
        )
