"""The DICOM grey-scale display pipeline: modality LUT -> VOI (window or VOI LUT) -> presentation -> 8 bits.

Pure numpy, in the order of PS3.4 N.2 / PS3.3 C.11: stored values go through the modality LUT (or
rescale), then the VOI transform (a window with function LINEAR, LINEAR_EXACT or SIGMOID, or a VOI
LUT), then the presentation (MONOCHROME1 and Presentation LUT Shape INVERSE show inverted), and end
as 8-bit grey. Colour images (RGB, palette colour, supplemental palettes) are mapped to 8-bit RGB.
Overlays are burned in white.

For integer stored values the whole chain is evaluated once per distinct stored value (a lookup
table over the frame's value range) and applied with one ``np.take``, so changing the window only
rebuilds a table of at most 65,536 entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

if TYPE_CHECKING:
    from tui_dicom.core.imaging.pixels import Frame, Lut

#: integer frames whose value range is at most this wide are rendered through a lookup table
MAX_TABLE = 1 << 20


@dataclass(frozen=True)
class Window:
    """A VOI window (PS3.3 C.11.2.1.2): centre, width and function, with an optional name."""

    center: float
    width: float
    function: str = "LINEAR"
    name: str = ""

    @property
    def label(self) -> str:
        """Short text for the annotation: ``"brain 40/80"`` or ``"C 40 W 80"``."""
        nums = f"{_fmt(self.center)}/{_fmt(self.width)}"
        return f"{self.name} {nums}" if self.name else f"C {_fmt(self.center)} W {_fmt(self.width)}"

    def with_name(self, name: str) -> Window:
        """The same window under another name."""
        return Window(self.center, self.width, self.function, name)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}"


#: CT presets (centre/width in HU), in the order of the viewer's number keys
PRESETS: dict[str, Window] = {
    name: Window(float(c), float(w), "LINEAR", name)
    for name, c, w in (
        ("brain", 40, 80),
        ("subdural", 75, 215),
        ("stroke", 40, 40),
        ("temporal bone", 600, 2800),
        ("lung", -600, 1500),
        ("mediastinum", 50, 350),
        ("abdomen", 50, 400),
        ("liver", 60, 160),
        ("bone", 400, 1800),
    )
}
#: names of the computed windows (besides PRESETS)
COMPUTED = ("file", "min-max", "auto")


def preset_names() -> list[str]:
    """All names :func:`window_by_name` accepts, presets first."""
    return [*PRESETS, *COMPUTED]


def window_by_name(frame: Frame, name: str) -> Window | None:
    """The window called ``name`` for ``frame``: a preset, ``file``, ``min-max`` (or ``min–max``), ``auto``.

    Returns None for ``file`` when the file has no window, and for unknown names.
    """
    key = name.strip().lower().replace("–", "-").replace("_", " ")
    if key in PRESETS:
        return PRESETS[key]
    if key == "file":
        wins = file_windows(frame)
        return wins[0] if wins else None
    if key in ("min-max", "minmax"):
        return minmax_window(frame)
    if key == "auto":
        return auto_window(frame)
    return None


def file_windows(frame: Frame) -> list[Window]:
    """The windows the file defines for this frame, in file order."""
    return list(frame.windows)


def default_window(frame: Frame) -> Window | None:
    """The viewer's first window: the file's first; None for colour or when the file has only a VOI
    LUT (``render`` then uses that LUT); else :func:`auto_window`."""
    if not frame.is_grey:
        return None
    if frame.windows:
        return frame.windows[0]
    if frame.voi_luts:
        return None
    return auto_window(frame)


def _modality_range(frame: Frame, lo: float, hi: float) -> tuple[float, float]:
    vals = frame.modality_transform(np.asarray([lo, hi]))
    return float(vals.min()), float(vals.max())


def minmax_window(frame: Frame) -> Window:
    """The window spanning the frame's smallest to largest modality value (like DCMTK ``+Wm``)."""
    if frame.modality_lut is not None and not frame.is_float:
        mv = frame.modality_values()
        lo, hi = float(mv.min()), float(mv.max())
    else:
        lo, hi = _modality_range(frame, *frame.value_range)
    return _span_window(frame, lo, hi, "min-max")


def _span_window(frame: Frame, lo: float, hi: float, name: str) -> Window:
    """The window from ``lo`` to ``hi``; the centre computed without overflow (a Rescale Intercept of
    1e308 made ``lo + hi`` infinite), and a finite fallback when the values are not finite."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return Window(0.0, 1.0, "LINEAR", name)
    width = hi - lo if math.isfinite(hi - lo) else float(np.finfo(np.float64).max)
    if frame.is_float:
        return Window(lo / 2 + hi / 2, max(width, 1e-9), "LINEAR_EXACT", name)
    return Window(lo / 2 + hi / 2 + 0.5, max(width + 1, 1.0), "LINEAR", name)


def auto_window(frame: Frame, low: float = 0.5, high: float = 99.5) -> Window:
    """A window over the ``low``..``high`` percentiles of the modality values (robust to outliers)."""
    stored = frame.stored
    if stored.ndim == 3:
        stored = stored.mean(axis=2)
    sample = stored[:: max(1, stored.shape[0] // 256), :: max(1, stored.shape[1] // 256)]
    sample = sample[np.isfinite(sample)] if frame.is_float else sample.ravel()
    if sample.size == 0:
        return Window(0.0, 1.0, "LINEAR", "auto")
    plo, phi = np.percentile(sample, [low, high])
    lo, hi = _modality_range(frame, float(plo), float(phi))
    if frame.modality_lut is not None and not frame.is_float:
        mv = frame.modality_transform(np.asarray(sample))
        lo, hi = (float(v) for v in np.percentile(mv, [low, high]))
    if hi <= lo:
        lo, hi = _modality_range(frame, *frame.value_range)
    return _span_window(frame, lo, hi, "auto")


def percentile_window(frame: Frame, low: float, high: float) -> Window:
    """The ``low``..``high`` percentile window, named for the menu (e.g. ``"percentile 5–95"``)."""
    return auto_window(frame, low, high).with_name(f"percentile {_fmt(low)}–{_fmt(high)}")


# ------------------------------------------------------------------------------------------ interaction

#: one w/W/l/L press moves the width or level by this fraction of the current width
WINDOW_STEP = 0.1
#: alt+w/W/l/L take this fraction of a normal step
FINE_STEP = 0.1
#: the percentile windows offered for images whose values are not Hounsfield units
PERCENTILES = ((1.0, 99.0), (2.0, 98.0), (5.0, 95.0))


def is_hounsfield(frame: Frame) -> bool:
    """True when the frame's modality values are Hounsfield units (CT rescale or a Modality LUT to HU):
    only then do the CT presets (brain, bone, lung...) mean anything."""
    return frame.is_grey and frame.units.strip().upper() == "HU"


def step_window(
    window: Window, d_width: float, d_level: float, *, fine: bool = False, integer: bool = True
) -> Window:
    """The window after ``d_width``/``d_level`` presses of w/W/l/L (negative: narrower/lower).

    A step is :data:`WINDOW_STEP` of the current width (a tenth of that when ``fine``), so the same
    number of presses halves a 4,000-wide MR window and an 80-wide brain window. For integer stored
    values a step is at least 1 and the width stays at least 1 (PS3.3 C.11.2.1.2 LINEAR); for float
    values (Float Pixel Data, LINEAR_EXACT) only positive.
    """
    step = window.width * WINDOW_STEP * (FINE_STEP if fine else 1.0)
    if integer:
        step = max(1.0, round(step))
    floor = 1.0 if integer or window.function == "LINEAR" else 1e-9
    width = max(floor, window.width + d_width * step)
    center = window.center + d_level * step
    if not (math.isfinite(width) and math.isfinite(center)):
        return window
    return Window(center, width, window.function, "")


def window_presets(frame: Frame) -> list[Window]:
    """The windows of the number keys 1–9 for ``frame``, fitting its modality.

    Hounsfield units (CT): the CT presets, brain to bone. Anything else (MR, US, CR, PET...): the file's
    own windows (all of them, in file order), then auto (0.5–99.5 %), min–max and the
    :data:`PERCENTILES` windows, at most nine. Colour images have none.
    """
    if not frame.is_grey:
        return []
    if is_hounsfield(frame):
        return list(PRESETS.values())
    out = file_window_list(frame)
    out.append(auto_window(frame))
    out.append(minmax_window(frame).with_name("min–max"))
    out.extend(percentile_window(frame, lo, hi) for lo, hi in PERCENTILES)
    return out[:9]


def file_window_list(frame: Frame) -> list[Window]:
    """The file's windows, each named (its explanation, else ``file``) with its place: ``file 2/3``."""
    wins = file_windows(frame)
    n = len(wins)
    out = []
    for i, win in enumerate(wins, start=1):
        place = f" {i}/{n}" if n > 1 else ""
        out.append(win.with_name(f"{win.name or 'file'}{place}"))
    return out


@dataclass(frozen=True)
class FileWindow:
    """The file's ``index``-th window, taken from whichever slice is shown: the slices of a series may
    each carry their own (a CT series often does), so the choice is an index, not a centre and width."""

    index: int


def next_file_window(frame: Frame, current: Window | FileWindow | None) -> FileWindow | None:
    """What ``0`` chooses after ``current``: the file's next window (cycling through all of them); the
    first after a preset or a manual change; None when the file defines no window.

    ``current`` None is the viewer's default, which is the file's first window when it has one.
    """
    n = len(file_windows(frame))
    if n == 0:
        return None
    if isinstance(current, FileWindow):
        return FileWindow((current.index + 1) % n)
    if current is None:
        return FileWindow(1 % n)
    return FileWindow(0)


def resolve_window(frame: Frame, window: Window | FileWindow | None) -> Window | None:
    """The window to render ``frame`` with: a :class:`FileWindow` becomes this frame's window of that
    index (named ``file 2/3``; the default when it has fewer); None becomes :func:`default_window`."""
    if isinstance(window, FileWindow):
        wins = file_window_list(frame)
        return wins[window.index] if window.index < len(wins) else default_window(frame)
    if window is None:
        return default_window(frame)
    return window


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """Map modality values through ``window`` to [0, 1] (PS3.3 C.11.2.1.2 and C.11.2.1.3).

    LINEAR: ``((x - (c - 0.5)) / (w - 1) + 0.5)`` clamped (w = 1 is a threshold at c - 0.5);
    LINEAR_EXACT: ``(x - c) / w + 0.5`` clamped; SIGMOID: ``1 / (1 + exp(-4 (x - c) / w))``.
    """
    x = np.asarray(values, dtype=np.float64)
    c, w = float(window.center), float(window.width)
    fn = window.function.upper()
    if fn == "SIGMOID":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-4.0 * (x - c) / max(w, 1e-12)))
    if fn == "LINEAR_EXACT":
        return np.clip((x - c) / max(w, 1e-12) + 0.5, 0.0, 1.0)
    if w <= 1.0:
        return (x > c - 0.5).astype(np.float64)
    return np.clip((x - (c - 0.5)) / (w - 1.0) + 0.5, 0.0, 1.0)


def apply_voi_lut(values: np.ndarray, lut: Lut) -> np.ndarray:
    """Map modality values through a VOI LUT to [0, 1] (its output range is 0..2^bits-1)."""
    idx = np.floor(np.asarray(values, dtype=np.float64) + 0.5)
    out = lut.apply(idx).astype(np.float64)
    return out / max(lut.max_output, 1)


def _to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] floats to 0..255, rounded to nearest (colour scaling)."""
    return cast("np.ndarray", np.floor(np.clip(unit, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def _grey_to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] presentation values to 0..255 by truncation, as DCMTK does (measured: identical to
    ``dcmj2pnm +Ww`` on CT_small, where rounding differs by 1 on 5,592 pixels). The tiny epsilon
    keeps exact thirds (0.6666..) from falling a level below."""
    return cast("np.ndarray", np.floor(np.clip(unit, 0.0, 1.0) * 255.0 + 1e-7).astype(np.uint8))


def _full_range(frame: Frame) -> tuple[float, float]:
    """Range of modality values the frame's stored values could take (for "no VOI")."""
    if frame.is_float:
        return _modality_range(frame, *frame.value_range)
    if frame.modality_lut is not None:
        data = frame.modality_lut.data
        return float(data.min()), float(data.max())
    bits = frame.bits_stored
    smin, smax = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if frame.signed else (0, (1 << bits) - 1)
    return _modality_range(frame, smin, smax)


def _grey_unit(
    frame: Frame, stored: np.ndarray, window: Window | None, voi: Lut | None, full: tuple[float, float] | None
) -> np.ndarray:
    """Stored values -> presentation values in [0, 1] (modality, VOI, presentation)."""
    m = frame.modality_transform(stored)
    if window is not None:
        unit = apply_window(m, window)
    elif voi is not None:
        unit = apply_voi_lut(m, voi)
    else:
        lo, hi = full if full is not None else _full_range(frame)
        unit = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    if frame.is_float:
        unit = np.nan_to_num(unit, nan=0.0)
    if (frame.photometric == "MONOCHROME1") != frame.presentation_inverse:
        unit = 1.0 - unit
    return unit


def grey_table(
    frame: Frame, window: Window | None = None, *, use_voi: bool = True
) -> tuple[int, np.ndarray] | None:
    """The 8-bit lookup table for ``frame``'s integer value range: (first stored value, table).

    None when the frame is float or its value range is too wide for a table.
    """
    if frame.is_float or frame.stored.dtype.kind not in "iub":
        return None
    lo, hi = (int(v) for v in frame.value_range)
    if hi - lo + 1 > MAX_TABLE:
        return None
    if frame.stored.dtype.kind == "u" and hi < 65536:
        lo = 0  # index with the stored values directly: no subtraction per pixel
    window, voi = _choose_voi(frame, window, use_voi)
    xs = np.arange(lo, hi + 1, dtype=np.uint64 if hi > np.iinfo(np.int64).max else np.int64)
    return lo, _grey_to_uint8(_grey_unit(frame, xs, window, voi, None))


def _choose_voi(frame: Frame, window: Window | None, use_voi: bool) -> tuple[Window | None, Lut | None]:
    if window is not None:
        return window, None
    if not use_voi:
        return None, None
    if frame.windows:
        return frame.windows[0], None
    if frame.voi_luts:
        return None, frame.voi_luts[0]
    return auto_window(frame), None


def render_grey(frame: Frame, window: Window | None = None, *, use_voi: bool = True) -> np.ndarray:
    """The grey picture (uint8 H x W) of a MONOCHROME frame, before inversion and overlays."""
    stored = frame.stored if frame.stored.ndim == 2 else frame.stored[..., 0]
    table = grey_table(frame, window, use_voi=use_voi)
    if table is not None:
        lo, lut = table
        if lo == 0:
            return np.take(lut, stored)
        if stored.dtype.itemsize >= 4:
            # 32/64-bit values: lo is one of them, so it fits their type and every offset is in
            # [0, hi - lo] (an int32 subtraction failed for unsigned values above 2**31)
            return cast("np.ndarray", np.take(lut, np.subtract(stored, stored.dtype.type(lo))))
        return cast("np.ndarray", np.take(lut, np.subtract(stored, lo, dtype=np.int32)))
    chosen, voi = _choose_voi(frame, window, use_voi)
    return _grey_to_uint8(_grey_unit(frame, stored, chosen, voi, None))


def _colour_8bit(frame: Frame) -> np.ndarray:
    """RGB stored values scaled to 8 bits."""
    s = frame.stored
    if s.dtype == np.uint8 and frame.bits_stored == 8:
        return s
    if frame.is_float:
        lo, hi = frame.value_range
        unit = (s.astype(np.float64) - lo) / (hi - lo) if hi > lo else np.zeros(s.shape)
        return _to_uint8(unit)
    bits = frame.bits_stored
    if frame.signed:
        s = s.astype(np.int64) + (1 << (bits - 1))
    top = (1 << bits) - 1
    return _to_uint8(s.astype(np.float64) / top)


def _palette_rgb(frame: Frame, stored: np.ndarray) -> np.ndarray:
    pal = frame.palette
    assert pal is not None
    idx = np.clip(np.subtract(stored, pal.first_mapped, dtype=np.int64), 0, len(pal.rgb) - 1)
    return cast("np.ndarray", pal.rgb[idx])


def render(
    frame: Frame,
    window: Window | None = None,
    *,
    invert: bool = False,
    overlays: bool = True,
    use_voi: bool = True,
) -> np.ndarray:
    """The displayed picture of ``frame``: uint8 H x W (grey) or H x W x 3 (colour).

    Args:
        frame: The decoded frame.
        window: The VOI window; None: the file's first window, else its first VOI LUT, else auto
            (with ``use_voi``), or no VOI at all (the full value range) without it. Ignored for colour.
        invert: Invert the output (the viewer's invert key).
        overlays: Burn the frame's overlay planes in (white).
        use_voi: With ``window=None``, use the file's VOI (window or VOI LUT).

    Returns:
        A new or read-only array; do not modify it in place.
    """
    if frame.photometric == "RGB":
        out = _colour_8bit(frame)
    elif frame.photometric == "PALETTE COLOR" and frame.palette is not None:
        out = _palette_rgb(frame, frame.stored)
    else:
        out = render_grey(frame, window, use_voi=use_voi)
        pal = frame.palette
        if pal is not None and pal.supplemental:
            grey = out
            out = np.repeat(grey[..., None], 3, axis=2)
            st = frame.stored
            inside = (st >= pal.first_mapped) & (st < pal.first_mapped + len(pal.rgb))
            out[inside] = _palette_rgb(frame, st[inside])
    if invert:
        out = 255 - out
    if overlays and frame.overlays:
        out = burn_overlays(out, frame)
    return out


def burn_overlays(picture: np.ndarray, frame: Frame) -> np.ndarray:
    """A copy of ``picture`` with the frame's overlay planes drawn white."""
    out = picture.copy()
    rows, cols = out.shape[:2]
    for ov in frame.overlays:
        r0, c0 = ov.row, ov.col
        r1, c1 = min(rows, r0 + ov.mask.shape[0]), min(cols, c0 + ov.mask.shape[1])
        rs, cs = max(0, r0), max(0, c0)
        if r1 <= rs or c1 <= cs:
            continue
        sub = ov.mask[rs - r0 : r1 - r0, cs - c0 : c1 - c0]
        out[rs:r1, cs:c1][sub] = 255
    return cast("np.ndarray", out)


def pixel_aspect(frame: Frame) -> float:
    """Physical height / width of one pixel (Pixel Spacing row/column, else Pixel Aspect Ratio), else 1."""
    if frame.pixel_spacing is not None:
        r, c = frame.pixel_spacing
        ratio = r / c
    elif frame.aspect_ratio is not None:
        v, h = frame.aspect_ratio
        ratio = v / h
    else:
        return 1.0
    return ratio if math.isfinite(ratio) and 0.01 <= ratio <= 100 else 1.0
