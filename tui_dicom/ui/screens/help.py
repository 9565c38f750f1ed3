"""The help screen (``?`` / F1): every key, grouped by where it works."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def bindings_table(groups: list[tuple[str, list[tuple[str, str]]]]) -> Table:
    """A table of ``groups``: (title, [(keys as typed, what they do)])."""
    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("action")
    for title, rows in groups:
        table.add_row(Text(title, style="bold underline"), "")
        for keys, description in rows:
            table.add_row(Text(keys), Text(description))
        table.add_row("", "")
    return table


class HelpScreen(ModalScreen[None]):
    """A modal list of every key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close help"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-width: 95%; height: 90%; border: thick $accent;
                                   background: $surface; padding: 0 1; }
    """

    def __init__(self, groups: list[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__()
        self._groups = groups

    def compose(self) -> ComposeResult:
        """The table of keys."""
        with VerticalScroll():
            yield Static(Text("tui-dicom — keys (Esc closes)", style="bold"))
            yield Static(bindings_table(self._groups))

    # Screen.action_dismiss is async and takes the screen's result type; the help has no result
    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        """Close the help."""
        self.dismiss(result)
