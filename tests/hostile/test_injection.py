"""No terminal injection: hostile values and file names reach the terminal inert.

A DICOM file carries ESC/CSI/OSC sequences (OSC 52 clipboard write, OSC 8 hyperlink, title change,
clear screen), a C1 CSI (U+009B), BEL and Rich/Textual markup in the values the viewer and the
commands show (patient name, study and series descriptions, institution, a private value), and
files are named with escape sequences too. The viewer runs in a real pseudo-terminal
(``python -m tui_dicom --renderer halfblock DIR``) and every byte it writes is captured; ``dump``,
``ls`` and ``export`` are captured on stdout/stderr. The tests assert that none of the injected
sequences appear in the bytes, and that the markup shows literally.
"""

from __future__ import annotations

import copy
import fcntl
import io
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_corpus  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
has_ls = (REPO / "tui_dicom" / "commands" / "ls.py").exists()

OSC52 = "\x1b]52;c;SU5KRUNURUQ=\x07"  # "INJECTED" into the clipboard
OSC8 = "\x1b]8;;http://evil.example/\x1b\\CLICK\x1b]8;;\x1b\\"
TITLE = "\x1b]0;PWNED-TITLE\x07"
CLEAR = "CLR\x1b[2J\x1b[HCLR"
C1 = "\x9b31mC1RED"
BEL = "BEL\x07\x07BEL"
MARKUP = "[bold]BOLD[/] [link=http://evil.example/]LNK[/link] [/]"

VALUES = {
    "PatientName": MARKUP,
    "PatientID": "ID" + TITLE,
    "StudyDescription": "STUDY" + CLEAR + TITLE,
    "SeriesDescription": "SER" + OSC52 + C1,
    "InstitutionName": "INST" + OSC8 + BEL,
}
BAD_NAME = "bad\x1b]0;PWNED-NAME\x07\x1b[2J.dcm"
GOOD_NAME = "good\x1b]2;PWNED-FILE\x07\x9b1m.dcm"

#: byte patterns that must never reach a terminal
FORBIDDEN = {
    "OSC 52 clipboard write": re.compile(rb"\x1b\]52;"),
    "OSC 8 hyperlink to the injected URL": re.compile(rb"\x1b\]8;[^\x07\x1b]*evil"),
    "title change": re.compile(rb"\x1b\][012];PWNED"),
    "injected clear screen": re.compile(rb"CLR\x1b"),
    "C1 CSI (U+009B)": re.compile(rb"\xc2\x9b|\x9b31m|\x9b1m"),
    "injected BEL": re.compile(rb"BEL\x07"),
    "raw ESC from a file name": re.compile(rb"(bad|good)\x1b"),
}


def _write_hostile(folder: Path) -> Path:
    """A valid CT image with the hostile values, named with an escape sequence, plus a non-DICOM
    file with a hostile name."""
    import pydicom

    src = hostile_corpus.testdata("CT_small.dcm")
    if src is None:
        pytest.skip("pydicom's CT_small.dcm is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    ds = hostile_corpus._fresh(copy.deepcopy(pydicom.dcmread(src)), "hostile")
    ds.SpecificCharacterSet = "ISO_IR 100"
    for keyword, value in VALUES.items():
        setattr(ds, keyword, value)
    block = ds.private_block(0x0011, "HOSTILE", create=True)
    block.add_new(0x01, "LO", "PRIV" + OSC52 + TITLE)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    path = folder / GOOD_NAME
    path.write_bytes(buf.getvalue())
    (folder / BAD_NAME).write_bytes(b"not dicom at all " * 20)
    return path


def _check(data: bytes, where: str) -> None:
    hits = [name for name, pattern in FORBIDDEN.items() if pattern.search(data)]
    assert not hits, f"{where}: injected sequences reached the terminal: {hits}"


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "tui_dicom", *args],
        capture_output=True,
        timeout=60,
        env=env,
        cwd=str(cwd or REPO),
        check=False,
    )


@pytest.mark.slow
def test_dump_prints_values_and_names_inert(tmp_path: Path) -> None:
    path = _write_hostile(tmp_path / "in")
    proc = _run(["dump", str(path)])
    assert proc.returncode == 0, proc.stderr
    _check(proc.stdout + proc.stderr, "dump")
    assert b"\x1b" not in proc.stdout and b"\x07" not in proc.stdout
    text = proc.stdout.decode()
    assert MARKUP in text  # markup printed as it is
    assert "\\x1b]52;c;SU5KRUNURUQ=\\x07" in text  # the escape shown visibly
    assert "\\x9b31mC1RED" in text
    bare = _run(["dump", str(path), "-t", "SeriesDescription"])
    _check(bare.stdout + bare.stderr, "dump -t")
    assert bare.stdout.decode().strip() == "SER\\x1b]52;c;SU5KRUNURUQ=\\x07\\x9b31mC1RED"


@pytest.mark.slow
def test_error_messages_name_hostile_files_inert(tmp_path: Path) -> None:
    _write_hostile(tmp_path / "in")
    bad = tmp_path / "in" / BAD_NAME
    proc = _run(["dump", str(bad)])
    assert proc.returncode == 1
    _check(proc.stdout + proc.stderr, "dump error")
    assert b"\x1b" not in proc.stderr and b"\x07" not in proc.stderr
    assert b"bad\\x1b]0;PWNED-NAME\\x07" in proc.stderr
    out = tmp_path / "out.png"
    proc = _run(["export", str(bad), "-o", str(out)])
    assert proc.returncode == 1 and not out.exists()
    _check(proc.stdout + proc.stderr, "export error")
    assert b"\x1b" not in proc.stderr
    # a missing path with a hostile name, and a hostile output name
    proc = _run(["dump", str(tmp_path / ("nothere" + TITLE))])
    _check(proc.stdout + proc.stderr, "dump missing")
    assert b"\x1b" not in proc.stderr
    proc = _run(
        ["export", str(tmp_path / "in" / GOOD_NAME), "-o", str(tmp_path / "no" / ("x" + TITLE + ".png"))]
    )
    assert proc.returncode == 1
    _check(proc.stdout + proc.stderr, "export bad output")
    assert b"\x1b" not in proc.stderr


@pytest.mark.skipif(not has_ls, reason="tui-dicom ls / core.index not written yet")
def test_ls_prints_values_and_names_inert(tmp_path: Path) -> None:
    _write_hostile(tmp_path / "in")
    proc = _run(["ls", str(tmp_path / "in")])
    assert proc.returncode == 1  # the bad file is an error
    _check(proc.stdout + proc.stderr, "ls")
    assert b"\x1b" not in proc.stdout + proc.stderr and b"\x07" not in proc.stdout + proc.stderr
    text = proc.stdout.decode() + proc.stderr.decode()
    assert "bad\\x1b]0;PWNED-NAME" in text
    assert "[bold]BOLD[/]" in text or "BOLD" in text  # the name (PN may be reformatted), never styled
    proc = _run(["ls", "--json", str(tmp_path / "in")])
    _check(proc.stdout + proc.stderr, "ls --json")


# ------------------------------------------------------------------------------------- the viewer


def run_in_pty(
    args: list[str],
    keys: list[tuple[float, bytes]],
    *,
    cols: int = 200,
    rows: int = 60,
    startup: float = 8.0,
    cwd: Path | None = None,
) -> bytes:
    """Run ``python -m tui_dicom ARGS`` in a pseudo-terminal, send ``keys`` (delay, bytes) and return
    every byte it wrote. The process is ended with ``q`` (then SIGKILL if it lingers)."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.environ.update(TERM="xterm-256color", COLORTERM="truecolor", PYTHONPATH=str(REPO))
        os.environ.pop("TUI_DICOM_RENDERER", None)
        if cwd is not None:
            os.chdir(cwd)
        try:
            os.execv(sys.executable, [sys.executable, "-m", "tui_dicom", *args])
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, cols * 10, rows * 20))
    chunks: list[bytes] = []

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(fd, 1 << 16)
                except OSError:
                    return
                if not data:
                    return
                chunks.append(data)
                # answer a primary device attributes query (textual-image asks): a plain VT220
                if b"\x1b[c" in data or b"\x1b[0c" in data:
                    os.write(fd, b"\x1b[?62;22c")

    try:
        pump(startup)
        for delay, key in keys:
            os.write(fd, key)
            pump(delay)
        os.write(fd, b"q")
        pump(3.0)
    finally:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done == 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        os.close(fd)
    return b"".join(chunks)


def _screen_text(data: bytes) -> str:
    """The printable text of the captured bytes (escape sequences removed), for literal checks."""
    text = data.decode("utf-8", "replace")
    text = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", text)  # CSI
    text = re.sub(r"\x1b\][^\x07\x1b]*(\x07|\x1b\\)", "", text)  # OSC
    return re.sub(r"\x1b[PX^_][^\x1b]*\x1b\\", "", text)  # DCS/SOS/PM/APC (sixel, kitty)


@pytest.mark.slow
def test_viewer_writes_nothing_injected_to_the_terminal(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    _write_hostile(folder)
    keys = [
        (1.5, b"j"),
        (1.5, b"j"),
        (1.5, b"j"),  # walk the tree: patient, study, series, problems
        (1.0, b"\t"),
        (1.0, b"\t"),  # image, then the tag inspector
        (0.5, b"\x1b[B"),
        (0.5, b"\x1b[B"),
        (0.5, b"\x1b[6~"),
        (1.0, b"\x1b[6~"),
        (1.0, b"?"),
        (1.0, b"\x1b"),  # help screen and back
    ]
    data = run_in_pty(["--renderer", "halfblock", str(folder)], keys)
    assert len(data) > 5000, f"the viewer wrote almost nothing ({len(data)} bytes)"
    _check(data, "viewer")
    screen = _screen_text(data)
    assert "BOLD[/]" in screen, "markup in the patient name is not shown literally"
    assert "[bold]" in screen or "[link=" in screen
    # hostile file names are listed with visible escapes (the Problems branch, the inspector)
    assert "\\x1b" in screen, "no visible escape shown for the injected values"
