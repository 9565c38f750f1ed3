"""Read DICOM headers safely: sniff, guard against hostile input, turn every failure into one line.

:func:`read_dataset` is the one place that calls ``pydicom.dcmread`` on a user's file. It refuses
non-DICOM files quickly, bounds what a deflated dataset may inflate to, and turns pydicom's many
exception types (and RecursionError from absurdly nested sequences) into :class:`HeaderError` with a
plain-language reason.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

from tui_dicom.core import limits
from tui_dicom.core.dicom.elements import DEFLATED, IMPLICIT, KNOWN_VRS, meta_transfer_syntax
from tui_dicom.core.dicom.source import FileRef, open_ref, open_size
from tui_dicom.core.errors import HeaderError, NotDicomError

#: ``typing`` is for the type checker only: ``tui-dicom dump`` must start fast
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    from pydicom.dataset import FileDataset

# A deflated dataset may inflate to ``limits.current().inflated_bytes``. pydicom holds the inflated
# stream and a copy of each value at once, so peak memory is about twice that plus the interpreter:
# 128 MB keeps a file just under the cap within 500 MB of RSS (256 MB did not: ~580 MB).
_SNIFF_GROUPS = {0x0002, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028}


def sniff(prefix: bytes) -> bool:
    """True if ``prefix`` (the first ≥ 132 bytes of a file) looks like DICOM.

    Accepts Part 10 files (``DICM`` at offset 128) and raw datasets without preamble whose first
    element is a plausible group 0002/0008/... tag, in either byte order.
    """
    if len(prefix) >= 132 and prefix[128:132] == b"DICM":
        return True
    if len(prefix) < 8:
        return False
    for little in (True, False):
        group, elem, length = IMPLICIT[little](prefix, 0)
        if group in _SNIFF_GROUPS and elem <= 0x0100:
            if prefix[4:6] in KNOWN_VRS:  # explicit VR
                return True
            if length < 1024:  # implicit VR: a small first value
                return True
    return False


def is_deflated(head: bytes) -> bool:
    """True if the file whose first bytes are ``head`` has a deflated dataset, so it must be inflated
    by :func:`_inflate` (bounded), never by pydicom.

    The file meta group says so (its Transfer Syntax UID, read with the element reader). When the meta
    group cannot be read within ``head`` (no DICM marker, malformed, or longer), the UID anywhere in
    ``head`` counts: pydicom may still find it, and its own inflation has no bound.
    """
    ts = meta_transfer_syntax(head)
    if ts is None:
        return DEFLATED.encode() in head
    return ts == DEFLATED


def _inflate(fh: BinaryIO, ref: FileRef) -> io.BytesIO:
    """Inflate the deflated dataset that starts at ``fh``'s position, counting while inflating.

    pydicom would read the whole compressed rest of the file and ``zlib.decompress`` it in one call,
    however large the result: a few kilobytes can inflate to gigabytes. Here each step inflates at
    most 1 MB and the total is checked against the ``inflated_bytes`` limit before the next.

    Raises:
        LimitExceeded: the stream inflates past the limit, or the file is larger than ``file_bytes``.
        HeaderError: the stream is corrupt.
    """
    budget = limits.current()
    cap, read_cap = budget.inflated_bytes, budget.file_bytes
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = io.BytesIO()
    total = read = 0
    try:
        while not inflater.eof:
            chunk = fh.read(1 << 16)
            if not chunk:
                break
            read += len(chunk)
            if read > read_cap:
                raise limits.LimitExceeded(ref.display, "file_bytes", None, read_cap)
            while chunk and not inflater.eof:
                piece = inflater.decompress(chunk, 1 << 20)
                total += len(piece)
                if total > cap:
                    raise limits.LimitExceeded(ref.display, "inflated_bytes", None, cap)
                out.write(piece)
                chunk = inflater.unconsumed_tail
    except zlib.error as exc:
        raise HeaderError(f"deflated dataset is corrupt: {_short(exc)}") from exc
    if total == 0:
        raise HeaderError("deflated dataset is empty or corrupt")
    out.seek(0)
    return out  # read in place: no second copy of up to inflated_bytes


def _read_deflated(fh: BinaryIO, ref: FileRef, stop_when: Any) -> FileDataset:
    """Read a Deflated Explicit VR Little Endian file as pydicom's ``read_partial`` does, but with
    the dataset inflated by :func:`_inflate` (bounded) instead of pydicom's unbounded one-shot call."""
    from pydicom.dataset import FileDataset
    from pydicom.filebase import DicomIO
    from pydicom.filereader import _read_file_meta_info, read_dataset, read_partial, read_preamble

    fh.seek(0)
    preamble = read_preamble(fh, True)
    file_meta = _read_file_meta_info(fh)
    if file_meta.get("TransferSyntaxUID") != DEFLATED:  # the UID was elsewhere in the first bytes
        fh.seek(0)
        return read_partial(fh, stop_when, force=True)
    buffer: Any = DicomIO(_inflate(fh, ref))
    buffer.name = getattr(fh, "name", None)
    dataset = read_dataset(buffer, False, True, stop_when=stop_when)
    ds = FileDataset(buffer, dataset, preamble, file_meta, False, True)
    ds.set_original_encoding(False, True, dataset._character_set)
    return ds


class _Budget:
    """pydicom's ``stop_when`` for the top level: stops at pixel data when asked, and refuses an
    element longer than ``element_bytes`` or a dataset with more than ``dataset_elements`` elements
    *while parsing*, before pydicom reads or converts them (491,000 private elements took 9 s)."""

    def __init__(self, ref: FileRef, stop_before_pixels: bool, available: int | None = None) -> None:
        budget = limits.current()
        self.ref = ref
        # a length beyond what the file holds is a truncated file (reported as such), not a big value
        self.available = available
        self.stop_before_pixels = stop_before_pixels
        self.max_elements = budget.dataset_elements
        self.max_bytes = budget.element_bytes
        self.count = 0

    def __call__(self, tag: int, vr: str | None, length: int) -> bool:
        if tag in _PIXEL_TAGS:
            return self.stop_before_pixels
        self.count += 1
        if self.count > self.max_elements:
            raise limits.LimitExceeded(self.ref.display, "dataset_elements", None, self.max_elements)
        if (
            length != 0xFFFFFFFF
            and length > self.max_bytes
            and vr != "SQ"
            and (self.available is None or length <= self.available)
        ):
            raise limits.LimitExceeded(self.ref.display, "element_bytes", length, self.max_bytes)
        return False


#: bytes per value of the binary VRs pydicom turns into one Python number per value
_BINARY_VALUE_SIZE = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "SV": 8, "UV": 8}
#: text VRs that hold several values separated by backslashes
_MULTI_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UC", "UI"}


def _dictionary_vr(tag: int) -> str | None:
    from pydicom.datadict import dictionary_VR

    try:
        return str(dictionary_VR(tag)).split(" ")[0]  # "US or SS": two bytes a value either way
    except KeyError:
        return None


def _check_values(ds: Any, ref: FileRef, depth: int = 0) -> None:
    """Refuse elements with more values than ``element_values`` and items with more elements than
    ``dataset_elements``, before pydicom converts them (5 million DS values took 11 s and 2 GB).

    Only raw (still unconverted) elements are counted, with C-speed byte counts.
    """
    budget = limits.current()
    max_values, max_elements, max_bytes = budget.element_values, budget.dataset_elements, budget.element_bytes
    elements = ds._dict
    if len(elements) > max_elements:
        raise limits.LimitExceeded(ref.display, "dataset_elements", len(elements), max_elements)
    for tag, elem in elements.items():
        if tag in _PIXEL_TAGS:
            continue
        vr = elem.VR
        value = elem.value
        if vr is None:  # implicit VR: the dictionary's
            vr = _dictionary_vr(tag)
        if isinstance(value, (bytes, bytearray)):
            if len(value) > max_bytes:  # inside a sequence (the top level is refused while parsing)
                raise limits.LimitExceeded(ref.display, "element_bytes", len(value), max_bytes)
            size = _BINARY_VALUE_SIZE.get(vr or "")
            if size is not None:
                count = len(value) // size
            elif vr in _MULTI_TEXT_VRS:
                count = value.count(b"\\") + 1
            else:
                continue
            if count > max_values:
                raise limits.LimitExceeded(ref.display, "element_values", count, max_values)
        elif vr == "SQ" and value is not None and depth < 64:
            for item in value:
                _check_values(item, ref, depth + 1)


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
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_partial

    with open_ref(ref) as fh:
        head = fh.read(4096)
        if not head:
            raise NotDicomError("empty file")
        if not sniff(head):
            raise NotDicomError("not a DICOM file (no DICM marker and no DICOM header)")
        if len(head) == 132 and head[128:132] == b"DICM":
            raise HeaderError("file ends right after the DICM marker")
        deflated = is_deflated(head)
        fh.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydicom warns about odd values; they are logged
                budget = _Budget(ref, stop_before_pixels, None if deflated else open_size(fh))
                ds = _read_deflated(fh, ref, budget) if deflated else read_partial(fh, budget, force=True)
                ds.__dict__[SOURCE_ATTR] = ref.display
                _check_values(ds, ref)
                _check_truncated(ds)
                _note_raw_lengths(ds)
                # pydicom reads lazily in places: touch every top-level element so errors surface here
                for _elem in ds:
                    pass
        except (HeaderError, limits.LimitExceeded):
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


SOURCE_ATTR = "_tui_source"
"""Where a dataset read here keeps the terminal-safe name of its file (for messages such as limits)."""

RAW_LENGTHS_ATTR = "_tui_raw_lengths"
"""Where a dataset read here keeps its top-level elements' lengths in the file (see ``_note_raw_lengths``)."""


def _note_raw_lengths(ds: FileDataset) -> None:
    """Keep each top-level element's length in the file before conversion forgets it (shown as ``# n``)."""
    raw: dict[int, Any] = ds._dict  # type: ignore[assignment]
    lengths = {
        int(tag): elem.length
        for tag, elem in raw.items()
        if type(elem).__name__ == "RawDataElement" and elem.length != 0xFFFFFFFF
    }
    ds.__dict__[RAW_LENGTHS_ATTR] = lengths


def _short(exc: BaseException) -> str:
    """A one-line version of an exception message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
