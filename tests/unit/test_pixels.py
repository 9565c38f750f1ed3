"""Decoding one frame: stored values, transfer syntaxes, colour, palettes, enhanced MR, errors.

References are pydicom's own functions and the raw bytes of real files; synthetic datasets only for
header lies and edge cases.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from tui_dicom.core.dicom.reading import read_dataset
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.errors import PixelDataError, UnsupportedTransferSyntax
from tui_dicom.core.imaging import pixels
from tui_dicom.core.imaging.pixels import PixelInfo, decode_frame

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _pydicom_file(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} not available")
    return str(path)


def _store(name: str) -> str:
    try:
        import data_store
    except ImportError:
        pytest.skip("pydicom-data not installed")
    path = Path(os.path.dirname(data_store.__file__)) / "data" / name
    if not path.exists():
        pytest.skip(f"pydicom-data file {name} not available")
    return str(path)


def _shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"../shared/data/{rel} not available")
    return path


def _pydicom_array(path: str, index: int | None = None) -> np.ndarray:
    from pydicom.pixels.utils import pixel_array

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pixel_array(pydicom.dcmread(path), index=index)


# ------------------------------------------------------------------ stored values


def test_nine_transfer_syntaxes_give_identical_stored_values() -> None:
    folder = _shared("dcm_qa_ts/In")
    files = sorted(folder.glob("*.dcm"))
    assert len(files) == 9
    syntaxes = set()
    ref = decode_frame(FileRef(str(files[0]))).stored
    for f in files:
        frame = decode_frame(FileRef(str(f)))
        syntaxes.add(frame.transfer_syntax)
        assert frame.stored.dtype == ref.dtype
        assert np.array_equal(frame.stored, ref), f.name
    assert len(syntaxes) >= 6  # LE/implicit/BE/RLE/JPEG lossless/JPEG-LS/J2K


def test_ct_hounsfield_equals_pydicom_modality_lut() -> None:
    from pydicom.pixels.processing import apply_modality_lut

    path = sorted(_shared("ge_ct_head").glob("*.dcm"))[3]
    ds = pydicom.dcmread(path)
    expected = apply_modality_lut(ds.pixel_array, ds)
    frame = decode_frame(FileRef(str(path)))
    assert frame.units == "HU"
    assert np.array_equal(frame.modality_values(), expected)
    assert frame.modality_values().min() < -900  # air is about -1000 HU


def test_twelve_bit_masking_and_sign_extension_from_raw_bytes() -> None:
    folder = _shared("dcm_qa_12bit/In")
    for name, signed in (("12bitUnsigned_0x0F0F.dcm", False), ("12bitSigned_0x0F0F.dcm", True)):
        ds = pydicom.dcmread(folder / name)
        raw = np.frombuffer(ds.PixelData, "<u2").reshape(ds.Rows, ds.Columns).astype(np.int64)
        expected = raw & 0x0FFF
        if signed:
            expected = (expected ^ 0x800) - 0x800
        stored = decode_frame(FileRef(str(folder / name))).stored
        assert np.array_equal(stored, expected), name
        assert stored.max() <= 4095 and stored.min() >= (-2048 if signed else 0)
    # the stripes of 0x0F0F read as 3855 unsigned and -241 signed
    assert 3855 in decode_frame(FileRef(str(folder / "12bitUnsigned_0x0F0F.dcm"))).stored
    assert -241 in decode_frame(FileRef(str(folder / "12bitSigned_0x0F0F.dcm"))).stored


def _info(**kw: object) -> PixelInfo:
    base = dict(
        rows=1,
        columns=4,
        samples=1,
        bits_allocated=16,
        bits_stored=12,
        high_bit=11,
        signed=False,
        photometric="MONOCHROME2",
        planar=0,
        frames=1,
        keyword="PixelData",
        transfer_syntax=ExplicitVRLittleEndian,
    )
    base.update(kw)
    return PixelInfo(**base)  # type: ignore[arg-type]  # base: PixelInfo's fields, mixed types


def test_mask_by_hand() -> None:
    raw = np.array([[0xF800, 0x0FFF, 0x0800, 0x07FF]], dtype=np.uint16)
    assert pixels._mask_stored(raw, _info(), True).tolist() == [[0x800, 4095, 2048, 2047]]
    assert pixels._mask_stored(raw, _info(signed=True), True).tolist() == [[-2048, -1, -2048, 2047]]
    # High Bit 15 with 12 bits stored: the value sits in the top bits
    top = np.array([[0xFFF0, 0x0010, 0x8000, 0x0000]], dtype=np.uint16)
    assert pixels._mask_stored(top, _info(high_bit=15), True).tolist() == [[4095, 1, 2048, 0]]
    assert pixels._mask_stored(top, _info(high_bit=15, signed=True), True).tolist() == [[-1, 1, -2048, 0]]


# ------------------------------------------------------------------ syntaxes and colour


@pytest.mark.parametrize(
    "name",
    [
        "MR_small.dcm",
        "MR_small_RLE.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "JPEG-LL.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "SC_rgb_rle_16bit.dcm",
        "image_dfl.dcm",
        "SC_ybr_full_uncompressed.dcm",
        "SC_ybr_full_422_uncompressed.dcm",
        "US1_J2KR.dcm",
        "GDCMJ2K_TextGBR.dcm",
        "JPEGLSNearLossless_16.dcm",
    ],
)
def test_decoded_like_pydicom(name: str) -> None:
    """Stored values equal pydicom's pixel_array (which also converts YBR to RGB)."""
    try:
        path = _pydicom_file(name)
    except pytest.skip.Exception:
        path = _store(name)
    frame = decode_frame(FileRef(path))
    expected = _pydicom_array(path, index=0)
    assert np.array_equal(frame.stored, expected)
    if frame.stored.ndim == 3:
        assert frame.photometric == "RGB"


def test_multiframe_decodes_only_the_asked_frame() -> None:
    path = _store("color3d_jpeg_baseline.dcm")
    frame = decode_frame(FileRef(path), 60)
    assert frame.index == 60 and frame.number_of_frames == 120
    assert frame.stored.shape == (480, 640, 3)
    assert np.array_equal(frame.stored, _pydicom_array(path, index=60))


def test_header_only_dataset_and_zip_member(tmp_path: Path) -> None:
    path = _pydicom_file("emri_small.dcm")
    ref = FileRef(path)
    header = read_dataset(ref)  # stop_before_pixels
    a = decode_frame(ref, 4, header)
    b = decode_frame(ref, 4)
    assert np.array_equal(a.stored, b.stored)
    assert np.array_equal(a.stored, _pydicom_array(path, index=4))
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(path, "dir/emri.dcm")
    c = decode_frame(FileRef(str(archive), "dir/emri.dcm"), 4)
    assert np.array_equal(c.stored, b.stored)


def test_palette_colour_equals_pydicom_color_lut() -> None:
    from pydicom.pixels.processing import apply_color_lut

    from tui_dicom.core.imaging.windowing import render

    for path in (_store("OBXXXX1A.dcm"), _store("OBXXXX1A_expb.dcm"), _store("gdcm-US-ALOKA-16.dcm")):
        # pydicom reads big-endian palette tables in the wrong byte order: use the little-endian twin
        ds = pydicom.dcmread(path.replace("_expb", ""))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = apply_color_lut(ds.pixel_array, ds)[..., :3]
        if expected.dtype == np.uint16:  # 16-bit entries to 8 bits
            expected = np.floor(expected / 257 + 0.5).astype(np.uint8)
        frame = decode_frame(FileRef(path))
        assert frame.photometric == "PALETTE COLOR" and frame.palette is not None
        got = render(frame)
        assert got.shape == expected.shape
        assert int(np.abs(got.astype(int) - expected.astype(int)).max()) <= 1, path


def test_supplemental_palette_colours_only_its_range() -> None:
    from tui_dicom.core.imaging.windowing import render

    frame = decode_frame(FileRef(_store("eCT_Supplemental.dcm")))
    pal = frame.palette
    assert pal is not None and pal.supplemental and frame.photometric == "MONOCHROME2"
    out = render(frame)
    inside = (frame.stored >= pal.first_mapped) & (frame.stored < pal.first_mapped + len(pal.rgb))
    assert inside.any() and (~inside).any()
    assert np.array_equal(out[inside], pal.rgb[frame.stored[inside] - pal.first_mapped])
    assert (out[~inside][:, 0] == out[~inside][:, 2]).all()


@pytest.mark.slow
def test_enhanced_mr_per_frame_rescale_and_window() -> None:
    path = _shared("dcm_qa_enh/In/Philips/IM_0027_fMAP.dcm")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    for index in (0, 40):
        item = ds.PerFrameFunctionalGroupsSequence[index]
        pvt = item.PixelValueTransformationSequence[0]
        voi = item.FrameVOILUTSequence[0]
        frame = decode_frame(FileRef(str(path)), index)
        assert frame.rescale_slope == pytest.approx(float(pvt.RescaleSlope))
        assert frame.rescale_intercept == pytest.approx(float(pvt.RescaleIntercept))
        assert frame.windows[0].center == pytest.approx(float(voi.WindowCenter))
        assert frame.windows[0].width == pytest.approx(float(voi.WindowWidth))
        raw = _pydicom_array(str(path), index=index)
        assert np.allclose(
            frame.modality_values(), raw * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)
        )
    xa = _shared("dcm_qa_enh/In/Siemens/XA10/6_1.dcm")
    frame = decode_frame(FileRef(str(xa)), 5)
    assert frame.number_of_frames == 6 and frame.windows


def test_twelve_bit_jpeg_extended_via_gdcm_matches_dcmtk(tmp_path: Path) -> None:
    import shutil
    import subprocess

    pytest.importorskip("gdcm")
    path = _pydicom_file("JPEG-lossy.dcm")
    frame = decode_frame(FileRef(path))
    assert frame.stored.shape == (1024, 256)
    if shutil.which("dcmdjpeg") is None:
        pytest.skip("dcmdjpeg not installed")
    out = tmp_path / "plain.dcm"
    subprocess.run(["dcmdjpeg", path, str(out)], check=True)
    assert np.array_equal(frame.stored, pydicom.dcmread(out).pixel_array)


def test_jpeg_extended_without_gdcm_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pixels, "_gdcm_available", lambda: False)
    with pytest.raises(UnsupportedTransferSyntax) as err:
        decode_frame(FileRef(_pydicom_file("JPEG-lossy.dcm")))
    msg = str(err.value)
    assert "JPEG Extended (1.2.840.10008.1.2.4.51)" in msg and "pip install 'tui-dicom[gdcm]'" in msg
    assert "\n" not in msg


# ------------------------------------------------------------------ hostile headers


def _write(tmp_path: Path, **attrs: object) -> FileRef:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    ds.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3.4")
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.Modality = "OT"
    ds.Rows, ds.Columns = 4, 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.arange(16, dtype="<u2").tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    path = tmp_path / "x.dcm"
    ds.save_as(path, enforce_file_format=True)
    return FileRef(str(path))


def test_synthetic_baseline_decodes(tmp_path: Path) -> None:
    frame = decode_frame(_write(tmp_path))
    assert frame.stored.tolist() == np.arange(16).reshape(4, 4).tolist()


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"Rows": 60000, "Columns": 60000}, "13,700"),
        ({"Rows": 64}, "pixel data is 32 bytes, 512 expected"),
        ({"NumberOfFrames": 100000}, "expected"),
        ({"SamplesPerPixel": 7}, "Samples per Pixel 7"),
        ({"BitsAllocated": 13}, "Bits Allocated 13"),
        ({"BitsStored": 20}, "Bits Stored 20"),
        ({"PhotometricInterpretation": "HSV"}, "HSV"),
    ],
)
def test_header_lies_are_refused_before_allocating(
    tmp_path: Path, attrs: dict[str, object], message: str
) -> None:
    from tui_dicom.core.limits import LimitExceeded

    ref = _write(tmp_path, **attrs)
    with pytest.raises((PixelDataError, LimitExceeded)) as err:
        decode_frame(ref)
    text = str(err.value)
    assert "\n" not in text
    if message == "13,700":  # a 60000x60000 frame is refused by size, whatever the bytes
        assert isinstance(err.value, LimitExceeded) and "exceeds the limit" in text and "x.dcm" in text
    else:
        assert message in text


def test_truncated_pixel_data_says_how_much(tmp_path: Path) -> None:
    with pytest.raises(PixelDataError, match=r"pixel data is 8,130 bytes, 8,192 expected"):
        decode_frame(FileRef(_pydicom_file("MR_truncated.dcm")))


def test_frame_out_of_range() -> None:
    with pytest.raises(PixelDataError, match="frame 11 does not exist"):
        decode_frame(FileRef(_pydicom_file("emri_small.dcm")), 10)


def test_broken_jpeg2000_is_one_line() -> None:
    with pytest.raises(PixelDataError) as err:
        decode_frame(FileRef(_pydicom_file("JPEG2000-embedded-sequence-delimiter.dcm")))
    assert "JPEG 2000" in str(err.value) and "\n" not in str(err.value)


def test_frame_nbytes_and_probe() -> None:
    frame = decode_frame(FileRef(_pydicom_file("CT_small.dcm")))
    assert frame.nbytes >= frame.stored.nbytes
    value, units = frame.value_at(0, 0)
    assert units == "HU"
    assert value == pytest.approx(float(frame.modality_values()[0, 0]))


def test_truncated_multiframe_shows_its_complete_frames(tmp_path: Path) -> None:
    """pydicom-data's ``..._too_short.dcm`` lacks the end of its pixel data: pydicom reads it as an empty
    dataset, and the viewer said "no pixel data". Its frames are all there: each decodes exactly as
    in the complete twin, with a note that the file is cut short. Cut again in the middle of frame 6,
    frames 1-5 still decode and each later frame names the cut and how many frames are complete."""
    import warnings

    import pydicom
    from pydicom.encaps import generate_fragments

    from tui_dicom.core.errors import PixelDataError

    short = _store("emri_small_jpeg_2k_lossless_too_short.dcm")
    whole = _store("emri_small_jpeg_2k_lossless.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(pydicom.dcmread(short)) == 0  # what made "no pixel data in this file"
        reference = pydicom.dcmread(whole).pixel_array
    frames = reference.shape[0]
    for i in range(frames):
        got = decode_frame(FileRef(short), i)
        assert np.array_equal(got.stored, reference[i]), i
        assert (
            got.note == f"the file is cut short (its pixel data has no end); all {frames} frames are complete"
        )
    assert decode_frame(FileRef(whole), 0).note == ""

    # cut in the middle of the 6th fragment (one fragment per frame, no offset table: pydicom's own reading)
    data = Path(whole).read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(whole)
    fragments = list(generate_fragments(ds.PixelData))[1:]  # after the (empty) offset table
    assert len(fragments) == frames
    start = data.index(fragments[5])
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: start + len(fragments[5]) // 2])
    for i in range(5):
        assert np.array_equal(decode_frame(FileRef(str(cut)), i).stored, reference[i]), i
    for i in range(5, frames):
        with pytest.raises(PixelDataError) as info:
            decode_frame(FileRef(str(cut)), i)
        assert str(info.value) == (
            f"frame {i + 1} of {frames} is cut off: the file ends inside its pixel data (only frames 1–5 are complete)"
        )
    # cut before any frame is whole
    first = tmp_path / "first.dcm"
    first.write_bytes(data[: data.index(fragments[0]) + 100])
    with pytest.raises(PixelDataError, match="before frame 1 of 10 is complete"):
        decode_frame(FileRef(str(first)), 0)
