"""Read a DICOMDIR (on disk or inside a ZIP) into index entries, without opening any image file.

pydicom's ``FileSet`` needs ~1.1 s for a 2,000-image DICOMDIR and gives up on the whole CD when one
record is bad. This module walks the Directory Record Sequence itself with the ``struct`` walker of
:mod:`tui_dicom.core.hierarchy.header` (explicit/implicit VR, little/big endian), follows the record offsets
(``OffsetOfTheNextDirectoryRecord`` / ``OffsetOfReferencedLowerLevelDirectoryEntity``), and recovers
records the offsets do not reach by their order in the file. Real CDs are messy, so it also:

- resolves File IDs case-insensitively, ignoring ISO 9660 ``;1`` version suffixes and trailing dots;
- follows records whose File ID names another directory file (Philips ``DIRFILE``); File IDs inside
  it stay relative to the file-set root;
- refuses File IDs that leave the DICOMDIR's folder (``..``, absolute paths, symlinks pointing out)
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tui_dicom.core.dicom.source import FileRef, open_regular
from tui_dicom.core.errors import RefusedPath
from tui_dicom.core.hierarchy import header as hdr
from tui_dicom.core.hierarchy.header import HeaderInfo, Unsupported
from tui_dicom.core.hierarchy.model import IndexError_

#: directory files nested deeper than this are not followed
MAX_NESTING = 8
#: a DICOMDIR larger than this is not read (a 2,000-image DICOMDIR is ~1 MB)
MAX_DICOMDIR_BYTES = 512 * 1024**2

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


@dataclass
class Record:
    """One directory record: its offset in the file, links and raw wanted values."""

    offset: int
    raw: dict[int, tuple[bytes, bytes]]
    next: int = 0
    lower: int = 0
    in_use: bool = True
    kind: str = ""


@dataclass
class ParsedDicomdir:
    """The records of one directory file, in file order."""

    records: list[Record]
    root_first: int | None
    little: bool
    charset: str = ""


@dataclass
class DicomdirResult:
    """What a DICOMDIR yielded: one ``(ref, values)`` per referenced instance, and the problems."""

    entries: list[tuple[FileRef, HeaderInfo]] = field(default_factory=list)
    errors: list[IndexError_] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- parse


def _u(raw: bytes, little: bool) -> int:
    if len(raw) >= 4:
        return struct.unpack_from("<I" if little else ">I", raw)[0]
    if len(raw) >= 2:
        return struct.unpack_from("<H" if little else ">H", raw)[0]
    return 0


def _parse_item(
    buf: bytes, pos: int, end: int | None, little: bool, explicit: bool
) -> tuple[dict[int, tuple[bytes, bytes]], int]:
    """Collect the wanted elements of one record item; ``end`` None means undefined length.

    Returns:
        ``(raw values, offset after the item)``.
    """
    raw: dict[int, tuple[bytes, bytes]] = {}
    n = len(buf)
    limit = n if end is None else min(end, n)
    head = hdr._S_EXPLICIT[little] if explicit else hdr._S_IMPLICIT[little]
    u32 = hdr._S_U32[little]
    long_vrs = hdr.LONG_VRS
    keep = _KEEP
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
            elif vr in hdr._KNOWN_VRS:
                vpos = pos + 8
            else:
                raise Unsupported(f"unknown VR at offset {pos}")
        else:
            group, elem, length = head(buf, pos)
            vr = b""
            vpos = pos + 8
        tag = group << 16 | elem
        if tag == hdr.ITEM_END:
            return raw, vpos
        if length == hdr.UNDEFINED:
            if vr == b"UN":
                pos = hdr.skip_sequence(buf, vpos, True, False, True)
            else:
                pos = hdr.skip_sequence(buf, vpos, little, explicit, True)
            continue
        if vpos + length > n:
            raise Unsupported("record runs past the end of the file")
        if tag in keep:
            raw[tag] = (vr, buf[vpos : vpos + length])
        pos = vpos + length
    if end is None:
        raise Unsupported("record item has no end")
    return raw, end


def parse_dicomdir(buf: bytes) -> ParsedDicomdir:
    """Parse the records of a DICOMDIR held in ``buf``.

    Raises:
        NotADicomdir: there is no Directory Record Sequence.
        Unsupported: the encoding is beyond this parser (the caller may use pydicom).
    """
    try:
        pos, _ts, _meta, little, explicit = hdr.parse_meta(buf, True)
    except hdr.NeedMore:  # complete=True never asks for more; keep the type checker calm
        raise Unsupported("truncated") from None
    root_first: int | None = None
    charset = ""
    records: list[Record] = []
    found = False
    n = len(buf)
    while pos + 8 <= n:
        tag, vr, vpos, length = hdr.element_header(buf, pos, little, explicit, True)
        if tag == _ROOT_FIRST and length != hdr.UNDEFINED:
            root_first = _u(buf[vpos : vpos + length], little)
        elif tag == 0x00080005 and length != hdr.UNDEFINED:
            charset = hdr._ascii(buf[vpos : vpos + length])
        if tag == _RECORD_SEQ:
            found = True
            seq_end = None if length == hdr.UNDEFINED else vpos + length
            ipos = vpos
            while ipos + 8 <= (n if seq_end is None else min(seq_end, n)):
                itag, _ivr, ivpos, ilen = hdr.element_header(buf, ipos, little, False, True)
                if itag == hdr.SEQ_END:
                    ipos = ivpos
                    break
                if itag != hdr.ITEM:
                    raise Unsupported(f"unexpected tag {itag:08X} in the record sequence")
                item_end = None if ilen == hdr.UNDEFINED else ivpos + ilen
                raw, after = _parse_item(buf, ivpos, item_end, little, explicit)
                rec = Record(offset=ipos, raw=raw)
                if _NEXT in raw:
                    rec.next = _u(raw[_NEXT][1], little)
                if _LOWER in raw:
                    rec.lower = _u(raw[_LOWER][1], little)
                if _IN_USE in raw:
                    rec.in_use = _u(raw[_IN_USE][1], little) != 0
                if _TYPE in raw:
                    rec.kind = hdr._ascii(raw[_TYPE][1]).strip().upper()
                records.append(rec)
                ipos = after
            pos = ipos if seq_end is None else seq_end
            continue
        if length == hdr.UNDEFINED:
            pos = hdr.skip_sequence(
                buf, vpos, True if vr == b"UN" else little, explicit and vr != b"UN", True
            )
        else:
            pos = vpos + length
    if not found:
        raise NotADicomdir("no Directory Record Sequence")
    return ParsedDicomdir(records=records, root_first=root_first, little=little, charset=charset)


def _parse_with_pydicom(data: bytes) -> ParsedDicomdir:
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
    return ParsedDicomdir(
        records=records, root_first=int(root) if root else None, little=little, charset="ISO_IR 192"
    )


def load(data: bytes) -> ParsedDicomdir:
    """Parse DICOMDIR bytes with the fast parser, falling back to pydicom.

    Raises:
        NotADicomdir: the data is not a DICOMDIR.
        RefusedPath: never; listed for symmetry with resolvers.
    """
    try:
        return parse_dicomdir(data)
    except NotADicomdir:
        raise
    except (Unsupported, struct.error, IndexError, ValueError):
        pass
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
    shown = shown_file_id("\\".join(components))
    if not components or not components[0]:
        raise RefusedPath(f"File ID '{shown}' is absolute; refused")
    for comp in components:
        if comp in ("", ".", "..") or "/" in comp or "\x00" in comp or (len(comp) >= 2 and comp[1] == ":"):
            raise RefusedPath(f"File ID '{shown}' points outside the DICOMDIR's folder; refused")


class DiskResolver:
    """Resolve File IDs against a folder on disk, case-insensitively, never leaving it."""

    def __init__(self, root: str) -> None:
        """Args: root: the file-set root (the folder holding the DICOMDIR)."""
        self.root = os.path.abspath(root)
        self._root_real = os.path.realpath(self.root)
        self._listings: dict[str, dict[str, tuple[str, bool, bool]] | None] = {}
        self._linked: set[str] = set()
        self._lock = threading.Lock()

    def _listing(self, folder: str) -> dict[str, tuple[str, bool, bool]] | None:
        with self._lock:
            if folder in self._listings:
                return self._listings[folder]
            entries: dict[str, tuple[str, bool, bool]] | None = {}
            try:
                with os.scandir(folder) as it:
                    for entry in it:
                        try:
                            is_dir = entry.is_dir()
                        except OSError:
                            is_dir = False
                        info = (entry.name, entry.is_symlink(), is_dir)
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
        for comp in components:
            listing = self._listing(folder) if is_dir else None
            if listing is None:
                raise FileNotFoundError("/".join(components))
            info = listing.get(comp) or listing.get("\0" + normalize_name(comp))
            if info is None:
                raise FileNotFoundError("/".join(components))
            name, is_link, is_dir = info
            linked = linked or is_link
            folder = os.path.join(folder, name)
        if linked:
            self._linked.add(folder)
            real = os.path.realpath(folder)
            if os.path.commonpath([real, self._root_real]) != self._root_real:
                raise RefusedPath(
                    f"File ID '{shown_file_id(chr(92).join(components))}' leads outside the DICOMDIR's folder through a symbolic link; refused"
                )
        return FileRef(folder), is_dir

    def read(self, ref: FileRef) -> bytes:
        """Read a directory file (bounded)."""
        with open_regular(ref.path) as fh:
            return fh.read(MAX_DICOMDIR_BYTES)

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

    def read(self, ref: FileRef) -> bytes:
        """Read a directory file member (bounded)."""
        assert ref.member is not None
        info = self.zf.getinfo(ref.member)
        if info.file_size > MAX_DICOMDIR_BYTES:
            raise ValueError("directory file too large")
        return self.zf.read(info)

    def same(self, a: FileRef, b: FileRef) -> bool:
        """True if ``a`` and ``b`` are the same member."""
        return a == b


# ---------------------------------------------------------------------------------------------- walk


def _record_values(rec: Record, little: bool, default_charset: str) -> dict[str, Any]:
    raw = {t: v for t, v in rec.raw.items() if t in hdr.WANTED_TAGS}
    charset = hdr._ascii(raw[0x00080005][1]) if 0x00080005 in raw else default_charset
    values = hdr.values_from_raw(raw, little, charset)
    if _REF_INSTANCE in rec.raw:
        values["sop_instance_uid"] = hdr._ascii(rec.raw[_REF_INSTANCE][1])
    if _REF_CLASS in rec.raw:
        values["sop_class_uid"] = hdr._ascii(rec.raw[_REF_CLASS][1])
    if _REF_TS in rec.raw:
        values["transfer_syntax_uid"] = hdr._ascii(rec.raw[_REF_TS][1])
    values.pop("specific_character_set", None)
    return values


def _file_id(rec: Record) -> list[str] | None:
    if _FILE_ID not in rec.raw:
        return None
    text = rec.raw[_FILE_ID][1].decode("latin_1").rstrip("\x00 ")
    if not text:
        return None
    return [c.strip() for c in text.split("\\")]


class _Walker:
    """Turns parsed records into entries, following nested directory files."""

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

    def error(self, reason: str) -> None:
        self.result.errors.append(IndexError_(self.where, reason))

    def walk(self, parsed: ParsedDicomdir, context: list[dict[str, Any]], depth: int = 0) -> None:
        by_offset = {rec.offset: rec for rec in parsed.records}
        reached: set[int] = set()

        def chain(first: int) -> list[Record]:
            out = []
            offset = first
            while offset and offset in by_offset and offset not in reached:
                rec = by_offset[offset]
                reached.add(offset)
                out.append(rec)
                offset = rec.next
            return out

        # iterative depth-first walk: (record, context levels)
        stack: list[tuple[Record, list[dict[str, Any]]]] = []
        linked = {rec.lower for rec in parsed.records} | {rec.next for rec in parsed.records}
        if parsed.root_first in by_offset and parsed.root_first not in linked:
            roots = chain(parsed.root_first)
        else:
            # the root offset is missing or points at a lower-level record: the root records are
            # those no other record links to
            roots = []
            for rec in parsed.records:
                if rec.offset not in linked and rec.offset not in reached:
                    roots.extend(chain(rec.offset))
        for rec in reversed(roots):
            stack.append((rec, context))
        while stack:
            if self.cancel is not None and self.cancel.is_set():
                return
            rec, ctx = stack.pop()
            if not rec.in_use:
                continue
            child_ctx = self.visit(parsed, rec, ctx, depth)
            if rec.lower:
                for child in reversed(chain(rec.lower)):
                    stack.append((child, child_ctx))
        # records the offsets did not reach: attach them by their order in the file
        unreached = [rec for rec in parsed.records if rec.offset not in reached]
        if not unreached:
            return
        ctx = list(context)
        for rec in parsed.records:
            if rec.offset in reached:
                ctx = self.context_for(parsed, rec, ctx)
                continue
            if self.cancel is not None and self.cancel.is_set():
                return
            if not rec.in_use:
                continue
            ctx = self.visit(parsed, rec, ctx, depth)

    def context_for(
        self, parsed: ParsedDicomdir, rec: Record, ctx: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The context below ``rec`` (its values replace its level and clear deeper levels)."""
        level = _LEVELS.get(rec.kind)
        if level is None:
            # an unknown record type carrying patient values stands in for a missing PATIENT level
            if _FILE_ID in rec.raw or not ({0x00100020, 0x00100010} & rec.raw.keys()):
                return ctx
            level = 0
        values = _record_values(rec, parsed.little, parsed.charset)
        new = list(ctx[:level])
        new.append({k: values[k] for k in _LEVEL_FIELDS[level] if k in values})
        while len(new) < 3:
            new.append({})
        return new

    def visit(
        self, parsed: ParsedDicomdir, rec: Record, ctx: list[dict[str, Any]], depth: int
    ) -> list[dict[str, Any]]:
        """Handle one record; return the context its children inherit."""
        new_ctx = self.context_for(parsed, rec, ctx)
        comps = _file_id(rec)
        if comps is None:
            return new_ctx
        shown = shown_file_id("/".join(comps))
        try:
            ref, is_dir = self.resolver.resolve(comps)
        except RefusedPath as exc:
            self.error(str(exc))
            return new_ctx
        except FileNotFoundError:
            self.error(f"record points at a missing file {shown}")
            return new_ctx
        if is_dir:
            self.error(f"record points at a folder, not a file: {shown}")
            return new_ctx
        if self.resolver.same(ref, self.dicomdir):
            self.error(f"record points at the DICOMDIR itself ({shown})")
            return new_ctx
        values = _record_values(rec, parsed.little, parsed.charset)
        is_directory_file = (
            rec.kind in _LEVELS
            or values.get("sop_class_uid") == hdr.MEDIA_STORAGE_DIRECTORY
            or normalize_name(comps[-1]) in _DIRECTORY_NAMES
        )
        if is_directory_file:
            self.follow(ref, shown, new_ctx, depth)
            return new_ctx
        info_values: dict[str, Any] = {}
        for level_values in new_ctx:
            info_values.update(level_values)
        for key, value in values.items():
            if key not in _UPPER_FIELDS or key not in info_values:
                info_values[key] = value
        info = HeaderInfo(**info_values, source="dicomdir")
        self.result.entries.append((ref, info))
        if self.on_entry is not None:
            self.on_entry(ref, info)
        return new_ctx

    def follow(self, ref: FileRef, shown: str, ctx: list[dict[str, Any]], depth: int) -> None:
        """Read a nested directory file and walk its records below ``ctx``."""
        if depth >= MAX_NESTING:
            self.error(f"directory files nested too deeply at {shown}; not followed")
            return
        if any(self.resolver.same(ref, seen) for seen in self.visited_files):
            self.error(f"directory file {shown} is referenced in a loop; not followed again")
            return
        self.visited_files.append(ref)
        try:
            data = self.resolver.read(ref)
            parsed = load(data)
        except NotADicomdir as exc:
            self.error(f"record points at {shown}, which is not a directory file ({exc})")
            return
        except (OSError, ValueError) as exc:
            self.error(
                f"cannot read directory file {shown}: {exc.strerror if isinstance(exc, OSError) else exc}"
            )
            return
        self.walk(parsed, ctx, depth + 1)


def _run(
    data: bytes,
    resolver: DiskResolver | ZipResolver,
    dicomdir: FileRef,
    cancel: threading.Event | None,
    on_entry: Callable[[FileRef, HeaderInfo], None] | None,
) -> DicomdirResult:
    parsed = load(data)
    result = DicomdirResult()
    walker = _Walker(resolver, dicomdir, result, cancel, on_entry)
    walker.walk(parsed, [{}, {}, {}])
    return result


def read_dicomdir(
    path: str,
    *,
    cancel: threading.Event | None = None,
    on_entry: Callable[[FileRef, HeaderInfo], None] | None = None,
) -> DicomdirResult:
    """Index the DICOMDIR at ``path`` (File IDs relative to its folder). Opens no image file.

    Args:
        path: The DICOMDIR file.
        cancel: Stop early when set.
        on_entry: Called for each instance as it is found (progressive display).

    Returns:
        The entries and errors.

    Raises:
        NotADicomdir: ``path`` is not a DICOMDIR (the caller may scan the folder instead).
        OSError: it cannot be read.
    """
    with open_regular(path) as fh:
        data = fh.read(MAX_DICOMDIR_BYTES)
    resolver = DiskResolver(os.path.dirname(os.path.abspath(path)))
    ref = FileRef(os.path.join(resolver.root, os.path.basename(path)))
    return _run(data, resolver, ref, cancel, on_entry)


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
    if info.file_size > MAX_DICOMDIR_BYTES:
        raise ValueError("DICOMDIR member too large")
    data = zf.read(info)
    base = posixpath.dirname(member)
    resolver = ZipResolver(zip_path, zf, base + "/" if base else "")
    return _run(data, resolver, FileRef(zip_path, member), cancel, on_entry)
