"""The pydicom-free slice reader under hostile input: it respects every per-file limit the pydicom path
applies (values per element, elements per sequence item) without spending the memory first, and it
refuses what pydicom's decoder refuses, so that the pydicom path reports it in its own words."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from native_files import IMPLICIT_LE, RAW, el, image, item, sequence, us, write  # noqa: E402

from tui_dicom.core import limits
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.errors import DicomViewerError, PixelDataError
from tui_dicom.core.imaging import native
from tui_dicom.core.imaging.pixels import decode_frame


@pytest.fixture
def low_limits() -> Iterator[None]:
    """Small limits, so that files over them stay small; the defaults come back afterwards."""
    before = limits.current()
    limits.set_limits(limits.Limits(element_values=4, dataset_elements=12))
    try:
        yield
    finally:
        limits.set_limits(before)


def _errors(path: Path) -> tuple[str, str]:
    """The error of the default path (native first) and of the pydicom path, each as ``Type: message``."""
    out = []
    for use_native in (True, False):
        with pytest.raises(DicomViewerError) as info:
            decode_frame(FileRef(str(path)), 0, native=use_native)
        out.append(f"{type(info.value).__name__}: {info.value}")
    return out[0], out[1]


def _refused(path: Path) -> str:
    with pytest.raises(native.Refused) as info:
        native.read_slice_or_refuse(FileRef(str(path)), 0)
    return str(info.value)


@pytest.mark.parametrize(
    ("tag", "vr", "value"),
    [
        pytest.param(0x00281050, b"DS", "1\\2\\3\\4\\5", id="window centre (DS, read)"),
        pytest.param(0x00280008, b"IS", "1\\1\\1\\1\\1", id="number of frames (IS, read)"),
        pytest.param(0x00181310, b"US", us(1, 2, 3, 4, 5), id="acquisition matrix (US, skipped)"),
        pytest.param(0x00080008, b"CS", "A\\B\\C\\D\\E", id="image type (CS, skipped)"),
    ],
)
def test_values_over_the_limit_give_the_pydicom_message(
    tmp_path: Path, low_limits: None, tag: int, vr: bytes, value: bytes | str
) -> None:
    """Five values over a limit of four: refused whether the fast path reads the element or skips it,
    and the user sees the pydicom path's one-line LimitExceeded."""
    path = write(tmp_path, "values", image(extra=[(tag, vr, value)]))
    assert "element_values" in _refused(path)
    got, want = _errors(path)
    assert got == want
    assert got.startswith("LimitExceeded:") and "values in one multi-valued element: 5" in got


def test_several_values_within_the_limits_are_read(tmp_path: Path) -> None:
    windows = [(0x00281050, b"DS", "40\\300"), (0x00281051, b"DS", "400\\1500"), (0x00080008, b"CS", "A\\B")]
    path = write(tmp_path, "two", image(extra=windows))
    quick = native.read_slice(FileRef(str(path)), 0)
    assert quick is not None and len(quick.frame.windows) == 2


_CHILD = r"""
import resource, sys, time
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.imaging import native
start = time.process_time()
try:
    native.read_slice_or_refuse(FileRef(sys.argv[1]), 0)
    print("accepted")
except native.Refused as exc:
    print("refused", exc)
print(time.process_time() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_seven_million_values_cost_no_memory(tmp_path: Path) -> None:
    """A 14 MB implicit VR file whose Window Center holds 7.5 million values took 3 GB and 20 s of CPU
    before the count; now it is refused before any value is converted (the default limits)."""
    text = "0\\" * 7_500_000
    path = write(tmp_path, "many", image(extra=[(0x00281050, b"DS", text[:-1])], ts=IMPLICIT_LE))
    baseline = subprocess.run(
        [sys.executable, "-c", "import resource, tui_dicom.core.imaging.native; "
         "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True
    )
    verdict, figures = run.stdout.strip().splitlines()
    cpu, rss_kib = float(figures.split()[0]), int(figures.split()[1])
    assert verdict.startswith("refused") and "element_values" in verdict
    assert cpu < 1.0
    # the file itself (14 MB) is read once; 7.5 million floats would be ~600 MB and more
    assert rss_kib - int(baseline.stdout) < 100 * 1024


def _item_file(tmp_path: Path, elements: int, undefined: bool) -> Path:
    inner = b"".join(el(0x00081150 + i, b"UI", "1.2") for i in range(elements))
    seq = sequence(0x00081140, item(inner, undefined=undefined), undefined=undefined)
    path: Path = write(tmp_path, "item", image(extra=[(0x00081140, RAW, seq)]))
    return path


def test_sequence_item_over_dataset_elements(tmp_path: Path, low_limits: None) -> None:
    """13 elements in one item over a limit of 12: pydicom's reader refuses the file; so does the fast path."""
    path = _item_file(tmp_path, 13, undefined=True)
    assert "dataset_elements" in _refused(path)
    got, want = _errors(path)
    assert got == want and "elements in one dataset or sequence item" in got


def test_long_defined_length_sequence_goes_to_pydicom(tmp_path: Path, low_limits: None) -> None:
    """pydicom keeps a defined-length sequence unparsed (it counts nothing in it): the fast path, which
    cannot tell without walking it, leaves it to the pydicom path, which shows the picture."""
    path = _item_file(tmp_path, 13, undefined=False)
    assert "dataset_elements" in _refused(path)
    assert decode_frame(FileRef(str(path)), 0).stored.shape == (4, 4)


@pytest.mark.parametrize("undefined", [False, True], ids=["defined length", "undefined length"])
def test_small_sequence_is_still_read(tmp_path: Path, undefined: bool) -> None:
    assert native.read_slice(FileRef(str(_item_file(tmp_path, 2, undefined))), 0) is not None


def test_more_than_64_kb_after_the_pixels_goes_to_pydicom(tmp_path: Path) -> None:
    padding = el(0xFFFCFFFC, b"OB", b"\1" * (65 * 1024))
    path = write(tmp_path, "padding", image(after=padding))
    assert "64 KB" in _refused(path)
    assert decode_frame(FileRef(str(path)), 0).stored.shape == (4, 4)  # the pydicom path shows it


#: Image Pixel values pydicom's decoder refuses (pixels.pixel_info would fill in or normalise them)
_LENIENT = {
    "RGB without Planar Configuration": {"samples": 3, "bits": 8, "photometric": "RGB"},
    "Planar Configuration 2": {"samples": 3, "bits": 8, "photometric": "RGB", "planar": 2},
    "no Photometric Interpretation": {"drop": [0x00280004]},
    "lower-case photometric": {"photometric": "monochrome2"},
    "photometric with a leading space": {"photometric": " MONOCHROME2"},
    "multi-valued photometric": {"photometric": "MONOCHROME2\\RGB"},
    "no Samples per Pixel": {"drop": [0x00280002]},
    "empty Samples per Pixel": {"extra": [(0x00280002, b"US", b"")]},
    "no Bits Stored": {"drop": [0x00280101]},
    "Bits Stored 0": {"stored": 0},
    "no Pixel Representation": {"drop": [0x00280103]},
    "Pixel Representation 2": {"representation": 2},
    "multi-valued Rows": {"extra": [(0x00280010, b"US", us(4, 2))]},
    "multi-valued Bits Allocated": {"extra": [(0x00280100, b"US", us(16, 16))]},
    "multi-valued Pixel Representation": {"extra": [(0x00280103, b"US", us(0, 0))]},
    "Pixel Data with VR US": {"pixel_vr": b"US", "pixels": bytes(32)},
    "unknown VR in the file meta group": {"meta_vr": b"UY"},
}


@pytest.mark.parametrize("kind", sorted(_LENIENT))
def test_what_pydicom_refuses_is_refused(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path, "lenient", image(**_LENIENT[kind]))  # type: ignore[arg-type]
    _refused(path)
    got, want = _errors(path)
    assert got == want  # the pydicom path's error, not a picture
    assert got.split(":")[0] in ("PixelDataError", "HeaderError")


def test_pixel_data_error_type_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "no_bits", image(drop=[0x00280101]))
    with pytest.raises(PixelDataError, match="Bits Stored"):
        decode_frame(FileRef(str(path)), 0)
