"""Open the viewer: ``tui-dicom [PATH...]`` (a DICOMDIR CD root, a folder, a ZIP, files; no path: a demo)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.app import App

    from tui_dicom.core.graphics.terminal import TerminalInfo

#: full-size real images from pydicom-data shown in the demo beside pydicom's dicomdirtests CD
DEMO_FILES = ("693_UNCR.dcm", "MR2_UNCR.dcm", "RG1_UNCR.dcm", "US1_UNCR.dcm", "emri_small.dcm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the viewer."""
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="DICOMDIR, CD root, folder, ZIP archive or DICOM file (none: the demo); or one archive: "
        "dicom://AET@HOST:PORT, http(s)://[USER@]HOST/PATH, NAME:",
    )
    parser.add_argument(
        "--renderer",
        choices=["auto", "kitty", "sixel", "halfblock", "unicode"],
        default=None,
        help="how images are drawn (default: auto-detect; env TUI_DICOM_RENDERER)",
    )
    parser.add_argument(
        "--colors",
        choices=["auto", "truecolor", "256"],
        default="auto",
        help="colours for half-block images (default: auto from COLORTERM)",
    )
    parser.add_argument(
        "--cache-mb",
        type=int,
        default=512,
        metavar="MB",
        help="memory for decoded slices and pictures (default: 512)",
    )
    parser.add_argument(
        "--query-timeout",
        type=float,
        default=0.5,
        metavar="S",
        help="how long to wait for the terminal's answers (default 0.5 s; raise over slow SSH)",
    )
    parser.add_argument(
        "--sixel-kb",
        type=int,
        default=200,
        metavar="KB",
        help="largest sixel picture in KB; a smaller budget shows fewer grey levels but "
        "settles sooner on a slow link (default 200; e.g. 110 over 10 Mbit/s)",
    )
    add_archive_arguments(parser)


def add_archive_arguments(parser: argparse.ArgumentParser) -> None:
    """Filters and connection options for ``tui-dicom URL`` (an archive instead of paths)."""
    from tui_dicom.commands.remote import add_connection_arguments, add_filter_arguments

    add_filter_arguments(parser)
    add_connection_arguments(parser)


def archive_session(args: argparse.Namespace, text: str) -> Any:
    """The :class:`ArchiveSession` of ``tui-dicom URL [filters]``.

    Raises:
        AddressError: a bad address, option or filter.
    """
    from tui_dicom.commands.remote import address_from, filters_from
    from tui_dicom.core.archive.browse import ArchiveSession

    filters = filters_from(args)
    open_study = filters.study_uid
    return ArchiveSession(
        address=address_from(text, args),
        filters=filters,
        limit=args.limit if args.limit is not None else 200,
        cache_bytes=max(16, args.disk_cache_mb) * 1024 * 1024,
        timeout=args.timeout,
        open_study=open_study,
    )


def demo_paths() -> tuple[list[str], str]:
    """The demo: pydicom's dicomdirtests CD plus full-size pydicom-data images, and a note saying so."""
    # the full-size head CT first: the viewer opens on the series of the first path
    paths: list[str] = []
    try:
        import data_store  # pydicom-data

        base = os.path.join(os.path.dirname(data_store.__file__), "data")
        paths.extend(os.path.join(base, f) for f in DEMO_FILES if os.path.exists(os.path.join(base, f)))
    except Exception:  # noqa: BLE001 - the demo is best effort
        pass
    try:
        from pydicom.data import get_testdata_file

        dicomdir = get_testdata_file("DICOMDIR", download=False)
        if dicomdir:
            paths.append(os.path.dirname(str(dicomdir)))
    except Exception:  # noqa: BLE001
        pass
    note = (
        "No path given: showing the demo data that ships with pydicom and pydicom-data "
        "(a DICOMDIR CD and full-size CT, MR, CR, US images). Open your own with: tui-dicom PATH"
    )
    return paths, note


def run(args: argparse.Namespace) -> int:
    """Detect the terminal, then run the app."""
    from tui_dicom.core.safe import safe_path

    paths = [os.fspath(p) for p in args.paths]
    archive = None
    from tui_dicom.commands.remote import is_remote
    from tui_dicom.core.dicom.source import access_problem

    if len(paths) == 1 and not os.path.lexists(paths[0]) and is_remote(paths[0]):
        from tui_dicom.core.archive.errors import AddressError

        try:
            archive = archive_session(args, paths[0])
        except AddressError as exc:
            print(f"tui-dicom: {safe_path(str(exc))}", file=sys.stderr)
            return 2
        label = archive.address.display
        paths = []
    problems = [(p, access_problem(p)) for p in paths]
    if any(err is not None for _p, err in problems):
        for p, err in problems:
            if err is not None:
                reason = "no such file or directory" if isinstance(err, FileNotFoundError) else err.strerror
                print(f"tui-dicom: {safe_path(p)}: {reason or type(err).__name__}", file=sys.stderr)
        return 2
    demo_note = ""
    if archive is None:
        label = " ".join(safe_path(p) for p in paths)
    if not paths and archive is None:
        paths, demo_note = demo_paths()
        label = "demo: pydicom dicomdirtests CD + pydicom-data images"
        if not paths:
            print(
                "tui-dicom: no path given and the demo data (pydicom, pydicom-data) is not installed",
                file=sys.stderr,
            )
            return 2
    # numpy's OpenBLAS starts a worker thread at import that spins on a core for a while, and again after
    # every matrix product: 30-100 ms of CPU on the first picture's way, on a machine whose cores the
    # picture needs. The viewer's matrix products are small (3x3 orientations, point lists): one thread
    # does them as fast. A value the user set is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with _imports_without_collection():
        terminal = _prepare(args, archive is None)
    from tui_dicom.ui.app import DicomViewerApp
    from tui_dicom.ui.output import own_terminal_output, restore_terminal_on_signals

    # frames never go where a decoder's silenced stderr goes; a kill leaves a usable terminal
    tty_attrs = terminal.tty_attrs if terminal is not None else None
    try:
        with own_terminal_output(), restore_terminal_on_signals(modes=tty_attrs):
            app = DicomViewerApp(
                paths,
                terminal=terminal,
                cache_mb=max(16, args.cache_mb),
                source_label=label,
                demo_note=demo_note,
                archive=archive,
            )
            _filter_replies(app, terminal)
            try:
                app.run()
            finally:
                from tui_dicom.core.imaging import sandbox

                sandbox.shutdown()  # a decode still running in the child must not keep us waiting
    finally:
        from tui_dicom.core.graphics.terminal import restore_tty

        restore_tty(tty_attrs)
    if app.crash is not None:
        print(crash_line(app.crash, app.crash_log), file=sys.stderr)
        return EXIT_CRASH
    return 0


def _prepare(args: argparse.Namespace, local: bool) -> TerminalInfo | None:
    """Detect the terminal and import the app (and, for local files, what the first picture needs).

    Returns:
        The :class:`~tui_dicom.core.graphics.terminal.TerminalInfo`, or None without terminal support.
    """
    terminal: TerminalInfo | None = None
    try:
        from tui_dicom.core.graphics.terminal import detect

        renderer = args.renderer or os.environ.get("TUI_DICOM_RENDERER") or None
        terminal = detect(
            timeout=args.query_timeout,
            override=None if renderer == "auto" else renderer,
            colors=args.colors,
            keep_quiet=True,
        )
        terminal = dataclasses.replace(terminal, sixel_max_bytes=max(20, args.sixel_kb) * 1000)
    except ImportError:
        terminal = None
    import tui_dicom.ui.app  # noqa: F401 - imported here, inside the start-up's garbage collection pause

    if local:
        # what the first picture needs (numpy and the pydicom-free reader of uncompressed slices): import
        # it now, on this thread, before the app's threads start (imports in two threads at once cost more
        # CPU than one after the other: the interpreter lock and the import lock pass back and forth);
        # pydicom follows in the loader thread once the first picture is out (see preload)
        from tui_dicom.core.dicom.preload import FIRST_PICTURE_MODULES, warm_up

        warm_up(FIRST_PICTURE_MODULES, pydicom=False)
    return terminal


@contextlib.contextmanager
def _imports_without_collection() -> Iterator[None]:
    """No garbage collection during the start-up imports; then what they made is frozen.

    The imports of the viewer (Textual, numpy, Pillow, ours: ~550 modules) allocate hundreds of thousands
    of long-lived objects, and the collector walks them again and again on the first picture's way: a
    full collection in the middle of the first frame took 50 ms. With collection paused during the
    imports and their objects moved to the permanent generation (:func:`gc.freeze`, which is what it is
    for), later collections only walk what the app itself allocates. Collection is back on (if it was on)
    whatever happens.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def _filter_replies(app: App[Any], terminal: TerminalInfo | None) -> None:
    """Let the app read the terminal through the reply filter (answers are never keys).

    Late answers to the start-up queries are dropped whenever they arrive, and on exit the app waits
    for the ones still on their way. POSIX terminals only (Textual's Linux driver).
    """
    if terminal is None or sys.platform == "win32" or not terminal.queried:
        return
    from tui_dicom.ui.driver import ReplySession, make_driver

    session = ReplySession(
        queried=True,
        da1_outstanding=0 if terminal.answered else 1,
        asked_at=terminal.asked_at,
        tty_attrs=terminal.tty_attrs,
    )
    app.driver_class = make_driver(session)


#: exit status after an internal error (BSD sysexits EX_SOFTWARE)
EXIT_CRASH = 70


def crash_line(error: BaseException, log: str) -> str:
    """The one line printed after a crash, naming the file that holds the traceback."""
    from tui_dicom.core.safe import safe_text

    where = f"the traceback is in {safe_text(log)}" if log else "no crash log could be written"
    return f"tui-dicom: internal error ({type(error).__name__}: {safe_text(error)}); {where}"
