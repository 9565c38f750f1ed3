"""The picture widget's pure parts: frame encoding, kitty image bookkeeping, the LRU's eviction hook."""

from __future__ import annotations

import re

import numpy as np

from tui_dicom.core.cache import ByteLRU, one
from tui_dicom.core.graphics import halfblock
from tui_dicom.core.graphics.frames import FrameRequest, KittyPicture, encode
from tui_dicom.core.graphics.layout import View
from tui_dicom.core.graphics.placements import KittyImages
from tui_dicom.core.graphics.terminal import TerminalInfo


def _request(renderer: str, key: str = "a", view: View | None = None, seq: int = 1) -> FrameRequest:
    picture = np.random.default_rng(1).integers(0, 256, (64, 96), dtype=np.uint8)
    return FrameRequest(
        seq, key, picture, 1.0, view or View(), (), (40, 20), renderer, "truecolor", (10, 20), 0, (0, 0, 0)
    )


def test_lru_on_evict_reports_what_put_pushed_out() -> None:
    evicted: list[tuple[object, int]] = []
    lru: ByteLRU[int] = ByteLRU(2, size_of=one, on_evict=lambda k, v: evicted.append((k, v)))
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "b" is now the oldest
    lru.put("c", 3)
    assert evicted == [("b", 2)] and len(lru) == 2
    assert lru.peek("a") == 1 and lru.values() == [1, 3]
    lru.clear()
    assert evicted == [("b", 2)]  # clearing is not eviction


def test_halfblock_frame_lines_are_the_encoders_rows() -> None:
    req = _request("halfblock")
    frame = encode(req, TerminalInfo(), lambda pic: "")
    x, y, w, h = frame.layout.cells
    assert frame.payload is None and frame.shown.shape == (2 * h, w)
    reference = halfblock.encode(frame.shown, "truecolor")
    assert frame.render_line(y, x, x + w) == reference.encode(0, 0, w)
    # a line outside the picture is blank cells of the background, as wide as asked
    if y > 0:
        assert frame.render_line(0, 0, 40).count(" ") == 40


def test_kitty_frame_places_through_the_callback_with_its_crop() -> None:
    placed: list[KittyPicture] = []
    req = _request("kitty", view=View(zoom=2.0))

    def place(pic: KittyPicture) -> str:
        placed.append(pic)
        return "<place>"

    frame = encode(req, TerminalInfo(renderer="kitty"), place)
    x, y, w, h = frame.layout.cells
    line = frame.render_line(y, 0, 40)
    assert "<place>" in line and len(placed) == 1
    pic = placed[0]
    assert pic.png.startswith(b"\x89PNG") and pic.cells == frame.layout.cells
    assert pic.source is not None and pic.source[2] < 96 and pic.source[3] < 64  # zoomed: a crop
    assert pic.image_key == ("native", "a", 0, False, False)


def test_sixel_frame_writes_its_payload_once_at_the_first_cell() -> None:
    frame = encode(_request("sixel"), TerminalInfo(renderer="sixel"), lambda pic: "")
    x, y, w, h = frame.layout.cells
    lines = [frame.render_line(row, 0, 40) for row in range(20)]
    assert lines[y].count("\x1bP") == 1 and sum(line.count("\x1bP") for line in lines) == 1
    assert re.search(rf"\x1b\[{w}C", lines[y + 1])  # other cells: cursor moves, never blanks


def test_kitty_images_transmit_once_place_always_and_free_the_evicted() -> None:
    images = KittyImages(limit=2)
    pics = [KittyPicture(("k", i), b"\x89PNG-%d" % i, None, (0, 0, 10, 5)) for i in range(3)]
    first = images.show(pics[0])
    assert "a=t" in first and "a=p" in first
    again = images.show(pics[0])
    assert "a=t" not in again and "a=p" in again
    ids = [int(m) for m in re.findall(r"i=(\d+)", first)]
    iid0 = ids[0]
    second = images.show(pics[1])
    assert f"a=d,d=i,i={iid0},p={images.placement_id}" in second  # the old placement is removed
    third = images.show(pics[2])  # pics[0]'s id falls out of the 2-id LRU: its image is freed
    assert f"a=d,d=I,i={iid0}" in third and iid0 not in images.sent and images.freed == []
    assert "a=t" not in images.show(pics[2])
    off = images.unplace()
    assert "a=d" in off and images.unplace() == ""
    gone = images.free_all()
    assert gone.count("d=I") == 2 and not images.sent


def test_graphics_twin_is_encoded_lazily_and_the_same_as_half_block() -> None:
    """A kitty/sixel frame's half-block twin skips the row text (drawn only behind modals and toasts);
    what it draws when asked equals a fully encoded half-block picture."""
    frame = encode(_request("kitty"), TerminalInfo(renderer="kitty"), lambda pic: "")
    assert frame.hb.lines == []
    picture = np.random.default_rng(3).integers(0, 256, (20, 30), dtype=np.uint8)
    lazy, full = halfblock.encode(picture, "truecolor", text=False), halfblock.encode(picture, "truecolor")
    assert [lazy.encode(r) for r in range(lazy.rows)] == full.lines and len(full.lines) == 10
