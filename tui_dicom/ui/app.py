"""The Textual application: global keys, the command palette entries, the main screen."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from tui_dicom.ui.screens.help import HelpScreen
from tui_dicom.ui.screens.main import MainScreen


class DicomViewerApp(App[None]):
    """tui-dicom: a DICOM viewer for the terminal."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-dicom"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark,f1", "help", "Help"),
    ]

    def __init__(
        self,
        paths: list[str],
        *,
        terminal: Any = None,
        cache_mb: int = 512,
        decoder: Any = None,
        source_label: str = "",
        demo_note: str = "",
    ) -> None:
        super().__init__()
        self.paths = paths
        self.terminal_info = terminal
        self._screen_args = dict(
            cache_mb=cache_mb, decoder=decoder, source_label=source_label, demo_note=demo_note
        )

    def on_unmount(self) -> None:
        """Stop the decoder child process: a worker thread waiting for a runaway decode (asyncio
        joins worker threads on exit) must not keep ``q`` from quitting."""
        from tui_dicom.core.imaging import sandbox

        sandbox.shutdown()

    def on_mount(self) -> None:
        """Show the main screen."""
        from tui_dicom.ui.widgets import picture

        if self.terminal_info is not None:
            picture.set_terminal(self.terminal_info)
        self.push_screen(MainScreen(self.paths, **self._screen_args))

    @property
    def main(self) -> MainScreen:
        """The main screen."""
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise LookupError("main screen not mounted")

    def help_groups(self) -> list[tuple[str, list[BindingType]]]:
        """Every key, grouped by where it works (for the help screen)."""
        from tui_dicom.ui.widgets.image_pane import ImagePane
        from tui_dicom.ui.widgets.inspector import TagInspector
        from tui_dicom.ui.widgets.study_tree import StudyTree

        general = (
            list(self.BINDINGS)
            + list(MainScreen.BINDINGS)
            + [
                Binding("tab", "focus_next", "Next panel (tree → image → tags)"),
                Binding("shift+tab", "focus_previous", "Previous panel"),
                Binding("ctrl+p", "command_palette", "Command palette"),
            ]
        )
        tree = list(StudyTree.BINDINGS) + [
            Binding("up,down", "cursor", "Move"),
            Binding("enter,space", "toggle", "Expand / collapse"),
        ]
        return [
            ("Everywhere", general),
            ("Study tree", tree),
            ("Image", list(ImagePane.BINDINGS) + [Binding("wheel", "step", "Next / previous slice")]),
            ("Tag inspector", list(TagInspector.BINDINGS)),
        ]

    def action_help(self) -> None:
        """Show every key."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_groups()))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Command palette entries for the main actions."""
        yield from super().get_system_commands(screen)
        try:
            main = self.main
        except LookupError:
            return
        yield SystemCommand("Help: list every key", "Show the help screen", self.action_help)
        yield SystemCommand(
            "Toggle privacy mode", "Mask patient-identifying text", main.action_toggle_privacy
        )
        yield SystemCommand(
            "Toggle annotations", "Show/hide corner annotations", main.action_toggle_annotations
        )
        yield SystemCommand("Toggle tag inspector", "Show/hide the tags panel", main.action_toggle_inspector)
