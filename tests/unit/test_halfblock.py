"""Half-block encoder: decode the emitted SGR text with an independent parser and compare with the picture."""

from __future__ import annotations

import re

import numpy as np

from tui_dicom.core.graphics import halfblock

_TOKEN = re.compile(r"\x1b\[([\d;]*)m|(.)", re.S)


def _decode(text: str) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Return (top, bottom) colour per cell as the terminal would show it (ECMA-48 SGR)."""
    fg: tuple[int, ...] = ()
    bg: tuple[int, ...] = ()
    cells = []
    for m in _TOKEN.finditer(text):
        if m.group(2) is None:
            p = [int(v) for v in m.group(1).split(";") if v] or [0]
            i = 0
            while i < len(p):
                if p[i] == 0:
                    fg = bg = ()
                    i += 1
                elif p[i] in (38, 48):
                    val = tuple(p[i + 2 : i + 5]) if p[i + 1] == 2 else (p[i + 2],)
                    if p[i] == 38:
                        fg = val
                    else:
                        bg = val
                    i += 5 if p[i + 1] == 2 else 3
                else:
                    i += 1
        else:
            ch = m.group(2)
            cells.append({"\u2580": (fg, bg), "\u2584": (bg, fg), " ": (bg, bg), "\u2588": (fg, fg)}[ch])
    return cells


def test_truecolor_round_trip_grey_and_rgb() -> None:
    rng = np.random.default_rng(0)
    for pic in (
        rng.integers(0, 256, (8, 13), dtype=np.uint8),
        rng.integers(0, 256, (6, 9, 3), dtype=np.uint8),
    ):
        pic[0:2, 0:5] = 7  # equal halves and repeated cells
        frame = halfblock.encode(pic, "truecolor")
        rgb = pic if pic.ndim == 3 else np.repeat(pic[..., None], 3, axis=2)
        for row in range(frame.rows):
            cells = _decode(frame.lines[row])
            assert len(cells) == pic.shape[1]
            for col, (top, bottom) in enumerate(cells):
                assert top == tuple(rgb[2 * row, col])
                assert bottom == tuple(rgb[2 * row + 1, col])


def test_partial_encode_is_self_contained() -> None:
    pic = np.random.default_rng(2).integers(0, 256, (4, 20), dtype=np.uint8)
    frame = halfblock.encode(pic)
    full = _decode(frame.lines[1])
    assert _decode(frame.encode(1, 7, 15)) == full[7:15]


def test_256_greys_use_nearest_palette_grey() -> None:
    pal = halfblock.palette_256().astype(int)
    greys = [i for i in range(16, 256) if pal[i][0] == pal[i][1] == pal[i][2]]
    assert len(greys) == 30
    for v in range(256):
        idx = int(halfblock.GREY_LUT[v])
        best = min(abs(pal[g][0] - v) for g in greys)
        assert abs(pal[idx][0] - v) == best
    # the xterm formula (reference): ramp 232+i = 8+10i, cube levels 0,95,135,...
    assert pal[232].tolist() == [8, 8, 8] and pal[255].tolist() == [238, 238, 238]
    assert pal[16 + 36 * 5 + 6 * 0 + 0].tolist() == [255, 0, 0]


def test_256_mode_emits_palette_indices() -> None:
    pic = np.full((2, 3), 128, np.uint8)
    frame = halfblock.encode(pic, "256")
    assert "48;5;" in frame.lines[0] and "2;" not in frame.lines[0].replace("48;5;", "")


def test_odd_height_padded_with_black() -> None:
    frame = halfblock.encode(np.full((3, 2), 200, np.uint8))
    assert frame.rows == 2
    assert _decode(frame.lines[1])[0] == ((200, 200, 200), (0, 0, 0))


def _per_cell(top: np.ndarray, bottom: np.ndarray, colors: str) -> str:
    """The encoder's rule cell by cell (how it was written before runs were skipped)."""

    def code(key: int) -> str:
        return f"5;{key}" if colors == "256" else f"2;{(key >> 16) & 255};{(key >> 8) & 255};{key & 255}"

    out: list[str] = []
    fg = bg = -1
    for t, b in zip(top.tolist(), bottom.tolist(), strict=True):
        if t == b:
            if bg == t:
                out.append(" ")
            elif fg == t:
                out.append("\u2588")
            else:
                bg = t
                out.append(f"\x1b[48;{code(t)}m ")
            continue
        upper = (fg != t) + (bg != b)
        lower = (fg != b) + (bg != t)
        want_fg, want_bg, ch = (b, t, "\u2584") if lower < upper else (t, b, "\u2580")
        sgr = [f"38;{code(want_fg)}"] if want_fg != fg else []
        sgr += [f"48;{code(want_bg)}"] if want_bg != bg else []
        out.append((f"\x1b[{';'.join(sgr)}m" if sgr else "") + ch)
        fg, bg = want_fg, want_bg
    return "".join(out) + "\x1b[0m"


def test_runs_encode_exactly_as_cell_by_cell() -> None:
    """Runs of equal cells are encoded at once: the bytes are those of the cell-by-cell rule, on flat,
    noisy, striped and CT-like pictures, grey and colour, truecolor and 256 colours, whole rows and
    partial ones."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:48, 0:61]
    disc = ((yy - 24) ** 2 + (xx - 30) ** 2 < 400) * (100 + (xx % 7) * 20)
    pictures = [
        np.zeros((10, 17), np.uint8),
        rng.integers(0, 256, (21, 33), dtype=np.uint8),
        rng.integers(0, 3, (16, 40), dtype=np.uint8) * 120,
        disc.astype(np.uint8),
        np.repeat(rng.integers(0, 256, (12, 9, 3), dtype=np.uint8), 4, axis=1),
        np.zeros((0, 5), np.uint8),
    ]
    for picture in pictures:
        for colors in ("truecolor", "256"):
            frame = halfblock.encode(picture, colors)
            for row in range(frame.rows):
                assert frame.lines[row] == _per_cell(frame.top[row], frame.bottom[row], colors)
                assert frame.encode(row, 3, 11) == _per_cell(
                    frame.top[row, 3:11], frame.bottom[row, 3:11], colors
                )
            assert len(frame.lines) == frame.rows
