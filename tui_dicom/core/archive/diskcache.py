"""Where retrieved instances land: a private, byte-bounded cache, or a folder the user named.

The cache lives at ``$XDG_CACHE_HOME/tui-dicom`` (``~/.cache/tui-dicom``), mode 0700 — patient data
must not be readable by other users of a shared server — and outside any folder the user opened, so
viewing an archive never writes next to someone's data. Files are ``ARCHIVE/STUDY/SERIES/SOP.dcm``
where ``ARCHIVE`` is a hash of the address (two archives may hold different bytes under one UID) and
each UID is used as a name only when it is a valid UID (digits and dots), otherwise hashed: a hostile
archive cannot make us write outside the cache.

The bound is in bytes (``--cache-mb``): after each stored file the least recently used files are
removed until the total fits, except those of the pinned series (the one being shown or retrieved).
Files are written to a temporary name and renamed, so a reader never sees half a file: whole, with
:func:`write_file`, or while they arrive, with :class:`StagedFile` (its temporary name is in the
destination's :meth:`staging_dir`, on the same file system, because the final name is known only once
the file's header has been read).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import time
from pathlib import Path

_UID_RE = re.compile(r"[0-9]+(\.[0-9]+)*")  # fullmatch: "$" would let a final newline through
DEFAULT_CACHE_MB = 2048


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/tui-dicom`` (``~/.cache/tui-dicom`` when the variable is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tui-dicom"


def uid_name(uid: str) -> str:
    """A file name for ``uid``: the UID itself when valid (≤ 64 chars, digits and dots), else a hash."""
    if 0 < len(uid) <= 64 and _UID_RE.fullmatch(uid):
        return uid
    return "x" + hashlib.sha256(uid.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        path.chmod(0o700)


class DiskCache:
    """A byte-bounded LRU of retrieved files under one archive's folder (thread-safe)."""

    def __init__(self, address_key: str, max_bytes: int, root: Path | None = None) -> None:
        self.root = root or cache_root()
        _private_dir(self.root)
        self.dir = self.root / hashlib.sha256(address_key.encode()).hexdigest()[:16]
        _private_dir(self.dir)
        self.max_bytes = max(0, int(max_bytes))
        self._lock = threading.Lock()
        self._files: dict[Path, tuple[int, float]] = {}  # path -> (size, last use)
        self._bytes = 0
        self._pinned: set[Path] = set()
        self._scan()

    def _scan(self) -> None:
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                path = Path(dirpath) / name
                try:
                    st = path.stat()
                except OSError:
                    continue
                if ".part-" in name and st.st_mtime < time.time() - 3600:
                    with contextlib.suppress(OSError):
                        path.unlink()  # left by a killed process
                    continue
                if name.endswith(".dcm"):
                    self._files[path] = (st.st_size, st.st_mtime)
                    self._bytes += st.st_size

    @property
    def nbytes(self) -> int:
        """Bytes of all cached files (every archive's)."""
        return self._bytes

    def series_dir(self, study_uid: str, series_uid: str) -> Path:
        """The folder of one series."""
        return self.dir / uid_name(study_uid) / uid_name(series_uid)

    def path_for(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Where an instance is (or will be) in the cache."""
        return self.series_dir(study_uid, series_uid) / (uid_name(sop_uid) + ".dcm")

    def staging_dir(self) -> Path:
        """Where files being received are written before they are renamed (this archive's folder)."""
        return self.dir

    def pin(self, study_uid: str, series_uid: str) -> None:
        """Keep this series while it is shown or retrieved (replaces the previous pin)."""
        with self._lock:
            self._pinned = {self.series_dir(study_uid, series_uid)}

    def has(self, path: Path) -> bool:
        """True when ``path`` is a complete cached file; marks it recently used."""
        with self._lock:
            item = self._files.get(path)
            if item is None:
                return False
            self._files[path] = (item[0], time.time())
        return path.is_file()

    def stored(self, path: Path, nbytes: int) -> None:
        """Record a file written completely at ``path``, then evict to stay within the bound."""
        with self._lock:
            old = self._files.get(path)
            if old is not None:
                self._bytes -= old[0]
            self._files[path] = (nbytes, time.time())
            self._bytes += nbytes
            self._evict(keep=path)

    def _evict(self, keep: Path) -> None:
        if self._bytes <= self.max_bytes:
            return
        for path, (size, _used) in sorted(self._files.items(), key=lambda kv: kv[1][1]):
            if self._bytes <= self.max_bytes:
                break
            if path == keep or path.parent in self._pinned:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
            del self._files[path]
            self._bytes -= size


class OutputFolder:
    """``tui-dicom get -o DIR``: ``DIR/SERIES_UID/SOP_UID.dcm``, one file per instance, nothing else."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[Path] = []

    def path_for(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Where an instance goes in the folder."""
        return self.root / uid_name(series_uid) / (uid_name(sop_uid) + ".dcm")

    def staging_dir(self) -> Path:
        """Where files being received are written before they are renamed (the folder itself)."""
        return self.root

    def stored(self, path: Path, nbytes: int) -> None:
        """Remember what was written (for the summary)."""
        self.files.append(path)


def write_file(path: Path, chunks: list[bytes] | tuple[bytes, ...]) -> int:
    """Write ``chunks`` to ``path`` atomically (temporary name, then rename); mode 0600; returns bytes."""
    _private_dir(path.parent)
    tmp = path.with_name(f"{path.name}.part-{os.getpid()}-{threading.get_ident()}")
    size = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
                size += len(chunk)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return size


_staged_count = 0
_staged_lock = threading.Lock()


class StagedFile:
    """A file written while it arrives, under a temporary name, and renamed into place when complete.

    For streamed retrieves: the bytes go to disk as they come (nothing held in memory), and the final
    name, which depends on the UIDs inside the file, is chosen once it is complete. The temporary name
    holds ``.part-`` so a cache scan removes what a killed process left.
    """

    def __init__(self, folder: Path) -> None:
        global _staged_count
        with _staged_lock:
            _staged_count += 1
            count = _staged_count
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.tmp = folder / f".incoming.part-{os.getpid()}-{threading.get_ident()}-{count}"
        self.size = 0
        self._fd: int | None = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data`` (all of it: ``os.write`` may write less, so loop)."""
        if self._fd is None:
            raise ValueError("write to a closed StagedFile")
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
            self.size += n

    def close(self) -> None:
        """Close the temporary file (it stays until :meth:`commit` or :meth:`discard`)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def commit(self, path: Path) -> int:
        """Rename the complete file to ``path`` (its folder made private if new); returns its size."""
        self.close()
        if not path.parent.is_dir():
            _private_dir(path.parent)
        os.replace(self.tmp, path)
        return self.size

    def discard(self) -> None:
        """Close and remove the temporary file (an incomplete or unwanted part)."""
        self.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()
