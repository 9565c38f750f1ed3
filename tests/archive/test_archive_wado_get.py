"""``tui-dicom get`` over WADO-RS: the files are what the archive stores, byte for byte, memory stays flat
in series length, and the pixel stack is never imported; the streamed multipart reader keeps whole
instances only when an answer stops inside one.

References: Orthanc's own ``GET /instances/{id}/file`` (the stored file), the child's peak RSS from the
kernel (``wait4`` through ``hostile_corpus.MEASURING_LAUNCHER``), Python's ``-X importtime`` list, and
pydicom's files served by a plain ``http.server`` for the broken answer.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
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
from urllib.parse import urlsplit

import hostile_corpus
import pydicom
import pytest
from conftest import REPO, SHARED_DATA
from orthanc import OrthancServer, free_port
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
#: never imported by ``get`` over WADO-RS (it only copies bytes, over the standard library's HTTP)
HEAVY = ("numpy", "pydicom", "textual", "dicomweb_client", "PIL", "pynetdicom", "requests", "urllib3")


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
    return str(orthanc.dicomweb_url).replace("://", f"://{orthanc.user}@")


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


# ------------------------------------------------------------------ HTTP as the user's environment has it


def _get_cli(url: str, series_uid: str, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui_dicom", "get", url, "--series", series_uid, "-o", str(out), "-q"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )  # fmt: skip


def _no_proxy_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.lower().endswith("_proxy")}


def test_get_failures_are_one_line_and_never_show_the_password(
    orthanc: OrthancServer, ct_series: tuple[Series, Series], tmp_path: Path
) -> None:
    short, _ = ct_series
    env = _no_proxy_env(_env(orthanc, tmp_path))
    out = tmp_path / "got"
    proc = _get_cli(_url(orthanc), short.series_uid, out, {**env, "TUI_DICOM_PASSWORD": "wrong-secret"})
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "authentication failed" in proc.stderr and "HTTP 401" in proc.stderr
    assert "credentials from TUI_DICOM_PASSWORD refused" in proc.stderr
    assert "wrong-secret" not in proc.stderr + proc.stdout
    assert not out.exists(), "nothing written for a refused request"

    no_password = {k: v for k, v in env.items() if k != "TUI_DICOM_PASSWORD"}
    proc = _get_cli(_url(orthanc), short.series_uid, out, no_password)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "no password given: set TUI_DICOM_PASSWORD" in proc.stderr

    port = free_port()
    proc = _get_cli(f"http://127.0.0.1:{port}/dicom-web", short.series_uid, out, env)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert f"connection refused by 127.0.0.1:{port}" in proc.stderr


def test_get_goes_through_the_proxy_the_environment_names(
    orthanc: OrthancServer, ct_series: tuple[Series, Series], tmp_path: Path
) -> None:
    """``http_proxy`` is honoured (the requests arrive at the proxy as absolute URIs and what comes
    back through it is Orthanc's bytes), and ``no_proxy`` bypasses it."""
    short, _ = ct_series
    seen: list[str] = []

    class Proxy(BaseHTTPRequestHandler):
        """A forwarding HTTP proxy (HTTP/1.0: the answer ends when the connection closes)."""

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append(self.path)
            target = urlsplit(self.path)
            upstream = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=60)
            skip = {"proxy-connection", "connection", "host", "keep-alive"}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
            upstream.request(
                "GET", target.path + (f"?{target.query}" if target.query else ""), headers=headers
            )
            answer = upstream.getresponse()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(key, value)
            self.end_headers()
            while chunk := answer.read1(1 << 16):
                self.wfile.write(chunk)
            upstream.close()

        def log_message(self, *args: Any) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        env = _no_proxy_env(_env(orthanc, tmp_path))
        env["http_proxy"] = f"http://127.0.0.1:{proxy.server_address[1]}"
        out = tmp_path / "via-proxy"
        proc = _get_cli(_url(orthanc), short.series_uid, out, env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        origin = f"http://127.0.0.1:{orthanc.http_port}/dicom-web"
        assert any(p.startswith(f"{origin}/series?") for p in seen), seen
        assert f"{origin}/studies/{short.study_uid}/series/{short.series_uid}" in seen, seen
        files = _files(out)
        assert len(files) == SHORT
        for path in files:
            assert path.read_bytes() == orthanc.rest("GET", f"/instances/{short.orthanc_ids[path.stem]}/file")

        before = len(seen)
        proc = _get_cli(
            _url(orthanc), short.series_uid, tmp_path / "direct", {**env, "no_proxy": "127.0.0.1"}
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert len(seen) == before, "no_proxy names the archive's host: the proxy must not be used"
        assert len(_files(tmp_path / "direct")) == SHORT
    finally:
        proxy.shutdown()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def test_get_over_https_verifies_the_certificate(tmp_path: Path) -> None:
    """A self-signed archive is refused in one line (nothing written); trusted once its certificate is
    the configured ``ca_bundle``, it gives the parts' bytes. Fails if verification were off."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    found = [get_testdata_file(n, download=False) for n in ("CT_small.dcm", "MR_small.dcm")]
    if not all(found):
        pytest.skip("pydicom's test files are missing")
    originals = [Path(str(f)).read_bytes() for f in found]
    boundary = b"tui-dicom-tls-test"
    study, series = "1.2.3.4", "1.2.3.4.5"
    qido = json.dumps([{
        "0020000D": {"vr": "UI", "Value": [study]},
        "0020000E": {"vr": "UI", "Value": [series]},
        "00201209": {"vr": "IS", "Value": [len(originals)]},
    }]).encode()  # fmt: skip

    class Archive(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.startswith("/dicom-web/series?"):
                body, kind = qido, "application/dicom+json"
            elif self.path == f"/dicom-web/studies/{study}/series/{series}":
                body = _multipart(originals, boundary)
                kind = f'multipart/related; type="application/dicom"; boundary={boundary.decode()}'
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    key, cert = _self_signed(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Archive)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {k: v for k, v in _no_proxy_env(dict(os.environ)).items() if not k.startswith("TUI_DICOM_")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), NETRC=str(tmp_path / "no-netrc"))
    env.pop("SSL_CERT_FILE", None)
    env.pop("SSL_CERT_DIR", None)
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/dicom-web"
        out = tmp_path / "refused"
        proc = _get_cli(url, series, out, env)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
        assert "TLS verification failed for 127.0.0.1" in proc.stderr
        assert "self-signed certificate" in proc.stderr, proc.stderr
        assert not out.exists(), "nothing written from an archive whose certificate failed"

        config = tmp_path / "config" / "tui-dicom" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(f'[archives.lab]\nurl = "{url}"\nca_bundle = "{cert}"\n')
        proc = _get_cli("lab:", series, tmp_path / "trusted", env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert sorted(p.read_bytes() for p in _files(tmp_path / "trusted")) == sorted(originals)
    finally:
        server.shutdown()
