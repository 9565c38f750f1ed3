"""The terminal output of the running app on a file descriptor of its own.

Textual writes every frame to ``sys.__stderr__`` (file descriptor 2). The pixel decoders point
descriptor 2 at ``/dev/null`` while C libraries run (openjpeg, libjpeg and GDCM print there), and
the loader decodes in a background thread: a frame written during such a decode went to
``/dev/null``, and the screen kept the previous picture until the next key. With the app writing
to a duplicate of descriptor 2 made before it starts, silencing descriptor 2 never touches the
frames.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def own_terminal_output() -> Iterator[None]:
    """Make ``sys.__stderr__`` (Textual's output) a private duplicate of descriptor 2 for the block.

    Does nothing when descriptor 2 cannot be duplicated (then nothing changes).
    """
    original = sys.__stderr__
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    stream = io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=True),
        encoding=getattr(original, "encoding", None) or "utf-8",
        errors=getattr(original, "errors", None) or "backslashreplace",
    )
    sys.__stderr__ = stream  # type: ignore[misc]  # Final in typeshed; Textual writes frames to it
    try:
        yield
    finally:
        sys.__stderr__ = original  # type: ignore[misc]  # Final in typeshed: put back
        with contextlib.suppress(OSError, ValueError):
            stream.close()


#: what a full-screen app leaves switched on: alternate screen, hidden cursor, mouse reporting (all
#: modes), focus events, bracketed paste, kitty keyboard flags. Each "off" is harmless when not on.
RESTORE_SEQUENCE = (
    "\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l\x1b[?1004l\x1b[?2004l\x1b[<u"
    "\x1b[?1049l\x1b[?25h\x1b[0m"
)


@contextlib.contextmanager
def restore_terminal_on_signals(
    signals: tuple[int, ...] | None = None, modes: Any | None = None
) -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP restore the terminal before the process ends.

    Textual restores the terminal when it exits normally, but a ``kill`` ended the process with
    the alternate screen, a hidden cursor and mouse reporting left on. The handler stops the decoder
    child, writes :data:`RESTORE_SEQUENCE` to the app's output, puts back the terminal modes saved
    when the block started (or ``modes``: the settings from before the start-up queries, which leave
    echo off until the app reads the terminal), and exits with 128 + the signal number.
    """
    import signal

    if signals is None:
        signals = (signal.SIGTERM, signal.SIGHUP)
    saved_modes: list[Any] | None = None
    tty_fd: int | None = None
    try:
        import termios

        for candidate in (0, 1, 2):
            if os.isatty(candidate):
                tty_fd = candidate
                saved_modes = modes if modes is not None else termios.tcgetattr(candidate)
                break
    except (ImportError, OSError):
        saved_modes = None

    def handler(signum: int, _frame: object) -> None:
        with contextlib.suppress(Exception):
            from tui_dicom.core.imaging import sandbox

            sandbox.shutdown()
        with contextlib.suppress(Exception):
            out = sys.__stderr__
            fd = out.fileno() if out is not None else 2
            os.write(fd, RESTORE_SEQUENCE.encode())
        if saved_modes is not None and tty_fd is not None:
            with contextlib.suppress(Exception):
                import termios

                termios.tcsetattr(tty_fd, termios.TCSANOW, saved_modes)
        os._exit(128 + signum)

    previous = {}
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: nothing to install
        previous = {}
    try:
        yield
    finally:
        for sig, old in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, old)
