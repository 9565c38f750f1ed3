"""Decode one frame of a DICOM image into stored values plus everything needed to display it.

:func:`decode_frame` is the only entry point. It checks the Image Pixel module against the bytes the
file actually holds *before* anything is allocated, decodes a single frame with pydicom (pylibjpeg
for JPEG, JPEG-LS, JPEG 2000 and RLE; python-gdcm as a lazy fallback for what pydicom cannot do, such
as 12-bit JPEG Extended), masks the stored values to Bits Stored/High Bit with sign extension, and
gathers the display parameters (modality LUT, windows, VOI LUTs, presentation, palettes, overlays,
pixel spacing), from the enhanced multi-frame functional groups where present.

The pixel arithmetic lives in :mod:`tui_dicom.core.imaging.windowing`. No Textual, Rich or terminal code.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tui_dicom.core import limits
from tui_dicom.core.dicom.source import FileRef, file_size, open_ref
from tui_dicom.core.errors import DicomViewerError, PixelDataError, UnsupportedTransferSyntax
from tui_dicom.core.imaging import sandbox, streams
from tui_dicom.core.imaging.dataset import functional_group
from tui_dicom.core.imaging.dataset import get as _get
from tui_dicom.core.imaging.dataset import item as _item
from tui_dicom.core.imaging.dataset import values as _values
from tui_dicom.core.imaging.geometry import spacing_of
from tui_dicom.core.imaging.windowing import Window
from tui_dicom.core.safe import safe_text

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

#: files up to this size are read whole (one parse); larger ones stream only the wanted frame
INLINE_FILE_BYTES = 48 * 1024**2
#: a LUT (modality, VOI) may not have more entries than this
MAX_LUT_ENTRIES = 65536

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_MONO = ("MONOCHROME1", "MONOCHROME2")
_COLOUR_3 = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420", "YBR_PARTIAL_422")
_JPEG_FAMILY = {
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
}


@dataclass(frozen=True, eq=False)
class Lut:
    """A DICOM lookup table (PS3.3 C.11.1.1.1): ``data[x - first_mapped]``, clamped at both ends."""

    first_mapped: int
    data: np.ndarray
    bits: int
    explanation: str = ""

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Map ``values`` through the table (values outside it take the first/last entry)."""
        idx = np.clip(np.asarray(values, dtype=np.int64) - self.first_mapped, 0, len(self.data) - 1)
        return self.data[idx]

    @property
    def max_output(self) -> int:
        """Largest value the table can produce by its declared bit depth (at least its largest entry)."""
        return max((1 << self.bits) - 1, int(self.data.max()) if self.data.size else 0)


@dataclass(frozen=True, eq=False)
class Palette:
    """Palette colour table reduced to 8 bits: ``rgb[x - first_mapped]`` (N x 3 uint8)."""

    first_mapped: int
    rgb: np.ndarray
    supplemental: bool = False


@dataclass(frozen=True, eq=False)
class Overlay:
    """One overlay plane of the frame: a boolean mask whose top-left pixel sits at (row, col), 0-based."""

    row: int
    col: int
    mask: np.ndarray
    label: str = ""


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame and what is needed to display or probe it.

    Attributes:
        stored: Stored values, masked to Bits Stored and sign-extended; H x W for grey and palette
            images, H x W x 3 (RGB, after any YBR conversion) for colour.
        photometric: ``MONOCHROME1``, ``MONOCHROME2``, ``RGB`` or ``PALETTE COLOR``.
        bits_stored: Bits Stored (of the decoded values).
        signed: Pixel Representation 1.
        is_float: Float/Double Float Pixel Data.
        rescale_slope: Modality rescale slope (1 when absent).
        rescale_intercept: Modality rescale intercept (0 when absent).
        modality_lut: Modality LUT Sequence, used instead of the rescale when present.
        units: ``"HU"`` for CT, else Rescale Type, else ``""``.
        windows: The file's windows (per-frame ones first for enhanced images), in file order.
        voi_luts: The file's VOI LUTs, in file order.
        presentation_inverse: Presentation LUT Shape is INVERSE (on a MONOCHROME2 image).
        palette: Palette colour (or supplemental palette) table, if any.
        overlays: Overlay planes that cover this frame.
        pixel_spacing: (row spacing, column spacing) in mm, if known.
        aspect_ratio: Pixel Aspect Ratio (vertical, horizontal), if given.
        index: 0-based frame number.
        number_of_frames: Frames in the file.
        transfer_syntax: Transfer syntax UID of the pixel data.
        modality: Modality (untrusted text, made safe).
        value_range: (min, max) of ``stored`` (over all channels).
        note: What a viewer should say about the file although this frame is fine (e.g. the file is
            cut short and only some of its frames are complete); ``""`` when nothing.
    """

    stored: np.ndarray
    photometric: str
    bits_stored: int
    signed: bool = False
    is_float: bool = False
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    modality_lut: Lut | None = None
    units: str = ""
    windows: tuple[Window, ...] = ()
    voi_luts: tuple[Lut, ...] = ()
    presentation_inverse: bool = False
    palette: Palette | None = None
    overlays: tuple[Overlay, ...] = ()
    pixel_spacing: tuple[float, float] | None = None
    aspect_ratio: tuple[float, float] | None = None
    index: int = 0
    number_of_frames: int = 1
    transfer_syntax: str = ""
    modality: str = ""
    value_range: tuple[float, float] = field(default=(0.0, 0.0))
    note: str = ""

    @property
    def rows(self) -> int:
        """Height in pixels."""
        return int(self.stored.shape[0])

    @property
    def columns(self) -> int:
        """Width in pixels."""
        return int(self.stored.shape[1])

    @property
    def is_colour(self) -> bool:
        """True for RGB and palette colour (not for a supplemental palette on a grey image)."""
        return self.photometric in ("RGB", "PALETTE COLOR")

    @property
    def is_grey(self) -> bool:
        """True for MONOCHROME1/2 (windows apply)."""
        return self.photometric in _MONO

    @property
    def nbytes(self) -> int:
        """Approximate memory held by the frame (for a byte-bounded cache)."""
        total = self.stored.nbytes
        for lut in (self.modality_lut, *self.voi_luts):
            if lut is not None:
                total += lut.data.nbytes
        if self.palette is not None:
            total += self.palette.rgb.nbytes
        total += sum(o.mask.nbytes for o in self.overlays)
        return int(total)

    def modality_values(self) -> np.ndarray:
        """The frame after the modality LUT or rescale (Hounsfield units for CT), as float."""
        return self.modality_transform(self.stored)

    def modality_transform(self, values: np.ndarray) -> np.ndarray:
        """Apply this frame's modality LUT or rescale to ``values`` (stored values), as float64."""
        if self.modality_lut is not None and not self.is_float:
            return self.modality_lut.apply(values).astype(np.float64)
        out = np.asarray(values, dtype=np.float64)
        if self.rescale_slope != 1.0:
            out = out * self.rescale_slope
        if self.rescale_intercept != 0.0:
            out = out + self.rescale_intercept
        return out

    def value_at(self, row: int, col: int) -> tuple[float | tuple[float, ...], str]:
        """Value under the cursor for the probe: modality value (or RGB triple) and its units."""
        v = self.stored[row, col]
        if self.stored.ndim == 3:
            return tuple(float(x) for x in v), ""
        return float(self.modality_transform(np.asarray([v]))[0]), self.units


# ---------------------------------------------------------------------------------------------
# header helpers: every value is untrusted


def _float(value: Any, default: float | None = None) -> float | None:
    """A finite float from a DS/IS/FD value (first of several), else ``default``."""
    vals = _values(value)
    if not vals:
        return default
    try:
        out = float(vals[0])
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def _int(ds: Any, keyword: str, default: int | None = None) -> int | None:
    """An int value of ``keyword``, or ``default``."""
    value = _get(ds, keyword, None)
    f = _float(value, None)
    if f is None or not f.is_integer():
        return default
    return int(f)


def _text(value: Any) -> str:
    """Untrusted text value made terminal-safe."""
    vals = _values(value)
    return safe_text(str(vals[0])).strip() if vals else ""


def transfer_syntax_of(ds: Any) -> str:
    """Transfer syntax UID of ``ds`` (from its file meta, else from how it was read)."""
    meta = getattr(ds, "file_meta", None)
    ts = _get(meta, "TransferSyntaxUID", None) if meta is not None else None
    if ts:
        return str(ts)
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        implicit, little = True, True
    if implicit:
        return "1.2.840.10008.1.2"
    return "1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2"


def syntax_name(uid: str) -> str:
    """``"JPEG Extended (1.2.840.10008.1.2.4.51)"``: the transfer syntax's name and UID."""
    from pydicom.uid import UID

    name = UID(uid).name
    name = name.replace(" (Process 2 and 4)", "").replace(" (Process 14)", "")
    return safe_text(name if name != uid else "unknown transfer syntax") + f" ({safe_text(uid)})"


# ---------------------------------------------------------------------------------------------
# the Image Pixel module, checked


@dataclass(frozen=True)
class PixelInfo:
    """The Image Pixel module, validated. Raises nothing once built."""

    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    high_bit: int
    signed: bool
    photometric: str
    planar: int
    frames: int
    keyword: str
    transfer_syntax: str

    @property
    def frame_values(self) -> int:
        """Values per frame (Rows x Columns x Samples)."""
        return self.rows * self.columns * self.samples

    @property
    def native_bytes(self) -> int:
        """Bytes all frames need when not compressed (bit-packed for 1-bit data)."""
        bits = self.frame_values * self.frames * self.bits_allocated
        if self.photometric == "YBR_FULL_422" and self.samples == 3:
            bits = bits * 2 // 3
        return (bits + 7) // 8


def pixel_info(ds: Any) -> PixelInfo:
    """Validate the Image Pixel module of ``ds``.

    Raises:
        PixelDataError: missing or nonsensical values, or a frame too large to hold.
    """
    keyword = next((k for k in _PIXEL_KEYWORDS if k in ds), None)
    if keyword is None:
        raise PixelDataError("no pixel data in this file")
    rows = _int(ds, "Rows")
    cols = _int(ds, "Columns")
    if rows is None or cols is None:
        raise PixelDataError("the image has no valid Rows/Columns")
    if rows < 1 or cols < 1 or rows > 65535 or cols > 65535:
        raise PixelDataError(f"image size {cols}×{rows} (Columns × Rows) is not valid")
    samples = _int(ds, "SamplesPerPixel", 1) or 1
    if samples not in (1, 3):
        raise PixelDataError(f"Samples per Pixel {samples} is not supported (only 1 or 3)")
    default_bits = 32 if keyword == "FloatPixelData" else 64 if keyword == "DoubleFloatPixelData" else None
    bits_allocated = _int(ds, "BitsAllocated", default_bits)
    if bits_allocated not in (1, 8, 16, 32, 64):
        raise PixelDataError(f"Bits Allocated {_get(ds, 'BitsAllocated')} is not valid")
    bits_stored = _int(ds, "BitsStored", bits_allocated) or bits_allocated
    if not 1 <= bits_stored <= bits_allocated:
        raise PixelDataError(f"Bits Stored {bits_stored} does not fit Bits Allocated {bits_allocated}")
    high_bit = _int(ds, "HighBit", bits_stored - 1)
    if high_bit is None or not bits_stored - 1 <= high_bit < bits_allocated:
        high_bit = bits_stored - 1
    signed = _int(ds, "PixelRepresentation", 0) == 1
    photometric = _text(_get(ds, "PhotometricInterpretation", "")).upper()
    if not photometric:
        photometric = "MONOCHROME2" if samples == 1 else "RGB"
    if samples == 1 and photometric not in (*_MONO, "PALETTE COLOR"):
        raise PixelDataError(f"Photometric Interpretation {photometric} with 1 sample is not supported")
    if samples == 3 and photometric not in _COLOUR_3:
        raise PixelDataError(f"Photometric Interpretation {photometric} with 3 samples is not supported")
    frames_f = _float(_get(ds, "NumberOfFrames", 1), None)
    # an unreadable Number of Frames (e.g. "1A") reads as 1, like DCMTK; frame 1 is still checked
    frames = max(1, int(frames_f)) if frames_f is not None and frames_f.is_integer() else 1
    planar = _int(ds, "PlanarConfiguration", 0) or 0
    info = PixelInfo(
        rows=rows,
        columns=cols,
        samples=samples,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        high_bit=high_bit,
        signed=signed,
        photometric=photometric,
        planar=1 if planar == 1 else 0,
        frames=frames,
        keyword=keyword,
        transfer_syntax=transfer_syntax_of(ds),
    )
    frame_bytes = info.frame_values * max(8, bits_allocated) // 8
    cap = limits.current().frame_bytes
    if frame_bytes > cap:
        raise limits.LimitExceeded(_file_of(ds), "frame_bytes", frame_bytes, cap)
    return info


def _file_of(ds: Any) -> str:
    """The file a dataset was read from, terminal-safe ("" when it was not read from a file)."""
    from tui_dicom.core.dicom.reading import SOURCE_ATTR
    from tui_dicom.core.safe import safe_path

    known = getattr(ds, "__dict__", {}).get(SOURCE_ATTR)
    if isinstance(known, str):
        return known
    name = getattr(ds, "filename", None)
    return safe_path(name) if isinstance(name, str) and name else ""


def _check_native_length(info: PixelInfo, present: int, what: str = "pixel data") -> None:
    """Refuse native pixel data shorter than the header says."""
    expected = info.native_bytes
    if present < expected:
        # a single frame that is there is still shown when only later frames are missing
        raise PixelDataError(f"{what} is {present:,} bytes, {expected:,} expected")


# ---------------------------------------------------------------------------------------------
# decoding


def _is_native(ts: str) -> bool:
    from pydicom.uid import UID

    try:
        return not UID(ts).is_encapsulated
    except Exception:  # noqa: BLE001
        return True


def _decode_pydicom(src: Any, ts: str, index: int, ds_like: Dataset | None, frames: int) -> np.ndarray:
    """Decode frame ``index`` with pydicom from a dataset (``src`` is the dataset) or an open file."""
    from pydicom.pixels.decoders.base import get_decoder
    from pydicom.pixels.utils import pixel_array

    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise UnsupportedTransferSyntax(f"{syntax_name(ts)} is not supported") from None
    if not decoder.is_available:
        missing = ", ".join(decoder.missing_dependencies) or "a decoder plugin"
        raise UnsupportedTransferSyntax(f"{syntax_name(ts)} needs {missing}")
    plugins = [""]
    if decoder.UID.is_encapsulated:
        # never pydicom's in-process "gdcm" plugin: GDCM aborts the whole process (an uncaught C++
        # exception) on some corrupt JPEG streams; our own GDCM fallback runs in a child process
        order = _PLUGIN_ORDER_LOSSY_JPEG if ts in _LOSSY_JPEG else _PLUGIN_ORDER
        plugins = [p for p in order if p in decoder.available_plugins]
        if not plugins:
            raise UnsupportedTransferSyntax(
                f"{syntax_name(ts)} needs pylibjpeg: pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg"
            )
    errors: list[str] = []
    for plugin in plugins:
        with warnings.catch_warnings(), _quiet_stderr():
            warnings.simplefilter("ignore")
            try:
                if ds_like is not None:
                    arr, _props = decoder.as_array(
                        ds_like,
                        index=index,
                        # pydicom annotates **kwargs as DecodeOptions (the TypedDict) instead of
                        # Unpack[DecodeOptions], so every option looks mistyped to mypy
                        correct_unused_bits=False,  # type: ignore[arg-type]
                        number_of_frames=frames,  # type: ignore[arg-type]
                        decoding_plugin=plugin,
                    )
                    return arr
                src.seek(0)
                return pixel_array(
                    src,
                    index=index,
                    transfer_syntax_uid=ts,
                    correct_unused_bits=False,
                    number_of_frames=frames,
                    decoding_plugin=plugin,
                )
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - includes pyo3 PanicException
                if len(plugins) == 1:
                    raise
                reason = _short(exc)
                errors.append(reason if reason.startswith(f"{plugin}:") else f"{plugin}: {reason}")
    raise PixelDataError(errors[0])  # the preferred decoder's reason


#: pydicom decoding plugins we use, in order of preference
_PLUGIN_ORDER = ("pylibjpeg", "pyjpegls", "pillow")
#: lossy JPEG: Pillow's libjpeg(-turbo) is IJG-compatible like DCMTK's (pylibjpeg differs by up to 5)
_PLUGIN_ORDER_LOSSY_JPEG = ("pillow", "pylibjpeg")
_LOSSY_JPEG = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"}

_GDCM_CHILD = r"""
import resource
import sys
try:  # the same budget as the other decoder child: address space and CPU time
    memory, seconds = int(sys.argv[2]), int(float(sys.argv[3])) + 1
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
except (ValueError, OSError, IndexError):
    pass
import gdcm
for quiet in ("DebugOff", "WarningOff", "ErrorOff"):
    getattr(gdcm.Trace, quiet)()
reader = gdcm.ImageReader()
reader.SetFileName(sys.argv[1])
if not reader.Read():
    sys.exit(3)
image = reader.GetImage()
buf = image.GetBuffer()
if buf is None:
    sys.exit(4)
raw = buf.encode("utf-8", "surrogateescape")
pf = image.GetPixelFormat()
sys.stdout.write(f"{pf.GetBitsAllocated()} {pf.GetPixelRepresentation()}\n")
sys.stdout.flush()
sys.stdout.buffer.write(raw)
"""


def _decode_gdcm(ref: FileRef, info: PixelInfo, index: int) -> np.ndarray:
    """Decode with python-gdcm in a child process (all frames, then pick one). Only used when
    pydicom cannot decode; a child because GDCM aborts its process on some corrupt streams."""
    import subprocess
    import sys

    total = info.frame_values * info.frames * max(8, info.bits_allocated) // 8
    cap = limits.current().frame_bytes
    if total > cap:
        raise limits.LimitExceeded(ref.display, "frame_bytes", total, cap)
    tmp: str | None = None
    path = ref.path
    try:
        if ref.member is not None:  # GDCM reads paths: copy the ZIP member to a private temp file
            fd, tmp = tempfile.mkstemp(suffix=".dcm")
            with os.fdopen(fd, "wb") as out, open_ref(ref) as fh:
                out.write(fh.read())
            path = tmp
        try:
            budget = limits.current()
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _GDCM_CHILD,
                    path,
                    str(budget.decode_memory),
                    str(budget.decode_seconds),
                ],
                capture_output=True,
                timeout=3 * budget.decode_seconds + 10,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PixelDataError("GDCM took too long to decode the pixel data") from None
        if proc.returncode != 0:
            raise PixelDataError("GDCM cannot decode the pixel data")
        head, _, raw = proc.stdout.partition(b"\n")
        nbits, rep = (int(v) for v in head.split())
        signed = rep == 1
        kinds = {8: "i1" if signed else "u1", 16: "<i2" if signed else "<u2", 32: "<i4" if signed else "<u4"}
        if nbits not in kinds:
            raise PixelDataError(f"GDCM returned {nbits}-bit samples")
        arr = np.frombuffer(raw[: len(raw) // (nbits // 8) * (nbits // 8)], dtype=kinds[nbits])
        per_frame = info.frame_values
        if arr.size < per_frame * (index + 1):
            raise PixelDataError(f"GDCM decoded {arr.size:,} values, {per_frame * (index + 1):,} expected")
        arr = arr[per_frame * index : per_frame * (index + 1)]
        shape = (info.rows, info.columns, info.samples) if info.samples > 1 else (info.rows, info.columns)
        frame: np.ndarray = arr.reshape(shape).copy()  # numpy's stubs lose the type on a 2-or-3-D shape
        return frame
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


_stderr_lock = threading.Lock()
_stderr_users = 0
_stderr_saved: int | None = None


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while C decoders run (openjpeg, GDCM and libjpeg print
    there, and the TUI owns the terminal). Reference-counted, so concurrent decodes nest."""
    global _stderr_users, _stderr_saved
    with _stderr_lock:
        if _stderr_users == 0:
            try:
                saved = os.dup(2)
                with open(os.devnull, "wb") as null:
                    os.dup2(null.fileno(), 2)
                _stderr_saved = saved
            except OSError:
                _stderr_saved = None
        _stderr_users += 1
    try:
        yield
    finally:
        with _stderr_lock:
            _stderr_users -= 1
            if _stderr_users == 0 and _stderr_saved is not None:
                with contextlib.suppress(OSError):
                    os.dup2(_stderr_saved, 2)
                    os.close(_stderr_saved)
                _stderr_saved = None


def _gdcm_available() -> bool:
    """python-gdcm is installed (not imported here: it runs in a child process)."""
    import importlib.util

    return importlib.util.find_spec("gdcm") is not None


def _mask_stored(arr: np.ndarray, info: PixelInfo, native: bool) -> np.ndarray:
    """Keep bits [HighBit-BitsStored+1 .. HighBit] and sign-extend (PS3.5 8.1.1)."""
    if arr.dtype.kind not in "iu" or info.bits_allocated == 1:
        return arr
    bits = arr.dtype.itemsize * 8
    shift_low = (info.high_bit + 1 - info.bits_stored) if native else 0
    stored_bits = info.bits_stored
    if stored_bits >= bits and shift_low == 0:
        return _as_signedness(arr, info.signed)
    work = arr.astype(np.int64) if bits >= 32 else arr.astype(np.int32)
    if shift_low:
        work >>= shift_low
    work &= (1 << stored_bits) - 1
    if info.signed:
        sign = 1 << (stored_bits - 1)
        work = (work ^ sign) - sign
    return work.astype(_smallest_dtype(stored_bits, info.signed), copy=False)


def _as_signedness(arr: np.ndarray, signed: bool) -> np.ndarray:
    """Reinterpret full-width integers with the right signedness."""
    if signed and arr.dtype.kind == "u":
        return arr.view(arr.dtype.str.replace("u", "i"))
    if not signed and arr.dtype.kind == "i":
        return arr.view(arr.dtype.str.replace("i", "u"))
    return arr


def _smallest_dtype(bits: int, signed: bool) -> np.dtype:
    for size in (8, 16, 32, 64):
        if bits <= size:
            return np.dtype(f"{'i' if signed else 'u'}{size // 8}")
    return np.dtype("i8")


def decode_frame(ref: FileRef, frame: int = 0, ds: Dataset | None = None, *, native: bool = True) -> Frame:
    """Decode frame ``frame`` (0-based) of the image at ``ref``.

    An uncompressed file that :mod:`tui_dicom.core.imaging.native` reads exactly is decoded there, in
    one read and without pydicom (when ``ds`` holds no pixel data); everything else with pydicom.

    Args:
        ref: The file.
        frame: 0-based frame number.
        ds: The dataset if already read (with or without pixel data); read from ``ref`` when None.
        native: Try the pydicom-free reader first (False: pydicom only, for comparing the two).

    Returns:
        The decoded frame with its display parameters.

    Raises:
        PixelDataError: the pixel data cannot be decoded or does not match its header; the message
            is one line naming what is wrong or what to install.
        DicomViewerError: the header cannot be read (NotDicomError, HeaderError).
        OSError: the file cannot be opened.
    """
    if native and (ds is None or not any(k in ds for k in _PIXEL_KEYWORDS)):
        from tui_dicom.core.imaging.native import read_slice

        quick = read_slice(ref, frame)
        if quick is not None:
            return quick.frame
    from tui_dicom.core.dicom.reading import read_dataset

    read_whole = False
    extent: EncapsulatedExtent | None = None
    if ds is None:
        read_whole = file_size(ref) <= INLINE_FILE_BYTES
        try:
            ds = read_dataset(ref, stop_before_pixels=not read_whole)
        except DicomViewerError:
            if not read_whole:
                raise
            # a file cut inside encapsulated pixel data may fail to read whole: its header still reads
            header = read_dataset(ref, stop_before_pixels=True)
            extent = encapsulated_extent(ref) if "Rows" in header else None
            if extent is None or not extent.truncated:
                raise
            ds = header
    has_pixels = any(k in ds for k in _PIXEL_KEYWORDS)
    if not has_pixels and read_whole and len(ds) == 0:
        # pydicom keeps nothing of a dataset whose last sequence has no end: encapsulated pixel data
        # cut short (or only its delimiter lost) reads as an empty file. The header before it is intact.
        ds = read_dataset(ref, stop_before_pixels=True)
        extent = encapsulated_extent(ref) if "Rows" in ds else None
        if extent is None:
            raise PixelDataError("no pixel data in this file")
    if not has_pixels and "Rows" not in ds:
        raise PixelDataError("no pixel data in this file")
    header_only = not has_pixels
    # a dataset read without pixel data still tells the layout
    info = _pixel_info_header_only(ref, ds) if header_only else pixel_info(ds)
    if not 0 <= frame < info.frames:
        raise PixelDataError(f"frame {frame + 1} does not exist (the image has {info.frames})")
    ts = info.transfer_syntax
    native = _is_native(ts)
    if native:
        if header_only:
            size = file_size(ref)
            if info.native_bytes > size:
                raise PixelDataError(f"pixel data needs {info.native_bytes:,} bytes, the file has {size:,}")
        else:
            present = len(ds[info.keyword].value or b"")
            _check_native_length(info, present)
    if not native and header_only:
        if extent is None and frame > 0:
            extent = encapsulated_extent(ref)
        if extent is not None and extent.truncated and frame >= extent.complete_frames(info.frames):
            raise PixelDataError(_cut_short_reason(extent, info.frames, frame))
    try:
        arr = _decode(ref, ds, info, frame, header_only)
    except PixelDataError as exc:
        if native or isinstance(exc, UnsupportedTransferSyntax):
            raise
        extent = extent or encapsulated_extent(ref)
        if extent is not None and extent.truncated:
            raise PixelDataError(_cut_short_reason(extent, info.frames, frame)) from exc
        raise
    expected_shape = (info.rows, info.columns) + ((3,) if info.samples == 3 else ())
    if arr.shape != expected_shape:
        if arr.size != math.prod(expected_shape):
            raise PixelDataError(f"decoded frame has shape {arr.shape}, {expected_shape} expected")
        arr = arr.reshape(expected_shape)
    arr = _mask_stored(arr, info, native)
    built = _build_frame(ds, info, frame, arr)
    if extent is not None and extent.truncated:
        import dataclasses

        complete = extent.complete_frames(info.frames)
        what = (
            f"all {info.frames} frames are"
            if complete == info.frames
            else f"{complete} of {info.frames} frames are"
        )
        if info.frames == 1:
            what = "its frame is"
        built = dataclasses.replace(
            built, note=f"the file is cut short (its pixel data has no end); {what} complete"
        )
    return built


def cut_before_pixels(ds: Any) -> None:
    """Remove the top-level elements of ``ds`` from its first pixel data tag on, so that a dataset read
    whole holds what ``read_dataset(ref, stop_before_pixels=True)`` gives (a frame decoded from it keeps
    its own values; a numpy view of the pixel bytes keeps those alive)."""
    pixel_tags = (0x7FE00008, 0x7FE00009, 0x7FE00010)
    tags = list(ds.keys())  # iterating a pydicom Dataset gives its elements, not their tags
    first = min((int(tag) for tag in tags if int(tag) in pixel_tags), default=None)
    if first is None:
        return
    for tag in tags:
        if int(tag) >= first:
            del ds[tag]


@dataclass(frozen=True)
class EncapsulatedExtent:
    """What the file holds of its encapsulated pixel data, read item by item without decoding.

    Attributes:
        offsets: The Basic Offset Table (frame starts from the first fragment), empty if not given.
        fragment_ends: For each fragment that is there whole, where it ends (from the first fragment).
        truncated: The file ends before the sequence delimiter (inside a fragment, or just before it).
    """

    offsets: tuple[int, ...]
    fragment_ends: tuple[int, ...]
    truncated: bool

    def complete_frames(self, frames: int) -> int:
        """How many frames, from the first, are there whole (all of them when nothing is cut off).

        Frames are found from the offset table; without one, a multi-frame image has one fragment per
        frame (as pydicom assumes), and a single frame is complete when any fragment of it is.
        """
        if not self.truncated:
            return frames
        end = self.fragment_ends[-1] if self.fragment_ends else 0
        if len(self.offsets) == frames and frames > 0:
            starts = list(self.offsets[1:]) + [None]
            count = 0
            for k, nxt in enumerate(starts):
                # the last frame: complete when a whole fragment begins at or after its start
                whole = any(e > self.offsets[k] for e in self.fragment_ends) if nxt is None else nxt <= end
                if not whole:
                    break
                count = k + 1
            return count
        if frames == 1:
            return 1 if self.fragment_ends else 0
        return min(frames, len(self.fragment_ends))


def encapsulated_extent(ref: FileRef) -> EncapsulatedExtent | None:
    """Walk the items of the file's encapsulated Pixel Data (headers only, values skipped).

    Returns None when the file has no encapsulated Pixel Data (native, absent, or not readable).
    """
    import struct

    from pydicom import dcmread

    try:
        with open_ref(ref) as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dcmread(fh, stop_before_pixels=True)  # leaves fh at the start of the Pixel Data element
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"\xe0\x7f\x10\x00" or head[8:12] != b"\xff\xff\xff\xff":
                return None
            size = file_size(ref)
            first = fh.tell() + 8  # where fragments are counted from: after the offset table item
            offsets: tuple[int, ...] = ()
            ends: list[int] = []
            table = True
            while True:
                item = fh.read(8)
                if len(item) < 8:
                    return EncapsulatedExtent(offsets, tuple(ends), True)
                group, elem, length = struct.unpack("<HHI", item)
                if (group, elem) == (0xFFFE, 0xE0DD):
                    return EncapsulatedExtent(offsets, tuple(ends), False)
                start = fh.tell()
                if (group, elem) != (0xFFFE, 0xE000) or length == 0xFFFFFFFF or start + length > size:
                    return EncapsulatedExtent(offsets, tuple(ends), True)
                if table:
                    raw = fh.read(length)
                    offsets = struct.unpack(f"<{length // 4}I", raw[: length - length % 4])
                    first = fh.tell()
                    table = False
                    continue
                fh.seek(length, os.SEEK_CUR)
                ends.append(fh.tell() - first)
    except Exception:  # noqa: BLE001 - a file that cannot even be walked: nothing to add to the reason
        return None


def _cut_short_reason(extent: EncapsulatedExtent, frames: int, frame: int) -> str:
    """The one-line reason for a frame of a file whose pixel data is cut short."""
    complete = extent.complete_frames(frames)
    if complete == 0:
        return f"the file is cut short: it ends inside the pixel data, before frame 1 of {frames} is complete"
    have = "frame 1 is" if complete == 1 else f"frames 1–{complete} are"
    return (
        f"frame {frame + 1} of {frames} is cut off: the file ends inside its pixel data "
        f"(only {have} complete)"
    )


def _pixel_info_header_only(ref: FileRef, ds: Any) -> PixelInfo:
    """Validate the Image Pixel module of a dataset read without pixel data."""
    import copy

    probe = copy.copy(ds)
    probe.PixelData = b""  # only so pixel_info() finds a pixel keyword
    try:
        return pixel_info(probe)
    finally:
        del probe


def _decode(ref: FileRef, ds: Any, info: PixelInfo, frame: int, header_only: bool) -> np.ndarray:
    """Decode one frame; errors become PixelDataError with a one-line reason."""
    ts = info.transfer_syntax
    first_error: BaseException | None = None
    if _is_gdcm_only(ts, info) and _gdcm_available():
        # pydicom's plugins fail on these anyway, and Pillow/libjpeg print to stderr while trying
        try:
            return _decode_gdcm(ref, info, frame)
        except PixelDataError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise PixelDataError(f"cannot decode {syntax_name(ts)} with GDCM: {_short(exc)}") from exc
    if not _is_native(ts) and (
        ts in streams.J2K_SYNTAXES or ts in streams.JPEG_SYNTAXES or ts == streams.RLE_SYNTAX
    ):
        data = _frame_bytes(ref, ds, info, frame, header_only)
        if data is not None:
            streams.check_frame(
                ts,
                data,
                rows=info.rows,
                columns=info.columns,
                samples=info.samples,
                bits_allocated=info.bits_allocated,
                file=ref.display,
            )
        if ts in streams.J2K_SYNTAXES:
            # openjpeg can loop forever on a corrupt stream: decode in the limited child process
            if data is None:
                raise PixelDataError(f"cannot find frame {frame + 1} in the {syntax_name(ts)} pixel data")
            return _decode_in_child(ts, data, info, ds)
    try:
        if header_only:
            with open_ref(ref) as fh:
                return _decode_pydicom(fh, ts, frame, None, info.frames)
        return _decode_pydicom(ds, ts, frame, _decodable(ds, info), info.frames)
    except PixelDataError as exc:
        first_error = exc
    except MemoryError:
        raise PixelDataError("pixel data too large to decode in memory") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - decoders raise many types on broken data, and
        first_error = exc  # pylibjpeg-rle's Rust panics are BaseException (pyo3 PanicException)
    if ts in _JPEG_FAMILY:
        if _gdcm_available():
            try:
                return _decode_gdcm(ref, info, frame)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - report pydicom's reason, GDCM's is vaguer
                raise PixelDataError(f"cannot decode {syntax_name(ts)}: {_short(first_error)}") from exc
        if _is_gdcm_only(ts, info):
            raise UnsupportedTransferSyntax(
                f"{syntax_name(ts)} needs python-gdcm: pip install 'tui-dicom[gdcm]'"
            ) from first_error
    if isinstance(first_error, DicomViewerError):
        raise first_error
    raise PixelDataError(f"cannot decode {syntax_name(ts)}: {_short(first_error)}") from first_error


def _frame_bytes(ref: FileRef, ds: Any, info: PixelInfo, frame: int, header_only: bool) -> bytes | None:
    """The compressed bytes of frame ``frame`` (None when the encapsulation cannot be parsed: the
    decoder path then reports the problem in its own words)."""
    from pydicom.encaps import get_frame

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not header_only:
                offsets = None
                if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
                    offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
                return bytes(
                    get_frame(
                        ds[info.keyword].value, frame, number_of_frames=info.frames, extended_offsets=offsets
                    )
                )
            from pydicom.filereader import _at_pixel_data, _read_file_meta_info, read_dataset, read_preamble

            with open_ref(ref) as fh:
                read_preamble(fh, True)
                _read_file_meta_info(fh)
                read_dataset(fh, False, True, stop_when=_at_pixel_data)
                fh.read(12)  # (7FE0,0010) OB, reserved, undefined length
                return bytes(get_frame(fh, frame, number_of_frames=info.frames))
    except DicomViewerError:
        raise
    except Exception:  # noqa: BLE001 - malformed encapsulation: the decoder path says why
        return None


def _decode_in_child(ts: str, data: bytes, info: PixelInfo, ds: Any) -> np.ndarray:
    """Decode one compressed frame in the limited child process (see :mod:`sandbox`)."""
    request = sandbox.FrameRequest(
        transfer_syntax=ts,
        data=data,
        rows=info.rows,
        columns=info.columns,
        samples=info.samples,
        bits_allocated=info.bits_allocated,
        bits_stored=info.bits_stored,
        high_bit=info.high_bit,
        pixel_representation=1 if info.signed else 0,
        photometric=_text(_get(ds, "PhotometricInterpretation", info.photometric)) or info.photometric,
        planar=info.planar,
    )
    return sandbox.decode(request, syntax_name(ts))


def _decodable(ds: Any, info: PixelInfo) -> Any:
    """``ds``, or a minimal copy with a readable Number of Frames when the file's is broken."""
    from pydicom.dataset import Dataset, FileMetaDataset

    raw = _get(ds, "NumberOfFrames", None)
    if raw is None or _float(raw) is not None:
        return ds
    out = Dataset()
    for elem in ds:
        if elem.tag == 0x00280008:
            continue  # set below on a new element: the file's own dataset keeps its value
        if elem.tag.group == 0x0028 or elem.tag in (0x7FE00001, 0x7FE00002) or elem.keyword == info.keyword:
            out.add(elem)
    out.NumberOfFrames = info.frames
    out.file_meta = getattr(ds, "file_meta", FileMetaDataset())
    out.set_original_encoding(*getattr(ds, "original_encoding", (False, True)))
    return out


def _is_gdcm_only(ts: str, info: PixelInfo) -> bool:
    """Syntaxes pydicom+pylibjpeg cannot decode but GDCM can (12-bit JPEG Extended)."""
    return ts == "1.2.840.10008.1.2.4.51" and info.bits_stored > 8


def _short(exc: BaseException | None) -> str:
    """One line of an exception message, made safe."""
    if exc is None:
        return "unknown error"
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    if line.startswith("Unable to decode as exceptions were raised by all available plugins"):
        rest = [ln.strip() for ln in text.splitlines()[1:] if ln.strip()]
        preferred = [ln for ln in rest if ln.startswith("pylibjpeg:")]
        line = (preferred or rest or [line])[0]
    return safe_text(line)[:200]


# ---------------------------------------------------------------------------------------------
# display parameters


def _lut_from_item(item: Any, signed_pixels: bool, little_endian: bool) -> Lut | None:
    """A :class:`Lut` from an item with LUTDescriptor/LUTData, or None when unusable."""
    desc = _values(_get(item, "LUTDescriptor"))
    data = _get(item, "LUTData")
    if len(desc) != 3 or data is None:
        return None
    try:
        n, first, bits = (int(v) for v in desc)
    except (TypeError, ValueError):
        return None
    n = n or 65536
    if n > MAX_LUT_ENTRIES or n < 1 or not 1 <= bits <= 16:
        return None
    if signed_pixels and first > 32767:
        first -= 65536
    if isinstance(data, (bytes, bytearray)):
        if bits <= 8 and len(data) == n:
            table = np.frombuffer(data, dtype=np.uint8)
        else:
            table = np.frombuffer(bytes(data[: len(data) // 2 * 2]), dtype="<u2" if little_endian else ">u2")
    else:
        try:
            table = np.asarray(_values(data), dtype=np.int64)
        except (TypeError, ValueError):
            return None
    if table.size < 1:
        return None
    if table.size > n:
        table = table[:n]
    table = table.astype(np.int64)
    return Lut(first, table, bits, _text(_get(item, "LUTExplanation", "")))


def _windows_from(item: Any) -> tuple[Window, ...]:
    """Windows from WindowCenter/WindowWidth (several values: several windows)."""
    centers = _values(_get(item, "WindowCenter"))
    widths = _values(_get(item, "WindowWidth"))
    names = _values(_get(item, "WindowCenterWidthExplanation"))
    function = _text(_get(item, "VOILUTFunction", "LINEAR")).upper() or "LINEAR"
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        function = "LINEAR"
    out = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        cf, wf = _float(c), _float(w)
        if cf is None or wf is None or wf <= 0 or (function == "LINEAR" and wf < 1):
            continue
        name = safe_text(str(names[i])).strip() if i < len(names) else ""
        out.append(Window(cf, wf, function, name))
    return tuple(out)


def _palette(ds: Any, supplemental: bool) -> Palette | None:
    """The palette colour tables of ``ds`` reduced to 8-bit RGB, or None when unusable."""
    from pydicom.dataset import Dataset
    from pydicom.pixels.processing import apply_color_lut

    desc = _values(_get(ds, "RedPaletteColorLookupTableDescriptor"))
    if len(desc) != 3:
        return None
    try:
        n, first, bits = (int(v) for v in desc)
    except (TypeError, ValueError):
        return None
    n = n or 65536
    if n > min(limits.current().lut_entries, MAX_LUT_ENTRIES):
        return None
    if _int(ds, "PixelRepresentation", 0) == 1 and first > 32767:
        first -= 65536
    little = getattr(ds, "original_encoding", (None, True))[1] is not False
    if "RedPaletteColorLookupTableData" in ds:
        channels = []
        for colour in ("Red", "Green", "Blue"):
            data = _get(ds, f"{colour}PaletteColorLookupTableData")
            if not isinstance(data, (bytes, bytearray)):
                return None
            if len(data) == n:  # 8-bit entries
                table = np.frombuffer(bytes(data), dtype=np.uint8)
            else:
                table = np.frombuffer(bytes(data[: len(data) // 2 * 2]), dtype="<u2" if little else ">u2")
            if table.size < 1:
                return None
            if table.size < n:
                table = np.concatenate([table, np.full(n - table.size, table[-1], table.dtype)])
            channels.append(table[:n])
        if len({c.dtype for c in channels}) != 1:
            return None
        rgb = np.stack(channels, axis=1)
    else:
        pal = Dataset()
        for colour in ("Red", "Green", "Blue"):
            for kw in (
                f"{colour}PaletteColorLookupTableDescriptor",
                f"Segmented{colour}PaletteColorLookupTableData",
            ):
                if kw in ds:
                    pal[kw] = ds[kw]
        pal.RedPaletteColorLookupTableDescriptor = [n if n < 65536 else 0, first, bits]
        cap = min(limits.current().lut_entries, MAX_LUT_ENTRIES)
        for colour in ("Red", "Green", "Blue"):
            seg = _get(ds, f"Segmented{colour}PaletteColorLookupTableData")
            if not isinstance(seg, (bytes, bytearray)):
                return None
            try:
                segmented_lut_entries(bytes(seg), bits, little, cap, _file_of(ds))
            except PixelDataError:
                return None  # a broken palette shows the image grey
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "TransferSyntaxUID" in meta:
            pal.file_meta = meta
        else:
            pal.set_original_encoding(*getattr(ds, "original_encoding", (False, True)))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rgb = apply_color_lut(np.arange(first, first + n, dtype=np.int64), pal)
        except Exception:  # noqa: BLE001 - a broken palette shows the image grey
            return None
    rgb = np.asarray(rgb)[..., :3]
    if rgb.ndim != 2 or rgb.shape[0] < 1:
        return None
    if rgb.dtype.itemsize > 1:
        # 16-bit entries; some writers put 8-bit values in 16-bit entries
        top = 255 if int(rgb.max()) <= 255 and bits == 8 else 65535
        rgb8 = np.floor(rgb.astype(np.float64) * 255.0 / top + 0.5) if top != 255 else rgb
        rgb = np.clip(rgb8, 0, 255).astype(np.uint8)
    return Palette(first, np.ascontiguousarray(rgb, dtype=np.uint8), supplemental)


#: segment operations one segmented LUT may take to expand (indirect segments can point at each other)
_MAX_SEGMENT_STEPS = 1_000_000


def segmented_lut_entries(data: bytes, bits: int, little: bool, cap: int, file: str = "") -> int:
    """Count the entries a segmented palette LUT (PS3.3 C.7.9.2) expands to, without expanding it.

    Discrete, linear and indirect segments are walked as pydicom's expansion walks them; an indirect
    segment re-walks the segments it points at, so a few bytes can expand to gigabytes (or loop).
    The walk stops as soon as the count passes ``cap`` or the steps pass a million.

    Raises:
        LimitExceeded: more than ``cap`` entries (dimension ``lut_entries``).
        PixelDataError: a loop, an unknown opcode or an indirect segment pointing outside.
    """
    import struct as _struct

    size = 1 if bits <= 8 else 2
    fmt = ("<" if little else ">") + ("B" if size == 1 else "H") * (len(data) // size)
    words = _struct.unpack(fmt, data[: len(data) // size * size])
    order = [3, 2, 1, 0] if little else [2, 3, 0, 1]
    steps = 0

    def walk(offset: int, nr_segments: int | None, depth: int) -> int:
        nonlocal steps
        total = 0
        done = 0
        while offset + 1 < len(words):
            steps += 1
            if steps > _MAX_SEGMENT_STEPS or depth > 32:
                raise PixelDataError("segmented palette LUT does not end (indirect segments loop)")
            opcode, length = words[offset], words[offset + 1]
            offset += 2
            if opcode == 0:
                total += length
                offset += length
            elif opcode == 1:
                total += length
                offset += 1
            elif opcode == 2:
                if size == 1:
                    ii = [words[offset + v] if offset + v < len(words) else 0 for v in order]
                    target = (ii[0] << 8 | ii[1]) << 16 | (ii[2] << 8 | ii[3])
                    offset += 4
                else:
                    if offset + 1 >= len(words):
                        raise PixelDataError("segmented palette LUT: indirect segment cut short")
                    target = words[offset + 1] << 16 | words[offset]
                    offset += 2
                if target >= len(words):
                    raise PixelDataError("segmented palette LUT: indirect segment points outside the table")
                total += walk(target, length, depth + 1)
            else:
                raise PixelDataError(f"segmented palette LUT: unknown segment type {opcode}")
            if total > cap:
                raise limits.LimitExceeded(file, "lut_entries", None, cap)
            done += 1
            if done == nr_segments:
                break
        return total

    return walk(0, None, 0)


def _overlays(ds: Any, frame: int, rows: int, cols: int) -> tuple[Overlay, ...]:
    """Overlay planes (60xx,3000) that apply to ``frame``."""
    out: list[Overlay] = []
    for group in range(0x6000, 0x6020, 2):
        data_elem = ds.get((group, 0x3000))
        if data_elem is None:
            continue
        try:
            orows = int(_values(ds[(group, 0x0010)].value)[0])
            ocols = int(_values(ds[(group, 0x0011)].value)[0])
            origin = _values(ds[(group, 0x0050)].value) if (group, 0x0050) in ds else [1, 1]
            r0, c0 = int(origin[0]) - 1, int(origin[1]) - 1
            nframes = int(_float(ds[(group, 0x0015)].value, 1) or 1) if (group, 0x0015) in ds else 1
            first = int(_float(ds[(group, 0x0051)].value, 1) or 1) if (group, 0x0051) in ds else 1
            data = data_elem.value
        except Exception:  # noqa: BLE001 - a broken overlay is skipped
            continue
        if not isinstance(data, (bytes, bytearray)) or orows < 1 or ocols < 1:
            continue
        ov_index = frame - (first - 1)
        if not 0 <= ov_index < max(1, nframes):
            continue
        per = orows * ocols
        if orows * ocols > rows * cols * 4 or len(data) * 8 < per * (ov_index + 1):
            continue
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        mask = bits[per * ov_index : per * (ov_index + 1)].reshape(orows, ocols).astype(bool)
        label = _text(ds[(group, 0x1500)].value) if (group, 0x1500) in ds else ""
        out.append(Overlay(r0, c0, mask, label))
    return tuple(out)


def _build_frame(ds: Any, info: PixelInfo, frame: int, arr: np.ndarray) -> Frame:
    """Gather the display parameters of ``frame`` around its stored values."""
    little = bool(getattr(ds, "original_encoding", (None, True))[1] is not False)
    photometric = info.photometric
    if info.samples == 3:
        photometric = "RGB"  # pydicom converts YBR_FULL(_422) and JPEG 2000 YBR_ICT/RCT to RGB
    is_float = arr.dtype.kind == "f"
    # modality: enhanced per-frame Pixel Value Transformation first
    pvt = functional_group(ds, frame, "PixelValueTransformationSequence")
    src = pvt if pvt is not None else ds
    slope = _float(_get(src, "RescaleSlope"), 1.0) or 1.0
    intercept = _float(_get(src, "RescaleIntercept"), 0.0) or 0.0
    rescale_type = _text(_get(src, "RescaleType", ""))
    modality_lut = None
    if info.samples == 1 and photometric != "PALETTE COLOR":
        mitem = _item(_get(ds, "ModalityLUTSequence"))
        if mitem is not None and pvt is None:
            modality_lut = _lut_from_item(mitem, info.signed, little)
            if modality_lut is not None:
                rescale_type = _text(_get(mitem, "ModalityLUTType", "")) or rescale_type
    modality = _text(_get(ds, "Modality", ""))
    has_rescale = "RescaleSlope" in src or "RescaleIntercept" in src
    units = "HU" if modality == "CT" and has_rescale and modality_lut is None else rescale_type
    if units.upper() == "US":  # "unspecified"
        units = ""
    # VOI: enhanced Frame VOI LUT first
    windows: tuple[Window, ...] = ()
    voi_luts: list[Lut] = []
    if photometric in _MONO:
        fvoi = functional_group(ds, frame, "FrameVOILUTSequence")
        windows = _windows_from(fvoi) if fvoi is not None else ()
        if not windows:
            windows = _windows_from(ds)
        for item in _values(_get(ds, "VOILUTSequence")):
            lut = _lut_from_item(item, info.signed and modality_lut is None and slope == 1, little)
            if lut is not None:
                voi_luts.append(lut)
    shape = _text(_get(ds, "PresentationLUTShape", "")).upper()
    presentation_inverse = shape == "INVERSE" and photometric == "MONOCHROME2"
    palette = None
    if photometric == "PALETTE COLOR":
        palette = _palette(ds, supplemental=False)
        if palette is None:
            photometric = "MONOCHROME2"
    elif (
        photometric in _MONO
        and "RedPaletteColorLookupTableDescriptor" in ds
        and _text(_get(ds, "PixelPresentation", "")).upper() in ("COLOR", "MIXED")
    ):
        palette = _palette(ds, supplemental=True)
    # geometry
    sp = spacing_of(ds, frame)  # the one spacing rule (measurements use it too)
    spacing = (sp.row, sp.col) if sp.row and sp.col else None
    ratio_vals = _values(_get(ds, "PixelAspectRatio"))
    ratio = None
    if len(ratio_vals) >= 2:
        v, h = _float(ratio_vals[0]), _float(ratio_vals[1])
        if v and h and v > 0 and h > 0:
            ratio = (v, h)
    if arr.size:
        # integers stay exact Python ints: 64-bit values near 2**63 collapse to one float
        vmin, vmax = arr.min().item(), arr.max().item()
        if is_float and not (math.isfinite(vmin) and math.isfinite(vmax)):
            finite = arr[np.isfinite(arr)]
            vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    else:
        vmin = vmax = 0.0
    return Frame(
        stored=arr,
        photometric=photometric,
        bits_stored=info.bits_stored,
        signed=info.signed,
        is_float=is_float,
        rescale_slope=slope,
        rescale_intercept=intercept,
        modality_lut=modality_lut,
        units=units,
        windows=windows,
        voi_luts=tuple(voi_luts),
        presentation_inverse=presentation_inverse,
        palette=palette,
        overlays=_overlays(ds, frame, info.rows, info.columns),
        pixel_spacing=spacing,
        aspect_ratio=ratio,
        index=frame,
        number_of_frames=info.frames,
        transfer_syntax=info.transfer_syntax,
        modality=modality,
        value_range=(vmin, vmax),
    )
