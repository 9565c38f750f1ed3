"""Write a de-identified copy of studies to share them, e.g. for a second opinion: a CD-like folder
(DICOMDIR plus DICOM/... files) or, when OUT ends in .zip, a ZIP of it. DICOM PS3.15 Annex E Basic
Application Level Confidentiality Profile, by default with Retain Longitudinal Temporal Information
with Modified Dates (each patient's dates moved by the same number of days) and Retain Patient
Characteristics (age, sex, size, weight); --profile basic for the bare profile, and a flag per option.
UIDs are replaced consistently (references between the files still resolve); with the same --secret
(or TUI_DICOM_DEID_SECRET) the same inputs get the same UIDs, pseudonyms and date shifts in every
export. Images that may show burned-in text (US, XA, secondary capture without Burned In Annotation
NO) stop the export unless --allow-burned-in. Inputs are never written; OUT appears only when
complete. Files that cannot be de-identified are listed and left out. Exit status: 0 all exported,
1 some files left out or the export refused, 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from tui_dicom.core.safe import safe_path, safe_text

if TYPE_CHECKING:
    from tui_dicom.core.deid.mask import Mask
    from tui_dicom.core.deid.table import Option

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
PROG = "tui-dicom anonymize"
SECRET_ENV = "TUI_DICOM_DEID_SECRET"

#: flag -> Option name, in help order
OPTION_FLAGS = {
    "retain-modified-dates": "RETAIN_LONG_MODIFIED_DATES",
    "retain-full-dates": "RETAIN_LONG_FULL_DATES",
    "retain-patient-characteristics": "RETAIN_PATIENT_CHARACTERISTICS",
    "retain-device-identity": "RETAIN_DEVICE_IDENTITY",
    "retain-institution-identity": "RETAIN_INSTITUTION_IDENTITY",
    "retain-safe-private": "RETAIN_SAFE_PRIVATE",
    "retain-uids": "RETAIN_UIDS",
    "clean-descriptors": "CLEAN_DESCRIPTORS",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``anonymize`` options to ``parser``."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="folder, DICOMDIR, ZIP archive or file")
    parser.add_argument(
        "-o", "--output", metavar="OUT", required=True, help="new folder to write, or OUT.zip for a ZIP"
    )
    parser.add_argument(
        "--profile",
        choices=("second-opinion", "basic"),
        default="second-opinion",
        help="second-opinion (default): Basic Profile + Retain Longitudinal Temporal Information with "
        "Modified Dates + Retain Patient Characteristics; basic: the bare Basic Profile",
    )
    from tui_dicom.core.deid.table import Option

    for flag, name in OPTION_FLAGS.items():
        parser.add_argument(
            f"--{flag}",
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"add the {Option[name].meaning} (--no-{flag} drops it)",
        )
    parser.add_argument(
        "--secret",
        metavar="TEXT",
        help=f"key for UIDs, pseudonyms and date shifts (default ${SECRET_ENV}, else random per export)",
    )
    parser.add_argument(
        "--shift-days",
        type=int,
        metavar="N",
        help="move every date by N days (default: per patient, from the secret)",
    )
    parser.add_argument(
        "--patient-name", metavar="NAME", help="Patient's Name to write (default: a pseudonym)"
    )
    parser.add_argument("--patient-id", metavar="ID", help="Patient ID to write (default: a pseudonym)")
    parser.add_argument(
        "--allow-burned-in",
        action="store_true",
        help="export images that may show burned-in text (check them before sharing)",
    )
    parser.add_argument(
        "--mask",
        action="append",
        type=_mask,
        default=[],
        metavar="[SEL=]X,Y,W,H",
        help="black out a rectangle (pixels) of burned-in text: in every flagged image, or only in the "
        "series SEL (a Series Instance UID) or the file SEL; repeatable; masked images are stored uncompressed",
    )
    parser.add_argument("--report", metavar="FILE", help="also write the report (with input paths) to FILE")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _mask(text: str) -> Mask:
    from tui_dicom.core.deid.mask import parse_mask

    try:
        return parse_mask(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def chosen_options(args: argparse.Namespace) -> frozenset[Option]:
    """The options from --profile and the per-option flags."""
    from tui_dicom.core.deid.engine import SECOND_OPINION
    from tui_dicom.core.deid.table import Option

    options = set(SECOND_OPINION) if args.profile == "second-opinion" else set()
    for flag, name in OPTION_FLAGS.items():
        value = getattr(args, flag.replace("-", "_"))
        if value is True:
            options.add(Option[name])
        elif value is False:
            options.discard(Option[name])
    if args.retain_full_dates and args.retain_modified_dates is not True:
        options.discard(Option.RETAIN_LONG_MODIFIED_DATES)
    return frozenset(options)


def _print_err(text: str) -> None:
    print(f"{PROG}: {text}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``tui-dicom anonymize``; returns the exit status."""
    import secrets

    from tui_dicom.core.deid.engine import Settings
    from tui_dicom.core.deid.export import BurnedInRefused, Exporter, ExportRefused, OutputRefused
    from tui_dicom.core.deid.table import DATE_OPTIONS

    missing = [p for p in args.paths if not os.path.lexists(p)]
    if missing:
        for path in missing:
            _print_err(f"no such file or folder: {safe_path(path)}")
        return EXIT_USAGE
    options = chosen_options(args)
    if all(o in options for o in DATE_OPTIONS):
        _print_err("--retain-full-dates and --retain-modified-dates exclude each other")
        return EXIT_USAGE
    secret_text = args.secret if args.secret is not None else os.environ.get(SECRET_ENV)
    secret = secret_text.encode("utf-8") if secret_text else secrets.token_bytes(32)
    settings = Settings(
        secret=secret,
        options=options,
        shift_days=args.shift_days,
        patient_name=args.patient_name,
        patient_id=args.patient_id,
    )
    from tui_dicom.core.hierarchy.index import build_index

    hierarchy = build_index(args.paths)
    refs = [inst.ref for se in hierarchy.all_series() for inst in se.instances]
    prior = [(e.path, e.reason) for e in hierarchy.errors]
    last = [-1]

    def progress(done: int, total: int) -> None:
        pct = 100 * done // max(total, 1)
        if not args.quiet and pct != last[0] and sys.stderr.isatty():
            last[0] = pct
            print(f"\r{PROG}: {pct:3d}%", end="", file=sys.stderr, flush=True)

    try:
        exporter = Exporter(
            refs,
            args.output,
            settings,
            inputs=args.paths,
            force=args.force,
            allow_burned_in=args.allow_burned_in,
            report=args.report,
            prior_errors=prior,
            progress=progress,
            secret_given=bool(secret_text),
            masks=args.mask,
        )
        result = exporter.run()
    except BurnedInRefused as exc:
        if last[0] >= 0:
            print(file=sys.stderr)
        _print_err(f"nothing written: {exc}:")
        for ref in exc.refs:
            print(f"  {ref.display}", file=sys.stderr)
        _print_err("check them; --mask X,Y,W,H blacks out text, --allow-burned-in exports them as they are")
        return EXIT_ERRORS
    except ExportRefused as exc:
        if last[0] >= 0:
            print(file=sys.stderr)
        _print_err(f"nothing written: {safe_text(exc)}")
        return EXIT_USAGE if isinstance(exc, OutputRefused) else EXIT_ERRORS
    if last[0] >= 0:
        print(file=sys.stderr)
    print(
        f"Wrote {safe_path(result.out)}: {result.patients} patient(s), {result.studies} study(ies), "
        f"{result.series} series, {result.instances} instance(s)."
    )
    if result.burned_in:
        print(f"{len(result.burned_in)} image(s) may show burned-in text: check them before sharing.")
    if result.masked:
        print(f"{result.masked} image(s) had rectangles blacked out.")
    if not secret_text:
        print(
            f"A random secret was used: set --secret or ${SECRET_ENV} to get the same UIDs in every export."
        )
    if result.dropped:
        print(f"{len(result.dropped)} file(s) left out:")
        for d in result.dropped:
            print(f"  {safe_path(d.path)}: {safe_text(d.reason)}")
    return EXIT_ERRORS if result.dropped else EXIT_OK
