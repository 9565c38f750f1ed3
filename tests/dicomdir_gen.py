"""Write large DICOMDIRs fast, with ``struct``, for the tree-scale tests and benchmarks.

pydicom's ``FileSet`` needs minutes for a million records, so this writes the bytes directly: explicit
VR little endian, PATIENT → STUDY → SERIES → IMAGE records in depth-first file order (as DCMTK's
``dcmmkdir`` writes them), with correct ``OffsetOfTheNextDirectoryRecord`` /
``OffsetOfReferencedLowerLevelDirectoryEntity`` links. The output is streamed to disk in chunks, so a
1,000,000-record file (~100 MB) costs no more memory than a small one. Nothing is checked here: the
tests compare what the reader makes of these files with what was written, and a small one with pydicom.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

DIRECTORY_CLASS = "1.2.840.10008.1.3.10"
CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_LONG = {b"OB", b"OW", b"SQ", b"UN", b"UT"}


def _el(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr in (b"UI", b"OB") else b" "
    if vr in _LONG:
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def _item(body: bytes, undefined: bool) -> bytes:
    if undefined:
        return struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + body + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body


def _links(kind: str, next_: int, lower: int) -> bytes:
    return (
        _el(0x0004, 0x1400, b"UL", struct.pack("<I", next_))
        + _el(0x0004, 0x1410, b"US", struct.pack("<H", 0xFFFF))
        + _el(0x0004, 0x1420, b"UL", struct.pack("<I", lower))
        + _el(0x0004, 0x1430, b"CS", kind.encode())
    )


@dataclass(frozen=True)
class Layout:
    """What a generated DICOMDIR holds.

    Attributes:
        patients, studies, series, images: counts per parent (series per study, images per series).
        frames: NumberOfFrames written in each IMAGE record (None: not written).
        undefined_items: items with undefined length (as pydicom writes) instead of defined length.
    """

    patients: int = 1
    studies: int = 1
    series: int = 1
    images: int = 1
    frames: int | None = None
    undefined_items: bool = False

    @property
    def image_count(self) -> int:
        """Number of IMAGE records."""
        return self.patients * self.studies * self.series * self.images

    @property
    def record_count(self) -> int:
        """Number of records of every level."""
        p, st, se = self.patients, self.patients * self.studies, self.patients * self.studies * self.series
        return p + st + se + self.image_count


def default_file_id(p: int, st: int, se: int, im: int) -> list[str]:
    """``IMAGES/P0/S0/E0/I000000``-like File IDs (components of at most 8 characters)."""
    return ["IMG", f"P{p}", f"S{st}", f"E{se}", f"I{im:06d}"[-8:]]


def _uid(*parts: int) -> bytes:
    return ("1.2.826.0.1.3680043.8.498." + ".".join(str(p + 1) for p in parts)).encode()


def _records(
    layout: Layout,
    file_id: Callable[[int, int, int, int], list[str]],
    series_file_id: Callable[[int, int, int], list[str] | None] | None = None,
) -> Iterator[tuple[str, bytes]]:
    """(kind, body without links) for every record in depth-first order."""
    for p in range(layout.patients):
        yield (
            "PATIENT",
            _el(0x0010, 0x0010, b"PN", f"TEST^P{p}".encode()) + _el(0x0010, 0x0020, b"LO", f"ID{p}".encode()),
        )
        for st in range(layout.studies):
            yield (
                "STUDY",
                (
                    _el(0x0008, 0x0020, b"DA", b"20240101")
                    + _el(0x0008, 0x1030, b"LO", f"STUDY {st}".encode())
                    + _el(0x0020, 0x000D, b"UI", _uid(1, p, st))
                    + _el(0x0020, 0x0010, b"SH", str(st).encode())
                ),
            )
            for se in range(layout.series):
                named = series_file_id(p, st, se) if series_file_id is not None else None
                yield (
                    "SERIES",
                    (
                        (_el(0x0004, 0x1500, b"CS", "\\".join(named).encode()) if named else b"")
                        + _el(0x0008, 0x0060, b"CS", b"CT")
                        + _el(0x0020, 0x000E, b"UI", _uid(2, p, st, se))
                        + _el(0x0020, 0x0011, b"IS", str(se + 1).encode())
                    ),
                )
                for im in range(layout.images):
                    body = (
                        _el(0x0004, 0x1500, b"CS", "\\".join(file_id(p, st, se, im)).encode())
                        + _el(0x0004, 0x1510, b"UI", CT_CLASS.encode())
                        + _el(0x0004, 0x1511, b"UI", _uid(3, p, st, se, im))
                        + _el(0x0004, 0x1512, b"UI", EXPLICIT_LE.encode())
                        + _el(0x0020, 0x0013, b"IS", str(im + 1).encode())
                    )
                    if layout.frames is not None:
                        body += _el(0x0028, 0x0008, b"IS", str(layout.frames).encode())
                    yield "IMAGE", body


_LEVEL = {"PATIENT": 0, "STUDY": 1, "SERIES": 2, "IMAGE": 3}
_LINKS_SIZE = {kind: len(_links(kind, 0, 0)) for kind in _LEVEL}


def write_dicomdir(
    path: Path,
    layout: Layout,
    file_id: Callable[[int, int, int, int], list[str]] = default_file_id,
    series_file_id: Callable[[int, int, int], list[str] | None] | None = None,
) -> Path:
    """Write a DICOMDIR at ``path`` holding ``layout``; returns ``path``.

    Two passes over the records: the first computes every record's size (so the offsets are known),
    the second writes them, in chunks. ``series_file_id`` gives SERIES records a File ID (a record
    naming a directory file, as Philips CDs have), None for none.
    """
    head_meta = (
        _el(0x0002, 0x0001, b"OB", b"\0\1")
        + _el(0x0002, 0x0002, b"UI", DIRECTORY_CLASS.encode())
        + _el(0x0002, 0x0003, b"UI", _uid(9))
        + _el(0x0002, 0x0010, b"UI", EXPLICIT_LE.encode())
        + _el(0x0002, 0x0012, b"UI", b"1.2.3.4")
    )
    meta = b"\0" * 128 + b"DICM" + _el(0x0002, 0x0000, b"UL", struct.pack("<I", len(head_meta))) + head_meta
    # (0004,1130) CS, (0004,1200) UL, (0004,1202) UL, (0004,1212) US, then the SQ header (12 bytes)
    dataset_head_len = len(_el(0x0004, 0x1130, b"CS", b"GENERATED")) + 12 + 12 + 10 + 12
    seq_start = len(meta) + dataset_head_len
    overhead = 16 if layout.undefined_items else 8
    # pass 1: offsets. Each record's next sibling / first child offset is found with a stack per level.
    sizes: list[int] = []
    kinds: list[int] = []
    for kind, body in _records(layout, file_id, series_file_id):
        sizes.append(overhead + _LINKS_SIZE[kind] + len(body))
        kinds.append(_LEVEL[kind])
    n = len(sizes)
    offsets = [0] * n
    pos = seq_start
    for i, size in enumerate(sizes):
        offsets[i] = pos
        pos += size
    total_seq = pos - seq_start
    next_of = [0] * n
    lower_of = [0] * n
    last_at: list[int | None] = [None, None, None, None]
    for i, level in enumerate(kinds):
        prev = last_at[level]
        if prev is not None:
            next_of[prev] = offsets[i]
        if level > 0 and i > 0 and kinds[i - 1] == level - 1:
            lower_of[i - 1] = offsets[i]
        last_at[level] = i
        for deeper in range(level + 1, 4):
            last_at[deeper] = None
    root_last = max((i for i in range(n) if kinds[i] == 0), default=0)
    seq_len = 0xFFFFFFFF if layout.undefined_items else total_seq
    with open(path, "wb") as out:
        out.write(meta)
        out.write(_el(0x0004, 0x1130, b"CS", b"GENERATED"))
        out.write(_el(0x0004, 0x1200, b"UL", struct.pack("<I", offsets[0] if n else 0)))
        out.write(_el(0x0004, 0x1202, b"UL", struct.pack("<I", offsets[root_last] if n else 0)))
        out.write(_el(0x0004, 0x1212, b"US", struct.pack("<H", 0)))
        out.write(struct.pack("<HH2sHI", 0x0004, 0x1220, b"SQ", 0, seq_len))
        chunk: list[bytes] = []
        for i, (kind, body) in enumerate(_records(layout, file_id, series_file_id)):
            chunk.append(_item(_links(kind, next_of[i], lower_of[i]) + body, layout.undefined_items))
            if len(chunk) >= 4096:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))
        if layout.undefined_items:
            out.write(struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    return path


def write_flat_dicomdir(
    path: Path,
    images: int,
    *,
    per_series: int = 1000,
    same_file: str | None = None,
    frames: int | None = None,
) -> Path:
    """A DICOMDIR of one patient and study with ``images`` IMAGE records, ``per_series`` per series,
    written from one record template (a million records in a few seconds).

    Args:
        path: Where to write.
        images: Number of IMAGE records.
        per_series: IMAGE records per SERIES record.
        same_file: Every IMAGE record names this one File ID (e.g. ``"IMG\\\\I0"``) instead of its own
            ``IMG\\\\Innnnnnn`` (files that do not exist unless the caller makes them).
        frames: NumberOfFrames written in every IMAGE record.
    """
    digits = 7
    mark = b"#" * digits
    file_id = same_file.encode() if same_file is not None else b"IMG\\I" + mark
    # lean records, as a hostile file would have them: File ID and SOP Instance UID only
    body = _el(0x0004, 0x1500, b"CS", file_id) + _el(
        0x0004, 0x1511, b"UI", b"1.2.826.0.1.3680043.8.498.4." + mark
    )
    if frames is not None:
        body += _el(0x0004, 0x1510, b"UI", CT_CLASS.encode()) + _el(
            0x0028, 0x0008, b"IS", str(frames).encode()
        )
    image = bytes(_item(_links("IMAGE", 0, 0) + body, False))
    # the template cut at the next-record offset (bytes 16..20) and at each number
    cuts = [16, 20]
    start = 0
    while (found := image.find(mark, start)) >= 0:
        cuts += [found, found + digits]
        start = found + digits
    pieces = [image[a:b] for a, b in zip([0, *cuts], [*cuts, len(image)], strict=True)]
    patient = _el(0x0010, 0x0010, b"PN", b"FLAT^TEST") + _el(0x0010, 0x0020, b"LO", b"FLAT1")
    study = (
        _el(0x0008, 0x0020, b"DA", b"20240101")
        + _el(0x0020, 0x000D, b"UI", _uid(1, 0, 0))
        + _el(0x0020, 0x0010, b"SH", b"1")
    )

    def series_body(k: int) -> bytes:
        return (
            _el(0x0008, 0x0060, b"CS", b"CT")
            + _el(0x0020, 0x000E, b"UI", b"1.2.826.0.1.3680043.8.498.2.%07d" % k)
            + _el(0x0020, 0x0011, b"IS", b"%07d" % (k + 1))
        )

    head_meta = (
        _el(0x0002, 0x0001, b"OB", b"\0\1")
        + _el(0x0002, 0x0002, b"UI", DIRECTORY_CLASS.encode())
        + _el(0x0002, 0x0003, b"UI", _uid(9))
        + _el(0x0002, 0x0010, b"UI", EXPLICIT_LE.encode())
        + _el(0x0002, 0x0012, b"UI", b"1.2.3.4")
    )
    meta = b"\0" * 128 + b"DICM" + _el(0x0002, 0x0000, b"UL", struct.pack("<I", len(head_meta))) + head_meta
    fileset = _el(0x0004, 0x1130, b"CS", b"FLAT")
    seq_start = len(meta) + len(fileset) + 12 + 12 + 10 + 12
    p_size = len(_item(_links("PATIENT", 0, 0) + patient, False))
    st_size = len(_item(_links("STUDY", 0, 0) + study, False))
    se_size = len(_item(_links("SERIES", 0, 0) + series_body(0), False))
    im_size = len(image)
    n_series = -(-images // per_series)
    series_at = []
    pos = seq_start + p_size + st_size
    for k in range(n_series):
        series_at.append(pos)
        pos += se_size + im_size * min(per_series, images - k * per_series)
    end = pos
    with open(path, "wb") as out:
        out.write(meta + fileset)
        out.write(_el(0x0004, 0x1200, b"UL", struct.pack("<I", seq_start)))
        out.write(_el(0x0004, 0x1202, b"UL", struct.pack("<I", seq_start)))
        out.write(_el(0x0004, 0x1212, b"US", struct.pack("<H", 0)))
        out.write(struct.pack("<HH2sHI", 0x0004, 0x1220, b"SQ", 0, end - seq_start))
        out.write(_item(_links("PATIENT", 0, seq_start + p_size) + patient, False))
        out.write(_item(_links("STUDY", 0, seq_start + p_size + st_size) + study, False))
        done = 0
        for k in range(n_series):
            count = min(per_series, images - done)
            first = series_at[k] + se_size
            nxt = series_at[k + 1] if k + 1 < n_series else 0
            chunk = [_item(_links("SERIES", nxt, first) + series_body(k), False)]
            pack = struct.Struct("<I").pack
            slots = len(pieces[3:-1:2])
            for i in range(count):
                number = b"%07d" % (done + i)
                parts = pieces[:]
                parts[1] = pack(first + (i + 1) * im_size if i + 1 < count else 0)
                parts[3:-1:2] = [number] * slots
                chunk.append(b"".join(parts))
            out.write(b"".join(chunk))
            done += count
    return path


def tiny_dicom(path: Path, sop_uid: str, *, frames: int | None = None, patient: str = "TINY^PATIENT") -> Path:
    """A small real DICOM file (CT, explicit VR little endian, 4x4 16-bit pixels per frame).

    ``frames`` writes NumberOfFrames (the pixel data still holds one frame: a lying header).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CT_CLASS)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_CLASS
    ds.SOPInstanceUID = sop_uid
    ds.PatientName = patient
    ds.PatientID = "TINY1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.77.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.77.2"
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.PixelData = bytes(range(32))
    ds.save_as(path, enforce_file_format=True)
    return path
