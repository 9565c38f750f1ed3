"""Import pydicom (and what decoding needs) ahead of the first request, without its download machinery.

``import pydicom`` was the largest single import of the viewer's first picture. A third of it is not
DICOM at all: ``pydicom.pixels.processing`` imports ``pydicom.data`` (the test-file downloader), which
imports ``requests`` (and urllib3, idna, charset_normalizer, certifi) only to fetch test files the viewer
never downloads. pydicom falls back to the standard library's ``urllib`` when ``requests`` is missing,
so :func:`import_pydicom` hides ``requests`` for the duration of that one import when nothing has loaded
it yet; ``requests`` stays importable afterwards (the DICOMweb client imports it as usual). Likewise
``pydicom.examples``, which looks up thirteen documentation files at import (each search walks the
installed data packages); it is imported for real the first time someone asks for it.

:func:`warm_up` imports what reading, decoding and windowing need ahead of their first use. The viewer's
first picture of an uncompressed file needs no pydicom at all (:mod:`tui_dicom.core.imaging.native`): the
command line warms up :data:`FIRST_PICTURE_MODULES` only, and the loader thread imports pydicom once the
first picture is on screen (``warm_up(pydicom=True)``), before a compressed slice or the inspector's
pydicom paths ask for it.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types

_lock = threading.Lock()

#: modules pydicom imports for its test-file downloader only (see the module docstring)
_DOWNLOAD_ONLY = ("requests",)
#: pydicom's documentation examples, imported by ``pydicom/__init__`` and used by nothing here
_EXAMPLES = "pydicom.examples"
#: what the first picture of an uncompressed slice imports: numpy and our reader, windowing and inspector
#: rows, no pydicom (``tests/ui/test_startup_imports.py`` keeps pydicom out of the first picture)
FIRST_PICTURE_MODULES = (
    "numpy",
    "tui_dicom.core.imaging.native",
    "tui_dicom.core.imaging.pixels",
    "tui_dicom.core.imaging.windowing",
    "tui_dicom.core.inspector.quickdump",
    "tui_dicom.core.session.slice_loader",
)


def import_pydicom(*, hide_downloader: bool = True) -> None:
    """Import pydicom, leaving out ``requests`` if nothing imported it before (idempotent, thread-safe).

    Hiding a module works through ``sys.modules[name] = None`` (``import`` then raises ImportError,
    which pydicom's downloader catches); the entry is removed right after, whatever happened. While it
    is hidden, another thread importing ``requests`` would fail: a caller that may have such a thread
    (the archive browser's network client) passes ``hide_downloader=False``.
    """
    if "pydicom" in sys.modules:
        return
    with _lock:
        if "pydicom" in sys.modules:
            return
        hidden = [name for name in _DOWNLOAD_ONLY if hide_downloader and name not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]
        # an empty stand-in while pydicom's __init__ runs; removed after, so a later import is real
        examples = types.ModuleType(_EXAMPLES)
        sys.modules.setdefault(_EXAMPLES, examples)
        try:
            importlib.import_module("pydicom")
        finally:
            for name in hidden:
                if sys.modules.get(name, 0) is None:
                    del sys.modules[name]
            if sys.modules.get(_EXAMPLES) is examples:
                del sys.modules[_EXAMPLES]


def warm_up(modules: tuple[str, ...] = (), *, pydicom: bool = True, hide_downloader: bool = True) -> None:
    """Import pydicom (see :func:`import_pydicom`) unless ``pydicom`` is false, then ``modules`` in order.

    An import that fails here fails again, with its message, where the module is really needed:
    warming up never raises.
    """
    try:
        if pydicom:
            import_pydicom(hide_downloader=hide_downloader)
        for name in modules:
            importlib.import_module(name)
    except Exception:  # noqa: BLE001 - see the docstring: the real use reports it
        return
