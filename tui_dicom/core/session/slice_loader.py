"""The slice loader's logic, free of any UI: header → decoded frame → windowed 8-bit picture.

The viewer runs :meth:`SliceLoader.load` in one background thread that takes the newest request from a
:class:`~tui_dicom.core.cache.LatestSlot`, so holding a key never queues decodes. Decoded frames are cached
by ``(file, frame)`` and windowed pictures by ``(file, frame, window, invert, overlays)``, both bounded in
bytes. ``should_stop`` is checked before decoding: a request that became stale is dropped unless its
frame is already cached; a decode that has started is finished and shown (frames are dropped, never queued).

Each file is read once per slice. An uncompressed slice that :mod:`tui_dicom.core.imaging.native` reads
exactly brings its header values (annotations) and header bytes (inspector rows, made by
:func:`tui_dicom.core.inspector.quickdump.rows_from_buffer`) along with its frame, without pydicom, so
the viewer's first picture needs no ``import pydicom`` at all; any other slice is read with pydicom: its
header once (rows, annotations), its pixels by :func:`tui_dicom.core.imaging.pixels.decode_frame`.

``--cache-mb`` bounds what the frame and picture caches hold, and they count all of it: the header values
and bytes an uncompressed slice brought along stay in the frame's entry (:class:`CachedFrame`) and are
counted with it, and large frames and pictures have memory pages of their own
(:func:`tui_dicom.core.cache.own_pages`), returned to the system when evicted. The small caches outside
that bound (pydicom headers, inspector rows) count what they hold from above too.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tui_dicom.core.cache import OWN_PAGES_FROM, ByteLRU, own_pages
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.errors import DicomViewerError
from tui_dicom.core.hierarchy.model import SliceRef
from tui_dicom.core.imaging.geometry import Spacing
from tui_dicom.core.inspector.tags import TagRow
from tui_dicom.core.logging import log_exception
from tui_dicom.core.safe import safe_text

if TYPE_CHECKING:
    import numpy as np
    from pydicom.dataset import Dataset

    from tui_dicom.core.imaging.native import NativeHeader
    from tui_dicom.core.imaging.pixels import Frame
    from tui_dicom.core.imaging.windowing import FileWindow, Window

Decoder = Callable[[FileRef, int, "Dataset | None"], "Frame"]
"""``decoder(ref, frame, header_dataset) -> Frame``; the default is ``pixels.decode_frame``."""


@dataclass(frozen=True)
class SliceRequest:
    """What the viewer wants shown."""

    seq: int
    slice: SliceRef
    #: a fixed window, the file's n-th window, or None for the file's own / auto window
    window: Window | FileWindow | None = None
    invert: bool = False
    overlays: bool = True
    #: slices to decode ahead, nearest first, once this one is done
    prefetch: tuple[SliceRef, ...] = ()


@dataclass
class SliceResult:
    """The answer to a :class:`SliceRequest` (``error`` set when it failed)."""

    seq: int
    slice: SliceRef
    picture: np.ndarray | None = None
    frame: Frame | None = None
    window: Window | None = None
    info: SliceInfo = field(default_factory=lambda: SliceInfo())
    error: str = ""
    #: tag rows of the instance's header for the inspector (empty when it could not be read)
    rows: list[TagRow] = field(default_factory=list)
    #: why the header could not be read (empty when it was)
    header_error: str = ""
    seconds: float = 0.0


def _first(value: Any) -> Any:
    if value is None:
        return None
    try:
        if not isinstance(value, (str, bytes)) and len(value):
            return value[0]
    except TypeError:
        pass
    return value


def _float(value: Any) -> float | None:
    try:
        v = float(_first(value))
    except (TypeError, ValueError):
        return None
    return v if v == v else None  # NaN → None


@dataclass(frozen=True)
class SliceInfo:
    """Per-slice header values the viewer shows next to the picture (annotations, probe, cine, measuring).

    A typed record rather than a dict, so the UI cannot misspell a key and mypy sees what each value is;
    an empty ``SliceInfo()`` stands for a slice whose header could not be read.
    """

    location: float | None = None
    """Slice Location (mm)."""
    thickness: float | None = None
    """Slice Thickness (mm)."""
    modality: str = ""
    patient_name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    study_date: str = ""
    study_description: str = ""
    series_number: str = ""
    series_description: str = ""
    spacing: Spacing | None = None
    """The measurement spacing (:func:`~tui_dicom.core.imaging.geometry.spacing_of`); None without a header."""
    cine_fps: float = 10.0
    """Frames per second for cine (:func:`~tui_dicom.core.imaging.geometry.cine_rate`)."""
    position: tuple[float, ...] | None = None
    """Image Position (Patient) of the frame."""
    orientation: tuple[float, ...] | None = None
    """Image Orientation (Patient) of the frame."""


_TEXT_KEYWORDS = (
    ("modality", "Modality"),
    ("patient_name", "PatientName"),
    ("patient_id", "PatientID"),
    ("birth_date", "PatientBirthDate"),
    ("study_date", "StudyDate"),
    ("study_description", "StudyDescription"),
    ("series_number", "SeriesNumber"),
    ("series_description", "SeriesDescription"),
)


def slice_info(ds: Dataset | NativeHeader | None, frame: int = 0) -> SliceInfo:
    """Per-slice values the annotations show, from a header dataset or the values the uncompressed-slice
    reader kept (the same Python values: ``tests/parity/test_native.py``); missing ones are left empty."""
    if ds is None:
        return SliceInfo()
    texts: dict[str, str] = {}
    for key, keyword in _TEXT_KEYWORDS:
        value = ds.get(keyword)
        if value not in (None, ""):
            texts[key] = safe_text(value)
    from tui_dicom.core.imaging.geometry import cine_rate, plane_of, spacing_of

    position, orientation = plane_of(ds, frame)
    return SliceInfo(
        location=_float(ds.get("SliceLocation")),
        thickness=_float(ds.get("SliceThickness")),
        spacing=spacing_of(ds, frame),
        cine_fps=cine_rate(ds),
        position=position,
        orientation=orientation,
        **texts,
    )


@dataclass(frozen=True, eq=False)
class CachedFrame:
    """A frame cache entry: the decoded frame, and for a slice read without pydicom the header values and
    bytes its one read brought along (the annotations and inspector rows of a prefetched slice then need
    no second read). They live and go together, and :attr:`nbytes` counts all of it."""

    frame: Frame
    header: NativeHeader | None = None
    header_bytes: bytes = b""

    @property
    def nbytes(self) -> int:
        """The frame's bytes, plus the header's values and bytes when kept."""
        header = 0 if self.header is None else self.header.nbytes + sys.getsizeof(self.header_bytes)
        return self.frame.nbytes + header


def _paged(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself when small or already in pages of its own, else a copy that is (see
    :func:`~tui_dicom.core.cache.own_pages`): what the caches keep must not fragment the heap."""
    import mmap

    import numpy as np

    if arr.nbytes < OWN_PAGES_FROM:
        return arr
    base: object = arr
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    if isinstance(base, mmap.mmap):
        return arr
    out = np.frombuffer(own_pages(arr.nbytes), dtype=arr.dtype).reshape(arr.shape)
    out[...] = arr
    return out


def rows_nbytes(rows: list[TagRow]) -> int:
    """The memory ``rows`` hold, counted from above: the list, each row with its attribute dict, its path
    tuple, value text and numbers; a private element's names too (public ones are the dictionary's)."""
    getsize = sys.getsizeof
    size = getsize(rows)
    for row in rows:
        attrs = vars(row)
        size += getsize(row) + getsize(attrs) + getsize(row.path) + getsize(row.tag) + getsize(row.value)
        size += getsize(row.length) + getsize(row.parent) + getsize(row.private_creator)
        if row.tag >> 16 & 1:
            size += getsize(row.keyword) + getsize(row.name)
    return size


def _quick_rows(header_bytes: bytes) -> list[TagRow] | None:
    """Inspector rows from the header bytes without pydicom, or None when only pydicom reads them exactly."""
    from tui_dicom.core.inspector import quickdump
    from tui_dicom.core.inspector.tags import DEFAULT_MAX_VALUE_CHARS

    try:
        return quickdump.rows_from_buffer(header_bytes, max_value_chars=DEFAULT_MAX_VALUE_CHARS).rows
    except quickdump.Fallback:
        return None
    except Exception:  # noqa: BLE001 - whatever the quick reader trips on, pydicom reads and reports it
        log_exception("reading the inspector rows without pydicom")
        return None


class SliceLoader:
    """Decodes and windows slices with byte-bounded caches; safe to use from one worker thread."""

    def __init__(self, cache_bytes: int = 512 * 1024**2, decoder: Decoder | None = None) -> None:
        self.frames: ByteLRU[CachedFrame] = ByteLRU(cache_bytes * 3 // 4)
        self.pictures: ByteLRU[np.ndarray] = ByteLRU(cache_bytes - cache_bytes * 3 // 4)
        # outside --cache-mb, small and bounded: headers of recent instances (~55 KB each for a CT slice,
        # counted as 64 KB) and their inspector rows (~600 bytes a row, counted by rows_nbytes)
        self.headers: ByteLRU[Dataset] = ByteLRU(64 * 65536, size_of=lambda _ds: 65536)
        self.rows: ByteLRU[list[TagRow]] = ByteLRU(8 * 1024**2, size_of=rows_nbytes)
        # annotation values of slices read without pydicom (small records, counted as one unit each:
        # a few hundred bytes, so 1,024 of them stay well under a megabyte)
        self._infos: ByteLRU[SliceInfo] = ByteLRU(1024, size_of=lambda _info: 1)
        self._decoder = decoder

    @property
    def nbytes(self) -> int:
        """Bytes held by the frame and picture caches."""
        return self.frames.nbytes + self.pictures.nbytes

    def header(self, ref: FileRef) -> Dataset:
        """The header dataset of ``ref`` (no pixel data), cached."""
        ds = self.headers.get(ref)
        if ds is None:
            from tui_dicom.core.dicom.reading import read_dataset

            ds = read_dataset(ref, stop_before_pixels=True)
            self.headers.put(ref, ds)
        return ds

    def tag_rows(self, ref: FileRef, header: Dataset) -> list[TagRow]:
        """The inspector rows of ``header`` (the header of ``ref``), cached per file."""
        rows = self.rows.get(ref)
        if rows is None:
            from tui_dicom.core.inspector.tags import tag_rows

            rows = tag_rows(header)
            self.rows.put(ref, rows)
        return rows

    def frame(self, sl: SliceRef) -> Frame:
        """The decoded frame of ``sl``, cached by (file, frame).

        With the default decoder an uncompressed slice is read without pydicom (its header values and
        bytes are kept with it, for :meth:`load`); any other with
        :func:`~tui_dicom.core.imaging.pixels.decode_frame`.
        """
        return self._entry(sl).frame

    def _entry(self, sl: SliceRef) -> CachedFrame:
        """The frame cache's entry for ``sl``, decoded and cached when missing."""
        cached = self.frames.get(sl.key)
        if cached is not None:
            return cached
        ref = sl.instance.ref
        if self._decoder is None:
            from tui_dicom.core.imaging.native import read_slice

            quick = read_slice(ref, sl.frame)
            if quick is not None:
                entry = CachedFrame(self._paged_frame(quick.frame), quick.header, quick.header_bytes)
                self.frames.put(sl.key, entry)
                return entry
            decoded = self._decode_with_pydicom(ref, sl.frame)
        else:
            decoded = self._decoder(ref, sl.frame, None)
        entry = CachedFrame(self._paged_frame(decoded))
        self.frames.put(sl.key, entry)
        return entry

    @staticmethod
    def _paged_frame(frame: Frame) -> Frame:
        """``frame`` with its stored values in pages of their own (:func:`_paged`)."""
        stored = _paged(frame.stored)
        if stored is frame.stored:
            return frame
        import dataclasses

        return dataclasses.replace(frame, stored=stored)

    def _decode_with_pydicom(self, ref: FileRef, frame: int) -> Frame:
        """Decode a slice the pydicom-free reader refused, parsing the file once with pydicom.

        A file small enough to be read whole (as :func:`~tui_dicom.core.imaging.pixels.decode_frame`
        reads it) gives its inspector rows before its frame is decoded (decoding converts values the rows
        show as stored), then its header for the annotations and the other header users (the elements from
        its pixel data on removed, as a header-only reading has it). A larger file, or one pydicom cannot
        read whole (pixel data cut short), takes ``decode_frame``'s own route.
        """
        from tui_dicom.core.dicom.reading import read_dataset
        from tui_dicom.core.dicom.source import file_size
        from tui_dicom.core.imaging.pixels import INLINE_FILE_BYTES, cut_before_pixels, decode_frame
        from tui_dicom.core.inspector.tags import PIXEL_DATA_TAGS, tag_rows

        ds = None
        if file_size(ref) <= INLINE_FILE_BYTES:
            try:
                ds = read_dataset(ref, stop_before_pixels=False)
            except DicomViewerError:
                ds = None  # decode_frame reads it again and reports (or works around) the problem
        if ds is None or not any(int(tag) in PIXEL_DATA_TAGS for tag in list(ds.keys())):
            return decode_frame(ref, frame, None, native=False)
        if ref not in self.rows:
            rows = tag_rows(ds)
            end = next(
                (i for i, row in enumerate(rows) if row.depth == 0 and row.tag in PIXEL_DATA_TAGS), len(rows)
            )
            self.rows.put(ref, rows[:end])
        decoded = decode_frame(ref, frame, ds, native=False)
        cut_before_pixels(ds)
        self.headers.put(ref, ds)
        return decoded

    def _native_info(self, ref: FileRef, frame: int, header: NativeHeader) -> SliceInfo:
        """:func:`slice_info` of a slice read without pydicom, kept per (file, frame): a slice shown
        again, as stepping back and forth does, needs no second geometry parse."""
        key = (ref, frame)
        info = self._infos.get(key)
        if info is None:
            info = slice_info(header, frame)
            self._infos.put(key, info)
        return info

    def _header_values(
        self, ref: FileRef, frame: int, entry: CachedFrame | None = None
    ) -> tuple[SliceInfo, list[TagRow]]:
        """The annotations' values and the inspector rows of ``ref``: from what the uncompressed-slice
        reader kept in the frame's ``entry`` when it has them (no pydicom), else from the header pydicom
        reads (cached).

        Raises:
            DicomViewerError, OSError, ValueError: the header cannot be read.
        """
        native = None if entry is None else entry.header
        if native is not None:
            assert entry is not None
            info = self._native_info(ref, frame, native)
            rows = self.rows.get(ref)
            if rows is None:
                rows = _quick_rows(entry.header_bytes)
                if rows is not None:
                    self.rows.put(ref, rows)
            if rows is not None:
                return info, rows
        header = self.header(ref)
        if native is None:
            info = slice_info(header, frame)
        return info, self.tag_rows(ref, header)

    def load(self, req: SliceRequest, should_stop: Callable[[], bool] = lambda: False) -> SliceResult | None:
        """Produce the picture for ``req``; None if ``should_stop()`` says it went stale before its decode."""
        from tui_dicom.core.imaging import windowing

        start = time.perf_counter()
        result = SliceResult(req.seq, req.slice)
        if should_stop() and req.slice.key not in self.frames:
            return None  # a newer request is waiting and this slice would need a decode
        ref = req.slice.instance.ref
        entry = None
        try:
            # the frame first: an uncompressed slice brings its header values along (one read)
            entry = self._entry(req.slice)
            frame = entry.frame
            result.frame = frame
            # once decoded, finish: windowing is cheap, and showing this slice beats showing nothing
            # while the newest request waits (cine, a held key)
            window = windowing.resolve_window(frame, req.window)
            key = (req.slice.key, window, req.invert, req.overlays)
            picture = self.pictures.get(key)
            if picture is None:
                picture = _paged(windowing.render(frame, window, invert=req.invert, overlays=req.overlays))
                self.pictures.put(key, picture)
            result.picture = picture
            result.window = window
        except DicomViewerError as exc:
            result.error = str(exc)
        except MemoryError:
            result.error = "not enough memory to decode this image"
        except Exception as exc:  # noqa: BLE001 - shown in the pane; the traceback goes to --log
            log_exception(f"decoding {req.slice.instance.ref.display} frame {req.slice.frame}")
            result.error = f"cannot display this image: {safe_text(exc) or type(exc).__name__}"
        try:
            result.info, result.rows = self._header_values(ref, req.slice.frame, entry)
        except (DicomViewerError, OSError, ValueError) as exc:
            result.header_error = safe_text(f"{ref.display}: {exc}")
        result.error = safe_text(result.error)
        result.seconds = time.perf_counter() - start
        return result

    def prefetch(self, slices: Sequence[SliceRef], should_stop: Callable[[], bool]) -> int:
        """Decode ``slices`` into the frame cache until ``should_stop()``; returns how many were decoded."""
        done = 0
        for sl in slices:
            if should_stop():
                break
            if sl.key in self.frames:
                continue
            try:
                self.frame(sl)
                done += 1
            except Exception:  # noqa: BLE001 - a prefetch failure is reported when the slice is shown
                continue
        return done
