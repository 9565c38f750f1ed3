"""[archive] A series from a local Orthanc: C-GET, C-MOVE and WADO-RS beside DCMTK ``getscu``/``movescu`` and
``curl``, in one run against the same server and the same series.

Inputs: one series of N real CT slices (512², copies of ``ge_ct_head`` under new UIDs; N = 120, quick 30)
and one of 3N for the memory row, uploaded to an Orthanc started for the run (the test helper
``tests/orthanc.py``: Debian's Orthanc on free loopback ports, as an unprivileged user).

Rows, each method against its reference tool fetching the whole series:

- *first picture*: from asking for the series to its first slice decoded and windowed, in a process
  where the viewer already runs (imports done, as when a user opens a series) — goal ≤ 0.3× the
  reference's time for the whole series;
- *whole series*: ``tui-dicom get`` as a process (start-up included) against ``getscu``/``movescu``/``curl``
  as processes — goal ≤ 1.2×;
- *memory*: peak RSS of ``tui-dicom get`` (C-GET and WADO-RS) for the 3N-slice series over the N-slice
  one — flat means ≤ 1.2× (instances are written as they arrive, never held).

The WADO-RS row's note gives the floors under it, timed in the same rounds: a Python that starts and
only imports what that path cannot do without (the standard library's ``urllib.request``, json and
python-multipart), and a minimal Python retrieve — one ``http.client`` request, python-multipart's
parser, one file per part written under a temporary name and renamed, no query, no naming, no checks
(``MINIMAL_RETRIEVE``): what any Python client that writes one file per instance pays on this machine.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import inputs
from benchmarks.common import (
    REPO,
    Context,
    Missing,
    Row,
    at_most,
    interleaved,
    median,
    ratio,
    tool,
    tui_dicom_cmd,
)

GOAL_FIRST = 0.3
GOAL_WHOLE = 1.2
GOAL_RSS = 1.2
ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
#: the imports the WADO-RS path of ``tui-dicom get`` cannot do without (the import floor)
FLOOR_IMPORTS = "import urllib.request, json, python_multipart.multipart"
#: the least a Python client does to write one file per instance (argv: host port path accept auth folder)
MINIMAL_RETRIEVE = """
import http.client, os, sys
from python_multipart.multipart import MultipartParser, parse_options_header
host, port, path, accept, auth, out = sys.argv[1:7]
conn = http.client.HTTPConnection(host, int(port))
conn.request("GET", path, headers={"Accept": accept, "Authorization": auth})
answer = conn.getresponse()
assert answer.status == 200, answer.status
boundary = parse_options_header(answer.getheader("Content-Type"))[1][b"boundary"]
part = {"n": 0, "fd": -1}
def begin():
    part["n"] += 1
    part["fd"] = os.open(f"{out}/.part{part['n']}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
def data(chunk, start, end):
    os.write(part["fd"], memoryview(chunk)[start:end])
def end():
    os.close(part["fd"])
    os.replace(f"{out}/.part{part['n']}", f"{out}/{part['n']}.dcm")
parser = MultipartParser(boundary, {"on_part_begin": begin, "on_part_data": data, "on_part_end": end})
while chunk := answer.read1(1 << 20):
    parser.write(chunk)
parser.finalize()
"""


def _orthanc_module() -> Any:
    sys.path.insert(0, str(REPO / "tests"))
    try:
        import orthanc  # the test helper: starts Debian's Orthanc unprivileged on free ports
    finally:
        sys.path.pop(0)
    reason = orthanc.available()
    if reason:
        raise Missing(reason)
    return orthanc


def _series_files(work: Path, n: int, log: Any) -> list[Path]:
    root = inputs.ct_set(work, n, n, log=log)
    return sorted((root / "DATA").rglob("I*"))


def _uids(files: list[Path]) -> tuple[str, str]:
    import pydicom

    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, resource.struct_rusage]:
    """(wall seconds, resource usage) of one child process, which must exit 0."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {(err.strip().splitlines() or [''])[-1]}")
    return elapsed, usage


def _peak_rss_mb(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Peak RSS in MB of one child process, measured through the tests' small launcher.

    Started straight from this process, a child reports at least this process's own peak (Linux keeps
    the high-water mark of the address space it replaces at exec): ~100 MB here, whatever the child
    did. The launcher in between is a bare Python, so only its ~10 MB remain under the figure.
    """
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from hostile_corpus import MEASURING_LAUNCHER
    finally:
        sys.path.pop(0)
    with tempfile.TemporaryDirectory() as tmp:
        usage = Path(tmp) / "usage"
        _run([sys.executable, "-c", MEASURING_LAUNCHER, str(usage), *cmd], env)
        return int(usage.read_text().split()[1]) / 1024


def _fresh_dir(base: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=base))


def _count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def run(ctx: Context) -> list[Row]:
    """Measure the group; returns its rows."""
    n = ctx.size(120, 30)
    label = f"[archive] {n}-slice CT series from a local Orthanc"
    try:
        orthanc = _orthanc_module()
        for name in ("getscu", "movescu", "curl"):
            tool(name)
        files = _series_files(ctx.work, n, ctx.log)
        big_files = _series_files(ctx.work, 3 * n, ctx.log)
    except Missing as exc:
        return [
            Row(label, "s", None, "getscu / movescu / curl", None, None, f"≤ {GOAL_WHOLE}×", False, str(exc))
        ]
    server = orthanc.OrthancServer.start()
    scratch = Path(tempfile.mkdtemp(prefix="tui-dicom-bench-archive-"))
    try:
        ctx.log(f"  uploading {len(files) + len(big_files)} instances to Orthanc ...")
        for f in files + big_files:
            server.upload(f)
        return _measure(ctx, server, files, big_files, scratch, label)
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _measure(
    ctx: Context, server: Any, files: list[Path], big_files: list[Path], scratch: Path, label: str
) -> list[Row]:
    from tui_dicom.core.archive.address import parse_address
    from tui_dicom.core.archive.browse import ArchiveBrowser, ArchiveSession
    from tui_dicom.core.hierarchy.model import SliceRef
    from tui_dicom.core.session.slice_loader import SliceLoader, SliceRequest

    study, series = _uids(files)
    big_study, big_series = _uids(big_files)
    n = len(files)
    dicom_url = f"dicom://{server.aet}@127.0.0.1:{server.dicom_port}"
    web_url = server.dicomweb_url.replace("://", f"://{server.user}@")
    env = dict(os.environ, TUI_DICOM_PASSWORD=server.password, XDG_CACHE_HOME=str(scratch / "xdg"))
    # Python children run as from an install, with their modules' bytecode cached (pip compiles it; an
    # environment with PYTHONDONTWRITEBYTECODE would compile every module from source on every start),
    # kept in the scratch folder so nothing is written into the repository; the warm-up round fills it
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    os.environ["TUI_DICOM_PASSWORD"] = server.password
    move_port = server.scp_port

    def first_picture(kind: str) -> float:
        """Seconds from asking for the series to its first windowed picture (imports already done)."""
        if kind == "wado":
            address = parse_address(web_url, config={})
        else:
            address = parse_address(dicom_url, config={}, retrieve=kind, move_port=move_port)
        cache_root = _fresh_dir(scratch)
        os.environ["XDG_CACHE_HOME"] = str(cache_root)
        browser = ArchiveBrowser(ArchiveSession(address=address, timeout=30))
        browser.series_of(study)  # done when the study was expanded, before a series is opened
        cancel = threading.Event()
        t0 = time.perf_counter()
        elapsed = None
        got = 0
        for progress in browser.fetch_series(study, series, cancel, every=0.0):
            if progress.error:
                raise RuntimeError(progress.error)
            if elapsed is None and progress.instances:
                loader = SliceLoader(64 * 1024**2)
                result = loader.load(SliceRequest(1, SliceRef(progress.instances[0], 0)))
                if result is None or result.picture is None:
                    raise RuntimeError(f"first slice not decoded: {result and result.error}")
                elapsed = time.perf_counter() - t0
            got = progress.arrived
        browser.close()
        shutil.rmtree(cache_root, ignore_errors=True)
        if elapsed is None or got != n:
            raise RuntimeError(f"{got} of {n} instances arrived")
        return elapsed

    def ours_get(kind: str, study_uid: str, series_uid: str, rss: bool = False) -> float:
        """Seconds of one ``tui-dicom get`` process (with ``rss``: its peak RSS in MB instead)."""
        out = scratch / f"ours-{kind}-{time.monotonic_ns()}"
        url = web_url if kind == "wado" else dicom_url
        cmd = [*tui_dicom_cmd(), "get", url, "--series", series_uid, "-o", str(out), "-q"]
        if kind == "move":
            cmd += ["--retrieve", "move", "--move-port", str(move_port)]
        value = _peak_rss_mb(cmd, env) if rss else _run(cmd, env)[0]
        count = _count_files(out)
        shutil.rmtree(out, ignore_errors=True)
        if count != (n if series_uid == series else 3 * n):
            raise RuntimeError(f"tui-dicom get wrote {count} files")
        return value

    def python_floor() -> float:
        """Seconds for a Python that starts and imports what the WADO-RS path needs, nothing else."""
        return _run([sys.executable, "-c", FLOOR_IMPORTS], env)[0]

    def minimal_retrieve() -> float:
        """Seconds for the least Python retrieve of the series that writes one file per instance."""
        import base64

        out = _fresh_dir(scratch)
        auth = "Basic " + base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
        path = f"/dicom-web/studies/{study}/series/{series}"
        seconds = _run([sys.executable, "-c", MINIMAL_RETRIEVE, "127.0.0.1", str(server.http_port), path,
                        ACCEPT, auth, str(out)], env)[0]  # fmt: skip
        count = _count_files(out)
        shutil.rmtree(out, ignore_errors=True)
        if count != n:
            raise RuntimeError(f"the minimal retrieve wrote {count} files")
        return seconds

    def reference(kind: str) -> float:
        out = _fresh_dir(scratch)
        keys = [
            "-k",
            "QueryRetrieveLevel=SERIES",
            "-k",
            f"StudyInstanceUID={study}",
            "-k",
            f"SeriesInstanceUID={series}",
        ]
        if kind == "get":
            cmd = [
                "getscu",
                "-S",
                "-aet",
                "TUIDICOM",
                "-aec",
                server.aet,
                "-od",
                str(out),
                *keys,
                "127.0.0.1",
                str(server.dicom_port),
            ]
        elif kind == "move":
            cmd = ["movescu", "-S", "+xa", "-aet", "TUIDICOM", "-aec", server.aet, "-aem", "TUIDICOM", "+P", str(move_port),
                   "-od", str(out), *keys, "127.0.0.1", str(server.dicom_port)]  # fmt: skip
        else:
            url = f"{server.dicomweb_url}/studies/{study}/series/{series}"
            cmd = [
                "curl",
                "-sf",
                "-u",
                f"{server.user}:{server.password}",
                "-H",
                f"Accept: {ACCEPT}",
                "-o",
                str(out / "series.multipart"),
                url,
            ]
        seconds, _ = _run(cmd)
        if kind != "wado" and _count_files(out) != n:
            raise RuntimeError(f"{cmd[0]} wrote {_count_files(out)} files")
        shutil.rmtree(out, ignore_errors=True)
        return seconds

    # quick mode (CI keeps it working): two measured runs, no warm-up round
    runs, warmup = (min(ctx.runs, 2), 0) if ctx.quick else (ctx.runs, 1)
    rows: list[Row] = []
    names = {
        "get": ("C-GET", "DCMTK getscu"),
        "move": ("C-MOVE", "DCMTK movescu"),
        "wado": ("WADO-RS", "curl"),
    }
    for kind, (method, ref_name) in names.items():
        ctx.log(f"  {method} ...")
        subjects: dict[str, Callable[[], float]] = {
            "first": partial(first_picture, kind),
            "whole": partial(ours_get, kind, study, series),
            "ref": partial(reference, kind),
        }
        if kind == "wado":
            subjects["floor"] = python_floor
            subjects["minimal"] = minimal_retrieve
        got = interleaved(subjects, runs, warmup)
        first, whole, ref = median(got["first"]), median(got["whole"]), median(got["ref"])
        floor, minimal = median(got.get("floor", [])), median(got.get("minimal", []))
        notes = []
        if floor is not None:
            notes.append(f"Python start + stdlib HTTP and python-multipart imports alone: {floor:.2f} s "
                         f"({ratio(floor, ref) or 0:.2f}× curl)")  # fmt: skip
        if minimal is not None:
            notes.append(f"a minimal Python retrieve writing one file per instance: {minimal:.2f} s "
                         f"({ratio(minimal, ref) or 0:.2f}× curl)")  # fmt: skip
        note = "; ".join(notes)
        ref_text = f"{ref_name}, whole series" + (" (one multipart file)" if kind == "wado" else "")
        r1 = ratio(first, ref)
        rows.append(Row(f"{label}: {method} first picture (viewer running)", "s", first, ref_text, ref, r1,
                        f"≤ {GOAL_FIRST}× reference", at_most(r1, GOAL_FIRST)))  # fmt: skip
        r2 = ratio(whole, ref)
        rows.append(Row(f"{label}: {method} whole series (tui-dicom get process)", "s", whole, ref_text, ref, r2,
                        f"≤ {GOAL_WHOLE}× reference", at_most(r2, GOAL_WHOLE), note))  # fmt: skip

    for kind, method in (("get", "C-GET"), ("wado", "WADO-RS")):
        ctx.log(f"  memory ({method}) ...")
        rss = interleaved(
            {
                "small": partial(ours_get, kind, study, series, True),
                "big": partial(ours_get, kind, big_study, big_series, True),
            },
            max(1, runs // 2),
            warmup,
        )
        small, big = median(rss["small"]), median(rss["big"])
        r3 = ratio(big, small)
        rows.append(
            Row(f"[archive] peak RSS of tui-dicom get, {3 * n} vs {n} slices ({method})", "MB", big,
                f"the same for {n} slices", small, r3, f"≤ {GOAL_RSS}× (flat in series length)",
                at_most(r3, GOAL_RSS))
        )  # fmt: skip
    return rows
