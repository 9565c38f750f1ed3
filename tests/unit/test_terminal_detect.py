"""Terminal detection: reply parsing, renderer choice and reasons, the query over a real pty."""

from __future__ import annotations

import os
import pty
import threading

import pytest

from tui_dicom.core.graphics import terminal
from tui_dicom.core.graphics.terminal import Replies, choose, detect, parse_replies, query_terminal


def test_parse_all_replies() -> None:
    rep = parse_replies(b"\x1b_Gi=31;OK\x1b\\\x1b[6;20;10t\x1b[?2026;2$y\x1b[?62;4;22c")
    assert rep.kitty_ok and rep.cell_px == (10, 20) and rep.sync is True and rep.da1 == (62, 4, 22)


def test_parse_negative_replies() -> None:
    rep = parse_replies(b"\x1b_Gi=31;ENOTSUPPORTED:x\x1b\\\x1b[?2026;0$y\x1b[?1;2c")
    assert not rep.kitty_ok and rep.sync is False and rep.da1 == (1, 2) and rep.cell_px is None


def test_choose_kitty_sixel_halfblock() -> None:
    env = {"COLORTERM": "truecolor"}
    assert choose(Replies(kitty_ok=True, da1=(62,)), env=env).renderer == "kitty"
    info = choose(Replies(da1=(62, 4), cell_px=(9, 18)), env=env)
    assert info.renderer == "sixel" and info.cell_px == (9, 18) and info.cell_px_source == "csi16t"
    info = choose(Replies(), env=env, timeout=0.5)
    assert info.renderer == "halfblock" and info.reason == "half-block: no answer within 0.5 s"


def test_choose_in_tmux() -> None:
    tmux = {"cell": "10x20", "client": "xterm-256color", "version": "3.3a", "passthrough": "off"}
    info = choose(Replies(da1=(1, 2)), env={}, tmux=tmux)
    assert info.renderer == "halfblock" and info.tmux and info.cell_px == (10, 20)
    assert info.reason.startswith("half-block: tmux 3.3a")
    info = choose(Replies(da1=(1, 2)), env={}, tmux={**tmux, "client": "xterm-kitty"})
    assert info.reason == "half-block: tmux 3.3a without passthrough"
    info = choose(Replies(da1=(1, 2)), env={}, tmux={**tmux, "client": "xterm-kitty", "passthrough": "on"})
    assert info.renderer == "kitty" and info.passthrough


def test_colours_follow_colorterm_and_override() -> None:
    assert choose(Replies(da1=(1,)), env={}).colors == "256"
    assert choose(Replies(da1=(1,)), env={"COLORTERM": "truecolor"}).colors == "truecolor"
    assert choose(Replies(da1=(1,)), env={"COLORTERM": "truecolor"}, colors="256").colors == "256"


def test_not_a_terminal_queries_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    called = []
    monkeypatch.setattr(terminal, "_query_tty", lambda *a: called.append(a))
    info = detect(env={})
    assert info.renderer == "halfblock" and not called


def test_override_and_environment() -> None:
    assert detect(override="sixel", env={}).renderer == "sixel"
    info = detect(env={"TUI_DICOM_RENDERER": "kitty"})
    assert info.renderer == "kitty" and "TUI_DICOM_RENDERER" in info.reason
    assert detect(override="auto", env={"TUI_DICOM_RENDERER": "halfblock"}).renderer == "halfblock"


def test_query_over_a_pty_with_a_slow_terminal() -> None:
    master, slave = pty.openpty()
    import termios

    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~(termios.ICANON | termios.ECHO)
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    seen = bytearray()

    def fake_terminal() -> None:
        while b"\x1b[c" not in seen:
            seen.extend(os.read(master, 1024))
        threading.Event().wait(0.2)  # an SSH round trip
        os.write(master, b"\x1b[6;20;10t\x1b[?62;4c")

    th = threading.Thread(target=fake_terminal, daemon=True)
    th.start()
    try:
        data = query_terminal(slave, 1.0)
    finally:
        th.join(2)
        os.close(master)
        os.close(slave)
    assert b"a=q" in seen and b"\x1b[16t" in seen and b"\x1b[?2026$p" in seen
    rep = parse_replies(data)
    assert rep.da1 == (62, 4) and rep.cell_px == (10, 20)
