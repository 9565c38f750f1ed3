"""Walk the whole surface a person touches: every binding of every screen and widget class of the app,
pressed on real data, and a seeded random "monkey" of keys, clicks, drags and wheel events.

The bindings are read from the classes (``BINDINGS``), not from a list kept here: a new class or key is
walked without touching this file. What is kept here is how to put each class in front of the user
(:data:`FOCUS`), a few set-ups that give a key something to act on (:data:`SETUP`), and the keys that
are expected to do nothing in a context, with the reason (:data:`NO_OP`).

After each key the app must still run, nothing may have been logged as an error (log records of ERROR
or an error notification), and something observable must have changed (screen, focus, view state,
slice, series, panel, search, notification...) unless the key is declared a no-op there.

The monkey: ``TUI_DICOM_MONKEY_SEED`` (an integer, or ``random``) and ``TUI_DICOM_MONKEY_EVENTS``
(default 2,000) run it longer or differently; the seed is printed on failure.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pilot import wait_for_index, wait_for_slice, wait_until
from textual import events
from textual.dom import DOMNode
from textual.geometry import Offset
from textual.widget import Widget

from tui_dicom.core.graphics.terminal import detect
from tui_dicom.core.logging import LOGGER
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.keys import bindings_of
from tui_dicom.ui.screens.anonymize import AnonymizeDialog
from tui_dicom.ui.screens.compare import CompareScreen
from tui_dicom.ui.screens.help import HelpScreen
from tui_dicom.ui.screens.main import MainScreen
from tui_dicom.ui.screens.mpr import MprScreen
from tui_dicom.ui.screens.problem import ProblemScreen
from tui_dicom.ui.widgets.image_pane import ImagePane
from tui_dicom.ui.widgets.inspector import TagInspector, TagTree
from tui_dicom.ui.widgets.study_tree import StudyTree

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
try:
    import data_store

    DATA_STORE: Path | None = Path(os.path.dirname(data_store.__file__)) / "data"
except ImportError:  # pragma: no cover
    DATA_STORE = None

#: real data of each kind the viewer must handle: a CD, a CT series, a multi-frame file, a colour image
DATASETS: dict[str, Path | None] = {
    "cd": SHARED / "taichi_mri_cd",
    "ct": SHARED / "ge_ct_head",
    "multiframe": DATA_STORE / "emri_small.dcm" if DATA_STORE else None,
    "colour": DATA_STORE / "US1_UNCR.dcm" if DATA_STORE else None,
}

Pilot = Any
Step = Callable[[Pilot, DicomViewerApp], Awaitable[None]]


def ui_classes() -> list[type[DOMNode]]:
    """Every App, Screen and widget class of tui_dicom.ui that declares BINDINGS of its own."""
    import tui_dicom.ui as ui

    found: list[type[DOMNode]] = []
    for info in pkgutil.walk_packages(ui.__path__, "tui_dicom.ui."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, DOMNode)
                and obj.__module__ == module.__name__
                and obj.__dict__.get("BINDINGS")
            ):
                found.append(obj)
    return found


async def _focus(widget: Widget, pilot: Pilot) -> None:
    widget.focus()
    await pilot.pause()


async def focus_image(pilot: Pilot, app: DicomViewerApp) -> None:
    await _focus(app.main.query_one(ImagePane), pilot)


async def focus_tree(pilot: Pilot, app: DicomViewerApp) -> None:
    await _focus(app.main.query_one(StudyTree), pilot)


async def focus_tags(pilot: Pilot, app: DicomViewerApp) -> None:
    inspector = app.main.query_one(TagInspector)
    inspector.display = True
    await _focus(inspector.tag_tree, pilot)


async def open_help(pilot: Pilot, app: DicomViewerApp) -> None:
    await focus_image(pilot, app)
    app.action_help()
    assert await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))


async def open_problem(pilot: Pilot, app: DicomViewerApp) -> None:
    from tui_dicom.core.hierarchy.model import IndexProblem

    await focus_tree(pilot, app)
    app.push_screen(ProblemScreen(IndexProblem("CD/IMAGES/IM000042", "header incomplete"), 1, 1))
    assert await wait_until(pilot, lambda: isinstance(app.screen, ProblemScreen))


async def open_share(pilot: Pilot, app: DicomViewerApp) -> None:
    await focus_image(pilot, app)
    await pilot.press("S")
    assert await wait_until(pilot, lambda: isinstance(app.screen, AnonymizeDialog))


async def open_mpr(pilot: Pilot, app: DicomViewerApp) -> None:
    await focus_image(pilot, app)
    await pilot.press("P")
    assert await wait_until(
        pilot,
        lambda: isinstance(app.screen, MprScreen) and (app.screen.settled or bool(app.screen.reason)),
        60,
    )


async def open_compare(pilot: Pilot, app: DicomViewerApp) -> None:
    await focus_image(pilot, app)
    await pilot.press("C")
    assert await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.settled, 30)


#: how to put each class's bindings in play
FOCUS: dict[type[DOMNode], Step] = {
    MprScreen: open_mpr,
    CompareScreen: open_compare,
    DicomViewerApp: focus_image,
    MainScreen: focus_tree,
    StudyTree: focus_tree,
    ImagePane: focus_image,
    TagInspector: focus_tags,
    TagTree: focus_tags,
    HelpScreen: open_help,
    ProblemScreen: open_problem,
    AnonymizeDialog: open_share,
}


async def _keys(pilot: Pilot, *keys: str) -> None:
    await pilot.press(*keys)


def keys_then(*keys: str) -> Step:
    async def step(pilot: Pilot, app: DicomViewerApp) -> None:
        await _keys(pilot, *keys)

    return step


#: keys pressed first (with the class focused) so that the walked key has something to act on
SETUP: dict[str, Step] = {
    "screen.delete_measurement": keys_then("m", "m", "shift+right", "shift+right", "m"),
    "screen.cancel_measurement": keys_then("m"),
    "screen.fit": keys_then("plus"),
    "screen.reset_view": keys_then("plus", "r"),
    "screen.arrow('left')": keys_then("c"),
    "screen.arrow('right')": keys_then("c"),
    "next_match": keys_then("slash", *"Date", "enter"),
    "previous_match": keys_then("slash", *"Date", "enter"),
    "clear_search": keys_then("slash", *"Date", "enter"),
    # a tree's cursor starts on no line (-1), where up goes to the last line: start from the second line
    "cursor_up": keys_then("j", "j"),
    "cursor_down": keys_then("j", "j", "k"),
}

SINGLE = "the series has a single image: there is no other slice to go to"
COLOUR = "a colour image has no window to change"

#: (class name, key, dataset kind or "*") -> why the key does nothing there
NO_OP: dict[tuple[str, str, str], str] = {}
for key in ("down", "up", "j", "k", "pagedown", "pageup", "home", "end", "space"):
    NO_OP[("ImagePane", key, "colour")] = SINGLE
for key in ("w", "W", "l", "L", "alt+w", "alt+W", "alt+shift+w", "alt+l", "alt+L", "alt+shift+l"):
    NO_OP[("ImagePane", key, "colour")] = COLOUR


ONE_SERIES = "only one series is open: there is no other series to show"
AT_FIT = "the picture is at fit: zooming out stops there"
NOT_A_VOLUME = "this series is not a volume (the screen says why): there is no plane to move or window"
NO_GEOMETRY = "the series has no slice positions: there is no offset to lock"
for kind in ("ct", "multiframe", "colour"):
    NO_OP[("CompareScreen", "n", kind)] = ONE_SERIES
    NO_OP[("CompareScreen", "N", kind)] = ONE_SERIES
NO_OP[("CompareScreen", "minus", "*")] = AT_FIT
NO_OP[("MprScreen", "minus", "*")] = AT_FIT
NO_OP[("MprScreen", "left_square_bracket", "*")] = "the slab is already thin (0 mm)"
NO_OP[("MprScreen", "0", "*")] = "the window shown is already the series' own"
for kind in ("multiframe", "colour"):
    for key in (
        *("up", "down", "left", "right", "shift+up", "shift+down", "shift+left", "shift+right"),
        *("pageup", "k", "pagedown", "j", "d", "w", "W", "l", "L"),
    ):
        NO_OP[("MprScreen", key, kind)] = NOT_A_VOLUME
    NO_OP[("CompareScreen", "o", kind)] = NO_GEOMETRY
for key in ("down", "j", "up", "k", "pagedown", "pageup", "w", "W", "l", "L"):
    NO_OP[("CompareScreen", key, "colour")] = SINGLE + "; " + COLOUR


def observable(app: DicomViewerApp) -> tuple[Any, ...]:
    """Everything a key may visibly change."""
    main = app.main
    state = main.viewer.pane
    tree = main.query_one(StudyTree)
    inspector = main.query_one(TagInspector)
    filter_box = inspector.query_one("#tag-filter")
    return (
        tuple(type(s).__name__ for s in app.screen_stack),
        type(app.focused).__name__ if app.focused else None,
        app.focused.id if app.focused else None,
        state.window,
        state.invert,
        state.view,
        state.crosshair,
        state.pending,
        state.tool,
        tuple((k, tuple(v)) for k, v in state.measurements.items()),
        state.cine,
        state.cine_fps,
        main.viewer.overlays,
        main.viewer.slice_index,
        main.viewer.series.series_instance_uid if main.viewer.series else None,
        main.privacy,
        main.annotations,
        inspector.display,
        getattr(filter_box, "value", ""),
        filter_box.display,
        inspector.varying_only,
        inspector.tag_tree.cursor_line,
        tree.cursor_line,
        tree.user_width,
        sum(1 for node in _nodes(tree) if node.is_expanded),
        getattr(app, "notes_posted", 0),
        app.clipboard,
        getattr(app.screen, "surface_state", None),  # MPR and compare screens
    )


def count_notifications(app: DicomViewerApp) -> None:
    """Count every notification posted (they expire, so the list on screen cannot tell)."""
    original = app.notify

    def notify(*args: Any, **kwargs: Any) -> None:
        app.notes_posted = getattr(app, "notes_posted", 0) + 1  # type: ignore[attr-defined]  # test-only counter
        original(*args, **kwargs)

    app.notify = notify  # type: ignore[method-assign]  # the counting spy


def _nodes(tree: StudyTree) -> list[Any]:
    out, todo = [], [tree.root]
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(node.children)
    return out


class ErrorLog(logging.Handler):
    """Collects ERROR records of the tui_dicom logger."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def error_log() -> Any:
    handler = ErrorLog()
    LOGGER.addHandler(handler)
    yield handler
    LOGGER.removeHandler(handler)


def error_notes(app: DicomViewerApp) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


async def back_to_main(pilot: Pilot, app: DicomViewerApp) -> None:
    """Close any dialog, stop what runs on its own (cine), drop the probe and the tag search and go to the
    middle slice, so that the next key starts from the same place."""
    while not isinstance(app.screen, MainScreen):
        app.pop_screen()
        await pilot.pause()
    main = app.main
    if main.viewer.pane.cine:
        main.action_cine()
    main.viewer.pane.crosshair = None
    main.viewer.pane.cancel()
    inspector = main.query_one(TagInspector)
    if inspector.filter_text:
        inspector.action_clear_search()
    if main.viewer.slices and main.viewer.slice_index != len(main.viewer.slices) // 2:
        main.action_goto(len(main.viewer.slices) // 2)
    await pilot.pause()


#: classes this walk cannot put on screen from files, with where their keys are tested instead
NOT_WALKED: dict[str, str] = {
    "ArchiveScreen": "needs a running archive server: its keys are pressed in tests/archive/test_archive_viewer.py",
}


def test_every_class_with_bindings_has_a_way_to_be_focused() -> None:
    classes = ui_classes()
    assert {DicomViewerApp, MainScreen, StudyTree, ImagePane, TagInspector, TagTree, HelpScreen} <= set(
        classes
    )
    missing = [c.__name__ for c in classes if c not in FOCUS and c.__name__ not in NOT_WALKED]
    assert not missing, f"classes with BINDINGS the walk does not know how to focus: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(DATASETS))
async def test_every_binding_on_real_data(kind: str, error_log: ErrorLog) -> None:
    path = DATASETS[kind]
    if path is None or not path.exists():
        pytest.skip(f"{kind} data not found: {path}")
    app = DicomViewerApp([str(path)], terminal=detect(override="halfblock"))
    count_notifications(app)
    pressed = 0
    silent: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for_index(pilot, app)
        assert await wait_for_slice(pilot, app)
        for cls in ui_classes():
            if cls.__name__ in NOT_WALKED:
                continue
            for binding in bindings_of(cls):
                for key in binding.key.split(","):
                    if cls is DicomViewerApp and binding.action == "quit":
                        continue  # walked last
                    await back_to_main(pilot, app)
                    await FOCUS[cls](pilot, app)
                    setup = SETUP.get(binding.action)
                    if setup is not None:
                        await setup(pilot, app)
                        await pilot.pause()
                    before = observable(app)
                    await pilot.press(key)
                    await pilot.pause()
                    pressed += 1
                    where = f"{kind}: {cls.__name__} {key!r} ({binding.action})"
                    assert app.is_running and app._exception is None, where
                    assert not error_log.records, f"{where} logged: {error_log.records[0].getMessage()}"
                    assert not error_notes(app), f"{where}: {error_notes(app)}"
                    reason = NO_OP.get((cls.__name__, key, kind)) or NO_OP.get((cls.__name__, key, "*"))
                    changed = observable(app) != before
                    if not changed and not reason:
                        silent.append(where)
                    if changed and reason and setup is None:
                        silent.append(f"{where} is declared a no-op ({reason}) but did something")
        assert not silent, "keys that did nothing observable:\n" + "\n".join(silent)
        await back_to_main(pilot, app)
        await focus_image(pilot, app)
        await pilot.press("q")
        assert await wait_until(pilot, lambda: not app.is_running, 10)
    assert app.return_code == 0
    assert pressed > 80


# ------------------------------------------------------------------------------------------------- monkey


def monkey_settings() -> tuple[int, int]:
    """(seed, events) from the environment: a fixed seed in CI, ``random`` for a new one each run."""
    raw = os.environ.get("TUI_DICOM_MONKEY_SEED", "20261201")
    seed = random.SystemRandom().randrange(1 << 32) if raw == "random" else int(raw)
    return seed, int(os.environ.get("TUI_DICOM_MONKEY_EVENTS", "2000"))


def monkey_keys() -> list[str]:
    """Every bound key of the viewer except quitting, plus keys people press anywhere."""
    keys: set[str] = {"escape", "enter", "tab", "shift+tab", "a", "z", "1", "backspace"}
    for cls in ui_classes():
        if cls.__name__ in NOT_WALKED:
            continue
        for binding in bindings_of(cls):
            if binding.action not in ("quit", "dismiss") and binding.key != "q":
                keys.update(binding.key.split(","))
    # q quits; the palette could run "Quit" from random typing and Enter (it is walked above)
    keys.difference_update({"q", "ctrl+p"})
    return sorted(keys)


async def _mouse(
    app: DicomViewerApp, pilot: Pilot, cls: type[events.MouseEvent], x: int, y: int, **kw: Any
) -> None:
    """Deliver one mouse event at screen cell (x, y), as the driver would."""
    screen = app.screen
    args = dict(
        widget=screen,
        x=x,
        y=y,
        delta_x=0,
        delta_y=0,
        button=kw.get("button", 0),
        shift=kw.get("shift", False),
        meta=False,
        ctrl=kw.get("ctrl", False),
        screen_x=x,
        screen_y=y,
    )
    app.mouse_position = Offset(x, y)
    screen._forward_event(cls(**args))
    if kw.get("settle", True):
        await pilot.pause()


@pytest.mark.slow
async def test_monkey_on_a_real_cd(error_log: ErrorLog) -> None:
    path = DATASETS["cd"]
    if path is None or not path.exists():
        pytest.skip(f"CD not found: {path}")
    seed, count = monkey_settings()
    rng = random.Random(seed)
    keys = monkey_keys()
    width, height = 80, 24  # the smallest common terminal: cheapest to draw, tags panel hidden
    app = DicomViewerApp([str(path)], terminal=detect(override="halfblock"))
    done: list[str] = []
    try:
        async with app.run_test(size=(width, height)) as pilot:
            assert await wait_for_index(pilot, app)
            for _ in range(count):
                roll = rng.random()
                x, y = rng.randrange(width), rng.randrange(height)
                if roll < 0.6:
                    key = rng.choice(keys)
                    done.append(f"key {key}")
                    await pilot.press(key)
                elif roll < 0.75:
                    button = rng.choice((1, 1, 2, 3))
                    done.append(f"click {button} at {x},{y}")
                    await _mouse(app, pilot, events.MouseDown, x, y, button=button, settle=False)
                    await _mouse(app, pilot, events.MouseUp, x, y, button=button, settle=False)
                    await _mouse(app, pilot, events.Click, x, y, button=button)
                elif roll < 0.88:
                    button = rng.choice((1, 2, 3))
                    ctrl = rng.random() < 0.3
                    x2, y2 = rng.randrange(width), rng.randrange(height)
                    done.append(f"drag {button}{' ctrl' if ctrl else ''} {x},{y} -> {x2},{y2}")
                    await _mouse(app, pilot, events.MouseDown, x, y, button=button, ctrl=ctrl, settle=False)
                    for i in range(1, 4):
                        mx, my = x + (x2 - x) * i // 3, y + (y2 - y) * i // 3
                        await _mouse(
                            app, pilot, events.MouseMove, mx, my, button=button, ctrl=ctrl, settle=False
                        )
                    await _mouse(app, pilot, events.MouseUp, x2, y2, button=button, ctrl=ctrl)
                else:
                    ctrl = rng.random() < 0.3
                    up = rng.random() < 0.5
                    done.append(f"wheel {'up' if up else 'down'}{' ctrl' if ctrl else ''} at {x},{y}")
                    cls = events.MouseScrollUp if up else events.MouseScrollDown
                    await _mouse(app, pilot, cls, x, y, ctrl=ctrl)
                if not app.is_running or app._exception is not None:
                    break
                assert not error_log.records, error_log.records[0].getMessage()
                assert not error_notes(app), error_notes(app)
            assert app.is_running and app._exception is None
            # still answering: back to the viewer, and a key still acts
            await back_to_main(pilot, app)
            await focus_image(pilot, app)
            before = app.main.viewer.pane.invert
            await pilot.press("i")
            assert app.main.viewer.pane.invert != before
    except BaseException as exc:
        tail = "\n".join(done[-25:])
        raise AssertionError(
            f"monkey failed with TUI_DICOM_MONKEY_SEED={seed} after {len(done)} events; last events:\n{tail}"
        ) from exc
    assert len(done) == count
