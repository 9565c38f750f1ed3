"""Kitty graphics commands: payload decodes (with Pillow) to the picture; tmux wrapping; placement keys."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

from tui_dicom.core.graphics import kitty

_APC = re.compile(r"\x1b_G([^;\x1b]*);?([^\x1b]*)\x1b\\")


def test_transmit_chunks_decode_to_the_picture() -> None:
    pic = np.random.default_rng(0).integers(0, 256, (300, 200), dtype=np.uint8)
    seq = kitty.transmit(77, kitty.png_bytes(pic))
    cmds = _APC.findall(seq)
    assert len(cmds) > 1
    first = dict(kv.split("=") for kv in cmds[0][0].split(","))
    assert first["a"] == "t" and first["f"] == "100" and first["i"] == "77" and first["q"] == "2"
    assert [dict(kv.split("=") for kv in keys.split(","))["m"] for keys, _ in cmds] == ["1"] * (
        len(cmds) - 1
    ) + ["0"]
    assert all(len(payload) <= kitty.CHUNK for _, payload in cmds)
    png = base64.standard_b64decode("".join(payload for _, payload in cmds))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), pic)


def test_place_scales_to_cells_and_crops() -> None:
    seq = kitty.place(5, 9, 40, 20, source=(10, 20, 100, 50))
    keys = dict(kv.split("=") for kv in _APC.findall(seq)[0][0].split(","))
    assert keys == {
        "a": "p",
        "i": "5",
        "p": "9",
        "c": "40",
        "r": "20",
        "C": "1",
        "z": "0",
        "q": "2",
        "x": "10",
        "y": "20",
        "w": "100",
        "h": "50",
    }


def test_delete_commands() -> None:
    assert "a=d,d=i,i=5,p=9" in kitty.delete_placement(5, 9)
    assert "a=d,d=I,i=5" in kitty.delete_image(5)


def test_tmux_wrapping_doubles_escapes() -> None:
    inner = kitty.place(1, 2, 3, 4)
    wrapped = kitty.place(1, 2, 3, 4, tmux=True)
    assert wrapped.startswith("\x1bPtmux;") and wrapped.endswith("\x1b\\")
    body = wrapped[len("\x1bPtmux;") : -2]
    assert body == inner.replace("\x1b", "\x1b\x1b")


def test_grey_picture_is_sent_as_a_grey_png() -> None:
    pic = np.random.default_rng(1).integers(0, 256, (64, 48), dtype=np.uint8)
    img = Image.open(io.BytesIO(kitty.png_bytes(pic)))
    assert img.mode == "L" and np.array_equal(np.asarray(img), pic)
    rgb = np.repeat(pic[..., None], 3, axis=2)
    rgb[0, 0] = (255, 0, 0)
    img = Image.open(io.BytesIO(kitty.png_bytes(rgb)))
    assert img.mode == "RGB" and np.array_equal(np.asarray(img), rgb)


def test_tmux_placement_is_absolute_inside_one_passthrough() -> None:
    """Through tmux the outer cursor is saved, moved to the pane cell, and restored around the placement."""
    from tui_dicom.core.graphics import kitty as k

    seq = k.place(3, 1, 10, 5, tmux=True, at=(4, 2))
    assert seq.startswith("\x1bPtmux;") and seq.endswith("\x1b\\") and seq.count("\x1bPtmux;") == 1
    inner = seq[len("\x1bPtmux;") : -2].replace("\x1b\x1b", "\x1b")
    assert inner.startswith("\x1b7\x1b[3;5H\x1b_Ga=p,i=3,p=1,c=10,r=5") and inner.endswith("\x1b8")


def test_grey_picture_with_few_levels_is_an_ordered_palette_png_and_smaller() -> None:
    """A windowed CT slice uses few greys (integer HU stretched over 256): sent as palette indices in grey order."""
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:256, 0:256]
    hu = np.round(35 + 15 * np.sin(x / 40.0) * np.cos(y / 55.0) + rng.normal(0, 5, (256, 256)))
    pic = np.clip(np.round((hu - (35 - 42.5)) * 255 / 85), 0, 255).astype(np.uint8)  # W:85 L:35
    png = kitty.png_bytes(pic)
    img = Image.open(io.BytesIO(png))
    assert img.mode == "P"
    assert np.array_equal(np.asarray(img.convert("L")), pic)
    grey = io.BytesIO()
    Image.fromarray(pic).save(grey, format="PNG", compress_level=9)
    assert len(png) < len(grey.getvalue())
