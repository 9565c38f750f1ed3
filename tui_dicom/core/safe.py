"""Make untrusted text (anything read from a file) inert for a terminal.

Every string that comes from a DICOM value or a file name passes through :func:`safe_text` before it
is shown: C0 and C1 control characters, DEL, ESC, line and paragraph separators and the bidirectional
overrides become visible escapes such as ``\\x1b``. The result is plain text; callers that show it with
Rich or Textual must still build ``Text`` objects (never markup strings) so ``[bold]`` stays literal.
"""

from __future__ import annotations

import re

# C0 (0x00-0x1f), DEL (0x7f), C1 (0x80-0x9f), line/paragraph separators, bidi embeddings/overrides/
# isolates, and the backslash itself is kept as is (DICOM uses it as the multi-value separator).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


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
