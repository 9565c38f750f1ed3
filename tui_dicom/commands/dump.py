"""Print DICOM elements, one a line: (gggg,eeee) VR Keyword  value  # length.

File meta and dataset are printed, nested sequences indented. With -t only the chosen elements print
(a keyword, a number such as 0010,0010, a path such as Seq[0].Keyword, or *.Keyword at any depth);
for one file and one TAG only the bare value, so $(tui-dicom dump f -t PatientID) works. Values are
decoded with the file's character set and every control character is shown as an escape such as \\x1b.
A folder or ZIP dumps every instance in it, each after a "# File:" line; a file named DICOMDIR is
dumped itself, like dcmdump does (-t DirectoryRecordSequence), while the CD's folder dumps its images.
A remote instance (dicom://AET@HOST:PORT/STUDY/SERIES/SOP, its WADO-RS URL
.../studies/S/series/SE/instances/I, or NAME:STUDY/SERIES/SOP) is retrieved into the private cache first.
--values prints PATH<TAB>VALUE lines for scripts, one per instance holding any of the tags (a column
per -t, an absent one empty, several matches joined with \\):
dump CD -t PatientID --values | cut -f2 | sort -u. --json prints one DICOM JSON object for one file,
and for several a list of {"path": ..., "dataset": {...}}.
Exit status: 0 ok, 1 some file could not be read or a -t tag matched nothing in any file, 2 usage.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence

from tui_dicom.core.dicom.source import FileRef, access_problem
from tui_dicom.core.safe import safe_path, safe_text

#: the dump path imports as little as it can (``tui-dicom dump FILE`` must start like a native tool):
#: ``typing``, ``dataclasses``, ``zipfile`` and ``contextlib`` cost milliseconds each, so the types are
#: for the type checker only and ZIP support is imported when a path is not a plain DICOM file.
#: ``tests/commands/test_dump.py`` keeps the set of modules imported by ``dump FILE`` in check.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import TextIO

    from tui_dicom.core.inspector.tags import TagPath, TagRow

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
#: :mod:`tui_dicom.cli` leaves the silent log (pydicom's and the archive libraries' loggers, Python
#: warnings) to :func:`_setup_log`, called before anything here can reach pydicom: the quick path of a
#: plain file never does, and needs no ``logging`` at all
LAZY_LOG = True
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
    parser.add_argument(
        "--values",
        action="store_true",
        help="with -t: print PATH<TAB>VALUE per instance (a column per -t), for scripts",
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


class _Target:
    """One instance to dump; ``error`` set when it was found unusable while indexing."""

    __slots__ = ("ref", "error")

    def __init__(self, ref: FileRef, error: str | None = None) -> None:
        self.ref = ref
        self.error = error


class _Dumped:
    """What one file gave: the lines of a full dump, or for each -t query its matches (each as rows)."""

    __slots__ = ("lines", "found", "counts", "failed")

    def __init__(
        self,
        lines: list[str] | None = None,
        found: list[list[list[TagRow]]] | None = None,
        counts: list[int] | None = None,
        failed: bool = False,
    ) -> None:
        self.lines: list[str] = lines if lines is not None else []
        self.found: list[list[list[TagRow]]] = found if found is not None else []
        #: matches per query when ``found`` is not kept (--json)
        self.counts = counts
        #: the file was shown only in part (the reason is on stderr already): exit 1
        self.failed = failed

    def match_counts(self) -> list[int]:
        """How many elements each query matched."""
        return self.counts if self.counts is not None else [len(m) for m in self.found]


_log_ready = False


def _setup_log() -> None:
    """Route library logs and warnings to the (silent) log, once: before pydicom or a network library runs."""
    global _log_ready
    if not _log_ready:
        from tui_dicom.core.logging import setup_log

        setup_log(None)
        _log_ready = True


def _plain_file(path: str) -> bool:
    """True for a local Part 10 file (the quick path's case: no pydicom, no index, no archive)."""
    from tui_dicom.core.dicom.source import open_regular

    try:
        with open_regular(path) as fh:  # a FIFO or device is not opened for real: never blocks
            return fh.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _is_container(path: str) -> bool:
    """True for arguments that hold many instances: folders (a CD's root among them) and ZIP archives.

    A file named DICOMDIR is not one: naming it asks for the DICOMDIR itself, as with dcmdump.
    """
    from tui_dicom.core.dicom.source import is_zip

    if os.path.isdir(path):
        return True
    if _plain_file(path):  # a Part 10 file: no need to load ZIP support to know
        return False
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
    tag = row.tag
    indent = "  " * (row.depth - indent_from) if row.depth > indent_from else ""
    keyword = row.keyword or ("PrivateTagData" if row.is_private else "UnknownTag")
    head = label or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    text = f"{indent}{head} {row.vr} {keyword}  {row.value}"
    if row.length is not None:
        if row.private_creator:
            return f"{text}  # {row.length}, {row.private_creator}"
        return f"{text}  # {row.length}"
    if row.private_creator:
        return f"{text}  # {row.private_creator}"
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
        ds,  # type: ignore[arg-type]  # a pydicom Dataset, typed object (no import on this path)
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


def _selected(ds: object, queries: list[TagPath], args: argparse.Namespace, cut: bool) -> _Dumped:
    """The elements of ``ds`` (read with pydicom) matching each of ``queries``, each as its rows."""
    from tui_dicom.core.inspector.tags import tag_rows

    rows = tag_rows(
        ds,  # type: ignore[arg-type]  # a pydicom Dataset, typed object (no import on this path)
        include_private=not args.no_private,
        max_value_chars=DUMP_MAX_VALUE_CHARS if cut else None,
    )
    return _select(rows, queries, args.depth)


def _select(rows: Sequence[TagRow], queries: list[TagPath], depth: int | None) -> _Dumped:
    """For each query, the rows of each element it matches (the element's row, then what it holds)."""
    from tui_dicom.core.inspector.tags import select_rows, subtree

    return _Dumped(found=[[subtree(rows, i, depth) for i in select_rows(rows, q)] for q in queries])


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


def _quick(ref: FileRef, queries: list[TagPath], args: argparse.Namespace, cut: bool) -> _Dumped:
    """The dump of ``ref`` read without pydicom (see :mod:`tui_dicom.core.inspector.quickdump`).

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
        return _Dumped(lines=list(_rows_lines(got.rows, got.meta_tags, skipped)))
    got = quickdump.read_rows(
        ref,
        stop_before_pixels=True,
        include_private=not args.no_private,
        max_value_chars=DUMP_MAX_VALUE_CHARS if cut else None,
    )
    return _select(got.rows, queries, args.depth)


def _read(ref: FileRef, need_pixels: bool) -> tuple[object, int | None, bool]:
    """Read ``ref``; pixel data too when wanted and the file is small enough.

    Returns:
        (dataset, file size when the pixel data was not read, pixel data cut short).
    """
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
    from tui_dicom.core.errors import DicomViewerError

    try:
        ds = read_dataset(ref, stop_before_pixels=stop)
    except DicomViewerError:
        if stop:
            raise
        # the pixel data (or what follows it) cannot be read: the header alone may still be (if not,
        # its own error is the one reported)
        return read_dataset(ref, stop_before_pixels=True), None, True
    if not stop and len(ds) == 0:
        # pydicom keeps nothing of a dataset whose last sequence has no end (encapsulated pixel data
        # cut short): the header before the pixel data is intact, so show it and say what is missing
        header = read_dataset(ref, stop_before_pixels=True)
        if len(header):
            return header, None, True
    return ds, skipped, False


def _write_lines(out: TextIO, lines: Sequence[str]) -> None:
    if lines:
        out.write("\n".join(lines) + "\n")


def _json_filter(ds: object, queries: list[TagPath]) -> object:
    """A dataset holding only the top-level elements named by simple ``queries``."""
    from pydicom.dataset import Dataset

    picked = Dataset()
    for query in queries:
        tag = query.steps[0].tag
        if tag is not None and tag in ds:  # type: ignore[operator]  # ds: a Dataset
            picked.add(ds[tag])  # type: ignore[index]  # ds: a Dataset
    return picked


def _with_pydicom(
    ref: FileRef,
    queries: list[TagPath],
    args: argparse.Namespace,
    cut: bool,
    json_docs: list[tuple[str, object]],
    err: TextIO,
) -> _Dumped | None:
    """Dump ``ref`` read with pydicom; for --json the document is appended to ``json_docs`` with its path.

    Returns None after writing the reason to ``err`` when the file cannot be read or shown.
    """
    _setup_log()
    from tui_dicom.core.errors import DicomViewerError
    from tui_dicom.core.inspector.tags import to_dicom_json
    from tui_dicom.core.logging import log_exception

    try:
        ds, skipped, cut_short = _read(ref, need_pixels=not queries and not args.json)
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
            # source: a Dataset, typed object on this path
            json_docs.append((_raw_path(ref), to_dicom_json(source, include_private=not args.no_private)))  # type: ignore[arg-type]
            counts = [int(q.steps[0].tag in source) for q in queries]  # type: ignore[operator]  # a Dataset
            return _Dumped(counts=counts)
        if queries:
            return _selected(ds, queries, args, cut)
        lines = list(
            full_dump_lines(
                ds, include_private=not args.no_private, max_depth=args.depth, pixels_skipped=skipped
            )
        )
        if cut_short:
            lines.append("# Pixel Data not shown: it cannot be read (the file is truncated or damaged there)")
            err.write(f"{PROG}: {ref.display}: truncated or damaged: the pixel data cannot be read\n")
            return _Dumped(lines=lines, failed=True)
        return _Dumped(lines=lines)
    except Exception as exc:  # noqa: BLE001 - a value that breaks formatting: name the file, go on
        log_exception(f"dumping {ref.display}")
        err.write(f"{PROG}: {ref.display}: cannot dump: {safe_text(exc)}\n")
        return None


def _raw_path(ref: FileRef) -> str:
    """The path of ``ref`` as given (a ZIP member as ``archive!member``), for JSON, which escapes it."""
    return ref.path if ref.member is None else f"{ref.path}!{ref.member}"


def _usage_problem(args: argparse.Namespace, queries: list[TagPath]) -> str | None:
    """Why these options cannot go together, or None."""
    if args.depth is not None and args.depth < 0:
        return "--depth must be 0 or more"
    if args.json and not all(q.is_simple for q in queries):
        return "--json takes only top-level tags with -t (no sequence paths or '*')"
    if getattr(args, "values", False):
        if not queries:
            return "--values needs at least one -t TAG"
        if args.json:
            return "--values and --json cannot go together"
    return None


def dump(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``dump`` writing to ``out``/``err``; returns the exit status."""
    from tui_dicom.core.inspector.tags import TagQueryError, json_text, parse_tag_query

    try:
        queries = [parse_tag_query(t) for t in args.tag]
    except TagQueryError as exc:
        err.write(f"{PROG}: {exc}\n")
        return EXIT_USAGE
    problem = _usage_problem(args, queries)
    if problem is not None:
        err.write(f"{PROG}: {problem}\n")
        return EXIT_USAGE
    values = bool(getattr(args, "values", False))
    if not all(_plain_file(p) for p in args.paths):
        _setup_log()  # a folder, ZIP, remote address or odd file: the index or pydicom will run

    local = fetch_remote(args.paths, args, err)
    if local is None:
        return EXIT_ERRORS
    args.paths = local
    targets, had_errors, missing = _expand(args.paths, err)
    single_file = len(args.paths) == 1 and len(targets) == 1 and not _is_container(args.paths[0])
    bare = single_file and len(queries) == 1 and not args.json and not values
    cut = not bare and not values  # a value for a script is printed whole
    headers = not values and (len(targets) > 1 or (len(targets) == 1 and not single_file))
    json_docs: list[tuple[str, object]] = []
    matched = [0] * len(queries)
    read_any = False
    first = True
    for target in targets:
        ref = target.ref
        got = None if args.json else _try_quick(ref, queries, args, cut)
        if got is None:
            got = _with_pydicom(ref, queries, args, cut, json_docs, err)
            if got is None:
                had_errors = True
                continue
        read_any = True
        had_errors = had_errors or got.failed
        for i, count in enumerate(got.match_counts()):
            matched[i] += count
        if args.json:
            continue
        if values:
            if any(got.found):
                columns = ["\\".join(rows[0].value for rows in matches) for matches in got.found]
                out.write("\t".join([ref.display, *columns]) + "\n")
            continue
        lines = _match_lines([m for matches in got.found for m in matches], bare) if queries else got.lines
        if bare and not lines:
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
        if len(json_docs) == 1 and single_file:
            doc: object = json_docs[0][1]
        else:
            doc = [{"path": path, "dataset": data} for path, data in json_docs]
        out.write(json_text(doc) + "\n")
    if read_any and not bare:
        # a script must be able to tell "the tag is in no file" from "the value is empty"
        for query, count in zip(queries, matched, strict=True):
            if count == 0:
                err.write(f"{PROG}: no element matches {safe_text(query.text)!r} in any file\n")
                had_errors = True
    if missing:
        return EXIT_USAGE
    return EXIT_ERRORS if had_errors else EXIT_OK


def _try_quick(ref: FileRef, queries: list[TagPath], args: argparse.Namespace, cut: bool) -> _Dumped | None:
    """The quick path's result, or None when the file is for the pydicom path."""
    from tui_dicom.core.inspector.quickdump import Fallback

    try:
        return _quick(ref, queries, args, cut)
    except Fallback:
        return None
    except Exception:  # noqa: BLE001 - any surprise: the pydicom path reads it and reports properly
        from tui_dicom.core.logging import log_exception

        log_exception(f"quick dump of {ref.display}; reading it with pydicom")
        return None


def run(args: argparse.Namespace) -> int:
    """Entry point used by :mod:`tui_dicom.cli`: dump to stdout, quietly stop on a closed pipe."""
    out = sys.stdout
    try:  # noqa: SIM105 - contextlib is not imported on the dump path (start-up time)
        out.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]  # TextIO: AttributeError caught
    except (AttributeError, ValueError):
        pass
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
