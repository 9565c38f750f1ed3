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
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

#: Runs the command and writes its own CPU time and peak RSS to argv[1]. Started straight from pytest, a
#: command would report pytest's own peak RSS (Linux keeps the parent's high-water mark across exec),
#: hundreds of MB late in a run: a small launcher in between leaves only its own ~15 MB in the figure. It
#: ignores Ctrl+C itself (the test interrupts the whole process group) and gives it back to the command.
MEASURING_LAUNCHER = """
import os, signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
proc = subprocess.Popen(sys.argv[2:], preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
_pid, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(f"{usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""

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
    meta.MediaStorageSOPClassUID = UID(SC_IMAGE)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance or generate_uid())
    meta.TransferSyntaxUID = UID(ts)
    meta.ImplementationClassUID = UID("1.2.3.4")
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
            assert tag is not None  # a dictionary keyword: its VR was just looked up
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
    ts_ds.file_meta.TransferSyntaxUID = UID("1.2.3.4.5.6.7.8.9")
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
        shipped = testdata(name)
        if shipped is not None:
            add(f"shipped_{name}", shipped.read_bytes(), "shipped", note)
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


# ------------------------------------------------------------------------------------------------
# resource bounds: bombs, lying compressed-stream headers, huge values, special files


def _deflate_bomb(label: str, inflated: int) -> bytes:
    """A deflated file inflating to ``inflated`` bytes, built in milliseconds: one compressed block
    of 1 MB of zeros, flushed to a byte boundary with no history (Z_FULL_FLUSH), repeated."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = comp.compress(
        _header_elements(label)
        + _el(0x0009, 0x0010, b"LO", b"HOSTILE")
        + struct.pack("<HH2sHI", 0x0009, 0x1010, b"OB", 0, inflated)
    )
    head += comp.flush(zlib.Z_FULL_FLUSH)
    zeros = comp.compress(b"\0" * (1 << 20)) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush()
    return _meta(DEFLATED) + head + zeros * (inflated >> 20) + tail


def _plain(label: str, *elements: bytes) -> bytes:
    """An explicit VR little endian file: meta, the usual header elements, then ``elements`` (sorted by the caller)."""
    return _meta(ExplicitVRLittleEndian) + _header_elements(label) + b"".join(elements)


def _many_values(label: str, group: int, elem: int, vr: bytes, value: bytes, count: int) -> bytes:
    """One element of ``count`` backslash-separated copies of ``value`` (a 4-byte length: UN-free VRs
    have 2-byte lengths, so the element is written as UC/UT-sized raw bytes in a long-VR form)."""
    payload = (value + b"\\") * (count - 1) + value  # no list of millions of objects
    if len(payload) % 2:
        payload += b" "
    # explicit VR text VRs have 2-byte lengths: write the element implicit-style inside a raw
    # implicit VR little endian dataset instead, which pydicom reads with the dictionary VR
    return struct.pack("<HHI", group, elem, len(payload)) + payload


def _implicit(label: str, *elements: bytes) -> bytes:
    """An implicit VR little endian Part 10 file with the usual header, then ``elements``."""
    uid = generate_uid()

    def imp(group: int, elem: int, value: bytes) -> bytes:
        if len(value) % 2:
            value += b"\0" if (group, elem) in ((0x0008, 0x0016), (0x0008, 0x0018)) else b" "
        return struct.pack("<HHI", group, elem, len(value)) + value

    head = [
        imp(0x0008, 0x0016, SC_IMAGE.encode()),
        imp(0x0008, 0x0018, uid.encode()),
        imp(0x0008, 0x0060, b"OT"),
        imp(0x0008, 0x103E, label.encode()),
    ]
    tail = [
        imp(0x0020, 0x000D, generate_uid().encode()),
        imp(0x0020, 0x000E, generate_uid().encode()),
    ]
    return _meta("1.2.840.10008.1.2", uid) + b"".join(head) + b"".join(elements) + b"".join(tail)


def _private_elements(count: int) -> bytes:
    """``count`` empty private LO elements in groups 0011, 0013, ... (61,440 per group, in order)."""
    out = bytearray()
    group = 0x0011
    left = count
    while left:
        n = min(left, 0xF000)
        out += _el(group, 0x0010, b"LO", b"BOMB")
        for elem in range(0x1000, 0x1000 + n):
            out += struct.pack("<HH2sH", group, elem, b"LO", 0)
        left -= n
        group += 2
    return bytes(out)


def _frames_of(ds: Dataset) -> list[bytes]:
    from pydicom.encaps import generate_frames

    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return list(generate_frames(ds.PixelData, number_of_frames=frames))


def _with_frames(ds: Dataset, frames: list[bytes], label: str) -> bytes:
    from pydicom.encaps import encapsulate

    out = _fresh(copy.deepcopy(ds), label)
    out.PixelData = encapsulate(frames)
    out["PixelData"].VR = "OB"
    return _save(out)


def _patch_sof(frame: bytes, rows: int, cols: int) -> bytes:
    """The JPEG/JPEG-LS frame with its SOF height and width replaced."""
    buf = bytearray(frame)
    pos = 2
    while pos + 4 < len(buf):
        marker = buf[pos + 1]
        length = struct.unpack_from(">H", buf, pos + 2)[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xF7):
            struct.pack_into(">HH", buf, pos + 5, rows, cols)
            return bytes(buf)
        pos += 2 + length
    raise ValueError("no SOF found")


def _patch_siz(frame: bytes, rows: int, cols: int) -> bytes:
    """The J2K codestream with its SIZ image size replaced (offsets kept at 0)."""
    buf = bytearray(frame)
    pos = buf.find(b"\xff\x51")
    struct.pack_into(">II", buf, pos + 6, cols, rows)
    return bytes(buf)


def _jp2_box_zero(codestream: bytes) -> bytes:
    """The codestream wrapped in JP2 boxes, the ``ftyp`` box length set to 0 (only valid for the
    last box): the 4-byte edit that made openjpeg loop forever."""
    sig = struct.pack(">I4s", 12, b"jP  ") + b"\r\n\x87\n"
    ftyp = struct.pack(">I4s4sI4s", 0, b"ftyp", b"jp2 ", 0, b"jp2 ")
    ihdr = struct.pack(">I4sIIHBBBB", 22, b"ihdr", 64, 64, 1, 15, 7, 0, 0)
    colr = struct.pack(">I4sBBBI", 15, b"colr", 1, 0, 0, 17)
    jp2h = struct.pack(">I4s", 8 + len(ihdr) + len(colr), b"jp2h") + ihdr + colr
    jp2c = struct.pack(">I4s", 8 + len(codestream), b"jp2c") + codestream
    return sig + ftyp + jp2h + jp2c


def _segmented_palette(label: str, segments: list[int]) -> bytes:
    """An 8-bit 16x16 PALETTE COLOR image whose three segmented LUTs are ``segments`` (16-bit words)."""
    ds = _fresh(pydicom.dcmread(io.BytesIO(_seed("CT_small.dcm"))), label)
    for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if keyword in ds:
            del ds[keyword]
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(256))
    data = struct.pack(f"<{len(segments)}H", *segments)
    for colour in ("Red", "Green", "Blue"):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        ds[f"{colour}PaletteColorLookupTableDescriptor"].VR = "US"
        setattr(ds, f"Segmented{colour}PaletteColorLookupTableData", data)
    return _save(ds)


def _sparse(path: Path, head: bytes, size: int) -> None:
    """Write ``head`` and extend the file to ``size`` bytes without writing them (a sparse hole)."""
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)


def _native_sparse(path: Path, label: str, rows: int, cols: int, bits: int) -> None:
    """A native image whose Pixel Data really is ``rows x cols x bits`` long, as a sparse file."""
    nbytes = rows * cols * bits // 8
    head = (
        _meta(ExplicitVRLittleEndian)
        + _header_elements(label)
        + _el(0x0028, 0x0002, b"US", struct.pack("<H", 1))
        + _el(0x0028, 0x0004, b"CS", b"MONOCHROME2")
        + _el(0x0028, 0x0010, b"US", struct.pack("<H", rows))
        + _el(0x0028, 0x0011, b"US", struct.pack("<H", cols))
        + _el(0x0028, 0x0100, b"US", struct.pack("<H", bits))
        + _el(0x0028, 0x0101, b"US", struct.pack("<H", bits))
        + _el(0x0028, 0x0102, b"US", struct.pack("<H", bits - 1))
        + _el(0x0028, 0x0103, b"US", struct.pack("<H", 0))
        + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW" if bits > 8 else b"OB", 0, nbytes)
    )
    _sparse(path, head, len(head) + nbytes)


def build_bounds_files(dest: Path) -> list[Case]:
    """Files that must be refused by the resource budget, each small on disk (kind ``bounds``).

    Deflate bombs, compressed streams whose headers claim 60,000+ pixels a side (JPEG baseline,
    JPEG lossless, JPEG-LS, JPEG 2000), a JP2 box of length 0, RLE segment tables that lie, palette
    LUTs whose segments expand to millions of entries (directly and through indirect segments),
    millions of values in one element, 491,000 private elements, and sparse native images of
    11,000² x 16 bits and 16,000² x 8 bits.

    Raises:
        FileNotFoundError: a pydicom seed file is missing.
    """
    dest.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(name: str, data: bytes | None, note: str, writer: object = None) -> None:
        path = dest / name
        if data is not None:
            path.write_bytes(data)
        cases.append(Case(name, path, "bounds", note))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        add(
            "bomb_deflate_1gb.dcm",
            _deflate_bomb("deflate bomb 1 GB", 1 << 30),
            "deflate stream inflating to 1 GB",
        )
        _sparse(dest / "bomb_deflate_sparse_4gb.dcm", _meta(DEFLATED), 4 << 30)
        add("bomb_deflate_sparse_4gb.dcm", None, "deflated syntax, then a 4 GB sparse hole")

        jpeg = pydicom.dcmread(io.BytesIO(_seed("SC_rgb_jpeg_dcmtk.dcm")))
        frame = _frames_of(jpeg)[0]
        add(
            "lie_jpeg_sof_65000.dcm",
            _with_frames(jpeg, [_patch_sof(frame, 65000, 65000)], "jpeg sof lie"),
            "JPEG baseline SOF says 65,000 x 65,000 (Rows/Columns 100)",
        )
        add(
            "lie_jpeg_sof_width.dcm",
            _with_frames(jpeg, [_patch_sof(frame, 100, 101)], "jpeg sof width"),
            "JPEG SOF width 101, Columns 100",
        )
        lossless = pydicom.dcmread(io.BytesIO(_seed("SC_rgb_jpeg_gdcm.dcm")))
        add(
            "lie_jpeg_lossless_sof3_60000.dcm",
            _with_frames(lossless, [_patch_sof(_frames_of(lossless)[0], 60000, 60000)], "jpeg lossless lie"),
            "JPEG lossless SOF3 says 60,000 x 60,000",
        )
        jls = pydicom.dcmread(io.BytesIO(_seed("MR_small_jpeg_ls_lossless.dcm")))
        add(
            "lie_jpegls_sof55_65000.dcm",
            _with_frames(jls, [_patch_sof(_frames_of(jls)[0], 65000, 65000)], "jpeg-ls lie"),
            "JPEG-LS SOF55 says 65,000 x 65,000",
        )
        j2k = pydicom.dcmread(io.BytesIO(_seed("MR_small_jp2klossless.dcm")))
        j2k_frame = _frames_of(j2k)[0]
        add(
            "lie_j2k_siz_65000.dcm",
            _with_frames(j2k, [_patch_siz(j2k_frame, 65000, 65000)], "j2k siz lie"),
            "JPEG 2000 SIZ says 65,000 x 65,000",
        )
        add(
            "lie_jp2_box_length_0.dcm",
            _with_frames(j2k, [_jp2_box_zero(j2k_frame)], "jp2 box 0"),
            "JP2 boxes with an ftyp box of length 0 (openjpeg looped forever)",
        )
        honest = copy.deepcopy(j2k)
        honest.Rows = honest.Columns = 16000
        add(
            "honest_j2k_16000.dcm",
            _with_frames(honest, [_patch_siz(j2k_frame, 16000, 16000)], "j2k 16000"),
            "JPEG 2000 whose header and stream agree on 16,000² x 16 bits",
        )
        rle = pydicom.dcmread(io.BytesIO(_seed("MR_small_RLE.dcm")))
        rle_frame = bytearray(_frames_of(rle)[0])
        struct.pack_into("<I", rle_frame, 0, 15)
        add(
            "lie_rle_15_segments.dcm",
            _with_frames(rle, [bytes(rle_frame)], "rle lie"),
            "RLE header claims 15 segments for 16-bit grey (2 expected)",
        )

        # 100 linear segments of 65,535 entries each: 6.5 million entries from 600 bytes
        add(
            "lut_segmented_linear.dcm",
            _segmented_palette("lut linear", [0, 1, 0] + [1, 65535, 65535] * 100),
            "segmented palette LUT: 100 linear segments of 65,535 entries",
        )
        # each indirect segment re-expands everything before it: 2**40 entries
        indirect = [0, 2, 0, 65535]
        for _ in range(40):
            count = 1 + (len(indirect) - 4) // 4  # every segment before this one
            indirect += [2, count, 0, 0]
        add(
            "lut_segmented_indirect.dcm",
            _segmented_palette("lut indirect", indirect),
            "segmented palette LUT: 40 nested indirect segments (2^40 entries)",
        )

        add(
            "values_ds_5m.dcm",
            _implicit("ds 5m", _many_values("", 0x0018, 0x0050, b"DS", b"1", 5_000_000)),
            "Slice Thickness with 5,000,000 DS values",
        )
        add(
            "values_window_center_5m.dcm",
            _implicit("wc 5m", _many_values("", 0x0028, 0x1050, b"DS", b"40", 5_000_000)),
            "Window Center with 5,000,000 values",
        )
        add(
            "values_pn_1m.dcm",
            _implicit("pn 1m", _many_values("", 0x0010, 0x0010, b"PN", b"A^B", 1_000_000)),
            "Patient's Name with 1,000,000 values",
        )
        add(
            "elements_private_491k.dcm",
            _plain("private 491k", _private_elements(491_000)),
            "491,000 private elements",
        )
    _native_sparse(dest / "native_11000_16bit.dcm", "native 11000", 11_000, 11_000, 16)
    add("native_11000_16bit.dcm", None, "native 11,000² x 16 bits, sparse file")
    _native_sparse(dest / "native_16000_8bit.dcm", "native 16000", 16_000, 16_000, 8)
    add("native_16000_8bit.dcm", None, "native 16,000² x 8 bits, sparse file")
    return cases


def build_special_files(dest: Path) -> list[Case]:
    """A FIFO, a symbolic link to ``/dev/zero`` and one to ``/dev/urandom`` (kind ``special``):
    opening must never block and reading must never start."""
    dest.mkdir(parents=True, exist_ok=True)
    cases = []
    os.mkfifo(dest / "fifo.dcm")
    cases.append(Case("fifo.dcm", dest / "fifo.dcm", "special", "a FIFO with no writer"))
    for name, target in (("zero.dcm", "/dev/zero"), ("urandom.dcm", "/dev/urandom")):
        if os.path.exists(target):
            os.symlink(target, dest / name)
            cases.append(Case(name, dest / name, "special", f"a symbolic link to {target}"))
    return cases
