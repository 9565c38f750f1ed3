"""A picture encoded for a pane of cells: the request, the encoding, and the escape text per line.

Pure (numpy, Pillow, no UI toolkit): the picture widget builds a :class:`FrameRequest` from what it
was asked to show and its size, :func:`encode` runs in a worker thread, and the widget's strips
write :meth:`EncodedFrame.render_line` for the cells Textual asks for. Everything an encoding
depends on is in the request's :meth:`FrameRequest.cache_key`, so frames are cached by complete
keys and never invalidated by hand.

* half-block: compact SGR text per line (:mod:`.halfblock`);
* sixel: the whole picture at its first cell (saved/restored cursor), cursor moves over the rest so
  repainting those cells never erases the image;
* kitty: the picture's PNG at native size (or composed with overlays); the sequences that transmit
  it once and place a crop of it come from :class:`.placements.KittyImages` at write time, through
  the ``place_kitty`` callback, because only then is it known what the terminal already holds.

Every graphics frame carries a half-block twin at the same cells (for modal backgrounds,
screenshots and while a notification covers a kitty picture).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from tui_dicom.core.graphics import halfblock, kitty, sixel
from tui_dicom.core.graphics.layout import Layout, Shape, View, compose, layout, orient
from tui_dicom.core.graphics.terminal import TerminalInfo

ESC7, ESC8 = "\x1b7", "\x1b8"


@dataclass(frozen=True)
class FrameRequest:
    """One ``show`` call, plus everything the encoding depends on (the pane, renderer, colours)."""

    seq: int
    key: Hashable
    picture: np.ndarray = field(compare=False, hash=False)
    pixel_aspect: float
    view: View
    shapes: tuple[Shape, ...]
    size: tuple[int, int]
    renderer: str
    colors: str
    cell_px: tuple[int, int]
    bottom_reserve: int
    background: tuple[int, int, int]

    def cache_key(self) -> tuple[Any, ...]:
        """Everything the encoded frame depends on (not ``seq``, not the pixels: ``key`` names them)."""
        return (
            self.key,
            self.pixel_aspect,
            self.view,
            self.shapes,
            self.size,
            self.renderer,
            self.colors,
            self.cell_px,
            self.bottom_reserve,
            self.background,
        )


@dataclass(frozen=True)
class KittyPicture:
    """What a kitty frame needs at write time: the image (by content key), its PNG and the crop.

    Attributes:
        image_key: identifies the transmitted image (same key, same pixels): the id bookkeeping
            sends it once and only places it afterwards.
        png: the PNG to transmit the first time.
        source: the ``(x, y, w, h)`` crop of the image to place, None for all of it.
        cells: the ``(x, y, w, h)`` cells of the pane the placement covers.
    """

    image_key: Hashable
    png: bytes = field(repr=False)
    source: tuple[int, int, int, int] | None
    cells: tuple[int, int, int, int]


class EncodedFrame:
    """An encoded picture for a pane of ``request.size`` cells; writes any cell range of any line."""

    def __init__(
        self,
        request: FrameRequest,
        lay: Layout,
        shown: np.ndarray,
        hb: halfblock.HalfBlockFrame,
        payload: Callable[[], str] | None,
        payload_bytes: int,
    ) -> None:
        self.request = request
        self.layout = lay
        #: the exact picture shown, at its encoded resolution
        self.shown = shown
        #: the half-block encoding (the picture itself for half-block, the twin otherwise)
        self.hb = hb
        #: the graphics sequences written at the picture's first cell (None for half-block)
        self.payload = payload
        self.payload_bytes = payload_bytes
        self.width, self.height = request.size
        r, g, b = request.background
        self._blank_sgr = (
            f"\x1b[48;2;{r};{g};{b}m"
            if request.colors == "truecolor"
            else (f"\x1b[48;5;{int(halfblock.quantize_256(np.array([[[r, g, b]]], np.uint8))[0, 0])}m")
        )
        self._blanks: dict[int, str] = {}

    def _blank(self, n: int) -> str:
        if n <= 0:
            return ""
        text = self._blanks.get(n)
        if text is None:
            text = self._blanks[n] = f"{self._blank_sgr}{' ' * n}\x1b[0m"
        return text

    def render_line(self, y: int, start: int, end: int) -> str:
        """Escape sequences for cells ``[start, end)`` of line ``y``."""
        ix, iy, iw, ih = self.layout.cells
        if not (iy <= y < iy + ih) or end <= ix or start >= ix + iw:
            return self._blank(end - start)
        a, b = max(start, ix), min(end, ix + iw)
        out = [self._blank(ix - start) if start < ix else ""]
        renderer = self.request.renderer
        if renderer == "sixel":
            if y == iy and a == ix and self.payload is not None:
                out.append(ESC7 + self.payload() + ESC8)
            out.append(f"\x1b[{b - a}C")
        elif renderer == "kitty":
            if y == iy and a == ix and self.payload is not None:
                out.append(self.payload())
            out.append(self._blank(b - a))
        else:
            out.append(self.hb.encode(y - iy, a - ix, b - ix))
        if end > ix + iw:
            out.append(self._blank(end - (ix + iw)))
        return "".join(out)


def encode(
    req: FrameRequest, terminal: TerminalInfo, place_kitty: Callable[[KittyPicture], str]
) -> EncodedFrame:
    """Compose and encode ``req`` (in a worker thread: touches nothing but its arguments).

    Args:
        req: the picture, the view and the pane.
        terminal: the terminal's limits (sixel size and byte budget).
        place_kitty: turns a :class:`KittyPicture` into the sequences to write (called when the
            frame's first line is written, possibly many times).
    """
    w, h = req.size
    pane = (w, max(0, h - req.bottom_reserve))
    picture = req.picture
    if req.renderer == "halfblock":
        lay = layout(picture.shape, req.pixel_aspect, pane, req.cell_px, req.view, sub_px=(1, 2))
        shown = compose(picture, lay, req.shapes)
        return EncodedFrame(req, lay, shown, halfblock.encode(shown, req.colors), None, 0)
    # xterm drops a sixel bigger than its maxGraphicSize without a word: stay under it
    max_px = terminal.sixel_max_px if req.renderer == "sixel" else None
    lay = layout(picture.shape, req.pixel_aspect, pane, req.cell_px, req.view, max_px=max_px)
    # half-block twin at the same cells (for modal backgrounds and screenshots)
    hb_lay = Layout(
        lay.image_shape,
        lay.oriented_shape,
        lay.view,
        lay.crop,
        lay.cells,
        lay.cell_px,
        (1, 2),
        (lay.cells[2], lay.cells[3] * 2),
    )
    hb = halfblock.encode(compose(picture, hb_lay, req.shapes), req.colors, text=False)
    if lay.empty:
        return EncodedFrame(req, lay, np.zeros((0, 0), np.uint8), hb, None, 0)
    if req.renderer == "sixel":
        shown = compose(picture, lay, req.shapes)
        data = sixel.encode(shown, max_bytes=terminal.sixel_max_bytes).decode("ascii")
        return EncodedFrame(req, lay, shown, hb, lambda: data, len(data))
    # kitty: transmit the oriented picture at native size once; place a crop of it
    source: tuple[int, int, int, int] | None
    if req.shapes:
        shown = compose(picture, lay, req.shapes)
        import hashlib  # only here: not on the start's way

        content = hashlib.sha1(shown.tobytes()).hexdigest()
        image_key: Hashable = ("composed", req.key, content)
        source = None
        native = shown
    else:
        native = np.ascontiguousarray(orient(picture, req.view))
        image_key = ("native", req.key, req.view.rotation % 4, req.view.flip_h, req.view.flip_v)
        top, left, bottom, right = lay.crop
        x0, y0 = int(round(left)), int(round(top))
        x1, y1 = max(x0 + 1, int(round(right))), max(y0 + 1, int(round(bottom)))
        source = (
            None
            if (x0, y0, x1, y1) == (0, 0, native.shape[1], native.shape[0])
            else (x0, y0, x1 - x0, y1 - y0)
        )
        shown = native[y0:y1, x0:x1]
    png = kitty.png_bytes(native)
    pic = KittyPicture(image_key, png, source, lay.cells)
    return EncodedFrame(req, lay, shown, hb, partial(place_kitty, pic), len(png) * 4 // 3)


__all__ = ["EncodedFrame", "FrameRequest", "KittyPicture", "encode"]
