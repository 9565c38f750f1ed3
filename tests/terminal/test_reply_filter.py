"""Terminal answers are never keys: the reply filter, the driver hook into Textual, and a slow link.

Three tiers:

* the pure :class:`ReplyFilter` on answers as real terminals send them (xterm's DA1, kitty's APC...);
* the Textual internals the driver relies on (fails loudly when Textual changes them), and the driver's
  input loop on a pipe;
* the viewer in a pseudo-terminal whose "terminal" answers every query 0.8 s or 2 s late (an SSH
  round trip): the screen must be the one of a terminal answering at once (no help opened, no panel
  toggled) and after quitting nothing is left for the shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tui_dicom.core.graphics.replies import HOLD_AMBIGUOUS, HOLD_REPLY, ReplyFilter

XTERM_ANSWERS = "\x1b[6;20;10t\x1b[?2026;0$y\x1b[?2;0;1000;1000S\x1b[?63;1;2;4;6;9;15;16;22;28c"
KITTY_ANSWERS = "\x1b_Gi=31;OK\x1b\\\x1b[6;37;18t\x1b[?2026;2$y\x1b[?62;c"


# ------------------------------------------------------------------------------------------- pure filter


def test_answers_are_removed_keys_pass() -> None:
    f = ReplyFilter()
    out = f.feed("j" + XTERM_ANSWERS + "k\x1b[Bq", 0.0)
    # the toolkit's own mode (2026) goes through: Textual asked for it and handles the answer
    assert out == "j\x1b[?2026;0$yk\x1b[Bq"
    assert f.da1_seen == 1
    assert f.sixel_max_px == (1000, 1000)
    assert "\x1b[6;20;10t" in f.consumed


def test_kitty_apc_da2_dcs_osc_and_other_modes_are_removed() -> None:
    f = ReplyFilter()
    text = (
        KITTY_ANSWERS
        + "\x1b[>41;390;0c"  # DA2
        + "\x1bP1+r544e=787465726d\x1b\\"  # XTGETTCAP
        + "\x1b]11;rgb:0000/0000/0000\x1b\\"  # OSC 11 background colour
        + "\x1b[?1049;1$y"  # DECRQM for a mode the toolkit does not ask about
        + "\x1b[?1;0;256S"  # XTSMGRAPHICS colour registers
    )
    assert f.feed(text, 0.0) == "\x1b[?2026;2$y"
    assert f.da1_seen == 1


def test_keys_that_look_like_answers_pass() -> None:
    keys = "\x1b[6;5~\x1b[1;2A\x1b[<0;10;5M\x1b[<0;10;5m\x1b[200~paste\x1b[201~\x1bOP\x1b[Z"
    f = ReplyFilter()
    assert f.feed(keys, 0.0) == keys
    assert f.consumed == []


def test_escape_alone_is_never_held() -> None:
    f = ReplyFilter()
    assert f.feed("\x1b", 0.0) == "\x1b"
    assert not f.holding


def test_answer_split_across_reads_is_held_then_removed() -> None:
    f = ReplyFilter()
    assert f.feed("x\x1b[?63;1;2", 0.0) == "x"
    assert f.holding
    assert f.flush(HOLD_REPLY / 2) == ""  # not yet
    assert f.feed(";4c\x1b_Gi=31;O", 0.1) == ""
    assert f.feed("K\x1b", 0.2) == ""
    assert f.feed("\\y", 0.3) == "y"
    assert f.da1_seen == 1 and len(f.consumed) == 2


def test_a_held_key_prefix_is_released_after_its_hold() -> None:
    f = ReplyFilter()
    assert f.feed("a\x1b[6;", 0.0) == "a"
    assert f.flush(HOLD_AMBIGUOUS / 2) == ""
    assert f.flush(HOLD_AMBIGUOUS + 0.01) == "\x1b[6;"
    # an unfinished answer waits longer, and is released if it never ends (then it was not one)
    assert f.feed("\x1b[?62;4", 1.0) == ""
    assert f.flush(1.0 + HOLD_AMBIGUOUS + 0.01) == ""
    assert f.flush(1.0 + HOLD_REPLY + 0.01) == "\x1b[?62;4"


def test_the_start_up_queries_ask_for_the_sixel_limit() -> None:
    from tui_dicom.core.graphics.terminal import QUERIES, choose, parse_replies

    assert "\x1b[?2;1;0S" in QUERIES and QUERIES.endswith("\x1b[c")
    info = choose(parse_replies(XTERM_ANSWERS.encode()), env={})
    assert (info.sixel_max_px, info.sixel_max_source, info.answered) == ((1000, 1000), "terminal", True)
    info = choose(parse_replies(b"\x1b[?2;0;2500;1600S\x1b[?62;4c"), env={})
    assert info.sixel_max_px == (2500, 1600)
    info = choose(parse_replies(b""), env={})
    assert (info.sixel_max_px, info.sixel_max_source, info.answered) == ((1000, 1000), "assumed", False)


# ------------------------------------------------------------------------------------- Textual internals


def test_textual_internals_the_driver_mirrors_are_unchanged() -> None:
    """The driver copies Textual's input loop: if this fails, compare tui_dicom/ui/driver.py with
    textual/drivers/linux_driver.py of the installed Textual and update the copy."""
    pytest.importorskip("termios")
    from textual._xterm_parser import XTermParser
    from textual.drivers.linux_driver import LinuxDriver

    source = inspect.getsource(LinuxDriver.run_input_thread)
    for needle in (
        "XTermParser(self._debug)",
        "parser.feed",
        "parser.tick",
        "self.process_message",
        "exit_event",
    ):
        assert needle in source, f"Textual's LinuxDriver.run_input_thread no longer has {needle!r}"
    assert list(inspect.signature(XTermParser.__init__).parameters) == ["self", "debug"]
    parser = XTermParser(False)
    assert parser._timeout_time is None, (
        "Textual's parser no longer has _timeout_time (None: nothing pending)"
    )
    list(parser.feed("\x1b"))
    assert parser._timeout_time is not None, "a lone ESC no longer sets the parser's _timeout_time"
    for name in ("disable_input", "start_application_mode", "process_message", "write"):
        assert callable(getattr(LinuxDriver, name)), name
    init = inspect.getsource(LinuxDriver.__init__)
    for attr in ("self.fileno", "self.exit_event", "self.attrs_before", "self.input_tty"):
        assert attr in init, f"LinuxDriver no longer sets {attr}"
    assert "self.attrs_before" in inspect.getsource(LinuxDriver.stop_application_mode)


@contextlib.contextmanager
def _reading_pipe(session: Any) -> Iterator[tuple[Any, list[Any], int, threading.Thread]]:
    """A reply-filtering driver of ``session`` whose input thread reads a pipe: yields the driver, the
    messages it posts, the pipe's write end and the thread; stopped and closed afterwards."""
    from textual.app import App

    from tui_dicom.ui.driver import make_driver

    got: list[Any] = []

    class Probe(make_driver(session)):  # type: ignore[misc]  # a base made at run time
        def process_message(self, message: Any) -> None:
            got.append(message)

    driver = Probe(App())
    read_fd, write_fd = os.pipe()
    driver.fileno = read_fd
    thread = threading.Thread(target=driver.run_input_thread, daemon=True)
    thread.start()
    try:
        yield driver, got, write_fd, thread
    finally:
        driver.exit_event.set()
        thread.join(2)
        driver.close()
        os.close(write_fd)
        os.close(read_fd)


async def test_driver_input_loop_drops_answers_on_a_pipe() -> None:
    pytest.importorskip("termios")
    from textual import events

    from tui_dicom.ui.driver import ReplySession

    session = ReplySession(queried=True)
    with _reading_pipe(session) as (_driver, got, write_fd, _thread):
        os.write(write_fd, ("j" + XTERM_ANSWERS).encode())
        await asyncio.sleep(0.15)
        os.write(write_fd, (KITTY_ANSWERS[:9]).encode())  # an answer split across reads
        await asyncio.sleep(0.15)
        os.write(write_fd, (KITTY_ANSWERS[9:] + "?").encode())
        assert session.wait_da1(2, 2.0)
        await asyncio.sleep(0.3)
    keys = [m.key for m in got if isinstance(m, events.Key)]
    assert keys == ["j", "question_mark"]


async def test_idle_input_thread_sleeps_until_a_key_and_wakes_at_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The input loop does not poll while nothing is pending (Textual's wakes ten times a second); a
    lone ESC still becomes the escape key after the parser's time-out; setting the exit flag ends
    the loop at once."""
    pytest.importorskip("termios")
    import selectors

    from textual import events

    from tui_dicom.ui.driver import ReplySession

    waits: list[float | None] = []
    select = selectors.SelectSelector.select

    def counting(self: selectors.SelectSelector, timeout: float | None = None) -> Any:
        waits.append(timeout)
        return select(self, timeout)

    monkeypatch.setattr(selectors.SelectSelector, "select", counting)
    with _reading_pipe(ReplySession()) as (driver, got, write_fd, thread):
        await asyncio.sleep(0.6)
        assert len(waits) <= 2, f"the idle input loop woke {len(waits)} times in 0.6 s"
        os.write(write_fd, b"\x1b")
        await asyncio.sleep(0.5)
        assert [m.key for m in got if isinstance(m, events.Key)] == ["escape"]
        started = time.monotonic()
        driver.exit_event.set()
        thread.join(2)
        assert not thread.is_alive() and time.monotonic() - started < 0.5


# ------------------------------------------------------------------------------------------ slow link


def _fake_terminal_answers(chunk: bytes) -> bytes:
    """What xterm answers to the queries in ``chunk`` (kitty answers an error: it is no kitty)."""
    out = b""
    for m in re.finditer(
        rb"\x1b_G([^\x1b]*)\x1b\\|\x1b\[16t|\x1b\[\?(\d+)\$p|\x1b\[\?2;1;0S|\x1b\[0?c", chunk
    ):
        q = m.group(0)
        if q.startswith(b"\x1b_G"):
            if b"a=q" in q:
                iid = re.search(rb"i=(\d+)", q)
                out += b"\x1b_Gi=" + (iid.group(1) if iid else b"0") + b";EINVAL:not kitty\x1b\\"
        elif q == b"\x1b[16t":
            out += b"\x1b[6;20;10t"
        elif q.endswith(b"$p"):
            out += b"\x1b[?" + m.group(2) + b";0$y"
        elif q.endswith(b"S"):
            out += b"\x1b[?2;0;1000;1000S"
        else:
            out += b"\x1b[?63;1;2;6;9;15;16;22;28c"
    return out


_WRAPPER = r"""
import os, select, subprocess, sys, termios, time
rc = subprocess.call([sys.executable, "-m", "tui_dicom", "--renderer", "halfblock", sys.argv[1]])
sys.stdout.write("\r\nEXITED %d\r\n" % rc); sys.stdout.flush()
time.sleep(float(sys.argv[2]))  # like a shell prompt waiting, in cooked mode: late answers get echoed
attrs = termios.tcgetattr(0); raw = list(attrs); raw[3] &= ~(termios.ICANON | termios.ECHO)
termios.tcsetattr(0, termios.TCSANOW, raw)
left = b""
while select.select([0], [], [], 0.2)[0]:
    left += os.read(0, 4096)
termios.tcsetattr(0, termios.TCSANOW, attrs)
sys.stdout.write("LEFTOVER %r\r\n" % left); sys.stdout.flush()
"""


def _run_in_pty(path: Path, delay: float, tmp: Path) -> tuple[str, bytes, list[str]]:
    """Run the viewer in a pty whose terminal answers ``delay`` s late; return (screen before q, after)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    pyte = pytest.importorskip("pyte")
    cols, rows = 140, 40
    layout = tmp / f"layout-{delay}.json"
    wrapper = tmp / "wrapper.py"
    wrapper.write_text(_WRAPPER)
    env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor", TUI_DICOM_LAYOUT_JSON=str(layout))
    env.pop("TMUX", None)
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execvpe(sys.executable, [sys.executable, str(wrapper), str(path), str(delay + 1.0)], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, cols * 10, rows * 20))
    output = bytearray()
    timers: list[threading.Timer] = []
    asked: list[str] = []

    def answer(data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(fd, data)

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if not select.select([fd], [], [], 0.05)[0]:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            output.extend(chunk)
            reply = _fake_terminal_answers(chunk)
            if reply:
                asked.append(f"{time.monotonic():.2f}")
                timer = threading.Timer(delay, answer, (reply,))
                timer.start()
                timers.append(timer)

    try:
        deadline = time.monotonic() + 30
        while not (layout.exists() and layout.stat().st_size) and time.monotonic() < deadline:
            pump(0.1)
        assert layout.exists(), "the viewer never showed its first picture"
        pump(delay + 1.5)  # every late answer has arrived, and whatever it would have done is drawn
        screen = pyte.Screen(cols, rows)
        stream = pyte.ByteStream(screen)
        stream.feed(bytes(output))
        shown = "\n".join(screen.display)
        before_quit = len(output)
        os.write(fd, b"q")
        pump(delay + 6.0)
        after = bytes(output[before_quit:])
    finally:
        for timer in timers:
            timer.cancel()
        os.close(fd)
        os.waitpid(pid, 0)
    return shown, after, asked


SLOW_LINK_FILE = "CT_small.dcm"


def _slow_link_file() -> Path:
    from pydicom.data import get_testdata_file

    return Path(str(get_testdata_file(SLOW_LINK_FILE, download=False)))


@pytest.fixture(scope="module")
def prompt_screen(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The screen with a terminal that answers at once (what a slow link must show as well)."""
    pytest.importorskip("termios")
    shown, _, _ = _run_in_pty(_slow_link_file(), 0.0, tmp_path_factory.mktemp("prompt"))
    return shown


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.8, 2.0])
def test_late_answers_on_a_slow_link_are_not_keys(delay: float, tmp_path: Path, prompt_screen: str) -> None:
    baseline = prompt_screen
    shown, after, asked = _run_in_pty(_slow_link_file(), delay, tmp_path)
    assert len(asked) >= 2, "the fake terminal was asked at start-up and on exit"
    # no stray action: the same screen as with a terminal that answers at once
    assert "Keys" not in shown.split("\n")[1]  # no help screen
    assert shown == baseline
    text = after.decode("utf-8", "replace")
    assert "EXITED 0" in text
    # nothing left for the shell: no echoed answer, nothing unread
    tail = text[text.index("EXITED 0") :]
    assert "LEFTOVER b''" in tail, tail
    assert "^[" not in tail and "\x1b[?63" not in tail, tail
