"""Half-block encoder: a picture with 2 pixel rows per text row, as compact SGR + ``▀``/``▄`` text.

Each cell shows two vertically stacked pixels: ``▀`` with foreground = top, background = bottom
(or ``▄`` the other way round, whichever reuses the colours already set; a space when both are
equal). Only colours that change are re-sent, which is what keeps a 512² CT near 85 KB per frame.

Colours are 24-bit (``38;2;r;g;b``) or, for terminals without truecolor, the xterm 256-colour
palette with greys mapped to the nearest of its 30 grey levels (the 24-step ramp 232-255 plus the
6 greys of the colour cube), so grey images keep every level the palette has instead of the
posterised 16/256-colour mapping a generic downgrade gives.

Pure numpy; no Textual or Rich. The UI wraps the output into Textual Strips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UPPER = "\u2580"  # ▀
LOWER = "\u2584"  # ▄

_CUBE = np.array([0, 95, 135, 175, 215, 255], dtype=np.int32)
_RAMP = 8 + 10 * np.arange(24, dtype=np.int32)


def palette_256() -> np.ndarray:
    """The xterm 256-colour palette as a ``(256, 3)`` uint8 array (16 system colours as in xterm)."""
    base = [
        (0, 0, 0),
        (205, 0, 0),
        (0, 205, 0),
        (205, 205, 0),
        (0, 0, 238),
        (205, 0, 205),
        (0, 205, 205),
        (229, 229, 229),
        (127, 127, 127),
        (255, 0, 0),
        (0, 255, 0),
        (255, 255, 0),
        (92, 92, 255),
        (255, 0, 255),
        (0, 255, 255),
        (255, 255, 255),
    ]
    cube = [(_CUBE[r], _CUBE[g], _CUBE[b]) for r in range(6) for g in range(6) for b in range(6)]
    ramp = [(v, v, v) for v in _RAMP]
    return np.array(base + cube + ramp, dtype=np.uint8)


def _grey_lut() -> np.ndarray:
    """uint8 grey level -> nearest grey palette index among the ramp and the cube's greys."""
    levels = np.concatenate([_CUBE, _RAMP])
    index = np.concatenate([16 + 43 * np.arange(6), 232 + np.arange(24)])
    dist = np.abs(np.arange(256)[:, None] - levels[None, :])
    nearest: np.ndarray = index[np.argmin(dist, axis=1)]
    return nearest.astype(np.uint8)


GREY_LUT = _grey_lut()


def quantize_256(rgb: np.ndarray) -> np.ndarray:
    """Map uint8 RGB (``...x3``) or grey (``...``) pixels to xterm 256-colour indices (16-255).

    Greys go to the nearest of the 30 palette greys; other colours to the nearer of the 6x6x6 cube
    entry and the ramp grey of their mean.

    Args:
        rgb: uint8 array, grey ``HxW`` or colour ``HxWx3``.

    Returns:
        uint8 array of palette indices with the spatial shape of ``rgb``.
    """
    if rgb.ndim == 2 or rgb.shape[-1] == 1:
        grey_idx: np.ndarray = GREY_LUT[rgb.reshape(rgb.shape[:2])]
        return grey_idx
    px = rgb.astype(np.int32)
    # nearest cube level per channel
    lvl = np.argmin(np.abs(px[..., None] - _CUBE), axis=-1)
    cube_rgb = _CUBE[lvl]
    cube_idx = 16 + 36 * lvl[..., 0] + 6 * lvl[..., 1] + lvl[..., 2]
    cube_err = ((cube_rgb - px) ** 2).sum(-1)
    grey = px.mean(-1).round().astype(np.int32)
    gidx = GREY_LUT[grey].astype(np.int32)
    pal = palette_256().astype(np.int32)
    grey_err = ((pal[gidx] - px) ** 2).sum(-1)
    picked: np.ndarray = np.where(grey_err < cube_err, gidx, cube_idx)
    return picked.astype(np.uint8)


@dataclass
class HalfBlockFrame:
    """An encoded half-block picture: ``rows`` text rows of ``cols`` cells.

    Attributes:
        top: per-cell colour key of the upper pixel (packed 0xRRGGBB, or palette index in 256 mode).
        bottom: per-cell colour key of the lower pixel.
        colors: "truecolor" or "256".
        lines: the encoded text of every full row (self-contained: starts with its colours, ends with SGR reset).
    """

    top: np.ndarray
    bottom: np.ndarray
    colors: str
    lines: list[str]

    @property
    def rows(self) -> int:
        """Number of text rows."""
        return int(self.top.shape[0])

    @property
    def cols(self) -> int:
        """Number of cells per row."""
        return int(self.top.shape[1]) if self.top.ndim == 2 else 0

    def rgb(self, key: int) -> tuple[int, int, int]:
        """The RGB colour of a colour key."""
        if self.colors == "256":
            r, g, b = (int(v) for v in palette_256()[key])
            return r, g, b
        return (key >> 16) & 255, (key >> 8) & 255, key & 255

    def encode(self, row: int, start: int = 0, end: int | None = None) -> str:
        """Encode cells ``[start, end)`` of one row as self-contained SGR text (ends with a reset).

        Args:
            row: text row.
            start: first cell.
            end: one past the last cell (None = row end).

        Returns:
            The escape sequences and block characters for those cells.
        """
        end = self.cols if end is None else min(end, self.cols)
        if start == 0 and end == self.cols and row < len(self.lines):
            return self.lines[row]
        return _encode_row(self.top[row, start:end], self.bottom[row, start:end], self.colors)


def _code(key: int, colors: str, cache: dict[int, str]) -> str:
    """SGR colour tail for a key: ``2;r;g;b`` or ``5;n`` (cached)."""
    s = cache.get(key)
    if s is None:
        s = f"5;{key}" if colors == "256" else f"2;{(key >> 16) & 255};{(key >> 8) & 255};{key & 255}"
        cache[key] = s
    return s


_CODE_CACHE: dict[str, dict[int, str]] = {"256": {}, "truecolor": {}}


def _encode_row(top: np.ndarray, bottom: np.ndarray, colors: str) -> str:
    """Encode one row of cells, re-sending only colours that change."""
    return _encode_rows(top.reshape(1, -1), bottom.reshape(1, -1), colors)[0]


def _encode_rows(top: np.ndarray, bottom: np.ndarray, colors: str) -> list[str]:
    """Encode rows of cells (``top``/``bottom``: rows x cols colour keys), each row self-contained.

    Colours are re-sent only when they change. Each cell takes ▀ (fg = top, bg = bottom) or ▄ (the
    other way round), whichever reuses more of the current colours; a cell of one colour is a space in
    the background or █ in the foreground. A run of equal cells repeats the first cell's character
    with no new colours (the first cell leaves the colours the run needs), so the loop goes over runs,
    found with numpy for the whole picture at once, not over cells: a CT slice's black surround and
    flat areas are long runs (a new half-block slice took ~1.8 ms of its encoder thread per picture).
    """
    rows, cols = top.shape
    if rows == 0 or cols == 0:
        return ["\x1b[0m"] * rows
    change = np.ones((rows, cols), dtype=bool)
    np.not_equal(top[:, 1:], top[:, :-1], out=change[:, 1:])
    change[:, 1:] |= bottom[:, 1:] != bottom[:, :-1]
    starts = np.flatnonzero(change)
    lengths = np.diff(starts, append=rows * cols).tolist()
    row_of = (starts // cols).tolist()
    tops = top.reshape(-1)[starts].tolist()
    bottoms = bottom.reshape(-1)[starts].tolist()
    cache = _CODE_CACHE[colors]
    lines: list[str] = []
    out: list[str] = []
    append = out.append
    row = -1
    fg = bg = -1
    for r, t, b, n in zip(row_of, tops, bottoms, lengths, strict=True):
        if r != row:
            if row >= 0:
                append("\x1b[0m")
                lines.append("".join(out))
                out.clear()
            row, fg, bg = r, -1, -1
        if t == b:
            if bg == t:
                ch = " "
                append(ch)
            elif fg == t:
                ch = "\u2588"  # █ full block in the current foreground
                append(ch)
            else:
                bg = t
                ch = " "
                append(f"\x1b[48;{_code(t, colors, cache)}m ")
        else:
            # choose ▀ (fg=top, bg=bottom) or ▄ (fg=bottom, bg=top), whichever reuses more state
            upper_cost = (fg != t) + (bg != b)
            lower_cost = (fg != b) + (bg != t)
            if lower_cost < upper_cost:
                want_fg, want_bg, ch = b, t, LOWER
            else:
                want_fg, want_bg, ch = t, b, UPPER
            if want_fg != fg and want_bg != bg:
                append(f"\x1b[38;{_code(want_fg, colors, cache)};48;{_code(want_bg, colors, cache)}m{ch}")
            elif want_fg != fg:
                append(f"\x1b[38;{_code(want_fg, colors, cache)}m{ch}")
            elif want_bg != bg:
                append(f"\x1b[48;{_code(want_bg, colors, cache)}m{ch}")
            else:
                append(ch)
            fg, bg = want_fg, want_bg
        if n > 1:
            append(ch * (n - 1))
    append("\x1b[0m")
    lines.append("".join(out))
    return lines


def colour_keys(picture: np.ndarray, colors: str) -> np.ndarray:
    """Per-pixel colour keys: packed 0xRRGGBB (truecolor) or xterm palette index ("256")."""
    if colors == "256":
        return quantize_256(picture).astype(np.int64)
    if picture.ndim == 2:
        p = picture.astype(np.int64)
        return p * 0x010101
    p = picture[..., :3].astype(np.int64)
    return (p[..., 0] << 16) | (p[..., 1] << 8) | p[..., 2]


def encode(picture: np.ndarray, colors: str = "truecolor", *, text: bool = True) -> HalfBlockFrame:
    """Encode a uint8 picture (``HxW`` grey or ``HxWx3``) whose height is 2 pixels per text row.

    An odd last pixel row is paired with black.

    Args:
        picture: the composed picture (``target_px`` of a half-block layout).
        colors: "truecolor" or "256".
        text: also encode every row's text now (``lines``). A kitty or sixel frame's half-block twin
            is drawn only behind a modal or a notification, from its colour keys: it skips this, which
            is most of the encoding's CPU; :meth:`HalfBlockFrame.encode` then encodes a row when asked.

    Returns:
        The encoded frame.
    """
    if colors not in ("truecolor", "256"):
        raise ValueError(f"colors must be 'truecolor' or '256', not {colors!r}")
    keys = colour_keys(picture, colors) if picture.size else np.zeros((0, 0), np.int64)
    if keys.shape[0] % 2:
        keys = np.concatenate([keys, np.zeros((1, keys.shape[1]), keys.dtype)])
    top, bottom = keys[0::2], keys[1::2]
    lines = _encode_rows(top, bottom, colors) if text else []
    return HalfBlockFrame(top, bottom, colors, lines)
