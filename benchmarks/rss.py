"""[rss] Peak memory while scrolling a 2,000-slice series end to end with ``--cache-mb 256``.

A child Python process runs the viewer headless (Textual ``run_test`` at 120x50 cells, half-block
renderer, ``cache_mb=256`` as ``--cache-mb 256`` sets it), goes to the first
slice and holds ``Down`` (a press every 30 ms, a typical key auto-repeat) until the last slice is
displayed; the viewer shows (and decodes, prefetches and caches) what it keeps up with, like for a
person holding the key. The child then reports its peak resident set size
(``getrusage(RUSAGE_SELF).ru_maxrss``) and how many distinct slices it displayed. Series of 2,000 and 4,000 copies of real 512² CT slices.
Goal: ≤ 256 + 150 MB, and flat in series length (4,000 slices within 10 % of 2,000).
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks import inputs
from benchmarks.common import REPO, Context, Missing, Row, at_most, interleaved, median, ratio, viewer_missing

CACHE_MB = 256
GOAL_MB = CACHE_MB + 150.0
GOAL_FLAT = 1.10
#: seconds between Down presses: a held key at a typical 33 Hz auto-repeat
REPEAT_S = 0.03

CHILD = r"""
import asyncio, json, resource, sys, time
from textual import events
from tui_dicom.core.graphics.terminal import detect
from tui_dicom.ui.app import DicomViewerApp

path, n, cache_mb, REPEAT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

async def shown(pilot, app, counter, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            main = app.main
            last = main.last_displayed
        except LookupError:
            last = None
        if last is not None and last.slice == counter and main.counter_text == counter:
            return True
        await asyncio.sleep(0.002)
    return False

async def main():
    app = DicomViewerApp([path], terminal=detect(override="halfblock", colors="truecolor"), cache_mb=cache_mb)
    t0 = time.monotonic()
    async with app.run_test(size=(120, 50)) as pilot:
        end = time.monotonic() + 300
        while time.monotonic() < end and not getattr(app.main, "index_done", False):
            await asyncio.sleep(0.01)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            # the series may first show while it is still being indexed (a smaller count), and the
            # same slice is then kept: wait for the full count on the counter and any picture
            if app.main.last_displayed and str(app.main.counter_text).endswith(f"/{n}"):
                break
            await asyncio.sleep(0.01)
        else:
            raise SystemExit(f"no first slice of the {n}-slice series: {app.main.counter_text!r}")
        first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        await pilot.press("home")  # the image has the focus at start
        if not await shown(pilot, app, f"1/{n}", 30):
            raise SystemExit("home did not show slice 1")
        seen = set()
        for i in range(2, n + 1):
            # like a terminal's key auto-repeat: keys arrive at a fixed rate, whether the app keeps up or not
            key = events.Key("down", None)
            key.set_sender(app)
            app._driver.send_message(key)
            await asyncio.sleep(REPEAT)
            last = app.main.last_displayed
            if last is not None:
                seen.add(last.slice)
        if not await shown(pilot, app, f"{n}/{n}", 60):
            raise SystemExit(f"the last slice was not displayed: {app.main.counter_text!r}")
        await pilot.press("q")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"peak_rss_mb": ru.ru_maxrss / 1024, "first_rss_mb": first, "displayed": len(seen), "seconds": time.monotonic() - t0}))

asyncio.run(main())
"""


def peak_rss_mb(folder: str, n: int, timeout: float = 1800) -> tuple[float, float]:
    """Peak RSS in MB of one headless scroll through the ``n``-slice series in ``folder``.

    Returns:
        (peak RSS after the scroll, peak RSS when the first picture was displayed), in MB.

    Raises:
        RuntimeError: the child failed.
    """
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, folder, str(n), str(CACHE_MB), str(REPEAT_S)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or [""])[-1]
        raise RuntimeError(f"scroll child exited {proc.returncode}: {err}")
    got = json.loads(lines[-1])
    print(
        f"    {n} slices: peak {got['peak_rss_mb']:.0f} MB, {got['displayed']} slices displayed while the "
        f"key repeated, {got['seconds']:.0f} s",
        file=sys.stderr,
    )
    return float(got["peak_rss_mb"]), float(got["first_rss_mb"])


def run(ctx: Context) -> list[Row]:
    """Measure the group; returns its rows."""
    small_n, big_n = ctx.size(2000, 60), ctx.size(4000, 120)
    label = f"[rss] peak RSS scrolling a series end to end, --cache-mb {CACHE_MB}"
    goal = f"≤ {GOAL_MB:.0f} MB"
    try:
        small = inputs.ct_set(ctx.work, small_n, small_n, log=ctx.log)
        big = inputs.ct_set(ctx.work, big_n, big_n, log=ctx.log)
    except Missing as exc:
        return [Row(f"{label}, {small_n:,} slices", "MB", None, "—", None, None, goal, False, str(exc))]
    note = viewer_missing()
    firsts: list[float] = []

    def scroll(folder: str, n: int) -> float:
        peak, first = peak_rss_mb(folder, n)
        firsts.append(first)
        return peak

    subjects = (
        {}
        if note
        else {
            "small": lambda: scroll(str(small / "DATA"), small_n),
            "big": lambda: scroll(str(big / "DATA"), big_n),
        }
    )
    res = interleaved(subjects, ctx.runs, warmup=0)
    s, b, f = median(res.get("small", [])), median(res.get("big", [])), median(firsts)
    if s is None and not note:
        note = "the scroll failed (see the log above)"
    flat = ratio(b, s)
    return [
        Row(
            f"{label}, {small_n:,} slices",
            "MB",
            s,
            "the viewer at its first picture (same processes)",
            f,
            ratio(s, f),
            goal,
            at_most(s, GOAL_MB),
            note,
        ),
        Row(
            f"{label}, {big_n:,} slices",
            "MB",
            b,
            f"the same at {small_n:,} slices, this run",
            s,
            flat,
            f"≤ {GOAL_MB:.0f} MB and ≤ {GOAL_FLAT}× the {small_n:,}-slice peak",
            at_most(b, GOAL_MB) and at_most(flat, GOAL_FLAT),
            note,
        ),
    ]
