"""The archive bar: a search box that queries the archive again, and the retrieve progress.

It only posts :class:`ArchiveBar.Search` (the filters typed) and shows what the screen tells it
(:meth:`show_progress`, :meth:`show_note`): the screen owns the workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, ProgressBar, Static

from tui_dicom.core.archive.errors import AddressError
from tui_dicom.core.archive.query import QueryFilters, parse_search
from tui_dicom.core.safe import safe_text

PLACEHOLDER = "search: NAME*  id:ID  date:20240101-20241231  mod:CT  acc:ACC  desc:TEXT*  (Enter)"


class ArchiveBar(Horizontal):
    """Search box | progress bar | note."""

    DEFAULT_CSS = """
    ArchiveBar { height: 1; }
    ArchiveBar Input { width: 1fr; height: 1; border: none; padding: 0 1; }
    ArchiveBar ProgressBar { width: 36; height: 1; }
    ArchiveBar #archive-note { width: auto; max-width: 50%; height: 1; padding: 0 1; }
    """

    @dataclass
    class Search(Message):
        """The user asked for a new query."""

        filters: QueryFilters
        """What to search for."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def compose(self) -> ComposeResult:
        """Input, progress, note."""
        yield Input(placeholder=PLACEHOLDER, id="archive-search")
        bar = ProgressBar(total=None, show_eta=False, id="archive-progress")
        bar.display = False
        yield bar
        yield Static("", id="archive-note")

    @on(Input.Submitted, "#archive-search")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            filters = parse_search(event.value)
        except AddressError as exc:
            self.show_note(str(exc), error=True)
            return
        self.post_message(self.Search(filters))

    def show_progress(self, arrived: int, total: int, done: bool) -> None:
        """``arrived`` of ``total`` instances; hidden once done."""
        bar = self.query_one(ProgressBar)
        bar.display = not done and total > 0
        bar.update(total=max(total, 1), progress=arrived)

    def show_note(self, text: str, error: bool = False) -> None:
        """One line beside the bar (terminal-safe, never markup)."""
        self.query_one("#archive-note", Static).update(
            Text(safe_text(text), style="bold red" if error else "dim")
        )
