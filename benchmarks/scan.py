"""[scan] Folder scan without DICOMDIR, 2,000 files, warm cache: files/s.

Ours is ``tui_dicom.core.hierarchy.index.build_index([folder])`` in this process; references are a pydicom
``dcmread(stop_before_pixels=True)`` loop over the same files (walk included) in this process, and
DCMTK ``dcmmkdir`` writing a DICOMDIR for the folder (whole process, into a temporary folder).
A warm-up round of each fills the page cache first.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks import inputs
from benchmarks.common import Context, Missing, Row, at_least, interleaved, median, process_time, timed, tool

GOAL = 3000.0


def _walk(folder: str) -> list[str]:
    out = []
    for base, _dirs, files in os.walk(folder):
        out.extend(os.path.join(base, f) for f in files)
    return out


def run(ctx: Context) -> list[Row]:
    """Measure the group; returns its rows."""
    n = ctx.size(2000, 200)
    label = f"[scan] folder of {n:,} files, no DICOMDIR, warm cache"
    goal = f"≥ {GOAL:,.0f} files/s"
    try:
        root = inputs.ct_set(ctx.work, n, 200 if n >= 2000 else 100, log=ctx.log)
    except Missing as exc:
        return [Row(label, "files/s", None, "pydicom dcmread loop", None, None, goal, False, str(exc))]
    folder = str(root / "DATA")
    note = ""
    subjects = {}
    try:
        from tui_dicom.core.hierarchy.index import build_index

        def ours() -> float:
            holder = {}
            t = timed(lambda: holder.setdefault("h", build_index([folder])))
            found = holder["h"].instance_count()
            if found != n:
                raise RuntimeError(f"build_index found {found} instances, {n} expected")
            return t

        subjects["ours"] = ours
    except ImportError as exc:
        note = f"tui_dicom.core.hierarchy.index.build_index is not available ({exc})"

    def pydicom_loop() -> float:
        import pydicom

        def go() -> None:
            for f in _walk(folder):
                pydicom.dcmread(f, stop_before_pixels=True)

        return timed(go)

    subjects["pydicom"] = pydicom_loop
    tmp = tempfile.TemporaryDirectory(prefix="bench-scan-")
    try:
        dcmmkdir = tool("dcmmkdir")

        def mkdir() -> float:
            out = Path(tmp.name) / "DICOMDIR"
            out.unlink(missing_ok=True)
            return process_time([dcmmkdir, "-q", "+r", "+I", "+id", str(root), "+D", str(out), "DATA"])

        subjects["dcmmkdir"] = mkdir
    except Missing as exc:
        ctx.log(f"  {exc}")
    try:
        res = interleaved(subjects, ctx.runs)
    finally:
        tmp.cleanup()
    t_ours = median(res.get("ours", []))
    ours = n / t_ours if t_ours else None
    if ours is None and not note:
        note = "build_index failed (see the log above)"
    rows = []
    for ref_name, key in (
        ("pydicom dcmread(stop_before_pixels) loop", "pydicom"),
        ("dcmmkdir (whole process)", "dcmmkdir"),
    ):
        t_ref = median(res.get(key, []))
        ref = n / t_ref if t_ref else None
        rows.append(
            Row(
                f"{label} vs {key}",
                "files/s",
                ours,
                ref_name,
                ref,
                ours / ref if ours and ref else None,
                goal,
                at_least(ours, GOAL),
                note,
            )
        )
    return rows
