"""``tui-dicom ls``: the tree, the exact --json shape, exit codes, inert output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from conftest import DICOMDIR_TESTS, PYDICOM_FILES, REPO, SHARED_DATA, needs_shared

from tui_dicom import cli


def _ls(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["ls", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_shape_exactly(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _ls(["--json", str(DICOMDIR_TESTS)], capsys)
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["patients", "errors", "skipped"]
    assert data["errors"] == [] and data["skipped"] == []
    for p in data["patients"]:
        assert list(p) == ["patient_id", "patient_name", "studies"]
        for st in p["studies"]:
            assert list(st) == ["study_instance_uid", "study_date", "study_description", "series"]
            for se in st["series"]:
                assert list(se) == [
                    "series_instance_uid",
                    "series_number",
                    "modality",
                    "series_description",
                    "instances",
                    "frames",
                ]
    # counts against pydicom's reading of the DICOMDIR records
    ds = pydicom.dcmread(DICOMDIR_TESTS / "DICOMDIR")
    kinds = [r.DirectoryRecordType for r in ds.DirectoryRecordSequence]
    assert len(data["patients"]) == kinds.count("PATIENT")
    assert sum(len(p["studies"]) for p in data["patients"]) == kinds.count("STUDY")
    series = [se for p in data["patients"] for st in p["studies"] for se in st["series"]]
    assert len(series) == kinds.count("SERIES")
    assert sum(se["instances"] for se in series) == kinds.count("IMAGE")


@needs_shared("taichi_mri_cd")
def test_tree_of_the_clinic_cd(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _ls([str(SHARED_DATA / "taichi_mri_cd")], capsys)
    assert code == 0 and err == ""
    assert "古橋^大地" in out
    assert "MR #8 T2 AX  (17 instances)" in out
    assert out.rstrip().endswith("1 patient, 1 study, 5 series, 67 instances, 67 frames")


def test_errors_exit_1_and_missing_path_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"hello, not DICOM" * 20)
    code, out, _ = _ls([str(PYDICOM_FILES / "CT_small.dcm"), str(bad)], capsys)
    assert code == 1
    assert f"{bad}: not a DICOM file" in out
    code, out, err = _ls([str(tmp_path / "nothere")], capsys)
    assert code == 2 and "no such file" in err and out == ""
    assert cli.main(["ls"]) == 2  # no path: usage


def test_skipped_files_are_counted_and_nothing_usable_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files passed over as not DICOM by their name are counted with their reason; no instance at all
    is an error (a script must not read "0 patients" as an empty CD)."""
    (tmp_path / "README").write_text("About this CD\n")
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / ".hidden").write_bytes(b"\0" * 300)
    code, out, err = _ls([str(tmp_path)], capsys)
    assert code == 1
    assert out.splitlines()[0] == "0 patients, 0 studies, 0 series, 0 instances, 0 frames"
    assert err.splitlines()[0] == "tui-dicom ls: skipped 3 files that are not DICOM:"
    assert "3 × not a DICOM file" in err and "README" in err and "notes.txt" in err
    assert err.splitlines()[-1] == f"tui-dicom ls: no DICOM instance found in {tmp_path}"
    code, out, _ = _ls(["--json", str(tmp_path)], capsys)
    data = json.loads(out)
    assert code == 1 and data["patients"] == [] and data["errors"] == []
    assert sorted(Path(s["path"]).name for s in data["skipped"]) == [".hidden", "README", "notes.txt"]
    assert all(s["reason"].startswith("not a DICOM file") for s in data["skipped"])
    # with an image beside them: exit 0, the skipped files still counted on stderr
    (tmp_path / "ct.dcm").write_bytes((PYDICOM_FILES / "CT_small.dcm").read_bytes())
    code, out, err = _ls([str(tmp_path)], capsys)
    assert code == 0 and "1 patient, 1 study, 1 series, 1 instance" in out
    assert err.startswith("tui-dicom ls: skipped 3 files that are not DICOM:")


def test_hostile_values_are_inert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = pydicom.dcmread(PYDICOM_FILES / "CT_small.dcm")
    ds.PatientName = "EVIL\x1b]0;pwned\x07^[bold]x[/]"
    ds.SeriesDescription = "a\u202eb\x9bc"
    ds.save_as(tmp_path / "evil.dcm")
    code, out, _ = _ls([str(tmp_path)], capsys)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out and "\x9b" not in out
    assert "EVIL\\x1b]0;pwned\\x07^[bold]x[/]" in out
    code, out, _ = _ls(["--json", str(tmp_path)], capsys)
    assert "\x1b" not in out and "\u202e" not in out and "\x9b" not in out
    assert json.loads(out)["patients"][0]["patient_name"] == "EVIL\x1b]0;pwned\x07^[bold]x[/]"  # value intact


def test_ls_imports_no_ui_or_pixel_decoders() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from tui_dicom import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    cli.main(['ls', {str(DICOMDIR_TESTS)!r}])\n"
        "bad = [m for m in ('textual', 'rich', 'textual_image', 'pydicom.pixels.decoders.pylibjpeg', 'numpy')"
        " if m in sys.modules]\n"
        "print(bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert proc.stdout.strip() == "[]"
