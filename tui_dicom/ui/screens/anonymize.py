"""The share dialog: a de-identified copy of the shown series or its study, as ``tui-dicom anonymize`` writes.

The user picks the scope (series or study), the profile options (the second-opinion defaults ticked),
the output (a new folder, or a path ending in ``.zip``) and whether images that may show burned-in text
go too. The export runs in a thread worker (:class:`~tui_dicom.core.deid.export.Exporter`); progress and
the outcome come back as messages, and only their handlers touch the widgets. Esc cancels: the worker
stops between files and leaves nothing behind. The dialog returns the written path, or None.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
import threading
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, ProgressBar, RadioButton, RadioSet, Static

from tui_dicom.core.deid.engine import SECOND_OPINION, Settings
from tui_dicom.core.deid.export import BurnedInRefused, Exporter, ExportRefused, ExportResult
from tui_dicom.core.deid.table import DATE_OPTIONS, Option
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.hierarchy.model import Series, Study
from tui_dicom.core.logging import log_exception
from tui_dicom.core.safe import safe_path, safe_text

SECRET_ENV = "TUI_DICOM_DEID_SECRET"

#: option -> the label of its checkbox
OPTION_LABELS = {
    Option.RETAIN_LONG_MODIFIED_DATES: "Keep dates, shifted per patient",
    Option.RETAIN_LONG_FULL_DATES: "Keep dates unchanged",
    Option.RETAIN_PATIENT_CHARACTERISTICS: "Keep age, sex, size, weight",
    Option.RETAIN_DEVICE_IDENTITY: "Keep device identity",
    Option.RETAIN_INSTITUTION_IDENTITY: "Keep institution identity",
    Option.RETAIN_SAFE_PRIVATE: "Keep safe private attributes",
    Option.RETAIN_UIDS: "Keep UIDs",
    Option.CLEAN_DESCRIPTORS: "Keep descriptions, cleaned",
}


def default_output(now: _dt.datetime | None = None) -> str:
    """A new folder in the home folder, named by the time: ``~/tui-dicom-share-YYYYMMDD-HHMMSS``."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return os.path.join(os.path.expanduser("~"), f"tui-dicom-share-{stamp}")


class AnonymizeDialog(ModalScreen[str | None]):
    """Options, progress and result of a de-identified export of the shown series or study."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel / close")]
    DEFAULT_CSS = """
    AnonymizeDialog { align: center middle; }
    AnonymizeDialog > Vertical { width: 84; max-width: 96%; height: auto; max-height: 96%;
                                 border: thick $accent; background: $surface; padding: 0 1; }
    AnonymizeDialog VerticalScroll { height: auto; max-height: 12; }
    AnonymizeDialog Checkbox { border: none; padding: 0 1; height: 1; }
    AnonymizeDialog RadioSet { border: none; padding: 0; height: auto; }
    AnonymizeDialog RadioButton { padding: 0 1; height: 1; }
    AnonymizeDialog Input { margin: 0 0 1 0; }
    AnonymizeDialog #buttons { height: auto; align-horizontal: right; }
    AnonymizeDialog #status { height: auto; margin: 1 0 0 0; }
    AnonymizeDialog ProgressBar { margin: 1 0 0 0; }
    """

    @dataclass
    class Progress(Message):
        """Files processed so far."""

        done: int
        """steps done (three per file: header check, de-identification, writing)"""
        total: int
        """all steps"""

    @dataclass
    class Finished(Message):
        """The export ended: ``result`` when written, else ``error`` (one line) and the files it names."""

        result: ExportResult | None
        """what was written, or None"""
        error: str = ""
        """why nothing was written"""
        files: tuple[str, ...] = ()
        """files the error is about (burned-in text), terminal-safe"""

    def __init__(self, series: Series, study: Study | None, paths: list[str]) -> None:
        super().__init__()
        self.series = series
        self.study = study
        self.paths = paths
        self._cancel_event = threading.Event()
        self._export_running = False
        self.written: str | None = None

    def compose(self) -> ComposeResult:
        """Scope, options, output, buttons, progress and status."""
        n_series = len(self.study.series) if self.study is not None else 1
        with Vertical():
            yield Static(Text("Share a de-identified copy (DICOM PS3.15 Basic Profile)", style="bold"))
            with RadioSet(id="scope"):
                yield RadioButton(
                    Text(f"This series ({len(self.series.instances)} files)"), value=True, id="scope-series"
                )
                yield RadioButton(
                    Text(f"Its study ({n_series} series)"), id="scope-study", disabled=self.study is None
                )
            with VerticalScroll(id="options"):
                for option, label in OPTION_LABELS.items():
                    yield Checkbox(label, value=option in SECOND_OPINION, id=f"opt-{option.name.lower()}")
                yield Checkbox("Allow images that may show burned-in text", id="burned-in")
            yield Label("Output folder (a name ending in .zip writes a ZIP):")
            yield Input(default_output(), id="output")
            with Horizontal(id="buttons"):
                yield Button("Export", variant="primary", id="export")
                yield Button("Cancel", id="cancel")
            yield ProgressBar(total=100, show_eta=False, id="progress")
            yield Static("", id="status")

    # ------------------------------------------------------------------------------ choices

    def chosen_options(self) -> frozenset[Option]:
        """The ticked options."""
        return frozenset(o for o in Option if self.query_one(f"#opt-{o.name.lower()}", Checkbox).value)

    def chosen_refs(self) -> list[FileRef]:
        """The files of the chosen scope."""
        whole_study = self.query_one("#scope-study", RadioButton).value and self.study is not None
        series = self.study.series if whole_study and self.study is not None else [self.series]
        return [inst.ref for se in series for inst in se.instances]

    def _show_status(self, text: str, style: str = "") -> None:
        self.query_one("#status", Static).update(Text(text, style=style))

    # ------------------------------------------------------------------------------ actions

    @on(Button.Pressed, "#export")
    def _export_pressed(self) -> None:
        if self._export_running:
            return
        options = self.chosen_options()
        if all(o in options for o in DATE_OPTIONS):
            self._show_status("Choose one way to keep dates: shifted or unchanged.", "bold red")
            return
        out = os.path.expanduser(self.query_one("#output", Input).value.strip())
        if not out:
            self._show_status("Name the output folder.", "bold red")
            return
        secret_text = os.environ.get(SECRET_ENV, "")
        settings = Settings(
            secret=secret_text.encode("utf-8") if secret_text else secrets.token_bytes(32), options=options
        )
        try:
            exporter = Exporter(
                self.chosen_refs(),
                out,
                settings,
                inputs=self.paths,
                allow_burned_in=self.query_one("#burned-in", Checkbox).value,
                progress=self._post_progress,
                cancel=self._cancel_event,
                secret_given=bool(secret_text),
            )
        except ExportRefused as exc:
            self._show_status(f"Not started: {safe_text(exc)}", "bold red")
            return
        self._export_running = True
        self.query_one("#export", Button).disabled = True
        self._show_status("Exporting…")
        self._run(exporter)

    def _post_progress(self, done: int, total: int) -> None:
        """Called from the worker thread: post_message is thread-safe."""
        self.post_message(self.Progress(done, total))

    @work(thread=True, exclusive=True, group="anonymize", exit_on_error=False)
    def _run(self, exporter: Exporter) -> None:
        """The export, off the UI thread; its outcome is posted back as :class:`Finished`."""
        try:
            result = exporter.run()
        except BurnedInRefused as exc:
            files = tuple(ref.display for ref in exc.refs)
            self.post_message(self.Finished(None, f"Nothing written: {exc}.", files))
        except ExportRefused as exc:
            self.post_message(self.Finished(None, f"Nothing written: {exc}."))
        except Exception as exc:  # noqa: BLE001 - shown in the dialog; the traceback goes to the log
            log_exception("anonymize dialog: export failed")
            self.post_message(self.Finished(None, f"Nothing written: {type(exc).__name__}: {exc}"))
        else:
            self.post_message(self.Finished(result))

    def on_anonymize_dialog_progress(self, message: Progress) -> None:
        """Move the progress bar."""
        self.query_one("#progress", ProgressBar).update(total=max(message.total, 1), progress=message.done)

    def on_anonymize_dialog_finished(self, message: Finished) -> None:
        """Show where the copy is, or why there is none; the Cancel button becomes Close."""
        self._export_running = False
        self.query_one("#cancel", Button).label = "Close"
        bar = self.query_one("#progress", ProgressBar)
        if message.result is None:
            self.query_one("#export", Button).disabled = False
            lines = [safe_text(message.error)] + [f"  {f}" for f in message.files[:8]]
            if len(message.files) > 8:
                lines.append(f"  … and {len(message.files) - 8} more")
            if message.files:
                lines.append("Tick 'Allow images that may show burned-in text' to export them anyway.")
            self._show_status("\n".join(lines), "bold red")
            return
        result = message.result
        bar.update(total=1, progress=1)
        self.written = str(result.out)
        lines = [
            f"Wrote {safe_path(result.out)}",
            f"{result.patients} patient(s), {result.studies} study(ies), {result.series} series, "
            f"{result.instances} file(s).",
        ]
        if result.dropped:
            lines.append(f"{len(result.dropped)} file(s) left out (see DEIDENTIFICATION.txt).")
        if result.burned_in:
            lines.append(f"{len(result.burned_in)} image(s) may show burned-in text: check before sharing.")
        self._show_status("\n".join(lines), "bold green")

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_close()

    def action_close(self) -> None:
        """Cancel a running export (nothing is left behind) or close the dialog."""
        if self._export_running:
            self._cancel_event.set()
            self._show_status("Cancelling…")
            return
        self.dismiss(self.written)
