"""The picture in real terminal emulators under Xvfb, checked by ../shared/tools/check_shot.py.

Runs the viewer (``tui-dicom SERIES``, keys Down Down Down); it writes ``TUI_DICOM_LAYOUT_JSON`` and
its ``.expected.png`` after every displayed frame.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
TOOLS = SHARED / "tools"
SERIES = SHARED / "data" / "ge_ct_head"

pytestmark = [
    pytest.mark.terminal,
    pytest.mark.skipif(not (TOOLS / "real_terminal.py").exists(), reason="../shared/tools not found"),
    pytest.mark.skipif(not SERIES.is_dir(), reason="../shared/data/ge_ct_head not found"),
    pytest.mark.skipif(
        shutil.which("Xvfb") is None or shutil.which("xdotool") is None or shutil.which("import") is None,
        reason="Xvfb, xdotool or ImageMagick not installed",
    ),
]


def _command(renderer: str | None) -> tuple[list[str], str]:
    extra = [] if renderer is None else ["--renderer", renderer]
    exe = Path(sys.executable).with_name("tui-dicom")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "tui_dicom"]
    return [*argv, *extra, str(SERIES)], "Down Down Down"


def _shoot(
    tmp_path: Path,
    term: str,
    renderer: str | None,
    *,
    tmux: bool = False,
    tmux_conf: str | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    if shutil.which(term) is None:
        pytest.skip(f"{term} not installed")
    if tmux and shutil.which("tmux") is None:
        pytest.skip("tmux not installed")
    layout = tmp_path / "layout.json"
    shot = tmp_path / f"{term}.png"
    cmd, keys = _command(renderer)
    argv = [
        sys.executable,
        str(TOOLS / "real_terminal.py"),
        "--term",
        term,
        "--wait-file",
        str(layout),
        "--settle",
        "2",
        "--keys",
        keys,
        "--key-gap",
        "1.5",
        "--out",
        str(shot),
    ]
    if size is not None:
        cols, rows = size
        argv += [
            "--cols",
            str(cols),
            "--rows",
            str(rows),
            "--screen",
            f"{cols * 10 + 100}x{rows * 20 + 100}x24",
        ]
    if tmux:
        argv.append("--tmux")
    if tmux_conf:
        argv += ["--tmux-conf", tmux_conf]
    env = dict(os.environ, TUI_DICOM_LAYOUT_JSON=str(layout), PYTHONPATH=str(ROOT))
    env.pop("TUI_DICOM_RENDERER", None)
    subprocess.run([*argv, "--", *cmd], cwd=ROOT, env=env, capture_output=True, timeout=120, check=True)
    if not layout.exists():
        pytest.fail(f"{term}: the app never wrote {layout.name} (see {tmp_path})")
    lay = json.loads(layout.read_text())
    res = subprocess.run(
        [sys.executable, str(TOOLS / "check_shot.py"), str(shot), str(layout), "--accept", "graphics,cells"],
        capture_output=True,
        text=True,
    )
    verdict = json.loads(res.stdout.strip().splitlines()[-1])
    print(term, renderer, lay, verdict)
    return lay, verdict


def _slice_after_keys(lay: dict[str, Any]) -> None:
    """The viewer opens the series at its middle slice (15/28) with the focus on the image; Down x3 -> 18/28.

    The counter must match the picture: the instance shown is the 18th along the slice normal, which
    for this series (positions increasing with the file number) is 18.dcm according to pydicom.
    """
    import pydicom

    files = sorted(
        SERIES.glob("*.dcm"),
        key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]),
    )
    assert lay["slice"] == "18/28", lay
    assert lay["sop_instance_uid"] == pydicom.dcmread(files[17], stop_before_pixels=True).SOPInstanceUID


@pytest.mark.parametrize("renderer", ["sixel", None])
def test_xterm_sixel_is_graphics(tmp_path: Path, renderer: str | None) -> None:
    lay, verdict = _shoot(tmp_path, "xterm", renderer)
    assert lay["renderer"] == "sixel"
    assert verdict["verdict"] == "graphics" and verdict["corr_full"] >= 0.95, verdict
    _slice_after_keys(lay)


def test_big_xterm_keeps_the_sixel_under_its_limit(tmp_path: Path) -> None:
    """330x60 cells of 10x20 px: the fitted picture would be 1140 px high, over xterm's default
    maxGraphicSize (1000x1000), which xterm drops without a word. The viewer asks (XTSMGRAPHICS) and
    fits the picture under the limit."""
    lay, verdict = _shoot(tmp_path, "xterm", None, size=(330, 60))
    assert lay["renderer"] == "sixel"
    _x, _y, w, h = lay["region_cells"]
    assert w * 10 <= 1000 and h * 20 <= 1000 and h >= 45, lay
    assert verdict["verdict"] == "graphics" and verdict["corr_full"] >= 0.95, verdict
    _slice_after_keys(lay)


def test_xterm_halfblock_is_cells(tmp_path: Path) -> None:
    lay, verdict = _shoot(tmp_path, "xterm", "halfblock")
    assert lay["renderer"] == "halfblock"
    assert verdict["verdict"] == "cells" and verdict["corr_blocky"] >= 0.95, verdict
    _slice_after_keys(lay)


def test_mlterm_sixel_is_graphics(tmp_path: Path) -> None:
    lay, verdict = _shoot(tmp_path, "mlterm", "sixel")
    assert verdict["verdict"] == "graphics" and verdict["corr_full"] >= 0.95, verdict
    _slice_after_keys(lay)


def test_tmux_in_xterm_auto_is_cells(tmp_path: Path) -> None:
    lay, verdict = _shoot(tmp_path, "xterm", None, tmux=True)
    assert lay["renderer"] == "halfblock"
    assert verdict["verdict"] == "cells" and verdict["corr_blocky"] >= 0.95, verdict
    _slice_after_keys(lay)


def test_kitty_graphics(tmp_path: Path) -> None:
    try:
        lay, verdict = _shoot(tmp_path, "kitty", "kitty")
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"kitty did not start under Xvfb: {exc.stderr[-300:]!r}")
    assert lay["renderer"] == "kitty"
    assert verdict["verdict"] == "graphics" and verdict["corr_full"] >= 0.95, verdict
    _slice_after_keys(lay)


def test_kitty_through_tmux_passthrough_is_graphics(tmp_path: Path) -> None:
    """Auto-detection inside tmux with allow-passthrough picks kitty graphics, placed at the right cells."""
    try:
        lay, verdict = _shoot(tmp_path, "kitty", None, tmux=True, tmux_conf="set -g allow-passthrough on")
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"kitty did not start under Xvfb: {exc.stderr[-300:]!r}")
    assert lay["renderer"] == "kitty"
    assert verdict["verdict"] == "graphics" and verdict["corr_full"] >= 0.95, verdict
    _slice_after_keys(lay)


def _ui_background(shot: Path, lay: dict[str, Any]) -> tuple[float, float, float]:
    """Mean colour of a blank stretch of the study tree (left column, rows 30-40: no text there)."""
    import numpy as np
    from PIL import Image

    cw, ch = lay["cell_px"]
    img = Image.open(shot).convert("RGB")
    box = (2 * cw, 30 * ch, 20 * cw, 40 * ch)
    r, g, b = np.asarray(img.crop(box), dtype=float).reshape(-1, 3).mean(axis=0)
    return float(r), float(g), float(b)


def test_kitty_picture_keeps_the_ui_colours(tmp_path: Path) -> None:
    """kitty 0.26 under software GL tinted every cell background maroon (and kept stale glyphs) as soon
    as an image was placed under the text (z < 0). The UI around the picture must keep the theme's
    neutral dark background: compare with the same screen drawn by xterm."""
    try:
        lay, verdict = _shoot(tmp_path, "kitty", "kitty")
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"kitty did not start under Xvfb: {exc.stderr[-300:]!r}")
    assert verdict["verdict"] == "graphics", verdict
    r, g, b = _ui_background(tmp_path / "kitty.png", lay)
    print("kitty tree background", (r, g, b))
    assert max(r, g, b) - min(r, g, b) <= 8, f"tinted UI background {(r, g, b)}"
    xterm_dir = tmp_path / "xterm"
    xterm_dir.mkdir()
    xlay, _ = _shoot(xterm_dir, "xterm", "halfblock")
    xr, xg, xb = _ui_background(xterm_dir / "xterm.png", xlay)
    assert abs(r - xr) <= 10 and abs(g - xg) <= 10 and abs(b - xb) <= 10, ((r, g, b), (xr, xg, xb))
