"""Bounded fuzzing of the header readers, the DICOMDIR walker and the pixel pipeline (hypothesis).

Each example takes a real file (pydicom's test files), overwrites random bytes, plants "interesting"
32-bit values (0, 0xFFFFFFFF, 0x7FFFFFFF, ...) where lengths and sizes live, and may cut the file
short. The code under test may only succeed or raise an error of the :class:`DicomViewerError`
family (whose message is one line); any other exception is a bug.

CI budget: 2,400 examples in total (header readers 800, DICOMDIR walker 400, pixel pipeline 800, the
pydicom-free dump reader 400, which must either hand the file to pydicom or agree with it row for row),
derandomized (a fixed seed), so a run is reproducible and takes well under a minute.

A longer local run: set ``TUI_DICOM_FUZZ_EXAMPLES`` to the total you want and, for fresh inputs on
every run, ``TUI_DICOM_FUZZ_RANDOM=1``::

    TUI_DICOM_FUZZ_EXAMPLES=200000 TUI_DICOM_FUZZ_RANDOM=1 pytest tests/hostile/test_fuzz.py -x -q

A failure prints the shrunk mutation (seed file, byte edits, cut) so it can be turned into a corpus
case in ``tests/hostile_corpus.py``.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_corpus  # noqa: E402

from tui_dicom.core.dicom.source import FileRef  # noqa: E402
from tui_dicom.core.errors import DicomViewerError  # noqa: E402

TOTAL = int(os.environ.get("TUI_DICOM_FUZZ_EXAMPLES", "2000"))
RANDOM = os.environ.get("TUI_DICOM_FUZZ_RANDOM", "") not in ("", "0")
REPO = Path(__file__).resolve().parents[2]


# the whole module is slow (measured in the quick loop: hypothesis over the corpus)
pytestmark = pytest.mark.slow


def budget(share: float) -> settings:
    """Hypothesis settings for ``share`` of the total budget: derandomized unless asked otherwise."""
    return settings(
        max_examples=max(10, int(TOTAL * share)),
        derandomize=not RANDOM,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


HEADER_SEEDS = (
    "CT_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "rtplan.dcm",
    "image_dfl.dcm",
    "nested_priv_SQ.dcm",
    "no_meta.dcm",
    "ExplVR_BigEndNoMeta.dcm",
)
PIXEL_SEEDS = (
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "SC_rgb_small_odd.dcm",
    "examples_palette.dcm",
    "JPEG2000.dcm",
    "SC_rgb_rle_2frame.dcm",
)
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)


def _seeds(names: tuple[str, ...]) -> dict[str, bytes]:
    found = {}
    for name in names:
        path = hostile_corpus.testdata(name)
        if path is not None:
            found[name] = path.read_bytes()
    if not found:
        pytest.skip("pydicom test files not installed")
    return found


@st.composite
def mutations(draw: st.DrawFn, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """A seed file name and its mutated bytes."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[name])
    # mostly in the header region, where the structure is
    hot = min(len(data), 2048)
    for _ in range(draw(st.integers(0, 12))):
        pos = draw(st.integers(0, len(data) - 1)) if draw(st.booleans()) else draw(st.integers(0, hot - 1))
        data[pos] = draw(st.integers(0, 255))
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, max(0, len(data) - 4)))
        value = draw(st.sampled_from(INTERESTING))
        fmt = draw(st.sampled_from(("<I", ">I", "<H", ">H")))
        if fmt.endswith("H"):
            value &= 0xFFFF
        struct.pack_into(fmt, data, pos, value)
    if draw(st.integers(0, 4)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return name, bytes(data)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder for the mutated files."""
    return tmp_path_factory.mktemp("fuzz")


def _write(work: Path, data: bytes, name: str = "case.dcm") -> FileRef:
    path = work / name
    path.write_bytes(data)
    return FileRef(str(path))


def _one_line(exc: DicomViewerError) -> None:
    text = str(exc)
    assert text and "\n" not in text, f"{type(exc).__name__} message is not one line: {text!r}"


HEADER = _seeds(HEADER_SEEDS) if hostile_corpus.testdata("CT_small.dcm") else {}
PIXELS = _seeds(PIXEL_SEEDS) if hostile_corpus.testdata("MR_small.dcm") else {}


@budget(0.4)
@given(case=mutations(HEADER))
def test_header_readers_raise_only_our_errors(work: Path, case: tuple[str, bytes]) -> None:
    """read_dataset + tag rows (dump, inspector) and the fast indexing reader."""
    from tui_dicom.core.dicom.reading import read_dataset
    from tui_dicom.core.hierarchy.header import read_header
    from tui_dicom.core.inspector.tags import tag_rows

    _name, data = case
    ref = _write(work, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = read_dataset(ref, stop_before_pixels=False)
        except DicomViewerError as exc:
            _one_line(exc)
        else:
            rows = tag_rows(ds)
            assert all("\x1b" not in r.value and "\n" not in r.value for r in rows)
        try:
            read_header(ref)
        except DicomViewerError as exc:
            _one_line(exc)


@budget(0.2)
@given(case=mutations(HEADER))
def test_quick_dump_reader_falls_back_or_agrees_with_pydicom(work: Path, case: tuple[str, bytes]) -> None:
    """The dump reader without pydicom: on a broken file it says Fallback (and nothing else), or its
    rows are exactly those of the pydicom path, which must then read the file too."""
    from tui_dicom.core.dicom.reading import read_dataset
    from tui_dicom.core.inspector.quickdump import Fallback, read_rows
    from tui_dicom.core.inspector.tags import tag_rows

    _name, data = case
    ref = _write(work, data)
    try:
        got = read_rows(ref, stop_before_pixels=False, max_value_chars=256)
    except Fallback:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = tag_rows(read_dataset(ref, stop_before_pixels=False))
    assert got.rows == want


@budget(0.4)
@given(case=mutations(PIXELS), frame=st.integers(0, 2))
def test_pixel_pipeline_raises_only_our_errors(work: Path, case: tuple[str, bytes], frame: int) -> None:
    """decode one frame, then window and render it as the viewer and export do."""
    from tui_dicom.core.imaging.pixels import decode_frame
    from tui_dicom.core.imaging.windowing import default_window, render

    _name, data = case
    ref = _write(work, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            decoded = decode_frame(ref, frame)
        except DicomViewerError as exc:
            _one_line(exc)
            return
        picture = render(decoded, default_window(decoded) if decoded.is_grey else None, overlays=True)
    assert picture.dtype.name == "uint8"
    assert picture.shape[:2] == (decoded.rows, decoded.columns)


@pytest.fixture(scope="module")
def cd_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of pydicom's dicomdirtests CD whose DICOMDIR each example overwrites."""
    dicomdir = hostile_corpus.testdata("DICOMDIR")
    if dicomdir is None:
        pytest.skip("pydicom's dicomdirtests are not installed")
    root = tmp_path_factory.mktemp("fuzzcd") / "cd"
    shutil.copytree(dicomdir.parent, root)
    return root


DICOMDIRS: dict[str, bytes] = {}
_DICOMDIR = hostile_corpus.testdata("DICOMDIR")
if _DICOMDIR is not None:
    DICOMDIRS = {"DICOMDIR": _DICOMDIR.read_bytes()}


@pytest.mark.skipif(not DICOMDIRS, reason="tui_dicom/core/hierarchy/index.py not written yet")
@budget(0.2)
@given(case=mutations(DICOMDIRS))
def test_dicomdir_walker_never_raises(cd_copy: Path, case: tuple[str, bytes]) -> None:
    """A mutated DICOMDIR: the index returns a hierarchy (problems in ``errors``), never raises."""
    from tui_dicom.core.hierarchy.index import build_index
    from tui_dicom.core.safe import safe_text

    _name, data = case
    (cd_copy / "DICOMDIR").write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hierarchy = build_index([str(cd_copy)])
    for problem in hierarchy.errors:
        # reasons may quote raw record text; every consumer shows them through safe_text
        assert problem.reason and "\n" not in safe_text(problem.reason)
    real = {p.resolve() for p in cd_copy.rglob("*") if p.is_file()}
    for series in hierarchy.all_series():
        for inst in series.instances:
            # whatever the records say, nothing outside the CD is ever listed
            assert Path(inst.ref.path).resolve() in real, inst.ref.path
