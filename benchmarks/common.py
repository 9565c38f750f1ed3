"""Shared pieces of the benchmarks: result rows, the run context, interleaved timing, tool lookup."""

from __future__ import annotations

import gc
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"
PTY_MEASURE = SHARED / "tools" / "pty_measure.py"


class Missing(Exception):
    """The subject of a row (a module, command or tool) does not exist; the message says what."""


@dataclass
class Row:
    """One line of the results table.

    Attributes:
        name: what is measured, with the group word in brackets, e.g. ``[dicomdir] ...``.
        unit: unit of ``ours`` and ``reference_value`` ("ms", "files/s", "KB", "MB", "s").
        ours: our median, None when it could not be measured.
        reference: what we are compared with, in words.
        reference_value: the reference's median in ``unit``, None when there is none.
        ratio: ``ours / reference_value`` (for a rate: how many times faster we are), or None.
        goal: the goal in words, e.g. ``≤ 150 ms``.
        passed: whether the goal is met (False when not measured).
        note: why something is missing or what to know; shown in the table and appended to ``goal``
            in the JSON, whose row keys are fixed.
    """

    name: str
    unit: str
    ours: float | None
    reference: str
    reference_value: float | None
    ratio: float | None
    goal: str
    passed: bool
    note: str = ""

    def as_json(self) -> dict[str, object]:
        """The row in the JSON shape of issue 8 (exactly these keys)."""
        goal = f"{self.goal} — {self.note}" if self.note else self.goal
        return {
            "name": self.name,
            "unit": self.unit,
            "ours": _round(self.ours),
            "reference": self.reference,
            "reference_value": _round(self.reference_value),
            "ratio": _round(self.ratio, 3),
            "goal": goal,
            "pass": bool(self.passed),
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    """``value`` to ``digits`` decimals, but never fewer than 3 significant digits (a 0.021 s figure
    rounded to 0.02 would make its ratio look 5 % off)."""
    if value is None:
        return None
    if value != 0 and math.isfinite(value):
        digits = max(digits, 2 - math.floor(math.log10(abs(value))))
    return round(float(value), digits)


def ratio(ours: float | None, ref: float | None) -> float | None:
    """``ours / ref`` or None when either is missing or ref is 0."""
    if ours is None or ref is None or ref == 0:
        return None
    return ours / ref


def at_most(value: float | None, limit: float) -> bool:
    """``value <= limit``; False when not measured."""
    return value is not None and value <= limit


def at_least(value: float | None, limit: float) -> bool:
    """``value >= limit``; False when not measured."""
    return value is not None and value >= limit


@dataclass
class Context:
    """What every group gets: mode, number of runs, work folder, and notes for the report."""

    quick: bool
    runs: int
    work: Path
    log: Callable[[str], None] = print
    notes: list[str] = field(default_factory=list)

    def size(self, full: int, quick: int) -> int:
        """The input size for this mode."""
        return quick if self.quick else full


def median(values: Sequence[float]) -> float | None:
    """Median of the values, None for none."""
    return statistics.median(values) if values else None


def interleaved(
    subjects: dict[str, Callable[[], float]], runs: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Measure several subjects in alternation, ``runs`` times each, after ``warmup`` unmeasured rounds.

    Each subject is a callable returning its own measurement (seconds, bytes...). A subject that
    raises :class:`Missing`, or fails twice, is dropped and gets no values; one failed run is
    logged and skipped.

    Args:
        subjects: name -> measuring callable.
        runs: measured rounds.
        warmup: unmeasured rounds first (warm caches, imports).

    Returns:
        name -> list of measurements (empty for a subject that failed).
    """
    results: dict[str, list[float]] = {name: [] for name in subjects}
    failures: dict[str, int] = {name: 0 for name in subjects}
    dead: set[str] = set()
    for rnd in range(warmup + runs):
        for name, fn in subjects.items():
            if name in dead:
                continue
            try:
                value = fn()
            except Exception as exc:  # noqa: BLE001 - a failing subject is reported, never fatal
                failures[name] += 1
                print(f"    {name}: run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                if isinstance(exc, Missing) or failures[name] >= 2:
                    dead.add(name)
                    results[name] = []
                continue
            if rnd >= warmup:
                results[name].append(value)
    return results


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes (wall clock).

    The garbage the previous subject left is collected first, outside the timing: in-process subjects
    run in alternation, and pydicom's ``FileSet`` of 10,000 records left cycles whose collection then
    fell inside the next subject's time (the hierarchy build measured 1.2-1.4 s against 0.66-0.76 s
    alone).
    """
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def process_time(
    cmd: Sequence[str],
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    ok_codes: Sequence[int] = (0,),
) -> float:
    """Wall-clock seconds of a whole process, output discarded.

    Raises:
        RuntimeError: the process exited with a code not in ``ok_codes`` (and ``check``).
    """
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd, check=False
    )
    elapsed = time.perf_counter() - t0
    if check and proc.returncode not in ok_codes:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {err[-1] if err else ''}")
    return elapsed


def process_cpu(cmd: Sequence[str]) -> float:
    """CPU seconds (user + system) of a whole process, its output discarded; it must exit 0.

    CPU time, unlike wall time, barely moves when other work shares the machine, so a start-up ratio
    against a native tool stays comparable on a loaded runner. The child's own rusage comes from
    ``wait4`` (nothing else this process started is counted).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            lines = err.read().decode("utf-8", "replace").strip().splitlines()
            raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {lines[-1] if lines else ''}")
    return usage.ru_utime + usage.ru_stime


def process_output(cmd: Sequence[str]) -> tuple[float, bytes]:
    """Wall-clock seconds and stdout bytes of a whole process (which must exit 0)."""
    t0 = time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {err[-1] if err else ''}")
    return elapsed, proc.stdout


def tool(name: str) -> str:
    """Full path of an external tool.

    Raises:
        Missing: not installed.
    """
    path = shutil.which(name)
    if path is None:
        raise Missing(f"{name} is not installed")
    return path


def venv_script(name: str) -> str | None:
    """A console script next to the running Python (the project's venv), or on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


_compiled: list[bool] = []


def ensure_bytecode() -> None:
    """Byte-compile the ``tui_dicom`` package once per run, as ``pip install`` does for an installed
    package: with ``PYTHONDONTWRITEBYTECODE`` set (some shells and CI images set it) an editable checkout
    otherwise recompiles every module changed since its last ``.pyc`` at every start (~0.15 s measured
    on the first-picture path), which no installed copy pays."""
    if _compiled:
        return
    import compileall

    import tui_dicom

    compileall.compile_dir(str(Path(tui_dicom.__file__).parent), quiet=1)
    _compiled.append(True)


def tui_dicom_cmd() -> list[str]:
    """How to start ``tui-dicom`` with this Python: the console script, else ``python -m tui_dicom``
    (its bytecode compiled first: :func:`ensure_bytecode`)."""
    ensure_bytecode()
    script = venv_script("tui-dicom")
    return [script] if script else [sys.executable, "-m", "tui_dicom"]


def editable_import_hook() -> str | None:
    """The import hook a default editable install puts before every start, if this Python has one.

    ``pip install -e .`` (setuptools' default "lenient" mode) installs a ``.pth`` that imports a finder
    module at interpreter start-up; that finder imports ``pathlib``, ``re`` and ``importlib.util``, ~30 ms
    of CPU measured here, which ``pip install .`` (what users and CI run) and
    ``pip install -e . --config-settings editable_mode=compat`` (a plain path entry) do not pay. Start-up
    rows measured under such a hook overstate ours, so the run says so.
    """
    import site
    import sysconfig

    dirs = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    for folder in dirs:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.startswith("__editable___tui_dicom") and name.endswith("_finder.py"):
                return os.path.join(folder, name)
    return None


def machine() -> str:
    """One line describing the machine: CPU, cores, memory, OS, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages / 2**30:.0f} GB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def viewer_missing() -> str:
    """Why the viewer cannot run yet ("" when it can): a module it needs is not there."""
    import importlib

    for name in ("tui_dicom.core.hierarchy.index", "tui_dicom.ui.app"):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            return f"the viewer cannot run yet: {name} is missing ({exc})"
    return ""
