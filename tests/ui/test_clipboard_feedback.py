"""``y`` in the tag inspector says what it sent with OSC 52 (the app cannot know whether the terminal's
clipboard changed), and how tmux must be set up to pass it on."""

from __future__ import annotations

from typing import Any

import pytest
from pilot import wait_for_index, wait_until
from pydicom.data import get_testdata_file

from tui_dicom.core.graphics.terminal import detect
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.widgets.inspector import TagInspector, clipboard_feedback


def test_feedback_names_what_was_sent_and_the_tmux_setting() -> None:
    assert clipboard_feedback("15", "InstanceNumber", env={}) == (
        "Sent 2 chars of InstanceNumber to the clipboard (OSC 52)"
    )
    in_tmux = clipboard_feedback("15", "InstanceNumber", env={"TMUX": "/tmp/tmux-0/default,1,0"})
    assert "Copied" not in in_tmux and "set -g set-clipboard on" in in_tmux


@pytest.mark.slow
async def test_y_sends_the_value_and_says_so() -> None:
    path = str(get_testdata_file("CT_small.dcm", download=False))
    app = DicomViewerApp([path], terminal=detect(override="halfblock"))
    sent: list[str] = []
    said: list[str] = []
    app.copy_to_clipboard = sent.append  # type: ignore[method-assign,assignment]  # spy; append takes object

    def notify(message: str, **_kwargs: Any) -> None:
        said.append(message)

    app.notify = notify  # type: ignore[method-assign]  # a spy on the instance
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_for_index(pilot, app)
        inspector = app.main.query_one(TagInspector)
        assert await wait_until(pilot, lambda: len(inspector._rows) > 20)  # noqa: SLF001
        await pilot.press("slash", *"0020,0013", "enter", "y")
        assert await wait_until(pilot, lambda: bool(sent))
        assert sent == ["1"]
        assert f"Sent {len(sent[0])} chars of InstanceNumber to the clipboard (OSC 52)" in said[-1]
