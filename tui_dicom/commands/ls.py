"""List what is in DICOMDIRs, folders, ZIP archives or files: patient > study > series, with counts.

A folder with a DICOMDIR is read through it (no image file is opened); other folders are scanned.
Several paths merge into one tree. Problems (missing files, refused File IDs, non-DICOM files,
unreadable files, symlink loops) are listed after the tree. Every value is printed with control
characters shown as escapes such as \\x1b. With --json the output is one JSON object:
{"patients":[{"patient_id","patient_name","studies":[{"study_instance_uid","study_date",
"study_description","series":[{"series_instance_uid","series_number","modality","series_description",
"instances":N,"frames":N}]}]}],"errors":[{"path","reason"}]}.
An archive (dicom://AET@HOST:PORT, http(s)://[USER@]HOST/PATH, NAME: from the config file) is queried
instead: studies matching the filters (--patient, --date...), then their series and instances (counted
per series); --limit N keeps N studies and says when more matched ("cut": true in the JSON).
Exit status: 0 everything was read, 1 some problem was found, 2 usage error (e.g. a missing path).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from tui_dicom.core.hierarchy.model import Hierarchy
from tui_dicom.core.safe import safe_path, safe_text

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
PROG = "tui-dicom ls"
# characters json.dumps(ensure_ascii=False) leaves raw but a terminal would act on
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``ls`` arguments to ``parser``."""
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="folder, DICOMDIR, ZIP archive or DICOM file"
    )
    parser.add_argument("--json", action="store_true", help="print the hierarchy as JSON")
    from tui_dicom.commands.remote import add_connection_arguments, add_filter_arguments

    add_filter_arguments(parser)
    add_connection_arguments(parser)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


def to_json_dict(hierarchy: Hierarchy) -> dict[str, Any]:
    """The ``--json`` shape of ``hierarchy`` (values as read, not escaped)."""
    return {
        "patients": [
            {
                "patient_id": p.patient_id,
                "patient_name": p.patient_name,
                "studies": [
                    {
                        "study_instance_uid": st.study_instance_uid,
                        "study_date": st.study_date,
                        "study_description": st.study_description,
                        "series": [
                            {
                                "series_instance_uid": se.series_instance_uid,
                                "series_number": se.series_number,
                                "modality": se.modality,
                                "series_description": se.series_description,
                                "instances": len(se.instances),
                                "frames": se.frame_count,
                            }
                            for se in st.series
                        ],
                    }
                    for st in p.studies
                ],
            }
            for p in hierarchy.patients
        ],
        "errors": [{"path": e.path, "reason": e.reason} for e in hierarchy.errors],
    }


def format_json(hierarchy: Hierarchy) -> str:
    """JSON text; every control or bidi character is a ``\\uXXXX`` escape (the value is unchanged)."""
    text = json.dumps(to_json_dict(hierarchy), ensure_ascii=False, indent=1)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def format_tree(hierarchy: Hierarchy) -> list[str]:
    """The tree as lines of plain, terminal-safe text."""
    lines: list[str] = []
    n_studies = n_series = n_instances = n_frames = 0
    for p in hierarchy.patients:
        name = safe_text(p.patient_name) or "(no name)"
        extra = [f"ID {safe_text(p.patient_id)}" if p.patient_id else "no ID"]
        if p.birth_date:
            extra.append(f"born {safe_text(p.birth_date)}")
        if p.sex:
            extra.append(safe_text(p.sex))
        lines.append(f"{name}  ({', '.join(extra)})  {_plural(len(p.studies), 'study', 'studies')}")
        for st in p.studies:
            n_studies += 1
            when = (
                " ".join(x for x in (safe_text(st.study_date), safe_text(st.study_time)) if x) or "(no date)"
            )
            desc = safe_text(st.study_description) or "(no description)"
            acc = f"  acc {safe_text(st.accession_number)}" if st.accession_number else ""
            lines.append(f"  {when}  {desc}{acc}  [{safe_text(st.study_instance_uid) or 'no UID'}]")
            for se in st.series:
                n_series += 1
                n_instances += len(se.instances)
                n_frames += se.frame_count
                number = f"#{se.series_number}" if se.series_number is not None else "#?"
                desc = safe_text(se.series_description)
                counts = _plural(len(se.instances), "instance")
                if se.frame_count != len(se.instances):
                    counts += f", {_plural(se.frame_count, 'frame')}"
                parts = [safe_text(se.modality) or "??", number]
                if desc:
                    parts.append(desc)
                lines.append(
                    f"    {' '.join(parts)}  ({counts})  [{safe_text(se.series_instance_uid) or 'no UID'}]"
                )
    lines.append(
        f"{_plural(len(hierarchy.patients), 'patient')}, "
        f"{_plural(n_studies, 'study', 'studies')}, {_plural(n_series, 'series', 'series')}, "
        f"{_plural(n_instances, 'instance')}, {_plural(n_frames, 'frame')}"
    )
    if hierarchy.errors:
        lines.append(f"{_plural(len(hierarchy.errors), 'problem')}:")
        for err in hierarchy.errors:
            lines.append(f"  {safe_path(err.path)}: {safe_text(err.reason)}")
    return lines


def remote_hierarchy(args: argparse.Namespace, text: str) -> tuple[Hierarchy, bool]:
    """Query an archive: matching studies, their series, and each series' instances (to count them).

    Returns:
        The hierarchy and whether the study list was cut at ``--limit``.
    """
    from tui_dicom.commands.remote import address_from, filters_from
    from tui_dicom.core.archive.connect import open_client
    from tui_dicom.core.archive.query import (
        hierarchy_from_studies,
        instances_from_records,
        series_from_records,
    )

    address = address_from(text, args)
    client = open_client(address, timeout=args.timeout)
    try:
        filters = filters_from(args)
        page = client.find_studies(filters, limit=args.limit)
        hierarchy = hierarchy_from_studies(page.studies)
        for patient in hierarchy.patients:
            for study in patient.studies:
                records = client.find_series(study.study_instance_uid, filters.series_uid)
                study.series = series_from_records(records)
                for series in study.series:
                    found = client.find_instances(study.study_instance_uid, series.series_instance_uid)
                    series.instances = instances_from_records(
                        found, lambda st, se, sop: Path(address.display, st, se, sop)
                    )
        return hierarchy, page.cut
    finally:
        client.close()


def run_remote(args: argparse.Namespace) -> int:
    """``tui-dicom ls URL``: the archive's answer in the same shapes as for a CD."""
    from tui_dicom.core.archive.errors import AddressError, ArchiveError

    if len(args.paths) != 1:
        print(f"{PROG}: list one archive at a time", file=sys.stderr)
        return EXIT_USAGE
    try:
        hierarchy, cut = remote_hierarchy(args, args.paths[0])
    except AddressError as exc:
        print(f"{PROG}: {safe_text(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except ArchiveError as exc:
        print(f"{PROG}: {safe_text(exc)}", file=sys.stderr)
        return EXIT_ERRORS
    if args.json:
        data = to_json_dict(hierarchy)
        data["cut"] = cut
        text = json.dumps(data, ensure_ascii=False, indent=1)
        sys.stdout.write(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")
    else:
        lines = format_tree(hierarchy)
        if cut:
            lines.append(f"results were cut at --limit {args.limit}: more studies match (narrow the filters)")
        sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """Run ``tui-dicom ls``; returns the exit status."""
    from tui_dicom.commands.remote import is_remote
    from tui_dicom.core.dicom.source import access_problem

    if any(is_remote(p) for p in args.paths) and not any(os.path.lexists(p) for p in args.paths):
        return run_remote(args)
    problems = [(p, access_problem(p)) for p in args.paths]
    if any(exc is not None for _p, exc in problems):
        for path, exc in problems:
            if isinstance(exc, FileNotFoundError):
                print(f"{PROG}: no such file or folder: {safe_path(path)}", file=sys.stderr)
            elif exc is not None:
                print(f"{PROG}: {safe_path(path)}: {safe_text(exc.strerror or exc)}", file=sys.stderr)
        return EXIT_USAGE
    from tui_dicom.core.hierarchy.index import build_index

    hierarchy = build_index(args.paths)
    out = sys.stdout
    if args.json:
        out.write(format_json(hierarchy) + "\n")
    else:
        out.write("\n".join(format_tree(hierarchy)) + "\n")
    out.flush()
    return EXIT_ERRORS if hierarchy.errors else EXIT_OK
