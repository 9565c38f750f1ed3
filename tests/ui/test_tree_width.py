"""A readable tree: it fits patient IDs, can be widened and narrowed (keys, dragging its border), and a
problem entry opens its full path and reason."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from pilot import wait_for_index, wait_until
from pydicom.data import get_testdata_file

from tui_dicom.core.graphics.terminal import detect
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.screens.problem import ProblemScreen
from tui_dicom.ui.widgets.study_tree import MIN_WIDTH, StudyTree

TAICHI = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "taichi_mri_cd"
CT = Path(str(get_testdata_file("CT_small.dcm", download=False)))


def _app(*paths: Path) -> DicomViewerApp:
    return DicomViewerApp([str(p) for p in paths], terminal=detect(override="halfblock"))


def _tree_text(app: DicomViewerApp, tree: StudyTree) -> str:
    """What the tree shows on screen, line by line (as a person reads it)."""
    return "\n".join("".join(seg.text for seg in tree.render_line(y)) for y in range(tree.region.height))


@pytest.mark.skipif(not TAICHI.is_dir(), reason=f"real CD not found: {TAICHI}")
@pytest.mark.slow
async def test_patient_id_is_not_cut_and_keys_resize_the_tree() -> None:
    app = _app(TAICHI)
    async with app.run_test(size=(400, 50)) as pilot:
        assert await wait_for_index(pilot, app)
        tree = app.main.query_one(StudyTree)
        assert await wait_until(pilot, lambda: "0000110231" in _tree_text(app, tree))
        start = tree.outer_size.width
        tree.focus()
        await pilot.press("greater_than_sign", "greater_than_sign")
        await pilot.pause(0.05)
        assert tree.outer_size.width == start + 8
        for _ in range(40):
            await pilot.press("less_than_sign")
        await pilot.pause(0.05)
        assert tree.outer_size.width == MIN_WIDTH
        for _ in range(200):  # never wider than the screen leaves room for the image
            await pilot.press("greater_than_sign")
        await pilot.pause(0.05)
        assert tree.outer_size.width == 400 - 30


@pytest.mark.slow
async def test_dragging_the_border_resizes_the_tree() -> None:
    app = _app(CT)
    async with app.run_test(size=(160, 40)) as pilot:
        assert await wait_for_index(pilot, app)
        tree = app.main.query_one(StudyTree)
        await pilot.pause(0.1)
        border = tree.region.right - 1
        await pilot.mouse_down(offset=(border, 10))
        await pilot.mouse_up(offset=(border + 25, 10))  # moves with the button held, then releases
        await pilot.pause(0.05)
        assert tree.outer_size.width == border + 25 + 1
        assert tree.user_width == border + 26
        # the drag selected no node and left no capture behind
        assert app.mouse_captured is None


@pytest.mark.slow
async def test_a_problem_opens_its_full_path_and_reason(tmp_path: Path) -> None:
    deep = tmp_path / ("a-very-long-folder-name-" * 4) / "and-deeper-still" / "scans"
    deep.mkdir(parents=True)
    shutil.copy(CT, tmp_path / "ct.dcm")
    junk = deep / "BROKEN_but_a_long_file_name.dcm"
    junk.write_bytes(CT.read_bytes()[:160])  # a DICOM file cut in its meta header
    app = _app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for_index(pilot, app)
        tree = app.main.query_one(StudyTree)
        assert await wait_until(pilot, lambda: tree._problems is not None)  # noqa: SLF001
        problems = tree._problems  # noqa: SLF001
        assert problems is not None
        problems.expand()
        await pilot.pause(0.05)
        leaf = problems.children[0]
        # the label starts with the file name, not with the start of a long path
        assert str(leaf.label).startswith("BROKEN_but_a_long_file_name.dcm: ")
        tree.focus()
        tree.move_cursor(leaf)
        await pilot.pause(0.05)
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ProblemScreen))
        screen: Any = app.screen
        body = screen.body().plain
        assert str(junk) in body
        data = problems.children[0].data
        assert data is not None and data.problem is not None and data.problem.reason in body
        assert "Problem 1 of 1" in body
        await pilot.press("escape")
        assert await wait_until(pilot, lambda: not isinstance(app.screen, ProblemScreen))
