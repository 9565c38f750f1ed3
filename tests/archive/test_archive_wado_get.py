"""``tui-dicom get`` over WADO-RS: the files are what the archive stores, byte for byte, memory stays flat
in series length, and the pixel stack is never imported; the streamed multipart reader keeps whole
instances only when an answer stops inside one.

References: Orthanc's own ``GET /instances/{id}/file`` (the stored file), the child's peak RSS from the
kernel (``wait4`` through ``hostile_corpus.MEASURING_LAUNCHER``), Python's ``-X importtime`` list, and
pydicom's files served by a plain ``http.server`` for the broken answer.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hostile_corpus
import pydicom
import pytest
from conftest import REPO, SHARED_DATA
from orthanc import OrthancServer
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from tui_dicom.core.archive import dicomweb
from tui_dicom.core.archive.address import parse_address
from tui_dicom.core.archive.connect import open_client
from tui_dicom.core.archive.diskcache import OutputFolder
from tui_dicom.core.archive.errors import RetrieveIncomplete

CT_DIR = SHARED_DATA / "ge_ct_head"
SHORT = 20  # instances of the short series; the long one has twice as many
#: what a 2x longer series may add to the peak RSS: 6 MB is ~12 of these 0.5 MB slices, where holding
#: the series (or the answer) in memory would add 20 of them
RSS_SLACK_KB = 6 * 1024
#: never imported by ``get`` over WADO-RS (it only copies bytes)
HEAVY = ("numpy", "pydicom", "textual", "dicomweb_client", "PIL", "pynetdicom")


@dataclass
class Series:
    study_uid: str
    series_uid: str
    orthanc_ids: dict[str, str]  # SOP Instance UID -> Orthanc instance ID
    orthanc_study: str  # Orthanc's ID of the study


def _upload_series(orthanc: OrthancServer, sources: list[Path], n: int, folder: Path) -> Series:
    """``n`` real CT slices under new UIDs (one new study and series), uploaded; files made at test time."""
    study, series = generate_uid(), generate_uid()
    ids: dict[str, str] = {}
    orthanc_study = ""
    for i in range(n):
        ds = pydicom.dcmread(sources[i % len(sources)])
        ds.PatientID = "WADO-GET-TEST"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = i + 1
        path = folder / f"{n}-{i}.dcm"
        ds.save_as(path, enforce_file_format=True)
        answer = orthanc.upload(path)
        ids[str(ds.SOPInstanceUID)], orthanc_study = answer["ID"], answer["ParentStudy"]
    return Series(study, series, ids, orthanc_study)


@pytest.fixture(scope="module")
def ct_series(orthanc: OrthancServer) -> Iterator[tuple[Series, Series]]:
    """A short and a twice-as-long CT series in the session Orthanc, deleted again afterwards (other
    test files count the studies there)."""
    sources = sorted(CT_DIR.glob("*.dcm"))
    if not sources:
        pytest.skip(f"shared data ge_ct_head missing (expected in {SHARED_DATA})")
    made: list[Series] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            made.append(_upload_series(orthanc, sources, SHORT, Path(tmp)))
            made.append(_upload_series(orthanc, sources, 2 * SHORT, Path(tmp)))
        yield made[0], made[1]
    finally:
        for s in made:
            orthanc.rest("DELETE", f"/studies/{s.orthanc_study}")


def _env(orthanc: OrthancServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TUI_DICOM_TOKEN"}
    env.update(
        TUI_DICOM_PASSWORD=orthanc.password,
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        NETRC=str(tmp_path / "no-netrc"),
    )
    return env


def _url(orthanc: OrthancServer) -> str:
    return orthanc.dicomweb_url.replace("://", f"://{orthanc.user}@")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if not p.is_dir())


def test_get_writes_what_orthanc_stores_byte_for_byte(
    orthanc: OrthancServer, ct_series: tuple[Series, Series], tmp_path: Path
) -> None:
    short, _ = ct_series
    out = tmp_path / "got"
    cmd = [sys.executable, "-X", "importtime", "-m", "tui_dicom", "get", _url(orthanc)]
    proc = subprocess.run(
        [*cmd, "--series", short.series_uid, "-o", str(out), "-q"],
        capture_output=True, text=True, cwd=REPO, env=_env(orthanc, tmp_path), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = _files(out)
    assert [p.name for p in files] == sorted(f"{uid}.dcm" for uid in short.orthanc_ids), (
        "one file per instance"
    )
    assert {p.parent for p in files} == {out / short.series_uid}, "nothing else in the folder"
    for path in files:
        stored = orthanc.rest("GET", f"/instances/{short.orthanc_ids[path.stem]}/file")
        assert path.read_bytes() == stored, f"{path.name} differs from what the archive stores"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert imported, "no -X importtime lines: the check below would prove nothing"
    assert not imported & set(HEAVY), f"get over WADO-RS imported {sorted(imported & set(HEAVY))}"

    # a whole study (found by the same series-level query) gives the same bytes
    whole = tmp_path / "study"
    proc = subprocess.run(
        [sys.executable, "-m", "tui_dicom", "get", _url(orthanc), "--study", short.study_uid, "-o", str(whole)],
        capture_output=True, text=True, cwd=REPO, env=_env(orthanc, tmp_path), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{SHORT} instances" in proc.stdout
    assert [p.read_bytes() for p in _files(whole)] == [p.read_bytes() for p in files]


def _peak_rss_kb(cmd: list[str], env: dict[str, str]) -> int:
    """The child's peak RSS in KB, measured by the launcher between pytest and the command."""
    with tempfile.TemporaryDirectory() as tmp:
        usage = Path(tmp) / "usage"
        proc = subprocess.run(
            [sys.executable, "-c", hostile_corpus.MEASURING_LAUNCHER, str(usage), *cmd],
            capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        return int(usage.read_text().split()[1])


def test_peak_rss_is_flat_in_series_length(
    orthanc: OrthancServer, ct_series: tuple[Series, Series], tmp_path: Path
) -> None:
    env = _env(orthanc, tmp_path)
    peaks: dict[int, int] = {}
    for series in ct_series:
        n = len(series.orthanc_ids)
        out = tmp_path / f"got-{n}"
        cmd = [sys.executable, "-m", "tui_dicom", "get", _url(orthanc), "--series", series.series_uid, "-o", str(out), "-q"]  # fmt: skip
        peaks[n] = _peak_rss_kb(cmd, env)
        assert len(_files(out)) == n
    short, long = peaks[SHORT], peaks[2 * SHORT]
    assert long - short <= RSS_SLACK_KB, (
        f"peak RSS {long} KB for {2 * SHORT} instances vs {short} KB for {SHORT}: grows with the series"
    )


# ------------------------------------------------------------------ an answer that stops inside a part


def _multipart(parts: list[bytes], boundary: bytes) -> bytes:
    body = b""
    for part in parts:
        body += b"--" + boundary + b"\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n"
    return body + b"--" + boundary + b"--\r\n"


def test_an_answer_cut_inside_an_instance_keeps_only_whole_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm")
    found = [get_testdata_file(n, download=False) for n in names]
    if not all(found):
        pytest.skip("pydicom's test files are missing")
    paths = [Path(str(f)) for f in found]
    originals = [p.read_bytes() for p in paths]
    boundary = b"tui-dicom-test-boundary"
    full = _multipart(originals, boundary)
    cut = full[: full.index(originals[2][:4096]) + 2048]  # half way through the third instance's header

    class Handler(BaseHTTPRequestHandler):
        body = full
        content_type = f'multipart/related; type="application/dicom"; boundary={boundary.decode()}'

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", self.content_type)
            # no length: the end of the answer is the end of the stream
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(self.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(dicomweb, "CHUNK", 997)  # boundaries straddle the chunks read from the socket
    monkeypatch.delenv("TUI_DICOM_PASSWORD", raising=False)
    monkeypatch.delenv("TUI_DICOM_TOKEN", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    try:
        client = open_client(
            parse_address(f"http://127.0.0.1:{server.server_address[1]}/dicom-web", config={})
        )
        uids = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths]

        whole = OutputFolder(tmp_path / "whole")
        got = list(client.retrieve("1.2.3", "", whole))
        assert [g.sop_instance_uid for g in got] == uids
        assert [g.path.read_bytes() for g in got] == originals, "the parts' bytes, unchanged"

        Handler.body = cut
        partial = OutputFolder(tmp_path / "cut")
        kept = []
        with pytest.raises(RetrieveIncomplete, match="ended inside an instance") as err:
            for item in client.retrieve("1.2.3", "", partial):
                kept.append(item)
        assert [k.sop_instance_uid for k in kept] == uids[:2] == err.value.received
        assert _files(tmp_path / "cut") == sorted(k.path for k in kept), (
            "the cut instance left nothing behind"
        )

        # a server may answer one instance as a bare application/dicom body: kept as it is
        Handler.body, Handler.content_type = originals[1], "application/dicom"
        single = OutputFolder(tmp_path / "single")
        got = list(client.retrieve("1.2.3", "4.5.6", single, sop_uid=uids[1]))
        assert [g.sop_instance_uid for g in got] == [uids[1]]
        assert got[0].path.read_bytes() == originals[1]
        client.close()
    finally:
        server.shutdown()
