"""``tui-dicom export``: options, exit codes, one-line errors, atomic no-clobber writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

import tui_dicom.cli as cli
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.imaging.pixels import decode_frame
from tui_dicom.core.imaging.windowing import PRESETS, Window, default_window, render

REPO = Path(__file__).resolve().parents[2]


def _file(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} not available")
    return str(path)


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_negative_window_and_native_size(tmp_path: Path) -> None:
    src = _file("CT_small.dcm")
    out = tmp_path / "lung.png"
    assert cli.main(["export", src, "--window=-600,1500", "-o", str(out)]) == 0
    pic = _png(out)
    frame = decode_frame(FileRef(src))
    assert pic.shape == (frame.rows, frame.columns) and pic.dtype == np.uint8
    assert np.array_equal(pic, render(frame, Window(-600, 1500)))


def test_default_preset_and_no_voi(tmp_path: Path) -> None:
    src = _file("MR_small.dcm")
    frame = decode_frame(FileRef(src))
    out = tmp_path / "a.png"
    assert cli.main(["export", src, "-o", str(out)]) == 0
    assert np.array_equal(_png(out), render(frame, default_window(frame)))
    assert cli.main(["export", src, "--preset", "bone", "-o", str(out), "--force"]) == 0
    assert np.array_equal(_png(out), render(frame, PRESETS["bone"]))
    assert cli.main(["export", src, "--no-voi", "-o", str(out), "--force"]) == 0
    assert np.array_equal(_png(out), render(frame, None, use_voi=False))


def test_colour_is_rgb_and_frames_count_from_one(tmp_path: Path) -> None:
    src = _file("SC_rgb_2frame.dcm")
    out = tmp_path / "c.png"
    assert cli.main(["export", src, "--frame", "2", "-o", str(out)]) == 0
    pic = _png(out)
    assert pic.shape == (100, 100, 3)
    assert np.array_equal(pic, decode_frame(FileRef(src), 1).stored)


def test_refuses_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _file("CT_small.dcm")
    out = tmp_path / "x.png"
    out.write_bytes(b"keep me")
    assert cli.main(["export", src, "-o", str(out)]) == 1
    assert out.read_bytes() == b"keep me"
    err = capsys.readouterr().err
    assert "--force" in err and err.count("\n") == 1
    assert cli.main(["export", src, "-o", str(out), "--force"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--frame", "5"], 1, "frame 5 does not exist"),
        (["--preset", "nonsense"], 1, "unknown preset"),
        (["--frame", "0"], 2, "from 1"),
        (["--window", "40"], 2, "CENTER,WIDTH"),
        (["--window=40,80", "--preset", "lung"], 2, "not allowed"),
    ],
)
def test_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, needle: str
) -> None:
    out = tmp_path / "o.png"
    assert cli.main(["export", _file("CT_small.dcm"), *args, "-o", str(out)]) == code
    assert needle in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "needle"),
    [("MR_truncated.dcm", "pixel data is 8,130 bytes, 8,192 expected"), ("rtstruct.dcm", "no pixel data")],
)
def test_cannot_export_one_line_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, needle: str
) -> None:
    out = tmp_path / "o.png"
    assert cli.main(["export", _file(name), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_not_dicom_and_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 300)
    out = tmp_path / "o.png"
    assert cli.main(["export", str(junk), "-o", str(out)]) == 1
    assert cli.main(["export", str(tmp_path / "missing.dcm"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "not a DICOM file" in err and "no such file" in err
    assert sorted(os.listdir(tmp_path)) == ["junk.dcm"]


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(self: Image.Image, fp: object, format: str | None = None, **kw: object) -> None:
        fp.write(b"\x89PNG partial")  # type: ignore[attr-defined]  # export passes a file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    out = tmp_path / "o.png"
    assert cli.main(["export", _file("CT_small.dcm"), "-o", str(out)]) == 1
    assert os.listdir(tmp_path) == []


def test_command_line_does_not_import_textual(tmp_path: Path) -> None:
    out = tmp_path / "o.png"
    code = (
        "import sys, tui_dicom.cli as c; rc = c.main(['export', sys.argv[1], '--window=-600,1500', '-o', sys.argv[2]]);"
        "assert 'textual' not in sys.modules, 'textual imported'; sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, _file("CT_small.dcm"), str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert out.exists()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_exported_file_follows_the_umask(tmp_path: Path, umask: int) -> None:
    """The PNG gets the mode any new file gets (0666 less the umask), not the temporary file's 0600;
    checked in a child process so this process's umask is never changed, and against ``touch``."""
    src = _file("CT_small.dcm")
    out = tmp_path / f"ct-{umask:03o}.png"
    reference = tmp_path / f"touched-{umask:03o}"
    code = (
        f"import os, sys; os.umask({umask}); from tui_dicom.cli import main; "
        f"rc = main(['export', {src!r}, '-o', {str(out)!r}]); "
        f"os.system('touch ' + {str(reference)!r}); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert out.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777
