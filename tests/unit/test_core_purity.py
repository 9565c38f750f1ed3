"""The core never imports the UI: import every tui_dicom.core module in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

CODE = """
import importlib, pkgutil, sys
import tui_dicom.core as core
names = [m.name for m in pkgutil.iter_modules(core.__path__, "tui_dicom.core.")]
for name in names:
    importlib.import_module(name)
print(len(names))
print(sorted(m for m in ("textual", "rich", "textual_image") if m in sys.modules))
"""


def test_core_imports_no_textual_rich_or_textual_image() -> None:
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, cwd=REPO, check=True)
    count, leaked = proc.stdout.strip().splitlines()
    assert int(count) >= 8  # index, header, dicomdir, model, loading, source, safe, errors, ...
    assert leaked == "[]"
