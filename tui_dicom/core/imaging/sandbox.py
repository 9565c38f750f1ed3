"""Run a decoder that may run away in a child process with a CPU-time and an address-space limit.

openjpeg loops forever at 100 % CPU on some corrupt JPEG 2000 streams (a JP2 box length set to 0
is enough): in the viewer's process nothing else would decode again and ``q`` would no longer quit,
because a thread stuck in C cannot be interrupted. Such decodes go to one long-lived child process
(started on first use, so an ordinary session pays ~0.3 s once): it sets ``RLIMIT_AS`` to the
``decode_memory`` limit at start and ``RLIMIT_CPU`` to ``decode_seconds`` more than it has used
before every request, so a runaway decode is killed by the kernel; the parent also stops waiting
after a wall-clock timeout and kills it. A killed child is replaced on the next request.

Requests are pickled by the parent (the child trusts its parent); answers are a JSON header plus
raw array bytes, never a pickle, so a decoder compromised by a hostile stream cannot make the parent
run code.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tui_dicom.core import limits
from tui_dicom.core.errors import PixelDataError


@dataclass(frozen=True)
class FrameRequest:
    """One compressed frame and the Image Pixel values its decoder needs."""

    transfer_syntax: str
    data: bytes
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    high_bit: int
    pixel_representation: int
    photometric: str
    planar: int


_CHILD = r"""
import json, os, pickle, resource, struct, sys
sys.path[:0] = json.loads(sys.argv[2])
memory = int(sys.argv[1])
try:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
except (ValueError, OSError):
    pass
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 2)  # C decoders print there
from tui_dicom.core.imaging.sandbox import serve_one
inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = inp.read(8)
    if len(head) < 8:
        break
    (n,) = struct.unpack("<Q", head)
    request, seconds = pickle.loads(inp.read(n))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    soft = int(used + seconds) + 1
    try:
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard if hard == resource.RLIM_INFINITY else max(hard, soft)))
    except (ValueError, OSError):
        pass
    header, payload = serve_one(request)
    blob = json.dumps(header).encode()
    out.write(struct.pack("<QQ", len(blob), len(payload)) + blob)
    out.write(payload)
    out.flush()
"""


def serve_one(request: FrameRequest) -> tuple[dict[str, Any], bytes | memoryview]:
    """Decode ``request`` (in the child): ``(header, raw bytes)``; errors become a header."""
    try:
        arr = _decode_request(request)
        arr = np.ascontiguousarray(arr)
        raw: memoryview = arr.reshape(-1).view(np.uint8).data  # no copy
        return {"ok": True, "dtype": arr.dtype.str, "shape": list(arr.shape)}, raw
    except MemoryError:
        return {"ok": False, "error": "the decoder ran out of memory (limit decode-memory)"}, b""
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one line
        text = str(exc).strip().splitlines()
        return {"ok": False, "error": text[0][:300] if text else type(exc).__name__}, b""


def _decode_request(request: FrameRequest) -> np.ndarray:
    """Build a one-frame dataset and decode it exactly as the viewer does in process."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import UID

    from tui_dicom.core.imaging.pixels import _decode_pydicom

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(request.transfer_syntax)
    ds.Rows = request.rows
    ds.Columns = request.columns
    ds.SamplesPerPixel = request.samples
    ds.BitsAllocated = request.bits_allocated
    ds.BitsStored = request.bits_stored
    ds.HighBit = request.high_bit
    ds.PixelRepresentation = request.pixel_representation
    ds.PhotometricInterpretation = request.photometric
    if request.samples > 1:
        ds.PlanarConfiguration = request.planar
    ds.NumberOfFrames = 1
    ds.PixelData = encapsulate([request.data])
    ds["PixelData"].VR = "OB"
    ds.set_original_encoding(False, True)
    return _decode_pydicom(ds, request.transfer_syntax, 0, ds, 1)


class _Child:
    """The decoder child process, its pipes, and the lock that serialises requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        import json  # here and below, not at import: the viewer's start imports this module, rarely a child

        budget = limits.current()
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        env[limits.ENV_VAR] = limits.format_spec(budget)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(budget.decode_memory), json.dumps(sys.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        return self.proc

    def stop(self) -> None:
        """Kill the child (if any) and reap it, so its CPU time is counted to this process."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def close(self) -> None:
        """End the child politely (end of input), then make sure it is gone."""
        proc = self.proc
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.stop()

    def decode(self, request: FrameRequest, what: str) -> np.ndarray:
        budget = limits.current()
        seconds = budget.decode_seconds
        with self.lock:
            proc = self.proc if self.proc is not None and self.proc.poll() is None else self._start()
            assert proc.stdin is not None and proc.stdout is not None
            blob = pickle.dumps((request, seconds), protocol=pickle.HIGHEST_PROTOCOL)
            try:
                proc.stdin.write(struct.pack("<Q", len(blob)) + blob)
                proc.stdin.flush()
            except OSError:
                self.stop()
                raise PixelDataError(f"the {what} decoder process could not be started") from None
            # CPU is limited in the child; the wall-clock limit covers a child that sleeps or waits
            deadline = time.monotonic() + 3 * seconds + 10
            try:
                head = _read_exact(proc.stdout.fileno(), 16, deadline)
                hlen, plen = struct.unpack("<QQ", head)
                if hlen > 1 << 16 or plen > budget.frame_bytes * 8 + (1 << 20):
                    raise EOFError("answer too large")
                import json

                header = json.loads(_read_exact(proc.stdout.fileno(), hlen, deadline))
                payload = _read_exact(proc.stdout.fileno(), plen, deadline)
            except (EOFError, TimeoutError, ValueError, OSError) as exc:
                status = proc.poll()
                self.stop()
                status = proc.returncode if status is None else status
                raise PixelDataError(_death_reason(what, exc, status, seconds)) from None
        if not header.get("ok"):
            raise PixelDataError(f"cannot decode {what}: {header.get('error') or 'unknown error'}")
        try:
            arr = np.frombuffer(payload, dtype=np.dtype(header["dtype"]))  # writable: a bytearray
            return arr.reshape(tuple(int(v) for v in header["shape"]))
        except (TypeError, ValueError, KeyError) as exc:
            raise PixelDataError(f"the {what} decoder returned a malformed answer ({exc})") from None


def _death_reason(what: str, exc: BaseException, status: int | None, seconds: float) -> str:
    import signal

    if isinstance(exc, TimeoutError) or status in (-signal.SIGXCPU, -signal.SIGKILL):
        return (
            f"the {what} decoder did not finish within {seconds:g} s of CPU (a corrupt stream?); "
            f"stopped (raise with --resource-limit decode-seconds=N)"
        )
    if status is not None and status < 0:
        name = signal.Signals(-status).name if -status in signal.Signals._value2member_map_ else str(-status)
        return f"the {what} decoder crashed ({name}) on this stream"
    return f"the {what} decoder stopped without an answer (out of memory? limit decode-memory)"


def _read_exact(fd: int, size: int, deadline: float) -> bytearray:
    """Read ``size`` bytes from ``fd`` before ``deadline`` (monotonic), or raise."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _w, _x = select.select([fd], [], [], min(left, 1.0))
        if not ready:
            continue
        n = os.readv(fd, [view[got:]])
        if not n:
            raise EOFError
        got += n
    return buf


_child = _Child()
atexit.register(_child.close)


def decode(request: FrameRequest, what: str) -> np.ndarray:
    """Decode one frame in the child process.

    Raises:
        PixelDataError: the decoder failed, crashed, ran out of memory or out of time (one line).
    """
    return _child.decode(request, what)


def shutdown() -> None:
    """Stop the child now (the viewer quitting while a decode runs): waiting threads get an error."""
    _child.stop()
