"""Snapshot tests of the layout (pytest-textual-snapshot), with the half-block renderer pinned.

Update the baselines after an intended UI change with ``pytest tests/snapshots/test_snapshots.py --snapshot-update``
and look at the report before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
from pilot import wait_for_index, wait_for_slice, wait_until
from textual.app import App
from textual.pilot import Pilot

from tui_dicom.core.graphics.terminal import detect
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.widgets.inspector import TagInspector

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CT = SHARED / "ge_ct_head"
TAICHI = SHARED / "taichi_mri_cd"
pytestmark = pytest.mark.skipif(
    not CT.is_dir() or not TAICHI.is_dir(), reason=f"real data not found: {SHARED}"
)


class SnapCompare(Protocol):
    """pytest-textual-snapshot's ``snap_compare`` (its fixture is annotated with a narrower callable)."""

    def __call__(
        self,
        app: App[Any],
        *,
        terminal_size: tuple[int, int] = ...,
        run_before: Callable[[Pilot[None]], Awaitable[None]] | None = ...,
    ) -> bool: ...


def _app(path: Path) -> DicomViewerApp:
    # a fixed source label keeps machine paths out of the snapshot
    return DicomViewerApp(
        [str(path)], terminal=detect(override="halfblock", colors="truecolor"), source_label=path.name
    )


def _settled(app: DicomViewerApp) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        await wait_for_index(pilot, app)
        await wait_for_slice(pilot, app)
        inspector = app.main.query_one("#inspector", TagInspector)
        await wait_until(pilot, lambda: len(inspector._rows) > 0)
        await pilot.pause(0.3)

    return run_before


@pytest.mark.slow
def test_wide_layout_taichi_cd(snap_compare: SnapCompare) -> None:
    app = _app(TAICHI)
    assert snap_compare(app, terminal_size=(160, 48), run_before=_settled(app))


def test_narrow_layout_ct_80x24(snap_compare: SnapCompare) -> None:
    app = _app(CT)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled(app))


@pytest.mark.slow
def test_help_screen(snap_compare: SnapCompare) -> None:
    app = _app(CT)
    settle = _settled(app)

    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
