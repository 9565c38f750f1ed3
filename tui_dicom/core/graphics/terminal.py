"""Terminal detection, done once before the Textual app starts: renderer, cell size, colours.

:func:`detect` opens ``/dev/tty``, switches it to non-canonical no-echo mode, writes all its
queries at once and reads the answers until the terminal's reply to DA1 (which every terminal
sends, and sends last because terminals answer in order) or until ``timeout`` (default 0.5 s, long
enough for an SSH round trip). Queries:

* kitty graphics ``a=q`` -> ``OK``: kitty graphics protocol;
* ``CSI 16 t`` -> cell size in pixels (fallback: ``TIOCGWINSZ`` pixel size / cells, then 10x20);
* ``CSI ? 2026 $ p`` -> DEC mode 2026, synchronized output;
* ``CSI ? 2 ; 1 ; 0 S`` (XTSMGRAPHICS) -> the largest sixel picture the terminal draws (xterm drops
  bigger ones without a word; its default is 1000x1000, assumed when the terminal does not say);
* ``CSI c`` (DA1) -> attribute 4 means sixel.

Answers that arrive after the timeout (a slow link) are removed from the app's input for the whole
session by :mod:`.replies`; :class:`TerminalInfo` says whether DA1 was answered in time so the app
can wait for the rest on exit.

Inside tmux the queries reach tmux, not the terminal, so tmux is asked instead:
``display -p '#{client_cell_width}x#{client_cell_height}'`` (the real cell size; tmux 3.3a reports
a fake 16x32 through ``TIOCGWINSZ``), ``show -gv allow-passthrough`` and the client's terminal
name. Kitty graphics are used in tmux only when passthrough is on and the client is kitty.

The renderer can be forced with ``override`` (``--renderer``) or ``TUI_DICOM_RENDERER``; colours
with ``colors`` (``--colors``). Without a terminal (pytest, pipes) nothing is queried and the
result is half-block. Pure Python: no Textual or Rich.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

from tui_dicom.core.graphics import kitty as kitty_cmd

RENDERERS = ("auto", "kitty", "sixel", "halfblock", "unicode")
COLOR_MODES = ("auto", "truecolor", "256")
ENV_RENDERER = "TUI_DICOM_RENDERER"
DEFAULT_CELL = (10, 20)
#: the largest sixel assumed when the terminal does not say (xterm's default ``maxGraphicSize``)
DEFAULT_SIXEL_MAX_PX = (1000, 1000)


@dataclass(frozen=True)
class TerminalInfo:
    """What the terminal can do and which renderer was chosen.

    Attributes:
        renderer: "kitty", "sixel", "halfblock" or "unicode".
        reason: one line saying why, e.g. ``half-block: tmux 3.3a without passthrough``.
        cell_px: cell size in screen pixels ``(w, h)``.
        truecolor: 24-bit colour is used for half-block cells.
        colors: "truecolor" or "256".
        sync_output: the terminal supports DEC mode 2026.
        tmux: running inside tmux.
        passthrough: tmux ``allow-passthrough`` is on.
        kitty: the terminal (or tmux's client) speaks the kitty graphics protocol.
        sixel: the terminal (or tmux) draws sixel.
        cell_px_source: where ``cell_px`` came from ("csi16t", "ioctl", "tmux", "default").
        sixel_max_bytes: wire budget of one sixel picture.
    """

    renderer: str = "halfblock"
    reason: str = "half-block: default"
    cell_px: tuple[int, int] = DEFAULT_CELL
    truecolor: bool = True
    colors: str = "truecolor"
    sync_output: bool = False
    tmux: bool = False
    passthrough: bool = False
    #: (column, row) of the tmux pane's top-left cell on the outer terminal (0-based)
    tmux_offset: tuple[int, int] = (0, 0)
    kitty: bool = False
    sixel: bool = False
    cell_px_source: str = "default"
    #: wire budget of one sixel picture (bytes): bigger pictures get fewer grey levels (``--sixel-kb``)
    sixel_max_bytes: int = 200_000
    #: the largest sixel picture ``(w, h)`` in pixels the terminal draws (XTSMGRAPHICS)
    sixel_max_px: tuple[int, int] = DEFAULT_SIXEL_MAX_PX
    #: "terminal" (it answered XTSMGRAPHICS) or "assumed" (:data:`DEFAULT_SIXEL_MAX_PX`)
    sixel_max_source: str = "assumed"
    #: the terminal was asked at start-up
    queried: bool = False
    #: its DA1 answer (the last one) arrived within the timeout
    answered: bool = False
    #: ``time.monotonic()`` when the queries were sent
    asked_at: float = 0.0
    #: the terminal's settings before the queries when :func:`detect` left echo off for the app (so
    #: late answers are not echoed before the app reads them); the app restores these on exit
    tty_attrs: Any = field(default=None, compare=False, repr=False)


@dataclass
class Replies:
    """Answers parsed from the terminal's reply bytes."""

    kitty_ok: bool = False
    cell_px: tuple[int, int] | None = None
    sync: bool | None = None
    da1: tuple[int, ...] | None = None
    sixel_max_px: tuple[int, int] | None = None


_KITTY = re.compile(rb"\x1b_Gi=31;([^\x1b]*)\x1b\\")
_CELL = re.compile(rb"\x1b\[6;(\d+);(\d+)t")
_DECRPM = re.compile(rb"\x1b\[\?2026;(\d)\$y")
_DA1 = re.compile(rb"\x1b\[\?([\d;]*)c")
_XTSMGRAPHICS = re.compile(rb"\x1b\[\?2;0;(\d+);(\d+)S")

QUERIES = kitty_cmd.query(31) + "\x1b[16t" + "\x1b[?2026$p" + "\x1b[?2;1;0S" + "\x1b[c"


def parse_replies(data: bytes) -> Replies:
    """Parse the terminal's answers to :data:`QUERIES`.

    Args:
        data: bytes read from the terminal.

    Returns:
        The parsed :class:`Replies` (fields left None/False for missing answers).
    """
    rep = Replies()
    m = _KITTY.search(data)
    rep.kitty_ok = bool(m and m.group(1) == b"OK")
    m = _CELL.search(data)
    if m and int(m.group(1)) > 0 and int(m.group(2)) > 0:
        rep.cell_px = (int(m.group(2)), int(m.group(1)))
    m = _DECRPM.search(data)
    if m:
        rep.sync = m.group(1) in (b"1", b"2", b"3")
    m = _XTSMGRAPHICS.search(data)
    if m and int(m.group(1)) > 0 and int(m.group(2)) > 0:
        rep.sixel_max_px = (int(m.group(1)), int(m.group(2)))
    m = _DA1.search(data)
    if m:
        rep.da1 = tuple(int(p) for p in m.group(1).split(b";") if p)
    return rep


def query_terminal(fd: int, timeout: float) -> bytes:
    """Write :data:`QUERIES` to ``fd`` (a tty in non-canonical mode) and read until DA1 or timeout."""
    os.write(fd, QUERIES.encode())
    buf = b""
    deadline = time.monotonic() + timeout
    while not _DA1.search(buf):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    return buf


def _query_tty(path: str, timeout: float, *, keep_quiet: bool = False) -> tuple[bytes, Any] | None:
    """Open the controlling terminal, query it in raw mode. None if impossible.

    Args:
        path: the terminal device.
        timeout: seconds to wait for the answers.
        keep_quiet: leave echo and line mode off afterwards (answers arriving before the app reads
            the terminal are then not echoed on the screen); the caller restores the settings
            returned.

    Returns:
        ``(answers, settings before the query or None when they were restored)``.
    """
    import termios

    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        old = termios.tcgetattr(fd)
        new = termios.tcgetattr(fd)
        new[3] &= ~(termios.ICANON | termios.ECHO)
        new[6][termios.VMIN] = 0
        new[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, new)
        try:
            answers = query_terminal(fd, timeout)
        finally:
            if not keep_quiet:
                termios.tcsetattr(fd, termios.TCSAFLUSH, old)
        if keep_quiet:
            new[6][termios.VMIN] = 1  # blocking reads again, still no echo
            termios.tcsetattr(fd, termios.TCSANOW, new)
            return answers, old
        return answers, None
    except (OSError, termios.error):
        return None
    finally:
        os.close(fd)


def restore_tty(attrs: Any, tty_path: str = "/dev/tty") -> None:
    """Put back terminal settings saved by :func:`detect` (``TerminalInfo.tty_attrs``); never raises."""
    if attrs is None:
        return
    import termios

    try:
        fd = os.open(tty_path, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return
    try:
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except (OSError, termios.error):
        pass
    finally:
        os.close(fd)


def _ioctl_cell(fd: int) -> tuple[int, int] | None:
    """Cell size from TIOCGWINSZ pixel fields, if the terminal fills them."""
    import fcntl
    import struct
    import termios

    try:
        rows, cols, xpx, ypx = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    if rows and cols and xpx and ypx:
        return xpx // cols, ypx // rows
    return None


def _tmux(*args: str) -> str | None:
    """Run a tmux command against the current server; None on failure."""
    if not shutil.which("tmux"):
        return None
    try:
        res = subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=1.0)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def _tmux_facts() -> dict[str, str]:
    """Ask tmux for the client cell size, terminal name, version and passthrough setting."""
    out: dict[str, str] = {}
    line = _tmux("display", "-p", "#{client_cell_width}x#{client_cell_height}|#{client_termname}|#{version}")
    if line:
        parts = line.split("|")
        if len(parts) == 3:
            out["cell"], out["client"], out["version"] = parts
    out["passthrough"] = _tmux("show", "-gv", "allow-passthrough") or "off"
    where = _tmux("display", "-p", "#{pane_left}|#{pane_top}|#{status}|#{status-position}")
    if where:
        out["pane"] = where
    return out


def _pane_offset(tmux: dict[str, str]) -> tuple[int, int]:
    """Where the pane's top-left cell is on the outer terminal: kitty placements through tmux are
    positioned absolutely, because tmux does not forward the cursor in step with passthrough data."""
    parts = tmux.get("pane", "").split("|")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        return (0, 0)
    top = int(parts[1])
    if parts[2] not in ("off", "0", "") and parts[3] == "top":
        top += 1  # the status line takes the first row
    return (int(parts[0]), top)


def _truecolor_env(env: dict[str, str]) -> bool:
    """24-bit colour announced by the environment (COLORTERM, TERM=*-direct, known programs)."""
    if env.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return True
    if env.get("TERM", "").endswith(("-direct", "-truecolor")) or env.get("TERM") == "xterm-kitty":
        return True
    return (
        env.get("TERM_PROGRAM", "") in ("iTerm.app", "WezTerm", "vscode", "ghostty")
        or "KITTY_WINDOW_ID" in env
    )


def _colours(colors: str, truecolor_hint: bool) -> tuple[bool, str]:
    """Resolve ``--colors`` into ``(truecolor, colors)``."""
    if colors == "truecolor" or (colors == "auto" and truecolor_hint):
        return True, "truecolor"
    return False, "256"


def choose(
    replies: Replies | None,
    *,
    env: dict[str, str],
    tmux: dict[str, str] | None = None,
    ioctl_cell: tuple[int, int] | None = None,
    timeout: float = 0.5,
    colors: str = "auto",
) -> TerminalInfo:
    """Decide the renderer from parsed replies and environment facts (pure; used by :func:`detect`).

    Args:
        replies: the terminal's answers (None: nothing could be asked).
        env: environment variables.
        tmux: facts from tmux (see :func:`_tmux_facts`), None outside tmux.
        ioctl_cell: cell size from TIOCGWINSZ, if any.
        timeout: the query timeout used (for the reason text).
        colors: "auto", "truecolor" or "256".

    Returns:
        The :class:`TerminalInfo`.
    """
    rep = replies or Replies()
    cell: tuple[int, int] = DEFAULT_CELL
    source = "default"
    sixel = bool(rep.da1 and 4 in rep.da1)
    kitty = rep.kitty_ok
    passthrough = False
    if tmux is not None:
        version = "tmux " + tmux.get("version", "?")
        passthrough = tmux.get("passthrough", "off") in ("on", "all")
        client = tmux.get("client", "")
        kitty = "kitty" in client or kitty
        cw, _, chh = tmux.get("cell", "").partition("x")
        if cw.isdigit() and chh.isdigit() and int(cw) > 0 and int(chh) > 0:
            cell, source = (int(cw), int(chh)), "tmux"
        if kitty and passthrough:
            renderer, reason = "kitty", f"kitty: {version} with passthrough to {client}"
        elif sixel:
            renderer, reason = "sixel", f"sixel: {version} draws sixel"
        elif kitty:
            renderer, reason = "halfblock", f"half-block: {version} without passthrough"
        else:
            renderer, reason = (
                "halfblock",
                f"half-block: {version} has no sixel, {client or 'client'} no kitty graphics",
            )
    else:
        if rep.cell_px:
            cell, source = rep.cell_px, "csi16t"
        elif ioctl_cell:
            cell, source = ioctl_cell, "ioctl"
        if kitty:
            renderer, reason = "kitty", "kitty: terminal answered the kitty graphics query"
        elif sixel:
            renderer, reason = "sixel", "sixel: terminal reports sixel in DA1"
        elif replies is None:
            renderer, reason = "halfblock", "half-block: no terminal to ask"
        elif rep.da1 is None:
            renderer, reason = "halfblock", f"half-block: no answer within {timeout:g} s"
        else:
            renderer, reason = "halfblock", "half-block: no kitty graphics or sixel reported"
    # without a terminal (tests, snapshots) nothing downgrades colours: keep 24-bit
    truecolor, mode = _colours(colors, replies is None or _truecolor_env(env) or kitty)
    return TerminalInfo(
        renderer=renderer,
        reason=reason,
        cell_px=cell,
        truecolor=truecolor,
        colors=mode,
        sync_output=bool(rep.sync),
        tmux=tmux is not None,
        passthrough=passthrough,
        kitty=kitty,
        sixel=sixel,
        cell_px_source=source,
        tmux_offset=_pane_offset(tmux) if tmux is not None else (0, 0),
        sixel_max_px=rep.sixel_max_px or DEFAULT_SIXEL_MAX_PX,
        sixel_max_source="terminal" if rep.sixel_max_px else "assumed",
        queried=replies is not None,
        answered=rep.da1 is not None,
    )


def detect(
    timeout: float = 0.5,
    *,
    override: str | None = None,
    colors: str = "auto",
    env: dict[str, str] | None = None,
    tty_path: str = "/dev/tty",
    keep_quiet: bool = False,
) -> TerminalInfo:
    """Detect the terminal once, before ``App.run()`` (Textual reads stdin afterwards).

    Args:
        timeout: seconds to wait for the terminal's answers (keep ~0.5 s for SSH).
        override: renderer from ``--renderer`` ("auto" or None: detect; else forced).
        colors: ``--colors`` value: "auto", "truecolor" or "256".
        env: environment (default ``os.environ``); ``TUI_DICOM_RENDERER`` is read from it.
        tty_path: the terminal device to query.
        keep_quiet: leave echo off after asking (the app reads the terminal next and restores
            ``TerminalInfo.tty_attrs`` on exit), so late answers are never echoed.

    Returns:
        The :class:`TerminalInfo`; never raises for terminal problems.
    """
    env = dict(os.environ if env is None else env)
    forced = (
        override if override and override != "auto" else env.get(ENV_RENDERER, "").strip().lower() or None
    )
    if forced == "auto":
        forced = None
    if forced is not None and forced not in RENDERERS:
        forced = None
    if colors not in COLOR_MODES:
        colors = "auto"
    interactive = sys.stdin is not None and sys.stdout is not None
    try:
        interactive = interactive and sys.stdin.isatty() and sys.stdout.isatty()
    except (ValueError, AttributeError):
        interactive = False
    in_tmux = bool(env.get("TMUX"))
    replies: Replies | None = None
    ioctl_cell = None
    tmux = None
    asked_at = time.monotonic()
    saved = None
    if interactive:
        got = _query_tty(tty_path, timeout, keep_quiet=keep_quiet)
        replies = parse_replies(got[0]) if got is not None else None
        saved = got[1] if got is not None else None
        try:
            ioctl_cell = _ioctl_cell(sys.stdout.fileno())
        except (ValueError, OSError):
            ioctl_cell = None
        if in_tmux:
            tmux = _tmux_facts()
    info = choose(replies, env=env, tmux=tmux, ioctl_cell=ioctl_cell, timeout=timeout, colors=colors)
    info = replace(info, asked_at=asked_at, tty_attrs=saved)
    if forced is not None:
        src = "--renderer" if override and override != "auto" else ENV_RENDERER
        name = {"halfblock": "half-block"}.get(forced, forced)
        info = replace(info, renderer=forced, reason=f"{name}: forced by {src}")
    return info
