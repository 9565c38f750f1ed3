"""PictureView in a tiny App: frames, latest-only encoding, what the strips write, modal screens."""

from __future__ import annotations

import re

import numpy as np
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.pilot import Pilot
from textual.screen import ModalScreen
from textual.widgets import Label

from tui_dicom.core.graphics.layout import View
from tui_dicom.core.graphics.terminal import TerminalInfo
from tui_dicom.ui.widgets.picture import FrameStrip, PictureView


class _App(App[None]):
    def __init__(self, renderer: str) -> None:
        super().__init__()
        self.info = TerminalInfo(renderer=renderer, reason=f"{renderer}: test")
        self.displayed: list[PictureView.Displayed] = []

    def compose(self) -> ComposeResult:
        yield PictureView(terminal=self.info)
        yield Label("status")

    def on_picture_view_displayed(self, msg: PictureView.Displayed) -> None:
        self.displayed.append(msg)


def _picture(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (64, 96), dtype=np.uint8)


async def _wait_displayed(app: _App, pilot: Pilot[None], n: int = 1) -> None:
    for _ in range(200):
        await pilot.pause(0.01)
        if len(app.displayed) >= n:
            return
    raise AssertionError("no Displayed message")


async def test_halfblock_frame_matches_the_picture() -> None:
    app = _App("halfblock")
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(PictureView)
        pic = _picture()
        view.show("a", pic)
        await _wait_displayed(app, pilot)
        msg = app.displayed[-1]
        x, y, w, h = msg.region_cells
        assert msg.renderer == "halfblock" and msg.key == "a"
        assert msg.picture.shape == (2 * h, w)
        assert h == 19 and w > 0  # fills the height (one row is the label)
        strips = view.render_lines(view.region.reset_offset)
        assert isinstance(strips[y], FrameStrip)
        text = strips[y].render(app.console)
        assert text.count("\u2580") + text.count("\u2584") + text.count(" ") + text.count("\u2588") >= w
        # the lazily built Rich segments cover exactly the width
        assert sum(len(s.text) for s in strips[y]) == view.size.width
        # image coordinates of the picture's centre cell are near the image centre
        centre = view.image_coords(x + w // 2, y + h // 2)
        assert centre is not None
        row, col = centre
        assert abs(row - 32) < 3 and abs(col - 48) < 3
        assert view.image_coords(0, 0) is None or x == 0


async def test_only_the_latest_show_is_displayed() -> None:
    app = _App("halfblock")
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(PictureView)
        for i in range(30):
            view.show(i, _picture(i), view=View(zoom=1 + i / 10))
        await _wait_displayed(app, pilot)
        for _ in range(50):
            await pilot.pause(0.01)
        keys = [m.key for m in app.displayed]
        assert keys[-1] == 29
        assert len(keys) <= 3  # no backlog: intermediate requests were dropped


async def test_kitty_transmits_once_then_only_places() -> None:
    app = _App("kitty")
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(PictureView)
        view.show("a", _picture(1))
        await _wait_displayed(app, pilot)
        y = app.displayed[-1].region_cells[1]
        first = "".join(s.render(app.console) for s in view.render_lines(view.region.reset_offset))
        assert "a=t" in first and "a=p" in first
        again = "".join(s.render(app.console) for s in view.render_lines(view.region.reset_offset))
        assert "a=t" not in again and "a=p" in again and len(again) < len(first)
        assert y == 0 or re.search("a=p", again)


async def test_sixel_payload_on_first_picture_row_and_modal_hides_it() -> None:
    class Modal(ModalScreen[None]):
        def compose(self) -> ComposeResult:
            yield Label("modal")

    app = _App("sixel")
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(PictureView)
        view.show("a", _picture(2))
        await _wait_displayed(app, pilot)
        x, y, w, h = app.displayed[-1].region_cells
        lines = [s.render(app.console) for s in view.render_lines(view.region.reset_offset)]
        assert lines[y].count("\x1bP") == 1 and sum(line.count("\x1bP") for line in lines) == 1
        assert y + h <= 20 - 1  # never the screen's last row
        app.push_screen(Modal())
        await pilot.pause(0.05)
        hidden = view.render_lines(view.region.reset_offset)
        assert not any(isinstance(s, FrameStrip) for s in hidden)
        assert all("\x1bP" not in seg.text for s in hidden for seg in s)


async def test_sixel_budget_from_the_terminal_bounds_each_picture() -> None:
    # --sixel-kb sets TerminalInfo.sixel_max_bytes: a noisy picture filling the pane must fit it
    sizes = {}
    for budget in (200_000, 90_000):
        app = _App("sixel")
        app.info = TerminalInfo(renderer="sixel", reason="sixel: test", sixel_max_bytes=budget)
        async with app.run_test(size=(100, 40)) as pilot:
            view = app.query_one(PictureView)
            # a CT-like picture: a smooth body with mild noise, 200 grey values
            yy, xx = np.mgrid[-1:1:512j, -1:1:512j]
            body = np.clip(200 - 150 * (xx**2 + yy**2), 0, 255)
            noise = np.random.default_rng(5).normal(0, 6, (512, 512))
            view.show("ct", np.clip(body + noise, 0, 255).astype(np.uint8))
            await _wait_displayed(app, pilot)
            text = "".join(s.render(app.console) for s in view.render_lines(view.region.reset_offset))
            start = text.index("\x1bP")
            sizes[budget] = text.index("\x1b\\", start) + 2 - start
    assert sizes[90_000] <= 90_000 < sizes[200_000] <= 200_000


def test_sixel_kb_argument_reaches_the_terminal_info() -> None:
    import argparse

    from tui_dicom.commands import view as view_cmd

    parser = argparse.ArgumentParser()
    view_cmd.add_arguments(parser)
    assert parser.parse_args(["--sixel-kb", "110"]).sixel_kb == 110
    assert parser.parse_args([]).sixel_kb == 200


async def test_on_shown_runs_with_the_picture_and_is_never_dropped() -> None:
    """Callbacks of show() run in the turn the picture is installed; a replaced show's callback still runs."""
    app = _App("halfblock")
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(PictureView)
        calls: list[tuple[str, object]] = []
        view.show("a", _picture(1), on_shown=lambda: calls.append(("a", view.layout_now)))
        view.show(
            "b", _picture(2), on_shown=lambda: calls.append(("b", view._frame and view._frame.request.key))
        )
        await _wait_displayed(app, pilot)
        assert [c[0] for c in calls] == ["a", "b"]
        assert calls[1][1] == "b"  # ran when the newest picture was installed
        # a cached picture: the callback runs at once, inside show()
        view.show("b", _picture(2), on_shown=lambda: calls.append(("again", None)))
        assert calls[-1][0] == "again"


async def test_kitty_step_over_the_same_cells_repaints_only_the_placement_line() -> None:
    app = _App("kitty")
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(PictureView)
        view.show("a", _picture(1))
        await _wait_displayed(app, pilot)
        await pilot.pause(0.05)
        regions: list[tuple[Region, ...]] = []
        real_refresh = view.refresh

        def spy(*args: Region, **kwargs: bool) -> PictureView:
            regions.append(args)
            return real_refresh(*args, **kwargs)

        view.refresh = spy  # type: ignore[method-assign]  # a spy on the instance
        view.show("b", _picture(2))
        await _wait_displayed(app, pilot, 2)
        x, y, w, _h = app.displayed[-1].region_cells
        assert regions and all(len(r) == 1 and r[0].height == 1 and r[0].y == y for r in regions[:1])


async def test_sixel_larger_than_the_terminal_limit_is_scaled_down_and_said() -> None:
    """xterm drops a sixel bigger than its maxGraphicSize (1000x1000 by default) without a word."""
    for source in ("terminal", "assumed"):
        app = _App("sixel")
        app.info = TerminalInfo(
            renderer="sixel", reason="sixel: test", sixel_max_px=(600, 400), sixel_max_source=source
        )
        async with app.run_test(size=(150, 50)) as pilot:
            view = app.query_one(PictureView)
            view.show("big", _picture(7))
            await _wait_displayed(app, pilot)
            x, y, w, h = app.displayed[-1].region_cells
            text = "".join(s.render(app.console) for s in view.render_lines(view.region.reset_offset))
            raster = re.search(r'q"1;1;(\d+);(\d+)', text)
            assert raster is not None
            assert int(raster.group(1)) <= 600 and int(raster.group(2)) <= 400
            assert (w * 10, h * 20) == (int(raster.group(1)), int(raster.group(2)))
            # centred in the pane, not in its corner
            assert x > 0 and y > 0
            assert "600×400" in view.size_note and view.size_note in view.renderer_description
            assert ("did not say" in view.size_note) == (source == "assumed")
    # a picture that fits says nothing
    app = _App("sixel")
    async with app.run_test(size=(40, 15)) as pilot:
        view = app.query_one(PictureView)
        view.show("small", _picture(8))
        await _wait_displayed(app, pilot)
        assert view.size_note == "" and view.renderer_description == "sixel: test"


async def test_kitty_picture_gives_way_to_a_notification_over_it() -> None:
    """Kitty pictures are placed over the text layer (z=0): while a toast covers the picture, the
    half-block twin is drawn instead, so the toast is readable; then the picture comes back."""
    app = _App("kitty")
    async with app.run_test(size=(60, 20), notifications=True) as pilot:
        view = app.query_one(PictureView)
        view.show("a", _picture(3))
        await _wait_displayed(app, pilot)
        first = "".join(s.render(app.console) for s in view.render_lines(view.region.reset_offset))
        assert "a=p" in first and "z=0" in first
        app.notify("a notification over the picture", timeout=30)
        for _ in range(100):
            await pilot.pause(0.02)
            lines = view.render_lines(view.region.reset_offset)
            if not any(isinstance(s, FrameStrip) for s in lines):
                break
        else:
            raise AssertionError("the kitty picture stayed over the notification")
        assert all("a=p" not in seg.text for s in lines for seg in s)
        app.clear_notifications()
        for _ in range(100):
            await pilot.pause(0.02)
            text = "".join(s.render(app.console) for s in view.render_lines(view.region.reset_offset))
            if "a=p" in text:
                break
        else:
            raise AssertionError("the kitty picture did not come back")
        assert "a=t" not in text  # placed again, not sent again
