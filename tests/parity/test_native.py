"""The pydicom-free reader of uncompressed slices (:mod:`tui_dicom.core.imaging.native`) against pydicom.

For every file of pydicom's test and charset files, pydicom-data and ``../shared/data`` that the fast
path accepts, its frame must equal the pydicom path's exactly (stored values with their dtype, modality
values, windows, geometry and every other field of the Frame), for the first and the last frame; the
annotations' values (``slice_info``) must equal those read from pydicom's header, and the inspector rows
made from the bytes it kept must equal ``tag_rows`` of pydicom's header. What it refuses is listed by kind
(compressed syntaxes, palettes, LUT sequences, enhanced objects, ...) on real files and on synthetic ones
made here for the kinds no corpus file has (float pixel data, odd bits, truncation, deflate).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from bundled import bundled
from conftest import DATA_STORE
from pydicom import dcmread
from pydicom.dataset import Dataset
from test_dump_dcmdump_parity import _files, _id

from tui_dicom.core.dicom.reading import read_dataset
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.imaging import native
from tui_dicom.core.imaging.pixels import Frame, decode_frame
from tui_dicom.core.inspector import quickdump
from tui_dicom.core.inspector.tags import DEFAULT_MAX_VALUE_CHARS, tag_rows
from tui_dicom.core.session.slice_loader import slice_info


def _corpus() -> list[Path]:
    files = _files()
    if DATA_STORE is not None and DATA_STORE.is_dir():
        files += sorted(p for p in DATA_STORE.rglob("*") if p.is_file() and p.suffix.lower() != ".py")
    return files


_FIELDS = (
    "photometric",
    "bits_stored",
    "signed",
    "is_float",
    "rescale_slope",
    "rescale_intercept",
    "modality_lut",
    "units",
    "windows",
    "voi_luts",
    "presentation_inverse",
    "palette",
    "overlays",
    "pixel_spacing",
    "aspect_ratio",
    "index",
    "number_of_frames",
    "transfer_syntax",
    "modality",
    "value_range",
    "note",
)


def _differences(got: Frame, want: Frame) -> list[str]:
    out = []
    a, b = got.stored, want.stored
    if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
        out.append(f"stored {a.dtype}{a.shape} != {b.dtype}{b.shape}")
    for name in _FIELDS:
        if getattr(got, name) != getattr(want, name):
            out.append(f"{name}: {getattr(got, name)!r} != {getattr(want, name)!r}")
    mv_got, mv_want = got.modality_values(), want.modality_values()
    if mv_got.dtype != mv_want.dtype or not np.array_equal(mv_got, mv_want):
        out.append("modality values differ")
    return out


def _check(path: Path, frame: int | None = None) -> tuple[str, list[str]]:
    """``("refused: kind", [])`` or ``("accepted", differences)`` for one file."""
    ref = FileRef(str(path))
    try:
        first = native.read_slice_or_refuse(ref, 0)
    except native.Refused as exc:
        return f"refused: {str(exc).split(':')[0]}", []
    problems: list[str] = []
    frames = [0] if first.frame.number_of_frames == 1 else [0, first.frame.number_of_frames - 1]
    if frame is not None:
        frames = [frame]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = read_dataset(ref, stop_before_pixels=True)
        for index in frames:
            got = native.read_slice_or_refuse(ref, index)
            want = decode_frame(ref, index, native=False)
            problems += [f"frame {index}: {d}" for d in _differences(got.frame, want)]
            if slice_info(got.header, index) != slice_info(header, index):
                problems.append(f"slice_info {slice_info(got.header, index)} != {slice_info(header, index)}")
        rows = tag_rows(header)
    try:
        quick = quickdump.rows_from_buffer(first.header_bytes, max_value_chars=DEFAULT_MAX_VALUE_CHARS).rows
    except quickdump.Fallback:
        quick = rows  # the loader then reads the header with pydicom
    if quick != rows:
        problems.append("inspector rows from the kept bytes differ from tag_rows")
    return "accepted", problems


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "SC_rgb.dcm",
        "SC_rgb_16bit_2frame.dcm",
        "emri_small.dcm",
        "US1_UNCR.dcm",
    ],
)
def test_bundled_files_equal_pydicom(name: str) -> None:
    status, problems = _check(Path(bundled(name)))
    assert status == "accepted"
    assert not problems, problems


def test_decode_frame_uses_the_fast_path_and_matches() -> None:
    """decode_frame returns the fast path's frame for an accepted file, equal to pydicom's."""
    ref = FileRef(bundled("CT_small.dcm"))
    fast = decode_frame(ref, 0)
    assert not _differences(fast, decode_frame(ref, 0, native=False))
    quick = native.read_slice(ref, 0)
    assert quick is not None and not _differences(fast, quick.frame)


@pytest.mark.slow
def test_every_accepted_corpus_file_equals_pydicom() -> None:
    files = _corpus()
    kinds: Counter[str] = Counter()
    mismatches = []
    for path in files:
        status, problems = _check(path)
        kinds[status] += 1
        if problems:
            mismatches.append(f"{_id(path)}: {problems[:3]}")
    assert not mismatches, "\n".join(mismatches)
    # the fast path must be worth having: most uncompressed real images go through it
    assert kinds["accepted"] >= 100, kinds


#: kinds found refused on real corpus files, each with one file that shows it
_REFUSED_REAL = {
    "JPEG baseline": ("SC_rgb_jpeg_dcmtk.dcm", "transfer syntax 1.2.840.10008.1.2.4.50"),
    "JPEG 2000": ("US1_J2KR.dcm", "transfer syntax 1.2.840.10008.1.2.4.90"),
    "RLE": ("MR_small_RLE.dcm", "transfer syntax 1.2.840.10008.1.2.5"),
    "deflate": ("image_dfl.dcm", "transfer syntax 1.2.840.10008.1.2.1.99"),
    "big endian 8-bit": ("SC_rgb_small_odd_big_endian.dcm", "big endian pixel data other than 16-bit OW"),
    "palette colour": ("OBXXXX1A.dcm", "palette colour tables"),
    "modality LUT": ("mlut_18.dcm", "modality LUT sequence"),
    "VOI LUT": ("vlut_04.dcm", "VOI LUT sequence"),
    "YBR": ("SC_ybr_full_uncompressed.dcm", "photometric interpretation YBR_FULL"),
    "overlays": ("MR-SIEMENS-DICOM-WithOverlays.dcm", "overlays"),
    "no meta group": ("no_meta.dcm", "no Part 10 meta group"),
    "no pixel data": ("rtplan.dcm", "no pixel data"),
}


@pytest.mark.parametrize("kind", sorted(_REFUSED_REAL))
def test_refused_kinds_on_real_files(kind: str) -> None:
    name, reason = _REFUSED_REAL[kind]
    try:
        path = bundled(name)
    except AssertionError:
        pytest.skip(f"pydicom's test file {name} is not installed")
    with pytest.raises(native.Refused) as info:
        native.read_slice_or_refuse(FileRef(path), 0)
    assert str(info.value).startswith(reason)
    assert native.read_slice(FileRef(path), 0) is None


def _variant(tmp_path: Path, name: str, change: object) -> Path:
    """CT_small with ``change(ds)`` applied, written as a new file."""
    ds = dcmread(bundled("CT_small.dcm"))
    assert callable(change)
    change(ds)
    out = tmp_path / f"{name}.dcm"
    ds.save_as(out, enforce_file_format=True)
    data = out.read_bytes()
    if b"7.25" in data:
        out.write_bytes(data.replace(b"7.25", b"7.2."))
    return out


def _float_pixels(ds: Dataset) -> None:
    ds.FloatPixelData = np.zeros(128 * 128, dtype="<f4").tobytes()
    del ds.PixelData
    ds.BitsAllocated = 32


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])


def _functional_groups(ds: Dataset) -> None:
    item = Dataset()
    ds.SharedFunctionalGroupsSequence = [item]


def _odd_bits(ds: Dataset) -> None:
    ds.BitsAllocated = 12


def _one_bit(ds: Dataset) -> None:
    ds.BitsAllocated = 1
    ds.BitsStored = 1
    ds.HighBit = 0
    ds.PixelRepresentation = 0
    ds.PixelData = b"\0" * (128 * 128 // 8)


def _palette(ds: Dataset) -> None:
    ds.PhotometricInterpretation = "PALETTE COLOR"


def _charset(ds: Dataset) -> None:
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = "山田^太郎"


def _bad_number(ds: Dataset) -> None:
    ds.RescaleSlope = "7.25"  # made unparsable in the written bytes (pydicom refuses to write it)


def _other_vr(ds: Dataset) -> None:
    ds["Modality"].VR = "LO"


_SYNTHETIC = {
    "float pixel data": (_float_pixels, "float pixel data"),
    "enhanced functional groups": (_functional_groups, "enhanced functional groups"),
    "odd bits": (_odd_bits, "image pixel module"),
    "1-bit": (_one_bit, "Bits Allocated 1"),
    "palette photometric": (_palette, "photometric interpretation PALETTE COLOR"),
    "ISO 2022 name": (_charset, "escape sequence in PatientName"),
    "unparsable DS": (_bad_number, "RescaleSlope is not a number"),
    "VR not the dictionary's": (_other_vr, "VR LO for Modality"),
}


@pytest.mark.parametrize("kind", sorted(_SYNTHETIC))
def test_refused_kinds_on_synthetic_files(tmp_path: Path, kind: str) -> None:
    change, reason = _SYNTHETIC[kind]
    path = _variant(tmp_path, kind.replace(" ", "_"), change)
    with pytest.raises(native.Refused) as info:
        native.read_slice_or_refuse(FileRef(str(path)), 0)
    assert str(info.value).startswith(reason), str(info.value)


def test_truncated_pixel_data_is_refused_and_pydicom_reports_it(tmp_path: Path) -> None:
    path = _variant(tmp_path, "whole", lambda ds: None)
    assert native.read_slice(FileRef(str(path)), 0) is not None
    _truncate(path)
    with pytest.raises(native.Refused, match="pixel data shorter"):
        native.read_slice_or_refuse(FileRef(str(path)), 0)
    with pytest.raises(Exception, match="bytes"):
        decode_frame(FileRef(str(path)), 0)  # the pydicom path words the error


def test_multi_frame_reads_only_the_wanted_frame(tmp_path: Path) -> None:
    """A file larger than the first read: the frame is read from its offset, equal to pydicom's."""
    path = bundled("emri_small.dcm")  # 10 frames
    for index in (0, 4, 9):
        status, problems = _check(Path(path), index)
        assert status == "accepted" and not problems, problems


def test_frame_past_the_first_read_equals_pydicom() -> None:
    """US1_UNCR (900 KB) is larger than the first read: its frame comes from a second read at its offset."""
    path = bundled("US1_UNCR.dcm")
    assert os.path.getsize(path) > native.FIRST_READ
    status, problems = _check(Path(path))
    assert status == "accepted" and not problems, problems


def _header_check(path: Path) -> list[str]:
    """For a file the fast path refuses: the rows and header the loader keeps from the one pydicom parse
    that decoded the frame equal pydicom's header-only reading (rows and annotations)."""
    from tui_dicom.core.session.slice_loader import SliceLoader

    ref = FileRef(str(path))
    loader = SliceLoader(64 * 1024**2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            loader._decode_with_pydicom(ref, 0)
        except Exception:  # noqa: BLE001 - not decodable: the loader reads the header on its own then
            return []
        header, rows = loader.headers.get(ref), loader.rows.get(ref)
        if header is None:
            return []  # decoded by decode_frame's own route (a large or broken file)
        want = read_dataset(ref, stop_before_pixels=True)
        problems = []
        if rows != tag_rows(want):
            problems.append("tag rows differ")
        if slice_info(header, 0) != slice_info(want, 0):
            problems.append("slice_info differs")
    return problems


@pytest.mark.parametrize(
    "name",
    ["SC_rgb_jpeg_dcmtk.dcm", "US1_J2KR.dcm", "MR_small_RLE.dcm", "liver_expb_1frame.dcm", "badVR.dcm"],
)
def test_compressed_slice_header_from_the_decoding_parse(name: str) -> None:
    assert not _header_check(Path(bundled(name)))


@pytest.mark.slow
def test_every_refused_corpus_file_header_from_the_decoding_parse() -> None:
    mismatches = []
    for path in _corpus():
        if _check(path)[0] == "accepted":
            continue
        problems = _header_check(path)
        if problems:
            mismatches.append(f"{_id(path)}: {problems}")
    assert not mismatches, "\n".join(mismatches)


def _padded_values(ds: Dataset) -> None:
    ds.Modality = " CT"
    ds.StudyDescription = " head \\ neck "
    ds.SeriesNumber = " 05"
    ds.PatientID = " id 7 "
    ds.WindowCenter = ["40", " 400 "]
    ds.WindowWidth = ["350", "2000"]
    ds.WindowCenterWidthExplanation = [" soft ", "bone "]


def test_padded_and_multi_values_read_as_pydicom_reads_them(tmp_path: Path) -> None:
    """Leading spaces, several values and IS written with a leading zero: the fast path's values (frame
    windows, annotations) are pydicom's."""
    path = _variant(tmp_path, "padded", _padded_values)
    status, problems = _check(path)
    assert status == "accepted" and not problems, problems
    assert native.read_slice_or_refuse(FileRef(str(path))).header.get("Modality") == " CT"
