"""Where a DICOM file lives: a path on disk, or a member of a ZIP archive (read without extracting).

Everything that opens a user's file goes through :func:`open_regular` (directly or via :func:`open_ref`,
which handles ZIP members and plain files alike, read-only). It opens with ``O_NONBLOCK`` and checks the
open descriptor with ``fstat``: a FIFO, socket or device (or a symbolic link to one) is refused with a
reason instead of blocking forever on a FIFO or reading gigabytes from ``/dev/zero``.
"""

from __future__ import annotations

import _thread
import errno
import io
import os
import stat

from tui_dicom.core import limits
from tui_dicom.core.safe import safe_path

#: ``zipfile`` (with bz2, lzma, shutil), ``dataclasses`` and ``typing`` cost milliseconds at import, and
#: ``tui-dicom dump FILE`` must start fast: ZIP support is imported when a ZIP is opened, and the types
#: are for the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import zipfile
    from typing import BinaryIO


class NotRegularFile(OSError):
    """The path names a FIFO, socket, device or folder: never read as a DICOM file.

    An :class:`OSError` so every caller that reports "cannot open" reports this too; ``strerror`` is
    the one-line reason ("a FIFO (named pipe), not a regular file").
    """


def describe_mode(mode: int) -> str:
    """What a non-regular file is, for a message: "a FIFO (named pipe)", "a socket", ..."""
    return _kind(mode)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file"


_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
)


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for binary reading if, once open, it is a regular file; never block.

    ``O_NONBLOCK`` makes opening a FIFO without a writer return at once (a plain ``open`` waits for
    one forever); ``fstat`` on the open descriptor, not ``stat`` on the name, decides, so a name
    swapped between check and open cannot slip a device in. Symbolic links are followed, and what
    they reach is checked like anything else.

    Raises:
        NotRegularFile: a FIFO, socket, device or folder (``strerror`` says which).
        OSError: the file cannot be opened (``PermissionError``, ``FileNotFoundError``, ...).
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _kind(st.st_mode)
            code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
            raise NotRegularFile(code, f"{kind}, not a regular file", os.fspath(path))
        os.set_blocking(fd, True)
        raw = io.FileIO(fd, "rb", closefd=True)
        # opened from a descriptor, the file's name would be that number; readers (pydicom's error
        # messages among them) expect the path
        raw.name = os.fspath(path)
        return io.BufferedReader(raw)
    except BaseException:
        os.close(fd)
        raise


def is_zip(path: str) -> bool:
    """True if ``path`` is a regular file holding a ZIP archive (never blocks, never raises)."""
    try:
        with open_regular(path) as fh:
            import zipfile

            return zipfile.is_zipfile(fh)
    except OSError:
        return False


def access_problem(path: str) -> OSError | None:
    """Why ``path`` cannot be read as a file or folder, as an :class:`OSError`; None when it can.

    ``os.path.lexists`` says False for a file in a folder the user may not search, so "No such file"
    was reported for what is really "Permission denied": this asks ``lstat`` and keeps its error.
    """
    try:
        os.lstat(path)
    except OSError as exc:
        return exc
    return None


def read_bounded(fh: BinaryIO, limit: int, what: str) -> bytes:
    """Read all of ``fh`` but refuse more than ``limit`` bytes (a file growing under us, a huge file).

    Raises:
        LimitExceeded: more than ``limit`` bytes (dimension ``file_bytes``).
    """
    data = fh.read(limit + 1)
    if len(data) > limit:
        raise limits.LimitExceeded(what, "file_bytes", None, limit)
    return data


class FileRef:
    """A file on disk (``member is None``) or a member of the ZIP archive at ``path``.

    Immutable, hashable and ordered by ``(path, member)`` like a frozen, ordered dataclass; written
    out by hand because ``dataclasses`` alone costs more to import than the whole quick dump.
    """

    __slots__ = ("path", "member")
    path: str
    member: str | None

    def __init__(self, path: str, member: str | None = None) -> None:
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "member", member)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def _key(self) -> tuple[str, str | None]:
        return (self.path, self.member)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileRef):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: FileRef) -> bool:
        if not isinstance(other, FileRef):
            return NotImplemented
        return self._key() < other._key()

    def __le__(self, other: FileRef) -> bool:
        if not isinstance(other, FileRef):
            return NotImplemented
        return self._key() <= other._key()

    def __gt__(self, other: FileRef) -> bool:
        if not isinstance(other, FileRef):
            return NotImplemented
        return self._key() > other._key()

    def __ge__(self, other: FileRef) -> bool:
        if not isinstance(other, FileRef):
            return NotImplemented
        return self._key() >= other._key()

    def __repr__(self) -> str:
        return f"FileRef(path={self.path!r}, member={self.member!r})"

    def __reduce__(self) -> tuple[type[FileRef], tuple[str, str | None]]:
        return (FileRef, self._key())

    @property
    def display(self) -> str:
        """The location as shown to a user, made terminal-safe."""
        if self.member is None:
            return safe_path(self.path)
        return safe_path(f"{self.path}!{self.member}")

    @property
    def name(self) -> str:
        """The last path component (of the member for ZIP members)."""
        return os.path.basename(self.member if self.member is not None else self.path)

    def __str__(self) -> str:
        return self.display


_zip_lock = _thread.allocate_lock()
_zip_cache: dict[str, zipfile.ZipFile] = {}


def open_zip(path: str) -> zipfile.ZipFile:
    """Return a shared, read-only :class:`zipfile.ZipFile` for ``path``."""
    import zipfile

    with _zip_lock:
        zf = _zip_cache.get(path)
        if zf is None:
            zf = zipfile.ZipFile(open_regular(path), "r")
            _zip_cache[path] = zf
        return zf


def open_ref(ref: FileRef) -> BinaryIO:
    """Open ``ref`` for binary reading. ZIP members are read into memory (seekable).

    Raises:
        OSError: the file cannot be opened.
        ValueError: the ZIP member is too large or unreadable.
    """
    if ref.member is None:
        return open_regular(ref.path)
    import zipfile
    import zlib

    zf = open_zip(ref.path)
    cap = limits.current().file_bytes
    with _zip_lock:
        info = zf.getinfo(ref.member)
        if info.file_size > cap:
            raise limits.LimitExceeded(ref.display, "file_bytes", info.file_size, cap)
        try:
            # the header's file_size may lie: read at most the cap, through a stream
            with zf.open(info) as member:
                data = read_bounded(member, cap, ref.display)  # type: ignore[arg-type]
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, zlib.error) as exc:
            raise ValueError(f"cannot read ZIP member: {exc}") from exc
    return io.BytesIO(data)


def read_prefix(ref: FileRef, size: int) -> bytes:
    """Return up to ``size`` bytes from the start of ``ref``."""
    with open_ref(ref) as fh:
        return fh.read(size)


def file_size(ref: FileRef) -> int:
    """Size in bytes of the file (or of the uncompressed ZIP member)."""
    if ref.member is None:
        with open_regular(ref.path) as fh:
            return os.fstat(fh.fileno()).st_size
    return open_zip(ref.path).getinfo(ref.member).file_size


def open_size(fh: BinaryIO) -> int | None:
    """The size of an open file or in-memory member (e.g. a ZIP member's stream), None when it cannot be
    told (an unseekable stream, a closed file)."""
    try:
        return os.fstat(fh.fileno()).st_size
    except (OSError, AttributeError, ValueError):  # io.UnsupportedOperation is both OSError and ValueError
        try:
            here = fh.tell()
            end = fh.seek(0, os.SEEK_END)
            fh.seek(here)
            return end
        except (OSError, ValueError):
            return None
