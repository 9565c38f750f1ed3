"""Terminal answers, recognised wherever they turn up in the input stream.

The viewer asks the terminal what it can do before the app starts (:mod:`.terminal`). Over a slow
link (SSH with a 0.6 s round trip) the answers arrive after the start-up window closed, in the middle
of the session, where a key parser would read ``ESC [ ? 6 2 ; 4 c`` as the keys ``?``, ``6``, ``2``,
``;``, ``4``, ``c`` (help, a preset, the probe...). :class:`ReplyFilter` sits between the bytes read
from the terminal and the key parser for the whole session: it removes every answer to a query (DA1,
DA2, XTWINOPS sizes, DECRQM mode reports, kitty graphics responses, XTSMGRAPHICS, DCS and OSC
answers) and passes everything else through unchanged.

An answer split across two reads is held back (at most :data:`HOLD_REPLY` seconds for a start that
only an answer has, :data:`HOLD_AMBIGUOUS` for one a key could also have) until it can be told apart
from a key; :meth:`ReplyFilter.flush` releases what waited too long. A lone ``ESC`` read on its own is
the Escape key and is never held.

Mode reports for the modes the UI toolkit asks about itself (2026 synchronized output, 2048 in-band
resize) are passed through: it asks for them and handles the answer.

Pure Python, no Textual: the driver that feeds it lives in the UI.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

#: seconds an unfinished answer (``ESC [ ?``, ``ESC _ G``, ``ESC P``, ``ESC ]``) may wait for its rest
HOLD_REPLY = 0.5
#: seconds an unfinished sequence that may also be a key (``ESC [ 6 ;``) waits for its rest
HOLD_AMBIGUOUS = 0.05
#: DEC private modes whose reports the UI toolkit asks for and handles itself
TOOLKIT_MODES = frozenset({"2026", "2048"})

_REPLY = re.compile(
    r"""
    \x1b\[\?[\d;]*c                   # DA1: primary device attributes
  | \x1b\[>[\d;]*c                    # DA2: secondary device attributes
  | \x1b\[=[\w;]*c                    # DA3 (some terminals answer a plain DA with it)
  | \x1b\[[3-9];\d+;\d+t              # XTWINOPS: window / text area / cell sizes
  | \x1b\[(?P<dec>\?)?(?P<mode>\d+);\d\$y  # DECRQM: mode report (ANSI or DEC private)
  | \x1b\[\?\d+;\d+(?:;\d+)*S         # XTSMGRAPHICS: graphics attributes
  | \x1b_G[^\x1b\x07]*(?:\x1b\\|\x07)  # kitty graphics response (APC)
  | \x1bP[^\x1b\x07]*(?:\x1b\\|\x07)  # DCS answers: XTGETTCAP, DECRQSS, XTVERSION
  | \x1b\](?:4|1[0-9]);[^\x1b\x07]*(?:\x1b\\|\x07)  # OSC colour answers
    """,
    re.VERBOSE,
)
#: the start of an answer that is not finished yet (only answers start like this)
_PARTIAL_REPLY = re.compile(
    r"\x1b(?:\[[?>=][\d;:$]*|\[\?\d+;\d+(?:;\d*)*|_G[^\x1b\x07]*\x1b?|P[^\x1b\x07]*\x1b?|\][^\x1b\x07]*\x1b?)\Z"
)
#: the start of something that may be an answer or a key (CSI with digits, a bare CSI)
_PARTIAL_AMBIGUOUS = re.compile(r"\x1b(?:\[[\d;]*|_|P|\])?\Z")
_DA1 = re.compile(r"\x1b\[\?([\d;]*)c")
_XTSMGRAPHICS = re.compile(r"\x1b\[\?2;0;(\d+);(\d+)S")


@dataclass
class ReplyFilter:
    """Removes terminal answers from the input text; counts them and keeps what they said.

    Attributes:
        da1_seen: how many DA1 answers went by (terminals answer in order, so a DA1 sent last marks
            the end of every earlier answer).
        sixel_max_px: the largest sixel ``(w, h)`` from an XTSMGRAPHICS answer, if one went by.
        consumed: every answer removed, in order (for tests and the debug log).
        on_reply: called with each answer removed (from the thread that feeds the filter).
    """

    da1_seen: int = 0
    sixel_max_px: tuple[int, int] | None = None
    consumed: list[str] = field(default_factory=list)
    on_reply: Callable[[str], None] | None = None
    _pending: str = ""
    _pending_since: float = 0.0
    _pending_hold: float = 0.0

    def feed(self, text: str, now: float) -> str:
        """Take text read from the terminal; return what is not an answer (for the key parser).

        Args:
            text: decoded input, any chunk size.
            now: a monotonic time (seconds), to know how long an unfinished answer waits.

        Returns:
            The input without answers; an unfinished answer at the end is held back.
        """
        if not text and not self._pending:
            return ""
        alone_escape = text == "\x1b" and not self._pending
        data = self._pending + text
        self._pending = ""
        out: list[str] = []
        pos = 0
        while True:
            esc = data.find("\x1b", pos)
            if esc < 0:
                out.append(data[pos:])
                break
            out.append(data[pos:esc])
            match = _REPLY.match(data, esc)
            if match is not None and not (match.group("dec") and match.group("mode") in TOOLKIT_MODES):
                self._record(match.group(0))
                pos = match.end()
                continue
            tail = data[esc:]
            if not alone_escape and (_PARTIAL_REPLY.match(tail) or _PARTIAL_AMBIGUOUS.match(tail)):
                # unfinished: wait for the rest (the Escape key alone is never held)
                self._pending = tail
                self._pending_since = now
                self._pending_hold = HOLD_REPLY if _PARTIAL_REPLY.match(tail) else HOLD_AMBIGUOUS
                break
            # not an answer: pass the ESC and go on after it (the parser sees the whole sequence)
            out.append("\x1b")
            pos = esc + 1
        return "".join(out)

    def flush(self, now: float) -> str:
        """Release a held sequence that waited longer than its hold time (it was not an answer)."""
        if self._pending and now - self._pending_since >= self._pending_hold:
            held, self._pending = self._pending, ""
            return held
        return ""

    @property
    def holding(self) -> bool:
        """True while an unfinished sequence is held back."""
        return bool(self._pending)

    def _record(self, reply: str) -> None:
        self.consumed.append(reply)
        if _DA1.fullmatch(reply):
            self.da1_seen += 1
        geometry = _XTSMGRAPHICS.fullmatch(reply)
        if geometry is not None:
            self.sixel_max_px = (int(geometry.group(1)), int(geometry.group(2)))
        if self.on_reply is not None:
            self.on_reply(reply)


__all__ = ["HOLD_AMBIGUOUS", "HOLD_REPLY", "ReplyFilter"]
