"""What a slice step repaints: only the changed regions, and after a burst of steps nothing stale.

The screen's :class:`~tui_dicom.ui.driver.SparseCompositor` renders only the widgets that touch a changed
region; these tests replay every update the app writes onto a virtual terminal and compare it with the
screen Textual would paint from scratch, so a region left unpainted (or painted from a stale line)
fails. The inspector follows a held key only once stepping pauses: after a burst, every field shown
must be the current slice's, as pydicom reads it from the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pilot import wait_for_index, wait_for_slice, wait_until
from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.cache import LRUCache
from textual.containers import Horizontal, Vertical
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip
from textual.widgets import Static

from tui_dicom.core.graphics.terminal import detect
from tui_dicom.core.inspector.tags import tag_rows
from tui_dicom.core.session.viewer import fmt_num
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.driver import SparseCompositor, use_sparse_compositor
from tui_dicom.ui.screens import main as main_module
from tui_dicom.ui.screens.main import MainScreen
from tui_dicom.ui.widgets.annotations import AnnotationBar
from tui_dicom.ui.widgets.inspector import TagInspector, row_label
from tui_dicom.ui.widgets.picture import PictureView

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CT = SHARED / "ge_ct_head"
needs_ct = pytest.mark.skipif(not CT.is_dir(), reason=f"real data not found: {CT}")

_TOKEN = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\x1b[^\[]|[\r\n]|[^\x1b\r\n]")


class VirtualTerminal:
    """The characters a terminal shows after the app's output (cursor moves and text; styles ignored)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.cells = [[" "] * width for _ in range(height)]
        self.x = self.y = 0

    def feed(self, data: str) -> None:
        """Apply ``data`` (what Textual writes for one update)."""
        for match in _TOKEN.finditer(data):
            params, final = match.group(1), match.group(2)
            if final == "H":
                row, _, col = (params or "1;1").partition(";")
                self.y, self.x = int(row or 1) - 1, int(col or 1) - 1
            elif final == "C":
                self.x += int(params or 1)
            elif final is None and match.group(0) not in "\r\n" and not match.group(0).startswith("\x1b"):
                char = match.group(0)
                if 0 <= self.y < self.height and 0 <= self.x < self.width:
                    self.cells[self.y][self.x] = char
                self.x += max(1, cell_len(char))

    def lines(self) -> list[str]:
        """The screen's rows as text."""
        return ["".join(row) for row in self.cells]


def screen_text(screen: Screen[Any]) -> list[str]:
    """The screen painted from scratch by Textual (every widget, every line)."""
    return [strip.text for strip in screen._compositor.render_strips()]


def masked(lines: list[str], region: Region) -> list[str]:
    """``lines`` with the cells of ``region`` blanked."""
    out = []
    for y, line in enumerate(lines):
        if region.y <= y < region.bottom:
            line = line[: region.x] + " " * region.width + line[region.right :]
        out.append(line)
    return out


def record_output(app: App[Any], size: tuple[int, int]) -> VirtualTerminal:
    """Replay every update the app displays onto a virtual terminal (headless apps write nothing)."""
    term = VirtualTerminal(*size)
    display = app._display

    def capture(screen: Screen[Any], renderable: Any) -> None:
        if renderable is not None and hasattr(renderable, "render_segments"):
            term.feed(renderable.render_segments(app.console))
        display(screen, renderable)

    app._display = capture  # type: ignore[method-assign]
    return term


class _Counted(Static):
    """A Static that counts the lines Textual asks it to render."""

    def __init__(self, text: str, **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.rendered_rows = 0

    def render_lines(self, crop: Region) -> list[Strip]:
        self.rendered_rows += crop.height
        return super().render_lines(crop)


class _CountedVertical(Vertical):
    """A container that counts the lines Textual asks it to render."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rendered_rows = 0

    def render_lines(self, crop: Region) -> list[Strip]:
        self.rendered_rows += crop.height
        return super().render_lines(crop)


class _Board(Screen[None]):
    def __init__(self) -> None:
        super().__init__()
        use_sparse_compositor(self)

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield _Counted("left", id="left")
            yield _Counted("\n".join(f"middle {i}" for i in range(20)), id="middle")
            with _CountedVertical(id="right"):
                for i in range(12):
                    yield _Counted(f"row {i}", id=f"r{i}")


class _BoardApp(App[None]):
    CSS = "#left, #middle, #right { width: 1fr; } #right > Static { height: 1; } #left { height: 3; }"

    def on_mount(self) -> None:
        self.push_screen(_Board())


async def test_partial_updates_render_only_the_widgets_they_touch_and_paint_the_same_screen() -> None:
    app = _BoardApp()
    async with app.run_test(size=(60, 20), notifications=True) as pilot:
        await pilot.pause()
        term = record_output(app, (60, 20))
        screen = app.screen
        assert isinstance(screen._compositor, SparseCompositor)
        await pilot.pause()
        # a full update first, so the virtual terminal starts from what the screen shows
        screen.refresh()
        await pilot.pause()
        assert term.lines() == screen_text(screen)
        middle = screen.query_one("#middle", _Counted)
        rows = [screen.query_one(f"#r{i}", _Counted) for i in range(12)]
        right = screen.query_one("#right", _CountedVertical)
        before_middle, before_rows = middle.rendered_rows, [r.rendered_rows for r in rows]
        before_right = right.rendered_rows
        # the top left and two rows far apart on the right change: their bounding box covers the
        # middle widget, which Textual's own compositor would render whole
        screen.query_one("#left", _Counted).update("LEFT changed", layout=False)
        rows[2].update("row two changed", layout=False)
        rows[9].update("row nine changed", layout=False)
        await pilot.pause()
        assert middle.rendered_rows == before_middle, "a widget no changed region touches was rendered"
        assert right.rendered_rows == before_right, "a container hidden by its changed children was rendered"
        untouched = [i for i in range(12) if i not in (2, 9)]
        assert all(rows[i].rendered_rows == before_rows[i] for i in untouched)
        assert rows[2].rendered_rows > before_rows[2] and rows[9].rendered_rows > before_rows[9]
        lines = term.lines()
        assert lines == screen_text(screen)
        assert "LEFT changed" in lines[0] and "row nine changed" in lines[9]
        # a notification appears over the middle widget: that widget is still asked for its rows (a
        # picture under it must learn that it is covered), though the notification hides them
        before_middle = middle.rendered_rows
        app.notify("over the middle", timeout=30)
        for _ in range(50):
            await pilot.pause(0.02)
            if "over the middle" in "".join(term.lines()):
                break
        assert "over the middle" in "".join(term.lines())
        assert middle.rendered_rows > before_middle, "a widget under a notification was not asked"
        assert term.lines() == screen_text(screen)


def _current_file(main: MainScreen) -> Path:
    current = main.viewer.current
    assert current is not None
    return Path(current.instance.ref.path)


@needs_ct
@pytest.mark.slow
async def test_after_a_burst_of_steps_every_field_shows_the_current_slice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a held key whatever the machine's load: steps closer than 3 s count as repeating
    monkeypatch.setattr(main_module, "INSPECTOR_SETTLE", 3.0)
    monkeypatch.setattr(main_module, "INSPECTOR_MAX_LAG", 60.0)
    size = (160, 48)
    app = DicomViewerApp([str(CT)], terminal=detect(override="halfblock", colors="truecolor"))
    async with app.run_test(size=size) as pilot:
        term = record_output(app, size)
        assert await wait_for_index(pilot, app)
        assert await wait_for_slice(pilot, app)
        main = app.main
        inspector = main.query_one(TagInspector)
        assert await wait_until(pilot, lambda: len(inspector._rows) > 20)
        shown_rows: list[int] = []
        show_rows = inspector.show_rows

        def counting(rows: list[Any], error: str = "") -> None:
            shown_rows.append(len(rows))
            show_rows(rows, error)

        inspector.show_rows = counting  # type: ignore[method-assign]
        start = main.counter_text
        # a held key: six steps, each as soon as the previous picture is on screen; the picture and its
        # counter follow every step, the inspector at most the first (if it came after a pause)
        for _ in range(6):
            await pilot.press("down")
            assert await wait_for_slice(pilot, app, main.counter_text)
            assert main.last_displayed is not None and main.last_displayed.slice == main.counter_text
            bottom = main.query_one("#ann-bottom", AnnotationBar).lines
            assert bottom[1][0].startswith(main.counter_text)
        assert main.counter_text != start
        during = len(shown_rows)
        assert during <= 1, f"the inspector followed {during} of 6 steps of a held key"
        assert main.tags_pending
        # stepping pauses: the inspector catches up once, and nothing stale remains anywhere
        assert await wait_until(pilot, lambda: not main.tags_pending, 10)
        assert len(shown_rows) == during + 1
        await pilot.pause(0.1)
        path = _current_file(main)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        want = tag_rows(ds)
        assert [(r.path, r.value) for r in inspector._rows] == [(r.path, r.value) for r in want]
        width = inspector._name_width()
        for i, node in inspector._row_nodes.items():
            assert str(node.label) == str(row_label(want[i], inspector.privacy, width)), f"stale row {i}"
        # the annotations: counter and slice location of the same file
        bottom = main.query_one("#ann-bottom", AnnotationBar).lines
        assert bottom[1][0].startswith(main.counter_text)
        assert f"Loc {fmt_num(float(ds.SliceLocation))} mm" in bottom[0][0]
        # and the terminal shows exactly what the screen holds: no region left with an older paint (the
        # picture's cells aside: on the wire they are coloured blanks, full and half blocks, in Textual's
        # own rendering upper half blocks only)
        picture = main.query_one(PictureView).region
        assert masked(term.lines(), picture) == masked(screen_text(main), picture)
        # single steps back and forth over slices shown before: the inspector follows each one (its rows
        # get back the tree's rendered lines of a label they showed before), and nothing is stale
        monkeypatch.setattr(main_module, "INSPECTOR_SETTLE", 0.0)
        for key in ("up", "up", "down", "up", "down", "down"):
            await pilot.press(key)
            assert await wait_for_slice(pilot, app, main.counter_text)
            assert await wait_until(pilot, lambda: not main.tags_pending, 10)
            await pilot.pause(0.05)
            want = tag_rows(pydicom.dcmread(_current_file(main), stop_before_pixels=True))
            for i, node in inspector._row_nodes.items():
                assert str(node.label) == str(row_label(want[i], inspector.privacy, width)), f"stale row {i}"
            assert masked(term.lines(), picture) == masked(screen_text(main), picture)
            # the tree's kept lines are the ones it renders afresh (its line cache swapped out meanwhile)
            tree = inspector.tag_tree
            kept = [tree.render_line(y).text for y in range(tree.size.height)]
            cache, tree._line_cache = tree._line_cache, LRUCache(1024)
            try:
                assert [tree.render_line(y).text for y in range(tree.size.height)] == kept
            finally:
                tree._line_cache = cache
