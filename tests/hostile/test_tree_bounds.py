"""Bounded in the size of the tree: huge DICOMDIRs, huge folders, links out, special files, lying frame counts.

Every input is generated here, small on disk: DICOMDIRs are written with ``struct``
(:mod:`dicomdir_gen`; pydicom's FileSet would take minutes for a million records), DICOM files are
4x4 pixels. Commands run as their own process and are measured with ``os.wait4``: CPU time (user +
system) and peak RSS of that process, never wall time. The bounds are the project's promise for a tree:
≤ 10 s of CPU and ≤ 500 MB, a one-line reason for what was refused or cut, and the rest still shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_corpus  # noqa: E402
from dicomdir_gen import Layout, tiny_dicom, write_dicomdir, write_flat_dicomdir  # noqa: E402

if TYPE_CHECKING:
    from tui_dicom.ui.app import DicomViewerApp

REPO = Path(__file__).resolve().parents[2]
CPU_LIMIT_S = 10.0
RSS_LIMIT_MB = 500.0
HANG_S = 60.0
UID = "1.2.826.0.1.3680043.8.498.55."


@dataclass
class Run:
    """One finished command and what it cost."""

    args: list[str]
    code: int
    out: str
    err: str
    cpu_s: float
    rss_mb: float
    hung: bool

    def __str__(self) -> str:
        tail = self.err.strip().splitlines()[-3:]
        return f"{' '.join(self.args)}: exit {self.code}, cpu {self.cpu_s:.2f} s, rss {self.rss_mb:.0f} MB; {tail}"


def run_cli(
    *args: str,
    timeout: float = HANG_S,
    interrupt_reading: Path | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """Run ``python -m tui_dicom ARGS``; measure its own CPU time and peak RSS with ``os.wait4``.

    ``interrupt_reading`` sends SIGINT (Ctrl+C) once the command has had that file open for a moment:
    in the middle of reading it, however fast or busy the machine (a timer from the start could fire
    during the imports on a loaded machine, or after the command finished on a fast one).
    """
    cmd = [sys.executable, "-m", "tui_dicom", *args]
    environ = dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    environ.pop("TUI_DICOM_LIMITS", None)
    environ.update(env or {})
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        measured = Path(tmp) / "usage"
        proc = subprocess.Popen(
            [sys.executable, "-c", hostile_corpus.MEASURING_LAUNCHER, str(measured), *cmd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=environ,
            start_new_session=True,
        )
        hung = threading.Event()

        def kill() -> None:
            hung.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        def interrupt() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)

        timer = threading.Timer(timeout, kill)
        timer.start()
        finished = threading.Event()
        if interrupt_reading is not None:
            reading = interrupt_reading.resolve()

            def interrupt_once_reading() -> None:
                while not finished.is_set():
                    if any(_has_open(pid, reading) for pid in _descendants(proc.pid)):
                        if not finished.wait(0.2):
                            interrupt()
                        return
                    finished.wait(0.005)

            threading.Thread(target=interrupt_once_reading, daemon=True).start()
        try:
            _pid, status, _usage = os.wait4(proc.pid, 0)
        finally:
            finished.set()
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu_s, rss_kb = (float(v) for v in measured.read_text().split()) if measured.exists() else (0.0, 0.0)
        out.seek(0)
        err.seek(0)
        return Run(
            list(args),
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            cpu_s,
            rss_kb / 1024.0,
            hung.is_set(),
        )


def _descendants(pid: int) -> list[int]:
    """``pid``'s child processes and theirs (Linux ``/proc``)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            todo.extend(int(child) for child in children)
            found.extend(int(child) for child in children)
    return found


def _has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open now."""
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == str(path):
                    return True
    return False


def assert_bounded(run: Run, code: int = 1) -> None:
    """Finished, no traceback, the expected exit status, within the tree budget."""
    assert not run.hung, f"did not finish: {run}"
    assert "Traceback" not in run.err and "Traceback" not in run.out, str(run)
    assert run.code == code, str(run)
    assert run.cpu_s <= CPU_LIMIT_S, f"took {run.cpu_s:.1f} s of CPU: {run}"
    assert run.rss_mb <= RSS_LIMIT_MB, f"peak RSS {run.rss_mb:.0f} MB: {run}"


# ---------------------------------------------------------------------------------------- big DICOMDIRs


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CD folder whose DICOMDIR has 1,000,000 IMAGE records naming files that do not exist (~120 MB)."""
    root = tmp_path_factory.mktemp("million") / "cd"
    root.mkdir()
    write_flat_dicomdir(root / "DICOMDIR", 1_000_000)
    return root


@pytest.mark.slow
def test_million_record_dicomdir_commands_are_bounded(million: Path, tmp_path: Path) -> None:
    """ls, dump and dump -t of a 1,000,000-record DICOMDIR: cut at the record limit with one line, the
    missing files counted after the first 1,000, within 10 s of CPU and 500 MB each. Inside a ZIP too,
    and with every record naming one file that exists (150,000 records: past the limit, quicker to write)."""
    dicomdir = million / "DICOMDIR"
    limit_line = "more than 100,000 directory records; the first 100,000 are shown (raise with --resource-limit dicomdir-records=N)"
    # dump of the CD folder walks its records; dump of the DICOMDIR file dumps the DICOMDIR itself (as
    # dcmdump does), whose 120 MB record sequence is over the element limit: one line, bounded
    whole = run_cli("dump", str(dicomdir), "-t", "PatientName")
    assert_bounded(whole)
    assert "bytes of one element value" in whole.err and "--resource-limit element-bytes=N" in whole.err, str(
        whole
    )
    assert len(whole.err.strip().splitlines()) == 1, str(whole)
    runs = [run_cli("ls", str(dicomdir)), run_cli("dump", str(million), "-t", "PatientName")]
    for run in runs:
        assert_bounded(run)
        text = run.out + run.err
        assert limit_line in text, str(run)
        assert "record points at a missing file IMG/I0000000" in text
        assert "more records point at missing files (not listed)" in text
        assert text.count("record points at a missing file") == 1000
    # the same records naming one existing file: one instance, the limit line
    present = tmp_path / "present"
    (present / "IMG").mkdir(parents=True)
    (present / "IMG" / "I0").write_bytes(b"")  # a DICOMDIR read opens no image file
    write_flat_dicomdir(present / "DICOMDIR", 150_000, same_file="IMG\\I0")
    run = run_cli("ls", "--json", str(present / "DICOMDIR"))
    assert_bounded(run)
    listing = json.loads(run.out)
    assert (
        sum(se["instances"] for p in listing["patients"] for st in p["studies"] for se in st["series"]) == 1
    )
    assert any(limit_line in e["reason"] for e in listing["errors"])
    # inside a ZIP (deflated: jumping back would inflate from the start again)
    archive = tmp_path / "cd.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.write(dicomdir, "CD/DICOMDIR")
    run = run_cli("ls", str(archive))
    assert_bounded(run)
    assert limit_line in run.out


@pytest.mark.slow
def test_ctrl_c_stops_a_huge_dicomdir(million: Path) -> None:
    """Ctrl+C while ls reads a million records (the record limit raised past them, so the read takes
    ~10 s of CPU): exit 130 at once, no traceback."""
    dicomdir = million / "DICOMDIR"
    run = run_cli(
        "ls", "--resource-limit", "dicomdir-records=2000000", str(dicomdir), interrupt_reading=dicomdir
    )
    assert not run.hung and run.code == 130, str(run)
    assert run.cpu_s < 5.0, f"not interrupted while reading: {run}"
    assert "Traceback" not in run.err


@pytest.mark.slow
def test_record_limit_is_adjustable_and_keeps_the_records_before_it(tmp_path: Path) -> None:
    """With --resource-limit dicomdir-records=1000, the records before the limit are shown (988 images: 1,000
    records minus the patient, the study and 10 series records) and one line says where it stopped;
    without it all 3,000 images are shown."""
    root = tmp_path / "cd"
    (root / "IMG").mkdir(parents=True)
    for i in range(3000):
        (root / "IMG" / f"I{i:07d}").write_bytes(b"")
    write_flat_dicomdir(root / "DICOMDIR", 3000, per_series=100)

    def instances(run: Run) -> int:
        listing = json.loads(run.out)
        return sum(se["instances"] for p in listing["patients"] for st in p["studies"] for se in st["series"])

    cut = run_cli("ls", "--json", "--resource-limit", "dicomdir-records=1000", str(root))
    assert_bounded(cut)
    assert instances(cut) == 988
    reasons = [e["reason"] for e in json.loads(cut.out)["errors"]]
    assert reasons == [
        "more than 1,000 directory records; the first 1,000 are shown (raise with --resource-limit dicomdir-records=N)"
    ]
    full = run_cli("ls", "--json", str(root), env={"TUI_DICOM_LIMITS": "dicomdir-records=5000"})
    assert_bounded(full, code=0)
    assert instances(full) == 3000


def test_streaming_reader_matches_pydicom_on_generated_dicomdirs(tmp_path: Path) -> None:
    """Defined- and undefined-length items, several patients/studies/series: the same instances and
    series as pydicom's FileSet reads from the same file."""
    import warnings

    import pydicom
    from pydicom.fileset import FileSet

    from tui_dicom.core.hierarchy.index import build_index

    for undefined in (False, True):
        root = tmp_path / f"cd{int(undefined)}"
        layout = Layout(patients=2, studies=2, series=3, images=4, undefined_items=undefined)
        root.mkdir()
        write_dicomdir(root / "DICOMDIR", layout)
        for p in range(2):
            for st in range(2):
                for se in range(3):
                    folder = root / "IMG" / f"P{p}" / f"S{st}" / f"E{se}"
                    folder.mkdir(parents=True)
                    for im in range(4):
                        (folder / f"I{im:06d}").write_bytes(b"")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fs = FileSet(pydicom.dcmread(root / "DICOMDIR"))
        want = {(i.SeriesInstanceUID, i.SOPInstanceUID) for i in fs}
        hierarchy = build_index([root])
        got = {
            (se.series_instance_uid, inst.sop_instance_uid)
            for se in hierarchy.all_series()
            for inst in se.instances
        }
        assert got == want and len(got) == 48
        assert hierarchy.errors == []


# ---------------------------------------------------------------------------------------- big folders


@pytest.fixture(scope="module")
def non_dicom_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100,000 small files that are not DICOM, in one folder."""
    root = tmp_path_factory.mktemp("nondicom") / "files"
    root.mkdir()
    for i in range(100_000):
        (root / f"f{i:06d}").write_bytes(b"plain text, not DICOM %d\n" % i)
    return root


@pytest.mark.slow
def test_folder_of_100000_non_dicom_files(non_dicom_folder: Path) -> None:
    run = run_cli("ls", str(non_dicom_folder))
    assert_bounded(run)
    assert run.out.count("not a DICOM file") == 100_000


@pytest.mark.slow
def test_folder_of_20000_small_dicom_files(tmp_path: Path) -> None:
    template = tiny_dicom(tmp_path / "template.dcm", UID + "9" * 9).read_bytes()
    root = tmp_path / "many"
    root.mkdir()
    old = (UID + "9" * 9).encode()
    for i in range(20_000):
        (root / f"IM{i:05d}").write_bytes(template.replace(old, (UID + f"{i:09d}").encode()))
    run = run_cli("ls", str(root))
    assert_bounded(run, code=0)
    assert "1 patient, 1 study, 1 series, 20000 instances" in run.out


def test_entries_per_folder_limit(tmp_path: Path) -> None:
    root = tmp_path / "folder"
    root.mkdir()
    for i in range(300):
        (root / f"f{i:03d}.txt").write_bytes(b"x")
    run = run_cli("ls", "--resource-limit", "folder-entries=100", str(root))
    assert_bounded(run)
    assert (
        "more than 100 entries; the first 100 are scanned (raise with --resource-limit folder-entries=N)"
        in run.out
    )


@pytest.mark.slow
def test_many_dicomdirs_in_one_tree(tmp_path: Path) -> None:
    """1,200 CD folders side by side, and 5,000 DICOMDIR files under other names in one folder: the
    DICOMDIR-files limit stops following them with one line each, within the budget."""
    root = tmp_path / "cds"
    for k in range(1200):
        cd = root / f"cd{k:04d}"
        (cd / "IMG").mkdir(parents=True)
        (cd / "IMG" / "I0000000").write_bytes(b"")
        write_flat_dicomdir(cd / "DICOMDIR", 1)
    run = run_cli("ls", "--resource-limit", "dicomdir-files=1000", str(root))
    assert_bounded(run)
    assert run.out.count("more than 1,000 DICOMDIR files in this tree; not read") == 200
    flat = tmp_path / "flat"
    flat.mkdir()
    big = write_flat_dicomdir(tmp_path / "one", 100).read_bytes()
    for k in range(5000):
        (flat / f"dir{k:04d}.dcm").write_bytes(big)
    run = run_cli("ls", str(flat))
    # DICOMDIR-type files met in a scan are not images: nothing usable, so ls exits 1 and says so
    assert_bounded(run, code=1)
    assert "no DICOM instance found" in run.err, str(run)


# ---------------------------------------------------------------------------------------- links, FIFOs


def _outside_and_inside(tmp_path: Path) -> tuple[Path, Path]:
    outside = tmp_path / "elsewhere"
    (outside / "sub").mkdir(parents=True)
    tiny_dicom(outside / "secret.dcm", UID + "1", patient="SECRET^OUTSIDE")
    tiny_dicom(outside / "sub" / "secret2.dcm", UID + "2", patient="SECRET^OUTSIDE")
    root = tmp_path / "opened"
    (root / "inner").mkdir(parents=True)
    tiny_dicom(root / "good.dcm", UID + "3", patient="GOOD^INSIDE")
    (root / "link_file").symlink_to(outside / "secret.dcm")
    (root / "link_dir").symlink_to(outside / "sub")
    (root / "inner" / "link_inside").symlink_to(root / "good.dcm")
    return root, outside


def test_folder_scan_never_follows_a_link_out(tmp_path: Path) -> None:
    root, _outside = _outside_and_inside(tmp_path)
    reason = "symbolic link pointing outside the opened folder; not followed"
    for args in (["ls"], ["dump"], ["dump", "-t", "PatientName"]):
        cmd = [*args[:1], str(root), *args[1:]]
        run = run_cli(*cmd, timeout=30)
        assert_bounded(run)
        text = run.out + run.err
        assert "SECRET" not in text, str(run)
        assert "GOOD" in text
        assert text.count(reason) == 2, text


def _fifo_cd(tmp_path: Path) -> Path:
    """A CD whose records name a FIFO (an image and a SERIES directory file), a symlink to /dev/zero,
    and one real image."""
    root = tmp_path / "fifocd"
    (root / "IMG").mkdir(parents=True)
    os.mkfifo(root / "IMG" / "FIFO")
    os.mkfifo(root / "DIRFIFO")
    (root / "IMG" / "ZERO").symlink_to("/dev/zero")
    tiny_dicom(root / "IMG" / "GOOD", UID + "4", patient="GOOD^IMAGE")
    names = {0: ["IMG", "FIFO"], 1: ["IMG", "ZERO"], 2: ["IMG", "GOOD"]}
    write_dicomdir(
        root / "DICOMDIR",
        Layout(series=2, images=3),
        file_id=lambda p, st, se, im: names[im] if se == 0 else ["IMG", "MISSING"],
        series_file_id=lambda p, st, se: ["DIRFIFO"] if se == 1 else None,
    )
    return root


def test_dicomdir_naming_a_fifo_or_device_is_refused(tmp_path: Path) -> None:
    root = _fifo_cd(tmp_path)
    for args in (["ls", str(root)], ["dump", str(root)], ["dump", str(root), "-t", "PatientName"]):
        run = run_cli(*args, timeout=30)
        assert_bounded(run)
        text = run.out + run.err
        assert "File ID 'IMG\\FIFO' names a FIFO (named pipe), not a regular file; refused" in text, text
        assert "File ID 'IMG\\ZERO' names a character device, not a regular file; refused" in text
        assert "File ID 'DIRFIFO' names a FIFO (named pipe), not a regular file; refused" in text


# ---------------------------------------------------------------------------------------- empty DICOMDIR


def test_empty_or_partial_dicomdir_does_not_hide_images(tmp_path: Path) -> None:
    root = tmp_path / "cd"
    (root / "IMG").mkdir(parents=True)
    for i in range(3):
        tiny_dicom(root / "IMG" / f"I{i}", UID + f"2{i}")
    write_flat_dicomdir(root / "DICOMDIR", 0)
    run = run_cli("ls", str(root))
    assert_bounded(run)
    assert "3 instances" in run.out
    assert "DICOMDIR lists no image; its folder is scanned instead" in run.out
    # a DICOMDIR listing one of the three: the other two are read from their own headers
    write_dicomdir(root / "DICOMDIR", Layout(images=1), file_id=lambda p, st, se, im: ["IMG", "I0"])
    run = run_cli("ls", str(root))
    assert_bounded(run)
    assert "3 instances" in run.out
    assert (
        "2 DICOM files in the DICOMDIR's folder are not listed in it; read from their own header" in run.out
    )


# ---------------------------------------------------------------------------------------- frame counts


def test_frame_counts_are_bounded(tmp_path: Path) -> None:
    """A file and a DICOMDIR record claiming 2³¹−1 frames: cut to what the file can hold, said in one line."""
    root = tmp_path / "cd"
    (root / "IMG").mkdir(parents=True)
    tiny_dicom(root / "IMG" / "I0", UID + "30", frames=2**31 - 1)
    write_flat_dicomdir(root / "DICOMDIR", 1, same_file="IMG\\I0", frames=2**31 - 1)
    single = run_cli("ls", str(root / "IMG" / "I0"))
    assert_bounded(single)
    size = (root / "IMG" / "I0").stat().st_size
    most = size * 8 // 16
    assert f"claims 2,147,483,647 frames; the file can hold at most {most:,}" in single.out
    assert f"1 instance, {most} frames" in single.out
    cd = run_cli("ls", str(root / "DICOMDIR"))
    assert_bounded(cd)
    assert "record for IMG/I0 claims 2,147,483,647 frames; its file can hold at most" in cd.out


# ---------------------------------------------------------------------------------------- the viewer


def _make_app(*paths: Path) -> DicomViewerApp:
    from tui_dicom.core.graphics.terminal import detect
    from tui_dicom.ui.app import DicomViewerApp

    return DicomViewerApp(
        [str(p) for p in paths], terminal=detect(override="halfblock", colors="truecolor"), cache_mb=64
    )


@pytest.mark.slow
def test_viewer_stays_responsive_on_a_huge_folder(non_dicom_folder: Path) -> None:
    """100,000 non-DICOM files: progress shows, keys work while indexing, Esc stops the scan, q quits."""
    from pilot import wait_until

    from tui_dicom.ui.widgets.inspector import TagInspector

    async def scenario() -> None:
        app = _make_app(non_dicom_folder)
        async with app.run_test(size=(140, 40)) as pilot:
            main = app.main
            assert await wait_until(pilot, lambda: "indexing" in main.progress_text, timeout=20)
            inspector = main.query_one(TagInspector)
            shown = inspector.display
            t0 = time.monotonic()
            await pilot.press("t")
            assert await wait_until(pilot, lambda: inspector.display != shown, timeout=5)
            assert time.monotonic() - t0 < 5 and not main.index_done
            await pilot.press("escape")
            assert await wait_until(pilot, lambda: main.index_done, timeout=5)
            assert "stopped" in main.progress_text
            t0 = time.monotonic()
            await pilot.press("q")
        assert time.monotonic() - t0 < 5

    asyncio.run(scenario())


def test_viewer_on_a_dicomdir_naming_fifos_and_a_huge_frame_count(tmp_path: Path) -> None:
    """The FIFO CD and a 2³¹−1-frame file: the index finishes, problems are listed, the real image is
    shown, and q quits at once."""
    from pilot import wait_for_index, wait_until

    root = _fifo_cd(tmp_path)
    lying = tiny_dicom(tmp_path / "lying.dcm", UID + "31", frames=2**31 - 1)

    async def scenario() -> None:
        app = _make_app(root, lying)
        async with app.run_test(size=(140, 40)) as pilot:
            main = app.main
            assert await wait_for_index(pilot, app, timeout=20)
            reasons = [e.reason for e in main.viewer.hierarchy.errors]
            assert any("names a FIFO (named pipe)" in r for r in reasons), reasons
            assert any("claims 2,147,483,647 frames" in r for r in reasons), reasons
            assert max(len(se.slices()) for se in main.viewer.hierarchy.all_series()) < 10_000
            assert await wait_until(pilot, lambda: main.last_displayed is not None, timeout=20)
            t0 = time.monotonic()
            await pilot.press("q")
        assert time.monotonic() - t0 < 5

    asyncio.run(scenario())
