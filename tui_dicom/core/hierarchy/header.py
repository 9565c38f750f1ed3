"""A fast, header-only DICOM reader for indexing: the few tags the hierarchy needs, nothing else.

``pydicom.dcmread(stop_before_pixels=True)`` builds a full dataset and tops out near 850 files/s.
Indexing needs ~30 top-level values, so :func:`read_header` reads a prefix of the file (16 KB, more
when needed), walks the elements with ``struct`` (explicit or implicit VR, either byte order), jumps
over sequences (defined length: one jump; undefined length: item by item) and stops at Pixel Data —
or as soon as nothing it still needs can follow.

It falls back to :func:`tui_dicom.core.dicom.reading.read_dataset` (pydicom) for what it does not handle:
deflated datasets, malformed encodings, and enhanced multi-frame objects whose per-frame positions
live in the functional group sequences. Either way the result is a :class:`HeaderInfo` whose text
is decoded with SpecificCharacterSet the way pydicom decodes it.

Elements are decoded with the program's one element reader, :mod:`tui_dicom.core.dicom.elements`
(its unpackers and VR sets in the hot loop, its sequence skipping and file meta reading as they are).
"""

from __future__ import annotations

import contextlib
import functools
import math
import struct
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from tui_dicom.core import limits
from tui_dicom.core.dicom.charset import SINGLE_CODEC_CHARSETS
from tui_dicom.core.dicom.elements import (
    DEFLATED,
    EXPLICIT,
    IMPLICIT,
    KNOWN_VRS,
    LONG_VRS,
    U16,
    U32,
    UNDEFINED,
    ascii_value,
    need,
    read_meta,
    skip_sequence,
    syntax_encoding,
)
from tui_dicom.core.dicom.elements import NeedMore as NeedMore  # re-exported: the callers' exceptions
from tui_dicom.core.dicom.elements import Unsupported as Unsupported
from tui_dicom.core.dicom.reading import sniff
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.errors import HeaderError, NotDicomError
from tui_dicom.core.hierarchy.model import Instance, Vec3

if TYPE_CHECKING:
    from typing import IO

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

PIXEL_DATA = 0x7FE00010
PER_FRAME_FG = 0x52009230
SHARED_FG = 0x52009229
FIRST_READ = 16 * 1024
MAX_HEADER_BYTES = 64 * 1024**2

# The tags the hierarchy needs: tag -> (HeaderInfo field, kind)
_WANTED: dict[int, tuple[str, str]] = {
    0x00020002: ("media_storage_sop_class_uid", "ui"),
    0x00020003: ("media_storage_sop_instance_uid", "ui"),
    0x00020010: ("transfer_syntax_uid", "ui"),
    0x00080005: ("specific_character_set", "cs"),
    0x00080016: ("sop_class_uid", "ui"),
    0x00080018: ("sop_instance_uid", "ui"),
    0x00080020: ("study_date", "cs"),
    0x00080030: ("study_time", "cs"),
    0x00080050: ("accession_number", "text"),
    0x00080060: ("modality", "cs"),
    0x00081030: ("study_description", "text"),
    0x0008103E: ("series_description", "text"),
    0x00100010: ("patient_name", "pn"),
    0x00100020: ("patient_id", "text"),
    0x00100030: ("birth_date", "cs"),
    0x00100040: ("sex", "cs"),
    0x00180015: ("body_part", "cs"),
    0x00180050: ("slice_thickness", "ds"),
    0x0020000D: ("study_instance_uid", "ui"),
    0x0020000E: ("series_instance_uid", "ui"),
    0x00200010: ("study_id", "text"),
    0x00200011: ("series_number", "is"),
    0x00200013: ("instance_number", "is"),
    0x00200032: ("position", "ds3"),
    0x00200037: ("orientation", "ds6"),
    0x00201041: ("slice_location", "ds"),
    0x00280008: ("frames", "is"),
    0x00280010: ("rows", "us"),
    0x00280011: ("columns", "us"),
    0x00280030: ("pixel_spacing", "ds2"),
}
WANTED_TAGS = frozenset(_WANTED)
#: Python codecs for the character sets that need no ISO 2022 handling (others go through pydicom)
_SIMPLE_CHARSETS = {"": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}


@dataclass
class HeaderInfo:
    """The values of one DICOM file (or one DICOMDIR image record) that the hierarchy needs.

    Text is decoded and stripped of trailing padding; numbers are parsed (None when absent or
    invalid). Multi-valued text keeps DICOM's backslash separator.
    """

    patient_id: str = ""
    patient_name: str = ""
    birth_date: str = ""
    sex: str = ""
    study_instance_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    study_id: str = ""
    series_instance_uid: str = ""
    series_number: int | None = None
    modality: str = ""
    series_description: str = ""
    body_part: str = ""
    sop_instance_uid: str = ""
    sop_class_uid: str = ""
    transfer_syntax_uid: str = ""
    instance_number: int | None = None
    rows: int | None = None
    columns: int | None = None
    frames: int | None = None
    position: Vec3 | None = None
    orientation: tuple[float, float, float, float, float, float] | None = None
    frame_positions: list[Vec3 | None] | None = None
    slice_location: float | None = None
    slice_thickness: float | None = None
    pixel_spacing: tuple[float, float] | None = None
    specific_character_set: str = ""
    media_storage_sop_class_uid: str = ""
    media_storage_sop_instance_uid: str = ""
    #: which reader produced the values: "fast", "pydicom" or "dicomdir"
    source: str = field(default="fast", compare=False)

    @property
    def is_directory(self) -> bool:
        """True for a DICOMDIR-like directory file (Media Storage Directory Storage)."""
        return MEDIA_STORAGE_DIRECTORY in (self.media_storage_sop_class_uid, self.sop_class_uid)

    def to_instance(self, ref: FileRef, *, header_read: bool = True) -> Instance:
        """Make the model's :class:`Instance` for the file at ``ref``."""
        return Instance(
            ref=ref,
            sop_instance_uid=self.sop_instance_uid or self.media_storage_sop_instance_uid,
            sop_class_uid=self.sop_class_uid or self.media_storage_sop_class_uid,
            transfer_syntax_uid=self.transfer_syntax_uid,
            instance_number=self.instance_number,
            rows=self.rows,
            columns=self.columns,
            frames=self.frames if self.frames and self.frames > 0 else 1,
            position=self.position,
            orientation=self.orientation,
            frame_positions=self.frame_positions,
            slice_location=self.slice_location,
            slice_thickness=self.slice_thickness,
            pixel_spacing=self.pixel_spacing,
            header_read=header_read,
        )


_FIELD_NAMES = frozenset(f.name for f in fields(HeaderInfo))

# ---------------------------------------------------------------------------------------------- values


@functools.lru_cache(maxsize=64)
def _python_encodings(charset: str) -> tuple[str, ...]:
    if charset in _SIMPLE_CHARSETS:
        return (_SIMPLE_CHARSETS[charset],)
    if charset in SINGLE_CODEC_CHARSETS:
        return (SINGLE_CODEC_CHARSETS[charset],)
    import warnings

    from pydicom.charset import convert_encodings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return tuple(convert_encodings(charset.split("\\")))
        except (LookupError, ValueError):  # a corrupt charset value: decode as pydicom's default
            return ("iso8859",)


def python_encodings(charset: str) -> list[str]:
    """The Python encodings for a SpecificCharacterSet value (backslash-separated)."""
    return list(_python_encodings(charset))


def decode_text(raw: bytes, encodings: list[str], *, person_name: bool = False) -> str:
    """Decode a text value with the dataset's character set, as pydicom does.

    Args:
        raw: The value bytes.
        encodings: Python encodings from :func:`python_encodings`.
        person_name: Decode each ``=``-separated component group separately (PN).
    """
    raw = raw.rstrip(b"\x00 ")
    if not raw:
        return ""
    if len(encodings) == 1 and (
        b"\x1b" not in raw or encodings[0] in ("latin_1", "utf_8", "iso8859", "iso_ir_6")
    ):
        # one codec (and no escape sequence to switch it): pydicom decodes it in one call too
        text = raw.decode(encodings[0], "replace")
        if person_name:
            text = text.rstrip("=")
    elif (
        raw.isascii()
        and b"\x1b" not in raw
        and encodings[0] in ("latin_1", "iso8859", "iso_ir_6", "utf_8", "iso2022_jp", "shift_jis")
    ):
        # plain ASCII under a code-extension charset decodes the same way, without pydicom
        text = raw.decode("ascii")
        if person_name:
            text = text.rstrip("=")
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                text = _decode_extended(raw, encodings, person_name)
            except (LookupError, ValueError, UnicodeError):
                text = raw.decode("latin_1")
    return "\\".join(v.rstrip("\x00 ") for v in text.split("\\")) if "\\" in text else text


def _decode_extended(raw: bytes, encodings: list[str], person_name: bool) -> str:
    """Decode with pydicom's ISO 2022 / multi-charset logic."""
    from pydicom.charset import decode_bytes

    if person_name:
        # the PN delimiters '^' and '=' reset ISO 2022 escapes; decode groups separately
        parts = [decode_bytes(p, encodings, {0x5E, 0x3D, 0x5C}) for p in raw.split(b"=")]
        while parts and not parts[-1]:
            parts.pop()
        return "=".join(parts)
    return decode_bytes(raw, encodings, {0x5C, 0x09, 0x0A, 0x0C, 0x0D})


def _parse_int(text: str) -> int | None:
    text = text.split("\\")[0].strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return None
        return int(value) if value.is_integer() else None


def _parse_floats(text: str, count: int) -> tuple[float, ...] | None:
    parts = text.split("\\")
    if len(parts) != count:
        return None
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in values):
        return None
    return values


def _convert(kind: str, raw: bytes, vr: bytes, little: bool, encodings: list[str]) -> Any:
    if len(raw) > 2 * _MAX_VALUES and raw.count(b"\\") >= _MAX_VALUES:
        raise Unsupported("more values than the element_values limit")  # pydicom's path names the limit
    if kind == "ui" or kind == "cs":
        return ascii_value(raw)
    if kind == "text":
        return decode_text(raw, encodings)
    if kind == "pn":
        return decode_text(raw, encodings, person_name=True)
    if kind == "us":
        if vr in (b"US", b"", b"SS", b"UN", b"OW", b"OB") and len(raw) >= 2:
            return U16[little](raw)[0]
        if vr == b"IS":
            return _parse_int(ascii_value(raw))
        return None
    text = ascii_value(raw)
    if kind == "is":
        return _parse_int(text)
    if kind == "ds":
        values = _parse_floats(text.split("\\")[0], 1) if text else None
        return values[0] if values else None
    if kind in ("ds2", "ds3", "ds6"):
        return _parse_floats(text, int(kind[2])) if text else None
    raise AssertionError(kind)


# ---------------------------------------------------------------------------------------------- fast


def _dataset_encoding(buf: bytes, pos: int, ts: str, complete: bool) -> tuple[bool, bool]:
    """(little_endian, explicit_vr) for the dataset starting at ``pos``."""
    if ts == DEFLATED:
        raise Unsupported("deflated dataset")
    if ts:
        little, explicit = syntax_encoding(ts)
    else:  # no meta: guess from the first element
        need(buf, pos + 8, complete)
        group_le = U16[True](buf, pos)[0]
        little = group_le < 0x0100 or group_le == 0xFFFE
        explicit = True
    # Trust the bytes over the declared syntax (pydicom does the same): a VR must be two letters.
    if pos + 6 <= len(buf):
        vr = buf[pos + 4 : pos + 6]
        looks_explicit = 65 <= vr[0] <= 90 and 65 <= vr[1] <= 90
        if looks_explicit != explicit and pos + 8 <= len(buf):
            explicit = looks_explicit
    return little, explicit


def _walk_dataset(
    buf: bytes, pos: int, little: bool, explicit: bool, complete: bool, vrs: dict[int, tuple[bytes, bytes]]
) -> None:
    """The hot loop: collect wanted top-level elements of the dataset at ``pos`` into ``vrs``."""
    n = len(buf)
    head = EXPLICIT[little] if explicit else IMPLICIT[little]
    u32 = U32[little]
    wanted = WANTED_TAGS
    long_vrs = LONG_VRS
    known = KNOWN_VRS
    frames_seen = 0
    has_position = False
    while True:
        if pos + 12 > n:
            if not complete:
                raise NeedMore(pos + 12)
            if pos + 8 > n:
                break  # end of file (or trailing padding) before pixel data
        if explicit:
            group, elem, vr, length = head(buf, pos)
            if vr in long_vrs:
                if pos + 12 > n:
                    raise Unsupported("truncated header")
                length = u32(buf, pos + 8)[0]
                vpos = pos + 12
            elif vr in known:
                vpos = pos + 8
            else:
                raise Unsupported(f"unknown VR at offset {pos}")
        else:
            group, elem, length = head(buf, pos)
            vr = b""
            vpos = pos + 8
        if group > 0x0028:
            if group >= 0x7FE0 or group == 0xFFFE:
                break
            if frames_seen <= 1 and has_position:
                break  # nothing we need can follow (only enhanced functional groups)
            if group == 0x5200 and (elem == 0x9230 or elem == 0x9229):
                raise Unsupported("enhanced multi-frame: positions live in functional groups")
        if length == UNDEFINED:
            pos = skip_sequence(buf, vpos, little, explicit, complete, 0, vr)
            continue
        end = vpos + length
        tag = group << 16 | elem
        if tag in wanted:
            need(buf, end, complete)
            vrs[tag] = (vr, buf[vpos:end])
            if tag == 0x00280008:
                frames_seen = _parse_int(ascii_value(buf[vpos:end])) or 0
            elif tag == 0x00200032:
                has_position = True
        pos = end


def parse_meta(buf: bytes, complete: bool) -> tuple[int, str, dict[int, tuple[bytes, bytes]], bool, bool]:
    """Parse the preamble and file meta group, and find how the dataset is encoded.

    Returns:
        ``(dataset_offset, transfer_syntax_uid, meta_values, little_endian, explicit_vr)``;
        ``meta_values`` maps wanted group-2 tags to ``(vr, raw bytes)``.
    """
    pos, meta = read_meta(buf, complete)
    vrs = {tag: value for tag, value in meta.items() if tag in WANTED_TAGS}
    ts = ascii_value(vrs[0x00020010][1]) if 0x00020010 in vrs else ""
    little, explicit = _dataset_encoding(buf, pos, ts, complete)
    return pos, ts, vrs, little, explicit


def values_from_raw(
    vrs: dict[int, tuple[bytes, bytes]], little: bool, charset: str | None = None
) -> dict[str, Any]:
    """Convert raw wanted elements ``{tag: (vr, bytes)}`` to :class:`HeaderInfo` field values.

    Args:
        vrs: Raw values of tags in :data:`WANTED_TAGS`.
        little: Byte order of the dataset (group 2 is always little endian).
        charset: SpecificCharacterSet to decode with; None: take it from ``vrs``.
    """
    if charset is None:
        charset = ascii_value(vrs[0x00080005][1]) if 0x00080005 in vrs else ""
    encodings = python_encodings(charset)
    values: dict[str, Any] = {}
    for tag, (vr, raw) in vrs.items():
        name, kind = _WANTED[tag]
        value = _convert(kind, raw, vr, little if tag >> 16 != 2 else True, encodings)
        if value is not None:
            values[name] = value
    return values


def parse_header(buf: bytes, complete: bool) -> HeaderInfo:
    """Parse the header in ``buf`` (a file prefix, or the whole file when ``complete``).

    Raises:
        NeedMore: the prefix is too short; read at least ``needed`` bytes and call again.
        Unsupported: use pydicom instead (deflate, odd encodings, enhanced multi-frame).
        NotDicomError: not DICOM.
    """
    if not sniff(buf[:132] if len(buf) >= 132 else buf):
        raise NotDicomError("not a DICOM file (no DICM marker and no DICOM header)")
    pos, _ts, vrs, little, explicit = parse_meta(buf, complete)
    meta_class = vrs.get(0x00020002)
    if meta_class is not None and ascii_value(meta_class[1]) == MEDIA_STORAGE_DIRECTORY:
        # a DICOMDIR: the index reads it through the DICOMDIR reader, never as an image, so its
        # record sequence (megabytes, item by item) is not walked here
        return HeaderInfo(**values_from_raw(vrs, little))
    _walk_dataset(buf, pos, little, explicit, complete, vrs)
    return HeaderInfo(**values_from_raw(vrs, little))


# ---------------------------------------------------------------------------------------------- pydicom


def _from_dataset(ds: Any) -> HeaderInfo:
    """Build a :class:`HeaderInfo` from a pydicom dataset (the fallback path)."""
    values: dict[str, Any] = {"source": "pydicom"}
    meta = getattr(ds, "file_meta", None)
    for tag, (name, kind) in _WANTED.items():
        src = meta if tag >> 16 == 2 else ds
        if src is None:
            continue
        try:
            elem = src.get(tag)
            if elem is None or elem.value is None or elem.value == "":
                continue
            value = elem.value
        except Exception:  # noqa: BLE001 - a broken value is just absent
            continue
        values[name] = _value_from_pydicom(kind, value)
    values = {k: v for k, v in values.items() if v is not None}
    info = HeaderInfo(**values)
    try:
        _functional_groups(ds, info)
    except Exception:  # noqa: BLE001 - per-frame positions are optional; the file is still listed
        from tui_dicom.core.logging import LOGGER

        LOGGER.debug("cannot read functional groups", exc_info=True)
    return info


def _value_from_pydicom(kind: str, value: Any) -> Any:
    from pydicom.multival import MultiValue

    if kind in ("ui", "cs", "text", "pn"):
        if isinstance(value, (list, MultiValue)):
            return "\\".join(str(v) for v in value)
        if isinstance(value, bytes):
            return ascii_value(value)
        return str(value)
    if kind == "us":
        if isinstance(value, (list, MultiValue)):
            value = value[0] if value else None
        return int(value) if isinstance(value, int) else None
    if kind == "is":
        if isinstance(value, (list, MultiValue)):
            value = value[0] if value else None
        try:
            return int(value) if value is not None and value != "" else None
        except (TypeError, ValueError):
            return None
    seq = list(value) if isinstance(value, (list, MultiValue)) else [value]
    try:
        floats = tuple(float(v) for v in seq)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in floats):
        return None
    if kind == "ds":
        return floats[0] if floats else None
    count = int(kind[2])
    return floats if len(floats) == count else None


def _functional_groups(ds: Any, info: HeaderInfo) -> None:
    """Fill per-frame positions and orientation of an enhanced multi-frame object."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame and not shared:
        return
    shared_item = shared[0] if shared else None

    def lookup(item: Any, seq_name: str, attr: str) -> Any:
        for src in (item, shared_item):
            if src is None:
                continue
            seq = src.get(seq_name)
            if seq:
                value = seq[0].get(attr)
                if value is not None:
                    return value
        return None

    def vec(value: Any, count: int) -> tuple[float, ...] | None:
        try:
            floats = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            return None
        return floats if len(floats) == count and all(math.isfinite(v) for v in floats) else None

    items = list(per_frame) if per_frame else [None]
    positions: list[Vec3 | None] = []
    for item in items:
        pos = lookup(item, "PlanePositionSequence", "ImagePositionPatient")
        positions.append(vec(pos, 3) if pos is not None else None)  # type: ignore[arg-type]
    if info.orientation is None:
        ori = lookup(items[0], "PlaneOrientationSequence", "ImageOrientationPatient")
        if ori is not None:
            info.orientation = vec(ori, 6)  # type: ignore[assignment]
    if info.pixel_spacing is None:
        sp = lookup(items[0], "PixelMeasuresSequence", "PixelSpacing")
        if sp is not None:
            info.pixel_spacing = vec(sp, 2)  # type: ignore[assignment]
    if info.slice_thickness is None:
        th = lookup(items[0], "PixelMeasuresSequence", "SliceThickness")
        if th is not None:
            with contextlib.suppress(TypeError, ValueError):
                info.slice_thickness = float(th)
    if any(p is not None for p in positions):
        info.frame_positions = positions
        if info.position is None:
            info.position = positions[0]


# ---------------------------------------------------------------------------------------------- entry


#: values per element read by the fast reader (set from the budget when a header is read)
_MAX_VALUES = 250_000


def read_header_from(fh: IO[bytes], *, size: int | None = None) -> HeaderInfo:
    """Read the header from an open binary file (positioned at its start) with the fast reader.

    Raises:
        Unsupported: the fast reader cannot handle it (call pydicom).
        NotDicomError: not DICOM.
    """
    global _MAX_VALUES
    _MAX_VALUES = limits.current().element_values
    buf = fh.read(FIRST_READ)
    if not buf:
        raise NotDicomError("empty file")
    complete = len(buf) < FIRST_READ or (size is not None and len(buf) >= size)
    while True:
        try:
            return parse_header(buf, complete)
        except NeedMore as more:
            if more.needed > MAX_HEADER_BYTES:
                raise Unsupported("header larger than the fast reader's limit") from None
            want = max(more.needed + 64 * 1024, 2 * len(buf)) - len(buf)
            extra = fh.read(want)
            buf += extra
            complete = len(extra) < want
        except struct.error as exc:
            raise Unsupported(str(exc)) from exc


def read_header(ref: FileRef) -> HeaderInfo:
    """Read the indexing values of the DICOM file at ``ref`` (no pixel data).

    Uses the fast reader and falls back to pydicom for what it does not handle.

    Raises:
        NotDicomError: not a DICOM file.
        HeaderError: DICOM, but the header cannot be read (the message says why).
        OSError: the file cannot be opened.
    """
    from tui_dicom.core.dicom.source import open_ref

    try:
        with open_ref(ref) as fh:
            return read_header_from(fh)
    except Unsupported:
        pass
    except ValueError as exc:  # open_ref on a bad ZIP member
        raise HeaderError(str(exc)) from exc
    return header_from_pydicom(ref)


def header_from_pydicom(ref: FileRef) -> HeaderInfo:
    """Read ``ref`` with pydicom (via :func:`tui_dicom.core.dicom.reading.read_dataset`).

    Raises:
        NotDicomError, HeaderError, OSError: as :func:`read_dataset`.
    """
    from tui_dicom.core.dicom.reading import read_dataset

    ds = read_dataset(ref, stop_before_pixels=True)
    try:
        return _from_dataset(ds)
    except Exception as exc:  # noqa: BLE001 - never a traceback for a bad file
        raise HeaderError(f"cannot read header values: {exc}") from exc
