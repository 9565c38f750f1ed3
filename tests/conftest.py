"""Shared test fixtures: where the real data lives, skip markers, and a DCMTK-built CD.

Data locations (module constants, ``None``/missing folders make the tests that need them skip):

- ``PYDICOM_FILES``: pydicom's bundled ``test_files`` (with ``dicomdirtests/``).
- ``PYDICOM_CHARSETS``: pydicom's ``charset_files`` (Japanese, Korean, Chinese, Latin-1 names...).
- ``DATA_STORE``: pydicom-data's ``data_store/data`` (larger real files), or None if not installed.
- ``SHARED_DATA``: ``../shared/data`` beside the repository (real scanner/CD data, see its README).

Skip markers: ``needs_shared(*names)``, ``needs_tool(name)``, ``needs_data_store``.

Tiers: every test lives in a folder of ``tests/`` (``unit``, ``commands``, ``ui``, ``snapshots``,
``terminal``, ``parity``, ``hostile``, ``archive``) and gets that folder's marker here, so
``-m "ui or snapshots"`` picks tiers; the ``terminal`` folder's marker is the ``terminal`` marker the quick
loop (``-m "not slow and not terminal"``) leaves out. A test file left directly in ``tests/`` runs
untiered, with a warning. Shared helpers (this file, ``bundled``, ``dicomdir_gen``,
``hostile_corpus``, ``orthanc``, ``pilot``) stay at ``tests/``, which pytest puts on ``sys.path`` for this
conftest, so every tier imports them by name.

Fixtures:

- ``orthanc`` (session): a real Orthanc archive (Debian's ``/usr/sbin/Orthanc``) on free loopback ports,
  run as an unprivileged user with basic auth, C-FIND/C-GET/C-MOVE allowed and the DICOMweb and GDCM
  plugins; empty at start (upload with ``orthanc.upload(path)``). Skips when Orthanc is not installed.
  API in ``tests/orthanc.py``. Tests sharing it should select their own data (by UID or patient ID):
  other test files upload theirs to the same server.

- ``dcmtk_cd`` (session): a CD made by DCMTK ``dcmmkdir`` in a temporary folder from the
  ``ge_ct_head`` and ``dcm_qa_nih`` series, copied first under ISO 9660 names ``IMAGES/IM000001``...
  Returns a :class:`BuiltCD`. Read-only for tests: copy it (``copy_cd``) before changing anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom.data
import pytest
from orthanc import OrthancServer
from orthanc import available as orthanc_available

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
#: The tier folders of ``tests/``; each one's name is also its marker (registered in pyproject.toml).
TIERS = ("unit", "commands", "ui", "snapshots", "terminal", "parity", "hostile", "archive")
PYDICOM_DATA = Path(pydicom.data.__file__).resolve().parent
PYDICOM_FILES = PYDICOM_DATA / "test_files"
PYDICOM_CHARSETS = PYDICOM_DATA / "charset_files"
DICOMDIR_TESTS = PYDICOM_FILES / "dicomdirtests"
SHARED_DATA = REPO.parent / "shared" / "data"

try:
    import data_store

    DATA_STORE: Path | None = Path(os.path.dirname(data_store.__file__)) / "data"
except ImportError:  # pragma: no cover - pydicom-data is a test dependency
    DATA_STORE = None


def needs_shared(*names: str) -> pytest.MarkDecorator:
    """Skip unless ``../shared/data/NAME`` exists for every name."""
    missing = [n for n in names if not (SHARED_DATA / n).exists()]
    return pytest.mark.skipif(
        bool(missing), reason=f"shared data missing: {', '.join(missing)} (expected in {SHARED_DATA})"
    )


def needs_tool(name: str) -> pytest.MarkDecorator:
    """Skip unless the program ``name`` (e.g. DCMTK's ``dcmmkdir``) is on PATH."""
    return pytest.mark.skipif(
        shutil.which(name) is None, reason=f"{name} not installed (Debian package dcmtk)"
    )


needs_data_store = pytest.mark.skipif(
    DATA_STORE is None or not DATA_STORE.is_dir(), reason="pydicom-data not installed"
)


@dataclass(frozen=True)
class BuiltCD:
    """A CD folder made by ``dcmmkdir``.

    Attributes:
        root: The CD root (holds ``DICOMDIR`` and ``IMAGES/``).
        dicomdir: ``root / "DICOMDIR"``.
        sources: ``{"IM000001": original path, ...}``: where each copied file came from.
    """

    root: Path
    dicomdir: Path
    sources: dict[str, Path]


def shared_series_files() -> list[Path]:
    """The real files the CD is made of: ge_ct_head's 28 CT slices and dcm_qa_nih's GE and Siemens EPI."""
    files = sorted((SHARED_DATA / "ge_ct_head").glob("*.dcm"))
    files += sorted((SHARED_DATA / "dcm_qa_nih" / "In").glob("*/*/*.dcm"))
    return files


def make_cd(root: Path, files: list[Path]) -> BuiltCD:
    """Copy ``files`` to ``root/IMAGES/IM000001...`` and run ``dcmmkdir`` there.

    Raises:
        subprocess.CalledProcessError: dcmmkdir failed.
    """
    images = root / "IMAGES"
    images.mkdir(parents=True)
    sources = {}
    for i, src in enumerate(files, 1):
        name = f"IM{i:06d}"
        shutil.copyfile(src, images / name)
        sources[name] = src
    # +I invents missing type 1 values (ge_ct_head has no StudyDate); -Pgp: general purpose CD-R
    subprocess.run(
        ["dcmmkdir", "+r", "+I", "-Pgp", "+id", str(root), "+D", str(root / "DICOMDIR"), "IMAGES"],
        check=True,
        cwd=root,
        capture_output=True,
    )
    return BuiltCD(root=root, dicomdir=root / "DICOMDIR", sources=sources)


def copy_cd(cd: BuiltCD, dest: Path) -> BuiltCD:
    """A private, writable copy of ``cd`` at ``dest``."""
    shutil.copytree(cd.root, dest)
    return BuiltCD(root=dest, dicomdir=dest / "DICOMDIR", sources=dict(cd.sources))


@pytest.fixture(scope="session")
def dcmtk_cd(tmp_path_factory: pytest.TempPathFactory) -> BuiltCD:
    """A DCMTK-made CD of real series (read-only; see :func:`copy_cd`)."""
    if shutil.which("dcmmkdir") is None:
        pytest.skip("dcmmkdir not installed (Debian package dcmtk)")
    if not (SHARED_DATA / "ge_ct_head").is_dir() or not (SHARED_DATA / "dcm_qa_nih").is_dir():
        pytest.skip(f"shared data ge_ct_head / dcm_qa_nih missing (expected in {SHARED_DATA})")
    return make_cd(tmp_path_factory.mktemp("dcmtk_cd") / "CD", shared_series_files())


@pytest.fixture(scope="session")
def orthanc() -> Iterator[OrthancServer]:
    """One Orthanc for the whole session (ready in ~1 s, stopping takes ~3 s); stopped by PID at the end."""
    reason = orthanc_available()
    if reason:
        pytest.skip(reason)
    server = OrthancServer.start()
    try:
        yield server
    finally:
        server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier, from the folder it lives in (``tests/TIER/test_x.py``).

    A test file left directly in ``tests/`` (or in an unknown folder) still runs, untiered, with a
    collection warning naming it: move it into its tier (ARCHITECTURE.md, "Tests").
    """
    stray = set()
    for item in items:
        try:
            tier = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:  # a test outside tests/ (given on the command line): no tier
            continue
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
        else:
            stray.add(str(item.path.resolve().relative_to(REPO)))
    if stray:
        warnings.warn(
            pytest.PytestCollectionWarning(
                f"tests outside the tier folders of tests/ ({', '.join(TIERS)}), so without a tier marker: "
                + ", ".join(sorted(stray))
            ),
            stacklevel=1,
        )
