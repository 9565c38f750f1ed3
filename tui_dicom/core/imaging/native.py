"""Decode one frame of an uncompressed file without pydicom: the common CT/MR/CR slice, in one read.

``import pydicom`` costs ~0.3 s of CPU, and reading a slice with it parses the file twice in the viewer
(the header for the inspector, then the whole file again for the pixels). Most slices a viewer shows are
uncompressed (implicit or explicit VR little endian, explicit VR big endian) greyscale or RGB images
with a rescale and a window and nothing else. For those, :func:`read_slice` walks the top-level elements
with the program's element reader (:mod:`tui_dicom.core.dicom.elements`), keeps the few values the frame
and the annotations need, finds where the Pixel Data value starts, and reads just the wanted frame with
numpy. The values are handed to the very functions the pydicom path uses (``pixels.pixel_info``,
``pixels._mask_stored``, ``pixels._build_frame``, ``geometry.spacing_of``), through :class:`NativeHeader`,
a small read-only stand-in for a pydicom dataset holding the same Python values pydicom would give.

It is deliberately narrow. Anything it is not sure to reproduce exactly returns None, and the caller
decodes with pydicom (which also words the error for a broken file): no Part 10 meta or a transfer
syntax other than the three native ones; deflate or encapsulated pixel data; palette colour, YBR or any
photometric interpretation but MONOCHROME1/2 and RGB; Bits Allocated other than 8, 16 or 32 (big endian:
16 only, as OW); float pixel data; modality or VOI LUT sequences; palette tables; overlays; enhanced
functional groups; elements out of order, repeated, in group 0002 of the dataset, or with a VR other than
the dictionary's; values that do not parse; a character set it cannot decode without pydicom (for text it
needs); pixel data shorter than the header says or cut off by the end of the file; anything past the
limits, and any element or sequence long enough that it *could* hold more values or item elements than
``element_values`` / ``dataset_elements`` allow (pydicom's reader counts them and words the refusal);
Image Pixel values pydicom's decoder refuses but ``pixels.pixel_info`` would fill in (a missing or
multi-valued Samples per Pixel, Bits Stored, Pixel Representation or Photometric Interpretation, a
colour image without Planar Configuration 0 or 1); DS, IS or CS values with control characters or
outside the DICOM grammar (Python's ``strip()``/``float()``/``int()`` take more than pydicom does); and
anything after the pixel data but NUL padding or at most 64 KB of ascending elements past it (trailing
padding, digital signatures), since pydicom reads the rest of the file and a second Pixel Data or a
Rows there changes its picture. ``tests/parity/test_native.py`` checks that every accepted file of the test corpora gives the
same frame as the pydicom path, and lists which kinds are refused.
"""

from __future__ import annotations

import re
import struct
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tui_dicom.core import limits
from tui_dicom.core.cache import own_pages
from tui_dicom.core.dicom.charset import SINGLE_CODEC_CHARSETS
from tui_dicom.core.dicom.elements import (
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    KNOWN_VRS,
    SHORT_VRS,
    U16,
    UNDEFINED,
    NeedMore,
    Unsupported,
    ascii_value,
    element_header,
    need,
    read_meta,
    skip_sequence,
    syntax_encoding,
)
from tui_dicom.core.dicom.source import FileRef, open_ref, open_size
from tui_dicom.core.errors import DicomViewerError

if TYPE_CHECKING:
    from typing import BinaryIO

    from tui_dicom.core.imaging.pixels import Frame

#: the first read; grown (x4) while the header runs past it
FIRST_READ = 64 * 1024
#: a header longer than this is left to pydicom
MAX_HEADER_BYTES = 16 * 1024**2

PIXEL_DATA = 0x7FE00010
#: the transfer syntaxes this module reads (the uncompressed ones, deflate aside)
NATIVE_SYNTAXES = frozenset({IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE})

#: tag -> (keyword, dictionary VR): the values the frame, its display and the slice annotations need
WANTED: dict[int, tuple[str, bytes]] = {
    0x00080005: ("SpecificCharacterSet", b"CS"),
    0x00080020: ("StudyDate", b"DA"),
    0x00080060: ("Modality", b"CS"),
    0x00081030: ("StudyDescription", b"LO"),
    0x0008103E: ("SeriesDescription", b"LO"),
    0x00082144: ("RecommendedDisplayFrameRate", b"IS"),
    0x00100010: ("PatientName", b"PN"),
    0x00100020: ("PatientID", b"LO"),
    0x00100030: ("PatientBirthDate", b"DA"),
    0x00180040: ("CineRate", b"IS"),
    0x00180050: ("SliceThickness", b"DS"),
    0x00181063: ("FrameTime", b"DS"),
    0x00181164: ("ImagerPixelSpacing", b"DS"),
    0x00182010: ("NominalScannedPixelSpacing", b"DS"),
    0x00200011: ("SeriesNumber", b"IS"),
    0x00200032: ("ImagePositionPatient", b"DS"),
    0x00200037: ("ImageOrientationPatient", b"DS"),
    0x00201041: ("SliceLocation", b"DS"),
    0x00280002: ("SamplesPerPixel", b"US"),
    0x00280004: ("PhotometricInterpretation", b"CS"),
    0x00280006: ("PlanarConfiguration", b"US"),
    0x00280008: ("NumberOfFrames", b"IS"),
    0x00280010: ("Rows", b"US"),
    0x00280011: ("Columns", b"US"),
    0x00280030: ("PixelSpacing", b"DS"),
    0x00280034: ("PixelAspectRatio", b"IS"),
    0x00280100: ("BitsAllocated", b"US"),
    0x00280101: ("BitsStored", b"US"),
    0x00280102: ("HighBit", b"US"),
    0x00280103: ("PixelRepresentation", b"US"),
    0x00281050: ("WindowCenter", b"DS"),
    0x00281051: ("WindowWidth", b"DS"),
    0x00281052: ("RescaleIntercept", b"DS"),
    0x00281053: ("RescaleSlope", b"DS"),
    0x00281054: ("RescaleType", b"LO"),
    0x00281055: ("WindowCenterWidthExplanation", b"LO"),
    0x00281056: ("VOILUTFunction", b"CS"),
    0x20500020: ("PresentationLUTShape", b"CS"),
}
_KEYWORD_TAG = {keyword: tag for tag, (keyword, _vr) in WANTED.items()}

#: elements whose presence changes the frame in ways this module does not reproduce (pydicom decodes)
REFUSED: dict[int, str] = {
    0x00283000: "modality LUT sequence",
    0x00283010: "VOI LUT sequence",
    0x52009229: "enhanced functional groups",
    0x52009230: "enhanced functional groups",
    0x7FE00008: "float pixel data",
    0x7FE00009: "double float pixel data",
}
#: (0028,1101)-(0028,1224): palette colour descriptors and tables (plain, segmented, alpha)
_PALETTE_TAGS = range(0x00281101, 0x00281225)

_PHOTOMETRICS = {1: ("MONOCHROME1", "MONOCHROME2"), 3: ("RGB",)}
#: single-codec character sets decoded here (the rest: ASCII values only, else pydicom)
_SIMPLE_CHARSETS = {"": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}
#: text VRs pydicom decodes with the dataset's character set
_CHARSET_VRS = frozenset({b"LO", b"SH", b"PN", b"LT", b"ST", b"UT", b"UC"})
#: VRs whose values pydicom's reader never counts against ``element_values`` (one value, or bytes)
_UNCOUNTED_VRS = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"LT", b"ST", b"UT", b"UR"})
#: the DICOM grammar of one DS / IS value (PS3.5 table 6.2-1: spaces are the only padding). Python's
#: float()/int() also take tabs and other control characters, "_", "inf" and "nan"; pydicom strips such
#: characters only around the whole value and keeps invalid values its own way, so those go to pydicom
_DS_VALUE = re.compile(r" *[+-]?([0-9]+|[0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)? *")
_IS_VALUE = re.compile(r" *[+-]?[0-9]+ *")
#: printable ASCII and Latin-1, the characters a code string, a date or a character set name may hold
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: bytes after the pixel data read to check that nothing there changes the picture (else pydicom decides)
MAX_TAIL_BYTES = 64 * 1024
#: the Image Pixel elements pydicom's decoder requires, each one value (it refuses the file otherwise)
_REQUIRED_PIXEL = (
    "SamplesPerPixel",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
)


class Refused(Exception):
    """The file is not one this module decodes exactly; the message says which kind (for the tests)."""


class IntText(int):
    """An IS value that prints as written (stripped), as pydicom's ``IS`` does: ``"05"`` stays ``"05"``."""

    text: str

    def __new__(cls, value: int, text: str) -> IntText:
        """An int equal to ``value`` whose ``str()`` is ``text``."""
        obj = super().__new__(cls, value)
        obj.text = text
        return obj

    def __str__(self) -> str:
        return self.text


class FloatText(float):
    """A DS value that prints as written (stripped), as pydicom's ``DSfloat`` does."""

    text: str

    def __new__(cls, value: float, text: str) -> FloatText:
        """A float equal to ``value`` whose ``str()`` is ``text``."""
        obj = super().__new__(cls, value)
        obj.text = text
        return obj

    def __str__(self) -> str:
        return self.text


class _Meta:
    """The file meta group as far as the frame needs it (its Transfer Syntax UID)."""

    def __init__(self, transfer_syntax: str) -> None:
        self.TransferSyntaxUID = transfer_syntax

    def __contains__(self, key: object) -> bool:
        return key == "TransferSyntaxUID"

    def get(self, key: object, default: Any = None) -> Any:
        """``TransferSyntaxUID`` or ``default``."""
        return self.TransferSyntaxUID if key == "TransferSyntaxUID" else default


class NativeHeader:
    """The wanted top-level values of one file, read like a pydicom dataset by ``get``/``in``.

    Values are what pydicom would give: ints for US and IS (an IS prints as written), floats for DS,
    text for CS/DA (only the whole value's trailing padding stripped, as pydicom does) and LO/PN (each
    value's); a list when there are several; None for an empty value (the element is still ``in`` the
    header, as in pydicom). Other keywords and tag keys are absent.
    """

    def __init__(
        self, values: dict[str, Any], transfer_syntax: str, little: bool, explicit: bool, display: str
    ) -> None:
        self._values = values
        self.file_meta = _Meta(transfer_syntax)
        self.original_encoding = (not explicit, little)
        self.display = display
        #: where :func:`tui_dicom.core.imaging.pixels._file_of` finds the file's name for a limit message
        self.__dict__["_tui_source"] = display

    def __contains__(self, key: object) -> bool:
        if key == "PixelData":
            return True
        return key in self._values

    def __len__(self) -> int:
        return len(self._values) + 1

    def get(self, key: object, default: Any = None) -> Any:
        """The value of keyword ``key`` (None when empty), ``default`` when the element is absent."""
        if isinstance(key, str) and key in self._values:
            return self._values[key]
        return default

    @property
    def nbytes(self) -> int:
        """The memory this header holds (its values with their texts, its dicts), counted from above:
        the slice loader keeps it beside the frame and counts it against ``--cache-mb``."""
        return sys.getsizeof(self) + _held_bytes(self.__dict__)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)


def _held_bytes(value: Any) -> int:
    """``sys.getsizeof`` of ``value`` and of what it holds: dict keys and values, list and tuple items,
    the ``text`` of an :class:`IntText` / :class:`FloatText` (the value types of a :class:`NativeHeader`).
    Shared objects (keyword keys) are counted as if owned: an upper bound."""
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(_held_bytes(k) + _held_bytes(v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        size += sum(_held_bytes(v) for v in value)
    elif isinstance(value, (IntText, FloatText)):
        size += _held_bytes(value.__dict__)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        size += _held_bytes(vars(value))
    return size


@dataclass(frozen=True, eq=False)
class NativeSlice:
    """One frame read without pydicom, with the header values it came with.

    Attributes:
        frame: The decoded frame, as :func:`tui_dicom.core.imaging.pixels.decode_frame` builds it.
        header: The wanted header values (for :func:`tui_dicom.core.session.slice_loader.slice_info`).
        header_bytes: The file up to and including the Pixel Data element's header (for the inspector's
            rows, read by :func:`tui_dicom.core.inspector.quickdump.rows_from_buffer`).
    """

    frame: Frame
    header: NativeHeader
    header_bytes: bytes


def read_slice(ref: FileRef, frame: int = 0) -> NativeSlice | None:
    """Decode frame ``frame`` of ``ref`` without pydicom, or None when the file is not one it decodes, or
    cannot be opened or read (the pydicom path then says why, in its words)."""
    try:
        return read_slice_or_refuse(ref, frame)
    except (Refused, OSError, ValueError):
        return None


def read_slice_or_refuse(ref: FileRef, frame: int = 0) -> NativeSlice:
    """:func:`read_slice`, saying why a file is refused.

    Raises:
        Refused: the kind of file, or what in it, the fast path leaves to pydicom.
        OSError, ValueError: the file cannot be opened or read.
    """
    with open_ref(ref) as fh:
        size = open_size(fh)
        if size is None or size > limits.current().file_bytes:
            raise Refused("size unknown or over the limit")
        buf = fh.read(min(FIRST_READ, size))
        while True:
            complete = len(buf) >= size
            try:
                header, pixel_vr, pixel_length, pixel_pos, count = _parse(buf, complete, ref.display)
                break
            except NeedMore as more:
                if more.needed > MAX_HEADER_BYTES or complete:
                    raise Refused("header too long") from None
                extra = fh.read(max(more.needed, 4 * len(buf)) - len(buf))
                if not extra:
                    raise Refused("file ends inside the header") from None
                buf += extra
            except (Unsupported, struct.error) as exc:
                raise Refused(f"malformed or unusual encoding: {exc}") from None
        return _decode(fh, size, buf, header, pixel_vr, pixel_length, pixel_pos, frame, count)


def _parse(buf: bytes, complete: bool, display: str) -> tuple[NativeHeader, bytes, int, int, int]:
    """Walk the meta group and the top-level dataset up to Pixel Data.

    Returns:
        ``(header, pixel VR, pixel value length, pixel value offset, elements walked)``.

    Raises:
        Refused, NeedMore, Unsupported: see :func:`read_slice_or_refuse`.
    """
    if len(buf) < 132 or buf[128:132] != b"DICM":
        raise Refused("no Part 10 meta group")
    pos, meta = read_meta(buf, complete)
    if any(vr not in KNOWN_VRS for vr, _value in meta.values()):
        raise Refused("unknown VR in the file meta group")  # pydicom refuses the file
    ts_raw = meta.get(0x00020010)
    ts = ascii_value(ts_raw[1]) if ts_raw is not None else ""
    if ts not in NATIVE_SYNTAXES:
        raise Refused(f"transfer syntax {ts or 'missing'}")
    little, explicit = syntax_encoding(ts)
    need(buf, pos + 8, complete)
    vr0 = buf[pos + 4 : pos + 6]
    if (65 <= vr0[0] <= 90 and 65 <= vr0[1] <= 90) != explicit:
        raise Refused("transfer syntax does not match the encoding")  # pydicom trusts the bytes
    if U16[little](buf, pos)[0] < 0x0008:
        raise Refused("dataset starts below group 0008")
    raw: dict[int, tuple[bytes, bytes]] = {}
    max_elements = limits.current().dataset_elements
    max_bytes = limits.current().element_bytes
    threshold = _counted_threshold()
    previous = -1
    count = 0
    while True:
        if complete and len(buf) - pos < 8:
            raise Refused("no pixel data")
        tag, vr, length, vpos = element_header(buf, pos, little, explicit, complete, SHORT_VRS)
        if tag <= previous:
            raise Refused("elements out of order or repeated")
        previous = tag
        count += 1
        if count > max_elements:
            raise Refused("more elements than the limit")
        if tag == PIXEL_DATA:
            if length == UNDEFINED:
                raise Refused("encapsulated pixel data in a native syntax")
            if explicit and vr not in (b"OB", b"OW"):
                raise Refused(f"VR {vr.decode('latin_1')} for PixelData")  # pydicom reads other numbers
            return _header(raw, ts, little, explicit, display), vr, length, vpos, count
        if tag > PIXEL_DATA or tag >> 16 in (0x0002, 0xFFFE):
            raise Refused("no pixel data, or an element where none may be")
        if tag in REFUSED:
            raise Refused(REFUSED[tag])
        group = tag >> 16
        if tag in _PALETTE_TAGS:
            raise Refused("palette colour tables")
        if 0x6000 <= group <= 0x601E and not group & 1:
            raise Refused("overlays")
        if length == UNDEFINED:
            pos = _skip_sequence(buf, vpos, little, explicit, complete, vr, threshold)
            continue
        if length > max_bytes and vr != b"SQ":
            raise Refused("an element over the element_bytes limit")
        _check_counted(vr, length, explicit, threshold)
        end = vpos + length
        if tag in WANTED:
            want_vr = WANTED[tag][1]
            if explicit and vr != want_vr:
                raise Refused(f"VR {vr.decode('latin_1')} for {WANTED[tag][0]}")
            need(buf, end, complete)
            raw[tag] = (want_vr, buf[vpos:end])
        pos = end


def _counted_threshold() -> int:
    """The value length from which an element may hold more than the limits allow.

    pydicom's reader (:func:`tui_dicom.core.dicom.reading.read_dataset`) refuses an element with more
    than ``element_values`` values (a text value has one more than it has backslashes, a binary one
    needs 2 bytes or more per value) and, inside a sequence, an item with more than
    ``dataset_elements`` elements (8 bytes or more each) or a value over ``element_bytes``. None of
    these fits in fewer bytes than this, so shorter elements and sequences are within every limit and
    longer ones are left to pydicom, which applies them and words the refusal.
    """
    budget = limits.current()
    return min(budget.element_values, 8 * (budget.dataset_elements + 1), budget.element_bytes + 1)


def _check_counted(vr: bytes, length: int, explicit: bool, threshold: int) -> None:
    """Refuse a value long enough to break a limit that pydicom's reader counts (its VR counted)."""
    if length >= threshold and not (explicit and vr in _UNCOUNTED_VRS):
        raise Refused("an element long enough to reach the element_values or dataset_elements limit")


def _skip_sequence(
    buf: bytes, vpos: int, little: bool, explicit: bool, complete: bool, vr: bytes, threshold: int
) -> int:
    """The end of the undefined-length value at ``vpos``, walking at most ``threshold`` bytes of it.

    A longer one could hold an item over ``dataset_elements`` or a value over ``element_values``
    (checked inside sequences by pydicom's reader): it is refused without walking the rest of it.
    """
    cap = vpos + threshold
    if cap >= len(buf):
        end = skip_sequence(buf, vpos, little, explicit, complete, 0, vr)
    else:
        try:
            end = skip_sequence(memoryview(buf)[:cap], vpos, little, explicit, False, 0, vr)  # type: ignore[arg-type]
        except NeedMore:
            end = cap
    if end - vpos >= threshold:
        raise Refused("a sequence long enough to reach the element_values or dataset_elements limit")
    return end


def _header(
    raw: dict[int, tuple[bytes, bytes]], ts: str, little: bool, explicit: bool, display: str
) -> NativeHeader:
    """Convert the raw wanted values as pydicom converts them (or refuse)."""
    charset_raw = raw.get(0x00080005)
    charset = ascii_value(charset_raw[1]) if charset_raw is not None else ""
    if _CONTROL.search(charset) or charset != charset.strip(" "):
        raise Refused("SpecificCharacterSet with control characters or leading spaces")
    codec = _SIMPLE_CHARSETS.get(charset) or SINGLE_CODEC_CHARSETS.get(charset)
    values: dict[str, Any] = {}
    for tag, (vr, data) in raw.items():
        keyword = WANTED[tag][0]
        values[keyword] = _value(keyword, vr, data, little, codec)
    return NativeHeader(values, ts, little, explicit, display)


def _value(keyword: str, vr: bytes, data: bytes, little: bool, codec: str | None) -> Any:
    """One value as pydicom gives it (see :class:`NativeHeader`)."""
    if vr == b"US":
        if len(data) % 2:
            raise Refused(f"odd length of {keyword}")
        count = len(data) // 2
        if count == 0:
            return None
        if count > limits.current().element_values:
            raise Refused(f"more values of {keyword} than the element_values limit")
        numbers = struct.unpack(("<" if little else ">") + "H" * count, data)
        return numbers[0] if count == 1 else list(numbers)
    if vr in _CHARSET_VRS and not data.isascii():
        if codec is None:
            raise Refused(f"{keyword} needs a character set decoded by pydicom")
        text = data.decode(codec, "replace")
    else:
        if not data.isascii():
            raise Refused(f"non-ASCII {keyword}")
        text = data.decode("ascii")
    if "\x1b" in text:
        raise Refused(f"escape sequence in {keyword}")
    text = text.rstrip("\x00 ")
    if not text:
        return None
    if text.count("\\") >= limits.current().element_values:  # counted before splitting (pydicom's limit)
        raise Refused(f"more values of {keyword} than the element_values limit")
    if vr in (b"CS", b"DA", b"DS", b"IS") and _CONTROL.search(text):
        raise Refused(f"control character in {keyword}")  # pydicom keeps it, Python's strip() drops it
    parts = text.split("\\")
    if vr == b"DS":
        floats = [_ds(keyword, p) for p in parts]
        return floats[0] if len(floats) == 1 else floats
    if vr == b"IS":
        ints = [_is(keyword, p) for p in parts]
        return ints[0] if len(ints) == 1 else ints
    if vr == b"PN":
        if len(parts) > 1:
            raise Refused(f"several values of {keyword}")
        return text.rstrip("=")
    if vr in _CHARSET_VRS:  # pydicom strips each text value's end; a CS/DA value list only as a whole
        parts = [p.rstrip("\x00 ") for p in parts]
    return parts[0] if len(parts) == 1 else parts


def _ds(keyword: str, text: str) -> FloatText:
    """One DS value, refused unless it matches the DICOM grammar (then float() reads it as pydicom does)."""
    if not _DS_VALUE.fullmatch(text):
        raise Refused(f"{keyword} is not a number")
    t = text.strip(" ")
    return FloatText(float(t), t)


def _is(keyword: str, text: str) -> IntText:
    """One IS value, refused unless it matches the DICOM grammar (pydicom reads "1.0" its own way)."""
    if not _IS_VALUE.fullmatch(text):
        raise Refused(f"{keyword} is not an integer")
    t = text.strip(" ")
    return IntText(int(t), t)


def _check_image_pixel(header: NativeHeader) -> None:
    """Refuse what pydicom's decoder refuses and :func:`pixels.pixel_info` would fill in or normalise.

    ``pixel_info`` defaults a missing Samples per Pixel, Bits Stored or Photometric Interpretation and
    upper-cases the last; pydicom's decoder requires each Image Pixel value, once, within its range, and
    Planar Configuration 0 or 1 for colour. Such files go to the pydicom path, which reports them.
    """
    values: dict[str, int] = {}
    for keyword in _REQUIRED_PIXEL:
        value = header.get(keyword)
        if not isinstance(value, int):
            raise Refused(f"image pixel module: {keyword} missing, empty or multi-valued")
        values[keyword] = value
    samples = values["SamplesPerPixel"]
    photometric = header.get("PhotometricInterpretation")
    if not isinstance(photometric, str):
        raise Refused("image pixel module: PhotometricInterpretation missing, empty or multi-valued")
    if photometric not in _PHOTOMETRICS.get(samples, ()):
        raise Refused(f"photometric interpretation {photometric}")
    if samples == 3 and header.get("PlanarConfiguration") not in (0, 1):
        raise Refused("image pixel module: PlanarConfiguration missing or not 0 or 1")
    if not 1 <= values["BitsStored"] <= values["BitsAllocated"]:
        raise Refused("image pixel module: BitsStored out of range")
    if values["PixelRepresentation"] not in (0, 1):
        raise Refused("image pixel module: PixelRepresentation not 0 or 1")
    if isinstance(header.get("NumberOfFrames"), list):
        raise Refused("image pixel module: NumberOfFrames multi-valued")


def _check_tail(
    fh: BinaryIO, size: int, buf: bytes, header: NativeHeader, pixel_end: int, count: int
) -> None:
    """Refuse a file whose bytes after the pixel data could change what pydicom makes of it.

    pydicom reads the whole dataset: a second Pixel Data, a Rows or a Rescale Slope after the pixels, or
    bytes that do not parse, change the picture or make the file unreadable there. Accepted after the
    pixel data: nothing, NUL padding, or (at most :data:`MAX_TAIL_BYTES`) whole elements in ascending
    order past (7FE0,0010), as trailing padding (FFFC,FFFC) and digital signatures (FFFA,FFFA) are.
    """
    if pixel_end == size:
        return
    if pixel_end > size:
        raise Refused("pixel data runs past the end of the file")
    if size - pixel_end > MAX_TAIL_BYTES:
        raise Refused("more than 64 KB after the pixel data")
    if size <= len(buf):
        tail = bytes(buf[pixel_end:size])
    else:
        fh.seek(pixel_end)
        tail = fh.read(size - pixel_end)
        if len(tail) != size - pixel_end:
            raise Refused("file ends before its size")
    if tail.count(0) == len(tail):
        return
    little = header.original_encoding[1]
    explicit = not header.original_encoding[0]
    threshold = _counted_threshold()
    max_elements = limits.current().dataset_elements
    previous = PIXEL_DATA
    pos = 0
    try:
        while len(tail) - pos >= 8:
            tag, vr, length, vpos = element_header(tail, pos, little, explicit, True, SHORT_VRS)
            if tag <= previous or tag >> 16 == 0xFFFE:
                raise Refused("an element after the pixel data out of order or where none may be")
            previous = tag
            count += 1
            if count > max_elements:
                raise Refused("more elements than the limit")
            if length == UNDEFINED:
                pos = _skip_sequence(tail, vpos, little, explicit, True, vr, threshold)
                continue
            _check_counted(vr, length, explicit, threshold)
            pos = vpos + length
            if pos > len(tail):
                raise Refused("an element after the pixel data runs past the end of the file")
    except (Unsupported, struct.error) as exc:
        raise Refused(f"malformed data after the pixel data: {exc}") from None
    if tail.count(0, pos) != len(tail) - pos:
        raise Refused("malformed data after the pixel data")


def _decode(
    fh: BinaryIO,
    size: int,
    buf: bytes,
    header: NativeHeader,
    pixel_vr: bytes,
    pixel_length: int,
    pixel_pos: int,
    index: int,
    count: int,
) -> NativeSlice:
    """Read frame ``index`` from the Pixel Data value at ``pixel_pos`` and build its Frame."""
    from tui_dicom.core.imaging import pixels

    _check_image_pixel(header)
    try:
        info = pixels.pixel_info(header)
    except DicomViewerError as exc:
        raise Refused(f"image pixel module: {exc}") from None
    little = header.original_encoding[1]
    if info.photometric not in _PHOTOMETRICS.get(info.samples, ()):
        raise Refused(f"photometric interpretation {info.photometric}")
    if info.bits_allocated not in (8, 16, 32):
        raise Refused(f"Bits Allocated {info.bits_allocated}")
    if not little and (info.bits_allocated != 16 or pixel_vr != b"OW"):
        raise Refused("big endian pixel data other than 16-bit OW")
    if not 0 <= index < info.frames:
        raise Refused("no such frame")
    if pixel_length < info.native_bytes or pixel_pos + info.native_bytes > size:
        raise Refused("pixel data shorter than the header says")
    _check_tail(fh, size, buf, header, pixel_pos + pixel_length, count)
    frame_bytes = info.frame_values * info.bits_allocated // 8
    start = pixel_pos + index * frame_bytes
    # the frame's one buffer, in pages of its own (it may stay cached long: see cache.own_pages); what the
    # first read holds is copied, the rest read into place (no second frame-sized block per slice)
    data = own_pages(frame_bytes)
    with memoryview(data) as view:
        held = max(0, min(len(buf) - start, frame_bytes))
        view[:held] = memoryview(buf)[start : start + held]
        fh.seek(start + held)
        while held < frame_bytes:
            got = fh.readinto(view[held:])  # type: ignore[attr-defined]
            if not got:
                raise Refused("file ends inside the frame")
            held += got
    kind = "i" if info.signed else "u"
    dtype = np.dtype(f"{'<' if little else '>'}{kind}{info.bits_allocated // 8}")
    arr = np.frombuffer(data, dtype=dtype)  # big endian stays big endian, as pydicom returns it
    if info.samples == 3:
        if info.planar:
            arr = np.ascontiguousarray(arr.reshape(3, info.rows, info.columns).transpose(1, 2, 0))
        else:
            arr = arr.reshape(info.rows, info.columns, 3)
    else:
        arr = arr.reshape(info.rows, info.columns)
    arr = pixels._mask_stored(arr, info, True)
    built = pixels._build_frame(header, info, index, arr)
    return NativeSlice(built, header, bytes(buf[:pixel_pos]))
