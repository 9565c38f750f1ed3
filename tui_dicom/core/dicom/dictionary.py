"""The DICOM data dictionary without importing pydicom.

``import pydicom`` (3.0) loads numpy and every pixel decoder through ``pydicom.config``: about a
quarter of a second before the first tag can be named. The dictionaries themselves are plain data
modules inside the installed pydicom package (``_dicom_dict.py``, ``_private_dict.py``), so this
module loads those two files on their own, under private module names, without running
``pydicom/__init__.py``. The data is pydicom's own, so names, keywords and VRs are exactly the ones
pydicom would give. If the files cannot be found (a different pydicom layout), it falls back to
``pydicom.datadict``.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import sys
import zlib
from array import array
from bisect import bisect_left, bisect_right
from functools import lru_cache

#: ``typing`` is for the type checker only (``tui-dicom dump`` must start fast)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

#: (VR, VM, name, retired, keyword)
Entry = tuple[str, str, str, str, str]
#: creator -> element key ("0019xx10") -> (VR, VM, name, retired), pydicom's private dictionary layout
PrivateTables = dict[str, dict[str, tuple[str, str, str, str]]]


def _load_data_module(filename: str, alias: str) -> ModuleType | None:
    """Load ``pydicom/<filename>`` as a stand-alone module (it holds only dict literals)."""
    name = f"tui_dicom._pydicom_data.{alias}"
    if name in sys.modules:
        return sys.modules[name]
    try:
        spec = importlib.util.find_spec("pydicom")  # finds the package without importing it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, filename)
        if not os.path.isfile(path):
            continue
        file_spec = importlib.util.spec_from_file_location(name, path)
        if file_spec is None or file_spec.loader is None:
            return None
        module = importlib.util.module_from_spec(file_spec)
        try:
            file_spec.loader.exec_module(module)
        except Exception:  # noqa: BLE001 - not the data file we expect: use pydicom instead
            return None
        sys.modules[name] = module
        return module
    return None


def _data_file(filename: str) -> str | None:
    """Path of ``pydicom/<filename>`` without importing pydicom; None if not found."""
    try:
        spec = importlib.util.find_spec("pydicom")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, filename)
        if os.path.isfile(path):
            return path
    return None


@lru_cache(maxsize=1)
def _public() -> tuple[dict[int, Entry], dict[str, Entry]]:
    module = _load_data_module("_dicom_dict.py", "dicom_dict")
    if module is not None and hasattr(module, "DicomDictionary") and hasattr(module, "RepeatersDictionary"):
        return module.DicomDictionary, module.RepeatersDictionary
    from pydicom._dicom_dict import DicomDictionary, RepeatersDictionary

    return DicomDictionary, RepeatersDictionary


@lru_cache(maxsize=1)
def _private() -> PrivateTables:
    module = _load_data_module("_private_dict.py", "private_dict")
    if module is not None and hasattr(module, "private_dictionaries"):
        tables: dict[str, dict[str, tuple[str, str, str, str]]] = module.private_dictionaries
        return tables
    from pydicom._private_dict import private_dictionaries

    return private_dictionaries


# ------------------------------------------------------------------------------------ the compact form
#
# Executing pydicom's data modules builds ~5,000 public and ~10,000 private entries (tuples of five
# strings) before the first tag is named: most of what ``tui-dicom dump FILE`` would spend. A dump
# names a few dozen tags, so the entries are kept, after the first run, in a compact form in the user's
# cache: the tags as one array of ints (binary search), the entries as one string of tab-separated
# lines (sliced and split only when asked), the private ones as one block of lines per creator. Loading
# it is one ``marshal.loads`` of a handful of objects. The file is named after the pydicom data file it
# came from (path, size, modification time) and this format's version, so an upgraded pydicom gets a
# new one; when it cannot be read or written, the data modules are used as before.

_FORMAT = 1


def _cache_dir() -> str:
    """``$XDG_CACHE_HOME/tui-dicom`` (``~/.cache/tui-dicom`` when unset or not absolute)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tui-dicom")


def _cache_path(kind: str, source: str) -> str:
    st = os.stat(source)
    key = zlib.crc32(f"{_FORMAT}\0{os.path.realpath(source)}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return os.path.join(_cache_dir(), f"dict-{kind}-{key:08x}.bin")


def _load_compact(kind: str, build: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """The compact form of ``kind`` from the cache, built with ``build`` and stored when missing."""
    source = _data_file("_dicom_dict.py" if kind == "public" else "_private_dict.py")
    if source is None:
        return None
    try:
        path = _cache_path(kind, source)
    except OSError:
        return None
    try:
        with open(path, "rb") as fh:
            data = marshal.loads(fh.read())
        if isinstance(data, dict) and data.get("format") == _FORMAT:
            return data
    except (OSError, EOFError, ValueError, TypeError):
        pass
    try:
        data = build()
    except Exception:  # noqa: BLE001 - the data modules are used as they are
        return None
    data["format"] = _FORMAT
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(marshal.dumps(data))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: this run has the built form, the next builds it again
    return data


def _build_public() -> dict[str, Any]:
    dicom, repeaters = _public()
    tags = sorted(dicom)
    lines = []
    offsets = array("I", [0])
    pos = 0
    for tag in tags:
        line = "\t".join(dicom[tag]) + "\n"
        if line.count("\t") != 4 or line.count("\n") != 1:
            raise ValueError(f"entry of {tag:08X} does not fit the compact form")
        lines.append(line)
        pos += len(line)
        offsets.append(pos)
    return {
        "tags": array("I", tags).tobytes(),
        "offsets": offsets.tobytes(),
        "text": "\n" + "".join(lines),
        "repeaters": dict(repeaters),
    }


def _build_private() -> dict[str, Any]:
    spans: dict[str, tuple[int, int]] = {}
    parts = ["\n"]
    pos = 1
    for creator, table in _private().items():
        start = pos
        for key, entry in table.items():
            line = key + "\t" + "\t".join(entry) + "\n"
            if line.count("\t") != 4 or line.count("\n") != 1:
                raise ValueError(f"private entry {key} of {creator!r} does not fit the compact form")
            parts.append(line)
            pos += len(line)
        spans[creator] = (start - 1, pos)  # the block starts at the newline before its first line
    return {"spans": spans, "text": "".join(parts)}


class _CompactPublic:
    """Public entries looked up in the compact form: bisect on the tags, split one line when asked."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.tags = array("I")
        self.tags.frombytes(data["tags"])
        self.offsets = array("I")
        self.offsets.frombytes(data["offsets"])
        self.text: str = data["text"]  # a newline, then one line per tag
        self.repeaters: dict[str, Entry] = data["repeaters"]

    def get(self, tag: int) -> Entry | None:
        i = bisect_left(self.tags, tag)
        if i == len(self.tags) or self.tags[i] != tag:
            return None
        return self._entry(i)

    def _entry(self, i: int) -> Entry:
        vr, vm, name, retired, keyword = self.text[self.offsets[i] + 1 : self.offsets[i + 1]].split("\t")
        return vr, vm, name, retired, keyword

    def tag_for_keyword(self, keyword: str) -> int | None:
        if not keyword or "\t" in keyword or "\n" in keyword:
            return None
        at = self.text.find("\t" + keyword + "\n")
        if at < 0:
            return None
        return self.tags[bisect_right(self.offsets, at) - 1]


class _CompactPrivate:
    """Private entries looked up in the compact form: the creator's block, then its line for a key."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.spans: dict[str, tuple[int, int]] = data["spans"]
        self.text: str = data["text"]

    def get(self, creator: str, key: str) -> tuple[str, str, str, str] | None:
        span = self.spans.get(creator)
        if span is None:
            return None
        at = self.text.find("\n" + key + "\t", span[0], span[1])
        if at < 0:
            return None
        end = self.text.index("\n", at + 1)
        _, vr, vm, name, retired = self.text[at + 1 : end].split("\t")
        return vr, vm, name, retired


@lru_cache(maxsize=1)
def _compact_public() -> _CompactPublic | None:
    data = _load_compact("public", _build_public)
    return _CompactPublic(data) if data is not None else None


@lru_cache(maxsize=1)
def _compact_private() -> _CompactPrivate | None:
    data = _load_compact("private", _build_private)
    return _CompactPrivate(data) if data is not None else None


@lru_cache(maxsize=1)
def _masks() -> list[tuple[str, int, int]]:
    """Repeating-group masks in dictionary order, as pydicom builds them."""
    compact = _compact_public()
    out = []
    for mask_x in compact.repeaters if compact is not None else _public()[1]:
        mask1 = int(mask_x.replace("x", "0"), 16)
        mask2 = int("".join("0" if c == "x" else "F" for c in mask_x), 16)
        out.append((mask_x, mask1, mask2))
    return out


@lru_cache(maxsize=1)
def _keywords() -> dict[str, int]:
    return {entry[4]: tag for tag, entry in _public()[0].items()}


def public_entry(tag: int, *, repeaters: bool = True) -> Entry | None:
    """The dictionary entry of a public tag; None if unknown.

    With ``repeaters``, tags of repeating groups (50xx, 60xx, ...) are looked up in their masks too.
    """
    compact = _compact_public()
    if compact is not None:
        entry = compact.get(tag)
        masked = compact.repeaters
    else:
        dicom, masked = _public()
        entry = dicom.get(tag)
    if entry is not None:
        return entry
    if not repeaters or (tag >> 16) & 1:
        return None
    for mask_x, mask1, mask2 in _masks():
        if (tag ^ mask1) & mask2 == 0:
            return masked[mask_x]
    return None


def private_entry(tag: int, creator: str) -> tuple[str, str, str, str] | None:
    """(VR, VM, name, retired) of a private element under ``creator``, as pydicom looks it up; None if unknown."""
    compact = _compact_private()
    group, elem = f"{tag >> 16:04X}", f"{tag & 0xFFFF:04X}"
    keys = (group + elem, f"{group}xx{elem[-2:]}", f"{group[:2]}xxxx{elem[-2:]}")
    if compact is not None:
        for key in keys:
            found = compact.get(creator, key)
            if found is not None:
                return found
        return None
    table: Any = _private().get(creator)
    if not table:
        return None
    for key in keys:
        entry: tuple[str, str, str, str] | None = table.get(key)
        if entry is not None:
            return entry
    return None


def tag_for_keyword(keyword: str) -> int | None:
    """The tag of an official (non-repeating) keyword, or None."""
    compact = _compact_public()
    if compact is not None:
        return compact.tag_for_keyword(keyword)
    return _keywords().get(keyword)
