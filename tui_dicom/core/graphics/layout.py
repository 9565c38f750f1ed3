"""Picture geometry for the image pane: fit, zoom, pan, rotate/flip, resample, vector overlays.

Pure numpy + Pillow (no Textual, no Rich). The pane is a grid of terminal cells; every renderer
draws the picture into a whole number of cells, so :func:`layout` decides

* which part of the (rotated / flipped) image is visible (``crop``, float pixel box),
* how many cells the picture covers and where (``cells``, centred in the pane),
* the pixel size of the picture to encode (``target_px``: cells x pixels per cell; a graphics
  renderer uses the terminal's cell size in pixels, half-block uses 1x2 "pixels" per cell),

and :func:`compose` resamples *only the visible crop* to that size and draws the overlays, so a
zoomed-in view costs no more than a fitted one.

Coordinates: image coordinates are ``(row, col)`` floats in the ORIGINAL (unrotated) image where
pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``; ``int()`` of a coordinate is the pixel index.
``pixel_aspect`` is the physical height / width of one pixel (row spacing / column spacing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from PIL import Image

ShapeKind = Literal["line", "rect", "ellipse", "cross", "point"]


@dataclass(frozen=True)
class View:
    """How the picture is looked at (hashable: part of render cache keys).

    Attributes:
        zoom: magnification relative to "fit to pane" (1.0 = fit).
        center: image coordinates ``(row, col)`` of the view centre; None = image centre.
        rotation: quarter turns clockwise (any int, taken modulo 4).
        flip_h: mirror left/right (applied after rotation, i.e. on screen).
        flip_v: mirror top/bottom (applied after rotation).
        one_to_one: one image pixel per output pixel (overrides ``zoom``).
    """

    zoom: float = 1.0
    center: tuple[float, float] | None = None
    rotation: int = 0
    flip_h: bool = False
    flip_v: bool = False
    one_to_one: bool = False


@dataclass(frozen=True)
class Shape:
    """A vector overlay in image pixel coordinates, drawn on the picture after scaling.

    Attributes:
        kind: "line" (2 points), "rect" / "ellipse" (2 opposite corners), "cross" / "point" (1 point).
        points: ``(row, col)`` image coordinates.
        color: RGB colour.
        label: optional text drawn beside the last point.
    """

    kind: ShapeKind
    points: tuple[tuple[float, float], ...]
    color: tuple[int, int, int] = (255, 255, 0)
    label: str = ""


@dataclass(frozen=True)
class Layout:
    """Where and how a picture is drawn in a pane (see module docstring for coordinates).

    Attributes:
        image_shape: ``(rows, cols)`` of the original image.
        oriented_shape: ``(rows, cols)`` after rotation.
        view: the view this layout was computed for.
        crop: visible box in oriented image coordinates ``(top, left, bottom, right)`` (floats).
        cells: placement inside the pane in cells ``(x, y, w, h)``; w or h is 0 when nothing fits.
        cell_px: terminal cell size in screen pixels ``(w, h)``.
        sub_px: output pixels per cell ``(w, h)`` (cell_px for graphics, (1, 2) for half-block).
        target_px: size of the picture to encode ``(w, h)`` = cells w/h times sub_px.
        limited: the picture was made smaller than the pane allows to stay under ``max_px`` (the
            terminal's largest graphic).
    """

    image_shape: tuple[int, int]
    oriented_shape: tuple[int, int]
    view: View
    crop: tuple[float, float, float, float]
    cells: tuple[int, int, int, int]
    cell_px: tuple[int, int]
    sub_px: tuple[int, int]
    target_px: tuple[int, int]
    limited: bool = False

    @property
    def empty(self) -> bool:
        """True when the picture covers no cell (pane too small)."""
        return self.cells[2] <= 0 or self.cells[3] <= 0

    def to_oriented(self, row: float, col: float) -> tuple[float, float]:
        """Map original image coordinates to oriented (rotated, flipped) coordinates."""
        h, w = self.image_shape
        r, c = row, col
        for _ in range(self.view.rotation % 4):  # one clockwise quarter turn: (r, c) -> (c, H - r)
            r, c = c, h - r
            h, w = w, h
        if self.view.flip_h:
            c = w - c
        if self.view.flip_v:
            r = h - r
        return r, c

    def from_oriented(self, row: float, col: float) -> tuple[float, float]:
        """Map oriented coordinates back to original image coordinates."""
        h, w = self.oriented_shape
        r, c = row, col
        if self.view.flip_v:
            r = h - r
        if self.view.flip_h:
            c = w - c
        for _ in range(self.view.rotation % 4):  # inverse quarter turn: (r, c) -> (W - c, r)
            r, c = w - c, r
            h, w = w, h
        return r, c

    def image_to_px(self, row: float, col: float) -> tuple[float, float]:
        """Map original image coordinates to ``(x, y)`` pixels of the composed picture."""
        r, c = self.to_oriented(row, col)
        top, left, bottom, right = self.crop
        tw, th = self.target_px
        return ((c - left) * tw / (right - left), (r - top) * th / (bottom - top))

    def px_to_image(self, x: float, y: float) -> tuple[float, float]:
        """Map ``(x, y)`` pixels of the composed picture to original image coordinates."""
        top, left, bottom, right = self.crop
        tw, th = self.target_px
        return self.from_oriented(top + y * (bottom - top) / th, left + x * (right - left) / tw)

    def cell_to_image(self, cell_x: float, cell_y: float) -> tuple[float, float] | None:
        """Map a pane cell (integer = cell centre) to image coordinates, None outside the picture."""
        x, y, w, h = self.cells
        if self.empty or not (x <= cell_x < x + w and y <= cell_y < y + h):
            return None
        sw, sh = self.sub_px
        r, c = self.px_to_image((cell_x - x + 0.5) * sw, (cell_y - y + 0.5) * sh)
        ih, iw = self.image_shape
        return (min(max(r, 0.0), ih - 1e-6), min(max(c, 0.0), iw - 1e-6))

    def image_to_cell(self, row: float, col: float) -> tuple[float, float]:
        """Map image coordinates to fractional pane cell coordinates ``(x, y)``."""
        px, py = self.image_to_px(row, col)
        sw, sh = self.sub_px
        return self.cells[0] + px / sw, self.cells[1] + py / sh


def _axis(
    length: float, scale: float, pane_px: int, cell: int, centre: float
) -> tuple[float, float, int, int]:
    """One axis of the layout: (src_start, src_end, cell_offset, cell_count)."""
    shown = length * scale
    pane_cells = pane_px // cell
    if shown <= pane_px:
        n = max(1, min(pane_cells, int(round(shown / cell))))
        return 0.0, float(length), (pane_cells - n) // 2, n
    visible = pane_cells * cell / scale
    start = min(max(centre - visible / 2, 0.0), length - visible)
    return start, start + visible, 0, pane_cells


def layout(
    image_shape: tuple[int, ...],
    pixel_aspect: float,
    pane_cells: tuple[int, int],
    cell_px: tuple[int, int],
    view: View = View(),
    *,
    sub_px: tuple[int, int] | None = None,
    max_px: tuple[int, int] | None = None,
) -> Layout:
    """Compute where a picture goes in a pane.

    With ``max_px`` (the largest picture the terminal draws: xterm drops a bigger sixel without a
    word) a picture that would be larger is laid out in the biggest whole-cell box under that size,
    centred in the pane, and the layout says ``limited``.

    Args:
        image_shape: shape of the picture array (rows, cols[, channels]).
        pixel_aspect: physical height / width of one pixel (1.0 = square pixels).
        pane_cells: pane size in cells ``(w, h)``.
        cell_px: terminal cell size in pixels ``(w, h)``.
        view: zoom / pan / rotation / flips.
        sub_px: output pixels per cell; None = ``cell_px`` (graphics), ``(1, 2)`` for half-block.
        max_px: the largest picture ``(w, h)`` in output pixels, or None.

    Returns:
        The :class:`Layout`.
    """
    lay = _layout(image_shape, pixel_aspect, pane_cells, cell_px, view, sub_px)
    if max_px is None or (lay.target_px[0] <= max_px[0] and lay.target_px[1] <= max_px[1]):
        return lay
    sw, sh = lay.sub_px
    box = (
        min(pane_cells[0], max(1, max_px[0] // max(1, sw))),
        min(pane_cells[1], max(1, max_px[1] // max(1, sh))),
    )
    small = _layout(image_shape, pixel_aspect, box, cell_px, view, sub_px)
    x, y, w, h = small.cells
    dx, dy = (pane_cells[0] - box[0]) // 2, (pane_cells[1] - box[1]) // 2
    return replace(small, cells=(x + dx, y + dy, w, h), limited=True)


def _layout(
    image_shape: tuple[int, ...],
    pixel_aspect: float,
    pane_cells: tuple[int, int],
    cell_px: tuple[int, int],
    view: View,
    sub_px: tuple[int, int] | None,
) -> Layout:
    """:func:`layout` without a size limit."""
    ih, iw = int(image_shape[0]), int(image_shape[1])
    cw, ch = max(1, int(cell_px[0])), max(1, int(cell_px[1]))
    sub = (cw, ch) if sub_px is None else (int(sub_px[0]), int(sub_px[1]))
    aspect = pixel_aspect if pixel_aspect > 0 and np.isfinite(pixel_aspect) else 1.0
    quarter = view.rotation % 4
    oh, ow = (iw, ih) if quarter % 2 else (ih, iw)
    if quarter % 2:
        aspect = 1.0 / aspect
    pw, ph = max(0, pane_cells[0]) * cw, max(0, pane_cells[1]) * ch
    if ih <= 0 or iw <= 0 or pw < cw or ph < ch:
        return Layout(
            (ih, iw), (oh, ow), view, (0.0, 0.0, float(oh), float(ow)), (0, 0, 0, 0), (cw, ch), sub, (0, 0)
        )
    # scale = screen pixels per image column; rows are `aspect` times taller
    fit = min(pw / ow, ph / (oh * aspect))
    scale = cw / sub[0] if view.one_to_one else fit * max(view.zoom, 1e-3)  # 1:1 = one image px per output px
    proto = Layout(
        (ih, iw), (oh, ow), view, (0.0, 0.0, float(oh), float(ow)), (0, 0, 0, 0), (cw, ch), sub, (1, 1)
    )
    if view.center is None:
        crow, ccol = oh / 2, ow / 2
    else:
        crow, ccol = proto.to_oriented(*view.center)
    left, right, cx, ncols = _axis(ow, scale, pw, cw, ccol)
    top, bottom, cy, nrows = _axis(oh, scale * aspect, ph, ch, crow)
    return Layout(
        (ih, iw),
        (oh, ow),
        view,
        (top, left, bottom, right),
        (cx, cy, ncols, nrows),
        (cw, ch),
        sub,
        (ncols * sub[0], nrows * sub[1]),
    )


def orient(picture: np.ndarray, view: View) -> np.ndarray:
    """Rotate / flip a picture as ``view`` says (views of the array, no copy)."""
    out = np.rot90(picture, k=-(view.rotation % 4), axes=(0, 1))
    if view.flip_h:
        out = out[:, ::-1]
    if view.flip_v:
        out = out[::-1]
    return out


def compose(picture: np.ndarray, lay: Layout, shapes: Sequence[Shape] = ()) -> np.ndarray:
    """Crop and resample the visible part of ``picture`` to ``lay.target_px`` and draw ``shapes``.

    Args:
        picture: uint8 ``HxW`` grey or ``HxWx3`` RGB (other dtypes are clipped to uint8).
        lay: the layout from :func:`layout` for this picture.
        shapes: overlays in original image coordinates.

    Returns:
        uint8 array ``(th, tw)`` (grey, no shapes) or ``(th, tw, 3)``; ``(0, 0)`` when the layout is empty.
    """
    tw, th = lay.target_px
    if lay.empty or tw <= 0 or th <= 0:
        return np.zeros((0, 0), np.uint8)
    if picture.dtype != np.uint8:
        picture = np.clip(picture, 0, 255).astype(np.uint8)
    if picture.ndim == 3 and picture.shape[2] == 4:
        picture = picture[:, :, :3]
    oriented = orient(picture, lay.view)
    top, left, bottom, right = lay.crop
    # crop with a margin as wide as the filter's support, so edges resample exactly as the whole image would
    margin = int(np.ceil(max((right - left) / tw, (bottom - top) / th, 1.0))) + 1
    r0, c0 = max(0, int(np.floor(top)) - margin), max(0, int(np.floor(left)) - margin)
    r1 = min(int(np.ceil(bottom)) + margin, oriented.shape[0])
    c1 = min(int(np.ceil(right)) + margin, oriented.shape[1])
    part = np.ascontiguousarray(oriented[r0:r1, c0:c1])
    img = Image.fromarray(part)
    box = (left - c0, top - r0, right - c0, bottom - r0)
    if (c1 - c0, r1 - r0) == (tw, th) and box == (0, 0, tw, th):
        out = img
    else:
        out = img.resize((tw, th), Image.Resampling.BILINEAR, box=box)
    if shapes:
        out = out.convert("RGB")
        _draw_shapes(out, lay, shapes)
    return np.asarray(out)


def _draw_shapes(img: Image.Image, lay: Layout, shapes: Sequence[Shape]) -> None:
    """Draw overlays onto the composed RGB picture (line width scales with the output)."""
    from PIL import ImageDraw  # (with its font support) only when there is something to draw

    draw = ImageDraw.Draw(img)
    width = max(1, round(lay.sub_px[0] / 5)) if lay.sub_px[0] > 2 else 1
    arm = max(3, lay.sub_px[0] * 2)
    for shape in shapes:
        pts = [lay.image_to_px(r, c) for r, c in shape.points]
        if not pts:
            continue
        color = tuple(int(v) for v in shape.color)
        if shape.kind == "line" and len(pts) >= 2:
            draw.line(pts, fill=color, width=width)
        elif shape.kind in ("rect", "ellipse") and len(pts) >= 2:
            (x0, y0), (x1, y1) = pts[0], pts[1]
            box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            (draw.rectangle if shape.kind == "rect" else draw.ellipse)(box, outline=color, width=width)
        elif shape.kind == "cross":
            x, y = pts[0]
            draw.line([(x - arm, y), (x + arm, y)], fill=color, width=width)
            draw.line([(x, y - arm), (x, y + arm)], fill=color, width=width)
        else:  # point
            x, y = pts[0]
            draw.ellipse((x - width, y - width, x + width, y + width), fill=color)
        if shape.label and lay.sub_px[0] > 2:  # text is legible only in graphics renderers
            x, y = pts[-1]
            draw.text((x + arm, y), shape.label, fill=color)
