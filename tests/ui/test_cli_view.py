"""The viewer's command line: help, version, bad paths, the demo, and ``python -m tui_dicom``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pilot import wait_for_index, wait_for_slice

from tui_dicom.cli import main
from tui_dicom.commands.view import demo_paths
from tui_dicom.core.graphics.terminal import detect
from tui_dicom.core.hierarchy.index import build_index
from tui_dicom.ui.app import DicomViewerApp


def test_help_and_version_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--renderer" in out and "ls, dump, export" in out
    assert main(["--version"]) == 0
    assert "tui-dicom" in capsys.readouterr().out


def test_missing_path_is_a_usage_error_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope\x1b[2J"
    assert main([str(missing)]) == 2
    err = capsys.readouterr().err
    assert "no such file or directory" in err and "\x1b" not in err and "\\x1b" in err


def test_python_m_entry_point() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "tui_dicom", "ls", "--help"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0 and "--json" in res.stdout


def test_demo_is_real_data_with_a_dicomdir_and_full_size_images() -> None:
    paths, note = demo_paths()
    assert any(Path(p, "DICOMDIR").exists() for p in paths), paths
    assert "demo" in note.lower()
    hierarchy = build_index(paths)
    assert hierarchy.instance_count() >= 30
    sizes = {(i.rows, i.columns) for s in hierarchy.all_series() for i in s.instances if i.rows}
    assert (512, 512) in sizes  # the full-size head CT from pydicom-data


async def test_demo_opens_and_says_so_on_screen() -> None:
    paths, note = demo_paths()
    app = DicomViewerApp(
        paths,
        terminal=detect(override="halfblock"),
        demo_note=note,
        source_label="demo: pydicom dicomdirtests CD + pydicom-data images",
    )
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_for_index(pilot, app)
        assert await wait_for_slice(pilot, app)
        assert "demo" in (app.main.sub_title or "")
        assert any("demo" in str(n.message).lower() for n in app._notifications)


async def test_start_shows_the_series_of_the_first_path_given() -> None:
    """With several paths, the viewer opens on what was named first (the demo: the full-size head CT)."""
    paths, note = demo_paths()
    app = DicomViewerApp(paths, terminal=detect(override="halfblock"), demo_note=note)
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_for_index(pilot, app)
        assert await wait_for_slice(pilot, app)
        shown = app.main.viewer.series
        assert shown is not None
        assert Path(shown.instances[0].ref.path).resolve() == Path(paths[0]).resolve()
        assert (shown.instances[0].rows, shown.instances[0].columns) == (512, 512)
