"""Geometry, resampling and overlays of tui_dicom.core.graphics.layout (references: numpy rotations, Pillow resize)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tui_dicom.core.graphics.layout import Shape, View, compose, layout


def test_fit_keeps_aspect_and_centres() -> None:
    lay = layout((512, 512), 1.0, (120, 50), (10, 20), View())
    x, y, w, h = lay.cells
    assert (w * 10) == pytest.approx(h * 20, abs=20)  # square picture on screen
    assert h == 50 and x == (120 - w) // 2
    assert lay.target_px == (w * 10, h * 20)


def test_pixel_aspect_makes_picture_taller() -> None:
    square = layout((100, 100), 1.0, (200, 50), (10, 20), View())
    tall = layout((100, 100), 2.0, (200, 50), (10, 20), View())
    assert tall.cells[2] * 2 == pytest.approx(square.cells[2], abs=1)


def test_halfblock_sub_pixels() -> None:
    lay = layout((512, 512), 1.0, (120, 50), (10, 20), View(), sub_px=(1, 2))
    assert lay.target_px == (lay.cells[2], lay.cells[3] * 2)


@pytest.mark.parametrize("rotation", [0, 1, 2, 3])
@pytest.mark.parametrize("flip_h", [False, True])
def test_orientation_round_trip_and_matches_numpy(rotation: int, flip_h: bool) -> None:
    pic = np.arange(30 * 50, dtype=np.uint32).reshape(30, 50)
    view = View(rotation=rotation, flip_h=flip_h)
    lay = layout(pic.shape, 1.0, (80, 40), (10, 20), view)
    ref = np.rot90(pic, -rotation)
    if flip_h:
        ref = ref[:, ::-1]
    assert lay.oriented_shape == ref.shape
    for r, c in [(0, 0), (5, 7), (29, 49), (12, 40)]:
        orr, occ = lay.to_oriented(r + 0.5, c + 0.5)
        assert ref[int(orr), int(occ)] == pic[r, c]
        assert lay.from_oriented(orr, occ) == pytest.approx((r + 0.5, c + 0.5))


def test_cell_to_image_inverse_of_image_to_cell() -> None:
    lay = layout((200, 300), 1.0, (100, 40), (10, 20), View(zoom=2.0, center=(60.0, 100.0)))
    cx, cy = lay.image_to_cell(60.0, 100.0)
    back = lay.cell_to_image(int(cx), int(cy))
    assert back is not None
    assert back[0] == pytest.approx(60.0, abs=20 / lay.sub_px[1] * 2)
    assert back[1] == pytest.approx(100.0, abs=5)
    assert lay.cell_to_image(-1, 0) is None


def test_zoom_composes_only_the_crop() -> None:
    rng = np.random.default_rng(1)
    pic = rng.integers(0, 256, (512, 512), dtype=np.uint8)
    lay = layout(pic.shape, 1.0, (40, 20), (10, 20), View(zoom=4.0, center=(100.0, 100.0)))
    top, left, bottom, right = lay.crop
    assert (bottom - top) < 200 and (right - left) < 200
    assert top <= 100 <= bottom and left <= 100 <= right
    out = compose(pic, lay)
    ref = Image.fromarray(pic).resize(
        lay.target_px, Image.Resampling.BILINEAR, box=(left, top, right, bottom)
    )
    assert np.array_equal(out, np.asarray(ref))


def test_one_to_one_uses_native_pixels() -> None:
    pic = np.zeros((512, 512), np.uint8)
    lay = layout(pic.shape, 1.0, (40, 20), (10, 20), View(one_to_one=True))
    top, left, bottom, right = lay.crop
    assert right - left == pytest.approx(lay.target_px[0])
    assert bottom - top == pytest.approx(lay.target_px[1])


def test_shapes_are_drawn_in_colour_at_the_right_place() -> None:
    pic = np.zeros((100, 100), np.uint8)
    lay = layout(pic.shape, 1.0, (50, 25), (10, 20), View())
    out = compose(pic, lay, [Shape("line", ((50.0, 10.0), (50.0, 90.0)), (255, 0, 0))])
    assert out.ndim == 3
    x, y = lay.image_to_px(50.0, 50.0)
    assert out[int(y), int(x)].tolist() == [255, 0, 0]
    assert out[5, 5].tolist() == [0, 0, 0]


def test_tiny_pane_is_empty() -> None:
    lay = layout((100, 100), 1.0, (0, 0), (10, 20), View())
    assert lay.empty and compose(np.zeros((100, 100), np.uint8), lay).size == 0


def test_layout_under_a_size_limit_is_centred_and_flagged() -> None:
    from tui_dicom.core.graphics.layout import layout as _layout

    free = _layout((512, 512), 1.0, (330, 57), (10, 20))
    assert free.target_px == (1140, 1140) and not free.limited
    capped = _layout((512, 512), 1.0, (330, 57), (10, 20), max_px=(1000, 1000))
    assert capped.limited and capped.target_px[0] <= 1000 and capped.target_px[1] <= 1000
    x, y, w, h = capped.cells
    assert abs((x + w / 2) - 330 / 2) <= 1 and abs((y + h / 2) - 57 / 2) <= 1
    # the mapping from cells to image still holds: the centre cell is the image centre
    r, c = capped.cell_to_image(x + w // 2, y + h // 2)  # type: ignore[misc]  # the centre cell: not None
    assert abs(r - 256) < 6 and abs(c - 256) < 6
    # under the limit nothing changes
    assert _layout((512, 512), 1.0, (80, 24), (10, 20), max_px=(1000, 1000)) == _layout(
        (512, 512), 1.0, (80, 24), (10, 20)
    )
