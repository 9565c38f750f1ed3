"""Black out rectangles of burned-in text in the pixel data (the one case where pixels change).

A :class:`Mask` is a rectangle in pixel coordinates (column ``x``, row ``y``, width, height) applied
to every frame of the images it selects: one series (by Series Instance UID), one input file, or —
without a selector — every image the burned-in check flags. Masked pixels are set to 0 (stored value).
Compressed pixel data is decoded and written back uncompressed (Explicit VR Little Endian): re-encoding
lossy data would lose more, and every viewer reads the uncompressed form.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui_dicom.core.deid.engine import DeidError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from tui_dicom.core.dicom.source import FileRef


@dataclass(frozen=True)
class Mask:
    """A rectangle to black out, and what it applies to (neither selector: every flagged image)."""

    x: int
    y: int
    width: int
    height: int
    series_uid: str | None = None
    path: str | None = None

    def selects(self, ds: Dataset, ref: FileRef, flagged: bool) -> bool:
        """True when this mask applies to the image ``ds`` read from ``ref``."""
        if self.series_uid is not None:
            return str(ds.get("SeriesInstanceUID", "")) == self.series_uid
        if self.path is not None:
            where = ref.path if ref.member is None else f"{ref.path}!{ref.member}"
            return os.path.abspath(where) == os.path.abspath(self.path)
        return flagged


def parse_mask(text: str) -> Mask:
    """``[SELECTOR=]X,Y,W,H``: SELECTOR is a Series Instance UID (digits and dots) or a file path.

    Raises:
        ValueError: not of that form, or an empty rectangle.
    """
    selector, _, rect = text.rpartition("=")
    parts = rect.split(",")
    if len(parts) != 4:
        raise ValueError(f"expected [SERIES_UID=|FILE=]X,Y,W,H, got {text!r}")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"X,Y,W,H must be whole numbers, got {rect!r}") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ValueError(f"the rectangle must have a positive size inside the image, got {rect!r}")
    if not selector:
        return Mask(x, y, w, h)
    if all(c.isdigit() or c == "." for c in selector) and "." in selector and not os.path.exists(selector):
        return Mask(x, y, w, h, series_uid=selector)
    return Mask(x, y, w, h, path=selector)


def apply_masks(ds: Dataset, masks: list[Mask]) -> None:
    """Black out every rectangle of ``masks`` in every frame of ``ds`` (in place).

    Raises:
        DeidError: the pixel data cannot be decoded or written back.
    """
    import numpy as np

    try:
        arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - a decoder failure is a reason to leave the file out
        raise DeidError(f"pixel data cannot be decoded to mask it ({type(exc).__name__})") from exc
    if arr.dtype not in (np.uint8, np.uint16, np.int8, np.int16):
        raise DeidError(f"cannot mask {arr.dtype} pixel data")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    arr = np.array(arr, copy=True)
    view = arr if frames > 1 else arr[np.newaxis]
    rows, cols = view.shape[1], view.shape[2]
    for m in masks:
        view[:, m.y : min(rows, m.y + m.height), m.x : min(cols, m.x + m.width)] = 0
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if ds.file_meta.TransferSyntaxUID.is_encapsulated and photometric.startswith("YBR"):
        photometric = "RGB"  # pydicom's decoders convert YBR to RGB
    bits = int(ds.get("BitsStored", arr.dtype.itemsize * 8))
    try:
        ds.set_pixel_data(arr, photometric, bits, generate_instance_uid=False)
    except (ValueError, NotImplementedError) as exc:
        raise DeidError(f"masked pixel data cannot be written ({exc})") from exc
