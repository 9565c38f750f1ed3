"""Read a DICOMDIR (on disk or inside a ZIP) into index entries, without opening any image file.

pydicom's ``FileSet`` needs ~1.1 s for a 2,000-image DICOMDIR and gives up on the whole CD when one
record is bad. This module walks the Directory Record Sequence itself with the program's element reader,
:mod:`tui_dicom.core.dicom.elements` (explicit/implicit VR, little/big endian), follows the record offsets
(``OffsetOfTheNextDirectoryRecord`` / ``OffsetOfReferencedLowerLevelDirectoryEntity``), and recovers
records the offsets do not reach by their order in the file.

The file is never read whole: records are read along their offsets through a bounded window (1 MB
when the offsets run forward through the file, as every burner writes them, 16 KB for a jump), so the
first patient, study and series are found after reading a few kilobytes and memory stays proportional
to what is kept (the entries), not to the file. A second, file-order pass then skips every record the
offsets reached (their ends are remembered) and visits only the ones they missed, so the walk is
linear. The number of records read is bounded by the ``dicomdir_records`` limit (the records before
it are kept and the rest reported in one line), and ``cancel`` stops the walk between records.
Real CDs are messy, so it also:

- resolves File IDs case-insensitively, ignoring ISO 9660 ``;1`` version suffixes and trailing dots;
- follows records whose File ID names another directory file (Philips ``DIRFILE``); File IDs inside
  it stay relative to the file-set root;
- refuses File IDs that leave the DICOMDIR's folder (``..``, absolute paths, symlinks pointing out)
  or name anything but a regular file or folder (a FIFO, a device, a socket, or a symlink to one),
  and never opens them; records pointing at a missing file or at the DICOMDIR itself are errors;
- treats PRIVATE/unknown record types as containers, and works without a PATIENT level.

Text is decoded with each record's SpecificCharacterSet.
"""

from __future__ import annotations

import os
import posixpath
import re
import struct
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from tui_dicom.core import limits
from tui_dicom.core.dicom.elements import (
    DEFLATED,
    EXPLICIT,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT,
    IMPLICIT_LE,
    ITEM_END,
    KNOWN_VRS,
    LONG_VRS,
    U16,
    U32,
    UNDEFINED,
    NeedMore,
    Unsupported,
    ascii_value,
    element_header,
    skip_sequence,
)
from tui_dicom.core.dicom.elements import need as need_bytes
from tui_dicom.core.dicom.source import FileRef, describe_mode, open_regular
from tui_dicom.core.errors import RefusedPath
from tui_dicom.core.hierarchy import header as hdr
from tui_dicom.core.hierarchy.header import HeaderInfo
from tui_dicom.core.hierarchy.model import IndexProblem

#: records naming a missing file listed one by one per DICOMDIR; the rest are counted in one line
MAX_MISSING_SHOWN = 1000
#: directory files nested deeper than this are not followed
MAX_NESTING = 8
#: a DICOMDIR the fast reader cannot parse is handed to pydicom (whole, in memory) up to this size
MAX_FALLBACK_BYTES = 16 * 1024**2
#: one directory record larger than this is not read (a record with an icon image is a few KB)
MAX_RECORD_BYTES = 16 * 1024**2
#: bytes read at once while the offsets run forward through the file ...
_WINDOW = 1024**2
#: ... and for a jump elsewhere
_RANDOM_READ = 16 * 1024
#: a compressed ZIP member cannot seek back without inflating from its start again: after this many
#: jumps back the offsets are no longer followed and the rest is read in file order
MAX_REWINDS = 32

_NEXT, _IN_USE, _LOWER, _TYPE = 0x00041400, 0x00041410, 0x00041420, 0x00041430
_FILE_ID, _REF_CLASS, _REF_INSTANCE, _REF_TS = 0x00041500, 0x00041510, 0x00041511, 0x00041512
_ROOT_FIRST, _RECORD_SEQ = 0x00041200, 0x00041220
_RECORD_TAGS = frozenset({_NEXT, _IN_USE, _LOWER, _TYPE, _FILE_ID, _REF_CLASS, _REF_INSTANCE, _REF_TS})
_KEEP = hdr.WANTED_TAGS | _RECORD_TAGS
_LEVELS = {"PATIENT": 0, "STUDY": 1, "SERIES": 2}
_PATIENT_FIELDS = ("patient_id", "patient_name", "birth_date", "sex")
_STUDY_FIELDS = (
    "study_instance_uid",
    "study_date",
    "study_time",
    "study_description",
    "accession_number",
    "study_id",
)
_SERIES_FIELDS = ("series_instance_uid", "series_number", "modality", "series_description", "body_part")
_LEVEL_FIELDS = (_PATIENT_FIELDS, _STUDY_FIELDS, _SERIES_FIELDS)
_UPPER_FIELDS = frozenset(_PATIENT_FIELDS + _STUDY_FIELDS + _SERIES_FIELDS)
_DIRECTORY_NAMES = {"DICOMDIR", "DIRFILE"}
_VERSION = re.compile(r";\d*$")


class NotADicomdir(Exception):
    """The file is not a DICOMDIR (no Directory Record Sequence)."""


class _Stop(Exception):
    """Unwinds the walk (nested directory files included): cancelled, or the record limit reached."""


class _OutOfOrder(Exception):
    """A compressed ZIP member would have to be inflated from its start again too often."""


@dataclass(slots=True)
class Record:
    """One directory record: its offset in the file, where it ends, links and raw wanted values."""

    offset: int
    raw: dict[int, tuple[bytes, bytes]]
    next: int = 0
    lower: int = 0
    in_use: bool = True
    kind: str = ""
    end: int = 0


@dataclass
class DicomdirResult:
    """What a DICOMDIR yielded: one ``(ref, values)`` per referenced instance, and the problems."""

    entries: list[tuple[FileRef, HeaderInfo]] = field(default_factory=list)
    errors: list[IndexProblem] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- parse


def _u(raw: bytes, little: bool) -> int:
    if len(raw) >= 4:
        return int(U32[little](raw)[0])
    if len(raw) >= 2:
        return int(U16[little](raw)[0])
    return 0


def _parse_item(
    buf: bytes, pos: int, end: int | None, little: bool, explicit: bool
) -> tuple[dict[int, tuple[bytes, bytes]], int]:
    """Collect the wanted elements of one record item; ``end`` None means undefined length.

    The hot loop of a big DICOMDIR (a million records are ten million elements): module lookups are
    bound to locals once per item, and the element headers are decoded here with the element reader's
    unpackers and VR sets rather than by a call per element (see :mod:`tui_dicom.core.dicom.elements`).

    Returns:
        ``(raw values, offset after the item)``.
    """
    raw: dict[int, tuple[bytes, bytes]] = {}
    n = len(buf)
    limit = n if end is None else min(end, n)
    head = EXPLICIT[little] if explicit else IMPLICIT[little]
    u32 = U32[little]
    long_vrs = LONG_VRS
    known = KNOWN_VRS
    keep = _KEEP
    item_end = ITEM_END
    undefined = UNDEFINED
    while pos + 8 <= limit:
        if explicit:
            group, elem, vr, length = head(buf, pos)
            if group == 0xFFFE:
                length = u32(buf, pos + 4)[0]
                vr = b""
                vpos = pos + 8
            elif vr in long_vrs:
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
        tag = group << 16 | elem
        if tag == item_end:
            return raw, vpos
        if length == undefined:
            pos = skip_sequence(buf, vpos, little, explicit, True, 0, vr)
            continue
        pos = vpos + length
        if pos > n:
            raise Unsupported("record runs past the end of the file")
        if tag in keep:
            raw[tag] = (vr, buf[vpos:pos])
    if end is None:
        raise Unsupported("record item has no end")
    return raw, end


def _make_record(offset: int, raw: dict[int, tuple[bytes, bytes]], end: int, little: bool) -> Record:
    link = raw.get(_NEXT)
    next_ = (U32[little](link[1])[0] if len(link[1]) == 4 else _u(link[1], little)) if link else 0
    link = raw.get(_LOWER)
    lower = (U32[little](link[1])[0] if len(link[1]) == 4 else _u(link[1], little)) if link else 0
    flag = raw.get(_IN_USE)
    kind = raw.get(_TYPE)
    return Record(
        offset,
        raw,
        next_,
        lower,
        _u(flag[1], little) != 0 if flag else True,
        kind[1].decode("latin_1").strip("\x00 ").upper() if kind else "",
        end,
    )


class _Records(Protocol):
    """Where the walker gets records: read along offsets, and in file order."""

    little: bool
    charset: str
    root_first: int | None

    def record_at(self, offset: int) -> Record | None:
        """The record starting at ``offset``; None when no record starts there."""

    def in_file_order(self, skip: dict[int, int]) -> Iterator[Record | int]:
        """Every record in file order; for an offset in ``skip`` only the offset (nothing is read)."""

    def allow_rewinds(self) -> None:
        """From now on jumps back are expected (the file-order pass starts again at the beginning)."""


class _StreamRecords:
    """Records of a directory file read through a bounded window, never the whole file.

    Args:
        fh: The open file (or ZIP member), seekable.
        size: Its size in bytes.
        cheap_seek: False for a compressed ZIP member, where every jump back inflates from its start
            (then :data:`MAX_REWINDS` applies).
    """

    def __init__(self, fh: IO[bytes], size: int, *, cheap_seek: bool) -> None:
        self._fh = fh
        self.size = size
        self._cheap = cheap_seek
        self._buf = b""
        self._start = 0
        self._eof = False
        self._pos = 0
        self._rewinds = 0
        self._rewinds_allowed = False
        self.little = True
        self.explicit = True
        self.charset = ""
        self.root_first: int | None = None
        self.seq_start = 0
        self.seq_end: int | None = None

    # -- bytes

    def _read(self, offset: int, size: int) -> bytes:
        if offset < self._pos and not self._cheap and not self._rewinds_allowed:
            self._rewinds += 1
            if self._rewinds > MAX_REWINDS:
                raise _OutOfOrder
        self._fh.seek(offset)
        data = self._fh.read(size)
        self._pos = offset + len(data)
        return data

    def _window(self, offset: int, need: int) -> tuple[bytes, int]:
        """Bytes starting at or before ``offset`` that hold ``need`` bytes from it (or reach the end)."""
        start, buf = self._start, self._buf
        if start <= offset and (
            offset + need <= start + len(buf) or (self._eof and offset < start + len(buf))
        ):
            return buf, start
        sequential = start <= offset <= start + len(buf) + _WINDOW
        size = max(need, _WINDOW if sequential else _RANDOM_READ)
        data = self._read(offset, size)
        self._buf, self._start, self._eof = data, offset, len(data) < size
        return data, offset

    def allow_rewinds(self) -> None:
        """See :meth:`_Records.allow_rewinds`."""
        self._rewinds_allowed = True

    # -- structure

    def read_header(self) -> None:
        """Parse the meta header and the elements before the record sequence; find the charset.

        Raises:
            NotADicomdir: no Directory Record Sequence.
            Unsupported: an encoding beyond the fast reader (the caller may use pydicom).
        """
        need = 64 * 1024
        while True:
            buf, _base = self._window(0, need)
            complete = self._eof
            try:
                pos, ts, _meta, little, explicit = hdr.parse_meta(buf, complete)
                if ts == DEFLATED:
                    raise Unsupported("deflated DICOMDIR")
                root_first: int | None = None
                while True:
                    if pos + 8 > len(buf):
                        if complete:
                            raise NotADicomdir("no Directory Record Sequence")
                        raise NeedMore(pos + 12)
                    tag, vr, length, vpos = element_header(buf, pos, little, explicit, complete)
                    if tag == _RECORD_SEQ:
                        self.seq_start = vpos
                        self.seq_end = None if length == UNDEFINED else vpos + length
                        break
                    if tag > _RECORD_SEQ:
                        raise NotADicomdir("no Directory Record Sequence")
                    if length == UNDEFINED:
                        pos = skip_sequence(buf, vpos, little, explicit, complete, 0, vr)
                        continue
                    if tag == _ROOT_FIRST:
                        need_bytes(buf, vpos + length, complete)
                        root_first = _u(buf[vpos : vpos + length], little)
                    pos = vpos + length
            except NeedMore:
                if need >= MAX_FALLBACK_BYTES:
                    raise Unsupported("the elements before the records are too large") from None
                need *= 4
                continue
            break
        self.little, self.explicit, self.root_first = little, explicit, root_first
        self.charset = self._find_charset()

    def _find_charset(self) -> str:
        """The DICOMDIR's own SpecificCharacterSet, which follows the record sequence.

        After a defined-length sequence it is read where the sequence ends; after an undefined-length
        one, from the file's last 4 KB (after the sequence delimiter), so the records need not be read
        first (not in a large compressed ZIP member, which would have to be inflated whole to get
        there). Records usually carry their own character set anyway.
        """
        if not self._cheap and self.size > MAX_FALLBACK_BYTES:
            return ""  # a large compressed member would be inflated whole to reach its end
        try:
            if self.seq_end is not None:
                buf, base = self._window(self.seq_end, 4096)
                pos = self.seq_end - base
            else:
                tail_at = max(self.seq_start, self.size - 4096)
                buf, base = self._window(tail_at, self.size - tail_at)
                delimiter = struct.pack("<HHI" if self.little else ">HHI", 0xFFFE, 0xE0DD, 0)
                found = buf.rfind(delimiter)
                if found < 0:
                    return ""
                pos = found + 8
            while pos + 8 <= len(buf):
                tag, _vr, length, vpos = element_header(buf, pos, self.little, self.explicit, True)
                if length == UNDEFINED or tag > 0x00080005:
                    return ""
                if tag == 0x00080005:
                    return ascii_value(buf[vpos : vpos + length])
                pos = vpos + length
        except (Unsupported, struct.error, IndexError, ValueError, OSError, _OutOfOrder):
            return ""
        return ""

    def record_at(self, offset: int) -> Record | None:
        """See :meth:`_Records.record_at`.

        Raises:
            Unsupported: the record cannot be parsed (or is larger than :data:`MAX_RECORD_BYTES`).
        """
        if offset < self.seq_start or offset + 8 > self.size:
            return None
        if self.seq_end is not None and offset >= self.seq_end:
            return None
        need = 1024
        little = self.little
        while True:
            buf, base = self._window(offset, need)
            pos = offset - base
            if pos + 8 > len(buf):
                return None
            tag_group, tag_elem, length = IMPLICIT[little](buf, pos)
            if tag_group != 0xFFFE or tag_elem != 0xE000:
                return None
            try:
                if length != UNDEFINED:
                    if length + 8 > MAX_RECORD_BYTES:
                        raise Unsupported(f"the record at offset {offset} is larger than 16 MB")
                    if pos + 8 + length > len(buf) and not self._eof:
                        need = length + 8
                        continue
                    raw, after = _parse_item(buf, pos + 8, pos + 8 + length, little, self.explicit)
                else:
                    raw, after = _parse_item(buf, pos + 8, None, little, self.explicit)
            except (Unsupported, struct.error, IndexError, ValueError):
                if self._eof or need >= MAX_RECORD_BYTES:
                    raise
                need = min(max(need * 4, len(buf) - pos + 1), MAX_RECORD_BYTES)
                continue
            return _make_record(offset, raw, base + after, little)

    def in_file_order(self, skip: dict[int, int]) -> Iterator[Record | int]:
        """See :meth:`_Records.in_file_order`."""
        pos = self.seq_start
        end = self.size if self.seq_end is None else min(self.seq_end, self.size)
        while pos + 8 <= end:
            if pos in skip:
                yield pos
                after = skip[pos]
                if after <= pos:
                    return
                pos = after
                continue
            buf, base = self._window(pos, 8)
            at = pos - base
            if at + 8 > len(buf):
                return
            group, elem, _length = IMPLICIT[self.little](buf, at)
            if group == 0xFFFE and elem == 0xE0DD:
                return
            rec = self.record_at(pos)
            if rec is None:
                raise Unsupported(f"unexpected tag ({group:04X},{elem:04X}) in the record sequence")
            yield rec
            if rec.end <= pos:
                return
            pos = rec.end


class _ListRecords:
    """Records already in memory (read by pydicom when the fast reader cannot)."""

    def __init__(self, records: list[Record], root_first: int | None, little: bool, charset: str) -> None:
        self.records = records
        self.by_offset = {rec.offset: rec for rec in records}
        self.root_first = root_first
        self.little = little
        self.charset = charset

    def record_at(self, offset: int) -> Record | None:
        """See :meth:`_Records.record_at`."""
        return self.by_offset.get(offset)

    def in_file_order(self, skip: dict[int, int]) -> Iterator[Record | int]:
        """See :meth:`_Records.in_file_order`."""
        for rec in self.records:
            yield rec.offset if rec.offset in skip else rec

    def allow_rewinds(self) -> None:
        """Nothing to do in memory."""


def _parse_with_pydicom(data: bytes) -> _ListRecords:
    """Fallback: read the records with pydicom when the fast parser cannot."""
    import io
    import warnings

    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    if "DirectoryRecordSequence" not in ds:
        raise NotADicomdir("no Directory Record Sequence")
    records: list[Record] = []
    little = True
    for item in ds.DirectoryRecordSequence:
        raw: dict[int, tuple[bytes, bytes]] = {}
        for tag in _KEEP - {0x00080005}:  # values are re-encoded as UTF-8 below
            if tag in item:
                value = item[tag].value
                if value is None:
                    continue
                if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
                    value = "\\".join(str(v) for v in value)
                vr = b"UT"
                if isinstance(value, int):
                    value, vr = str(value), b"IS"
                if not isinstance(value, bytes):
                    value = str(value).encode("utf-8")
                raw[tag] = (vr, value)
        rec = Record(offset=item.seq_item_tell or 0, raw=raw)
        rec.next = int(item.get("OffsetOfTheNextDirectoryRecord", 0) or 0)
        rec.lower = int(item.get("OffsetOfReferencedLowerLevelDirectoryEntity", 0) or 0)
        rec.in_use = int(item.get("RecordInUseFlag", 0xFFFF) or 0) != 0
        rec.kind = str(item.get("DirectoryRecordType", "")).strip().upper()
        records.append(rec)
    root = ds.get("OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity")
    # values were re-encoded as UTF-8 above, so decode them as such
    return _ListRecords(records, int(root) if root else None, little, "ISO_IR 192")


def _open_records(fh: IO[bytes], size: int, *, cheap_seek: bool) -> _Records:
    """Records of the directory file open in ``fh``: streamed by the fast reader, else read by pydicom.

    Raises:
        NotADicomdir: the file is not a DICOMDIR, or cannot be read by either reader.
    """
    stream = _StreamRecords(fh, size, cheap_seek=cheap_seek)
    try:
        stream.read_header()
        return stream
    except NotADicomdir:
        raise
    except (Unsupported, struct.error, IndexError, ValueError, _OutOfOrder) as exc:
        if size > MAX_FALLBACK_BYTES:
            raise NotADicomdir(f"cannot read the DICOMDIR: {exc}") from exc
    fh.seek(0)
    data = fh.read(MAX_FALLBACK_BYTES)
    try:
        return _parse_with_pydicom(data)
    except NotADicomdir:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on broken files
        raise NotADicomdir(f"cannot read the DICOMDIR: {exc}") from exc


# ---------------------------------------------------------------------------------------------- paths


def normalize_name(name: str) -> str:
    """The case- and version-insensitive form of a file name (``im000001;1`` -> ``IM000001``)."""
    name = _VERSION.sub("", name)
    if name.endswith(".") and len(name) > 1:
        name = name[:-1]
    return name.upper()


def shown_file_id(text: str, limit: int = 80) -> str:
    """A File ID as shown in a message: control characters escaped, cut to ``limit`` characters."""
    from tui_dicom.core.safe import safe_text

    text = safe_text(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_file_id(components: list[str]) -> None:
    """Refuse a File ID that could leave the DICOMDIR's folder.

    Raises:
        RefusedPath: with a user-facing reason.
    """
    if not components or not components[0]:
        raise RefusedPath(f"File ID '{shown_file_id(chr(92).join(components))}' is absolute; refused")
    for comp in components:
        if comp in ("", ".", "..") or "/" in comp or "\x00" in comp or (len(comp) >= 2 and comp[1] == ":"):
            raise RefusedPath(
                f"File ID '{shown_file_id(chr(92).join(components))}' points outside the DICOMDIR's folder; refused"
            )


class DiskResolver:
    """Resolve File IDs against a folder on disk, case-insensitively, never leaving it."""

    def __init__(self, root: str) -> None:
        """Args: root: the file-set root (the folder holding the DICOMDIR)."""
        self.root = os.path.abspath(root)
        self._root_real = os.path.realpath(self.root)
        self._listings: dict[str, dict[str, tuple[str, bool, bool, bool]] | None] = {}
        self._linked: set[str] = set()
        self._lock = threading.Lock()

    def _listing(self, folder: str) -> dict[str, tuple[str, bool, bool, bool]] | None:
        """``{name and normalized name: (name, is_link, is_dir, is_file)}`` of ``folder`` (cached).

        ``is_dir``/``is_file`` follow symbolic links, so a link to a FIFO or device is neither.
        """
        with self._lock:
            if folder in self._listings:
                return self._listings[folder]
            entries: dict[str, tuple[str, bool, bool, bool]] | None = {}
            try:
                with os.scandir(folder) as it:
                    for entry in it:
                        try:
                            is_dir = entry.is_dir()
                            is_file = not is_dir and entry.is_file()
                        except OSError:
                            is_dir = is_file = False
                        info = (entry.name, entry.is_symlink(), is_dir, is_file)
                        assert entries is not None
                        entries.setdefault(entry.name, info)
                        entries.setdefault("\0" + normalize_name(entry.name), info)
            except OSError:
                entries = None
            self._listings[folder] = entries
            return entries

    def resolve(self, components: list[str]) -> tuple[FileRef, bool]:
        """Find the file a File ID names.

        Returns:
            ``(ref, is_dir)``.

        Raises:
            RefusedPath: the File ID leaves the root.
            FileNotFoundError: no such file.
        """
        check_file_id(components)
        folder = self.root
        linked = False
        is_dir = True
        is_file = False
        for comp in components:
            listing = self._listing(folder) if is_dir else None
            if listing is None:
                raise FileNotFoundError("/".join(components))
            info = listing.get(comp) or listing.get("\0" + normalize_name(comp))
            if info is None:
                raise FileNotFoundError("/".join(components))
            name, is_link, is_dir, is_file = info
            linked = linked or is_link
            folder = folder + os.sep + name if folder != os.sep else os.sep + name
        if not is_dir and not is_file:
            try:
                kind = describe_mode(os.stat(folder).st_mode)
            except OSError:
                raise FileNotFoundError("/".join(components)) from None
            raise RefusedPath(
                f"File ID '{shown_file_id(chr(92).join(components))}' names {kind}, not a regular file; refused"
            )
        if linked:
            self._linked.add(folder)
            real = os.path.realpath(folder)
            if os.path.commonpath([real, self._root_real]) != self._root_real:
                raise RefusedPath(
                    f"File ID '{shown_file_id(chr(92).join(components))}' leads outside the DICOMDIR's folder through a symbolic link; refused"
                )
        return FileRef(folder), is_dir

    def open(self, ref: FileRef) -> tuple[IO[bytes], int, bool]:
        """Open a directory file: ``(file, size, cheap_seek)``; refuses anything but a regular file.

        Raises:
            OSError: cannot be opened (``NotRegularFile`` for a FIFO, device, socket).
        """
        fh = open_regular(ref.path)
        return fh, os.fstat(fh.fileno()).st_size, True

    def same(self, a: FileRef, b: FileRef) -> bool:
        """True if ``a`` and ``b`` are the same file.

        Both come from :meth:`resolve` (names as listed on disk) or are the DICOMDIR itself, so equal
        paths mean the same file; behind a symbolic link, real paths are compared.
        """
        if a.path == b.path:
            return True
        if a.path in self._linked or b.path in self._linked:
            return os.path.realpath(a.path) == os.path.realpath(b.path)
        return False


class ZipResolver:
    """Resolve File IDs against the members of a ZIP archive below ``base`` (a folder prefix)."""

    def __init__(self, zip_path: str, zf: zipfile.ZipFile, base: str) -> None:
        """Args: zip_path: the archive; zf: it, open; base: the member folder of the DICOMDIR ("" or "a/b/")."""
        self.zip_path = zip_path
        self.zf = zf
        self.base = base
        self._names: dict[str, str] = {}
        nbase = "/".join(normalize_name(p) for p in base.strip("/").split("/")) if base.strip("/") else ""
        for info in zf.infolist():
            name = info.filename
            if info.is_dir():
                continue
            parts = [p for p in name.split("/") if p]
            key = "/".join(normalize_name(p) for p in parts)
            if nbase:
                if not key.startswith(nbase + "/"):
                    continue
                key = key[len(nbase) + 1 :]
            self._names.setdefault(key, name)
        exact = {info.filename: info.filename for info in zf.infolist()}
        self._exact = exact

    def resolve(self, components: list[str]) -> tuple[FileRef, bool]:
        """As :meth:`DiskResolver.resolve`, for members."""
        check_file_id(components)
        exact = self.base + "/".join(components)
        if exact in self._exact:
            return FileRef(self.zip_path, exact), False
        key = "/".join(normalize_name(c) for c in components)
        if key in self._names:
            return FileRef(self.zip_path, self._names[key]), False
        raise FileNotFoundError("/".join(components))

    def open(self, ref: FileRef) -> tuple[IO[bytes], int, bool]:
        """Open a directory file member: ``(stream, size, cheap_seek)`` (read through a window)."""
        assert ref.member is not None
        info = self.zf.getinfo(ref.member)
        return self.zf.open(info), info.file_size, info.compress_type == zipfile.ZIP_STORED

    def same(self, a: FileRef, b: FileRef) -> bool:
        """True if ``a`` and ``b`` are the same member."""
        return a == b


# ---------------------------------------------------------------------------------------------- walk


def _record_values(rec: Record, little: bool, default_charset: str) -> dict[str, Any]:
    raw = {t: v for t, v in rec.raw.items() if t in hdr.WANTED_TAGS}
    charset = ascii_value(raw[0x00080005][1]) if 0x00080005 in raw else default_charset
    values = hdr.values_from_raw(raw, little, charset)
    if _REF_INSTANCE in rec.raw:
        values["sop_instance_uid"] = ascii_value(rec.raw[_REF_INSTANCE][1])
    if _REF_CLASS in rec.raw:
        values["sop_class_uid"] = ascii_value(rec.raw[_REF_CLASS][1])
    if _REF_TS in rec.raw:
        values["transfer_syntax_uid"] = ascii_value(rec.raw[_REF_TS][1])
    values.pop("specific_character_set", None)
    return values


def _file_id(rec: Record) -> list[str] | None:
    if _FILE_ID not in rec.raw:
        return None
    text = rec.raw[_FILE_ID][1].decode("latin_1").rstrip("\x00 ")
    if not text:
        return None
    return [c.strip() for c in text.split("\\")]


#: record types that cannot stand at the root: a root offset pointing at one is not trusted
_NOT_ROOT = frozenset({"STUDY", "SERIES", "IMAGE"})

Context = list[dict[str, Any]]


def _apply(ctx: Context, level: int, level_values: dict[str, Any]) -> Context:
    """``ctx`` with ``level`` replaced by ``level_values`` and deeper levels cleared."""
    new = list(ctx[:level])
    new.append(level_values)
    while len(new) < 3:
        new.append({})
    return new


def frames_bound(frames: int, size: int, rows: int | None, columns: int | None, transfer_syntax: str) -> int:
    """The most frames a file of ``size`` bytes can hold (at least 1).

    Native pixel data needs at least one bit per pixel; every encapsulated (or deflated) frame needs at
    least an 8-byte item header. A header claiming 2³¹−1 frames in a small file is cut to this.
    """
    native = transfer_syntax in ("", IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE)
    most = size * 8 // (rows * columns) if native and rows and columns else size // 8
    return max(1, min(frames, most))


class _Walker:
    """Turns records into entries along their offsets, following nested directory files."""

    def __init__(
        self,
        resolver: DiskResolver | ZipResolver,
        dicomdir: FileRef,
        result: DicomdirResult,
        cancel: threading.Event | None,
        on_entry: Callable[[FileRef, HeaderInfo], None] | None,
    ) -> None:
        self.resolver = resolver
        self.dicomdir = dicomdir
        self.result = result
        self.cancel = cancel
        self.on_entry = on_entry
        self.where = dicomdir.path if dicomdir.member is None else f"{dicomdir.path}!{dicomdir.member}"
        self.visited_files: list[FileRef] = [dicomdir]
        budget = limits.current()
        self.max_records = budget.dicomdir_records
        self.max_files = budget.dicomdir_files
        self.max_frames = budget.instance_frames
        self.records = 0
        self.missing = 0
        self._merged: dict[str, Any] = {}
        self._merged_for: Context | None = None

    def error(self, reason: str) -> None:
        self.result.errors.append(IndexProblem(self.where, reason))

    def error_missing(self, shown: str) -> None:
        """A record names a missing file: the first :data:`MAX_MISSING_SHOWN` are listed, then counted.

        A CD copied without its images would otherwise print one line per image (a million lines).
        """
        self.missing += 1
        if self.missing <= MAX_MISSING_SHOWN:
            self.error(f"record points at a missing file {shown}")

    def summarize(self) -> None:
        """The one line for the missing files not listed one by one."""
        more = self.missing - MAX_MISSING_SHOWN
        if more > 0:
            self.error(f"{more:,} more records point at missing files (not listed)")

    def _count(self) -> None:
        """Count one record read; stop at the limit (what was read so far stays)."""
        if self.cancel is not None and self.cancel.is_set():
            raise _Stop
        self.records += 1
        if self.records > self.max_records:
            flag = limits.option_name("dicomdir_records")
            self.error(
                f"more than {self.max_records:,} directory records; the first {self.max_records:,} are "
                f"shown (raise with --resource-limit {flag}=N)"
            )
            raise _Stop

    def _record(self, records: _Records, offset: int) -> Record | None:
        try:
            return records.record_at(offset)
        except (Unsupported, struct.error, IndexError, ValueError) as exc:
            self.error(f"directory record at offset {offset} cannot be read ({exc}); not followed")
            return None

    def walk(self, records: _Records, context: Context, depth: int = 0) -> None:
        """Visit every record: along the offsets from the root, then those the offsets missed."""
        ends: dict[int, int] = {}
        changes: dict[int, tuple[int, dict[str, Any]]] = {}
        root = records.root_first
        first = self._record(records, root) if root else None
        roots = [root] if root and first is not None and first.kind not in _NOT_ROOT else None
        try:
            if roots is None:
                roots = self._unlinked(records)
            for offset in roots:
                self._offset_walk(records, offset, context, depth, ends, changes)
        except _OutOfOrder:
            self.error(
                "the records are far out of file order in a compressed ZIP member; "
                "the rest is read in file order"
            )
        records.allow_rewinds()
        ctx = list(context)
        try:
            for item in records.in_file_order(ends):
                if isinstance(item, int):
                    change = changes.get(item)
                    if change is not None:
                        ctx = _apply(ctx, *change)
                    continue
                self._count()
                if not item.in_use:
                    continue
                ctx = self.visit(records, item, ctx, depth)
        except (Unsupported, struct.error, IndexError, ValueError) as exc:
            self.error(f"the record sequence cannot be read to its end ({exc})")

    def _unlinked(self, records: _Records) -> list[int]:
        """Offsets of the records no other record links to, in file order: the roots to walk from
        when the root offset is missing or points at a lower-level record.

        One extra pass that keeps only offsets (at most the record limit of them), no values.
        """
        offsets: list[int] = []
        linked: set[int] = set()
        try:
            for item in records.in_file_order({}):
                if isinstance(item, int) or len(offsets) >= self.max_records:
                    break
                if self.cancel is not None and self.cancel.is_set():
                    raise _Stop
                offsets.append(item.offset)
                linked.add(item.next)
                linked.add(item.lower)
        except (Unsupported, struct.error, IndexError, ValueError):
            pass
        return [offset for offset in offsets if offset not in linked]

    def _offset_walk(
        self,
        records: _Records,
        root: int,
        context: Context,
        depth: int,
        ends: dict[int, int],
        changes: dict[int, tuple[int, dict[str, Any]]],
    ) -> None:
        """Depth first along the offsets: a record, its lower-level records, then its next sibling.

        A stack of ``(offset, context)`` replaces the chains of the whole sibling list, so memory is
        the depth of the tree, not its width. A record reached twice (a loop) is not visited again.
        """
        stack: list[tuple[int, Context]] = [(root, context)]
        while stack:
            offset, ctx = stack.pop()
            if offset in ends:
                continue
            rec = self._record(records, offset)
            if rec is None:
                continue
            self._count()
            ends[offset] = rec.end
            if rec.next:
                stack.append((rec.next, ctx))
            level = self._level(records, rec)
            if level is not None:
                changes[offset] = level
            if not rec.in_use:
                continue
            child_ctx = self.visit(records, rec, ctx, depth, level, level_known=True)
            if rec.lower:
                stack.append((rec.lower, child_ctx))

    def _level(self, records: _Records, rec: Record) -> tuple[int, dict[str, Any]] | None:
        """The hierarchy level ``rec`` stands for and its values there; None for image-level records."""
        level = _LEVELS.get(rec.kind)
        if level is None:
            # an unknown record type carrying patient values stands in for a missing PATIENT level
            if _FILE_ID in rec.raw or not ({0x00100020, 0x00100010} & rec.raw.keys()):
                return None
            level = 0
        values = _record_values(rec, records.little, records.charset)
        return level, {k: values[k] for k in _LEVEL_FIELDS[level] if k in values}

    def visit(
        self,
        records: _Records,
        rec: Record,
        ctx: Context,
        depth: int,
        level: tuple[int, dict[str, Any]] | None = None,
        level_known: bool = False,
    ) -> Context:
        """Handle one record; return the context its children inherit (``level``: see :meth:`_level`)."""
        if not level_known:
            level = self._level(records, rec)
        new_ctx = ctx if level is None else _apply(ctx, *level)
        comps = _file_id(rec)
        if comps is None:
            return new_ctx
        try:
            ref, is_dir = self.resolver.resolve(comps)
        except RefusedPath as exc:
            self.error(str(exc))
            return new_ctx
        except FileNotFoundError:
            self.error_missing(shown_file_id("/".join(comps)))
            return new_ctx
        if is_dir:
            self.error(f"record points at a folder, not a file: {shown_file_id('/'.join(comps))}")
            return new_ctx
        if self.resolver.same(ref, self.dicomdir):
            self.error(f"record points at the DICOMDIR itself ({shown_file_id('/'.join(comps))})")
            return new_ctx
        values = _record_values(rec, records.little, records.charset)
        is_directory_file = (
            rec.kind in _LEVELS
            or values.get("sop_class_uid") == hdr.MEDIA_STORAGE_DIRECTORY
            or normalize_name(comps[-1]) in _DIRECTORY_NAMES
        )
        if is_directory_file:
            self.follow(ref, shown_file_id("/".join(comps)), new_ctx, depth)
            return new_ctx
        if self._merged_for is not new_ctx:  # siblings share their context: merge it once
            merged: dict[str, Any] = {}
            for level_values in new_ctx:
                merged.update(level_values)
            self._merged, self._merged_for = merged, new_ctx
        info_values = dict(self._merged)
        for key, value in values.items():
            if key not in _UPPER_FIELDS or key not in info_values:
                info_values[key] = value
        frames = info_values.get("frames")
        if isinstance(frames, int) and frames > 1:
            info_values["frames"] = self._bound_frames(
                ref, shown_file_id("/".join(comps)), frames, info_values
            )
        info = HeaderInfo(**info_values, source="dicomdir")
        if self.on_entry is not None:
            self.on_entry(ref, info)
        else:
            self.result.entries.append((ref, info))
        return new_ctx

    def _bound_frames(self, ref: FileRef, shown: str, frames: int, values: dict[str, Any]) -> int:
        """NumberOfFrames of a record, cut to what its file can hold and to the frame limit."""
        try:
            if ref.member is None:
                size = os.stat(ref.path).st_size
            else:
                assert isinstance(self.resolver, ZipResolver)
                size = self.resolver.zf.getinfo(ref.member).file_size
        except (OSError, KeyError):
            size = frames * 8
        bounded = frames_bound(frames, size, values.get("rows"), values.get("columns"), "")
        if bounded < frames:
            self.error(f"record for {shown} claims {frames:,} frames; its file can hold at most {bounded:,}")
        if bounded > self.max_frames:
            flag = limits.option_name("instance_frames")
            self.error(
                f"record for {shown} claims {bounded:,} frames; the first {self.max_frames:,} are shown "
                f"(raise with --resource-limit {flag}=N)"
            )
            bounded = self.max_frames
        return bounded

    def follow(self, ref: FileRef, shown: str, ctx: Context, depth: int) -> None:
        """Read a nested directory file and walk its records below ``ctx``."""
        if depth >= MAX_NESTING:
            self.error(f"directory files nested too deeply at {shown}; not followed")
            return
        if any(self.resolver.same(ref, seen) for seen in self.visited_files):
            self.error(f"directory file {shown} is referenced in a loop; not followed again")
            return
        if len(self.visited_files) >= self.max_files:
            flag = limits.option_name("dicomdir_files")
            self.error(
                f"more than {self.max_files:,} directory files; {shown} is not followed "
                f"(raise with --resource-limit {flag}=N)"
            )
            return
        self.visited_files.append(ref)
        try:
            fh, size, cheap = self.resolver.open(ref)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            self.error(
                f"cannot read directory file {shown}: {exc.strerror if isinstance(exc, OSError) else exc}"
            )
            return
        with fh:
            try:
                records = _open_records(fh, size, cheap_seek=cheap)
            except NotADicomdir as exc:
                self.error(f"record points at {shown}, which is not a directory file ({exc})")
                return
            except (OSError, zipfile.BadZipFile) as exc:
                self.error(f"cannot read directory file {shown}: {exc}")
                return
            self.walk(records, ctx, depth + 1)


def _run(
    fh: IO[bytes],
    size: int,
    cheap_seek: bool,
    resolver: DiskResolver | ZipResolver,
    dicomdir: FileRef,
    cancel: threading.Event | None,
    on_entry: Callable[[FileRef, HeaderInfo], None] | None,
) -> DicomdirResult:
    records = _open_records(fh, size, cheap_seek=cheap_seek)
    result = DicomdirResult()
    walker = _Walker(resolver, dicomdir, result, cancel, on_entry)
    try:
        walker.walk(records, [{}, {}, {}])
    except _Stop:
        pass
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        walker.error(f"the DICOMDIR could not be read to its end ({exc})")
    walker.summarize()
    return result


def read_dicomdir(
    path: str,
    *,
    cancel: threading.Event | None = None,
    on_entry: Callable[[FileRef, HeaderInfo], None] | None = None,
) -> DicomdirResult:
    """Index the DICOMDIR at ``path`` (File IDs relative to its folder). Opens no image file.

    The file is read along the record offsets through a bounded window, never whole; entries are
    handed to ``on_entry`` as they are found, the first series first.

    Args:
        path: The DICOMDIR file.
        cancel: Stop early when set (checked before every record).
        on_entry: Called for each instance as it is found (progressive display); then the result's
            ``entries`` stay empty (memory holds each entry once, where the caller keeps it).

    Returns:
        The entries and errors (the record limit, when reached, is one of the errors).

    Raises:
        NotADicomdir: ``path`` is not a DICOMDIR (the caller may scan the folder instead).
        OSError: it cannot be read (``NotRegularFile`` for a FIFO or device).
    """
    resolver = DiskResolver(os.path.dirname(os.path.abspath(path)))
    ref = FileRef(os.path.join(resolver.root, os.path.basename(path)))
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        return _run(fh, size, True, resolver, ref, cancel, on_entry)


def read_dicomdir_in_zip(
    zip_path: str,
    zf: zipfile.ZipFile,
    member: str,
    *,
    cancel: threading.Event | None = None,
    on_entry: Callable[[FileRef, HeaderInfo], None] | None = None,
) -> DicomdirResult:
    """Index the DICOMDIR ``member`` of an open ZIP archive; File IDs resolve to members.

    Raises:
        NotADicomdir: the member is not a DICOMDIR.
        ValueError: the member cannot be read.
    """
    info = zf.getinfo(member)
    base = posixpath.dirname(member)
    resolver = ZipResolver(zip_path, zf, base + "/" if base else "")
    with zf.open(info) as fh:
        return _run(
            fh,
            info.file_size,
            info.compress_type == zipfile.ZIP_STORED,
            resolver,
            FileRef(zip_path, member),
            cancel,
            on_entry,
        )
