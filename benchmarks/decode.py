"""[decode] Read + decode + window of one 512² CT slice per transfer syntax, ms per frame.

Ours is ``decode_frame(FileRef(path))`` then ``windowing.render(frame)`` (the file's window) in this
process; the reference is DCMTK ``dcmj2pnm`` (``dcml2pnm`` for JPEG-LS) rendering the same file with
its own first window to a PGM, as a whole process. DCMTK cannot read JPEG 2000, so the JPEG 2000
file is compared with ``dcmj2pnm`` on its uncompressed twin (pydicom-data ``693_UNCR.dcm``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

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

GOAL_NATIVE_MS = 15.0
GOAL_COMPRESSED_MS = 40.0
NATIVE = (
    "explicit VR little endian",
    "implicit VR little endian",
    "explicit VR big endian",
    "693 uncompressed (J2K twin)",
)


def run(ctx: Context) -> list[Row]:
    """Measure the group; returns its rows."""
    try:
        files = inputs.transfer_syntaxes(ctx.work, log=ctx.log)
    except Missing as exc:
        return [
            Row(
                "[decode] 512² CT slice",
                "ms",
                None,
                "dcmj2pnm (whole process)",
                None,
                None,
                f"≤ {GOAL_NATIVE_MS:.0f} ms",
                False,
                str(exc),
            )
        ]
    note = ""
    try:
        from tui_dicom.core.dicom.source import FileRef
        from tui_dicom.core.imaging.pixels import decode_frame
        from tui_dicom.core.imaging.windowing import render
    except ImportError as exc:
        decode_frame = None  # type: ignore[assignment]
        note = f"tui_dicom.core.imaging.pixels / windowing not available ({exc})"
    tmp = tempfile.TemporaryDirectory(prefix="bench-decode-")
    rows: list[Row] = []
    try:
        for label, path in files.items():
            subjects = {}
            if decode_frame is not None:

                def ours(p: Path = path) -> float:
                    return timed(lambda: render(decode_frame(FileRef(str(p)))))

                subjects["ours"] = ours
            ref_file = files.get("693 uncompressed (J2K twin)") if "JPEG 2000" in label else path
            ref_tool = "dcml2pnm" if "JPEG-LS" in label else "dcmj2pnm"
            ref_name = f"{ref_tool} +Wi 1 (whole process)"
            if ref_file != path:
                ref_name += " on the uncompressed twin (DCMTK has no JPEG 2000)"
            try:
                exe = tool(ref_tool)
                out = str(Path(tmp.name) / "out.pgm")

                def ref(f: Path | None = ref_file, exe: str = exe, out: str = out) -> float:
                    return process_time([exe, "-q", "+Wi", "1", str(f), out])

                if ref_file is not None:
                    subjects["ref"] = ref
            except Missing as exc:
                ctx.log(f"  {exc}")
            res = interleaved(subjects, ctx.runs)
            o = median(res.get("ours", []))
            o = o * 1000 if o is not None else None
            r = median(res.get("ref", []))
            r = r * 1000 if r is not None else None
            goal_ms = GOAL_NATIVE_MS if label in NATIVE else GOAL_COMPRESSED_MS
            if goal_ms == GOAL_COMPRESSED_MS and "JPEG 2000" not in label:
                goal_txt = f"≤ {goal_ms:.0f} ms (compressed, as JPEG 2000)"
            else:
                goal_txt = f"≤ {goal_ms:.0f} ms"
            row_note = note or ("" if o is not None else "decode failed (see the log above)")
            rows.append(
                Row(
                    f"[decode] 512² CT, {label}",
                    "ms",
                    o,
                    ref_name,
                    r,
                    ratio(o, r),
                    goal_txt,
                    at_most(o, goal_ms),
                    row_note,
                )
            )
    finally:
        tmp.cleanup()
    return rows
