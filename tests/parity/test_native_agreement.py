"""The pydicom-free slice reader agrees with the pydicom path on files made to tell them apart.

The default path (:func:`decode_frame`, native first) must give what the pydicom path gives: the same
frame and annotations, or the same error. Made here byte by byte: elements and garbage after the pixel
data (pydicom reads them; the fast path used to stop at the pixels), and values padded with characters
Python's ``strip()``/``float()``/``int()`` drop but pydicom keeps (tabs, form feeds, the separators
\\x1c-\\x1f), or leading spaces pydicom keeps in a code string.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_native import _differences

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from native_files import EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, el, image, us, write  # noqa: E402

from tui_dicom.core.dicom.reading import read_dataset
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.errors import DicomViewerError
from tui_dicom.core.imaging import native
from tui_dicom.core.imaging.pixels import decode_frame
from tui_dicom.core.session.slice_loader import slice_info

_PIXELS = np.arange(16, dtype="<u2").tobytes()
_OTHER = (np.arange(16, dtype="<u2") + 1000).tobytes()


def _agree(path: Path) -> bool:
    """Assert that the default path gives what the pydicom path gives; True when the fast path read it."""
    ref = FileRef(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            want: object = decode_frame(ref, 0, native=False)
        except DicomViewerError as exc:
            want = f"{type(exc).__name__}: {exc}"
        try:
            got: object = decode_frame(ref, 0)
        except DicomViewerError as exc:
            got = f"{type(exc).__name__}: {exc}"
        quick = native.read_slice(ref, 0)
        if isinstance(want, str) or isinstance(got, str):
            assert got == want
        else:
            assert not _differences(got, want)  # type: ignore[arg-type]
        if quick is not None:
            assert slice_info(quick.header, 0) == slice_info(read_dataset(ref), 0)
    return quick is not None


_AFTER = {
    "a second Pixel Data": el(0x7FE00010, b"OW", _OTHER),
    "Rows after the pixels": el(0x00280010, b"US", us(2)),
    "Rescale Slope after the pixels": el(0x00281053, b"DS", "100"),
    "garbage after the pixels": b"\x10\x00\x10\x00PN\xff\x7f",
    "an item tag after the pixels": el(0xFFFEE000, b"", b"\0" * 8),
    "a private element then garbage": el(0x7FE10010, b"LO", "X") + b"\1\2\3",
}


@pytest.mark.parametrize("kind", sorted(_AFTER))
def test_what_follows_the_pixels_is_left_to_pydicom(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path, "after", image(pixels=_PIXELS, after=_AFTER[kind]))
    assert not _agree(path)


_PADDING = {
    "NUL bytes": b"\0" * 16,
    "an odd number of NUL bytes": b"\0" * 5,
    "trailing padding (FFFC,FFFC)": el(0xFFFCFFFC, b"OB", b"\0" * 64),
    "digital signatures (FFFA,FFFA)": el(0xFFFAFFFA, b"SQ", b""),
    "a private element past the pixels": el(0x7FE10010, b"LO", "PRIVATE"),
}


_SYNTAXES = {"explicit": EXPLICIT_LE, "implicit": IMPLICIT_LE, "big endian": EXPLICIT_BE}


@pytest.mark.parametrize(
    ("kind", "syntax"),
    [(kind, "explicit") for kind in sorted(_PADDING)]
    + [("NUL bytes", "implicit"), ("NUL bytes", "big endian")],
)
def test_padding_after_the_pixels_is_read(tmp_path: Path, kind: str, syntax: str) -> None:
    ts = _SYNTAXES[syntax]
    pixels = _PIXELS if ts != EXPLICIT_BE else np.arange(16, dtype=">u2").tobytes()
    path = write(tmp_path, "padded", image(pixels=pixels, after=_PADDING[kind], ts=ts))
    assert _agree(path)


#: characters Python's str.strip(), float() and int() take for whitespace; pydicom strips only spaces
_CONTROLS = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"


def _values(template: str) -> list[str]:
    return [template.format(c) for c in _CONTROLS]


@pytest.mark.parametrize("position", ["{}40", "40{}", "40{}\\300", "4{}0"])
def test_window_centre_with_a_control_character(tmp_path: Path, position: str) -> None:
    for value in _values(position):
        windows = [(0x00281050, b"DS", value), (0x00281051, b"DS", "400\\1500" if "\\" in value else "400")]
        assert not _agree(write(tmp_path, "window", image(extra=windows)))


@pytest.mark.parametrize("position", ["{}2", "2{}"])
def test_number_of_frames_with_a_control_character(tmp_path: Path, position: str) -> None:
    for value in _values(position):
        frames = [(0x00280008, b"IS", value)]
        assert not _agree(write(tmp_path, "frames", image(extra=frames, pixels=_PIXELS + _PIXELS)))


@pytest.mark.parametrize("position", ["{}MONOCHROME2", "MONOCHROME2{}"])
def test_photometric_with_a_control_character(tmp_path: Path, position: str) -> None:
    for value in _values(position):
        assert not _agree(write(tmp_path, "photometric", image(photometric=value)))


@pytest.mark.parametrize("value", ["1_0", "inf", "nan", "1.5e", "0x10", "+-1", "1 0"])
@pytest.mark.parametrize("tag", [0x00281053, 0x00180040], ids=["Rescale Slope (DS)", "Cine Rate (IS)"])
def test_numbers_python_reads_but_dicom_does_not_allow(tmp_path: Path, value: str, tag: int) -> None:
    vr = b"DS" if tag == 0x00281053 else b"IS"
    assert not _agree(write(tmp_path, "number", image(extra=[(tag, vr, value)])))


@pytest.mark.parametrize(
    ("tag", "vr", "value"),
    [
        pytest.param(0x00281050, b"DS", "  40 \\ 300 ", id="DS with spaces"),
        pytest.param(0x00281053, b"DS", "+2.5E0", id="DS with exponent"),
        pytest.param(0x00280008, b"IS", " 01 ", id="IS with spaces and a leading zero"),
        pytest.param(0x00080060, b"CS", " CT", id="CS with a leading space"),
        pytest.param(0x00280004, b"CS", "MONOCHROME2\0", id="CS with a trailing NUL"),
    ],
)
def test_space_padding_still_read_and_kept_as_pydicom_keeps_it(
    tmp_path: Path, tag: int, vr: bytes, value: str
) -> None:
    extra = [(tag, vr, value), (0x00281051, b"DS", "400\\1500" if "\\" in value else "400")]
    assert _agree(write(tmp_path, "spaces", image(extra=extra)))


def test_code_string_values_keep_their_spaces(tmp_path: Path) -> None:
    """pydicom strips only the trailing padding of a whole CS value: "CT \\MR" stays ["CT ", "MR"]."""
    path = write(tmp_path, "modality", image(extra=[(0x00080060, b"CS", "CT \\MR")]))
    quick = native.read_slice(FileRef(str(path)), 0)
    assert quick is not None
    assert quick.header.get("Modality") == list(read_dataset(FileRef(str(path))).Modality)


@pytest.mark.parametrize(
    "charset",
    [
        b"ISO_IR 100",
        b"ISO_IR 100\0\0",
        b"\0ISO_IR 100\0",
        b"ISO_IR\0100",
        b" ISO_IR 100",
        b"ISO_IR 100\t",
        b"ISO_IR 192",
    ],
)
def test_character_set_as_pydicom_reads_it(tmp_path: Path, charset: bytes) -> None:
    """The annotations of a Latin-1 description under a padded or damaged character set name: read here
    only when the name is exact (trailing NUL and space padding aside), else left to the pydicom path."""
    described = [(0x00080005, b"CS", charset), (0x00081030, b"LO", "Ecografía ".encode("latin_1"))]
    path = write(tmp_path, "charset", image(extra=described))
    accepted = _agree(path)
    assert accepted == (charset.rstrip(b"\0 ") in (b"ISO_IR 100", b"ISO_IR 192"))
