"""The key footer: held back until released, rebuilt only when the keys it shows change."""

from __future__ import annotations

from typing import ClassVar

from pilot import wait_for_slice, wait_until
from pydicom.data import get_testdata_file
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Button
from textual.widgets._footer import FooterKey

from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.widgets.footer import ViewerFooter


class _Left(Button):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("x", "noop", "Ex")]


class _Right(Button):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("y", "noop", "Why")]


class _App(App[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "Quit")]

    def __init__(self, held: bool) -> None:
        super().__init__()
        self.held = held
        self.recomposed = 0

    def compose(self) -> ComposeResult:
        yield _Left("a", id="a1")
        yield _Left("b", id="a2")
        yield _Right("c", id="b1")
        yield ViewerFooter(held=self.held)


def _keys(app: App[None]) -> list[str]:
    return sorted(k.key for k in app.query(FooterKey) if k.key != "ctrl+p")


def _count_recomposes(footer: ViewerFooter) -> list[int]:
    calls = [0]
    original = footer.recompose

    async def counting() -> None:
        calls[0] += 1
        await original()

    footer.recompose = counting  # type: ignore[method-assign]
    return calls


async def test_held_footer_shows_keys_only_after_release() -> None:
    app = _App(held=True)
    async with app.run_test() as pilot:
        app.query_one("#a1").focus()
        await pilot.pause(0.1)
        footer = app.query_one(ViewerFooter)
        assert footer.held and _keys(app) == []
        footer.release()
        assert await wait_until(pilot, lambda: _keys(app) == ["q", "x"])
        assert not footer.held


async def test_same_keys_do_not_rebuild_the_footer() -> None:
    app = _App(held=False)
    async with app.run_test() as pilot:
        app.query_one("#a1").focus()
        assert await wait_until(pilot, lambda: _keys(app) == ["q", "x"])
        calls = _count_recomposes(app.query_one(ViewerFooter))
        app.query_one("#a2").focus()  # another widget with the same keys
        await pilot.pause(0.2)
        assert calls[0] == 0 and _keys(app) == ["q", "x"]
        app.query_one("#b1").focus()  # different keys: rebuilt
        assert await wait_until(pilot, lambda: _keys(app) == ["q", "y"])
        assert calls[0] >= 1


async def test_viewer_footer_appears_with_the_first_picture() -> None:
    path = get_testdata_file("CT_small.dcm", download=False)
    app = DicomViewerApp([str(path)])
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for_slice(pilot, app)
        footer = app.main.query_one(ViewerFooter)
        assert await wait_until(pilot, lambda: not footer.held)
        # the image pane has the focus: the app's keys and the screen's are in the footer

        def keys() -> list[str]:
            return sorted(k.key for k in footer.query(FooterKey))

        assert await wait_until(pilot, lambda: "q" in keys() and "a" in keys())
