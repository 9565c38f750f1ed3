"""``python -m benchmarks [--quick] [--out FILE] [--only GROUP...]``: run the benchmarks, print a table, write JSON.

The JSON (default ``benchmarks/results.json``) has exactly this shape::

    {"machine": "...", "rows": [{"name", "unit", "ours", "reference", "reference_value",
                                 "ratio", "goal", "pass"}]}

``ratio`` is ``ours / reference_value``: below 1 means less time or fewer bytes than the reference;
for a rate (files/s) above 1 means faster. A row whose subject cannot be measured has
``ours: null`` and ``pass: false``, and the reason follows its goal text.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

from benchmarks import GROUPS
from benchmarks.common import REPO, Context, Row, editable_import_hook, machine

DEFAULT_OUT = REPO / "benchmarks" / "results.json"
WORK = REPO / "benchmarks" / "work"


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table (also readable as plain text)."""
    head = "| benchmark | ours | reference | ref. value | ratio | goal | pass |"
    lines = [head, "|---|---:|---|---:|---:|---|:---:|"]
    for r in rows:
        goal = f"{r.goal} ({r.note})" if r.note else r.goal
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        lines.append(
            f"| {r.name} | {_fmt(r.ours)} {r.unit} | {r.reference} | {_fmt(r.reference_value)} "
            f"| {ratio} | {goal} | {'yes' if r.passed else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen groups; returns the exit code (0 even when goals fail: benchmarks judge, not gate)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small inputs and 3 runs (CI keeps it working)")
    ap.add_argument(
        "--out", default=str(DEFAULT_OUT), help="JSON results file (default: benchmarks/results.json)"
    )
    ap.add_argument(
        "--only",
        nargs="+",
        choices=GROUPS,
        metavar="GROUP",
        help=f"run only these groups ({', '.join(GROUPS)})",
    )
    ap.add_argument("--runs", type=int, default=None, help="measured runs per figure (default: 5, quick: 3)")
    ap.add_argument("--work", default=str(WORK), help="where inputs are built (default: benchmarks/work)")
    args = ap.parse_args(argv)
    runs = args.runs or (3 if args.quick else 5)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    ctx = Context(quick=args.quick, runs=runs, work=work, log=log)
    hook = editable_import_hook()
    if hook:
        log(
            f"note: tui_dicom is an editable install with an import hook ({os.path.basename(hook)}): every "
            "start pays ~30 ms for it, which `pip install .` does not; reinstall with "
            "`pip install -e . --config-settings editable_mode=compat` for start-up figures users see"
        )
    rows: list[Row] = []
    for group in args.only or GROUPS:
        log(f"== {group}")
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{group}")
            got = module.run(ctx)
        except Exception as exc:  # noqa: BLE001 - one broken group must not lose the others
            traceback.print_exc()
            got = [
                Row(
                    f"[{group.replace('_', ' ')}] (group failed)",
                    "",
                    None,
                    "—",
                    None,
                    None,
                    "—",
                    False,
                    f"{type(exc).__name__}: {exc}",
                )
            ]
        for r in got:
            log(
                f"   {r.name}: {_fmt(r.ours)} {r.unit} (ref {_fmt(r.reference_value)}) "
                f"{'pass' if r.passed else 'FAIL'}{' — ' + r.note if r.note else ''}"
            )
        log(f"   ({time.perf_counter() - t0:.0f} s)")
        rows.extend(got)
    result = {"machine": machine(), "rows": [r.as_json() for r in rows]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out)
    print(f"Machine: {result['machine']}")
    print(f"Runs per figure: {runs} (median){' — quick mode: small inputs' if args.quick else ''}")
    print(table(rows))
    print(f"{sum(r.passed for r in rows)}/{len(rows)} rows meet their goal. JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
