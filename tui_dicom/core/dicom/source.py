"""Where a DICOM file lives: a path on disk, or a member of a ZIP archive (read without extracting).

Everything that opens a DICOM file goes through :func:`open_ref` so ZIP members and plain files are
handled alike, read-only.
"""

from __future__ import annotations

import io
import os
import threading
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from tui_dicom.core.safe import safe_path

#: refuse to inflate a single ZIP member larger than this (a zip bomb is not a DICOM file)
MAX_MEMBER_BYTES = 2 * 1024**3


@dataclass(frozen=True, order=True)
class FileRef:
    """A file on disk (``member is None``) or a member of the ZIP archive at ``path``."""

    path: str
    member: str | None = None

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


_zip_lock = threading.Lock()
_zip_cache: dict[str, zipfile.ZipFile] = {}


def open_zip(path: str) -> zipfile.ZipFile:
    """Return a shared, read-only :class:`zipfile.ZipFile` for ``path``."""
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
