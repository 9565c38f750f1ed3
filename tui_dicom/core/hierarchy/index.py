"""Turn paths (DICOMDIR roots, folders, ZIP archives, single files) into one :class:`Hierarchy`.

- A folder with a DICOMDIR at its root is read through the DICOMDIR (:mod:`tui_dicom.core.hierarchy.dicomdir`);
  no listed image file is opened. Files beside it that it does not list are read from their own headers
  (a partial DICOMDIR must not hide images), and a DICOMDIR that lists no image is not used at all.
- A folder without one is scanned recursively; every file (with or without extension) is sniffed and
  its header read with the fast reader (:mod:`tui_dicom.core.hierarchy.header`), never its pixel data. Sub-folders
  that hold their own DICOMDIR are read through it. Symbolic links are followed only inside the opened
  folder. Symlink loops, dangling links, special files and unreadable files are reported, never fatal.
  Nothing is ever written to the tree.
- The tree limits of :mod:`tui_dicom.core.limits` (entries per folder, files per tree, DICOMDIR files per
  tree, records per DICOMDIR, frames per instance) cut the work with one line each; what was read stays.
- A ZIP archive is indexed in memory: a DICOMDIR inside it is used, other members are sniffed.
- Several paths merge into one hierarchy; an SOP Instance UID seen twice is listed once (first wins).

:class:`Indexer` works progressively for the UI: :meth:`Indexer.run` yields :class:`IndexProgress`
every ~200 files or ~0.25 s, and :meth:`Indexer.snapshot` (thread-safe) returns the sorted hierarchy so
far. :func:`build_index` does it all in one call.
"""

from __future__ import annotations

import errno
import os
import threading
import time
import zipfile
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from tui_dicom.core import limits
from tui_dicom.core.dicom.reading import sniff
from tui_dicom.core.dicom.source import FileRef, NotRegularFile, describe_mode, open_regular
from tui_dicom.core.errors import DicomViewerError, HeaderError, NotDicomError
from tui_dicom.core.hierarchy import dicomdir as dd
from tui_dicom.core.hierarchy.header import HeaderInfo, Unsupported, header_from_pydicom, read_header_from
from tui_dicom.core.hierarchy.model import (
    Hierarchy,
    IndexProblem,
    Instance,
    Patient,
    Series,
    Study,
    sort_hierarchy,
)

#: yield progress at least every this many files ...
PROGRESS_FILES = 200
#: ... or this many seconds
PROGRESS_SECONDS = 0.25

#: names of files that are obviously not DICOM; they are skipped silently when they fail the sniff
_IGNORED_NAMES = frozenset(
    {
        "LICENSE",
        "LICENCE",
        "README",
        "COPYING",
        "AUTHORS",
        "NOTICE",
        "CHANGELOG",
        "AUTORUN.INF",
        "THUMBS.DB",
        "DESKTOP.INI",
        "INDEX.HTM",
        "INDEX.HTML",
        "DIRFILE",
        "DICOMDIR",
    }
)
_IGNORED_EXTENSIONS = frozenset(
    {
        ".txt",
        ".md",
        ".rst",
        ".pdf",
        ".htm",
        ".html",
        ".xml",
        ".json",
        ".csv",
        ".ini",
        ".inf",
        ".cfg",
        ".log",
        ".exe",
        ".dll",
        ".so",
        ".dylib",
        ".jar",
        ".class",
        ".js",
        ".css",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".ico",
        ".svg",
        ".tif",
        ".tiff",
        ".zip",
        ".gz",
        ".bz2",
        ".xz",
        ".7z",
        ".tar",
        ".py",
        ".sh",
        ".bat",
        ".cmd",
        ".icc",
        ".icns",
        ".plist",
        ".url",
        ".lnk",
        ".mp4",
        ".avi",
        ".wav",
        ".nii",
        ".mat",
        ".dump",
        ".sys",
        ".cab",
        ".msi",
        ".chm",
        ".hlp",
        ".ttf",
        ".otf",
        ".xsl",
        ".xsd",
        ".dtd",
        ".properties",
        ".manifest",
        ".cat",
        ".db",
        ".sqlite",
        ".dat",
        ".bin",
        ".rtf",
        ".doc",
        ".docx",
    }
)


@dataclass
class IndexProgress:
    """How far indexing has come.

    Attributes:
        files_done: Files (or DICOMDIR records) handled so far.
        files_total: Files to handle in the current phase, when known.
        phase: ``"dicomdir"``, ``"scan"``, ``"zip"`` or ``"done"``.
    """

    files_done: int
    files_total: int | None
    phase: str


def is_obviously_not_dicom(name: str) -> bool:
    """True for names that are clearly not DICOM (README, LICENSE, .txt, hidden files...).

    Only used *after* a file failed the DICOM sniff, to decide whether to report it: a file is never
    skipped by its name alone.
    """
    if name.startswith("."):
        return True
    upper = name.upper()
    if upper in _IGNORED_NAMES or upper.split(".")[0] in _IGNORED_NAMES:
        return True
    return os.path.splitext(name)[1].lower() in _IGNORED_EXTENSIONS


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, NotRegularFile):
        return exc.strerror or "not a regular file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    return exc.strerror or str(exc) or type(exc).__name__


def _size_of(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _within(path: str, root_real: str) -> bool:
    """True if the real path of ``path`` is ``root_real`` or below it."""
    real = os.path.realpath(path)
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _ref_text(ref: FileRef) -> str:
    return ref.path if ref.member is None else f"{ref.path}!{ref.member}"


class Indexer:
    """Index ``paths`` progressively; safe to :meth:`snapshot` from another thread while running."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        cancel: threading.Event | None = None,
        progressive: bool = False,
        hold: threading.Event | None = None,
    ) -> None:
        """Args:
        paths: Folders, DICOMDIR files, ZIP archives or DICOM files.
        cancel: Set it to stop indexing early (checked between files).
        progressive: Walk DICOMDIRs in a helper thread and report the first series as soon as it is
            complete (for a viewer); one-shot commands read them straight through, which is faster.
        hold: Once a series can be shown, the rest of the index waits until this is set (or
            ``cancel``), e.g. until the viewer has shown that series: the rest of a big CD's walk would
            compete with that picture's decode and paint for the interpreter (on a 10,000-image CD the
            walk costs 0.4 s of CPU). A folder's scan waits after the progress that first reports an
            instance; a progressive DICOMDIR walk, in its helper thread, once its first series is
            complete.
        """
        self.progressive = progressive
        self.hold = hold
        self.paths = [os.fspath(p) for p in paths]
        self.cancel = cancel
        self._lock = threading.Lock()
        self._instances: list[tuple[HeaderInfo, Instance]] = []
        self._errors: list[IndexProblem] = []
        self._skipped: list[IndexProblem] = []
        self._sop_seen: set[str] = set()
        self._refs_seen: set[FileRef] = set()
        self._done = 0
        self._total: int | None = None
        self._phase = "scan"
        self._last_yield = 0.0
        self._last_done = 0
        #: DICOMDIR files read in the tree being indexed (the ``dicomdir_files`` limit)
        self._dicomdirs_read = 0

    # ------------------------------------------------------------------------------------ collecting

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _wait_for_hold(self, poll: float) -> None:
        """Wait until :attr:`hold` (or ``cancel``) is set, looking at ``cancel`` every ``poll`` s."""
        hold = self.hold
        while hold is not None and not hold.wait(poll) and not self._cancelled():
            pass

    def _hold_once_showable(self) -> None:
        """Wait for :attr:`hold` (or ``cancel``) once an instance was reported (see ``hold``)."""
        if self._instances:
            self._wait_for_hold(0.05)

    def _add(self, ref: FileRef, info: HeaderInfo) -> None:
        if ref in self._refs_seen:  # only this thread adds: a cheap early exit before the lock
            return
        instance = info.to_instance(ref, header_read=info.source != "dicomdir")
        with self._lock:
            if ref in self._refs_seen:
                return
            uid = instance.sop_instance_uid
            if uid:
                if uid in self._sop_seen:
                    return
                self._sop_seen.add(uid)
            self._refs_seen.add(ref)
            self._instances.append((info, instance))

    def _breathe(self) -> None:
        """In the viewer, pause the scan for a millisecond every 32 files.

        The scan and the UI share one interpreter lock; on a busy machine a scan that never sleeps
        leaves the UI thread seconds behind the keyboard. Commands (not progressive) never pause.
        """
        if self.progressive and self._done % 32 == 0:
            time.sleep(0.001)

    def _error(self, path: str, reason: str) -> None:
        with self._lock:
            self._errors.append(IndexProblem(path, reason))

    def _skip(self, path: str, reason: str) -> None:
        with self._lock:
            self._skipped.append(IndexProblem(path, reason))

    def _progress(self, force: bool = False) -> IndexProgress | None:
        now = time.monotonic()
        if (
            force
            or self._done - self._last_done >= PROGRESS_FILES
            or now - self._last_yield >= PROGRESS_SECONDS
        ):
            self._last_yield = now
            self._last_done = self._done
            return IndexProgress(self._done, self._total, self._phase)
        return None

    # ------------------------------------------------------------------------------------ run

    def run(self) -> Iterator[IndexProgress]:
        """Index every path, yielding progress every ~200 files or ~0.25 s, and once at the end."""
        self._last_yield = time.monotonic()
        for path in self.paths:
            if self._cancelled():
                break
            for progress in self._index_path(path):
                yield progress
                self._hold_once_showable()
        self._phase = "done"
        yield IndexProgress(self._done, self._total, "done")

    def _index_path(self, path: str) -> Generator[IndexProgress, None, None]:
        path = os.path.abspath(path)
        try:
            st = os.stat(path)
        except OSError as exc:
            if os.path.islink(path):
                reason = (
                    "symlink loop"
                    if exc.errno == errno.ELOOP
                    else "dangling symbolic link (its target is missing)"
                )
            else:
                reason = _os_reason(exc)
            self._error(path, reason)
            return
        import stat as stat_mod

        if stat_mod.S_ISDIR(st.st_mode):
            yield from self._index_folder(path)
            return
        if not stat_mod.S_ISREG(st.st_mode):
            self._error(path, f"{describe_mode(st.st_mode)}, not a regular file")
            return
        try:
            with open_regular(path) as fh:
                head = fh.read(132)
        except OSError as exc:
            self._error(path, _os_reason(exc))
            return
        if not sniff(head) and zipfile.is_zipfile(path):
            yield from self._index_zip(path)
            return
        if dd.normalize_name(os.path.basename(path)) == "DICOMDIR" and (
            yield from self._index_dicomdir(path)
        ):
            return
        ref = FileRef(path)
        info = self._read_file(ref, report_all=True)
        if info is None:
            return
        if info.is_directory:
            if not (yield from self._index_dicomdir(path)):
                self._error(path, "DICOMDIR could not be read")
            return
        self._add(ref, info)
        self._done += 1

    def _usable(self, where: str, info: HeaderInfo, size: int | None = None) -> HeaderInfo | None:
        """``info`` unless it identifies nothing (e.g. a file cut off inside its meta header).

        NumberOfFrames is cut to what a file of ``size`` bytes can hold and to the ``instance_frames``
        limit (a header claiming 2³¹−1 frames would otherwise make a list of two billion slices).
        """
        if info.is_directory:
            return info
        if not (info.sop_instance_uid or info.media_storage_sop_instance_uid or info.series_instance_uid):
            self._error(
                where, "header incomplete: no SOP Instance UID or Series Instance UID (truncated file?)"
            )
            return None
        if info.frames is not None and info.frames > 1:
            frames = info.frames
            if size is not None:
                bounded = dd.frames_bound(frames, size, info.rows, info.columns, info.transfer_syntax_uid)
                if bounded < frames:
                    self._error(where, f"claims {frames:,} frames; the file can hold at most {bounded:,}")
                    frames = bounded
            most = limits.current().instance_frames
            if frames > most:
                flag = limits.option_name("instance_frames")
                self._error(
                    where,
                    f"{frames:,} frames; the first {most:,} are shown (raise with --resource-limit {flag}=N)",
                )
                frames = most
            info.frames = frames
        return info

    def _read_file(self, ref: FileRef, *, report_all: bool = False) -> HeaderInfo | None:
        """Read one file's header; report problems; None if unusable."""
        where = _ref_text(ref)
        try:
            try:
                with open_regular(ref.path) as fh:
                    info = read_header_from(fh)
                    return self._usable(where, info, os.fstat(fh.fileno()).st_size)
            except Unsupported:
                return self._usable(where, header_from_pydicom(ref), _size_of(ref.path))
        except NotDicomError as exc:
            reason = str(exc) if "DICOM" in str(exc) else f"not a DICOM file ({exc})"
            if report_all or not is_obviously_not_dicom(ref.name):
                self._error(where, reason)
            else:
                self._skip(where, reason)
        except HeaderError as exc:
            self._error(where, exc.reason)
        except OSError as exc:
            self._error(where, _os_reason(exc))
        except DicomViewerError as exc:
            self._error(where, exc.reason)
        except Exception as exc:  # noqa: BLE001 - one bad file must never stop the scan
            from tui_dicom.core.logging import log_exception

            log_exception(f"reading {where}")
            self._error(where, f"cannot read header ({type(exc).__name__})")
        return None

    def _index_dicomdir(
        self, path: str, referenced: set[str] | None = None
    ) -> Generator[IndexProgress, None, bool]:
        """Read a DICOMDIR; returns (as the generator's value) True if it could be used.

        Args:
            path: The DICOMDIR.
            referenced: When given (a DICOMDIR found in a folder scan), the paths of the files it lists
                are added to it, and a DICOMDIR that lists no image is not used (its folder is scanned
                instead, so an empty DICOMDIR cannot hide the images beside it).
        """
        self._phase = "dicomdir"
        self._total = None
        most = limits.current().dicomdir_files
        if self._dicomdirs_read >= most:
            flag = limits.option_name("dicomdir_files")
            self._error(
                path,
                f"more than {most:,} DICOMDIR files in this tree; not read, its files are scanned "
                f"(raise with --resource-limit {flag}=N)",
            )
            return False
        self._dicomdirs_read += 1
        listed: set[str] = set() if referenced is None else referenced
        before = len(listed)
        try:
            if self.progressive:
                result = yield from self._walk_dicomdir_progressively(path, listed)
            else:

                def on_entry(ref: FileRef, info: HeaderInfo) -> None:
                    listed.add(ref.path)
                    self._count_entry(ref, info)

                result = dd.read_dicomdir(path, cancel=self.cancel, on_entry=on_entry)
        except dd.NotADicomdir as exc:
            self._error(path, f"DICOMDIR could not be read ({exc}); its folder is scanned instead")
            return False
        except OSError as exc:
            self._error(
                path, f"DICOMDIR could not be read ({_os_reason(exc)}); its folder is scanned instead"
            )
            return False
        except Exception as exc:  # noqa: BLE001 - a hostile DICOMDIR must never stop indexing
            from tui_dicom.core.logging import log_exception

            log_exception(f"reading DICOMDIR {path}")
            self._error(
                path, f"DICOMDIR could not be read ({type(exc).__name__}); its folder is scanned instead"
            )
            return False
        with self._lock:
            self._errors.extend(result.errors)
        progress = self._progress(force=True)
        if progress is not None:
            yield progress
        if referenced is not None and len(listed) == before and not self._cancelled():
            self._error(path, "DICOMDIR lists no image; its folder is scanned instead")
            return False
        return True

    def _count_entry(self, ref: FileRef, info: HeaderInfo) -> None:
        self._add(ref, info)
        self._done += 1

    def _walk_dicomdir_progressively(
        self, path: str, listed: set[str]
    ) -> Generator[IndexProgress, None, dd.DicomdirResult]:
        """Walk a DICOMDIR in a helper thread, adding entries as they are found.

        On a big CD the viewer can show the first series before the walk ends: progress is yielded as
        soon as the first series is complete (the walk has moved on to another series), then every
        ~0.25 s. Returns (as the generator's value) the walker's result; re-raises its exception.
        """
        finished = threading.Event()
        first_series_done = threading.Event()
        box: dict[str, Any] = {}
        last_series: list[str] = []

        def on_entry(ref: FileRef, info: HeaderInfo) -> None:
            listed.add(ref.path)
            self._add(ref, info)
            self._done += 1
            if first_series_done.is_set():
                self._wait_for_hold(0.02)
                if self._done % 256 == 0:
                    # the viewer is decoding the first series now: let its thread have the GIL
                    time.sleep(0.002)
            elif last_series and info.series_instance_uid != last_series[0]:
                first_series_done.set()
            if not last_series:
                last_series.append(info.series_instance_uid)

        def walk() -> None:
            try:
                box["result"] = dd.read_dicomdir(path, cancel=self.cancel, on_entry=on_entry)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
                box["error"] = exc
            finally:
                finished.set()

        threading.Thread(target=walk, name="dicomdir-walk", daemon=True).start()
        told_first = False
        while not finished.wait(0.01):
            # the walk is fast: report the first complete series at once, then only every ~0.25 s
            # (each report makes the viewer sort a snapshot of everything found so far)
            due = time.monotonic() - self._last_yield >= PROGRESS_SECONDS
            if (not told_first and first_series_done.is_set()) or due:
                told_first = told_first or first_series_done.is_set()
                progress = self._progress(force=True)
                if progress is not None:
                    yield progress
        if "error" in box:
            raise box["error"]
        result: dd.DicomdirResult = box["result"]
        return result

    def _list_folder(self, folder: str) -> list[os.DirEntry[str]] | None:
        """The entries of ``folder`` sorted by name, at most ``folder_entries`` of them; None if unreadable."""
        most = limits.current().folder_entries
        entries: list[os.DirEntry[str]] = []
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if len(entries) >= most:
                        flag = limits.option_name("folder_entries")
                        self._error(
                            folder,
                            f"more than {most:,} entries; the first {most:,} are scanned "
                            f"(raise with --resource-limit {flag}=N)",
                        )
                        break
                    entries.append(entry)
        except OSError as exc:
            self._error(folder, _os_reason(exc))
            return None
        entries.sort(key=lambda e: e.name)
        return entries

    def _index_folder(self, root: str) -> Iterator[IndexProgress]:
        """Scan ``root`` recursively, reading sub-trees that hold a DICOMDIR through it.

        Symbolic links are followed only while they stay inside ``root`` (a link out is refused with
        a reason, as DICOMDIR File IDs are); each folder lists at most ``folder_entries`` entries and
        the whole tree scans at most that many files. Progress is yielded while listing, too.
        """
        files: list[str] = []
        visited: set[tuple[int, int]] = set()
        stack = [root]
        root_real = os.path.realpath(root)
        failed_dicomdirs: set[str] = set()
        most_files = limits.current().folder_entries
        files_capped = False
        self._dicomdirs_read = 0
        self._phase = "scan"
        while stack:
            if self._cancelled():
                return
            folder = stack.pop()
            try:
                st = os.stat(folder)
            except OSError as exc:
                self._error(folder, _os_reason(exc))
                continue
            key = (st.st_dev, st.st_ino)
            if key in visited:
                self._error(folder, "symlink loop (this folder was already visited); not followed")
                continue
            visited.add(key)
            entries = self._list_folder(folder)
            if entries is None:
                continue
            dicomdir = None
            for entry in entries:
                if dd.normalize_name(entry.name) == "DICOMDIR":
                    try:
                        if entry.is_file() and (not entry.is_symlink() or _within(entry.path, root_real)):
                            dicomdir = entry.path
                            break
                    except OSError:
                        pass
            if dicomdir is not None and dicomdir not in failed_dicomdirs:
                referenced: set[str] = set()
                used = yield from self._index_dicomdir(dicomdir, referenced)
                self._phase = "scan"
                if used:
                    yield from self._scan_beside(folder, referenced)
                    self._phase = "scan"
                    continue
                failed_dicomdirs.add(dicomdir)
            subdirs = []
            for entry in entries:
                try:
                    if entry.is_symlink():
                        try:
                            target = os.stat(entry.path)
                        except OSError as exc:
                            if exc.errno == errno.ELOOP:
                                self._error(entry.path, "symlink loop")
                            else:
                                self._error(entry.path, "dangling symbolic link (its target is missing)")
                            continue
                        if not _within(entry.path, root_real):
                            self._error(
                                entry.path, "symbolic link pointing outside the opened folder; not followed"
                            )
                            continue
                        import stat as stat_mod

                        if stat_mod.S_ISDIR(target.st_mode):
                            subdirs.append(entry.path)
                        elif stat_mod.S_ISREG(target.st_mode):
                            files.append(entry.path)
                        else:
                            self._error(entry.path, "not a regular file; skipped")
                    elif entry.is_dir():
                        subdirs.append(entry.path)
                    elif entry.is_file():
                        if entry.path != dicomdir:
                            files.append(entry.path)
                    else:
                        self._error(entry.path, "not a regular file; skipped")
                except OSError as exc:
                    self._error(entry.path, _os_reason(exc))
            if len(files) > most_files:
                del files[most_files:]
                if not files_capped:
                    files_capped = True
                    flag = limits.option_name("folder_entries")
                    self._error(
                        root,
                        f"more than {most_files:,} files in this tree; the first {most_files:,} are scanned "
                        f"(raise with --resource-limit {flag}=N)",
                    )
            stack.extend(reversed(subdirs))
            self._total = self._done + len(files)
            progress = self._progress()
            if progress is not None:
                yield progress
        self._phase = "scan"
        self._total = self._done + len(files)
        for path in files:
            if self._cancelled():
                return
            ref = FileRef(path)
            info = self._read_file(ref)
            self._done += 1
            self._breathe()
            if info is not None and not info.is_directory:
                self._add(ref, info)
            progress = self._progress()
            if progress is not None:
                yield progress

    def _scan_beside(self, folder: str, referenced: set[str]) -> Iterator[IndexProgress]:
        """Add the DICOM files below a DICOMDIR's folder that it does not list.

        A partial DICOMDIR must not hide the images beside it. Only names: the tree is listed (symbolic
        links are not followed, nested directory files and obviously non-DICOM names are skipped) and
        only unlisted files are opened; those that are not DICOM (a CD's viewer program, README,
        AUTORUN.INF) are ignored without a word, and sub-folders holding their own DICOMDIR are left
        alone (another file-set). Found images are reported in one line.
        """
        found = 0
        stack = [folder]
        most = limits.current().folder_entries
        while stack:
            if self._cancelled():
                return
            current = stack.pop()
            try:
                with os.scandir(current) as it:
                    entries = [entry for _, entry in zip(range(most), it, strict=False)]
            except OSError:
                continue
            if current != folder and any(dd.normalize_name(e.name) == "DICOMDIR" for e in entries):
                continue  # another file-set with its own DICOMDIR: not this DICOMDIR's business
            for entry in entries:
                try:
                    if entry.is_symlink():
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                except OSError:
                    continue
                name = dd.normalize_name(entry.name)
                if (
                    entry.path in referenced
                    or name in ("DICOMDIR", "DIRFILE")
                    or is_obviously_not_dicom(entry.name)
                ):
                    continue
                info = self._read_quietly(entry.path)
                if info is None or info.is_directory:
                    continue
                ref = FileRef(entry.path)
                self._add(ref, info)
                self._done += 1
                self._breathe()
                found += 1
                progress = self._progress()
                if progress is not None:
                    yield progress
        if found:
            self._error(
                folder,
                f"{found:,} DICOM {'file' if found == 1 else 'files'} in the DICOMDIR's folder "
                f"{'is' if found == 1 else 'are'} not listed in it; read from {'its' if found == 1 else 'their'} own header",
            )

    def _read_quietly(self, path: str) -> HeaderInfo | None:
        """The header of ``path`` if it is a usable DICOM file; None without a report otherwise."""
        try:
            try:
                with open_regular(path) as fh:
                    info = read_header_from(fh)
                    size: int | None = os.fstat(fh.fileno()).st_size
            except Unsupported:
                info = header_from_pydicom(FileRef(path))
                size = _size_of(path)
        except Exception:  # noqa: BLE001 - not DICOM, unreadable: a file beside a DICOMDIR, ignored
            return None
        if info.is_directory or not (info.sop_instance_uid or info.media_storage_sop_instance_uid):
            return None
        return self._usable(path, info, size)

    def _index_zip(self, path: str) -> Iterator[IndexProgress]:
        """Index a ZIP archive in memory: through its DICOMDIRs, else member by member."""
        self._phase = "zip"
        try:
            zf = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as exc:
            self._error(path, f"cannot open ZIP archive: {exc}")
            return
        with zf:
            members = [info for info in zf.infolist() if not info.is_dir()]
            covered: list[str] = []
            dicomdir_members = set()
            for info in members:
                name = info.filename
                if dd.normalize_name(name.rsplit("/", 1)[-1]) != "DICOMDIR":
                    continue
                dicomdir_members.add(name)
                try:
                    result = dd.read_dicomdir_in_zip(path, zf, name, cancel=self.cancel)
                except Exception as exc:  # noqa: BLE001 - a hostile DICOMDIR must never stop indexing
                    self._error(
                        f"{path}!{name}", f"DICOMDIR could not be read ({exc}); members are sniffed instead"
                    )
                    continue
                base = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
                covered.append(base)
                for ref, hinfo in result.entries:
                    self._add(ref, hinfo)
                    self._done += 1
                with self._lock:
                    self._errors.extend(result.errors)
            todo = [
                info
                for info in members
                if info.filename not in dicomdir_members
                and not any(info.filename.startswith(b) for b in covered)
            ]
            self._phase = "zip"
            self._total = self._done + len(todo)
            for info in todo:
                if self._cancelled():
                    return
                ref = FileRef(path, info.filename)
                member_info = self._read_member(zf, ref, info)
                self._done += 1
                self._breathe()
                if member_info is not None and not member_info.is_directory:
                    self._add(ref, member_info)
                progress = self._progress()
                if progress is not None:
                    yield progress

    def _read_member(self, zf: zipfile.ZipFile, ref: FileRef, info: zipfile.ZipInfo) -> HeaderInfo | None:
        where = _ref_text(ref)
        if info.flag_bits & 0x1:
            self._error(where, "encrypted ZIP member; skipped")
            return None
        try:
            try:
                with zf.open(info) as fh:
                    header = read_header_from(cast(BinaryIO, fh), size=info.file_size)
                    return self._usable(where, header, info.file_size)
            except Unsupported:
                return self._usable(where, header_from_pydicom(ref), info.file_size)
        except NotDicomError as exc:
            if not is_obviously_not_dicom(ref.name):
                self._error(where, exc.reason)
            else:
                self._skip(where, exc.reason)
        except (HeaderError, DicomViewerError) as exc:
            self._error(where, exc.reason)
        except (OSError, ValueError, zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
            self._error(where, f"cannot read ZIP member: {exc}")
        except Exception as exc:  # noqa: BLE001 - one bad member must never stop the scan
            from tui_dicom.core.logging import log_exception

            log_exception(f"reading {where}")
            self._error(where, f"cannot read header ({type(exc).__name__})")
        return None

    # ------------------------------------------------------------------------------------ result

    def snapshot(self) -> Hierarchy:
        """The hierarchy indexed so far: sorted, one entry per SOP Instance UID. Thread-safe."""
        with self._lock:
            items = list(self._instances)
            errors = list(self._errors)
            skipped = list(self._skipped)
        hierarchy = assemble(items, errors)
        hierarchy.skipped = skipped
        return hierarchy


def assemble(items: Sequence[tuple[HeaderInfo, Instance]], errors: Sequence[IndexProblem] = ()) -> Hierarchy:
    """Group ``(values, instance)`` pairs into patients, studies and series, and sort them.

    Studies are grouped by StudyInstanceUID (under the first patient that has them), series by
    SeriesInstanceUID within their study; files lacking a UID are grouped by what they have.
    """
    patients: dict[tuple[str, str], Patient] = {}
    studies: dict[str, Study] = {}
    series_map: dict[tuple[str, str], Series] = {}
    for info, instance in items:
        pkey = (info.patient_id, "") if info.patient_id else ("", info.patient_name)
        patient = patients.get(pkey)
        if patient is None:
            patient = Patient(
                patient_id=info.patient_id,
                patient_name=info.patient_name,
                birth_date=info.birth_date,
                sex=info.sex,
            )
            patients[pkey] = patient
        skey = info.study_instance_uid or f"\0{pkey}\0{info.study_date}\0{info.study_id}"
        study = studies.get(skey)
        if study is None:
            study = Study(
                study_instance_uid=info.study_instance_uid,
                study_date=info.study_date,
                study_time=info.study_time,
                study_description=info.study_description,
                accession_number=info.accession_number,
                study_id=info.study_id,
            )
            studies[skey] = study
            patient.studies.append(study)
        rkey = (
            skey,
            info.series_instance_uid or f"\0{info.series_number}\0{info.modality}\0{info.series_description}",
        )
        series = series_map.get(rkey)
        if series is None:
            series = Series(
                series_instance_uid=info.series_instance_uid,
                series_number=info.series_number,
                modality=info.modality,
                series_description=info.series_description,
                body_part=info.body_part,
            )
            series_map[rkey] = series
            study.series.append(series)
        series.instances.append(instance)
    result = Hierarchy(patients=list(patients.values()), errors=list(errors))
    sort_hierarchy(result.patients)
    return result


def build_index(
    paths: Sequence[str | os.PathLike[str]], *, cancel: threading.Event | None = None
) -> Hierarchy:
    """Index ``paths`` (folders, DICOMDIRs, ZIP archives, files) into one sorted hierarchy.

    Args:
        paths: What to index; several paths merge into one hierarchy.
        cancel: Set it (from another thread) to stop early; the hierarchy so far is returned.

    Returns:
        The hierarchy, with every unusable file in ``errors``.
    """
    indexer = Indexer(paths, cancel=cancel)
    for _progress in indexer.run():
        pass
    return indexer.snapshot()
