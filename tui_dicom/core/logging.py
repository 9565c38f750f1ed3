"""Optional log file for full tracebacks (``--log FILE``); nothing is logged to the terminal.

A crash (an exception nothing handled) is never silent: :func:`write_crash_log` puts its traceback in
the ``--log`` file, or without one in a crash log of its own under ``$XDG_STATE_HOME/tui-dicom/``
(``~/.local/state/tui-dicom/`` by default), and returns where, so the one line printed on exit can name it.
"""

from __future__ import annotations

import logging
import os
import sys

LOGGER = logging.getLogger("tui_dicom")
LOGGER.addHandler(logging.NullHandler())
LOGGER.propagate = False


#: the ``--log`` file, if any (crashes are written there instead of a crash log of their own)
_LOG_PATH: str | None = None


def setup_log(path: str | None) -> None:
    """Send log records, tracebacks included, to ``path`` (None: discard them)."""
    global _LOG_PATH
    _LOG_PATH = os.path.abspath(path) if path else None
    for old in list(LOGGER.handlers):
        LOGGER.removeHandler(old)
    if path:
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        LOGGER.setLevel(logging.DEBUG)
    else:
        handler = logging.NullHandler()
    LOGGER.addHandler(handler)
    # pydicom logs warnings about odd files; route them to the same place, never to stderr.
    # so do the archive libraries (pynetdicom logs every association, dicomweb-client every request)
    for name in ("pydicom", "pynetdicom", "dicomweb_client"):
        lib = logging.getLogger(name)
        lib.handlers = [handler]
        lib.propagate = False
    # Python warnings (pydicom warns about odd values while converting them, long after the file
    # was read) would print two lines of source to stderr: send them to the log as well.
    logging.captureWarnings(True)
    pyw = logging.getLogger("py.warnings")
    pyw.handlers = [handler]
    pyw.propagate = False


def log_exception(message: str) -> None:
    """Log ``message`` with the current exception's traceback (to the log file only)."""
    LOGGER.exception(message)


def state_dir() -> str:
    """``$XDG_STATE_HOME/tui-dicom`` (the spec ignores a relative value), else ``~/.local/state/tui-dicom``."""
    base = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "tui-dicom")


def write_crash_log(message: str, error: BaseException) -> str:
    """Record a crash with its traceback; return the file it went to ("" if none could be written).

    With ``--log`` the traceback goes to that file (with everything logged before it); otherwise to a
    new ``crash-YYYYMMDD-HHMMSS-PID.log`` in :func:`state_dir` (made private to the user).
    """
    import datetime  # only a crash needs these three: they are not imported on every start
    import platform
    import traceback

    from tui_dicom import __version__

    if _LOG_PATH:
        LOGGER.error(message, exc_info=(type(error), error, error.__traceback__))
        for handler in LOGGER.handlers:
            handler.flush()
        return _LOG_PATH
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = "".join(
        [
            f"{message}\n",
            f"tui-dicom {__version__}, Python {platform.python_version()}, {platform.platform()}\n",
            f"command line: {' '.join(sys.argv)!r}\n\n",
            *traceback.format_exception(type(error), error, error.__traceback__),
        ]
    )
    try:
        folder = state_dir()
        os.makedirs(folder, mode=0o700, exist_ok=True)
        path = os.path.join(folder, f"crash-{stamp}-{os.getpid()}.log")
        with open(path, "x", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
    except OSError:
        return ""
    return path
