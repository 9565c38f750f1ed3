"""Kitty graphics protocol commands: transmit once, place many times, delete, tmux passthrough.

Pictures are transmitted once per image id as PNG (``f=100``) at their native size, in base64
chunks of 4096 bytes, quietly (``q=2``: the terminal sends no replies that could land in the
app's input). They are then shown with *direct placements* at the cursor (``a=p``), scaled by the
terminal to ``c`` x ``r`` cells and optionally cropped to a source rectangle (``x,y,w,h``), which is
what makes zoom and pan cost a few dozen bytes. Direct placement works in kitty 0.26 (Unicode
placeholders need 0.28+). ``C=1`` keeps the cursor where it is. Placements use ``z=0`` (over the
text layer of their own blank cells): kitty 0.26 drawing any image with a negative z-index under
software OpenGL tinted the whole window's cell backgrounds (a maroon UI) and left stale glyphs
under new ones; the app does not draw text over a kitty picture (it shows half-block cells while a
notification covers the picture).

Inside tmux (with ``allow-passthrough on``) each command is wrapped as ``ESC Ptmux; ... ESC \\``
with every ESC doubled. Pure Python + Pillow.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
from PIL import Image

CHUNK = 4096


def wrap_tmux(command: str) -> str:
    """Wrap one escape sequence for tmux passthrough (ESC doubled inside ``ESC Ptmux; ... ESC \\``)."""
    return "\x1bPtmux;" + command.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def _apc(keys: str, payload: str = "", tmux: bool = False) -> str:
    """One graphics command ``ESC _G keys ; payload ESC \\`` (tmux-wrapped if asked)."""
    cmd = f"\x1b_G{keys};{payload}\x1b\\" if payload else f"\x1b_G{keys}\x1b\\"
    return wrap_tmux(cmd) if tmux else cmd


#: a grey picture using at most this many distinct levels is sent as an ordered-palette PNG
PALETTE_MAX_LEVELS = 192


def png_bytes(picture: np.ndarray, compress_level: int = 4) -> bytes:
    """PNG-encode a uint8 grey or RGB picture; the wire cost is base64 of this.

    Grey pictures are written here (lossless, Paeth filter, zlib with run-length matching only,
    which on noisy CT slices is both smaller and faster than Pillow's default):

    * a windowed CT slice uses few of the 256 levels (a brain window of 85 HU stretched over 256
      greys uses about 86, three greys apart), so when at most :data:`PALETTE_MAX_LEVELS` levels
      occur the picture is sent as palette indices ``0..n-1`` in grey order with a grey palette:
      neighbouring pixels then differ by small, regular steps that compress about 10 % better;
    * otherwise as a grey PNG (one byte per pixel).

    RGB pictures (overlays) go through Pillow at ``compress_level``.

    Args:
        picture: uint8 ``HxW`` grey or ``HxWx3`` RGB.
        compress_level: zlib level 0..9 for RGB pictures.

    Returns:
        The PNG file bytes.
    """
    picture = np.ascontiguousarray(picture)
    if picture.ndim == 2 and picture.dtype == np.uint8 and picture.size:
        return _grey_png(picture)
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _paeth_rows(img: np.ndarray) -> bytes:
    """Rows of ``img`` (uint8) each as filter type 4 (Paeth) + residuals: the PNG IDAT payload."""
    h, w = img.shape
    a = img.astype(np.int16)
    up = np.zeros_like(a)
    up[1:] = a[:-1]
    left = np.zeros_like(a)
    left[:, 1:] = a[:, :-1]
    up_left = np.zeros_like(a)
    up_left[1:, 1:] = a[:-1, :-1]
    p = left + up - up_left
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
    pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
    out = np.empty((h, w + 1), np.uint8)
    out[:, 0] = 4
    out[:, 1:] = (a - pred).astype(np.uint8)  # modulo 256, as PNG defines it
    return out.tobytes()


def _grey_png(picture: np.ndarray) -> bytes:
    """A grey picture as a grey or ordered-palette PNG (see :func:`png_bytes`)."""
    h, w = picture.shape
    used = np.flatnonzero(np.bincount(picture.ravel(), minlength=256))
    chunks = []
    if len(used) <= PALETTE_MAX_LEVELS:
        lut = np.zeros(256, np.uint8)
        lut[used] = np.arange(len(used), dtype=np.uint8)
        data = lut[picture]
        chunks.append(_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)))
        chunks.append(_chunk(b"PLTE", np.repeat(used.astype(np.uint8), 3).tobytes()))
    else:
        data = picture
        chunks.append(_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)))
    packer = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    chunks.append(_chunk(b"IDAT", packer.compress(_paeth_rows(data)) + packer.flush()))
    chunks.append(_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def transmit(image_id: int, png: bytes, *, tmux: bool = False) -> str:
    """Commands that upload a PNG as image ``image_id`` without showing it.

    Args:
        image_id: kitty image id (1..2**32-1).
        png: PNG file bytes.
        tmux: wrap every chunk for tmux passthrough.

    Returns:
        The escape sequences.
    """
    data = base64.standard_b64encode(png).decode("ascii")
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [""]
    out = []
    for n, chunk in enumerate(chunks):
        more = 1 if n < len(chunks) - 1 else 0
        keys = f"a=t,f=100,t=d,i={image_id},q=2,m={more}" if n == 0 else f"m={more},q=2"
        out.append(_apc(keys, chunk, tmux))
    return "".join(out)


def place(
    image_id: int,
    placement_id: int,
    cols: int,
    rows: int,
    *,
    source: tuple[int, int, int, int] | None = None,
    z: int = 0,
    tmux: bool = False,
    at: tuple[int, int] | None = None,
) -> str:
    """Command that shows an uploaded image at the cursor, scaled to ``cols`` x ``rows`` cells.

    Placing again with the same ``placement_id`` replaces the previous placement of that image.

    Args:
        image_id: the uploaded image.
        placement_id: placement id (one per pane).
        cols: width in cells.
        rows: height in cells.
        source: optional crop of the uploaded image ``(x, y, w, h)`` in its pixels.
        z: z-index (0: over the cell's text layer; negative values under text break kitty 0.26's
            colours under software OpenGL, see the module docstring).
        tmux: wrap for tmux passthrough.
        at: with ``tmux``, the absolute 0-based (column, row) on the outer terminal. tmux does not move
            the outer cursor in step with passthrough data, so the cursor is saved, moved there and
            restored inside the same passthrough.

    Returns:
        The escape sequence.
    """
    keys = f"a=p,i={image_id},p={placement_id},c={cols},r={rows},C=1,z={z},q=2"
    if source is not None:
        x, y, w, h = source
        keys += f",x={x},y={y},w={w},h={h}"
    if tmux and at is not None:
        col, row = at
        return wrap_tmux(f"\x1b7\x1b[{row + 1};{col + 1}H\x1b_G{keys}\x1b\\\x1b8")
    return _apc(keys, tmux=tmux)


def delete_placement(image_id: int, placement_id: int, *, tmux: bool = False) -> str:
    """Command that removes one placement but keeps the image data for later placements."""
    return _apc(f"a=d,d=i,i={image_id},p={placement_id},q=2", tmux=tmux)


def delete_image(image_id: int, *, tmux: bool = False) -> str:
    """Command that removes an image with all its placements and frees its data."""
    return _apc(f"a=d,d=I,i={image_id},q=2", tmux=tmux)


def query(image_id: int = 31) -> str:
    """The support query (``a=q`` with a 1x1 RGB pixel); a kitty-capable terminal answers ``OK``."""
    return _apc(f"i={image_id},s=1,v=1,a=q,t=d,f=24", "AAAA")
