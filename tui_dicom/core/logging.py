"""Optional log file for full tracebacks (``--log FILE``); nothing is logged to the terminal."""

from __future__ import annotations

import logging

LOGGER = logging.getLogger("tui_dicom")
LOGGER.addHandler(logging.NullHandler())
LOGGER.propagate = False


def setup_log(path: str | None) -> None:
    """Send log records, tracebacks included, to ``path`` (None: discard them)."""
    for handler in list(LOGGER.handlers):
        LOGGER.removeHandler(handler)
    if path:
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        LOGGER.setLevel(logging.DEBUG)
    else:
        handler = logging.NullHandler()
    LOGGER.addHandler(handler)
    # pydicom logs warnings about odd files; route them to the same place, never to stderr.
    pyd = logging.getLogger("pydicom")
    pyd.handlers = [handler]
    pyd.propagate = False
    # Python warnings (pydicom warns about odd values while converting them, long after the file
    # was read) would print two lines of source to stderr: send them to the log as well.
    logging.captureWarnings(True)
    pyw = logging.getLogger("py.warnings")
    pyw.handlers = [handler]
    pyw.propagate = False


def log_exception(message: str) -> None:
    """Log ``message`` with the current exception's traceback (to the log file only)."""
    LOGGER.exception(message)
