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
    # typeshed marks sys.__stderr__ Final; replacing it for the duration is this function's purpose
    sys.__stderr__ = stream  # type: ignore[misc]
    try:
        yield
    finally:
        sys.__stderr__ = original  # type: ignore[misc]
        with contextlib.suppress(OSError, ValueError):
            stream.close()
