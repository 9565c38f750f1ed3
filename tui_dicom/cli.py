"""Command line: ``tui-dicom [PATH...]`` opens the viewer; ``ls``, ``dump``, ``export``, ``anonymize`` are one-shot.

Imports are lazy: ``tui-dicom dump`` must start fast, so neither Textual nor any pixel decoder is
imported unless the chosen command needs it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: one-shot commands: name -> module under tui_dicom.commands with add_parser(sub) and run(args) -> int
COMMANDS = {
    "ls": "tui_dicom.commands.ls",
    "dump": "tui_dicom.commands.dump",
    "export": "tui_dicom.commands.export",
    "get": "tui_dicom.commands.get",
    "anonymize": "tui_dicom.commands.anonymize",
}

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, sized without ``shutil``.

    argparse builds a formatter on every ``add_argument`` (to check the metavar), and the stock one
    imports ``shutil`` (with ``bz2``, ``lzma`` and ``fnmatch``) for the terminal width: milliseconds
    that ``tui-dicom dump FILE`` should not spend. The width is found the way ``shutil`` finds it.
    """

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
    ) -> None:
        if width is None:
            width = _columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _columns() -> int:
    """Terminal width as :func:`shutil.get_terminal_size` gives it: $COLUMNS, then stdout's size, then 80."""
    import os

    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            # sys.__stdout__ is None without a console: the AttributeError is caught below
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log", metavar="FILE", help="write full tracebacks of errors to FILE")
    parser.add_argument(
        "--resource-limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="raise (or lower) a resource limit, e.g. --resource-limit frame-bytes=256M --resource-limit dicomdir-records=1000000; "
        "also TUI_DICOM_LIMITS=NAME=VALUE,... (README lists the limits)",
    )


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """Return the parser for ``command`` (None: the viewer)."""
    from tui_dicom import __version__

    if command is None:
        from tui_dicom.commands import view

        parser = argparse.ArgumentParser(
            prog="tui-dicom",
            description="A DICOM viewer for the terminal. Commands: "
            + ", ".join(COMMANDS)
            + " (tui-dicom COMMAND --help).",
        )
        parser.add_argument("--version", action="version", version=f"tui-dicom {__version__}")
        view.add_arguments(parser)
        _add_common(parser)
        return parser
    module = importlib.import_module(COMMANDS[command])
    parser = argparse.ArgumentParser(
        prog=f"tui-dicom {command}", description=module.__doc__, formatter_class=_Formatter
    )
    module.add_arguments(parser)
    _add_common(parser)
    return parser


def _join_negative_values(args: list[str]) -> list[str]:
    """Let ``--window -600,1500`` work like ``--window=-600,1500`` (argparse takes ``-600,…`` for an option)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if arg == "--window" and len(nxt) > 1 and nxt[0] == "-" and (nxt[1].isdigit() or nxt[1] == "."):
            out.append(f"{arg}={nxt}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tui-dicom`` console script. Returns the exit code."""
    args_list = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    command = args_list[0] if args_list and args_list[0] in COMMANDS else None
    if command is not None:
        args_list = args_list[1:]
    parser = build_parser(command)
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse: --help exits 0, usage errors exit 2
        return int(exc.code or 0)
    from tui_dicom.core import limits

    try:
        limits.configure(getattr(args, "resource_limit", []) or [])
    except ValueError as exc:
        print(f"tui-dicom: {exc}", file=sys.stderr)
        return EXIT_USAGE
    module = importlib.import_module(COMMANDS[command]) if command is not None else None
    if getattr(args, "log", None) or not getattr(module, "LAZY_LOG", False):
        # a command with LAZY_LOG sets up the (silent) log itself once it needs it: `dump FILE` usually
        # never touches pydicom, and ``logging`` costs more at import than the quick dump of a file
        from tui_dicom.core.logging import setup_log

        setup_log(getattr(args, "log", None))
    if module is None:
        from tui_dicom.commands import view

        try:
            return view.run(args)
        except KeyboardInterrupt:
            return 130
        except Exception as exc:  # noqa: BLE001 - outside the app (terminal detection, start-up)
            from tui_dicom.core.logging import write_crash_log

            print(view.crash_line(exc, write_crash_log("tui-dicom crashed", exc)), file=sys.stderr)
            return view.EXIT_CRASH
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `tui-dicom dump f | head`: the reader went away; that is not an error of ours.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        from tui_dicom.core.logging import log_exception
        from tui_dicom.core.safe import safe_text

        log_exception(f"tui-dicom {command} failed")
        print(f"tui-dicom {command}: internal error: {safe_text(exc)}", file=sys.stderr)
        return EXIT_ERRORS
