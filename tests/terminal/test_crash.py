"""Crashes are never silent: an exception nothing handled restores the terminal, prints one line naming
the log, writes the traceback to ``--log`` or to a crash log under ``$XDG_STATE_HOME/tui-dicom/``, and
exits non-zero. The crash is injected by replacing one action with one that raises."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pilot import wait_for_index

from tui_dicom.commands.view import EXIT_CRASH
from tui_dicom.core import logging as tlog
from tui_dicom.core.graphics.terminal import detect
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.screens.main import MainScreen

REPO = Path(__file__).resolve().parents[2]
CT = REPO.parent / "shared" / "data" / "ge_ct_head"
needs_ct = pytest.mark.skipif(not CT.is_dir(), reason=f"real data not found: {CT}")

INJECT = """
import sys
from tui_dicom.ui.screens.main import MainScreen

def boom(self):
    raise RuntimeError("injected crash \\x1b[31m")

MainScreen.action_toggle_annotations = boom
from tui_dicom.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_crash_log_goes_under_xdg_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    tlog.setup_log(None)
    try:
        raise ValueError("boom")
    except ValueError as exc:
        path = tlog.write_crash_log("tui-dicom crashed", exc)
    assert Path(path).parent == tmp_path / "state" / "tui-dicom"
    text = Path(path).read_text()
    assert "Traceback" in text and "ValueError: boom" in text
    assert (Path(path).parent.stat().st_mode & 0o077) == 0
    # a relative XDG_STATE_HOME is ignored, as the spec says
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tlog.state_dir() == str(tmp_path / "home" / ".local" / "state" / "tui-dicom")


@needs_ct
async def test_pilot_crash_is_logged_and_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: MainScreen) -> None:
        raise RuntimeError("injected crash")

    monkeypatch.setattr(MainScreen, "action_toggle_annotations", boom)
    log = tmp_path / "viewer.log"
    tlog.setup_log(str(log))
    app = DicomViewerApp([str(CT)], terminal=detect(override="halfblock"))
    try:
        with pytest.raises(RuntimeError, match="injected crash"):
            async with app.run_test(size=(120, 40)) as pilot:
                await wait_for_index(pilot, app)
                await pilot.press("a")
                await pilot.pause()
    finally:
        tlog.setup_log(None)
    assert app.return_code == 1
    assert isinstance(app.crash, RuntimeError)
    assert app.crash_log == str(log)
    text = log.read_text()
    assert "tui-dicom crashed" in text and "Traceback" in text and "injected crash" in text


def _run_in_pty(args: list[str], env: dict[str, str], keys: bytes, ready: bytes) -> tuple[int, bytes]:
    """Run the viewer in a pseudo-terminal (120×40); type ``keys`` once ``ready`` was drawn."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True, start_new_session=True
    )
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not sent and ready in out:
                time.sleep(0.5)
                os.write(master, keys)
                sent = True
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                out += chunk
                if not chunk and proc.poll() is not None:
                    break
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=10), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


@needs_ct
@pytest.mark.parametrize("with_log", [False, True])
def test_crash_in_a_terminal_restores_it_and_prints_one_line(tmp_path: Path, with_log: bool) -> None:
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), TERM="xterm-256color")
    env.pop("TUI_DICOM_LAYOUT_JSON", None)
    log = tmp_path / "given.log"
    args = [sys.executable, "-c", INJECT, str(CT), "--renderer", "halfblock", "--query-timeout", "0.05"]
    if with_log:
        args += ["--log", str(log)]
    status, out = _run_in_pty(args, env, b"a", ready=b"Annotations")
    assert status == EXIT_CRASH, out[-2000:]
    # the terminal is handed back (alternate screen left) before the line is printed
    leave = out.rfind(b"\x1b[?1049l")
    assert leave >= 0, out[-2000:]
    tail = out[leave:].decode("utf-8", "replace")
    assert "Traceback" not in out.decode("utf-8", "replace")
    lines = [line for line in tail.replace("\r", "").split("\n") if "tui-dicom" in line]
    assert len(lines) == 1, tail
    line = lines[0]
    assert "internal error (RuntimeError: injected crash" in line
    assert "\x1b[31m" not in line  # the error text is made terminal-safe
    if with_log:
        crash_file = log
        assert not (tmp_path / "state").exists()
    else:
        logs = list((tmp_path / "state" / "tui-dicom").glob("crash-*.log"))
        assert len(logs) == 1
        crash_file = logs[0]
    assert str(crash_file) in line
    text = crash_file.read_text()
    assert "Traceback" in text and "RuntimeError: injected crash" in text and "boom" in text
