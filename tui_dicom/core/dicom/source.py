"""Where a DICOM file lives: a path on disk, or a member of a ZIP archive (read without extracting).

Everything that opens a DICOM file goes through :func:`open_ref` so ZIP members and plain files are
handled alike, read-only.
"""

from __future__ import annotations

import _thread
import io
import os

from tui_dicom.core.safe import safe_path

#: ``zipfile`` (with bz2, lzma, shutil), ``dataclasses`` and ``typing`` cost milliseconds at import, and
#: ``tui-dicom dump FILE`` must start fast: ZIP support is imported when a ZIP is opened, and the types
#: are for the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import zipfile
    from typing import BinaryIO

#: refuse to inflate a single ZIP member larger than this (a zip bomb is not a DICOM file)
MAX_MEMBER_BYTES = 2 * 1024**3


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
            zf = zipfile.ZipFile(path, "r")
            _zip_cache[path] = zf
        return zf


def open_ref(ref: FileRef) -> BinaryIO:
    """Open ``ref`` for binary reading. ZIP members are read into memory (seekable).

    Raises:
        OSError: the file cannot be opened.
        ValueError: the ZIP member is too large or unreadable.
    """
    if ref.member is None:
        return open(ref.path, "rb")  # noqa: SIM115 - caller closes
    import zipfile

    zf = open_zip(ref.path)
    with _zip_lock:
        info = zf.getinfo(ref.member)
        if info.file_size > MAX_MEMBER_BYTES:
            raise ValueError(f"ZIP member is {info.file_size:,} bytes; refusing to inflate it")
        try:
            data = zf.read(info)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
            raise ValueError(f"cannot read ZIP member: {exc}") from exc
    return io.BytesIO(data)


def read_prefix(ref: FileRef, size: int) -> bytes:
    """Return up to ``size`` bytes from the start of ``ref``."""
    with open_ref(ref) as fh:
        return fh.read(size)


def file_size(ref: FileRef) -> int:
    """Size in bytes of the file (or of the uncompressed ZIP member)."""
    if ref.member is None:
        return os.stat(ref.path).st_size
    return open_zip(ref.path).getinfo(ref.member).file_size
