"""Read DICOM headers safely: sniff, guard against hostile input, turn every failure into one line.

:func:`read_dataset` is the one place that calls ``pydicom.dcmread`` on a user's file. It refuses
non-DICOM files quickly, bounds what a deflated dataset may inflate to, and turns pydicom's many
exception types (and RecursionError from absurdly nested sequences) into :class:`HeaderError` with a
plain-language reason.
"""

from __future__ import annotations

import struct
import warnings
import zlib

from tui_dicom.core.dicom.source import FileRef, open_ref
from tui_dicom.core.errors import HeaderError, NotDicomError

#: ``typing`` is for the type checker only: ``tui-dicom dump`` must start fast
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pydicom.dataset import FileDataset

DEFLATED = "1.2.840.10008.1.2.1.99"
#: a deflated dataset may not inflate to more than this. pydicom holds the inflated stream and a copy
#: of each value at once, so peak memory is about twice this plus the interpreter: 128 MB keeps a
#: file just under the cap within 500 MB of RSS (256 MB did not: ~580 MB).
MAX_INFLATED_BYTES = 128 * 1024**2
_SNIFF_GROUPS = {0x0002, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028}
_VRS = {
    b"AE",
    b"AS",
    b"AT",
    b"CS",
    b"DA",
    b"DS",
    b"DT",
    b"FL",
    b"FD",
    b"IS",
    b"LO",
    b"LT",
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"PN",
    b"SH",
    b"SL",
    b"SQ",
    b"SS",
    b"ST",
    b"SV",
    b"TM",
    b"UC",
    b"UI",
    b"UL",
    b"UN",
    b"UR",
    b"US",
    b"UT",
    b"UV",
}


def sniff(prefix: bytes) -> bool:
    """True if ``prefix`` (the first ≥ 132 bytes of a file) looks like DICOM.

    Accepts Part 10 files (``DICM`` at offset 128) and raw datasets without preamble whose first
    element is a plausible group 0002/0008/... tag, in either byte order.
    """
    if len(prefix) >= 132 and prefix[128:132] == b"DICM":
        return True
    if len(prefix) < 8:
        return False
    for fmt in ("<HH", ">HH"):
        group, elem = struct.unpack_from(fmt, prefix, 0)
        if group in _SNIFF_GROUPS and elem <= 0x0100:
            vr = prefix[4:6]
            if vr in _VRS:
                return True
            (length,) = struct.unpack_from(fmt[0] + "I", prefix, 4)
            if length < 1024:  # implicit VR: a small first value
                return True
    return False


def _check_deflate(ref: FileRef, data_head: bytes) -> None:
    """Refuse deflated datasets that inflate beyond :data:`MAX_INFLATED_BYTES`."""
    if DEFLATED.encode() not in data_head[:4096]:
        return
    with open_ref(ref) as fh:
        raw = fh.read()
    # the deflated stream starts after the file meta group; find its end from the group length
    start = raw.find(b"DICM")
    pos = start + 4 if start >= 0 else 0
    while pos + 8 <= len(raw):
        group, _elem = struct.unpack_from("<HH", raw, pos)
        if group != 0x0002:
            break
        vr = raw[pos + 4 : pos + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV", b"SV", b"UV"):
            (length,) = struct.unpack_from("<I", raw, pos + 8)
            pos += 12 + length
        else:
            (length,) = struct.unpack_from("<H", raw, pos + 6)
            pos += 8 + length
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    view = memoryview(raw)[pos:]
    step = 1 << 16
    try:
        for off in range(0, len(view), step):
            chunk = view[off : off + step]
            while chunk:
                out = inflater.decompress(chunk, 1 << 20)
                total += len(out)
                if total > MAX_INFLATED_BYTES:
                    raise HeaderError(
                        f"deflated dataset inflates to more than {MAX_INFLATED_BYTES // 1024**2} MB; refused"
                    )
                chunk = inflater.unconsumed_tail
    except zlib.error as exc:
        raise HeaderError(f"deflated dataset is corrupt: {exc}") from exc


def read_dataset(ref: FileRef, *, stop_before_pixels: bool = True) -> FileDataset:
    """Read the DICOM file at ``ref``.

    Args:
        ref: The file.
        stop_before_pixels: Stop before (7FE0,0010) Pixel Data (the default: headers only).

    Returns:
        The pydicom dataset (file meta in ``.file_meta``).

    Raises:
        NotDicomError: not a DICOM file.
        HeaderError: DICOM, but the header cannot be read; the message says why.
        OSError: the file cannot be opened (the message names the OS reason).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    with open_ref(ref) as fh:
        head = fh.read(4096)
        if not head:
            raise NotDicomError("empty file")
        if not sniff(head):
            raise NotDicomError("not a DICOM file (no DICM marker and no DICOM header)")
        if len(head) == 132 and head[128:132] == b"DICM":
            raise HeaderError("file ends right after the DICM marker")
        _check_deflate(ref, head)
        fh.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydicom warns about odd values; they are logged
                ds = pydicom.dcmread(fh, stop_before_pixels=stop_before_pixels, force=True)
                _check_truncated(ds)
                _note_raw_lengths(ds)
                # pydicom reads lazily in places: touch every top-level element so errors surface here
                for _elem in ds:
                    pass
        except HeaderError:
            raise
        except RecursionError:
            raise HeaderError("sequences are nested too deeply to read") from None
        except InvalidDicomError as exc:
            raise NotDicomError(f"not a DICOM file ({_short(exc)})") from exc
        except MemoryError:
            raise HeaderError("header declares more data than can be held in memory") from None
        except (EOFError, struct.error) as exc:
            raise HeaderError(f"file is truncated ({_short(exc)})") from exc
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types on broken files
            raise HeaderError(f"cannot read header: {_short(exc)}") from exc
    if len(ds) == 0 and not getattr(ds, "file_meta", None):
        raise NotDicomError("no DICOM elements found")
    return ds


#: pixel data cut short is the pixel pipeline's to report (the header is still usable)
_PIXEL_TAGS = {0x7FE00008, 0x7FE00009, 0x7FE00010}


def _check_truncated(ds: FileDataset) -> None:
    """Refuse a dataset whose top-level element values are shorter than their declared length.

    pydicom keeps whatever bytes were left when a value runs past the end of the file (a file cut
    in the middle of an element, or a length field beyond EOF) and says nothing; the values would
    be shown as if complete. Pixel Data is left to :mod:`tui_dicom.core.imaging.pixels`, which names the
    missing bytes, so the header of an image with truncated pixels stays readable.
    """
    from pydicom.datadict import keyword_for_tag

    for tag, elem in ds._dict.items():  # raw elements, before pydicom converts them
        if tag in _PIXEL_TAGS:
            continue
        length = getattr(elem, "length", None)
        value = getattr(elem, "value", None)
        if (
            isinstance(length, int)
            and length != 0xFFFFFFFF
            and isinstance(value, (bytes, bytearray))
            and len(value) < length
        ):
            name = keyword_for_tag(tag) or "element"
            raise HeaderError(
                f"file is truncated: {name} ({tag >> 16:04X},{tag & 0xFFFF:04X}) declares "
                f"{length:,} bytes, {len(value):,} present"
            )


RAW_LENGTHS_ATTR = "_tui_raw_lengths"
"""Where a dataset read here keeps its top-level elements' lengths in the file (see ``_note_raw_lengths``)."""


def _note_raw_lengths(ds: FileDataset) -> None:
    """Keep each top-level element's length in the file before conversion forgets it (shown as ``# n``)."""
    lengths = {
        int(tag): elem.length
        for tag, elem in ds._dict.items()
        if type(elem).__name__ == "RawDataElement" and elem.length != 0xFFFFFFFF
    }
    ds.__dict__[RAW_LENGTHS_ATTR] = lengths


def _short(exc: BaseException) -> str:
    """A one-line version of an exception message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
