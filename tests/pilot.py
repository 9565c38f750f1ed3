"""Waits for driving the app headless: the pilot tests and ``screenshots/generate.py``.

They live with the tests, not in the package (nothing a user runs needs them); the screenshot script puts
``tests/`` on ``sys.path`` to import them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.pilot import Pilot

    from tui_dicom.ui.app import DicomViewerApp


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Let the app run until ``condition()`` holds or ``timeout`` seconds pass; returns the condition."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        await pilot.pause()
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


async def wait_for_slice(
    pilot: Pilot[Any], app: DicomViewerApp, counter: str | None = None, timeout: float = 20.0
) -> bool:
    """Wait until the main screen displayed a slice (optionally the slice whose counter is ``counter``)."""

    def shown() -> bool:
        try:
            main = app.main
        except LookupError:
            return False
        last = main.last_displayed
        if last is None:
            return False
        if counter is not None and last.slice != counter:
            return False
        return main.counter_text == last.slice

    ok = await wait_until(pilot, shown, timeout)
    await pilot.pause()
    return ok


async def wait_for_index(pilot: Any, app: Any, timeout: float = 30.0) -> bool:
    """Wait until indexing finished."""
    return await wait_until(pilot, lambda: app.main.index_done, timeout)
