"""Per-file bounds in the core: the one opener, deflate inflated under a cap, segmented LUTs counted
before expansion, values and elements bounded before conversion, format characters escaped, and
32/64-bit images with a narrow range windowed without overflow."""

from __future__ import annotations

import os
import struct
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_corpus  # noqa: E402

from tui_dicom.core import limits
from tui_dicom.core.dicom.reading import read_dataset
from tui_dicom.core.dicom.source import FileRef, NotRegularFile, open_regular
from tui_dicom.core.errors import PixelDataError
from tui_dicom.core.imaging.pixels import decode_frame, segmented_lut_entries
from tui_dicom.core.imaging.windowing import render
from tui_dicom.core.safe import safe_text


@pytest.fixture(autouse=True)
def _limits() -> Iterator[None]:
    saved = limits.current()
    yield
    limits.set_limits(saved)


def test_open_regular_refuses_fifo_without_blocking_and_devices(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile, match="FIFO"):
        open_regular(fifo)  # a plain open() would wait for a writer forever
    link = tmp_path / "null.dcm"
    os.symlink(os.devnull, link)
    with pytest.raises(NotRegularFile, match="character device"):
        open_regular(link)
    with pytest.raises(NotRegularFile, match="folder"):
        open_regular(tmp_path)
    good = hostile_corpus.good_file(tmp_path)
    with open_regular(good) as fh:
        assert fh.read(132)[128:] == b"DICM"
        assert os.get_blocking(fh.fileno())


def test_deflate_bomb_stops_at_the_cap(tmp_path: Path) -> None:
    limits.set_limits(limits.Limits(inflated_bytes=8 * 1024**2))
    path = tmp_path / "bomb.dcm"
    path.write_bytes(hostile_corpus._deflate_bomb("bomb", 64 * 1024**2))
    with pytest.raises(limits.LimitExceeded, match="inflated-bytes") as err:
        read_dataset(FileRef(str(path)))
    assert err.value.dimension == "inflated_bytes" and "bomb.dcm" in str(err.value)


def test_deflated_file_reads_like_pydicom() -> None:
    path = hostile_corpus.testdata("image_dfl.dcm")
    if path is None:
        pytest.skip("pydicom's image_dfl.dcm not available")
    ours = read_dataset(FileRef(str(path)), stop_before_pixels=False)
    theirs = pydicom.dcmread(path)
    assert ours == theirs and ours.file_meta == theirs.file_meta
    assert np.array_equal(ours.pixel_array, theirs.pixel_array)


@pytest.mark.slow
def test_values_and_elements_bounded_before_conversion(tmp_path: Path) -> None:
    path = tmp_path / "many.dcm"
    path.write_bytes(
        hostile_corpus._implicit(
            "many", hostile_corpus._many_values("", 0x0010, 0x0010, b"PN", b"A^B", 300_000)
        )
    )
    with pytest.raises(limits.LimitExceeded, match="values in one multi-valued element: 300,000"):
        read_dataset(FileRef(str(path)))
    limits.set_limits(limits.Limits(element_values=400_000))
    assert len(str(read_dataset(FileRef(str(path))).PatientName)) > 1_000_000
    limits.set_limits(limits.Limits(dataset_elements=1_000))
    many = tmp_path / "private.dcm"
    many.write_bytes(hostile_corpus._plain("private", hostile_corpus._private_elements(5_000)))
    with pytest.raises(limits.LimitExceeded, match="elements in one dataset"):
        read_dataset(FileRef(str(many)))


def _words(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}H", *values)


def test_segmented_lut_counted_like_pydicom_expands() -> None:
    from pydicom.pixels.processing import _expand_segmented_lut

    table = [0, 3, 10, 20, 30, 1, 4, 70, 2, 2, 0, 0]  # discrete, linear, indirect (the first two)
    data = _words(*table)
    expected = len(_expand_segmented_lut(tuple(table), "<H"))
    assert segmented_lut_entries(data, 16, True, 65536) == expected == 14
    bomb = [0, 1, 0] + [1, 65535, 65535] * 100
    with pytest.raises(limits.LimitExceeded, match="lookup table"):
        segmented_lut_entries(_words(*bomb), 16, True, 65536)
    loop = [0, 1, 5, 2, 2, 0, 0]  # an indirect segment that includes itself
    with pytest.raises((PixelDataError, limits.LimitExceeded)):
        segmented_lut_entries(_words(*loop), 16, True, 65536)


def test_every_unicode_format_character_is_escaped() -> None:
    assert safe_text("a\u200bb") == "a\\u200bb"
    assert safe_text("\u202eevil") == "\\u202eevil"
    assert safe_text("x\U000e0041") == "x\\U000e0041"
    missed = [
        hex(c)
        for c in range(0x110000)
        if unicodedata.category(chr(c)) == "Cf" and safe_text(chr(c)) == chr(c)
    ]
    assert not missed
    assert safe_text("Müller^Jörg 山田") == "Müller^Jörg 山田"


@pytest.mark.parametrize(
    ("bits", "signed", "base"),
    [(32, False, 4294967290), (32, True, -2147483600), (64, False, 2**40), (64, True, -(2**40))],
)
def test_wide_integers_with_a_narrow_range_render(tmp_path: Path, bits: int, signed: bool, base: int) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = int(signed)
    dtype = f"<{'i' if signed else 'u'}{bits // 8}"
    values = np.array([base + v % 5 for v in range(64)], dtype=object).astype(dtype).reshape(8, 8)
    ds.PixelData = values.tobytes()
    path = tmp_path / "wide.dcm"
    ds.save_as(path, enforce_file_format=True)
    picture = render(decode_frame(FileRef(str(path))))
    assert picture.shape[:2] == (8, 8)
    low = values == values.min()
    high = values == values.max()
    assert picture[low].max() < picture[high].min()  # the range is spread over the grey levels


def test_wide_integers_beyond_float_precision_still_render(tmp_path: Path) -> None:
    """Values near 2**63 lose their differences as floats; the picture may be flat, never an error."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 64
    ds.HighBit = 63
    ds.PixelRepresentation = 0
    ds.PixelData = np.arange(2**63 + 10, 2**63 + 26, dtype=np.uint64).astype("<u8").tobytes()
    path = tmp_path / "huge.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert render(decode_frame(FileRef(str(path)))).shape[:2] == (4, 4)


def test_zip_member_read_is_bounded_even_when_its_header_lies(tmp_path: Path) -> None:
    """A ZIP member is read whole to be decoded: at most ``file_bytes``, whatever its header says."""
    import zipfile

    from tui_dicom.core.dicom.source import open_ref

    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("x.dcm", "w") as fh:
        for _ in range(16):
            fh.write(b"\0" * (1 << 20))
    limits.set_limits(limits.Limits(file_bytes=4 * 1024**2))
    with pytest.raises(limits.LimitExceeded, match="file-bytes") as err:
        open_ref(FileRef(str(archive), "x.dcm"))
    assert "bomb.zip!x.dcm" in str(err.value)
    # a header claiming a small size does not help: the stream is cut at the limit
    raw = bytearray(archive.read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        pos = raw.find(sig)
        offset = 22 if sig == b"PK\x03\x04" else 24
        struct.pack_into("<I", raw, pos + offset, 1000)
    archive.write_bytes(bytes(raw))
    from tui_dicom.core.dicom import source

    source._zip_cache.clear()
    with pytest.raises((limits.LimitExceeded, ValueError)):
        open_ref(FileRef(str(archive), "x.dcm"))
