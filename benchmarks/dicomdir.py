"""[dicomdir] DICOMDIR -> hierarchy at 2,000 and 10,000 images, against DCMTK ``dcmdump`` and pydicom ``FileSet``.

Ours is ``tui_dicom.core.hierarchy.index.build_index([cd_root])`` in this process (imports already warm);
``dcmdump`` is a whole process on the same DICOMDIR (its output discarded); ``FileSet`` is
``pydicom.fileset.FileSet(dcmread(DICOMDIR))`` in this process.
"""

from __future__ import annotations

from benchmarks import inputs
from benchmarks.common import (
    Context,
    Missing,
    Row,
    at_most,
    interleaved,
    median,
    process_time,
    ratio,
    timed,
    tool,
)

GOAL_MS = 150.0
GOAL_AT = 2000


def _ours(root: str, expected: int):  # noqa: ANN202
    try:
        from tui_dicom.core.hierarchy.index import build_index
    except ImportError as exc:
        raise Missing(f"tui_dicom.core.hierarchy.index.build_index is not available ({exc})") from exc

    def run() -> float:
        holder = {}
        t = timed(lambda: holder.setdefault("h", build_index([root])))
        found = holder["h"].instance_count()
        if found != expected:
            raise RuntimeError(f"build_index found {found} instances, {expected} expected")
        return t

    return run


def run(ctx: Context) -> list[Row]:
    """Measure the group; returns its rows."""
    rows: list[Row] = []
    for full, quick in ((2000, 200), (10000, 600)):
        n = ctx.size(full, quick)
        label = f"[dicomdir] DICOMDIR of {n:,} images → hierarchy"
        goal_ms = GOAL_MS * n / GOAL_AT
        goal = f"≤ {goal_ms:.0f} ms" + (
            "" if n == GOAL_AT else f" ({GOAL_MS:.0f} ms per 2,000 images, linear)"
        )
        note = ""
        try:
            root = inputs.cd(ctx.work, n, 200 if n >= 2000 else 100, log=ctx.log)
        except Missing as exc:
            rows.append(Row(label, "ms", None, "dcmdump (whole process)", None, None, goal, False, str(exc)))
            continue
        dicomdir = str(root / "DICOMDIR")
        subjects = {}
        try:
            subjects["ours"] = _ours(str(root), n)
        except Missing as exc:
            note = str(exc)
        try:
            dcmdump = tool("dcmdump")
            subjects["dcmdump"] = lambda: process_time([dcmdump, "-q", dicomdir])  # noqa: B023
        except Missing as exc:
            ctx.log(f"  {exc}")

        def fileset() -> float:
            import pydicom
            from pydicom.fileset import FileSet

            return timed(lambda: FileSet(pydicom.dcmread(dicomdir)))  # noqa: B023

        subjects["FileSet"] = fileset
        res = interleaved(subjects, ctx.runs)
        ours = median(res.get("ours", []))
        if ours is not None:
            ours *= 1000
        elif not note:
            note = "build_index failed (see the log above)"
        for ref_name, key in (("dcmdump (whole process)", "dcmdump"), ("pydicom FileSet", "FileSet")):
            ref = median(res.get(key, []))
            ref = ref * 1000 if ref is not None else None
            rows.append(
                Row(
                    f"{label} vs {key}",
                    "ms",
                    ours,
                    ref_name,
                    ref,
                    ratio(ours, ref),
                    goal,
                    at_most(ours, goal_ms),
                    note,
                )
            )
    return rows
