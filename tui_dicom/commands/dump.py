"""Print DICOM elements, one a line: (gggg,eeee) VR Keyword  value  # length.

File meta and dataset are printed, nested sequences indented. With -t only the chosen elements print
(a keyword, a number such as 0010,0010, a path such as Seq[0].Keyword, or *.Keyword at any depth);
for one file and one TAG only the bare value, so $(tui-dicom dump f -t PatientID) works. A folder,
DICOMDIR or ZIP dumps every instance in it, each after a header line. A remote instance
(dicom://AET@HOST:PORT/STUDY/SERIES/SOP, its WADO-RS URL .../studies/S/series/SE/instances/I, or
NAME:STUDY/SERIES/SOP) is retrieved into the private cache first. Values are decoded with the
file's character set and every control character is shown as an escape such as \\x1b.
Exit status: 0 ok, 1 some file could not be read (or, for a bare value, the tag is absent), 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from tui_dicom.core.dicom.source import FileRef, access_problem
from tui_dicom.core.safe import safe_path, safe_text

if TYPE_CHECKING:
    from tui_dicom.core.inspector.tags import TagPath, TagRow

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
#: files up to this size are read with their pixel data (summarised); bigger ones headers only
PIXEL_READ_LIMIT = 64 * 1024**2
#: display values in a full dump are cut after this many characters
DUMP_MAX_VALUE_CHARS = 1024
PROG = "tui-dicom dump"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``dump`` arguments to ``parser``."""
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="DICOM file, folder, DICOMDIR or ZIP archive"
    )
    parser.add_argument(
        "-t",
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="print only this element: keyword, gggg,eeee, Seq[0].Keyword or *.Keyword (repeatable)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the DICOM JSON model (PS3.18 F) without bulk data"
    )
    parser.add_argument("--no-private", action="store_true", help="leave out private elements")
    parser.add_argument(
        "--depth",
        type=int,
        default=None,
        metavar="N",
        help="expand sequences only N levels deep (0: top level only)",
    )
    from tui_dicom.commands.remote import add_connection_arguments

    add_connection_arguments(parser)


def fetch_remote(paths: Sequence[str], args: argparse.Namespace, err: TextIO) -> list[str] | None:
    """Local paths for ``paths``: remote instances retrieved into the cache (None: one failed, reported)."""
    from tui_dicom.commands.remote import is_remote

    out = list(paths)
    for i, path in enumerate(paths):
        if os.path.lexists(path) or not is_remote(path):
            continue
        from tui_dicom.commands.remote import fetch_instance
        from tui_dicom.core.archive.errors import ArchiveError

        try:
            out[i] = fetch_instance(path, args)
        except ArchiveError as exc:
            err.write(f"{PROG}: {safe_text(exc)}\n")
            return None
    return out


@dataclass
class _Target:
    """One instance to dump; ``error`` set when it was found unusable while indexing."""

    ref: FileRef
    error: str | None = None


class _Usage(Exception):
    """A command-line mistake: exit 2."""


def _is_container(path: str) -> bool:
    """True for arguments that hold many instances: folders, DICOMDIR files, ZIP archives."""
    from tui_dicom.core.dicom.source import is_zip

    if os.path.isdir(path):
        return True
    if os.path.basename(path).upper() == "DICOMDIR":
        return True
    return is_zip(path)


def _expand(paths: Sequence[str], err: TextIO) -> tuple[list[_Target], bool, bool]:
    """Turn the arguments into instances to dump.

    Returns:
        (targets, had_errors, missing_argument): index errors are printed to ``err`` as they come.
    """
    targets: list[_Target] = []
    had_errors = missing = False
    for path in paths:
        access = access_problem(path)
        if access is not None:
            reason = access.strerror or type(access).__name__
            err.write(f"{PROG}: cannot access {safe_path(path)!r}: {safe_text(reason)}\n")
            if isinstance(access, FileNotFoundError):
                missing = True
            else:
                had_errors = True
            continue
        if not _is_container(path):
            targets.append(_Target(FileRef(path)))
            continue
        try:
            from tui_dicom.core.hierarchy.index import build_index
        except ImportError:
            err.write(
                f"{PROG}: {safe_path(path)}: folders, DICOMDIR and ZIP need tui_dicom.core.hierarchy.index\n"
            )
            had_errors = True
            continue
        hierarchy = build_index([path])
        for problem in hierarchy.errors:
            err.write(f"{PROG}: {safe_path(problem.path)}: {safe_text(problem.reason)}\n")
            had_errors = True
        for series in hierarchy.all_series():
            for instance in series.instances:
                targets.append(_Target(instance.ref))
    return targets, had_errors, missing


def _line(row: TagRow, *, indent_from: int = 0, label: str | None = None) -> str:
    """Format one row: ``(gggg,eeee) VR Keyword  value  # length``."""
    indent = "  " * max(0, row.depth - indent_from)
    keyword = row.keyword or ("PrivateTagData" if row.is_private else "UnknownTag")
    text = f"{indent}{label or row.tag_text} {row.vr} {keyword}  {row.value}"
    comment = []
    if row.length is not None:
        comment.append(str(row.length))
    if row.private_creator:
        comment.append(row.private_creator)
    if comment:
        text += "  # " + ", ".join(comment)
    return text


def _path_label(path: tuple[int, ...]) -> str:
    """``(0008,1140)[0].(0008,1155)`` for a nested path."""
    out: list[str] = []
    for i, part in enumerate(path):
        if i % 2 == 0:
            out.append(("." if out else "") + f"({part >> 16:04X},{part & 0xFFFF:04X})")
        else:
            out.append(f"[{part}]")
    return "".join(out)


def full_dump_lines(
    ds: object,
    *,
    include_private: bool = True,
    max_depth: int | None = None,
    pixels_skipped: int | None = None,
) -> Iterator[str]:
    """The lines of a full dump of ``ds``: file meta, then the dataset, sequences indented.

    Args:
        ds: A pydicom dataset (``file_meta`` included when present).
        include_private: Print private elements.
        max_depth: Expand sequences this many levels deep (None: all).
        pixels_skipped: When the pixel data was not read, the file size to mention in a comment line.

    Yields:
        Lines without newline; comment lines start with ``#``.
    """
    from tui_dicom.core.inspector.tags import tag_rows

    meta = getattr(ds, "file_meta", None)
    rows = tag_rows(
        ds,  # type: ignore[arg-type]
        include_private=include_private,
        max_depth=max_depth,
        max_value_chars=DUMP_MAX_VALUE_CHARS,
    )
    meta_tags = frozenset(int(t) for t in meta.keys()) if meta is not None else frozenset()  # noqa: SIM118 (a Dataset iterates over elements, not tags)
    return _rows_lines(rows, meta_tags, pixels_skipped)


def _rows_lines(
    rows: Sequence[TagRow], meta_tags: frozenset[int], pixels_skipped: int | None
) -> Iterator[str]:
    """The lines of a full dump from its rows; ``meta_tags`` tells file meta from dataset at the top."""
    in_meta = False
    started = False
    for row in rows:
        is_meta = row.depth == 0 and row.tag >> 16 == 0x0002 and row.tag in meta_tags
        if row.depth == 0 and (is_meta != in_meta or not started):
            yield "# File meta information" if is_meta else "# Dataset"
            in_meta, started = is_meta, True
        yield _line(row)
    if pixels_skipped is not None:
        yield f"# Pixel Data and what follows it not read: the file is {pixels_skipped:,} bytes"


def _selected(
    ds: object, queries: list[TagPath], args: argparse.Namespace, bare: bool
) -> tuple[list[str], int]:
    """Lines for the elements matching ``queries`` and how many elements matched."""
    from tui_dicom.core.inspector.tags import match_rows, select

    found: list[list[TagRow]] = []
    for query in queries:
        for match in select(ds, query):  # type: ignore[arg-type]
            if args.no_private and any((p >> 16) & 1 for p in match.path[::2]):
                continue
            found.append(
                match_rows(
                    match,
                    include_private=not args.no_private,
                    max_depth=args.depth,
                    max_value_chars=None if bare else DUMP_MAX_VALUE_CHARS,
                )
            )
    return _match_lines(found, bare), len(found)


def _match_lines(found: list[list[TagRow]], bare: bool) -> list[str]:
    """Lines for matched elements, each given as its rows (the element first, then what it holds)."""
    lines: list[str] = []
    for rows in found:
        first = rows[0]
        if bare:
            lines.append(first.value)
            continue
        label = _path_label(first.path) if len(first.path) > 1 else None
        lines.append(_line(first, indent_from=first.depth, label=label))
        lines.extend(_line(r, indent_from=first.depth) for r in rows[1:])
    return lines


def _quick(
    ref: FileRef, queries: list[TagPath], args: argparse.Namespace, bare: bool
) -> tuple[list[str], int]:
    """The dump of ``ref`` read without pydicom (see :mod:`tui_dicom.core.inspector.quickdump`).

    Returns (lines, matches) like the pydicom path.

    Raises:
        Fallback: the file needs the pydicom path.
        OSError: the file cannot be opened.
    """
    from tui_dicom.core.dicom.source import file_size
    from tui_dicom.core.inspector import quickdump

    if not queries:
        size = file_size(ref)
        skipped = size if size > PIXEL_READ_LIMIT else None
        got = quickdump.read_rows(
            ref,
            stop_before_pixels=skipped is not None,
            include_private=not args.no_private,
            max_depth=args.depth,
            max_value_chars=DUMP_MAX_VALUE_CHARS,
        )
        return list(_rows_lines(got.rows, got.meta_tags, skipped)), 0
    got = quickdump.read_rows(
        ref,
        stop_before_pixels=True,
        include_private=not args.no_private,
        max_value_chars=None if bare else DUMP_MAX_VALUE_CHARS,
    )
    found = [
        quickdump.subtree(got.rows, i, args.depth)
        for q in queries
        for i in quickdump.select_rows(got.rows, q.steps)
    ]
    return _match_lines(found, bare), len(found)


def _read(ref: FileRef, need_pixels: bool) -> tuple[object, int | None]:
    """Read ``ref``; pixel data too when wanted and the file is small enough. Returns (ds, skipped size)."""
    from tui_dicom.core.dicom.reading import read_dataset
    from tui_dicom.core.dicom.source import file_size

    skipped = None
    stop = True
    if need_pixels:
        size = file_size(ref)
        if size <= PIXEL_READ_LIMIT:
            stop = False
        else:
            skipped = size
    return read_dataset(ref, stop_before_pixels=stop), skipped


def _write_lines(out: TextIO, lines: Sequence[str]) -> None:
    if lines:
        out.write("\n".join(lines) + "\n")


def _json_filter(ds: object, queries: list[TagPath]) -> object:
    """A dataset holding only the top-level elements named by simple ``queries``."""
    from pydicom.dataset import Dataset

    picked = Dataset()
    for query in queries:
        tag = query.steps[0].tag
        if tag is not None and tag in ds:  # type: ignore[operator]
            picked.add(ds[tag])  # type: ignore[index]
    return picked


def _with_pydicom(
    ref: FileRef,
    queries: list[TagPath],
    args: argparse.Namespace,
    bare: bool,
    json_docs: list[object],
    err: TextIO,
) -> tuple[list[str], int] | None:
    """Dump ``ref`` read with pydicom: (lines, matches), the JSON appended to ``json_docs``.

    Returns None after writing the reason to ``err`` when the file cannot be read or shown.
    """
    from tui_dicom.core.errors import DicomViewerError
    from tui_dicom.core.inspector.tags import to_dicom_json
    from tui_dicom.core.logging import log_exception

    try:
        ds, skipped = _read(ref, need_pixels=not queries and not args.json)
    except (DicomViewerError, OSError, ValueError) as exc:
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc) or type(exc).__name__
        elif isinstance(exc, DicomViewerError):
            reason = exc.reason
        else:
            reason = str(exc) or type(exc).__name__
        err.write(f"{PROG}: {ref.display}: {safe_text(reason)}\n")
        return None
    except Exception as exc:  # noqa: BLE001 - one unreadable file must not stop the others
        log_exception(f"reading {ref.display}")
        err.write(f"{PROG}: {ref.display}: cannot read: {safe_text(exc)}\n")
        return None
    try:
        if args.json:
            source = _json_filter(ds, queries) if queries else ds
            json_docs.append(to_dicom_json(source, include_private=not args.no_private))  # type: ignore[arg-type]
            return [], 0
        if queries:
            return _selected(ds, queries, args, bare)
        lines = full_dump_lines(
            ds, include_private=not args.no_private, max_depth=args.depth, pixels_skipped=skipped
        )
        return list(lines), 0
    except Exception as exc:  # noqa: BLE001 - a value that breaks formatting: name the file, go on
        log_exception(f"dumping {ref.display}")
        err.write(f"{PROG}: {ref.display}: cannot dump: {safe_text(exc)}\n")
        return None


def dump(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``dump`` writing to ``out``/``err``; returns the exit status."""
    from tui_dicom.core.inspector.tags import TagQueryError, json_text, parse_tag_query

    if args.depth is not None and args.depth < 0:
        err.write(f"{PROG}: --depth must be 0 or more\n")
        return EXIT_USAGE
    try:
        queries = [parse_tag_query(t) for t in args.tag]
    except TagQueryError as exc:
        err.write(f"{PROG}: {exc}\n")
        return EXIT_USAGE
    if args.json and not all(q.is_simple for q in queries):
        err.write(f"{PROG}: --json takes only top-level tags with -t (no sequence paths or '*')\n")
        return EXIT_USAGE

    local = fetch_remote(args.paths, args, err)
    if local is None:
        return EXIT_ERRORS
    args.paths = local
    targets, had_errors, missing = _expand(args.paths, err)
    single_file = len(args.paths) == 1 and len(targets) == 1 and not _is_container(args.paths[0])
    bare = single_file and len(queries) == 1 and not args.json
    headers = len(targets) > 1 or (len(targets) == 1 and not single_file)
    json_docs: list[object] = []
    first = True
    for target in targets:
        ref = target.ref
        lines, count = (None, 0) if args.json else _try_quick(ref, queries, args, bare)
        if lines is None:
            done = _with_pydicom(ref, queries, args, bare, json_docs, err)
            if done is None:
                had_errors = True
                continue
            lines, count = done
            if args.json:
                continue
        if bare and count == 0:
            err.write(f"{PROG}: {ref.display}: no element matches {safe_text(queries[0].text)!r}\n")
            had_errors = True
        if headers:
            if queries and not lines:
                continue
            out.write(("" if first else "\n") + f"# File: {ref.display}\n")
            first = False
        _write_lines(out, lines)
        out.flush()
    if args.json and json_docs:
        doc = json_docs[0] if len(json_docs) == 1 and single_file else json_docs
        out.write(json_text(doc) + "\n")
    if missing:
        return EXIT_USAGE
    return EXIT_ERRORS if had_errors else EXIT_OK


def _try_quick(
    ref: FileRef, queries: list[TagPath], args: argparse.Namespace, bare: bool
) -> tuple[list[str] | None, int]:
    """The quick path's (lines, matches), or (None, 0) when the file is for the pydicom path."""
    from tui_dicom.core.inspector.quickdump import Fallback

    try:
        return _quick(ref, queries, args, bare)
    except Fallback:
        return None, 0
    except Exception:  # noqa: BLE001 - any surprise: the pydicom path reads it and reports properly
        from tui_dicom.core.logging import log_exception

        log_exception(f"quick dump of {ref.display}; reading it with pydicom")
        return None, 0


def run(args: argparse.Namespace) -> int:
    """Entry point used by :mod:`tui_dicom.cli`: dump to stdout, quietly stop on a closed pipe."""
    out = sys.stdout
    with contextlib.suppress(AttributeError, ValueError):
        out.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    try:
        code = dump(args, out, sys.stderr)
        out.flush()
        return code
    except BrokenPipeError:
        # `tui-dicom dump f | head`: the reader went away. Point stdout at /dev/null so the
        # interpreter's final flush does not complain, and stop quietly.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
