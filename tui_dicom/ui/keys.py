"""One catalogue of the viewer's keys, read from the BINDINGS of the app, screen and widgets.

The help screen, the command palette and the tests all read it, so a key added to a widget's BINDINGS
shows up everywhere without a hand-kept list. Keys are shown as a person types them (``!``,
``shift+↑``), not by Textual's key names (``exclamation_mark``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode
from textual.keys import key_to_character

if TYPE_CHECKING:
    from textual.app import App

_NAMED = {
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
    "pageup": "PgUp",
    "pagedown": "PgDn",
    "home": "Home",
    "end": "End",
    "escape": "Esc",
    "enter": "Enter",
    "space": "space",
    "tab": "Tab",
    "delete": "Del",
    "backspace": "Backspace",
    "insert": "Ins",
    "plus": "+",
    "minus": "-",
    "slash": "/",
    "asterisk": "*",
}

#: How to move between the panes. Each pane lists these first, so the footer shows them before the
#: pane's own keys whatever has focus (Textual's footer lists the focused widget's bindings first).
PANE_KEYS: list[Binding] = [
    Binding("tab", "app.focus_next", "Next pane"),
    Binding("shift+tab", "app.focus_previous", "Previous pane", show=False),
]

#: what the mouse does over the picture (shown in help; the handlers are in the main screen)
MOUSE_GESTURES: tuple[tuple[str, str], ...] = (
    ("wheel", "Next / previous slice"),
    ("ctrl+wheel", "Zoom in / out"),
    ("left click", "Focus the image; with the probe on, put it there"),
    (
        "left press-drag-release",
        "After m / R / E: measure from where the button went down to where it came up",
    ),
    ("left click, click", "After m / R / E: measure between the two clicks (Esc cancels)"),
    ("mouse move", "With the probe on, the probe follows the pointer (and a measurement's second end)"),
    ("drag the tree's right border", "Make the tree wider or narrower"),
    ("right-drag, ctrl+left-drag", "Window: horizontal changes the width, vertical the level"),
    ("middle-drag", "Pan"),
    ("click a pane", "Focus the tree, the image or the tags"),
)


def _one_key(key: str) -> str:
    """``shift+up`` -> ``shift+↑``, ``exclamation_mark`` -> ``!``, ``alt+shift+w`` -> ``alt+W``."""
    *mods, base = key.strip().split("+") if key.strip() != "+" else ["+"]
    if base in _NAMED:
        shown = _NAMED[base]
    elif len(base) == 1:
        shown = base
    elif base[:1] == "f" and base[1:].isdigit():
        shown = base.upper()
    else:
        shown = key_to_character(base) or base
    if "shift" in mods and len(shown) == 1 and shown.isalpha():
        mods = [m for m in mods if m != "shift"]
        shown = shown.upper()
    return "+".join([*mods, shown])


def key_display(keys: str) -> str:
    """A binding's keys (comma separated Textual key names) as typed, e.g. ``x / Del``."""
    shown: list[str] = []
    for key in keys.split(","):
        text = _one_key(key)
        if text not in shown:
            shown.append(text)
    return " / ".join(shown)


@dataclass(frozen=True)
class KeyEntry:
    """One binding of the catalogue and the class that declares it."""

    group: str
    """Where it works, e.g. ``"Image"``."""
    owner: type[DOMNode]
    """The App, Screen or widget class whose BINDINGS hold it (its actions run there by default)."""
    binding: Binding
    """The binding."""

    @property
    def keys(self) -> str:
        """The keys as typed."""
        return key_display(self.binding.key)

    @property
    def description(self) -> str:
        """What it does (with the tooltip's detail, which the footer has no room for)."""
        text = self.binding.description or self.binding.action
        return f"{text} ({self.binding.tooltip})" if self.binding.tooltip else text


def bindings_of(owner: type[DOMNode]) -> list[Binding]:
    """The Binding objects declared in ``owner.BINDINGS`` (tuples expanded)."""
    out: list[Binding] = []
    for item in owner.BINDINGS:
        out.append(item if isinstance(item, Binding) else Binding(*item))
    return out


def catalogue(groups: list[tuple[str, type[DOMNode]]]) -> list[KeyEntry]:
    """Every binding of the classes in ``groups`` (title, class), in order; a binding that several
    classes share (:data:`PANE_KEYS`) is listed once, in its first group."""
    out: list[KeyEntry] = []
    seen: set[tuple[str, str]] = set()
    for title, owner in groups:
        for binding in bindings_of(owner):
            if (binding.key, binding.action) in seen:
                continue
            seen.add((binding.key, binding.action))
            out.append(KeyEntry(title, owner, binding))
    return out


def _palette_entries(app: App[Any]) -> Iterator[tuple[str, str, Any]]:
    """(text, help, callback) for every command bound to a key (cursor movement is left out)."""
    entries = getattr(app, "key_catalogue", None)
    if entries is None:
        return
    try:
        screen = getattr(app, "main", None)
    except LookupError:
        screen = None
    if screen is not None:  # the number keys' windows for the image shown (they depend on its modality)
        for number, window in enumerate(screen.window_presets(), start=1):
            text = f"Window preset {number}: {window.name}  ({number})"
            run = partial(app.run_action, f"screen.preset({number})", screen, {"screen": screen})
            yield text, "Image · for the image shown", run
    for entry in entries():
        action = entry.binding.action
        if action.split("(")[0].rsplit(".", 1)[-1].startswith(("cursor_", "command_palette")):
            continue
        text = f"{entry.description}  ({entry.keys})"
        yield text, f"{entry.group} · key {entry.keys}", partial(_run, app, entry, screen)


async def _run(app: App[Any], entry: KeyEntry, screen: Any) -> None:
    """Run ``entry``'s action where its binding would run it (``screen.`` means the main screen)."""
    target: DOMNode = app
    if screen is not None and entry.owner is not type(app):
        target = screen if isinstance(screen, entry.owner) else screen.query_one(entry.owner)
    namespaces = {"screen": screen} if screen is not None else None
    await app.run_action(entry.binding.action, target, namespaces)


class ViewerCommands(Provider):
    """Command palette entries for every viewer command, with the key that runs it."""

    async def discover(self) -> Hits:
        """All commands (the palette with nothing typed)."""
        for text, help_text, callback in _palette_entries(self.app):
            yield DiscoveryHit(Text(text), callback, text=text, help=help_text)

    async def search(self, query: str) -> Hits:
        """Commands whose description or key matches ``query`` (e.g. "preset" finds the window presets)."""
        matcher = self.matcher(query)
        for text, help_text, callback in _palette_entries(self.app):
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, text=text, help=help_text)
