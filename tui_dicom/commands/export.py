"""Write one frame as the viewer displays it (window, palette, overlays) to a PNG at native resolution,
8-bit grey or RGB, without annotations. Without --window/--preset the viewer's default is used (the
file's first window, else its VOI LUT, else an automatic percentile window). A negative centre needs
the = form: --window=-600,1500. Frames count from 1, like DCMTK's. FILE may be a remote instance
(dicom://AET@HOST:PORT/STUDY/SERIES/SOP, a WADO-RS instance URL, or NAME:STUDY/SERIES/SOP): it is
retrieved into the private cache first."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from typing import TYPE_CHECKING

from tui_dicom.core.errors import DicomViewerError
from tui_dicom.core.logging import log_exception
from tui_dicom.core.safe import safe_path, safe_text

if TYPE_CHECKING:
    import numpy as np

    from tui_dicom.core.dicom.source import FileRef

_FORMATS = {
    ".png": "PNG",
    ".pgm": "PPM",
    ".ppm": "PPM",
    ".pnm": "PPM",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}


class ExportError(Exception):
    """A one-line reason why the export cannot be done."""


def parse_window(text: str) -> tuple[float, float]:
    """Parse ``"C,W"`` (e.g. ``"-600,1500"``) into (centre, width).

    Raises:
        argparse.ArgumentTypeError: not two numbers, or width not positive.
    """
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CENTER,WIDTH (e.g. 40,80), got {text!r}") from None
    if not width > 0 or center != center:
        raise argparse.ArgumentTypeError(f"width must be > 0, got {text!r}")
    return center, width


def _frame_number(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"frame must be a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("frames count from 1")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``export`` options to ``parser``."""
    from tui_dicom.core.imaging.windowing import preset_names

    parser.add_argument("file", metavar="FILE", help="DICOM file (a ZIP member as ARCHIVE.zip!MEMBER)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.png",
        required=True,
        help="picture to write (PNG; .pgm/.ppm/.tif/.bmp by extension)",
    )
    parser.add_argument(
        "--frame", type=_frame_number, default=1, metavar="N", help="frame number, from 1 (default 1)"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--window",
        type=parse_window,
        metavar="C,W",
        help="window centre,width in modality units (HU for CT); --window=-600,1500",
    )
    group.add_argument("--preset", metavar="NAME", help="named window: " + ", ".join(preset_names()))
    group.add_argument(
        "--no-voi",
        action="store_true",
        help="no VOI transform: map the full value range linearly (like dcmj2pnm -W)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    from tui_dicom.commands.remote import add_connection_arguments

    add_connection_arguments(parser)
    from tui_dicom.commands import export_plane

    export_plane.add_arguments(parser)


def _ref_for(path: str) -> FileRef:
    """``ARCHIVE.zip!MEMBER`` or a plain path as a FileRef."""
    from tui_dicom.core.dicom.source import FileRef

    if "!" in path and not os.path.exists(path):
        archive, member = path.split("!", 1)
        if os.path.isfile(archive):
            return FileRef(archive, member)
    return FileRef(path)


def export_picture(args: argparse.Namespace) -> np.ndarray:
    """Decode and render the picture ``args`` asks for.

    Raises:
        ExportError, DicomViewerError, OSError: one-line reasons.
    """
    from tui_dicom.core.imaging.pixels import decode_frame
    from tui_dicom.core.imaging.windowing import Window, default_window, render, window_by_name

    ref = _ref_for(args.file)
    if ref.member is None:
        from tui_dicom.core.dicom.source import access_problem

        problem = access_problem(ref.path)
        if isinstance(problem, FileNotFoundError):
            raise ExportError("no such file")
        if problem is not None:
            raise ExportError((problem.strerror or type(problem).__name__).lower())
        if os.path.isdir(ref.path):
            raise ExportError("is a folder, not a regular file")
    frame = decode_frame(ref, args.frame - 1)
    window = None
    use_voi = not args.no_voi
    if args.window is not None:
        window = Window(args.window[0], args.window[1], "LINEAR", "")
    elif args.preset is not None:
        window = window_by_name(frame, args.preset)
        if window is None:
            from tui_dicom.core.imaging.windowing import preset_names

            if args.preset.strip().lower() == "file":
                raise ExportError("the file defines no window (--preset file)")
            raise ExportError(
                f"unknown preset {safe_text(args.preset)!r}; one of: {', '.join(preset_names())}"
            )
    elif use_voi:
        window = default_window(frame)
    return render(frame, window, overlays=True, use_voi=use_voi)


def write_picture(picture: np.ndarray, out: str, *, force: bool, text: dict[str, str] | None = None) -> None:
    """Write ``picture`` to ``out`` atomically: a temp file beside it, then a rename.

    Never leaves a partial file; refuses to replace an existing file unless ``force``. ``text`` becomes
    PNG text chunks (a reformatted plane's geometry).

    Raises:
        ExportError, OSError: one-line reasons.
    """
    from PIL import Image

    target = os.path.abspath(out)
    directory = os.path.dirname(target) or "."
    if os.path.isdir(target):
        raise ExportError("output is a directory")
    if os.path.lexists(target) and not force:
        raise ExportError("output exists (use --force to overwrite)")
    if not os.path.isdir(directory):
        raise ExportError("output folder does not exist")
    fmt = _FORMATS.get(os.path.splitext(target)[1].lower(), "PNG")
    mode = "L" if picture.ndim == 2 else "RGB"
    image = Image.fromarray(picture, mode=mode)
    fd, tmp = tempfile.mkstemp(prefix=".tui-dicom-", suffix=".tmp", dir=directory)
    try:
        # mkstemp makes the file 0600 (right while it is a temporary); the picture is an ordinary
        # output file, so give it the mode any program's new file gets: 0666 less the umask
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as fh:
            if text and fmt == "PNG":
                from PIL.PngImagePlugin import PngInfo

                info = PngInfo()
                for key, value in text.items():
                    info.add_text(key, value)
                image.save(fh, format=fmt, pnginfo=info)
            else:
                image.save(fh, format=fmt)
            fh.flush()
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if target appeared meanwhile: never clobbers
            except FileExistsError:
                raise ExportError("output exists (use --force to overwrite)") from None
            except OSError:
                if os.path.lexists(target):
                    raise ExportError("output exists (use --force to overwrite)") from None
                os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def current_umask() -> int:
    """The process's umask, read without changing it (``os.umask`` can only set it, which would race
    with threads creating files meanwhile); Linux tells it in /proc, elsewhere it is set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def run(args: argparse.Namespace) -> int:
    """Export; 0 on success, 1 (one line on stderr) when the picture cannot be exported."""
    name = safe_path(args.file)
    try:
        from tui_dicom.commands.remote import is_remote

        if not os.path.lexists(args.file) and is_remote(args.file):
            from tui_dicom.commands.remote import fetch_instance

            args.file = fetch_instance(args.file, args)
        inp = _ref_for(args.file)
        if (
            inp.member is None
            and os.path.exists(args.output)
            and os.path.exists(inp.path)
            and os.path.samefile(inp.path, args.output)
        ):
            raise ExportError("output is the input file")
        if getattr(args, "plane", None):
            from tui_dicom.commands.export_plane import export_plane

            plane_picture, chunks = export_plane(args)
            # export_plane types its picture object (numpy is imported lazily there): a uint8 array
            write_picture(plane_picture, args.output, force=args.force, text=chunks)  # type: ignore[arg-type]
        else:
            if (
                getattr(args, "at", None) is not None
                or getattr(args, "series", None)
                or getattr(args, "slab", 0)
            ):
                raise ExportError("--at, --slab and --series need --plane axial|coronal|sagittal")
            picture = export_picture(args)
            write_picture(picture, args.output, force=args.force)
    except ExportError as exc:
        print(f"tui-dicom export: {name}: {exc}", file=sys.stderr)
        return 1
    except DicomViewerError as exc:
        print(f"tui-dicom export: {name}: {safe_text(exc.reason)}", file=sys.stderr)
        return 1
    except OSError as exc:
        log_exception(f"export {args.file}")
        reason = exc.strerror or str(exc) or type(exc).__name__
        where = safe_path(exc.filename) if getattr(exc, "filename", None) else name
        print(f"tui-dicom export: {where}: {safe_text(reason)}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        log_exception(f"export {args.file}")
        print(
            f"tui-dicom export: {name}: cannot export: {safe_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}",
            file=sys.stderr,
        )
        return 1
    return 0
