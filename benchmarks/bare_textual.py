"""A bare Textual app for the step benchmark's floor: one key -> one widget refresh.

Run as a script (``python benchmarks/bare_textual.py``): ↓ and ↑ change a counter in one ``Static``.
What the viewer's slice step costs above this is its own work; this is what Textual costs for any
key that repaints anything (key parsing, binding dispatch, one refresh, one screen update).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static


class Bare(App[None]):
    """One Static; ↓/↑ step a counter in it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "step(1)", "Down"),
        Binding("up", "step(-1)", "Up"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def compose(self) -> ComposeResult:
        """The one widget."""
        yield Static("slice 0", id="counter")

    def action_step(self, delta: int) -> None:
        """Change the counter (one widget refresh)."""
        self.count += delta
        self.query_one("#counter", Static).update(f"slice {self.count}")


if __name__ == "__main__":
    Bare().run()
