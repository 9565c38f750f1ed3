"""Read-only guarantee: nothing under the paths tui-dicom opens is created, modified or deleted.

A copy of pydicom's ``dicomdirtests`` CD (a real DICOMDIR tree) plus a multi-frame and a JPEG 2000 file
is snapshotted (every entry's type, size, mode, mtime and SHA-256, and every directory's listing)
before and after a session that browses the tree, scrolls through slices, opens the tag inspector,
dumps and lists the folder and exports pictures elsewhere, with the working directory inside the
source. ``export`` also refuses to overwrite an existing file unless ``--force`` is given.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_corpus  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
has_ls = (REPO / "tui_dicom" / "commands" / "ls.py").exists()

Snapshot = dict[str, tuple[object, ...]]


def snapshot(root: Path) -> Snapshot:
    """Every entry under ``root`` (itself included): type, size, mode, mtime, content hash, listing."""
    out: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        st = os.lstat(dirpath)
        out[rel_dir + "/"] = (
            "dir",
            stat.S_IMODE(st.st_mode),
            st.st_mtime_ns,
            tuple(sorted(dirnames + filenames)),
        )
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            out[os.path.join(rel_dir, name)] = (
                "file",
                st.st_size,
                stat.S_IMODE(st.st_mode),
                st.st_mtime_ns,
                digest,
            )
    return out


def diff(before: Snapshot, after: Snapshot) -> list[str]:
    """Human-readable differences between two snapshots."""
    changes = [f"created {k}" for k in after.keys() - before.keys()]
    changes += [f"deleted {k}" for k in before.keys() - after.keys()]
    changes += [
        f"changed {k}: {before[k]} -> {after[k]}"
        for k in before.keys() & after.keys()
        if before[k] != after[k]
    ]
    return sorted(changes)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of pydicom's dicomdirtests CD plus a multi-frame and a JPEG 2000 image."""
    dicomdir = hostile_corpus.testdata("DICOMDIR")
    if dicomdir is None:
        pytest.skip("pydicom's dicomdirtests are not installed")
    src = tmp_path / "source"
    shutil.copytree(dicomdir.parent, src / "cd")
    extra = src / "extra"
    extra.mkdir()
    for name in ("emri_small.dcm", "MR_small_jp2klossless.dcm", "CT_small.dcm"):
        path = hostile_corpus.testdata(name)
        if path is not None:
            shutil.copy2(path, extra / name)
    return src


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, "-m", "tui_dicom", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(cwd),
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_commands_leave_the_source_untouched(source: Path, tmp_path: Path) -> None:
    before = snapshot(source)
    out = tmp_path / "elsewhere"
    out.mkdir()
    extra = source / "extra"
    runs = [
        _cli(["dump", str(extra / "CT_small.dcm")], cwd=source),
        _cli(["dump", "--json", str(extra / "emri_small.dcm"), "--log", str(out / "dump.log")], cwd=source),
        _cli(["export", str(extra / "CT_small.dcm"), "-o", str(out / "ct.png")], cwd=source),
        _cli(
            ["export", str(extra / "emri_small.dcm"), "--frame", "3", "-o", str(out / "mr.png")], cwd=source
        ),
        _cli(
            [
                "export",
                str(extra / "MR_small_jp2klossless.dcm"),
                "-o",
                str(out / "j2k.png"),
                "--log",
                str(out / "export.log"),
            ],
            cwd=source,
        ),
    ]
    runs.append(_cli(["dump", "-t", "PatientName", str(source / "cd")], cwd=source))
    if has_ls:
        runs.append(_cli(["ls", str(source)], cwd=source))
        runs.append(_cli(["ls", "--json", str(source / "cd" / "DICOMDIR")], cwd=source))
    for run in runs:
        assert run.returncode in (0, 1), (run.args, run.stderr)
    assert all(r.returncode == 0 for r in runs[:5]), [(r.args, r.stderr) for r in runs[:5]]
    assert (out / "ct.png").stat().st_size > 0 and (out / "mr.png").stat().st_size > 0
    changes = diff(before, snapshot(source))
    assert not changes, "the source was modified:\n" + "\n".join(changes)


@pytest.mark.slow
def test_export_refuses_to_overwrite_without_force(source: Path, tmp_path: Path) -> None:
    ct = source / "extra" / "CT_small.dcm"
    target = tmp_path / "exists.png"
    target.write_bytes(b"precious")
    run = _cli(["export", str(ct), "-o", str(target)], cwd=tmp_path)
    assert run.returncode == 1
    assert "exists" in run.stderr and "--force" in run.stderr
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.png", "source"]  # no temp file left
    run = _cli(["export", str(ct), "-o", str(target), "--force"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the input itself is never a valid output, even with --force
    before = snapshot(source)
    run = _cli(["export", str(ct), "-o", str(ct), "--force"], cwd=tmp_path)
    assert run.returncode == 1
    assert not diff(before, snapshot(source))


@pytest.mark.slow
async def test_viewer_session_leaves_the_source_untouched(
    source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pilot import wait_for_index, wait_for_slice

    from tui_dicom.core.graphics.terminal import detect
    from tui_dicom.ui.app import DicomViewerApp

    before = snapshot(source)
    monkeypatch.chdir(source)
    app = DicomViewerApp(
        [str(source)], terminal=detect(override="halfblock", colors="truecolor"), cache_mb=64
    )
    async with app.run_test(size=(140, 44)) as pilot:
        assert await wait_for_index(pilot, app)
        await wait_for_slice(pilot, app)
        await pilot.press("shift+tab")  # the tree (the image has the focus at start)
        for key in ("down", "down", "down", "enter", "down", "down"):  # browse the tree
            await pilot.press(key)
        await pilot.pause()
        await pilot.press("tab")  # the image: scroll
        for key in ("down", "down", "pagedown", "end", "home"):
            await pilot.press(key)
        await wait_for_slice(pilot, app)
        await pilot.press("tab")  # the inspector
        for key in ("down", "down", "pagedown"):
            await pilot.press(key)
        await pilot.pause()
        await pilot.press("q")
    changes = diff(before, snapshot(source))
    assert not changes, "the viewer modified the source:\n" + "\n".join(changes)
