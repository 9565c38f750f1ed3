"""Sixel encoder, decoded by ImageMagick (an independent sixel reader) and compared with the picture."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tui_dicom.core.graphics import sixel

needs_magick = pytest.mark.skipif(
    shutil.which("convert") is None, reason="ImageMagick `convert` not installed"
)


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
    got = _decode_with_imagemagick(sixel.encode(pic, max_bytes=None), tmp_path)  # every level
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


@needs_magick
def test_wide_runs_gaps_and_many_registers_decode_exactly(tmp_path: Path) -> None:
    # long runs (>= 1000 columns: 4-digit !n), inner gaps, registers above 100 (colour) and noise
    rng = np.random.default_rng(7)
    pic = np.repeat(rng.integers(0, 256, (20, 1100), dtype=np.uint8)[..., None], 3, axis=2)
    pic[:6] = 0
    pic[2, ::97] = (255, 0, 0)
    pic[14:17, 300:1090] = (0, 0, 255)
    got = _decode_with_imagemagick(sixel.encode(pic, max_bytes=None), tmp_path)
    assert got.shape[:2] == pic.shape[:2]
    assert np.abs(got - pic.astype(int)).max() <= 1  # greys exact to the percent grid, colours exact
    assert got[2, 97].tolist() == [255, 0, 0] and got[15, 1000].tolist() == [0, 0, 255]


@needs_magick
def test_unpainted_bands_keep_their_place(tmp_path: Path) -> None:
    # negative register numbers leave pixels unpainted; a whole band of them must still advance a band
    index = np.full((18, 10), -1, np.int64)
    index[:6] = 100
    index[12:] = 50
    data = b'\x1bP0;1;0q"1;1;10;18#100;2;100;100;100#50;2;50;50;50' + sixel.body(index, 256) + b"\x1b\\"
    got = _decode_with_imagemagick(data, tmp_path)
    assert (got[:6, :, 0] == 255).all() and (got[12:18, :, 0] == 128).all()
    assert (got[6:12, :, 0] != 255).all() and (got[6:12, :, 0] != 128).all()


@needs_magick
def test_budget_reduces_grey_levels_and_the_picture_is_exactly_the_lut(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    pic = rng.integers(0, 256, (240, 400), dtype=np.uint8)  # noise: the worst case for sixel
    exact = sixel.encode(pic, max_bytes=None)
    budget = len(exact) // 2
    lut = sixel.choose_grey_lut(pic, budget, target_psnr=None)  # the budget alone decides
    levels = len(np.unique(lut))
    assert levels < sixel.GREY_LEVELS
    data = sixel.encode(pic, max_bytes=budget, target_psnr=None)
    assert len(data) <= budget * 1.1  # predicted from sampled bands
    got = _decode_with_imagemagick(data, tmp_path)[..., 0]
    assert len(np.unique(got)) <= levels
    # what the reader shows is the LUT's register (percent) scaled back, pixel for pixel
    assert np.abs(got - np.round(lut[pic].astype(float) * 2.55)).max() <= 1


def test_small_picture_keeps_every_level_under_the_default_budget() -> None:
    pic = np.tile(np.arange(256, dtype=np.uint8), (30, 1))
    assert np.array_equal(sixel.choose_grey_lut(pic), sixel.grey_lut(sixel.GREY_LEVELS))
    assert sixel.encode(pic) == sixel.encode(pic, max_bytes=None)


def test_forced_grey_levels() -> None:
    pic = np.tile(np.arange(256, dtype=np.uint8), (6, 1))
    data = sixel.encode(pic, grey_levels=5)
    assert sorted(int(m) for m in re.findall(rb"#(\d+);2;", data)) == [0, 25, 50, 75, 100]


def _ct_picture(side: int = 600) -> np.ndarray:
    """A real CT slice (pydicom-data's 512x512 head CT), windowed by its file and resized like a pane."""
    from data_store import __file__ as store

    from tui_dicom.core.dicom.source import FileRef
    from tui_dicom.core.imaging.pixels import decode_frame
    from tui_dicom.core.imaging.windowing import default_window, render

    path = Path(store).parent / "data" / "693_UNCR.dcm"
    frame = decode_frame(FileRef(str(path)))
    pic = render(frame, default_window(frame))
    return np.asarray(Image.fromarray(pic).resize((side, side), Image.Resampling.LANCZOS))


def _psnr(got: np.ndarray, want: np.ndarray) -> float:
    mse = float(((got.astype(float) - want.astype(float)) ** 2).mean())
    return float(10 * np.log10(255.0**2 / mse))


def test_histogram_placed_levels_are_never_worse_than_even_spacing() -> None:
    rng = np.random.default_rng(21)
    hists = [np.bincount(_ct_picture(200).ravel(), minlength=256)]
    hists += [rng.integers(0, 1000, 256) * (rng.random(256) < p) for p in (0.05, 0.3, 1.0)]
    for hist in hists:
        for levels in (8, 12, 18, 25, 40, 72):
            fitted = sixel.fitted_lut(hist, levels)
            assert len(np.unique(fitted)) <= levels
            assert sixel.lut_psnr(hist, fitted) >= sixel.lut_psnr(hist, sixel.grey_lut(levels)) - 1e-9


def test_levels_go_where_the_pixels_are() -> None:
    # two narrow modes (soft tissue and bone, say) and nothing between: even spacing wastes its levels
    hist = np.zeros(256, np.int64)
    hist[60:80] = 1000
    hist[200:210] = 500
    fitted, even = sixel.fitted_lut(hist, 12), sixel.grey_lut(12)

    def in_modes(lut: np.ndarray) -> int:
        return len(np.unique(np.concatenate([lut[60:80], lut[200:210]])))

    assert in_modes(fitted) > in_modes(even)
    assert sixel.lut_psnr(hist, fitted) > sixel.lut_psnr(hist, even) + 6  # at least 4x less squared error


@needs_magick
def test_predicted_fidelity_is_what_a_sixel_reader_shows(tmp_path: Path) -> None:
    pic = _ct_picture()
    hist = np.bincount(pic.ravel(), minlength=256)
    lut = sixel.choose_grey_lut(pic)
    data = sixel.encode(pic)
    got = _decode_with_imagemagick(data, tmp_path)[..., 0]
    assert len(data) <= sixel.DEFAULT_MAX_BYTES
    assert abs(_psnr(got, pic) - sixel.lut_psnr(hist, lut)) < 0.1
    assert _psnr(got, pic) >= sixel.TARGET_PSNR
    # the target, not the budget, decided: fewer bytes than every level would take
    assert len(data) < 0.5 * len(sixel.encode(pic, max_bytes=None))


def test_a_tight_budget_wins_over_the_fidelity_target() -> None:
    pic = _ct_picture()
    budget = int(len(sixel.encode(pic)) * 0.9)
    data = sixel.encode(pic, max_bytes=budget)
    assert len(data) <= budget * 1.1
    assert (
        sixel.lut_psnr(np.bincount(pic.ravel(), minlength=256), sixel.choose_grey_lut(pic, budget))
        < sixel.TARGET_PSNR
    )


def test_placed_levels_are_the_least_squares_optimum_found_by_brute_force() -> None:
    # every split of the occupied grey range into k contiguous cells, each shown as its best register
    import itertools

    rng = np.random.default_rng(8)
    hist = np.zeros(256, np.int64)
    occupied = np.sort(rng.choice(256, 14, replace=False))
    hist[occupied] = rng.integers(1, 500, 14)
    grid = np.arange(101) * 2.55

    def cell_error(values: np.ndarray) -> float:
        weights = hist[values].astype(float)
        return float(min(((values - g) ** 2 * weights).sum() for g in grid))

    for k in (2, 3, 4):
        best = min(
            sum(cell_error(cell) for cell in np.split(occupied, list(cuts)))
            for cuts in itertools.combinations(range(1, len(occupied)), k - 1)
        )
        mse = best / hist.sum()
        want = 10 * np.log10(255.0**2 / mse)
        got = sixel.fitted_lut(hist, k)
        assert len(np.unique(got[occupied])) <= k
        assert sixel.lut_psnr(hist, got) == pytest.approx(want, abs=1e-6)


def test_body_size_counts_exactly_what_body_writes() -> None:
    # the size predictions count runs without writing them: every case body() handles must agree
    rng = np.random.default_rng(12)
    for trial in range(60):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 1300))
        index = rng.integers(-1, int(rng.integers(1, 300)), (h, w))
        if trial % 3 == 0:
            index[: min(h, 12)] = -1  # unpainted bands
        if trial % 4 == 1:  # few registers: bands painted by threshold where that is cheaper
            index = np.where(index >= 0, index % int(rng.integers(1, sixel.THRESHOLD_REGISTERS + 1)), -1)
        if trial % 5 == 0:
            index[:, : w // 2] = index[0, 0]  # long runs (!n with up to 3 digits)
        registers = 300 if trial % 2 else 1000
        assert sixel.body_size(index, registers) == len(sixel.body(index, registers))
    assert sixel.body_size(np.full((7, 9), -1), 256) == len(sixel.body(np.full((7, 9), -1), 256)) == 0


def test_budget_search_finds_the_most_levels_that_fit() -> None:
    # against every count tried in turn, on growing sizes of many shapes (linear, curved, steps, flat runs)
    rng = np.random.default_rng(13)
    for _ in range(300):
        hi = int(rng.integers(2, 80))
        sizes = np.cumsum(rng.integers(0, 5000, hi + 1) * (rng.random(hi + 1) < 0.8)) + 1000.0
        limit = float(rng.uniform(500, sizes[-1] * 1.1))
        asked: list[int] = []

        def size_of(levels: int, sizes: np.ndarray = sizes, asked: list[int] = asked) -> float:
            asked.append(levels)
            return float(sizes[levels])

        want = max((n for n in range(2, hi + 1) if sizes[n] <= limit), default=None)
        assert sixel._most_that_fit(size_of, limit, 2, hi) == want
        assert all(2 <= n <= hi for n in asked)


def _noisy_levels(levels: int, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Register numbers of a smooth ramp with noise of a few levels, as a noisy MR slice quantises."""
    rng = np.random.default_rng(seed)
    h, w = shape
    ramp = np.linspace(0, levels - 1, w)[None, :] + rng.normal(0, 1.2, (h, w))
    ramp[: h // 4] = 0  # a black background above
    return np.asarray(np.clip(np.round(ramp), 0, levels - 1), np.int64) * (100 // (levels - 1))


@needs_magick
def test_threshold_painting_shows_the_same_picture_in_fewer_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a register may also paint the pixels of the higher registers painted after it: the picture shown must
    # be exactly the one painted register by register, and noise among the higher levels no longer cuts runs
    index = _noisy_levels(16, (61, 400), seed=9)
    palette = "".join(f"#{n};2;{n};{n};{n}" for n in np.unique(index)).encode()

    def shown(body: bytes) -> np.ndarray:
        data = b'\x1bP0;1;0q"1;1;400;61' + palette + body + b"\x1b\\"
        return _decode_with_imagemagick(data, tmp_path)[..., 0]

    layered = sixel.body(index, 256)
    monkeypatch.setattr(sixel, "THRESHOLD_REGISTERS", 0)  # every band as its registers' own pixels
    own = sixel.body(index, 256)
    assert len(layered) < 0.9 * len(own)
    want = np.round(index * 2.55)
    assert np.abs(shown(layered) - want).max() <= 1
    assert np.array_equal(shown(layered), shown(own))


def test_entries_from_packed_words_match_the_pixel_comparisons() -> None:
    # up to 31 registers the entries come from bit words and byte-parallel characters; more registers
    # compare pixels row by row and sort: both must find the same entries, characters and order
    rng = np.random.default_rng(31)
    for trial in range(40):
        nregs = int(rng.integers(1, sixel.THRESHOLD_REGISTERS + 1))
        nbands, w = int(rng.integers(1, 12)), int(rng.integers(1, 300))
        planes = rng.integers(0, nregs + 1, (nbands, 6, w)).astype(np.uint8)
        if trial % 3 == 0:
            planes[:, :, : w // 2] = planes[:, :1, :1]  # long runs of one rank
        if trial % 4 == 0:
            planes[-1, 3:] = 0  # a partial last band
        power = np.left_shift(np.uint32(1), planes, dtype=np.uint32)
        fast = sixel._entries(planes, nregs, power)
        slow = sixel._entries(planes, nregs, None)
        for got, want in zip(fast, slow, strict=True):
            assert np.array_equal(got, want)


def test_grey_encoding_from_the_histogram_matches_the_index_path() -> None:
    # a grey picture is ranked straight from its histogram; the same LUT through the index gives the same bytes
    rng = np.random.default_rng(5)
    picture = np.clip(rng.normal(120, 40, (50, 70)), 0, 255).astype(np.uint8)
    picture[:12] = 0
    for kwargs in ({}, {"max_bytes": 3_000}, {"grey_levels": 9}, {"max_bytes": None}):
        data = sixel.encode(picture, **kwargs)
        levels = kwargs.get("grey_levels")
        lut = (
            sixel.grey_lut(levels)
            if levels is not None
            else sixel.choose_grey_lut(picture, kwargs.get("max_bytes", sixel.DEFAULT_MAX_BYTES))
        )
        index, palette = sixel.indexed(picture, lut=lut)
        head = b'\x1bP0;1;0q"1;1;70;50' + sixel._palette(index, palette)
        assert data == head + sixel.body(index, 256) + b"\x1b\\"
