"""[first image] Process start -> first picture written, through a pty, on a 2,000- and a 10,000-image CD.

``tui-dicom --renderer halfblock CD_ROOT`` runs in a 120x50 pty (10x20 px cells) whose fake terminal
answers the start-up queries at once. The time is taken from just before ``fork`` to the last byte
of the first output burst that carries the half-block picture (hundreds of ``▀``/``▄`` glyphs); the
``TUI_DICOM_LAYOUT_JSON`` file the viewer writes once a picture is displayed confirms it.
The reference is the floor every start pays: a Python process that only imports the viewer.

On a single CT file the same start is compared with pydcmview's (the ``bench`` extra) in the same pty
size: its first picture is the first burst carrying hundreds of half-block glyphs too (textual-image
draws half-cells when the terminal offers neither sixel nor kitty graphics). Goal: ≤ 0.9× pydcmview.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import inputs
from benchmarks.common import (
    Context,
    Missing,
    Row,
    at_most,
    interleaved,
    median,
    process_time,
    ratio,
    tui_dicom_cmd,
    venv_script,
    viewer_missing,
)
from benchmarks.ptyrun import PtyApp

GOAL_S = 1.0
GOAL_GROWTH = 1.1
GOAL_VS_PYDCMVIEW = 0.9


def first_image_seconds(
    root: Path, layout: Path, limit: float = 60.0, cpu: list[float] | None = None
) -> float:
    """One start of the viewer on ``root``; seconds from process start to the first picture.

    Args:
        cpu: When given, the process's CPU seconds (all threads and children) when the first picture is
            seen (polled every 5 ms) are appended to it.

    Raises:
        RuntimeError: no picture within ``limit`` seconds.
    """
    layout.unlink(missing_ok=True)
    env = dict(os.environ, TUI_DICOM_LAYOUT_JSON=str(layout))
    app = PtyApp([*tui_dicom_cmd(), "--renderer", "halfblock", str(root)], env=env)
    with app:
        app.wait_for(lambda: layout.exists() or app.first_picture_time() is not None, limit)
        if cpu is not None:
            cpu.append(app.cpu_seconds())
        # let the picture's burst finish, and give the layout file a moment to confirm it
        app.wait_for(layout.exists, 10.0)
        app.wait_quiet(time.perf_counter() - 0.01, 0.3, 3.0)
        t = app.first_picture_time()
        shown = layout.exists()
    if t is None:
        raise RuntimeError("no half-block picture in the output" + ("" if shown else " and no layout file"))
    if not shown:
        raise RuntimeError("a picture-like burst was seen but the viewer wrote no layout file")
    return t


def picture_seconds(cmd: list[str], limit: float = 60.0, cpu: list[float] | None = None) -> float:
    """One start of ``cmd`` in the pty; seconds from process start to its first half-block picture.

    Args:
        cpu: As for :func:`first_image_seconds`.

    Raises:
        RuntimeError: no picture within ``limit`` seconds.
    """
    app = PtyApp(cmd)
    with app:
        app.wait_for(lambda: app.first_picture_time() is not None, limit)
        if cpu is not None:
            cpu.append(app.cpu_seconds())
        app.wait_quiet(time.perf_counter() - 0.01, 0.3, 3.0)  # let the picture's burst finish
        t = app.first_picture_time()
    if t is None:
        raise RuntimeError(f"no half-block picture from {Path(cmd[0]).name}")
    return t


def single_file_rows(ctx: Context) -> list[Row]:
    """Start → first picture of one CT file: ours against pydcmview, interleaved in one run."""
    label = "[first image] start → first picture, one CT file (half-block, pty)"
    goal = f"≤ {GOAL_VS_PYDCMVIEW}× pydcmview"
    try:
        path = str(inputs.ct_sources()[0])
    except Missing as exc:
        return [Row(label, "s", None, "pydcmview, same file and pty", None, None, goal, False, str(exc))]
    note = viewer_missing()
    tmp = tempfile.TemporaryDirectory(prefix="bench-first1-")
    layout = Path(tmp.name) / "layout.json"
    cpu: dict[str, list[float]] = {"ours": [], "pydcmview": []}
    subjects = {} if note else {"ours": lambda: first_image_seconds(Path(path), layout, cpu=cpu["ours"])}
    pdv = venv_script("pydcmview")
    if pdv:
        subjects["pydcmview"] = lambda: picture_seconds([pdv, path], cpu=cpu["pydcmview"])
    else:
        note = (note + "; " if note else "") + "pydcmview is not installed (pip install '.[bench]')"
    try:
        res = interleaved(subjects, ctx.runs)
    finally:
        tmp.cleanup()
    ours, ref = median(res.get("ours", [])), median(res.get("pydcmview", []))
    r = ratio(ours, ref)
    # the warm-up round's CPU figures are dropped, as its times are
    cpu_ours = median(cpu["ours"][-len(res.get("ours", [])) :] if res.get("ours") else [])
    cpu_ref = median(cpu["pydcmview"][-len(res.get("pydcmview", [])) :] if res.get("pydcmview") else [])
    return [
        Row(
            label,
            "s",
            ours,
            "pydcmview, same file and pty",
            ref,
            r,
            goal,
            at_most(r, GOAL_VS_PYDCMVIEW),
            note,
        ),
        Row(
            "[first image] process CPU time to the first picture, one CT file (half-block, pty)",
            "s",
            cpu_ours,
            "pydcmview, same file and pty",
            cpu_ref,
            ratio(cpu_ours, cpu_ref),
            "reported",
            cpu_ours is not None,
            note,
        ),
    ]


def run(ctx: Context) -> list[Row]:
    """Measure the group; returns its rows."""
    return [*single_file_rows(ctx), *cd_rows(ctx)]


def cd_rows(ctx: Context) -> list[Row]:
    """Start → first picture on a 2,000- and a 10,000-image CD."""
    small_n, big_n = ctx.size(2000, 200), ctx.size(10000, 600)
    label = "[first image] start → first picture (half-block, pty)"
    try:
        small = inputs.cd(ctx.work, small_n, 200 if small_n >= 2000 else 100, log=ctx.log)
        big = inputs.cd(ctx.work, big_n, 200 if big_n >= 2000 else 100, log=ctx.log)
    except Missing as exc:
        return [
            Row(
                f"{label}, {small_n:,}-image CD",
                "s",
                None,
                "Python importing the viewer",
                None,
                None,
                f"≤ {GOAL_S} s",
                False,
                str(exc),
            )
        ]
    note = viewer_missing()
    tmp = tempfile.TemporaryDirectory(prefix="bench-first-")
    layout = Path(tmp.name) / "layout.json"
    subjects = (
        {}
        if note
        else {
            "small": lambda: first_image_seconds(small, layout),
            "big": lambda: first_image_seconds(big, layout),
        }
    )
    subjects["imports"] = lambda: process_time([sys.executable, "-c", "import tui_dicom.ui.app"])
    try:
        res = interleaved(subjects, ctx.runs)
    finally:
        tmp.cleanup()
    t_small, t_big, t_imp = (median(res.get(k, [])) for k in ("small", "big", "imports"))
    if t_small is None and not note:
        note = "no first picture (see the log above)"
    growth = ratio(t_big, t_small)
    return [
        Row(
            f"{label}, {small_n:,}-image CD",
            "s",
            t_small,
            "Python process importing the viewer",
            t_imp,
            ratio(t_small, t_imp),
            f"≤ {GOAL_S:.1f} s",
            at_most(t_small, GOAL_S),
            note,
        ),
        Row(
            f"{label}, {big_n:,}-image CD",
            "s",
            t_big,
            f"the same at {small_n:,} images, this run",
            t_small,
            growth,
            f"≤ {GOAL_GROWTH}× the {small_n:,}-image time",
            at_most(growth, GOAL_GROWTH),
            note,
        ),
    ]
