"""The viewer's share dialog (``S``): options shown, the export runs off the UI thread with progress, the
output path is shown at the end, and the copy is the same as ``tui-dicom anonymize`` writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pilot import wait_for_index, wait_for_slice, wait_until
from pydicom.fileset import FileSet
from textual.widgets import Checkbox, Input, RadioButton, Static

from tui_dicom.core.deid.engine import SECOND_OPINION
from tui_dicom.core.graphics.terminal import detect
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.screens.anonymize import AnonymizeDialog


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        path = pydicom.data.get_testdata_file(name, download=False)
        assert isinstance(path, str)
        shutil.copy(path, folder / name)
    return folder


@pytest.mark.slow
async def test_share_dialog_exports_the_shown_series(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    app = DicomViewerApp([str(folder)], terminal=detect(override="halfblock"))
    out = tmp_path / "share"
    async with app.run_test(size=(140, 44)) as pilot:
        assert await wait_for_index(pilot, app)
        assert await wait_for_slice(pilot, app)
        await pilot.press("S")
        assert await wait_until(pilot, lambda: isinstance(app.screen, AnonymizeDialog))
        dialog = app.screen
        assert isinstance(dialog, AnonymizeDialog)
        ticked = {o for o in SECOND_OPINION if dialog.query_one(f"#opt-{o.name.lower()}", Checkbox).value}
        assert ticked == set(SECOND_OPINION) and dialog.chosen_options() == SECOND_OPINION
        assert dialog.query_one("#scope-series", RadioButton).value
        dialog.query_one("#output", Input).value = str(out)
        await pilot.click("#export")
        assert await wait_until(pilot, lambda: dialog.written is not None, timeout=60)
        status = str(dialog.query_one("#status", Static).content)
        assert str(out) in status and "1 file(s)" in status
        await pilot.press("escape")
        assert await wait_until(pilot, lambda: not isinstance(app.screen, AnonymizeDialog))
    fs = FileSet(out / "DICOMDIR")
    assert len(fs) == 1
    ds = next(iter(fs)).load()
    assert ds.PatientIdentityRemoved == "YES" and ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert (out / "DEIDENTIFICATION.txt").is_file()


@pytest.mark.slow
async def test_share_dialog_refuses_an_output_inside_the_input(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    app = DicomViewerApp([str(folder)], terminal=detect(override="halfblock"))
    async with app.run_test(size=(140, 44)) as pilot:
        assert await wait_for_index(pilot, app)
        assert await wait_for_slice(pilot, app)
        await pilot.press("S")
        assert await wait_until(pilot, lambda: isinstance(app.screen, AnonymizeDialog))
        dialog = app.screen
        assert isinstance(dialog, AnonymizeDialog)
        dialog.query_one("#output", Input).value = str(folder / "out")
        await pilot.click("#export")
        await pilot.pause()
        assert "inside an input" in str(dialog.query_one("#status", Static).content)
    assert sorted(p.name for p in folder.iterdir()) == ["CT_small.dcm", "MR_small.dcm"]
