"""Copy a study or a series from an archive into a new folder: one file per instance, as the archive sent
it (DIR/SERIES_UID/SOP_UID.dcm), and nothing else. The archive is dicom://CALLED_AET@HOST:PORT (C-GET by
default, --retrieve move for C-MOVE to a local Storage SCP on --move-port), http(s)://[USER@]HOST/PATH
(WADO-RS) or NAME: from the config file. Passwords come from TUI_DICOM_PASSWORD / TUI_DICOM_TOKEN,
~/.netrc or the config file, never from the command line. A retrieve that stops half way keeps what
arrived and lists what did not. Exit status: 0 all retrieved, 1 failure or incomplete, 2 usage error."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tui_dicom.commands.remote import add_connection_arguments, address_from
from tui_dicom.core.safe import safe_path, safe_text

if TYPE_CHECKING:
    from tui_dicom.core.archive.query import ArchiveClient, SeriesRecord

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
PROG = "tui-dicom get"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``get`` arguments to ``parser``."""
    parser.add_argument("archive", metavar="URL", help="dicom://AET@HOST:PORT, http(s)://HOST/PATH or NAME:")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--study", metavar="UID", help="retrieve this study")
    which.add_argument("--series", metavar="UID", help="retrieve this series")
    parser.add_argument("-o", "--output", metavar="DIR", required=True, help="new (or empty) folder to write")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    add_connection_arguments(parser)


def _fail(message: str) -> int:
    print(f"{PROG}: {safe_text(message)}", file=sys.stderr)
    return EXIT_ERRORS


def _missing(
    client: ArchiveClient, study_uid: str, series: list[SeriesRecord], received: list[str]
) -> list[str]:
    """SOP Instance UIDs the archive lists for ``series`` that are not in ``received`` ([] if unknown)."""
    from tui_dicom.core.archive.errors import ArchiveError

    listed: set[str] = set()
    try:
        for s in series:
            found = client.find_instances(study_uid, s.series_instance_uid)
            listed.update(r.sop_instance_uid for r in found if r.sop_instance_uid)  # "" names nothing
    except ArchiveError:
        return []
    return sorted(listed - set(received))


def run(args: argparse.Namespace) -> int:
    """Run ``tui-dicom get``; returns the exit status."""
    from tui_dicom.core.archive.connect import open_client
    from tui_dicom.core.archive.diskcache import OutputFolder
    from tui_dicom.core.archive.errors import AddressError, ArchiveError, RetrieveIncomplete

    out_dir = Path(args.output)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        print(f"{PROG}: {safe_path(out_dir)} exists and is not an empty folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        address = address_from(args.archive, args)
    except AddressError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        client = open_client(address, timeout=args.timeout)
    except ArchiveError as exc:
        return _fail(str(exc))
    cancel = threading.Event()
    created = False
    try:
        if args.series:
            study_uid = client.locate_series(args.series)
            if not study_uid:
                return _fail(f"no series {args.series} at {address.display}")
            if "\\" in study_uid:
                return _fail(f"series {args.series} is listed under several studies at {address.display}")
            series = client.find_series(study_uid, args.series)
        else:
            study_uid = args.study
            series = client.find_series(study_uid)
            if not series:
                return _fail(f"no study {args.study} at {address.display}")
        # the retrieve starts at once; the count comes from the series query (answered from the archive's
        # index); the instance list, which an archive may answer only by opening every file (Orthanc
        # does), is asked for only to name what did not arrive
        counts = [s.instance_count for s in series]
        expected_total = None if None in counts else sum(c for c in counts if c is not None)
        if not out_dir.exists():
            out_dir.mkdir(parents=True, mode=0o700)
            created = True
        dest = OutputFolder(out_dir)
        nbytes = 0
        # an archive may send one instance twice: its file is written over, so instances and bytes are
        # counted per SOP Instance UID (the last copy's size), and the repeats said in the summary
        sizes: dict[str, int] = {}
        repeats = 0
        received: list[str] = []
        total = f"/{expected_total}" if expected_total is not None else ""
        try:
            for item in client.retrieve(study_uid, args.series or "", dest, None, cancel):
                if item.sop_instance_uid in sizes:
                    repeats += 1
                else:
                    received.append(item.sop_instance_uid)
                nbytes += item.nbytes - sizes.get(item.sop_instance_uid, 0)
                sizes[item.sop_instance_uid] = item.nbytes
                if not args.quiet:
                    line = f"\r{len(received)}{total} instances, {nbytes / 1e6:.1f} MB"
                    print(line, end="", file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            cancel.set()
            raise
        except RetrieveIncomplete as exc:
            missing = _missing(client, study_uid, series, exc.received)
            raise RetrieveIncomplete(exc.reason, exc.received, missing or exc.failed) from None
        finally:
            if not args.quiet and received:
                print(file=sys.stderr)
        if expected_total is None or len(received) < expected_total:
            missing = _missing(client, study_uid, series, received)
            if missing:
                raise RetrieveIncomplete(
                    f"the archive sent {len(received)} of the {len(received) + len(missing)} instances it listed",
                    received,
                    missing,
                )
            if expected_total is not None:  # fewer than counted, and the instance list names none
                raise RetrieveIncomplete(
                    f"the archive sent {len(received)} of the {expected_total} instances it counted",
                    received,
                    [],
                )
        twice = ""
        if repeats:
            twice = f" (the archive sent {repeats} of them more than once: each written once)"
        print(f"{len(received)} instances, {nbytes / 1e6:.1f} MB written to {safe_path(out_dir)}{twice}")
        return EXIT_OK
    except RetrieveIncomplete as exc:
        print(f"{PROG}: {safe_text(exc)}", file=sys.stderr)
        print(f"{len(exc.received)} instances kept in {safe_path(out_dir)}", file=sys.stderr)
        for uid in exc.failed[:50]:
            print(f"  not retrieved: {safe_text(uid)}", file=sys.stderr)
        if len(exc.failed) > 50:
            print(f"  ... and {len(exc.failed) - 50} more", file=sys.stderr)
        return EXIT_ERRORS
    except ArchiveError as exc:
        if created and not any(out_dir.iterdir()):
            os.rmdir(out_dir)
        return _fail(str(exc))
    finally:
        client.close()
