"""``ls``, ``dump`` and ``export`` on every file of the hostile corpus, each in its own process.

For every corpus file and command: exit status 0 or 1; no Python traceback on stdout or stderr; on
failure exactly one line on stderr that names the file; ``export`` leaves no file (and no temporary
file) behind when it fails and a readable PNG when it succeeds. Each process is measured with
``os.wait4``: CPU time (user + system) ≤ 5 s and peak RSS ≤ 500 MB. CPU time is asserted rather than
wall time so a busy CI machine does not make the test flaky; a process still running after
:data:`HANG_S` seconds of wall time is killed and reported as a hang.

Files are run two at a time (the CI machines have 2 cores).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import contextlib

import hostile_corpus  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CPU_LIMIT_S = 5.0
RSS_LIMIT_MB = 500.0
HANG_S = 60.0
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+File \".*\", line \d+", re.M)
#: bytes no line of our output may contain: C0 controls other than tab/newline, DEL, ESC
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")

has_ls = (REPO / "tui_dicom" / "commands" / "ls.py").exists()


# the whole module is slow (measured in the quick loop: every command on every corpus file, in measured processes)
pytestmark = pytest.mark.slow


@dataclass
class Run:
    """The outcome of one command process."""

    args: list[str]
    code: int
    out: bytes
    err: bytes
    cpu_s: float
    rss_mb: float
    hung: bool

    @property
    def err_text(self) -> str:
        """stderr decoded leniently."""
        return self.err.decode("utf-8", "replace")

    def describe(self) -> str:
        """One line for a failure report."""
        tail = self.err_text.strip().splitlines()[-3:]
        return (
            f"{' '.join(self.args[3:])}: exit {self.code}, cpu {self.cpu_s:.2f} s, "
            f"rss {self.rss_mb:.0f} MB{' HUNG' if self.hung else ''}; stderr {tail}"
        )


def run_cli(args: Sequence[str], *, cwd: Path | None = None, timeout: float = HANG_S) -> Run:
    """Run ``python -m tui_dicom ARGS`` and measure it (CPU time, peak RSS) with ``os.wait4``."""
    cmd = [sys.executable, "-m", "tui_dicom", *args]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1", COLUMNS="120")
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
            cwd=str(cwd or REPO),
            env=env,
            start_new_session=True,
        )
        hung = threading.Event()

        def kill() -> None:
            hung.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _pid, status, _usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu_s, rss_kb = (float(v) for v in measured.read_text().split()) if measured.exists() else (0.0, 0.0)
        out.seek(0)
        err.seek(0)
        return Run(list(cmd), proc.returncode, out.read(), err.read(), cpu_s, rss_kb / 1024.0, hung.is_set())


def run_many(jobs: Sequence[list[str]], **kwargs: object) -> list[Run]:
    """Run several commands two at a time, results in the order given."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda a: run_cli(a, **kwargs), jobs))  # type: ignore[arg-type]  # run_cli's keywords


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[hostile_corpus.Case]:
    """The single-file corpus, built once for this module."""
    try:
        return hostile_corpus.build_files(tmp_path_factory.mktemp("hostile") / "files")
    except FileNotFoundError as exc:
        pytest.skip(f"pydicom test files not available: {exc}")


def _run_problems(run: Run) -> list[str]:
    """Hang, traceback, exit status other than 0/1, CPU or memory beyond the limits."""
    problems = []
    if run.hung:
        problems.append("did not finish (killed)")
    if TRACEBACK.search(run.err_text) or TRACEBACK.search(run.out.decode("utf-8", "replace")):
        problems.append("printed a traceback")
    if run.code not in (0, 1):
        problems.append(f"exit status {run.code}")
    if run.cpu_s > CPU_LIMIT_S:
        problems.append(f"took {run.cpu_s:.1f} s of CPU")
    if run.rss_mb > RSS_LIMIT_MB:
        problems.append(f"peak RSS {run.rss_mb:.0f} MB")
    return problems


def _common_problems(run: Run, name: str) -> list[str]:
    """What is wrong with ``run`` whatever the command: traceback, hang, limits, exit code, stderr."""
    problems = _run_problems(run)
    # lines C decoders print to file descriptor 2 are checked by test_export_c_decoders_stay_quiet
    err_lines = [ln for ln in run.err_text.splitlines() if ln.strip() and ln.startswith("tui-dicom")]
    if run.code == 1:
        if len(err_lines) != 1:
            problems.append(f"{len(err_lines)} lines on stderr, 1 expected")
        elif name not in err_lines[0]:
            problems.append(f"stderr does not name the file: {err_lines[0]!r}")
    elif run.code == 0 and err_lines:
        problems.append(f"exit 0 but stderr says {err_lines[:2]}")
    if RAW_CONTROL.search(run.err):
        problems.append("raw control character on stderr")
    return problems


def _report(failures: list[str], total: int, what: str) -> None:
    assert not failures, f"{len(failures)} of {total} {what} failed:\n" + "\n".join(failures)


def test_corpus_covers_every_category(corpus: list[hostile_corpus.Case]) -> None:
    kinds = {c.kind for c in corpus}
    assert {
        "truncated",
        "bitflip",
        "lie",
        "length",
        "deep",
        "wide",
        "deflate",
        "syntax",
        "notdicom",
        "shipped",
    } <= kinds
    assert len(corpus) >= 80
    assert len({c.name for c in corpus}) == len(corpus)
    shipped = {c.name for c in corpus if c.kind == "shipped"}
    assert "shipped_MR_truncated.dcm" in shipped and "shipped_badVR.dcm" in shipped


def test_dump_on_every_corpus_file(corpus: list[hostile_corpus.Case]) -> None:
    runs = run_many([["dump", str(c.path)] for c in corpus])
    failures = []
    refused = 0
    for case, run in zip(corpus, runs, strict=True):
        problems = _common_problems(run, case.name)
        if RAW_CONTROL.search(run.out):
            problems.append("raw control character on stdout")
        if run.code == 0 and not run.out.strip():
            problems.append("exit 0 with nothing printed")
        refused += run.code == 1
        if problems:
            failures.append(f"{case.name} ({case.note}): {'; '.join(problems)} -- {run.describe()}")
    _report(failures, len(corpus), "dumps")
    # the not-DICOM files, the deep nests and the bomb must be refused, not "dumped"
    must_refuse = [
        c.name
        for c, r in zip(corpus, runs, strict=True)
        if c.kind in ("notdicom", "deep") or c.name.startswith("deflate_bomb")
        if r.code != 1 and c.name != "random_after_dicm.dcm"
    ]
    assert not must_refuse, f"dumped although not readable: {must_refuse}"
    assert refused >= 20


def test_dump_reports_values_cut_short(corpus: list[hostile_corpus.Case]) -> None:
    by_name = {c.name: c for c in corpus}
    names = [
        "trunc_ct_mid_value.dcm",
        "len_pn_beyond_eof.dcm",
        "len_private_ob_2gb.dcm",
        "len_sequence_beyond_eof.dcm",
    ]
    for _name, run in zip(names, run_many([["dump", str(by_name[n].path)] for n in names]), strict=True):
        assert run.code == 1, run.describe()
        assert "truncated" in run.err_text, run.describe()


def test_export_on_every_corpus_file(corpus: list[hostile_corpus.Case], tmp_path: Path) -> None:
    from PIL import Image

    outdir = tmp_path / "out"
    outdir.mkdir()
    runs = run_many([["export", str(c.path), "-o", str(outdir / f"{c.name}.png")] for c in corpus])
    failures = []
    exported = 0
    for case, run in zip(corpus, runs, strict=True):
        problems = _common_problems(run, case.name)
        target = outdir / f"{case.name}.png"
        if run.code == 0:
            exported += 1
            try:
                with Image.open(target) as im:
                    im.load()
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                problems.append(f"exit 0 but the PNG does not open: {exc}")
        elif target.exists():
            problems.append("failed but left an output file")
        if problems:
            failures.append(f"{case.name} ({case.note}): {'; '.join(problems)} -- {run.describe()}")
    leftovers = [p.name for p in outdir.iterdir() if not p.name.endswith(".png")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    _report(failures, len(corpus), "exports")
    # size and bit-depth lies must never produce a picture (an unreadable Number of Frames or High
    # Bit is read leniently, like DCMTK, and a window/rescale that makes no sense falls back)
    refuse = {
        "lie_rows_cols_65535.dcm",
        "lie_rows_cols_8000.dcm",
        "lie_frames_100000.dcm",
        "lie_samples_3.dcm",
        "lie_samples_7.dcm",
        "lie_bits_allocated_13.dcm",
        "lie_bits_allocated_0.dcm",
        "lie_bits_allocated_64.dcm",
        "lie_bits_stored_40.dcm",
        "lie_bits_stored_0.dcm",
        "lie_rows_0.dcm",
        "lie_no_rows.dcm",
        "lie_photometric_junk.dcm",
        "lie_j2k_rows_11000.dcm",
        "lie_rle_samples_3.dcm",
    }
    assert refuse <= {c.name for c in corpus}
    lies = [
        c.name
        for c, r in zip(corpus, runs, strict=True)
        if (c.name in refuse or c.kind in ("notdicom", "deep"))
        and r.code == 0
        and c.name != "random_after_dicm.dcm"
    ]
    assert not lies, f"exported a picture from a lying header: {lies}"
    assert exported >= 3


def test_export_c_decoders_stay_quiet(corpus: list[hostile_corpus.Case], tmp_path: Path) -> None:
    """Nothing but our one line reaches stderr, even from C libraries (in the viewer it would land
    on the screen)."""
    names = ["flip_j2k_64_7.dcm", "shipped_JPEG2000-embedded-sequence-delimiter.dcm"]
    by_name = {c.name: c for c in corpus}
    present = [n for n in names if n in by_name]
    runs = run_many([["export", str(by_name[n].path), "-o", str(tmp_path / f"{n}.png")] for n in present])
    foreign = {
        n: [ln for ln in r.err_text.splitlines() if ln.strip() and not ln.startswith("tui-dicom")]
        for n, r in zip(present, runs, strict=True)
    }
    assert not any(foreign.values()), f"C library output on stderr: {foreign}"


@pytest.mark.skipif(not has_ls, reason="tui_dicom/commands/ls.py not written yet")
def test_ls_on_every_corpus_file(corpus: list[hostile_corpus.Case]) -> None:
    runs = run_many([["ls", str(c.path)] for c in corpus])
    failures = []
    for case, run in zip(corpus, runs, strict=True):
        problems = _run_problems(run)
        if run.code == 1 and case.name not in run.out.decode("utf-8", "replace") + run.err_text:
            problems.append("exit 1 without naming the file")
        if RAW_CONTROL.search(run.out) or RAW_CONTROL.search(run.err):
            problems.append("raw control character in output")
        if problems:
            failures.append(f"{case.name} ({case.note}): {'; '.join(problems)} -- {run.describe()}")
    _report(failures, len(corpus), "ls runs")
    not_dicom = [
        c.name
        for c, r in zip(corpus, runs, strict=True)
        if c.kind == "notdicom" and r.code != 1 and c.name != "random_after_dicm.dcm"
    ]
    assert not not_dicom, f"ls accepted non-DICOM files: {not_dicom}"


def test_folder_commands_finish_and_name_every_problem(
    tmp_path: Path, corpus: list[hostile_corpus.Case]
) -> None:
    """``dump`` (and ``ls``) over the links folder and the whole corpus folder: no hang on the FIFO or
    the loops, every problem on its own line, exit 1."""
    links = hostile_corpus.build_links_folder(tmp_path / "links")
    folder = corpus[0].path.parent
    jobs = [["dump", "-t", "PatientID", str(links.root)], ["dump", "-t", "PatientID", str(folder)]]
    if has_ls:
        jobs += [["ls", str(links.root)], ["ls", str(folder)]]
    runs = run_many(jobs)
    for run in runs:
        assert not run.hung, run.describe()
        assert run.code == 1, run.describe()
        assert not TRACEBACK.search(run.err_text), run.describe()
        assert run.rss_mb <= RSS_LIMIT_MB, run.describe()
    dump_links = runs[0]
    assert b"HOSTILE" not in dump_links.out  # links/good.dcm is CT_small: its PatientID is 1CT1
    assert b"1CT1" in dump_links.out, dump_links.describe()
    for name in ("fifo.dcm", "dangling.dcm"):
        text = dump_links.err_text + (runs[2].out.decode("utf-8", "replace") if has_ls else "")
        assert name in text, f"{name} not reported: {dump_links.describe()}"


def test_log_file_gets_the_traceback_stderr_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unexpected failure: one line on stderr naming the file, the traceback only in --log FILE."""
    from tui_dicom import cli
    from tui_dicom.core.inspector import tags

    good = hostile_corpus.good_file(tmp_path)
    log = tmp_path / "log.txt"

    def boom(*_a: object, **_k: object) -> object:
        raise RuntimeError("formatter exploded")

    from tui_dicom.core.inspector import quickdump

    # both ways of reading: the pydicom-free reader (which hands over to pydicom on any surprise) and pydicom's
    monkeypatch.setattr(quickdump, "read_rows", boom)
    monkeypatch.setattr(tags, "tag_rows", boom)
    code = cli.main(["dump", str(good), "--log", str(log)])
    captured = capsys.readouterr()
    assert code == 1
    assert (
        captured.err.count("\n") == 1 and "good.dcm" in captured.err and "formatter exploded" in captured.err
    )
    assert "Traceback" not in captured.err + captured.out
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: formatter exploded" in text


def test_export_log_file_gets_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tui_dicom import cli
    from tui_dicom.core.imaging import windowing

    good = hostile_corpus.good_file(tmp_path)
    log = tmp_path / "log.txt"
    out = tmp_path / "out.png"

    def boom(*_a: object, **_k: object) -> object:
        raise ZeroDivisionError("renderer exploded")

    monkeypatch.setattr(windowing, "render", boom)
    code = cli.main(["export", str(good), "-o", str(out), "--log", str(log)])
    captured = capsys.readouterr()
    assert code == 1 and not out.exists()
    assert captured.err.count("\n") == 1 and "good.dcm" in captured.err
    assert "Traceback" not in captured.err
    assert "ZeroDivisionError: renderer exploded" in log.read_text()


# ---------------------------------------------------------------------------- the resource budget

#: what each bounds case must be refused for (a word of the one-line reason), by export and dump
BOUNDS_REASONS = {
    "bomb_deflate_1gb.dcm": "inflate",
    "bomb_deflate_sparse_4gb.dcm": "deflated",
    "lie_jpeg_sof_65000.dcm": "decoded frame",
    "lie_jpeg_sof_width.dcm": "101x100",
    "lie_jpeg_lossless_sof3_60000.dcm": "decoded frame",
    "lie_jpegls_sof55_65000.dcm": "decoded frame",
    "lie_j2k_siz_65000.dcm": "JPEG 2000",
    "lie_jp2_box_length_0.dcm": "length 0",
    "honest_j2k_16000.dcm": "decoded frame",
    "lie_rle_15_segments.dcm": "15 segments",
    "lut_segmented_linear.dcm": "lookup table",
    "lut_segmented_indirect.dcm": "lookup table",
    "values_ds_5m.dcm": "values in one",
    "values_window_center_5m.dcm": "values in one",
    "values_pn_1m.dcm": "values in one",
    "elements_private_491k.dcm": "elements in one",
    "native_11000_16bit.dcm": "decoded frame",
    "native_16000_8bit.dcm": "decoded frame",
    "fifo.dcm": "FIFO",
    "zero.dcm": "character device",
    "urandom.dcm": "character device",
}
#: refused by dump too (the others are headers dump shows whole: their pixels are never decoded)
DUMP_REFUSES = {
    "bomb_deflate_1gb.dcm",
    "bomb_deflate_sparse_4gb.dcm",
    "values_ds_5m.dcm",
    "values_window_center_5m.dcm",
    "values_pn_1m.dcm",
    "elements_private_491k.dcm",
    "fifo.dcm",
    "zero.dcm",
    "urandom.dcm",
}


@pytest.fixture(scope="module")
def bounds(tmp_path_factory: pytest.TempPathFactory) -> list[hostile_corpus.Case]:
    """The resource-budget corpus (small on disk: sparse files, lying headers) and special files."""
    base = tmp_path_factory.mktemp("bounds")
    try:
        cases = hostile_corpus.build_bounds_files(base / "files")
    except FileNotFoundError as exc:
        pytest.skip(f"pydicom test files not available: {exc}")
    return cases + hostile_corpus.build_special_files(base / "special")


def _bounds_problems(run: Run, case: hostile_corpus.Case, *, refused: bool) -> list[str]:
    problems = _run_problems(run)
    lines = [ln for ln in run.err_text.splitlines() if ln.strip()]
    if refused:
        if run.code != 1:
            problems.append(f"exit {run.code}, 1 expected")
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, 1 expected")
        elif case.name not in lines[0] or BOUNDS_REASONS[case.name] not in lines[0]:
            problems.append(f"reason does not name the file and {BOUNDS_REASONS[case.name]!r}: {lines[0]!r}")
    elif run.code != 0:
        problems.append(f"exit {run.code}, 0 expected (header only)")
    return problems


def test_bounds_corpus_is_small_on_disk(bounds: list[hostile_corpus.Case]) -> None:
    assert {c.name for c in bounds} == set(BOUNDS_REASONS) - (
        {"zero.dcm", "urandom.dcm"} - {c.name for c in bounds}
    )
    allocated = sum(os.lstat(c.path).st_blocks * 512 for c in bounds)
    assert allocated < 64 * 1024**2, f"{allocated:,} bytes on disk"


@pytest.mark.parametrize("command", ["export", "dump", "dump -t", "ls"])
def test_bounds_refused_within_budget(
    bounds: list[hostile_corpus.Case], command: str, tmp_path: Path
) -> None:
    """Every command on every bounds case: ≤ 5 s of CPU, ≤ 500 MB peak RSS (the process and its
    decoder child, measured by wait4), exit 1 with one line naming the file and the reason when the
    command must read what is over budget."""
    jobs = []
    for case in bounds:
        if command == "export":
            jobs.append(["export", str(case.path), "-o", str(tmp_path / f"{case.name}.png")])
        elif command == "dump":
            jobs.append(["dump", str(case.path)])
        elif command == "dump -t":
            jobs.append(["dump", "-t", "PatientName", str(case.path)])
        else:
            jobs.append(["ls", str(case.path)])
    failures = []
    for case, run in zip(bounds, run_many(jobs), strict=True):
        if command == "ls":
            problems = _run_problems(run)
            # ls reads a few indexing values: a file whose only excess is elsewhere is listed
            must = case.name in DUMP_REFUSES - {"values_window_center_5m.dcm", "elements_private_491k.dcm"}
            text = run.out.decode("utf-8", "replace") + run.err_text
            if must and (run.code != 1 or BOUNDS_REASONS[case.name] not in text):
                problems.append(f"not listed as a problem with {BOUNDS_REASONS[case.name]!r}")
            if len(run.out) > 100_000:
                problems.append(f"{len(run.out):,} bytes of output")
        else:
            refused = command == "export" or case.name in DUMP_REFUSES
            problems = _bounds_problems(run, case, refused=refused)
        if command == "export" and (tmp_path / f"{case.name}.png").exists():
            problems.append("left a picture")
        if problems:
            failures.append(f"{case.name} ({case.note}): {'; '.join(problems)} -- {run.describe()}")
    _report(failures, len(bounds), f"{command} runs")


def test_raised_limit_lets_a_large_frame_through(bounds: list[hostile_corpus.Case], tmp_path: Path) -> None:
    """``--resource-limit`` is how a user opens a genuine large image: the refusal names the option, and with
    it raised the native 11,000² image is read (refused further on by nothing but its own zeros)."""
    native = next(c for c in bounds if c.name == "native_11000_16bit.dcm")
    refused = run_cli(["export", str(native.path), "-o", str(tmp_path / "a.png")])
    assert refused.code == 1 and "--resource-limit frame-bytes=" in refused.err_text, refused.describe()
    env_run = run_cli(
        [
            "export",
            str(native.path),
            "-o",
            str(tmp_path / "b.png"),
            "--resource-limit",
            "frame-bytes=nonsense",
        ]
    )
    assert env_run.code == 2 and "frame-bytes" in env_run.err_text, env_run.describe()


def test_permission_denied_is_reported_as_such(tmp_path: Path) -> None:
    """A file in a folder the user may not search: "Permission denied", never "No such file"."""
    if os.geteuid() == 0:
        pytest.skip("running as root: permissions do not stop reads")
    folder = tmp_path / "closed"
    folder.mkdir()
    good = hostile_corpus.good_file(folder)
    folder.chmod(0)
    try:
        runs = run_many(
            [["dump", str(good)], ["ls", str(good)], ["export", str(good), "-o", str(tmp_path / "o.png")]]
        )
    finally:
        folder.chmod(0o755)
    for run in runs:
        assert run.code in (1, 2), run.describe()
        assert "ermission denied" in run.err_text and "No such file" not in run.err_text, run.describe()


def test_dump_of_a_file_that_shrinks_is_one_line(tmp_path: Path) -> None:
    """dump read files through mmap: a file cut short while mapped killed it with SIGBUS (exit 135).
    Now it reads: whatever the timing, never a signal, at most one line on stderr."""
    import time

    path = tmp_path / "shrinking.dcm"
    seed = hostile_corpus.testdata("CT_small.dcm")
    if seed is None:
        pytest.skip("pydicom test files not available")
    data = seed.read_bytes() * 1
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            path.write_bytes(data)
            with open(path, "r+b") as fh:
                fh.truncate(200)
            time.sleep(0.001)

    path.write_bytes(data)
    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    try:
        runs = run_many([["dump", str(path)] for _ in range(6)])
    finally:
        stop.set()
        worker.join()
    for run in runs:
        assert run.code in (0, 1), run.describe()  # 135 was the bus error
        assert len([ln for ln in run.err_text.splitlines() if ln.strip()]) <= 1, run.describe()


def test_a_16bit_4096_mammogram_still_opens_under_the_defaults(tmp_path: Path) -> None:
    """The budget refuses bombs, not real images: a 16-bit 4,096² frame (sparse on disk) exports with
    the default limits, within the same CPU and memory bounds."""
    path = tmp_path / "mammo.dcm"
    hostile_corpus._native_sparse(path, "mammogram", 4096, 4096, 16)
    out = tmp_path / "mammo.png"
    run = run_cli(["export", str(path), "-o", str(out)])
    assert run.code == 0 and out.exists(), run.describe()
    assert not _run_problems(run), run.describe()
