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
import os
import sys
from functools import lru_cache
from types import ModuleType
from typing import cast

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
        # a module loaded from a path is typed Any; the file is pydicom's own _private_dict.py
        return cast(PrivateTables, module.private_dictionaries)
    from pydicom._private_dict import private_dictionaries

    return private_dictionaries


@lru_cache(maxsize=1)
def _masks() -> list[tuple[str, int, int]]:
    """Repeating-group masks in dictionary order, as pydicom builds them."""
    out = []
    for mask_x in _public()[1]:
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
    table = _private().get(creator)
    if not table:
        return None
    group, elem = f"{tag >> 16:04X}", f"{tag & 0xFFFF:04X}"
    for key in (group + elem, f"{group}xx{elem[-2:]}", f"{group[:2]}xxxx{elem[-2:]}"):
        entry = table.get(key)
        if entry is not None:
            return entry
    return None


def tag_for_keyword(keyword: str) -> int | None:
    """The tag of an official (non-repeating) keyword, or None."""
    return _keywords().get(keyword)
