"""Compressed-stream headers that lie, and the decoder child that bounds what a decoder may take.

The header checks are compared with pydicom's real JPEG, JPEG-LS, JPEG 2000 and RLE files (every one
must pass unchanged); a hypothesis test then mutates the header bytes of those files and decodes each
mutant in a fresh process, asserting the bound (CPU ≤ 5 s and peak RSS ≤ 500 MB by ``wait4``, a
picture or a one-line refusal, never a signal). A runaway decoder is simulated with a
``sitecustomize`` that makes the child's decode loop, to show the CPU limit and the viewer's ``q``.
"""

from __future__ import annotations

import os
import struct
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_corpus  # noqa: E402

from tui_dicom.core import limits
from tui_dicom.core.errors import PixelDataError
from tui_dicom.core.imaging import sandbox, streams

REPO = Path(__file__).resolve().parents[2]
SEEDS = {
    "jpeg": "SC_rgb_jpeg_dcmtk.dcm",
    "jpeg_lossless": "SC_rgb_jpeg_gdcm.dcm",
    "jpegls": "MR_small_jpeg_ls_lossless.dcm",
    "j2k": "MR_small_jp2klossless.dcm",
    "rle": "MR_small_RLE.dcm",
}


def _seed(name: str) -> Path:
    path = hostile_corpus.testdata(name)
    if path is None:
        pytest.skip(f"pydicom test file {name} not available")
    return path


def _first_frame(path: Path) -> tuple[Any, bytes]:
    import pydicom
    from pydicom.encaps import generate_frames

    ds = pydicom.dcmread(path)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return ds, next(iter(generate_frames(ds.PixelData, number_of_frames=frames)))


@pytest.fixture(autouse=True)
def _limits() -> Iterator[None]:
    saved = limits.current()
    yield
    limits.set_limits(saved)


def test_every_real_compressed_file_passes_the_header_checks() -> None:
    """No false alarm: each of pydicom's compressed files' frames agrees with its Image Pixel module."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.encaps import generate_frames

    folder = Path(str(get_testdata_file("CT_small.dcm", download=False))).parent
    checked = 0
    for path in sorted(folder.glob("*.dcm")):
        try:
            ds = pydicom.dcmread(path)
            ts = str(ds.file_meta.TransferSyntaxUID)
            if not ds.file_meta.TransferSyntaxUID.is_encapsulated or "PixelData" not in ds:
                continue
            frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
            frame = next(iter(generate_frames(ds.PixelData, number_of_frames=frames)))
        except Exception:  # noqa: BLE001 - files pydicom cannot split are not about the checks
            continue
        if path.name in ("JPEG2000-embedded-sequence-delimiter.dcm",):
            continue  # its stream is broken (pydicom cannot decode it either)
        streams.check_frame(
            ts,
            frame,
            rows=ds.Rows,
            columns=ds.Columns,
            samples=ds.SamplesPerPixel,
            bits_allocated=ds.BitsAllocated,
            file=path.name,
        )
        checked += 1
    assert checked >= 30


def test_headers_parse_what_the_stream_says() -> None:
    _ds, jpeg = _first_frame(_seed(SEEDS["jpeg"]))
    head = streams.jpeg_header(jpeg)
    assert (head.columns, head.rows, head.components, head.bits) == (100, 100, 3, 8)
    _ds, j2k = _first_frame(_seed(SEEDS["j2k"]))
    head = streams.j2k_header(j2k)
    assert (head.columns, head.rows, head.components) == (64, 64, 1)
    boxed = hostile_corpus._jp2_box_zero(j2k)
    fixed = boxed[:12] + struct.pack(">I", 20) + boxed[16:]  # the ftyp box with its true length
    assert streams.j2k_header(fixed).columns == 64
    with pytest.raises(PixelDataError, match="length 0"):
        streams.j2k_header(boxed)
    _ds, rle = _first_frame(_seed(SEEDS["rle"]))
    assert streams.rle_segments(rle, 2) == 2


def test_lying_sof_is_refused_before_the_decoder() -> None:
    _ds, jpeg = _first_frame(_seed(SEEDS["jpeg"]))
    lie = hostile_corpus._patch_sof(jpeg, 65000, 65000)
    with pytest.raises(limits.LimitExceeded, match="frame-bytes"):
        streams.check_frame("1.2.840.10008.1.2.4.50", lie, rows=100, columns=100, samples=3, bits_allocated=8)
    small_lie = hostile_corpus._patch_sof(jpeg, 50, 100)
    with pytest.raises(PixelDataError, match="100x50"):
        streams.check_frame(
            "1.2.840.10008.1.2.4.50", small_lie, rows=100, columns=100, samples=3, bits_allocated=8
        )


def test_child_decodes_like_the_process() -> None:
    """The JPEG 2000 child gives pydicom's own pixels."""
    import pydicom

    path = _seed(SEEDS["j2k"])
    ds, frame = _first_frame(path)
    request = sandbox.FrameRequest(
        transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
        data=frame,
        rows=64,
        columns=64,
        samples=1,
        bits_allocated=16,
        bits_stored=int(ds.BitsStored),
        high_bit=int(ds.HighBit),
        pixel_representation=int(ds.PixelRepresentation),
        photometric="MONOCHROME2",
        planar=0,
    )
    arr = sandbox.decode(request, "JPEG 2000")
    assert np.array_equal(arr, pydicom.dcmread(path).pixel_array)


@pytest.fixture
def looping_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Decoder children started while this is active loop forever in their decode (a stand-in for
    openjpeg on a hostile stream), through a ``sitecustomize`` on their PYTHONPATH."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import tui_dicom.core.imaging.sandbox as _sandbox

            def _spin(request):
                n = 0
                while True:
                    n += 1

            _sandbox._decode_request = _spin
            """
        )
    )
    sandbox.shutdown()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(REPO)]))
    yield
    sandbox.shutdown()


@pytest.mark.slow
def test_runaway_decoder_is_stopped_by_its_cpu_limit(looping_child: None) -> None:
    limits.set_limits(limits.Limits(decode_seconds=1.0))
    ds, frame = _first_frame(_seed(SEEDS["j2k"]))
    request = sandbox.FrameRequest(
        str(ds.file_meta.TransferSyntaxUID),
        frame,
        64,
        64,
        1,
        16,
        16,
        15,
        1,
        "MONOCHROME2",
        0,
    )
    start = time.process_time()
    with pytest.raises(PixelDataError, match="did not finish within 1 s of CPU") as err:
        sandbox.decode(request, "JPEG 2000")
    assert "\n" not in str(err.value)
    assert time.process_time() - start < 1.0  # the parent only waited


async def test_viewer_quits_on_q_while_a_decode_runs_away(looping_child: None, tmp_path: Path) -> None:
    """``q`` ends the viewer at once, whatever the decoder child is doing (it is killed on unmount)."""
    import shutil

    from tui_dicom.core.graphics.terminal import detect
    from tui_dicom.ui.app import DicomViewerApp

    limits.set_limits(limits.Limits(decode_seconds=120.0))
    folder = tmp_path / "j2k"
    folder.mkdir()
    shutil.copy(_seed(SEEDS["j2k"]), folder / "a.dcm")
    app = DicomViewerApp(
        [str(folder)], terminal=detect(override="halfblock", colors="truecolor"), cache_mb=64
    )
    started = time.monotonic()
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):  # until the child is decoding
            await pilot.pause(0.1)
            proc = sandbox._child.proc
            if proc is not None and proc.poll() is None:
                break
        assert sandbox._child.proc is not None, "no decode reached the child"
        child = sandbox._child.proc
        await pilot.press("q")
    assert child.wait(timeout=10) is not None
    assert time.monotonic() - started < 60, "quitting waited for the runaway decode"


def _mutants() -> st.SearchStrategy[tuple[str, int, bytes]]:
    """(seed kind, offset in the frame's first 160 bytes, replacement bytes)."""
    return st.tuples(
        st.sampled_from(sorted(SEEDS)),
        st.integers(min_value=0, max_value=159),
        st.one_of(
            st.binary(min_size=1, max_size=4),
            st.sampled_from(
                [b"\xff\xff", b"\x00\x00", b"\x00\x00\x00\x00", b"\xfe\xfe\xfe\xfe", b"\xff\xff\xff\xff"]
            ),
        ),
    )


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutant=_mutants())
def test_mutated_stream_headers_stay_within_the_budget(
    mutant: tuple[str, int, bytes], tmp_path: Path
) -> None:
    """A real file with bytes of its frame header replaced: ``export`` in its own process finishes
    within 5 s of CPU and 500 MB (its decoder child included), with a picture or one line."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_hostile_commands import CPU_LIMIT_S, RSS_LIMIT_MB, run_cli

    kind, offset, replacement = mutant
    ds, frame = _first_frame(_seed(SEEDS[kind]))
    buf = bytearray(frame)
    end = min(len(buf), offset + len(replacement))
    buf[offset:end] = replacement[: end - offset]
    data = hostile_corpus._with_frames(ds, [bytes(buf)], f"mutant {kind}")
    path = tmp_path / f"mutant_{kind}_{offset}.dcm"
    path.write_bytes(data)
    out = tmp_path / "out.png"  # tmp_path is shared by the examples of one run
    out.unlink(missing_ok=True)
    run = run_cli(["export", str(path), "-o", str(out), "--force"], timeout=120)
    assert not run.hung, run.describe()
    assert run.code in (0, 1), run.describe()
    assert run.cpu_s <= CPU_LIMIT_S and run.rss_mb <= RSS_LIMIT_MB, run.describe()
    lines = [ln for ln in run.err_text.splitlines() if ln.startswith("tui-dicom")]
    assert (run.code == 0) == out.exists()
    if run.code == 1:
        assert len(lines) == 1 and path.name in lines[0], run.describe()


@pytest.mark.slow
def test_sigterm_restores_the_terminal(tmp_path: Path) -> None:
    """A viewer killed with SIGTERM leaves the alternate screen, shows the cursor and turns mouse
    reporting off before it exits (the bytes it writes last, in a pseudo-terminal)."""
    import pty
    import select
    import signal

    good = hostile_corpus.good_file(tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the viewer in the pseudo-terminal
        os.environ["PYTHONPATH"] = str(REPO)
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", "tui_dicom", "--renderer", "halfblock", str(good)])
    output = bytearray()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and b"\x1b[?1049h" not in output:
        ready, _w, _x = select.select([fd], [], [], 0.5)
        if ready:
            try:
                output += os.read(fd, 65536)
            except OSError:
                break
    assert b"\x1b[?1049h" in output, "the viewer never entered the alternate screen"
    time.sleep(1.0)
    os.kill(pid, signal.SIGTERM)
    tail = bytearray()
    while True:
        ready, _w, _x = select.select([fd], [], [], 10)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        tail += chunk
    _pid, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGTERM
    assert b"\x1b[?1049l" in tail and b"\x1b[?25h" in tail and b"\x1b[?1000l" in tail, bytes(tail[-200:])
