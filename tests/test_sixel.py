"""Sixel encoder, decoded by ImageMagick (an independent sixel reader) and compared with the picture."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tui_dicom.core import sixel

needs_magick = pytest.mark.skipif(shutil.which("convert") is None, reason="ImageMagick `convert` not installed")


def _decode_with_imagemagick(data: bytes, tmp_path: Path) -> np.ndarray:
    src = tmp_path / "pic.six"
    src.write_bytes(data)
    out = tmp_path / "pic.png"
    subprocess.run(["convert", f"sixel:{src}", str(out)], check=True, capture_output=True)
    return np.asarray(Image.open(out).convert("RGB")).astype(int)


@needs_magick
def test_grey_picture_decodes_to_the_same_picture(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (23, 1))  # 23 rows: not a multiple of 6
    noise = np.random.default_rng(3).integers(0, 256, (23, 256), dtype=np.uint8)
    pic = np.concatenate([ramp, noise])
    got = _decode_with_imagemagick(sixel.encode(pic), tmp_path)
    assert got.shape[:2] == pic.shape
    # registers hold percent (0..100): one level is 2.55, rounding both ways stays within 3
    assert np.abs(got[..., 0] - pic).max() <= 3
    # every one of the 101 levels a register can hold is used by the ramp
    assert len(np.unique(got[:23, :, 0])) >= 100


@needs_magick
def test_colour_overlay_keeps_exact_colours(tmp_path: Path) -> None:
    pic = np.repeat(np.random.default_rng(4).integers(0, 256, (30, 40), dtype=np.uint8)[..., None], 3, axis=2)
    pic[10, :] = (255, 255, 0)
    pic[:, 20] = (0, 255, 0)
    got = _decode_with_imagemagick(sixel.encode(pic), tmp_path)
    assert got[10, 5].tolist() == [255, 255, 0]
    assert got[3, 20].tolist() == [0, 255, 0]
    assert np.abs(got - pic.astype(int)).max() <= 3


def test_structure_palette_first_transparent_background_and_size() -> None:
    pic = np.full((13, 7), 128, np.uint8)
    data = sixel.encode(pic)
    assert data.startswith(b'\x1bP0;1;0q"1;1;7;13') and data.endswith(b"\x1b\\")
    body = data[len(b'\x1bP0;1;0q"1;1;7;13') :]
    defs = [m.start() for m in re.finditer(rb"#\d+;2;", body)]
    uses = [m.start() for m in re.finditer(rb"#\d+(?![;\d])", body)]
    assert defs and uses and max(defs) < min(uses)  # every register defined before any pixel
    assert body.count(b"-") == 2  # 13 rows = 3 bands


def test_runs_are_compressed() -> None:
    data = sixel.encode(np.zeros((6, 100), np.uint8))
    assert b"!100~" in data and len(data) < 60


def test_many_colours_are_quantised_to_registers() -> None:
    pic = np.random.default_rng(5).integers(0, 256, (12, 300, 3), dtype=np.uint8)
    index, palette = sixel.indexed(pic)
    assert index.max() < 256 and len(palette) <= 256
