"""Sixel encoder for grey and colour pictures, vectorised with numpy (no Python loop over bands or colours).

The whole palette is defined up front, then every 6-row band sends, for each register present in
it, the sixel characters of the columns that register covers: leading and inner gaps become ``?``
runs, trailing blanks are dropped and runs of 4+ equal characters use ``!n``.

How it is vectorised: the six pixels of every band column are compared with each other (36 array
comparisons for the whole picture), which yields every (band, column, register) triple with its
6-bit sixel character at once; a stable radix sort by (band, register) puts them in wire order;
runs and gaps come from array differences; each run becomes one fixed-width row of bytes whose
unused positions are zero, and dropping the zeros leaves the sixel body.

Colour registers are specified in percent (``#n;2;r;g;b`` with 0..100), so the wire can express
101 levels per channel: grey pictures use one register per grey level (all 256 input levels map to
the nearest of the 101 percent levels, as a terminal would round them). Colour pictures (overlays
on a grey image) keep the greys and give every other colour its own register; pictures with more
distinct colours than registers are quantised by Pillow (median cut).

The image is sent with ``P2=1`` (pixels not painted keep what is below) and raster attributes
giving its exact pixel size, so a height that is not a multiple of 6 never paints below the image.
Pure numpy + Pillow.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

ESC = "\x1b"
MAX_REGISTERS = 256
GREY_LEVELS = 101
"""Distinct greys a sixel register can hold (percent 0..100)."""

# uint8 level -> nearest percent (what a register can hold); the same rounding a terminal applies.
_PERCENT = np.round(np.arange(256) * 100.0 / 255.0).astype(np.int64)
_SEP, _HASH, _BANG, _BLANK = ord("-"), ord("#"), ord("!"), ord("?")
_DOLLAR = ord("$")


DEFAULT_MAX_BYTES = 200_000
"""Default wire budget of :func:`encode`: pictures that would exceed it get fewer grey levels."""
LEVEL_STEPS = (101, 72, 56, 44, 36, 30, 25, 21, 18, 16, 14, 12, 10, 8)
"""Grey level counts :func:`encode` tries, finest first, to fit ``max_bytes``."""


def _grey_percent(levels: np.ndarray) -> np.ndarray:
    """uint8 grey levels -> percent 0..100 (what a sixel register can hold)."""
    return _PERCENT[np.asarray(levels, dtype=np.int64)]


@lru_cache(maxsize=32)
def grey_lut(levels: int = GREY_LEVELS) -> np.ndarray:
    """Map uint8 grey to one of ``levels`` evenly spaced percent values (register numbers).

    Args:
        levels: 2..101 grey levels; 101 keeps every level a register can hold.

    Returns:
        int array of 256 percent values (0..100).
    """
    levels = max(2, min(GREY_LEVELS, int(levels)))
    step = np.round(np.arange(256) * (levels - 1) / 255.0)
    return np.round(step * 100.0 / (levels - 1)).astype(np.uint8)


def indexed(
    picture: np.ndarray, registers: int = MAX_REGISTERS, grey_levels: int = GREY_LEVELS
) -> tuple[np.ndarray, np.ndarray]:
    """Turn a picture into register indices and a palette of percent RGB.

    Greys use registers 0..100 (register ``n`` holds ``n`` percent); other colours follow.

    Args:
        picture: uint8 ``HxW`` grey or ``HxWx3`` RGB.
        registers: number of colour registers available.
        grey_levels: how many evenly spaced grey levels to use (2..101).

    Returns:
        ``(index, palette)``: int array ``HxW`` of register numbers and ``(n, 3)`` percent RGB values.
    """
    if picture.ndim == 3 and picture.shape[2] >= 3:
        rgb = picture[..., :3]
        grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
        if grey.all():
            picture = rgb[..., 0]
        else:
            packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
            colours = np.unique(packed[~grey])
            if len(colours) <= registers - GREY_LEVELS:
                index = grey_lut(grey_levels)[rgb[..., 0]]
                extra = np.searchsorted(colours, packed[~grey])
                index[~grey] = GREY_LEVELS + extra
                pal_grey = np.repeat(np.arange(GREY_LEVELS)[:, None], 3, axis=1)
                cols = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1)
                return index, np.concatenate([pal_grey, _grey_percent(cols)])
            img = Image.fromarray(np.ascontiguousarray(rgb)).quantize(
                colors=registers, dither=Image.Dither.NONE
            )
            pal = np.array(img.getpalette()[: 3 * registers], dtype=np.int64).reshape(-1, 3)
            return np.asarray(img).astype(np.int64), _grey_percent(pal)
    index = grey_lut(grey_levels)[picture]
    return index, np.repeat(np.arange(GREY_LEVELS)[:, None], 3, axis=1)


@lru_cache(maxsize=8)
def _digits(limit: int) -> np.ndarray:
    """ASCII decimal digits of 0..limit, right-aligned in 6 columns, unused leading columns 0."""
    n = np.arange(limit + 1, dtype=np.int64)[:, None]
    power = 10 ** np.arange(5, -1, -1, dtype=np.int64)[None, :]
    table = (48 + (n // power) % 10).astype(np.uint8)
    table[(n < power) & (power > 1)] = 0
    return table


def _runs(out: np.ndarray, chars: np.ndarray | int, count: np.ndarray, digits: np.ndarray) -> None:
    """Write runs of ``count`` x ``chars`` into 10-byte rows of ``out``: ``!n`` + char from 4 on, else the chars.

    Rows are ``!``, 6 digit columns, 3 char columns; unused bytes stay 0 (a ``count == 0`` row is all 0).
    """
    long = count >= 4
    out[long, 0] = _BANG
    out[long, 1:7] = digits[count[long]]
    reps = np.where(long, 1, count)
    for k in range(3):
        out[:, 7 + k] = np.where(reps > k, chars, 0)


def body(index: np.ndarray, registers: int = MAX_REGISTERS) -> bytes:
    """The sixel data (bands, registers, runs) for a picture of register numbers.

    Args:
        index: int ``HxW`` register numbers in ``0..registers-1``; a negative number leaves that
            pixel unpainted.
        registers: number of registers (bounds the numbers in ``index``).

    Returns:
        The bytes between the palette and the closing ``ESC \\`` (bands separated by ``-``).
    """
    h, w = index.shape
    if h == 0 or w == 0:
        return b""
    nbands = -(-h // 6)
    small = int(index.max()) < 255
    none = 255 if small else 65535  # sentinel for padding / unpainted pixels
    grid = np.full((nbands * 6, w), none, dtype=np.uint8 if small else np.uint16)
    if index.dtype.kind == "i" and int(index.min()) < 0:
        index = np.where(index < 0, none, index)
    grid[:h] = index
    planes = grid.reshape(nbands, 6, w)
    rows = [planes[:, r] for r in range(6)]
    bits = [np.full(rows[0].shape, 1 << r, np.uint8) for r in range(6)]
    first = [row != none for row in rows]
    for r in range(6):
        for s in range(r + 1, 6):
            same = rows[s] == rows[r]
            bits[r] |= same.view(np.uint8) << s
            bits[s] |= same.view(np.uint8) << r
            first[s] &= ~same
    # one entry per (band, column, register), in (band, column) order
    flat = np.flatnonzero(np.stack(first, axis=-1)).astype(np.int32)
    reg = np.stack(rows, axis=-1).ravel()[flat].astype(np.int32)
    char = np.stack(bits, axis=-1).ravel()[flat]
    band, col = np.divmod(flat // 6, np.int32(w))
    # stable sort by (band, register): radix sort when the key fits 16 bits; columns stay ascending
    key = band * np.int32(registers + 1) + reg
    order = np.argsort(key.astype(np.uint16) if int(key[-1]) < 65536 else key, kind="stable")
    key, col, char = key[order], col[order], char[order]
    n = len(key)
    group = np.ones(n, bool)
    np.not_equal(key[1:], key[:-1], out=group[1:])
    # a run continues while the register, the character and adjacent columns continue
    start = group.copy()
    start[1:] |= (col[1:] != col[:-1] + 1) | (char[1:] != char[:-1])
    first_i = np.flatnonzero(start)
    last_i = np.append(first_i[1:], n) - 1
    r_group = group[first_i]
    r_band, r_reg = np.divmod(key[first_i], np.int32(registers + 1))
    r_col0, r_col1 = col[first_i], col[last_i]
    gap = r_col0.copy()
    inner = ~r_group
    gap[1:][inner[1:]] = (r_col0[1:] - r_col1[:-1] - 1)[inner[1:]]
    digits = _digits(max(w, registers))
    m = len(first_i)
    table = np.zeros((m, 28), np.uint8)  # separator, '#', 6 digits | gap run (10) | pixel run (10)
    new_band = np.ones(m, bool)
    new_band[1:] = r_band[1:] != r_band[:-1]
    table[:, 0] = np.where(r_group, np.where(new_band, _SEP, _DOLLAR), 0)
    table[0, 0] = 0
    table[r_group, 1] = _HASH
    table[r_group, 2:8] = digits[r_reg[r_group]]
    _runs(table[:, 8:18], _BLANK, gap, digits)
    _runs(table[:, 18:28], char[first_i] + 63, r_col1 - r_col0 + 1, digits)
    if np.any(np.diff(r_band[new_band]) > 1):  # a band with no painted pixel: one '-' per band skipped
        return _with_empty_bands(table, r_band, new_band)
    return b"-" * int(r_band[0]) + table[table != 0].tobytes()


def _with_empty_bands(table: np.ndarray, band: np.ndarray, new_band: np.ndarray) -> bytes:
    """Slow path of :func:`body` when some band paints nothing (extra ``-`` per skipped band)."""
    table[:, 0] = np.where(table[:, 0] == _SEP, 0, table[:, 0])
    out = bytearray(b"-" * int(band[0]))
    starts = np.flatnonzero(new_band).tolist() + [len(table)]
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        if a:
            out += b"-" * int(band[a] - band[a - 1])
        rows = table[a:b]
        out += rows[rows != 0].tobytes()
    return bytes(out)


def _palette(index: np.ndarray, palette: np.ndarray) -> bytes:
    """Colour register definitions for the registers ``index`` uses."""
    used = np.flatnonzero(np.bincount(index.ravel(), minlength=len(palette)))
    return b"".join(b"#%d;2;%d;%d;%d" % (int(c), *(int(v) for v in palette[c])) for c in used)


def fit_levels(picture: np.ndarray, max_bytes: int, registers: int = MAX_REGISTERS) -> int:
    """The most grey levels (from :data:`LEVEL_STEPS`) whose encoding should fit ``max_bytes``.

    The size is predicted by encoding 16 bands spread over the picture and scaling up; the
    level steps are bisected (about five small trial encodings).

    Args:
        picture: uint8 ``HxW`` grey or ``HxWx3`` RGB.
        max_bytes: wire budget for the whole sixel sequence.
        registers: colour registers available.

    Returns:
        A level count; the smallest step when even that is predicted to exceed the budget.
    """
    nbands = -(-picture.shape[0] // 6)
    picks = np.unique(np.linspace(0, nbands - 1, min(nbands, 16)).round().astype(np.int64))
    rows = (picks[:, None] * 6 + np.arange(6)[None, :]).ravel()
    sample = picture[rows[rows < picture.shape[0]]]
    scale = nbands / len(picks)

    def fits(levels: int) -> bool:
        index, palette = indexed(sample, registers, levels)
        size = len(_palette(index, palette)) + scale * len(body(index, max(registers, len(palette)))) + 40
        return size <= 0.95 * max_bytes  # 5% margin for the sampling error

    if fits(LEVEL_STEPS[0]):
        return LEVEL_STEPS[0]
    # the size falls as levels fall: bisect for the first step that fits
    lo, hi = 1, len(LEVEL_STEPS) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(LEVEL_STEPS[mid]):
            hi = mid
        else:
            lo = mid + 1
    return LEVEL_STEPS[lo]


def encode(
    picture: np.ndarray,
    *,
    registers: int = MAX_REGISTERS,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    grey_levels: int | None = None,
) -> bytes:
    """Encode a uint8 picture as one complete sixel DCS sequence.

    Grey precision adapts to the budget: a picture whose exact encoding (all 101 levels a
    register can hold) fits ``max_bytes`` is sent exactly; a larger or noisier one gets the most
    evenly spaced grey levels that fit (see :func:`fit_levels`). Non-grey colours stay exact.

    Args:
        picture: uint8 ``HxW`` grey or ``HxWx3`` RGB.
        registers: colour registers the terminal offers (256 in xterm/mlterm).
        max_bytes: wire budget; None sends every level.
        grey_levels: force this many grey levels (2..101) instead of fitting the budget.

    Returns:
        ``ESC P 0;1;0 q ... ESC \\`` as bytes; empty bytes for an empty picture.
    """
    if picture.size == 0:
        return b""
    if grey_levels is None:
        grey_levels = GREY_LEVELS if max_bytes is None else fit_levels(picture, max_bytes, registers)
    index, palette = indexed(picture, registers, grey_levels)
    h, w = index.shape
    head = b'\x1bP0;1;0q"1;1;%d;%d' % (w, h) + _palette(index, palette)
    return head + body(index, max(registers, len(palette))) + b"\x1b\\"
