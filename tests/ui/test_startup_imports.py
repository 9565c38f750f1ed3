"""Import budget of the viewer's start: what is loaded when the first picture of one file is on screen.

The first picture waits for every import on its way (one interpreter lock: imports are never free, even
in a thread), so subsystems the first picture does not use -- de-identification, archives, volumes and
MPR, comparison, pydicom's test-file downloader -- must load when first used, not at start. pydicom itself
is not needed for the first picture of an uncompressed file (the pydicom-free reader decodes it and makes
its inspector rows); the loader imports it in the background once the picture is out. Checked in a
fresh interpreter (``sys.modules`` once the first slice is displayed), like the ``dump`` import budget.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

REPO = Path(__file__).resolve().parents[2]

_PROBE = r"""
import asyncio, sys
sys.path.insert(0, sys.argv[2])  # the tests' pilot helpers
from pilot import wait_for_slice
from tui_dicom.ui.app import DicomViewerApp
from tui_dicom.ui.screens import main as main_screen

# the modules loaded when the first picture is displayed (the loader imports pydicom in the background
# a moment later): the snapshot is taken where the screen records the displayed picture
at_first_picture: list[str] = []

class Record(main_screen.DisplayRecord):
    def __init__(self, *args, **kwargs) -> None:
        if not at_first_picture:
            at_first_picture.extend(sorted(sys.modules))
        super().__init__(*args, **kwargs)

main_screen.DisplayRecord = Record

async def main() -> None:
    app = DicomViewerApp([sys.argv[1]])
    async with app.run_test(size=(120, 40)) as pilot:
        shown = await wait_for_slice(pilot, app)
        # repr, not json: json itself is on the list of modules the start must not import
        print(repr({"shown": shown and bool(at_first_picture), "modules": at_first_picture}))

asyncio.run(main())
"""

#: loaded on first use only (the package or module itself, or anything below it)
NOT_AT_START = (
    "tui_dicom.core.deid",
    "tui_dicom.core.archive",
    "tui_dicom.core.volume",
    "tui_dicom.ui.screens.anonymize",
    "tui_dicom.ui.screens.archive",
    "tui_dicom.ui.screens.compare",
    "tui_dicom.ui.screens.mpr",
    "tui_dicom.ui.screens.problem",
    "scipy",
    "pynetdicom",
    "dicomweb_client",
    "requests",
    "urllib3",
    "pydicom",
    # what only kitty pictures, measurement drawings, the layout test hook and the decoder child use
    "hashlib",
    "PIL.ImageDraw",
    "PIL.ImageFont",
    "json",
)


@pytest.fixture(scope="module")
def start_modules() -> set[str]:
    """Modules of a fresh viewer once it displayed pydicom's CT_small.dcm."""
    path = get_testdata_file("CT_small.dcm", download=False)
    assert path is not None
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), str(REPO / "tests")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    assert result["shown"], "the viewer displayed no slice"
    return set(result["modules"])


@pytest.mark.parametrize("name", NOT_AT_START)
def test_not_imported_before_first_picture(start_modules: set[str], name: str) -> None:
    loaded = sorted(m for m in start_modules if m == name or m.startswith(name + "."))
    assert not loaded, f"{name} is imported on the way to the first picture: {loaded}"


def test_first_picture_was_decoded_without_pydicom(start_modules: set[str]) -> None:
    # the budget above must not hold merely because nothing was decoded
    assert "tui_dicom.core.imaging.native" in start_modules
    assert "tui_dicom.core.imaging.pixels" in start_modules
    assert "tui_dicom.core.inspector.quickdump" in start_modules


_PRELOAD = r"""
import sys
from tui_dicom.core.dicom.preload import import_pydicom
import_pydicom()
print("requests" in sys.modules, "pydicom.examples" in sys.modules)
import requests  # still importable afterwards (the DICOMweb client needs it)
from pydicom import examples
print(requests.__name__, type(examples.ct).__name__)
"""


def test_preload_leaves_out_downloader_but_keeps_it_importable() -> None:
    pytest.importorskip("requests")
    proc = subprocess.run(
        [sys.executable, "-c", _PRELOAD], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False", "False", "requests", "FileDataset"]


_PRELOAD_KEEP = r"""
import sys
from tui_dicom.core.dicom.preload import import_pydicom
import_pydicom(hide_downloader=False)
import pydicom.data.download as download
print(download.HAVE_REQUESTS)
"""


def test_preload_can_keep_the_downloader() -> None:
    """An archive session (its client imports requests in another thread) keeps pydicom's import as is."""
    pytest.importorskip("requests")
    proc = subprocess.run(
        [sys.executable, "-c", _PRELOAD_KEEP], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True"]


def test_start_up_imports_run_without_collection_then_freeze() -> None:
    """The viewer's start-up imports run with the collector paused; what they made is frozen after."""
    import gc

    from tui_dicom.commands.view import _imports_without_collection

    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        with _imports_without_collection():
            assert not gc.isenabled()
            kept = [object() for _ in range(10)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(kept)
        with pytest.raises(RuntimeError), _imports_without_collection():
            raise RuntimeError("detect failed")
        assert gc.isenabled(), "an error during the imports left the collector off"
    finally:
        gc.unfreeze()
        gc.enable()


class _Prepared(Exception):
    """Raised by the stand-in for the viewer's imports: the start got that far."""


@pytest.mark.parametrize(("before", "after"), [(None, "1"), ("4", "4")])
def test_viewer_start_keeps_openblas_to_one_thread(
    monkeypatch: pytest.MonkeyPatch, before: str | None, after: str
) -> None:
    """numpy's OpenBLAS spins a worker thread on a core after import; the viewer asks for none (a value the
    user set is kept), before numpy is imported; the imports run with the collector paused."""
    import gc
    import os

    from tui_dicom.cli import build_parser
    from tui_dicom.commands import view

    if before is None:
        monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", before)
    seen: list[tuple[str | None, bool]] = []

    def prepare(args: object, local: bool) -> None:
        seen.append((os.environ.get("OPENBLAS_NUM_THREADS"), gc.isenabled()))
        raise _Prepared

    monkeypatch.setattr(view, "_prepare", prepare)
    path = get_testdata_file("CT_small.dcm", download=False)
    try:
        with pytest.raises(_Prepared):
            view.run(build_parser(None).parse_args([str(path)]))
    finally:
        gc.unfreeze()
    assert seen == [(after, False)]
    assert gc.isenabled()
