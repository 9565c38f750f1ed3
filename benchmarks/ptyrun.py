"""Run a TUI in a pseudo-terminal, answer its terminal queries, press keys, and time what it writes.

The measuring method is the one of ``../shared/tools/pty_measure.py`` (bytes read from the pty
master with their arrival time; a frame ends after ``quiet`` seconds of silence; key -> last byte),
made importable so one process can be driven through several phases (start-up, new slices, slices
already shown) and so the first picture can be timed from process start.

The terminal it impersonates answers DA1 (``?62;22``, or with ``4`` for sixel), ``CSI 16 t`` (the
cell size), DECRQM and, when asked, kitty graphics queries -- promptly, like a local terminal, so
the app never waits for its query timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

DA1 = re.compile(rb"\x1b\[0?c")
KQ = re.compile(rb"\x1b_G([^;\x1b]*a=q[^;\x1b]*);[^\x1b]*\x1b\\")
DECRQM = re.compile(rb"\x1b\[\?(\d+)\$p")
CELL_Q = re.compile(rb"\x1b\[16t")
HALF_BLOCKS = ("\u2580".encode(), "\u2584".encode())


@dataclass
class Step:
    """What the app wrote after one key press."""

    bytes: int
    first_byte_ms: float | None
    last_byte_ms: float | None
    blob: bytes


class PtyApp:
    """One TUI process in a pty of ``cols`` x ``rows`` cells of ``cell`` pixels."""

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        cols: int = 120,
        rows: int = 50,
        cell: tuple[int, int] = (10, 20),
        env: dict[str, str] | None = None,
        sixel: bool = False,
        kitty: bool = False,
        sync: bool = False,
    ) -> None:
        self.cmd = list(cmd)
        self.cols, self.rows, self.cell = cols, rows, cell
        self.env = dict(os.environ if env is None else env)
        self.env.update(TERM="xterm-256color", COLORTERM="truecolor")
        self.da1 = b"\x1b[?62;4;22c" if sixel else b"\x1b[?62;22c"
        self.kitty = kitty
        self.sync = sync
        self.chunks: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()
        self._stop = False
        self.pid = -1
        self.fd = -1
        self.t_start = 0.0

    # ------------------------------------------------------------------------------------ process
    def start(self) -> float:
        """Fork and exec the command; returns the start time (``time.perf_counter``)."""
        winsize = struct.pack(
            "HHHH", self.rows, self.cols, self.cols * self.cell[0], self.rows * self.cell[1]
        )
        self.t_start = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # child: the pty slave is stdin/stdout/stderr and the controlling terminal
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, winsize)
                os.execvpe(self.cmd[0], self.cmd, self.env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, winsize)
        threading.Thread(target=self._reader, daemon=True).start()
        return self.t_start

    def close(self) -> None:
        """Quit the app (``q``, then SIGTERM, then SIGKILL) and reap it."""
        if self.pid <= 0:
            return
        with contextlib.suppress(OSError):
            os.write(self.fd, b"q")
        deadline = time.perf_counter() + 1.5
        while time.perf_counter() < deadline:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    break
                time.sleep(0.3)
                done, _ = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    break
        self._stop = True
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.pid = -1

    def __enter__(self) -> PtyApp:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ reading
    def _reader(self) -> None:
        tail = b""
        fd = self.fd
        while not self._stop:
            try:
                r, _, _ = select.select([fd], [], [], 0.05)
            except (OSError, ValueError):
                break
            if not r:
                continue
            try:
                data = os.read(fd, 1 << 16)
            except OSError:
                break
            if not data:
                break
            now = time.perf_counter()
            with self.lock:
                self.chunks.append((now, data))
            buf = tail + data
            try:
                # the tail only completes queries split across reads: answer each query once
                self._answer(buf, new_from=len(tail))
            except OSError:
                break
            tail = buf[-64:]

    def _answer(self, buf: bytes, new_from: int = 0) -> None:
        """Answer the queries in ``buf`` that end in its new part (after ``new_from``), in order."""
        fd = self.fd
        for m in KQ.finditer(buf):
            if m.end() <= new_from:
                continue
            if self.kitty:
                iid = re.search(rb"i=(\d+)", m.group(1))
                if iid:
                    os.write(fd, b"\x1b_Gi=" + iid.group(1) + b";OK\x1b\\")
        if any(m.end() > new_from for m in CELL_Q.finditer(buf)):
            os.write(fd, b"\x1b[6;%d;%dt" % (self.cell[1], self.cell[0]))
        for m in DECRQM.finditer(buf):
            if m.end() <= new_from:
                continue
            mode = m.group(1)
            val = b"2" if (self.sync and mode == b"2026") else b"0"
            os.write(fd, b"\x1b[?" + mode + b";" + val + b"$y")
        if any(m.end() > new_from for m in DA1.finditer(buf)):  # terminals answer in order: DA1 last
            os.write(fd, self.da1)

    def since(self, t0: float) -> list[tuple[float, bytes]]:
        """Chunks that arrived at or after ``t0``."""
        with self.lock:
            return [(t, d) for t, d in self.chunks if t >= t0]

    def wait_quiet(self, t0: float, quiet: float, limit: float) -> None:
        """Wait until ``quiet`` s passed without output (after at least one byte since ``t0``) or ``limit`` s."""
        end = t0 + limit
        while time.perf_counter() < end:
            time.sleep(0.005)
            got = self.since(t0)
            if got and time.perf_counter() - got[-1][0] >= quiet:
                return

    def wait_for(self, predicate: Callable[[], bool], limit: float) -> bool:
        """Poll ``predicate`` every 5 ms for up to ``limit`` s."""
        end = time.perf_counter() + limit
        while time.perf_counter() < end:
            if predicate():
                return True
            time.sleep(0.005)
        return predicate()

    def first_picture_time(self, min_glyphs: int = 200, burst_gap: float = 0.02) -> float | None:
        """Seconds from process start to the last byte of the first frame that holds a half-block picture.

        The picture frame is the write burst in which the running count of ``▀``/``▄`` glyphs
        reaches ``min_glyphs``; it ends at the first gap of ``burst_gap`` s in the output.
        """
        with self.lock:
            chunks = list(self.chunks)
        count = 0
        for i, (t, d) in enumerate(chunks):
            count += sum(d.count(g) for g in HALF_BLOCKS)
            if count >= min_glyphs:
                end = t
                for t2, _ in chunks[i + 1 :]:
                    if t2 - end > burst_gap:
                        break
                    end = t2
                return end - self.t_start
        return None

    # ------------------------------------------------------------------------------------ CPU
    def cpu_seconds(self) -> float:
        """CPU time (user + system, every thread, live or ended) used so far by the app and its live
        child processes.

        Each process's CPU-time clock (``clock_gettime`` on the clock id of ``clock_getcpuclockid``):
        nanosecond resolution, and the threads that ended are in it. ``/proc/PID/stat``'s clock ticks
        (10 ms) are the fallback where that clock cannot be read; over five 10-ms steps they moved the
        figure by 2 ms a tick. A decoder child process counts as the app's work.
        """
        total = 0.0
        todo, seen = [self.pid], set()
        while todo:
            pid = todo.pop()
            if pid in seen or pid <= 0:
                continue
            seen.add(pid)
            try:
                total += _process_cpu(pid)
                for task in os.listdir(f"/proc/{pid}/task"):
                    with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as fh:
                        todo.extend(int(c) for c in fh.read().split())
            except (OSError, IndexError, ValueError):
                continue
        return total

    def press(self, key: bytes, *, quiet: float = 0.25, limit: float = 10.0) -> Step:
        """Send ``key`` and wait until the output has been quiet for ``quiet`` s; what arrived meanwhile."""
        t0 = time.perf_counter()
        os.write(self.fd, key)
        self.wait_quiet(t0, quiet, limit)
        got = self.since(t0)
        blob = b"".join(d for _, d in got)
        return Step(
            bytes=len(blob),
            first_byte_ms=(got[0][0] - t0) * 1000 if got else None,
            last_byte_ms=(got[-1][0] - t0) * 1000 if got else None,
            blob=blob,
        )


def _process_cpu(pid: int) -> float:
    """Seconds of CPU used by process ``pid`` (all its threads, ended ones too).

    Linux encodes a process's CPU-time clock as ``(~pid << 3) | CPUCLOCK_SCHED`` (what
    ``clock_getcpuclockid`` returns; Python has no wrapper for it). Falls back to ``/proc/PID/stat``.
    """
    clock = ((~pid << 3) | 2) & 0xFFFFFFFF
    clock = clock - (1 << 32) if clock >= 1 << 31 else clock  # a signed 32-bit clockid_t
    try:
        return time.clock_gettime(clock)
    except OSError:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
