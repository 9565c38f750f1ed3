"""Make untrusted text (anything read from a file) inert for a terminal.

Every string that comes from a DICOM value or a file name passes through :func:`safe_text` before it
is shown: C0 and C1 control characters, DEL, ESC, line and paragraph separators and the bidirectional
overrides become visible escapes such as ``\\x1b``. The result is plain text; callers that show it with
Rich or Textual must still build ``Text`` objects (never markup strings) so ``[bold]`` stays literal.
"""

from __future__ import annotations

import re

# C0 (0x00-0x1f), DEL (0x7f), C1 (0x80-0x9f), line/paragraph separators, and every Unicode format
# character (category Cf, Unicode 14: zero-width spaces and joiners, bidi marks, embeddings, overrides
# and isolates, the BOM, interlinear annotation, tags): invisible or reordering, they misalign columns
# and borders. The backslash itself is kept as is (DICOM uses it as the multi-value separator).
_FORMAT_CHARS = "\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb\\U000110bd\\U000110cd\\U00013430-\\U00013438\\U0001bca0-\\U0001bca3\\U0001d173-\\U0001d17a\\U000e0001\\U000e0020-\\U000e007f"
_UNSAFE = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029" + _FORMAT_CHARS + "]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def safe_text(value: object) -> str:
    """Return ``str(value)`` with every control character shown as a visible escape.

    Args:
        value: Anything; it is converted with ``str`` first.

    Returns:
        A string with no C0/C1 control, DEL, ESC or bidi override left in it.
    """
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, text)


def safe_path(path: object) -> str:
    """Return a file name or path made inert, undecodable bytes shown as ``\\xNN``."""
    text = str(path)
    # surrogateescape'd bytes from os.fsdecode show as \udcNN; turn them into \xNN.
    text = re.sub("[\udc80-\udcff]", lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)
    return safe_text(text)
