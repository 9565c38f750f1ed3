"""A file that could not be used: its full path and the reason, readable whatever the tree's width."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui_dicom.core.hierarchy.model import IndexProblem
from tui_dicom.core.safe import safe_path, safe_text


class ProblemScreen(ModalScreen[None]):
    """Shows one problem of the index (Enter or a click on it in the tree); Esc, Enter or q closes."""

    DEFAULT_CSS = """
    ProblemScreen { align: center middle; }
    ProblemScreen > VerticalScroll {
        width: 90%; max-width: 140; height: auto; max-height: 80%;
        border: round $error; padding: 1 2; background: $surface;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "dismiss", "Close"),
    ]

    def __init__(self, problem: IndexProblem, position: int = 0, total: int = 0) -> None:
        super().__init__()
        self.problem = problem
        self.position = position
        self.total = total

    def body(self) -> Text:
        """The text shown: which problem, the whole path (wrapped, never cut) and the reason."""
        text = Text()
        head = f"Problem {self.position} of {self.total}" if self.total else "Problem"
        text.append(head + "\n\n", style="bold red")
        text.append("File\n", style="bold")
        text.append(safe_path(self.problem.path) + "\n\n")
        text.append("Why it could not be used\n", style="bold")
        text.append(safe_text(self.problem.reason) + "\n\n")
        text.append("Esc closes", style="dim")
        return text

    def compose(self) -> ComposeResult:
        """The problem in a scrollable box."""
        with VerticalScroll():
            yield Static(self.body(), id="problem-text")
