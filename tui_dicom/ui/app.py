"""The Textual application: global keys, the key catalogue (help, command palette), the main screen."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.screen import Screen

from tui_dicom.ui.keys import KeyEntry, ViewerCommands, catalogue
from tui_dicom.ui.screens.help import HelpScreen
from tui_dicom.ui.screens.main import MainScreen


class DicomViewerApp(App[None]):
    """tui-dicom: a DICOM viewer for the terminal."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-dicom"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+p", "command_palette", "Command palette", show=False),
    ]
    COMMANDS = App.COMMANDS | {ViewerCommands}

    def __init__(
        self,
        paths: list[str],
        *,
        terminal: Any = None,
        cache_mb: int = 512,
        decoder: Any = None,
        source_label: str = "",
        demo_note: str = "",
        archive: Any = None,
    ) -> None:
        super().__init__()
        self.paths = paths
        #: an :class:`~tui_dicom.core.archive.browse.ArchiveSession` to browse instead of ``paths``
        self.archive = archive
        self.terminal_info = terminal
        self._screen_args = dict(
            cache_mb=cache_mb, decoder=decoder, source_label=source_label, demo_note=demo_note
        )
        #: the first exception nothing handled (the app exits on it), and where its traceback went
        self.crash: BaseException | None = None
        self.crash_log = ""

    def _handle_exception(self, error: Exception) -> None:
        """An exception nothing handled: write its traceback to the log, exit non-zero, no traceback on screen.

        Textual would print a Rich traceback over the terminal once it is restored; instead the traceback
        goes to ``--log`` or a crash log, and the command line prints one line naming that file
        (:attr:`crash`, :attr:`crash_log`).
        """
        if self.crash is None:
            from tui_dicom.core.logging import write_crash_log

            self.crash = error
            self.crash_log = write_crash_log("tui-dicom crashed", error)
        super()._handle_exception(error)
        # the traceback Textual prepared for the terminal (it is in the log instead)
        self._exit_renderables.clear()

    def on_unmount(self) -> None:
        """Stop the decoder child process: a worker thread waiting for a runaway decode (asyncio
        joins worker threads on exit) must not keep ``q`` from quitting."""
        from tui_dicom.core.imaging import sandbox

        sandbox.shutdown()

    def get_default_screen(self) -> Screen[Any]:
        """The main screen (or the archive browser) is the first screen: not pushed over Textual's blank
        default one, which cost the start a screen's mount, a switch and a restyle of every widget."""
        if self.archive is not None:
            from tui_dicom.ui.screens.archive import ArchiveScreen

            return ArchiveScreen(self.archive, **self._screen_args)
        return MainScreen(self.paths, **self._screen_args)

    @property
    def main(self) -> MainScreen:
        """The main screen."""
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise LookupError("main screen not mounted")

    def key_groups(self) -> list[tuple[str, type[DOMNode]]]:
        """Where keys work (title) and the class whose BINDINGS hold them, in the order help shows them."""
        from tui_dicom.ui.screens.archive import ArchiveScreen
        from tui_dicom.ui.screens.compare import CompareScreen
        from tui_dicom.ui.screens.mpr import MprScreen
        from tui_dicom.ui.widgets.image_pane import ImagePane
        from tui_dicom.ui.widgets.inspector import TagInspector
        from tui_dicom.ui.widgets.study_tree import StudyTree

        archive: list[tuple[str, type[DOMNode]]] = (
            [("Archive", ArchiveScreen)] if self.archive is not None else []
        )
        return [
            ("Everywhere", DicomViewerApp),
            ("Everywhere", MainScreen),
            *archive,
            ("Study tree", StudyTree),
            ("Image", ImagePane),
            ("Tag inspector", TagInspector),
            ("MPR (P)", MprScreen),
            ("Compare (C)", CompareScreen),
        ]

    def key_catalogue(self) -> list[KeyEntry]:
        """Every key of the viewer, read from the BINDINGS of the app, the screen and the widgets."""
        return catalogue(self.key_groups())

    def help_groups(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Every key and mouse gesture as (keys as typed, what it does), grouped by where it works."""
        from tui_dicom.ui.keys import MOUSE_GESTURES

        groups: dict[str, list[tuple[str, str]]] = {}
        for entry in self.key_catalogue():
            groups.setdefault(entry.group, []).append((entry.keys, entry.description))
        groups["Study tree"] += [("↑ / ↓", "Move"), ("Enter / space", "Expand / collapse")]
        groups["Image"].append(
            ("1 … 9", "Not CT: the file's windows, then auto, min–max, percentiles 1–99, 2–98, 5–95")
        )
        groups["Mouse (over the image)"] = list(MOUSE_GESTURES)
        return list(groups.items())

    def action_help(self) -> None:
        """Show every key."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_groups()))
