"""Paths of the test files shipped inside pydicom itself, typed as paths.

``get_testdata_file(name)`` is typed ``str | Dataset | None`` because ``read=True`` returns a dataset;
with ``read=False`` it gives a path, or None when the file is absent. The files named here are part of
pydicom's own package, so a missing one means a broken pydicom install: a failure, not a skip.
"""

from __future__ import annotations

from pydicom.data import get_testdata_file


def bundled(name: str) -> str:
    """The path of pydicom's own test file ``name``."""
    path = get_testdata_file(name, download=False)
    assert isinstance(path, str), f"pydicom's own test file {name} is missing"
    return path
