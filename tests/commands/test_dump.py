"""Tests of ``tui-dicom dump``: output form, -t selection, bare values, JSON, exit codes, safety, start-up."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bundled import bundled
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

REPO = Path(__file__).resolve().parents[2]
CT_SMALL = bundled("CT_small.dcm")
INJECT = {
    "clear": "\x1b[2J",
    "osc52": "\x1b]52;c;aGVsbG8=\x07",
    "osc8": "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "c1": "\x9b31m",
    "bel": "\x07",
}
RAW_BYTES = [b"\x1b", b"\x9b", b"\xc2\x9b", b"\x07"]


def run_dump(*args: str, stdin_tty: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m tui_dicom dump ARGS`` and capture bytes."""
    return subprocess.run(
        [sys.executable, "-m", "tui_dicom", "dump", *args],
        capture_output=True,
        cwd=REPO,
        timeout=60,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def run_dump_tty(*args: str) -> bytes:
    """Run dump with stdout on a pseudo-terminal; return every byte written to it."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_dicom", "dump", *args], stdout=slave, stderr=slave, cwd=REPO
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def hostile_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid DICOM file whose values hold terminal escapes, C1 controls, BEL and Rich markup."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SpecificCharacterSet = "ISO_IR 100"  # Latin-1: byte 0x9B is the C1 control CSI
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Evil" + INJECT["clear"] + INJECT["c1"] + "^Name"
    ds.PatientID = "ID" + INJECT["osc52"]
    ds.StudyDescription = "[bold]loud[/bold] [link=x]click[/link]"
    ds.ImageComments = INJECT["osc8"] + INJECT["bel"] + "\r\nsecond line"
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    item.add_new(0x00091010, "LO", "ACME" + INJECT["clear"])
    ds.ReferencedImageSequence = Sequence([item])
    ds.add_new(0x00090010, "LO", "CREATOR" + INJECT["c1"])
    ds.add_new(0x00091001, "LO", "priv" + INJECT["bel"])
    path = tmp_path_factory.mktemp("hostile") / "evil.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


# ------------------------------------------------------------------------------------------ format


def test_full_dump_form_and_indentation() -> None:
    proc = run_dump(CT_SMALL)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert "(0010,0020) LO PatientID  1CT1  # 4" in lines
    assert "(0002,0010) UI TransferSyntaxUID  1.2.840.10008.1.2.1  # 20" in lines
    assert "(0008,0008) CS ImageType  ORIGINAL\\PRIMARY\\AXIAL  # 22" in lines
    assert "(0009,1001) LO FullFidelity  GE_GENESIS_FF  # 14, GEMS_IDEN_01" in lines
    assert "    (0010,0020) LO PatientID  ABCD1234  # 8" in lines  # inside an item: indented
    assert "(7FE0,0010) OW PixelData  OW 32,768 bytes, 128×128 16-bit  # 32768" in lines
    elements = [ln for ln in lines if ln.startswith("(")]
    assert len(elements) > 200
    assert lines.index("# File meta information") < lines.index("# Dataset")


def test_depth_and_no_private() -> None:
    out = run_dump(CT_SMALL, "--depth", "0", "--no-private").stdout.decode()
    assert "ABCD1234" not in out and "OtherPatientIDsSequence  2 items" in out
    assert "GEMS_IDEN_01" not in out and "(0009," not in out


@pytest.mark.slow
def test_charset_values_decoded() -> None:
    path = get_charset_files("chrH31.dcm")[0]
    proc = run_dump(path, "-t", "PatientName")
    assert proc.stdout.decode() == "Yamada^Tarou=山田^太郎=やまだ^たろう\n"
    kor = run_dump(get_charset_files("chrKoreanMulti.dcm")[0], "-t", "PatientName").stdout.decode()
    assert "김희중" in kor
    latin = run_dump(get_charset_files("chrFren.dcm")[0], "-t", "PatientName").stdout.decode()
    assert latin == "Buc^Jérôme\n"


# --------------------------------------------------------------------------------------- selection


def test_bare_value_for_one_file_and_one_tag() -> None:
    for form in ("PatientID", "0010,0020", "(0010,0020)", "00100020"):
        proc = run_dump(CT_SMALL, "-t", form)
        assert (proc.returncode, proc.stdout) == (0, b"1CT1\n"), form


def test_sequence_paths_and_wildcards() -> None:
    assert run_dump(CT_SMALL, "-t", "OtherPatientIDsSequence[1].PatientID").stdout == b"1234ABCD\n"
    assert run_dump(CT_SMALL, "-t", "*.PatientID").stdout == b"1CT1\nABCD1234\n1234ABCD\n"
    two = run_dump(CT_SMALL, "-t", "*.PatientID", "-t", "Modality").stdout.decode().splitlines()
    assert two == [
        "(0010,0020) LO PatientID  1CT1  # 4",
        "(0010,1002)[0].(0010,0020) LO PatientID  ABCD1234  # 8",
        "(0010,1002)[1].(0010,0020) LO PatientID  1234ABCD  # 8",
        "(0008,0060) CS Modality  CT  # 2",
    ]


def test_several_files_get_header_lines() -> None:
    mr = bundled("MR_small.dcm")
    out = run_dump(CT_SMALL, mr, "-t", "Modality").stdout.decode().splitlines()
    assert out[0].startswith("# File: ") and out[0].endswith("CT_small.dcm")
    assert out[1] == "(0008,0060) CS Modality  CT  # 2"
    assert out[3].endswith("MR_small.dcm") and out[4] == "(0008,0060) CS Modality  MR  # 2"


# ---------------------------------------------------------------------------------------- exit codes


@pytest.mark.slow
def test_exit_codes(tmp_path: Path) -> None:
    text = tmp_path / "notes.dcm"
    text.write_text("not dicom at all\n")
    proc = run_dump(CT_SMALL, str(text))
    assert proc.returncode == 1
    assert proc.stdout.startswith(b"# File: ")
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "notes.dcm" in err and "not a DICOM file" in err
    assert "Traceback" not in err
    missing = run_dump(str(tmp_path / "nope.dcm"))
    assert missing.returncode == 2 and b"No such file" in missing.stderr
    assert run_dump(CT_SMALL, "-t", "NoSuchKeyword").returncode == 2
    assert run_dump(CT_SMALL, "--depth", "-1").returncode == 2
    absent = run_dump(CT_SMALL, "-t", "PatientComments")
    assert absent.returncode == 1 and absent.stdout == b"" and b"no element matches" in absent.stderr
    truncated = run_dump(bundled("rtplan_truncated.dcm"))
    assert truncated.returncode in (0, 1) and b"Traceback" not in truncated.stderr


def test_broken_pipe_is_quiet() -> None:
    cmd = f"{sys.executable} -m tui_dicom dump {CT_SMALL} {CT_SMALL} {CT_SMALL} | head -n 2"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, cwd=REPO, timeout=60)
    assert len(proc.stdout.splitlines()) == 2
    assert proc.stderr == b"", proc.stderr.decode()


# ---------------------------------------------------------------------------------------------- JSON


@pytest.mark.slow
def test_json_round_trip() -> None:
    proc = run_dump(CT_SMALL, "--json")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    assert doc["00100020"] == {"vr": "LO", "Value": ["1CT1"]}
    assert "7FE00010" not in doc
    back = Dataset.from_json(doc)
    assert back.PatientName == "CompressedSamples^CT1"
    assert len(back.OtherPatientIDsSequence) == 2
    only = json.loads(run_dump(CT_SMALL, "--json", "-t", "PatientID", "--no-private").stdout)
    assert only == {"00100020": {"vr": "LO", "Value": ["1CT1"]}}
    assert run_dump(CT_SMALL, "--json", "-t", "*.PatientID").returncode == 2


# ------------------------------------------------------------------------------------------- safety


def _assert_inert(out: bytes) -> None:
    for raw in RAW_BYTES:
        assert raw not in out, f"raw {raw!r} reached the terminal"
    text = out.decode("utf-8")
    assert "\\x1b[2J" in text and "\\x1b]52;c;" in text and "\\x9b31m" in text and "\\x07" in text
    assert "[bold]loud[/bold] [link=x]click[/link]" in text  # markup printed literally


@pytest.mark.slow
def test_injection_inert_in_a_pipe(hostile_file: Path) -> None:
    proc = run_dump(str(hostile_file))
    assert proc.returncode == 0, proc.stderr
    _assert_inert(proc.stdout)
    assert b"\r" not in proc.stdout
    assert "\\x0d\\x0asecond line" in proc.stdout.decode()
    assert "CREATOR\\x9b31m" in proc.stdout.decode()  # private creator made safe too
    bare = run_dump(str(hostile_file), "-t", "PatientID").stdout
    assert bare == b"ID\\x1b]52;c;aGVsbG8=\\x07\n"
    for raw in RAW_BYTES:
        assert raw not in run_dump(str(hostile_file), "--json").stdout


@pytest.mark.slow
def test_injection_inert_on_a_tty(hostile_file: Path) -> None:
    out = run_dump_tty(str(hostile_file))
    _assert_inert(out.replace(b"\r\n", b"\n"))


# ------------------------------------------------------------------------------------------ start-up

_PROBE = """
import sys
from tui_dicom.cli import main
code = main(["dump", sys.argv[1], "-t", "PatientID"])
heavy = ["textual", "rich", "textual_image", "tui_dicom.core.imaging.pixels", "tui_dicom.core.imaging.windowing",
         "tui_dicom.core.graphics.layout", "tui_dicom.ui"]
print("LOADED", [m for m in heavy if m in sys.modules], "numpy" in sys.modules, "pydicom.pixels" in sys.modules)
"""


def _probe() -> str:
    proc = subprocess.run([sys.executable, "-c", _PROBE, CT_SMALL], capture_output=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode().splitlines()[-1]


def test_dump_imports_no_ui_and_no_pixel_pipeline() -> None:
    assert _probe().startswith("LOADED []"), "dump must not import the UI or our pixel pipeline"


def test_dump_does_not_import_numpy_or_pydicom_pixels() -> None:
    # issue: "no pixel decoder is imported". CT_small is read by the pydicom-free reader, so neither
    # numpy nor pydicom's pixel package (nor pydicom at all) is loaded.
    assert _probe().endswith("False False")


_PROBE_PYDICOM = """
import sys
from tui_dicom.cli import main
main(["dump", sys.argv[1], "-t", "PatientID"])
print("PYDICOM", "pydicom" in sys.modules)
"""


_PROBE_IMPORTS = """
import sys
before = set(sys.modules)
from tui_dicom.cli import main
code = main(["dump", *sys.argv[1:]])
print("NEW", code, " ".join(sorted(set(sys.modules) - before)))
"""

#: what ``dump FILE`` must not import (issue: start like dcmdump): each costs milliseconds of start-up.
#: The viewer's stack, the pixel pipeline, pydicom (the quick reader reads the common file), and the
#: standard modules the dump path was freed of: argparse's help formatter is sized without shutil,
#: the dump's own records are hand-written, the types are for mypy only (no typing), logging is set up
#: only when pydicom may run, ZIP support only for ZIPs, and no ``dataclasses`` (with inspect, ast, dis
#: and tokenize): the records on the path, the resource budget's ``Limits`` among them, are hand-written.
_DUMP_MUST_NOT_IMPORT = (
    "textual",
    "rich",
    "textual_image",
    "numpy",
    "pydicom",
    "PIL",
    "tui_dicom.ui",
    "tui_dicom.commands.view",
    "tui_dicom.core.imaging.pixels",
    "tui_dicom.core.hierarchy.index",
    "typing",
    "dataclasses",
    "inspect",
    "ast",
    "threading",
    "logging",
    "zipfile",
    "shutil",
    "bz2",
    "lzma",
    "json",
    # (contextlib is not listed: importlib.util, which finds pydicom's dictionary files without importing
    # pydicom, needs it; an editable install loads it at start-up anyway, a regular one does not)
    "datetime",
    "platform",
    "pathlib",
)


@pytest.mark.parametrize("tags", [[], ["-t", "PatientID"]], ids=["full", "one-tag"])
def test_dump_import_budget(tags: list[str], tmp_path: Path) -> None:
    # a real CT slice with private tags (the private dictionary is consulted too); CT_small otherwise
    ct = REPO.parent / "shared" / "data" / "ge_ct_head" / "01.dcm"
    path = str(ct) if ct.is_file() else str(CT_SMALL)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}  # the first run builds the dictionary cache
    for _ in range(2):  # ... and the second reads it: neither may pull in a heavy module
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE_IMPORTS, path, *tags],
            capture_output=True,
            cwd=REPO,
            timeout=60,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        line = proc.stdout.decode().splitlines()[-1]
        assert line.startswith("NEW 0 "), line
        new = line.split()[2:]
        heavy = sorted(
            m for m in new if m.split(".")[0] in _DUMP_MUST_NOT_IMPORT or m in _DUMP_MUST_NOT_IMPORT
        )
        heavy += sorted(
            m for m in new if any(m.startswith(h + ".") for h in _DUMP_MUST_NOT_IMPORT if "." in h)
        )
        assert heavy == [], f"dump FILE imported {heavy}"
        assert "tui_dicom.core.inspector.quickdump" in new  # the quick reader did the work
    if ct.is_file():  # it has private elements: both dictionaries were needed, and cached
        assert sorted(p.name.split("-")[1] for p in (tmp_path / "tui-dicom").iterdir()) == [
            "private",
            "public",
        ]


def test_dump_of_a_plain_file_does_not_import_pydicom() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE_PYDICOM, CT_SMALL], capture_output=True, cwd=REPO, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines()[-1] == "PYDICOM False"
    assert proc.stdout.decode().splitlines()[0] == "1CT1"


# ------------------------------------------------------------------------------------ folders, DICOMDIR


def _need_index() -> None:
    try:
        import tui_dicom.core.hierarchy.index  # noqa: F401
    except ImportError:
        pytest.skip("tui_dicom.core.hierarchy.index (folder/DICOMDIR/ZIP indexing) has not landed yet")


def test_folder_dumps_every_instance_with_headers() -> None:
    _need_index()
    folder = REPO.parent / "shared" / "data" / "ge_ct_head"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    proc = run_dump(str(folder), "-t", "InstanceNumber")
    lines = proc.stdout.decode().splitlines()
    headers = [ln for ln in lines if ln.startswith("# File: ")]
    assert len(headers) == len(list(folder.glob("*.dcm")))
    assert sum(ln.startswith("(0020,0013) IS InstanceNumber") for ln in lines) == len(headers)


def _dicomdir() -> Path:
    dicomdir = get_testdata_file("DICOMDIR", download=False)
    if not isinstance(dicomdir, str):
        pytest.skip("pydicom's dicomdirtests not available")
    return Path(dicomdir)


def _referenced_files(dicomdir: Path) -> list[Path]:
    """The image files the DICOMDIR's records point to, read with pydicom (not with our index)."""
    import pydicom

    ds = pydicom.dcmread(dicomdir)
    return sorted(
        dicomdir.parent.joinpath(*list(r.ReferencedFileID))
        for r in ds.DirectoryRecordSequence
        if "ReferencedFileID" in r
    )


def test_cd_root_dumps_listed_instances() -> None:
    _need_index()
    root = _dicomdir().parent
    proc = run_dump(str(root), "-t", "SOPInstanceUID")
    headers = [ln[len("# File: ") :] for ln in proc.stdout.decode().splitlines() if ln.startswith("# File: ")]
    assert sorted(Path(h) for h in headers) == _referenced_files(_dicomdir())
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr


_DCMDUMP_LINE = re.compile(r"^( *)\(([0-9a-f]{4}),([0-9a-f]{4})\) (\w\w) (.*?) *# *\d+, \d+ \w+$")
_OUR_LINE = re.compile(r"^( *)\(([0-9A-F]{4}),([0-9A-F]{4})\) (\S+) (\S+)  (.*?)(?:  # \d+)?$")


def _dcmdump_elements(text: str) -> list[tuple[int, int, str, str]]:
    """(depth, tag, VR, value) of every element and item dcmdump printed; delimiters left out."""
    out = []
    for line in text.splitlines():
        m = _DCMDUMP_LINE.match(line)
        if not m or m.group(2) == "fffe" and m.group(3) != "e000":
            continue
        tag = int(m.group(2) + m.group(3), 16)
        vr = {"up": "UL"}.get(m.group(4), m.group(4))  # DCMTK's internal VR for record offsets
        value = m.group(5)
        if vr == "SQ" or tag == 0xFFFEE000 or value == "(no value available)":
            value = ""
        elif value.startswith("["):
            value = value[1:-1].rstrip()
        out.append((len(m.group(1)) // 2, tag, vr, value))
    return out


def _our_elements(text: str) -> list[tuple[int, int, str, str]]:
    out = []
    for line in text.splitlines():
        m = _OUR_LINE.match(line)
        if not m:
            continue
        tag = int(m.group(2) + m.group(3), 16)
        vr, value = m.group(4), m.group(6)
        if vr == "SQ" or tag == 0xFFFEE000:
            value = ""
        out.append((len(m.group(1)) // 2, tag, vr, value))
    return out


@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="DCMTK's dcmdump is not installed")
@pytest.mark.slow
def test_dicomdir_file_is_dumped_itself_like_dcmdump() -> None:
    """Naming the DICOMDIR file dumps the DICOMDIR (its records), element for element as dcmdump does."""
    dicomdir = _dicomdir()
    reference = subprocess.run(
        ["dcmdump", "+L", "-Un", str(dicomdir)], capture_output=True, text=True, check=True
    )
    want = _dcmdump_elements(reference.stdout)
    proc = run_dump(str(dicomdir))
    assert proc.returncode == 0, proc.stderr
    got = _our_elements(proc.stdout.decode())
    assert len(want) > 400 and sum(t == 0xFFFEE000 for _d, t, _v, _x in want) == 52
    assert got == want
    seq = run_dump(str(dicomdir), "-t", "DirectoryRecordSequence", "-t", "FileSetID")
    lines = seq.stdout.decode().splitlines()
    assert seq.returncode == 0 and lines[0].startswith("(0004,1220) SQ DirectoryRecordSequence  52 items")
    assert sum("DirectoryRecordType" in ln for ln in lines) == 52
    assert lines[-1] == "(0004,1130) CS FileSetID  PYDICOM_TEST  # 12"
    types = run_dump(str(dicomdir), "-t", "*.DirectoryRecordType", "--values").stdout.decode().splitlines()
    assert len(types) == 1 and types[0].split("\t")[0] == str(dicomdir)
    assert types[0].split("\t")[1].split("\\") == [v for _d, t, _vr, v in want if t == 0x00041430]


def test_values_mode_prints_path_and_value_per_instance() -> None:
    """``--values``: PATH<TAB>VALUE per instance of a CD, values checked against pydicom's reading."""
    import pydicom

    _need_index()
    root = _dicomdir().parent
    proc = run_dump(str(root), "-t", "PatientID", "-t", "Modality", "--values")
    assert proc.returncode == 0, proc.stderr
    rows = [ln.split("\t") for ln in proc.stdout.decode().splitlines()]
    files = _referenced_files(_dicomdir())
    assert sorted(Path(r[0]) for r in rows) == files
    for path, patient_id, modality in rows:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert (patient_id, modality) == (ds.PatientID, ds.Modality)
    # README's recipe: the distinct values
    recipe = subprocess.run(
        f"{sys.executable} -m tui_dicom dump {root} -t PatientID --values | cut -f2 | sort -u",
        shell=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert recipe.stdout.split() == sorted(
        {pydicom.dcmread(f, stop_before_pixels=True).PatientID for f in files}
    )
    # one file: the same form (a script needs no special case), values uncut
    one = run_dump(CT_SMALL, "-t", "PatientID", "--values")
    assert one.stdout.decode() == f"{CT_SMALL}\t1CT1\n"
    assert run_dump(CT_SMALL, "--values").returncode == 2  # needs -t
    # a column per -t, an absent element empty; an instance holding none of them gets no line
    mr = bundled("MR_small.dcm")
    cols = run_dump(CT_SMALL, mr, "-t", "OtherPatientIDsSequence", "-t", "Modality", "--values")
    assert cols.stdout.decode().splitlines() == [f"{CT_SMALL}\t2 items\tCT", f"{mr}\t\tMR"]
    none = run_dump(CT_SMALL, mr, "-t", "OtherPatientIDsSequence", "--values")
    assert none.stdout.decode().splitlines() == [f"{CT_SMALL}\t2 items"] and none.returncode == 0
    assert run_dump(CT_SMALL, "--values", "--json", "-t", "PatientID").returncode == 2


def test_a_tag_found_in_no_file_exits_1() -> None:
    _need_index()
    root = _dicomdir().parent
    for extra in ([], ["--values"]):
        proc = run_dump(str(root), "-t", "PatientID", "-t", "CountryOfResidence", *extra)
        assert proc.returncode == 1, extra
        assert proc.stderr.decode() == "tui-dicom dump: no element matches 'CountryOfResidence' in any file\n"
        assert b"77654033" in proc.stdout  # what was found is still printed
    mr = bundled("MR_small.dcm")
    ok = run_dump(CT_SMALL, mr, "-t", "OtherPatientIDsSequence")  # in CT_small only: found somewhere
    assert ok.returncode == 0 and ok.stderr == b""


@pytest.mark.slow
def test_json_of_many_files_carries_each_path() -> None:
    import pydicom

    _need_index()
    root = _dicomdir().parent
    proc = run_dump(str(root), "--json", "-t", "PatientID")
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert sorted(Path(d["path"]) for d in docs) == _referenced_files(_dicomdir())
    for doc in docs:
        assert list(doc) == ["path", "dataset"]
        want = pydicom.dcmread(doc["path"], stop_before_pixels=True).PatientID
        assert Dataset.from_json(doc["dataset"]).PatientID == want
    mr = bundled("MR_small.dcm")
    two = json.loads(run_dump(CT_SMALL, mr, "--json").stdout)
    assert [d["path"] for d in two] == [CT_SMALL, mr]
    assert Dataset.from_json(two[1]["dataset"]).Modality == "MR"


def test_truncated_pixel_data_dumps_the_header_and_says_so() -> None:
    """pydicom keeps nothing of a file whose encapsulated pixel data has no end: ``dump`` showed the file
    meta alone, exit 0. The header is shown, then a line saying the pixel data is cut short, exit 1."""
    try:
        import data_store
    except ImportError:
        pytest.skip("pydicom-data not installed")
    path = Path(data_store.__file__).parent / "data" / "emri_small_jpeg_2k_lossless_too_short.dcm"
    if not path.exists():
        pytest.skip(f"{path.name} not available")
    proc = run_dump(str(path))
    lines = proc.stdout.decode().splitlines()
    assert proc.returncode == 1
    assert "(0028,0008) IS NumberOfFrames  10  # 2" in lines
    assert lines[-1] == "# Pixel Data not shown: it cannot be read (the file is truncated or damaged there)"
    assert (
        proc.stderr.decode()
        == f"tui-dicom dump: {path}: truncated or damaged: the pixel data cannot be read\n"
    )
