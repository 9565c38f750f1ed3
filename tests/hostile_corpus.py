"""Hostile-input corpus, generated at test time from pydicom's (and pydicom-data's) own files.

Nothing here is committed as a binary: :func:`build_files` writes every single-file case into a
folder, :func:`build_links_folder` and :func:`build_hostile_cd` build the folder and DICOMDIR cases.
The seeds are pydicom's ``CT_small.dcm`` (explicit VR little endian, 128x128x16 bit), ``MR_small.dcm``,
``MR_small_jp2klossless.dcm`` and ``emri_small_RLE.dcm``; random choices use fixed seeds so the corpus is
the same on every run.

Every case file name is plain ASCII (the injection tests build their own hostile names), so a test can
check that a one-line message names the file.

Categories (``Case.kind``):
    truncated   cut at many offsets: preamble, DICM, meta, mid-tag, mid-length, mid-value, mid-pixel
    bitflip     random bit flips (header region and whole file), fixed seeds
    lie         Image Pixel module lies: sizes far beyond the data, nonsense bit depths, 7 samples...
    length      element lengths beyond the end of the file (2-byte and 4-byte lengths, sequences)
    deep        sequences nested thousands of levels deep
    wide        a sequence with tens of thousands of items
    deflate     deflated transfer syntax: a bomb above the reader's cap, a large one below it, corrupt
    syntax      unknown transfer syntax, unknown character set
    notdicom    empty, random bytes, PNG/text named .dcm, ``DICM`` with nothing after
    shipped     the broken files pydicom and pydicom-data ship
"""

from __future__ import annotations

import copy
import io
import os
import random
import shutil
import struct
import subprocess
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DEFLATED = "1.2.840.10008.1.2.1.99"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage


@dataclass(frozen=True)
class Case:
    """One corpus file.

    Attributes:
        name: File name (plain ASCII) inside the corpus folder.
        path: Where it was written.
        kind: Category (see the module docstring).
        note: What is hostile about it.
    """

    name: str
    path: Path
    kind: str
    note: str


def testdata(name: str) -> Path | None:
    """A file from pydicom's test files or pydicom-data, or None when not installed."""
    try:
        found = get_testdata_file(name, download=False)
    except Exception:  # noqa: BLE001 - missing optional data is a skip, not an error
        found = None
    if found:
        return Path(str(found))
    try:
        import data_store  # pydicom-data

        candidate = Path(os.path.dirname(data_store.__file__)) / "data" / name
        return candidate if candidate.exists() else None
    except ImportError:
        return None


def _seed(name: str) -> bytes:
    path = testdata(name)
    if path is None:
        raise FileNotFoundError(f"pydicom test file {name} not found")
    return path.read_bytes()


def _fresh(ds: Dataset, label: str) -> Dataset:
    """New SOP/Series UIDs and a series description, so each case is its own series in the viewer."""
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    if getattr(ds, "file_meta", None) is not None:
        ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesDescription = label[:64]
    return ds


def _save(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


def _meta(ts: str, sop_instance: str | None = None) -> bytes:
    """A Part 10 preamble, ``DICM`` and file meta group (explicit VR little endian) for ``ts``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SC_IMAGE
    meta.MediaStorageSOPInstanceUID = sop_instance or generate_uid()
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = "1.2.3.4"
    buf = io.BytesIO()
    buf.write(b"\0" * 128 + b"DICM")
    from pydicom.filewriter import write_file_meta_info

    write_file_meta_info(pydicom.filebase.DicomFileLike(buf), meta, enforce_standard=True)
    return buf.getvalue()


def _el(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element."""
    if len(value) % 2:
        value += b"\0" if vr in (b"UI", b"OB", b"UN") else b" "
    if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV", b"SV", b"UV"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def _header_elements(label: str) -> bytes:
    """A minimal set of top-level elements (SOP class/instance, patient, study/series UIDs)."""
    return b"".join(
        [
            _el(0x0008, 0x0016, b"UI", SC_IMAGE.encode()),
            _el(0x0008, 0x0018, b"UI", generate_uid().encode()),
            _el(0x0008, 0x0060, b"CS", b"OT"),
            _el(0x0008, 0x103E, b"LO", label.encode()),
            _el(0x0010, 0x0010, b"PN", b"Hostile^Corpus"),
            _el(0x0010, 0x0020, b"LO", b"HOSTILE"),
            _el(0x0020, 0x000D, b"UI", generate_uid().encode()),
            _el(0x0020, 0x000E, b"UI", generate_uid().encode()),
        ]
    )


def _deflated_file(label: str, payload_bytes: int, *, corrupt: bool = False) -> bytes:
    """A deflated-syntax file whose dataset holds an OB element of ``payload_bytes`` zeros.

    The zeros are compressed as a stream, so a file that inflates to hundreds of MB is built without
    ever holding them in memory.
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [comp.compress(_header_elements(label))]
    # a private OB element (not Pixel Data), so reading "headers only" must still inflate it
    out.append(comp.compress(_el(0x0009, 0x0010, b"LO", b"HOSTILE")))
    out.append(comp.compress(struct.pack("<HH2sHI", 0x0009, 0x1010, b"OB", 0, payload_bytes)))
    chunk = b"\0" * (1 << 20)
    left = payload_bytes
    while left:
        n = min(left, len(chunk))
        out.append(comp.compress(chunk[:n]))
        left -= n
    out.append(comp.flush())
    body = b"".join(out)
    if corrupt:
        body = body[:40] + bytes(b ^ 0x5A for b in body[40:200]) + body[200:]
    return _meta(DEFLATED) + body


def _nested(depth: int, *, implicit: bool = False) -> bytes:
    """A dataset with one sequence nested ``depth`` levels (undefined lengths throughout)."""
    if implicit:
        open_sq = struct.pack("<HHI", 0x0040, 0xA730, 0xFFFFFFFF)
    else:
        open_sq = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF)
    open_item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    close_item = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    close_sq = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    body = (open_sq + open_item) * depth + (close_item + close_sq) * depth
    if implicit:
        head = b"".join(
            struct.pack("<HHI", g, e, len(v)) + v
            for g, e, v in (
                (0x0008, 0x0016, SC_IMAGE.encode() + b"\0"),
                (0x0008, 0x0018, generate_uid().encode().ljust(40, b"\0")[:40]),
                (0x0010, 0x0010, b"Deep^Implicit "),
            )
        )
        return head + body  # no preamble, no meta: a raw implicit VR dataset
    return _meta(ExplicitVRLittleEndian) + _header_elements(f"deep {depth}") + body


def _wide(items: int) -> bytes:
    """A dataset with one sequence of ``items`` small items."""
    item = (
        struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
        + _el(0x0008, 0x0100, b"SH", b"X")
        + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    )
    seq = (
        struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF)
        + item * items
        + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    )
    return _meta(ExplicitVRLittleEndian) + _header_elements(f"wide {items}") + seq


def _flip(data: bytes, count: int, rng: random.Random, lo: int = 0, hi: int | None = None) -> bytes:
    buf = bytearray(data)
    hi = len(buf) if hi is None else min(hi, len(buf))
    for _ in range(count):
        pos = rng.randrange(lo, hi)
        buf[pos] ^= 1 << rng.randrange(8)
    return bytes(buf)


def _lie(base: Dataset, label: str, **values: object) -> bytes:
    ds = _fresh(copy.deepcopy(base), label)
    for keyword, value in values.items():
        if value is None:
            if keyword in ds:
                del ds[keyword]
        elif isinstance(value, str) and dictionary_VR(keyword) in ("IS", "DS"):
            # written raw: pydicom would refuse to hold "many" or "NaN" as a number
            raw = value.encode().ljust(len(value) + len(value) % 2, b" ")
            tag = tag_for_keyword(keyword)
            ds._dict[Tag(tag)] = RawDataElement(
                Tag(tag), dictionary_VR(keyword), len(raw), raw, 0, False, True
            )
        else:
            setattr(ds, keyword, value)
    return _save(ds)


def _png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, format="PNG")
    return buf.getvalue()


#: (file name in pydicom test files or pydicom-data, note) of broken files shipped by pydicom
SHIPPED = (
    ("MR_truncated.dcm", "pixel data truncated"),
    ("badVR.dcm", "invalid VR"),
    ("rtplan_truncated.dcm", "truncated inside a sequence"),
    ("bad_sequence.dcm", "broken sequence (pydicom-data)"),
    ("emri_small_jpeg_2k_lossless_too_short.dcm", "JPEG 2000 frames too short (pydicom-data)"),
    ("JPEG2000-embedded-sequence-delimiter.dcm", "sequence delimiter inside the JPEG 2000 data"),
    ("J2K_pixelrep_mismatch.dcm", "Pixel Representation disagrees with the J2K stream"),
    ("meta_missing_tsyntax.dcm", "file meta without Transfer Syntax UID"),
    ("no_meta.dcm", "no file meta"),
    ("empty_charset_LEI.dcm", "empty Specific Character Set"),
    ("JPEG-lossy.dcm", "12-bit JPEG Extended"),
)


def build_files(dest: Path) -> list[Case]:
    """Write every single-file case into ``dest`` (created) and return them.

    Raises:
        FileNotFoundError: pydicom's seed files are not installed.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the values we plant on purpose
        return _build_files(dest)


def _build_files(dest: Path) -> list[Case]:
    dest.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(name: str, data: bytes, kind: str, note: str) -> None:
        path = dest / name
        path.write_bytes(data)
        cases.append(Case(name, path, kind, note))

    ct = _seed("CT_small.dcm")
    ct_ds = pydicom.dcmread(io.BytesIO(ct))
    mr_j2k = _seed("MR_small_jp2klossless.dcm")
    rle = _seed("emri_small_RLE.dcm")
    mr = _seed("MR_small.dcm")

    # -- truncation at many offsets
    pn = ct.find(b"\x10\x00\x10\x00PN")
    px = ct.find(b"\xe0\x7f\x10\x00OW")
    assert pn > 0 and px > 0
    offsets = {
        "preamble": 64,
        "at_dicm": 128,
        "mid_dicm": 130,
        "after_dicm": 132,
        "meta_tag": 134,
        "meta_len": 138,
        "meta_value": 150,
        "meta_end": 300,
        "mid_tag": pn + 2,
        "mid_vr": pn + 5,
        "mid_length": pn + 7,
        "mid_value": pn + 10,
        "before_pixels": px,
        "pixel_header": px + 6,
        "pixel_start": px + 14,
        "mid_pixels": px + (len(ct) - px) // 2,
        "last_byte": len(ct) - 1,
    }
    for label, off in offsets.items():
        add(f"trunc_ct_{label}.dcm", ct[:off], "truncated", f"CT_small cut at byte {off} ({label})")
    for frac in (0.25, 0.5, 0.9):
        off = int(len(mr_j2k) * frac)
        add(f"trunc_j2k_{int(frac * 100)}.dcm", mr_j2k[:off], "truncated", f"JPEG 2000 cut at {off}")
    off = int(len(rle) * 0.6)
    add("trunc_rle_60.dcm", rle[:off], "truncated", f"RLE cut at {off}")

    # -- random bit flips (fixed seeds)
    for seed, (src, name, count, region) in enumerate(
        [
            (ct, "ct", 1, 1200),
            (ct, "ct", 4, 1200),
            (ct, "ct", 16, 1200),
            (ct, "ct", 64, None),
            (mr, "mr", 8, 2000),
            (mr, "mr", 32, None),
            (mr_j2k, "j2k", 8, None),
            (mr_j2k, "j2k", 64, None),
            (rle, "rle", 8, 2000),
            (rle, "rle", 64, None),
        ]
    ):
        rng = random.Random(1000 + seed)
        data = _flip(src, count, rng, 132, region)
        add(
            f"flip_{name}_{count}_{seed}.dcm",
            data,
            "bitflip",
            f"{count} random bit flips, seed {1000 + seed}",
        )

    # -- header lies (each its own series)
    lies: dict[str, dict[str, object]] = {
        "rows_cols_65535": {"Rows": 65535, "Columns": 65535},
        "rows_cols_8000": {"Rows": 8000, "Columns": 8000},
        "frames_100000": {"NumberOfFrames": 100000},
        "frames_negative": {"NumberOfFrames": "-5"},
        "frames_text": {"NumberOfFrames": "many"},
        "samples_3": {"SamplesPerPixel": 3, "PhotometricInterpretation": "RGB"},
        "samples_7": {"SamplesPerPixel": 7},
        "bits_allocated_13": {"BitsAllocated": 13},
        "bits_allocated_0": {"BitsAllocated": 0},
        "bits_allocated_64": {"BitsAllocated": 64},
        "bits_stored_40": {"BitsStored": 40},
        "bits_stored_0": {"BitsStored": 0},
        "high_bit_99": {"HighBit": 99},
        "rows_0": {"Rows": 0},
        "no_rows": {"Rows": None},
        "photometric_junk": {"PhotometricInterpretation": "JUNK"},
        "pixel_rep_5": {"PixelRepresentation": 5},
        "planar_9": {"PlanarConfiguration": 9},
        "rescale_nan": {"RescaleSlope": "NaN", "RescaleIntercept": "1e308"},
        "window_zero": {"WindowCenter": "1e309", "WindowWidth": "0"},
    }
    for label, values in lies.items():
        add(f"lie_{label}.dcm", _lie(ct_ds, f"lie {label}", **values), "lie", f"header lie: {values}")
    j2k_ds = pydicom.dcmread(io.BytesIO(mr_j2k))
    add(
        "lie_j2k_rows_11000.dcm",
        _lie(j2k_ds, "lie j2k 11000", Rows=11000, Columns=11000),
        "lie",
        "JPEG 2000 stream declared 11000x11000",
    )
    add(
        "lie_j2k_frames_5000.dcm",
        _lie(j2k_ds, "lie j2k frames", NumberOfFrames=5000),
        "lie",
        "JPEG 2000 declared 5000 frames, one fragment",
    )
    rle_ds = pydicom.dcmread(io.BytesIO(rle))
    add(
        "lie_rle_samples_3.dcm",
        _lie(rle_ds, "lie rle samples", SamplesPerPixel=3, PhotometricInterpretation="RGB"),
        "lie",
        "RLE declared 3 samples",
    )

    # -- element lengths beyond the end of the file
    buf = bytearray(ct)
    struct.pack_into("<H", buf, pn + 6, 0xFFF0)
    add("len_pn_beyond_eof.dcm", bytes(buf), "length", "PatientName length 65520 (2-byte length)")
    buf = bytearray(ct)
    struct.pack_into("<I", buf, px + 8, 0x7FFFFFF0)
    add("len_pixels_2gb.dcm", bytes(buf), "length", "Pixel Data length 2 GB, file 39 KB")
    big = _el(0x0009, 0x0010, b"LO", b"HOSTILE") + struct.pack(
        "<HH2sHI", 0x0009, 0x1010, b"OB", 0, 0x7FFFFFF0
    )
    add(
        "len_private_ob_2gb.dcm",
        ct[:px] + big + b"\0" * 64,
        "length",
        "private OB before Pixel Data with length 2 GB",
    )
    sq = struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0x7FFFFFF0) + struct.pack(
        "<HHI", 0xFFFE, 0xE000, 0x10000000
    )
    add(
        "len_sequence_beyond_eof.dcm",
        ct[:px] + sq + b"\0" * 32,
        "length",
        "sequence and item lengths far beyond the end of the file",
    )
    meta_len = bytearray(ct)
    struct.pack_into("<I", meta_len, 140, 0xFFFFFF00)  # (0002,0000) group length value
    add("len_meta_group_huge.dcm", bytes(meta_len), "length", "file meta group length 4 GB")

    # -- sequences nested thousands deep, sequences with tens of thousands of items
    add("deep_5000.dcm", _nested(5000), "deep", "sequence nested 5,000 levels")
    add("deep_50000.dcm", _nested(50000), "deep", "sequence nested 50,000 levels")
    add("deep_implicit_3000.dcm", _nested(3000, implicit=True), "deep", "implicit VR, no meta, 3,000 levels")
    add("wide_50000_items.dcm", _wide(50000), "wide", "sequence of 50,000 items")

    # -- deflate
    add(
        "deflate_bomb_400mb.dcm",
        _deflated_file("deflate bomb", 400 * 1024**2),
        "deflate",
        "deflated dataset inflating to 400 MB",
    )
    from tui_dicom.core.limits import current

    max_inflated = current().inflated_bytes

    under = max_inflated - 64 * 1024  # the worst case the reader accepts
    add(
        "deflate_under_cap.dcm",
        _deflated_file("deflate under cap", under),
        "deflate",
        f"deflated dataset inflating to {under:,} bytes, just under the reader's cap",
    )
    add(
        "deflate_corrupt.dcm",
        _deflated_file("deflate corrupt", 4096, corrupt=True),
        "deflate",
        "corrupt deflate stream",
    )
    dfl = testdata("image_dfl.dcm")
    if dfl is not None:
        add(
            "deflate_truncated.dcm",
            dfl.read_bytes()[: dfl.stat().st_size // 2],
            "deflate",
            "pydicom's image_dfl.dcm cut in half",
        )

    # -- unknown transfer syntax, unknown character set
    ts_ds = _fresh(copy.deepcopy(ct_ds), "unknown syntax")
    ts_ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6.7.8.9"
    add("unknown_transfer_syntax.dcm", _save(ts_ds), "syntax", "Transfer Syntax UID 1.2.3.4.5.6.7.8.9")
    cs_ds = _fresh(copy.deepcopy(ct_ds), "unknown charset")
    cs_ds.SpecificCharacterSet = "ISO_IR 999"
    cs_ds.PatientName = "M\xfcller^J\xf6rg"
    cs_raw = _save(cs_ds)  # pydicom writes the name in latin-1; the declared set is unknown
    add("unknown_charset.dcm", cs_raw, "syntax", "Specific Character Set ISO_IR 999")
    cs2 = _fresh(copy.deepcopy(ct_ds), "charset 2022 junk")
    cs2.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    cs2_raw = _save(cs2).replace(b"CompressedSamples^CT1", b"\x1b$B\xff\xfe^\x1b(J\x1b$)CT1")
    add("charset_bad_escape.dcm", cs2_raw, "syntax", "ISO 2022 escapes with invalid bytes")

    # -- not DICOM
    rng = random.Random(7)
    add("empty.dcm", b"", "notdicom", "empty file")
    add("random_4k.dcm", bytes(rng.randrange(256) for _ in range(4096)), "notdicom", "4 KB random bytes")
    add("random_noext", bytes(rng.randrange(256) for _ in range(2000)), "notdicom", "random, no extension")
    add(
        "random_after_dicm.dcm",
        b"\0" * 128 + b"DICM" + bytes(rng.randrange(256) for _ in range(4096)),
        "notdicom",
        "preamble, DICM, then random bytes",
    )
    add("png_named.dcm", _png_bytes(), "notdicom", "a PNG named .dcm")
    add("text_named.dcm", b"This is not a DICOM file.\nJust text.\n" * 20, "notdicom", "text named .dcm")
    add("dicm_only.dcm", b"DICM", "notdicom", "just DICM")
    add("preamble_dicm_only.dcm", b"\0" * 128 + b"DICM", "notdicom", "preamble and DICM, nothing after")
    add(
        "preamble_dicm_8.dcm",
        b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00",
        "notdicom",
        "preamble, DICM and half a tag",
    )

    # -- the broken files pydicom and pydicom-data ship
    for name, note in SHIPPED:
        src = testdata(name)
        if src is not None:
            add(f"shipped_{name}", src.read_bytes(), "shipped", note)
    return cases


def good_file(dest: Path, name: str = "good.dcm", label: str = "good") -> Path:
    """Write a valid image (CT_small with fresh UIDs) to ``dest/name``."""
    ds = _fresh(pydicom.dcmread(io.BytesIO(_seed("CT_small.dcm"))), label)
    path = dest / name
    path.write_bytes(_save(ds))
    return path


@dataclass(frozen=True)
class LinksFolder:
    """A folder with links and special files.

    Attributes:
        root: The folder.
        good: The one valid image in it.
        specials: Names (relative to root) of entries a scan must report or skip, never hang on.
    """

    root: Path
    good: Path
    specials: tuple[str, ...]


def build_links_folder(root: Path) -> LinksFolder:
    """A folder with symlink loops, a dangling link, a FIFO, a directory named ``*.dcm``, an
    unreadable file (chmod 000; root reads it anyway) and one good image."""
    root.mkdir(parents=True, exist_ok=True)
    good = good_file(root, "good.dcm", "links good")
    os.symlink(".", root / "loop_self")
    (root / "sub").mkdir()
    os.symlink("..", root / "sub" / "loop_up")
    os.symlink("loop_b", root / "loop_a")
    os.symlink("loop_a", root / "loop_b")
    os.symlink("does_not_exist.dcm", root / "dangling.dcm")
    os.mkfifo(root / "fifo.dcm")
    (root / "directory.dcm").mkdir()
    (root / "directory.dcm" / "empty.txt").write_text("")
    unreadable = root / "unreadable.dcm"
    unreadable.write_bytes((root / "good.dcm").read_bytes()[:200])
    unreadable.chmod(0)
    return LinksFolder(
        root,
        good,
        (
            "loop_self",
            "sub/loop_up",
            "loop_a",
            "loop_b",
            "dangling.dcm",
            "fifo.dcm",
            "directory.dcm",
            "unreadable.dcm",
        ),
    )


@dataclass(frozen=True)
class HostileCD:
    """A DICOMDIR file set whose records point where they must not.

    Attributes:
        root: The CD root (holds DICOMDIR).
        good: Paths of images the DICOMDIR references correctly.
        outside: A readable DICOM file beside the root, referenced as ``..\\OUTSIDE.DCM``.
        absolute: A readable DICOM file referenced by its absolute path.
        missing_id: The File ID of the record whose file does not exist.
        short_dir: Temporary folder holding ``absolute`` (remove it when done).
    """

    root: Path
    good: tuple[Path, ...]
    outside: Path
    absolute: Path
    missing_id: str
    short_dir: Path

    @property
    def refused(self) -> tuple[Path, ...]:
        """Targets that must never be opened."""
        return (self.outside, self.absolute)


_DEEP = ("A0000000", "B0000000", "C0000000", "D0000000", "E0000000", "F0000000")


def build_hostile_cd(base: Path) -> HostileCD:
    """Build ``base/cd`` with DCMTK's ``dcmmkdir``, then patch File IDs in place (same length, so
    every record offset stays valid): one outside the root (``..``), one absolute, one missing, one
    the DICOMDIR itself; two records stay good.

    Raises:
        FileNotFoundError: dcmmkdir is not installed.
    """
    if shutil.which("dcmmkdir") is None:
        raise FileNotFoundError("dcmmkdir (DCMTK) not installed")
    root = base / "cd"
    deep = root.joinpath("IMAGES", *_DEEP)
    deep.mkdir(parents=True)
    ct_ds = pydicom.dcmread(io.BytesIO(_seed("CT_small.dcm")))
    study, series = generate_uid(), generate_uid()
    paths = []
    for i in range(1, 7):
        ds = _fresh(copy.deepcopy(ct_ds), "cd series")
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.InstanceNumber = i
        path = deep / f"IM00000{i}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    subprocess.run(
        ["dcmmkdir", "--general-purpose", "-q", "+r", "+id", str(root), "IMAGES"],
        check=True,
        cwd=root,
        capture_output=True,
    )
    dicomdir = root / "DICOMDIR"
    raw = bytearray(dicomdir.read_bytes())
    outside = base / "OUTSIDE.DCM"
    good_file(base, "OUTSIDE.DCM", "outside root")
    short_dir = Path(tempfile.mkdtemp(prefix="hx", dir="/tmp"))
    absolute = good_file(short_dir, "ABS.DCM", "absolute target")
    missing_id = "IMAGES\\MISSING\\IM000009"
    new_ids = {
        3: "..\\OUTSIDE.DCM",
        4: str(absolute),
        5: missing_id,
        6: "DICOMDIR",
    }
    for i, new in new_ids.items():
        old = "\\".join(("IMAGES", *_DEEP, f"IM00000{i}")).encode()
        pos = raw.find(old)
        assert pos > 0, f"File ID {old!r} not found in DICOMDIR"
        length = struct.unpack_from("<H", raw, pos - 2)[0]
        encoded = new.encode()
        assert len(encoded) <= length, f"{new!r} longer than the {length}-byte field"
        raw[pos : pos + length] = encoded.ljust(length, b" ")
    dicomdir.write_bytes(bytes(raw))
    for i in new_ids:
        paths[i - 1].unlink()  # those records no longer point at them
    return HostileCD(root, tuple(paths[:2]), outside, absolute, missing_id, short_dir)


def build_all(base: Path) -> tuple[list[Case], LinksFolder, HostileCD | None]:
    """Build the whole corpus under ``base``: ``base/files``, ``base/links``, ``base/cdbase/cd``."""
    cases = build_files(base / "files")
    links = build_links_folder(base / "links")
    try:
        cd = build_hostile_cd(base / "cdbase")
    except FileNotFoundError:
        cd = None
    return cases, links, cd
