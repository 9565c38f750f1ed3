"""``--cache-mb`` is an honest bound: the slice loader's caches count every byte a cached slice keeps.

What a cached slice really retains is measured independently of the loader's own counting: Python and
numpy allocations with ``tracemalloc``, plus the size of any memory mapping its arrays live in (those are
not allocations ``tracemalloc`` sees). Real slices: the GE head CT (uncompressed, read without pydicom,
its header values and bytes kept beside the frame) and pydicom's test files.
"""

from __future__ import annotations

import gc
import mmap
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA
from pydicom.data import get_testdata_file

from tui_dicom.core.cache import OWN_PAGES_FROM, own_pages
from tui_dicom.core.dicom.reading import read_dataset
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.hierarchy.model import Instance, SliceRef
from tui_dicom.core.inspector import quickdump
from tui_dicom.core.inspector.tags import DEFAULT_MAX_VALUE_CHARS, TagRow, tag_rows
from tui_dicom.core.session.slice_loader import SliceLoader, SliceRequest, rows_nbytes

CT = SHARED_DATA / "ge_ct_head"
needs_ct = pytest.mark.skipif(not CT.is_dir(), reason=f"real data not found: {CT}")


def _ct_slices() -> list[SliceRef]:
    return [SliceRef(Instance(FileRef(str(p)))) for p in sorted(CT.glob("*.dcm"))]


def _mapping(arr: np.ndarray) -> mmap.mmap | None:
    """The memory mapping ``arr``'s memory lives in, if any."""
    base: object = arr
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return base if isinstance(base, mmap.mmap) else None


def _mapped_bytes(loader: SliceLoader) -> int:
    """Bytes of the memory mappings the loader's cached frames and pictures live in (not traced)."""
    maps: dict[int, int] = {}
    arrays = [entry.frame.stored for entry in loader.frames.values()] + loader.pictures.values()
    for arr in arrays:
        m = _mapping(arr)
        if m is not None:
            maps[id(m)] = len(m)
    return sum(maps.values())


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def _retained(before: int, loader: SliceLoader) -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before + _mapped_bytes(loader)


def _warm(slices: list[SliceRef]) -> None:
    """Import and fill the module-level tables (dictionary, windowing) a first load would charge."""
    warm = SliceLoader(64 * 1024**2)
    for sl in slices:
        warm.load(SliceRequest(0, sl))


@needs_ct
def test_a_cached_native_slice_counts_its_header_values_and_bytes(traced: None) -> None:
    # the header values and bytes an uncompressed slice brings along stay beside its frame and are counted
    # with it (they were kept in a store of their own, counted as 4 KB + the bytes, ~2/3 of what they hold)
    slices = _ct_slices()
    _warm(slices[:2])
    loader = SliceLoader(64 * 1024**2)
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    loader.frame(slices[2])
    retained = _retained(before, loader)
    (entry,) = loader.frames.values()
    assert entry.header is not None and entry.header_bytes, "read without pydicom, with its header"
    assert retained > entry.frame.stored.nbytes + len(entry.header_bytes)
    assert retained <= loader.frames.nbytes <= 1.25 * retained
    assert not loader.pictures.nbytes and not loader.rows.nbytes and not loader.headers.nbytes


@needs_ct
def test_a_shown_slice_counts_its_frame_picture_header_and_rows(traced: None) -> None:
    slices = _ct_slices()
    _warm(slices[:2])
    loader = SliceLoader(64 * 1024**2)
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    result = loader.load(SliceRequest(1, slices[2]))
    assert result is not None and not result.error and len(result.rows) > 50
    del result
    retained = _retained(before, loader)
    counted = loader.frames.nbytes + loader.pictures.nbytes + loader.rows.nbytes + loader.headers.nbytes
    assert counted >= retained
    assert counted <= 1.25 * retained


@needs_ct
def test_cached_frames_and_pictures_have_pages_of_their_own() -> None:
    # large cached arrays live in mappings of their own, unmapped once evicted and unreferenced (in the
    # heap, interleaved with each step's temporaries, ~40 MB stayed resident over a 2,000-slice scroll)
    loader = SliceLoader(2 * 1024**2)  # 1.5 MB of frames: two 512 KB CT frames at most
    gone: list[weakref.ref[mmap.mmap]] = []
    for i, sl in enumerate(_ct_slices()[:5]):
        result = loader.load(SliceRequest(i, sl))
        assert result is not None and result.frame is not None and result.picture is not None
        assert result.frame.stored.nbytes >= OWN_PAGES_FROM
        frame_map, picture_map = _mapping(result.frame.stored), _mapping(result.picture)
        assert frame_map is not None and picture_map is not None
        gone.append(weakref.ref(frame_map))
        del result, frame_map, picture_map
    gc.collect()
    assert len(loader.frames) == 2
    assert [ref() is None for ref in gone] == [True, True, True, False, False]


def test_own_pages_are_mappings_from_the_threshold_on() -> None:
    assert isinstance(own_pages(OWN_PAGES_FROM), mmap.mmap)
    small = own_pages(OWN_PAGES_FROM - 1)
    assert isinstance(small, bytearray) and len(small) == OWN_PAGES_FROM - 1 and not any(small)


def _rows_files() -> list[Path]:
    names = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "SC_rgb.dcm")
    files = [Path(str(get_testdata_file(n, download=False))) for n in names]
    clinic = SHARED_DATA / "taichi_mri_cd" / "DCMDT" / "D0000001"
    return files + ([clinic] if clinic.is_file() else [])


@pytest.mark.parametrize("path", _rows_files(), ids=lambda p: p.name)
def test_rows_nbytes_counts_at_least_what_rows_hold(path: Path, traced: None) -> None:
    ds = read_dataset(FileRef(str(path)), stop_before_pixels=True)
    buf = path.read_bytes()
    makers: list[Callable[[], list[TagRow]]] = [lambda: tag_rows(ds)]
    try:
        quickdump.rows_from_buffer(buf, max_value_chars=DEFAULT_MAX_VALUE_CHARS)
        makers.append(lambda: quickdump.rows_from_buffer(buf, max_value_chars=DEFAULT_MAX_VALUE_CHARS).rows)
    except quickdump.Fallback:
        pass
    for make in makers:
        make()  # fill the dictionary's tables first
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        rows = make()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        assert rows and held > 0
        assert held <= rows_nbytes(rows) <= 2.5 * held
        del rows
