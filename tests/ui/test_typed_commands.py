"""Typed viewer commands: every binding names an action whose signature takes exactly its arguments;
shift+arrows pan (they crashed the app when commands went through a string bus); the help shows keys as
typed; the command palette lists every viewer command with its key."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from pilot import wait_for_index, wait_for_slice, wait_until
from textual import actions

from tui_dicom.core.graphics.terminal import detect
from tui_dicom.core.imaging.windowing import Window
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.keys import ViewerCommands, key_display
from tui_dicom.ui.screens.main import MainScreen
from tui_dicom.ui.widgets.image_pane import ImagePane

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CT = SHARED / "ge_ct_head"
needs_ct = pytest.mark.skipif(not CT.is_dir(), reason=f"real data not found: {CT}")


def make_app(*paths: Path) -> DicomViewerApp:
    return DicomViewerApp([str(p) for p in paths], terminal=detect(override="halfblock"))


def test_every_binding_names_a_typed_action_that_takes_exactly_its_arguments() -> None:
    targets = {"screen": MainScreen, "app": DicomViewerApp}
    checked = 0
    for entry in DicomViewerApp([]).key_catalogue():
        namespace, name, params = actions.parse(entry.binding.action)
        owner = targets.get(namespace, entry.owner)
        method = getattr(owner, f"action_{name}", None) or getattr(owner, f"_action_{name}", None)
        assert method is not None, f"{entry.owner.__name__}: {entry.binding.action} has no action method"
        sig = inspect.signature(method)
        positional = [
            p
            for p in list(sig.parameters.values())[1:]
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        assert not any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()), (
            f"{entry.binding.action}: *args actions lose arguments (Textual passes only named ones)"
        )
        required = [p for p in positional if p.default is p.empty]
        assert len(required) <= len(params) <= len(positional), f"{entry.binding.action} vs {sig}"
        if namespace != "app" and owner.__module__.startswith("tui_dicom"):
            # our own actions carry type hints for every parameter
            assert all(p.annotation is not p.empty for p in positional), f"{name}{sig} is not typed"
        checked += 1
    assert checked > 60


def test_keys_are_shown_as_typed() -> None:
    assert key_display("exclamation_mark") == "!"
    assert key_display("shift+up") == "shift+↑"
    assert key_display("plus") == "+"
    assert key_display("x,delete") == "x / Del"
    assert key_display("alt+W,alt+shift+w") == "alt+W"
    assert key_display("question_mark,f1") == "? / F1"


@needs_ct
@pytest.mark.slow
async def test_shift_arrows_pan_the_view_and_the_app_keeps_running() -> None:
    app = make_app(CT)
    async with app.run_test(size=(140, 44)) as pilot:
        assert await wait_for_index(pilot, app)
        assert await wait_for_slice(pilot, app)
        app.main.query_one(ImagePane).focus()
        await pilot.press("plus", "plus")  # zoomed in, so there is somewhere to pan to
        start = app.main.viewer.pane.view
        await pilot.press("shift+left")
        after_left = app.main.viewer.pane.view.center
        assert after_left is not None and after_left[1] < 256
        await pilot.press("shift+up")
        after_up = app.main.viewer.pane.view.center
        assert after_up is not None and after_up[0] < 256 and after_up[1] == after_left[1]
        await pilot.press("shift+right", "shift+right", "shift+down", "shift+down")
        end = app.main.viewer.pane.view.center
        assert end is not None and end[0] > 256 and end[1] > 256
        assert app.is_running and app.return_code is None
        assert start.center is None


@needs_ct
@pytest.mark.slow
async def test_palette_lists_every_viewer_command_with_its_key_and_runs_it() -> None:
    app = make_app(CT)
    async with app.run_test(size=(140, 44)) as pilot:
        assert await wait_for_index(pilot, app)
        assert await wait_for_slice(pilot, app)
        provider = ViewerCommands(app.screen)
        found = [hit async for hit in provider.search("preset")]
        texts = [str(hit.text) for hit in found]
        assert any("brain" in t and "(1)" in t for t in texts), texts
        assert sum("preset" in t.lower() for t in texts) >= 9
        listed = [hit async for hit in provider.discover()]
        image_keys = {e.binding.key for e in app.key_catalogue() if e.owner is ImagePane}
        assert len([h for h in listed if str(h.help).startswith("Image · key")]) == len(image_keys)
        # and the number keys' windows for the image shown, by name (CT here: the CT presets)
        assert "Window preset 9: bone  (9)" in [str(h.text) for h in listed]
        # running a hit applies it, wherever focus is (the tree has it here)
        zoom = next(h for h in found if "(9)" in str(h.text))
        await zoom.command()
        assert await wait_until(pilot, lambda: app.main.viewer.pane.window is not None)
        window = app.main.viewer.pane.window
        assert isinstance(window, Window) and window.width == 1800
        # through the palette itself: ctrl+p, type, enter
        await pilot.press("ctrl+p", *"zoom in", "enter")
        assert await wait_until(pilot, lambda: app.main.viewer.pane.view.zoom > 1.0)
