"""[dump] ``tui-dicom dump FILE`` as a whole process, against DCMTK ``dcmdump`` and ``pydicom show``.

The file is a real 512² CT slice (``../shared/data/ge_ct_head/01.dcm``); every command's output
goes to a file that is discarded. Each process is measured by its own CPU time (user + system, from
``wait4``), which a loaded machine barely moves, unlike wall time. Goals: ≤ 2.5× ``dcmdump`` (a
native tool: the whole Python start-up is in our figure) and faster than ``pydicom show``.
"""

from __future__ import annotations

from benchmarks import inputs
from benchmarks.common import (
    Context,
    Missing,
    Row,
    interleaved,
    median,
    process_cpu,
    ratio,
    tool,
    tui_dicom_cmd,
    venv_script,
)

GOAL_VS_DCMDUMP = 2.5


def run(ctx: Context) -> list[Row]:
    """Measure the group; returns its rows."""
    label = "[dump] one CT file, whole process (CPU time)"
    try:
        path = str(inputs.ct_sources()[0])
    except Missing as exc:
        return [
            Row(
                label,
                "ms",
                None,
                "pydicom show (whole process)",
                None,
                None,
                "≤ 2.5× dcmdump, < 1× pydicom show",
                False,
                str(exc),
            )
        ]
    ours_cmd = [*tui_dicom_cmd(), "dump", path]
    subjects = {}
    note = ""
    try:
        import tui_dicom.commands.dump  # noqa: F401
    except ImportError as exc:
        note = f"tui-dicom dump is not available ({exc})"
    else:
        subjects["ours"] = lambda: process_cpu(ours_cmd)
    try:
        dcmdump = tool("dcmdump")
        subjects["dcmdump"] = lambda: process_cpu([dcmdump, path])
    except Missing as exc:
        ctx.log(f"  {exc}")
    pyd = venv_script("pydicom")
    if pyd:
        subjects["pydicom show"] = lambda: process_cpu([pyd, "show", path])
    res = interleaved(subjects, ctx.runs)
    ours = median(res.get("ours", []))
    ours = ours * 1000 if ours is not None else None
    if ours is None and not note:
        note = "tui-dicom dump failed (see the log above)"
    rows = []
    for key, ref_name, goal, limit in (
        ("pydicom show", "pydicom show (whole process)", "ratio < 1 vs pydicom show", 1.0),
        ("dcmdump", "dcmdump (whole process)", f"≤ {GOAL_VS_DCMDUMP}× dcmdump", GOAL_VS_DCMDUMP),
    ):
        ref = median(res.get(key, []))
        ref = ref * 1000 if ref is not None else None
        r = ratio(ours, ref)
        rows.append(
            Row(f"{label} vs {key}", "ms", ours, ref_name, ref, r, goal, r is not None and r <= limit, note)
        )
    return rows
