"""Reading values out of a pydicom dataset defensively, and the enhanced multi-frame functional groups.

Shared by the frame decoder (:mod:`.pixels`) and the geometry (:mod:`.geometry`), so neither imports the
other for it: a value that is absent, empty or unreadable reads as absent everywhere, and a per-frame
macro is looked up the same way for windows, positions and spacing.
"""

from __future__ import annotations

from typing import Any


def get(ds: Any, keyword: str, default: Any = None) -> Any:
    """``ds.keyword`` or ``default`` when absent, empty or unreadable."""
    try:
        value = ds.get(keyword, default)
    except Exception:  # noqa: BLE001 - a broken value reads as absent
        return default
    if value is None or value == "":
        return default
    return value


def values(value: Any) -> list[Any]:
    """A DICOM value as a list (single values become one-element lists)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, int, float)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def item(seq: Any, index: int = 0) -> Any:
    """Item ``index`` of a sequence value, or None."""
    try:
        return seq[index] if seq is not None and len(seq) > index else None
    except Exception:  # noqa: BLE001
        return None


def functional_group(ds: Any, frame: int, keyword: str) -> Any:
    """First item of macro ``keyword`` for ``frame``: per-frame group first, then shared, else None."""
    per = item(get(ds, "PerFrameFunctionalGroupsSequence"), frame)
    if per is not None:
        found = item(get(per, keyword))
        if found is not None:
            return found
    shared = item(get(ds, "SharedFunctionalGroupsSequence"))
    if shared is not None:
        return item(get(shared, keyword))
    return None
