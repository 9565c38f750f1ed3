"""[dump] ``tui-dicom dump FILE`` as a whole process, against DCMTK ``dcmdump`` and ``pydicom show``.

The file is a real 512² CT slice (``../shared/data/ge_ct_head/01.dcm``); every command's output
goes to a pipe that is read and discarded. Goal: faster than ``pydicom show`` (ratio < 1).
"""

from __future__ import annotations

from benchmarks import inputs
from benchmarks.common import (
    Context,
    Missing,
    Row,
    interleaved,
    median,
    process_output,
    ratio,
    tool,
    tui_dicom_cmd,
    venv_script,
)


def run(ctx: Context) -> list[Row]:
    """Measure the group; returns its rows."""
    label = "[dump] one CT file, whole process"
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
                "ratio < 1 vs pydicom show",
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
        subjects["ours"] = lambda: process_output(ours_cmd)[0]
    try:
        dcmdump = tool("dcmdump")
        subjects["dcmdump"] = lambda: process_output([dcmdump, path])[0]
    except Missing as exc:
        ctx.log(f"  {exc}")
    pyd = venv_script("pydicom")
    if pyd:
        subjects["pydicom show"] = lambda: process_output([pyd, "show", path])[0]
    res = interleaved(subjects, ctx.runs)
    ours = median(res.get("ours", []))
    ours = ours * 1000 if ours is not None else None
    if ours is None and not note:
        note = "tui-dicom dump failed (see the log above)"
    ref_show = median(res.get("pydicom show", []))
    ref_show = ref_show * 1000 if ref_show is not None else None
    rows = []
    for key, ref_name in (
        ("pydicom show", "pydicom show (whole process)"),
        ("dcmdump", "dcmdump (whole process)"),
    ):
        ref = median(res.get(key, []))
        ref = ref * 1000 if ref is not None else None
        r_show = ratio(ours, ref_show)
        rows.append(
            Row(
                f"{label} vs {key}",
                "ms",
                ours,
                ref_name,
                ref,
                ratio(ours, ref),
                "ratio < 1 vs pydicom show",
                r_show is not None and r_show < 1,
                note,
            )
        )
    return rows
