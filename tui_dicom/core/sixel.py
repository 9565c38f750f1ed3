"""Sixel encoder for grey and colour pictures (numpy-vectorised, one pass per 6-row band).

The whole palette is defined up front, then every band sends, for each colour present in it, one
row of sixel characters with run-length compression (``!n``) and trailing blanks dropped.

Colour registers are specified in percent (``#n;2;r;g;b`` with 0..100), so the wire can express
101 levels per channel: grey pictures use one register per grey level (all 256 input levels map to
the nearest of the 101 percent levels, exactly as a terminal would round them). Colour pictures
(overlays on a grey image) keep the greys and give every other colour its own register; pictures
with more distinct colours than registers are quantised by Pillow (median cut).

The image is sent with ``P2=1`` (pixels not painted keep what is below) and raster attributes
giving its exact pixel size, so a height that is not a multiple of 6 never paints below the image.
Pure numpy + Pillow.
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

ESC = "\x1b"
_RUN = re.compile(rb"(.)\1{3,}")
MAX_REGISTERS = 256


def _run(m: re.Match[bytes]) -> bytes:
    """Replace a run of 4+ equal sixel characters by ``!n`` + character."""
    s = m.group(0)
    return b"!%d%c" % (len(s), s[0])


def _grey_percent(levels: np.ndarray) -> np.ndarray:
    """uint8 grey levels -> percent 0..100 (what a sixel register can hold)."""
    return np.round(levels.astype(np.float64) * 100.0 / 255.0).astype(np.int64)


def indexed(picture: np.ndarray, registers: int = MAX_REGISTERS) -> tuple[np.ndarray, np.ndarray]:
    """Turn a picture into register indices and a palette of percent RGB.

    Args:
        picture: uint8 ``HxW`` grey or ``HxWx3`` RGB.
        registers: number of colour registers available.

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
            if len(colours) <= registers - 101:
                index = _grey_percent(rgb[..., 0])
                extra = np.searchsorted(colours, packed[~grey])
                index[~grey] = 101 + extra
                pal_grey = np.repeat(np.arange(101)[:, None], 3, axis=1)
                cols = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1)
                return index, np.concatenate([pal_grey, _grey_percent(cols)])
            img = Image.fromarray(np.ascontiguousarray(rgb)).quantize(colors=registers, dither=Image.Dither.NONE)
            pal = np.array(img.getpalette()[: 3 * registers], dtype=np.int64).reshape(-1, 3)
            return np.asarray(img).astype(np.int64), _grey_percent(pal)
    index = _grey_percent(picture)
    return index, np.repeat(np.arange(101)[:, None], 3, axis=1)


def encode(picture: np.ndarray, *, registers: int = MAX_REGISTERS) -> bytes:
    """Encode a uint8 picture as one complete sixel DCS sequence.

    Args:
        picture: uint8 ``HxW`` grey or ``HxWx3`` RGB.
        registers: colour registers the terminal offers (256 in xterm/mlterm).

    Returns:
        ``ESC P 0;1;0 q ... ESC \\`` as bytes; empty bytes for an empty picture.
    """
    if picture.size == 0:
        return b""
    index, palette = indexed(picture, registers)
    h, w = index.shape
    used = np.unique(index)
    out: list[bytes] = [b'\x1bP0;1;0q"1;1;%d;%d' % (w, h)]
    out.extend(b"#%d;2;%d;%d;%d" % (int(c), *(int(v) for v in palette[c])) for c in used)
    bit = (1 << np.arange(6, dtype=np.int64))[:, None]
    for top in range(0, h, 6):
        band = index[top : top + 6]
        rows = band.shape[0]
        colours, inverse = np.unique(band, return_inverse=True)
        inverse = inverse.reshape(band.shape)
        n = len(colours)
        cols = np.broadcast_to(np.arange(w), band.shape)
        weights = np.broadcast_to(bit[:rows], band.shape)
        dense = np.bincount((inverse * w + cols).ravel(), weights=weights.ravel(), minlength=n * w)
        chars = (dense.reshape(n, w).astype(np.uint8) + 63).tobytes()
        parts: list[bytes] = []
        for i, c in enumerate(colours.tolist()):
            row = chars[i * w : (i + 1) * w].rstrip(b"?")
            if row:
                parts.append(b"#%d" % c + _RUN.sub(_run, row))
        out.append(b"$".join(parts))
        out.append(b"-")
    if out[-1] == b"-":
        out.pop()
    out.append(b"\x1b\\")
    return b"".join(out)
