"""The archive core without a server: addresses, credentials, search words, dates, the store guard, cache."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pytest
from conftest import PYDICOM_FILES

from tui_dicom.core.archive.address import credentials, looks_like_address, parse_address
from tui_dicom.core.archive.dicomweb import _head_uids, loosen_query_string
from tui_dicom.core.archive.dimse import DimseClient
from tui_dicom.core.archive.diskcache import DiskCache, OutputFolder, uid_name, write_file
from tui_dicom.core.archive.errors import AddressError
from tui_dicom.core.archive.query import (
    QueryFilters,
    Retrieved,
    date_matches,
    matches,
    normalise_date,
    parse_search,
)


def test_addresses() -> None:
    a = parse_address(
        "dicom://PACS@pacs.example.org:104", config={}, calling_aet="ME", retrieve="move", move_port=4000
    )
    assert (a.kind, a.called_aet, a.calling_aet, a.host, a.port, a.retrieve, a.move_port) == (
        "dimse", "PACS", "ME", "pacs.example.org", 104, "move", 4000,
    )  # fmt: skip
    w = parse_address("https://bob@web.example.org/dicom-web/", config={})
    assert (w.kind, w.url, w.user, w.port, w.verify_tls) == (
        "dicomweb",
        "https://web.example.org/dicom-web",
        "bob",
        443,
        True,
    )
    named = parse_address("lab:", config={"archives": {"lab": {"url": "dicom://LAB@h:11112", "aet": "X"}}})
    assert named.called_aet == "LAB" and named.calling_aet == "X" and named.name == "lab"
    for bad, words in (
        ("https://bob:secret@h/x", "password in the address is refused"),
        ("dicom://h:104", "dicom://CALLED_AET@HOST:PORT"),
        ("dicom://A@h", "needs a port"),
        ("ftp://h/x", "unknown address scheme"),
        ("nope:", "no archive named 'nope'"),
        ("dicom://THIS_AET_IS_FAR_TOO_LONG@h:1", "1-16"),
    ):
        with pytest.raises(AddressError, match=words) as err:
            parse_address(bad, config={})
        assert "secret" not in str(err.value)
    assert (
        looks_like_address("dicom://A@h:1")
        and looks_like_address("lab:")
        and not looks_like_address("/tmp/x")
    )


def test_credentials_order_and_secrecy(tmp_path: Path) -> None:
    a = parse_address("https://bob@h.example/dw", config={})
    netrc = tmp_path / "netrc"
    netrc.write_text("machine h.example login bob password from-netrc\n")
    env = {"NETRC": str(netrc)}
    assert credentials(a, env).password == "from-netrc"
    assert credentials(a, {**env, "TUI_DICOM_PASSWORD": "from-env"}).password == "from-env"
    token = credentials(a, {**env, "TUI_DICOM_TOKEN": "tok"})
    assert token.token == "tok" and "tok" not in repr(token) and "from-netrc" not in repr(credentials(a, env))
    assert not credentials(a, {"NETRC": str(tmp_path / "none")})


def test_dates_search_words_and_matching() -> None:
    assert normalise_date("2024-01-01..2024-01-31") == "20240101-20240131"
    assert normalise_date("20240101-") == "20240101-" and normalise_date("-20240131") == "-20240131"
    with pytest.raises(AddressError):
        normalise_date("2024")
    f = parse_search("DOE* date:2024-01-01.. mod:CT id:123 acc:A1 desc:HEAD*")
    assert f == QueryFilters("DOE*", "123", "20240101-", "CT", "A1", "HEAD*")
    with pytest.raises(AddressError, match="unknown search key"):
        parse_search("colour:red")
    assert (
        matches("doe^j*", "DOE^JOHN") and matches("DOE^?OHN", "DOE^JOHN") and not matches("DOE", "DOE^JOHN")
    )
    assert matches("[x]*", "[x] y") and not matches("[x]*", "x y")
    assert date_matches("20240101-20240131", "20240115") and not date_matches("-20231231", "20240101")


def test_query_strings_stay_matchable_on_servers_that_do_not_decode() -> None:
    url = "http://h/dw/studies?PatientName=DOE%5EJ%2A&StudyDate=20240101-20240131&includefield=00080020&StudyDescription=HEAD+NECK"
    assert loosen_query_string(url) == (
        "http://h/dw/studies?PatientName=DOE?J*&StudyDate=20240101-20240131&includefield=00080020&StudyDescription=HEAD?NECK"
    )
    assert (
        loosen_query_string("http://h/dw/studies?PatientName=M%C3%BCller%26Co")
        == "http://h/dw/studies?PatientName=M*ller%26Co"
    )


def test_store_guard_refuses_instances_of_another_series(tmp_path: Path) -> None:
    path = PYDICOM_FILES / "CT_small.dcm"
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    client = DimseClient(parse_address("dicom://A@h:1", config={}))
    arrived: queue.Queue[Retrieved | BaseException | None] = queue.Queue()
    dest = OutputFolder(tmp_path / "out")
    event = SimpleNamespace(
        request=SimpleNamespace(AffectedSOPInstanceUID=ds.SOPInstanceUID),
        encoded_dataset=lambda include_meta=True: path.read_bytes(),
    )
    other = client._store_handler(ds.StudyInstanceUID, "1.2.3.4", dest, None, arrived, threading.Event())
    assert other(event) == 0xC000 and not (tmp_path / "out").exists()
    same = client._store_handler(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, dest, None, arrived, threading.Event()
    )
    assert same(event) == 0
    (written,) = dest.files
    assert written.read_bytes() == path.read_bytes() and written.is_relative_to(tmp_path / "out")


def test_disk_cache_is_private_bounded_and_keeps_the_pinned_series(tmp_path: Path) -> None:
    assert (
        uid_name("1.2.3") == "1.2.3"
        and uid_name("../../etc/passwd").startswith("x")
        and "/" not in uid_name("a/b")
    )
    cache = DiskCache("dicom://A@h:1", 3000, root=tmp_path / "c")
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o700
    old = [cache.path_for("1.1", "1.1.1", f"1.1.1.{i}") for i in range(3)]
    for p in old:
        cache.stored(p, write_file(p, (b"x" * 1000,)))
    cache.pin("1.1", "1.1.2")
    new = [cache.path_for("1.1", "1.1.2", f"1.1.2.{i}") for i in range(3)]
    for p in new:
        cache.stored(p, write_file(p, (b"y" * 1000,)))
    assert all(p.is_file() for p in new) and not any(p.exists() for p in old)
    assert cache.nbytes <= 3000 and all(p.stat().st_mode & 0o077 == 0 for p in new)


def test_parts_are_named_from_their_first_bytes_as_pydicom_reads_them() -> None:
    """The UIDs a received part is named by, read from its first bytes, are pydicom's — for every file
    of pydicom's that the short walk accepts; a head too short (or an encoding it leaves alone) gives
    None, never a wrong name, and the file is then read by the slower readers."""
    files = sorted(PYDICOM_FILES.glob("*.dcm"))
    assert len(files) > 50, f"pydicom's test files missing in {PYDICOM_FILES}"
    named = readable = 0
    for path in files:
        data = path.read_bytes()
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - files pydicom itself refuses are not a reference
            continue
        readable += 1
        meta_sop = str(ds.file_meta.get("MediaStorageSOPInstanceUID", "") or "") if ds.file_meta else ""
        want = (
            str(ds.get("SOPInstanceUID", "") or "") or meta_sop,
            str(ds.get("SeriesInstanceUID", "") or ""),
        )
        for size in (len(data), 64 * 1024, 1024, 300):
            got = _head_uids(data[:size], complete=size >= len(data))
            if got is not None:
                assert got == want, f"{path.name} with {size} bytes: {got} != pydicom's {want}"
                named += size == len(data)
    assert named >= 0.9 * readable, f"only {named} of {readable} named from their bytes: the rest read twice"


def test_tls_is_verified_unless_the_config_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stdlib transport's TLS context: certificates and host names checked by default; certifi's
    bundle where OpenSSL finds no CA store (so HTTPS does not fail everywhere there)."""
    import ssl

    from tui_dicom.core.archive.transport import tls_context

    on = tls_context(parse_address("https://web.example.org/dicom-web", config={}))
    assert on.verify_mode == ssl.CERT_REQUIRED and on.check_hostname
    off_address = parse_address(
        "lab:", config={"archives": {"lab": {"url": "https://h/x", "verify_tls": False}}}
    )
    off = tls_context(off_address)
    assert off.verify_mode == ssl.CERT_NONE and not off.check_hostname

    pytest.importorskip("certifi")
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: SimpleNamespace(cafile=None, capath=None))
    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", lambda self, purpose=None: None)
    bare = tls_context(parse_address("https://web.example.org/dicom-web", config={}))
    assert bare.cert_store_stats()["x509_ca"] > 50, "no CA store and no fallback: every archive refused"
    assert bare.verify_mode == ssl.CERT_REQUIRED


def test_credentials_follow_a_redirect_only_to_the_same_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    """A redirect on the archive's own host keeps the password; one to another origin never gets it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tui_dicom.core.archive.address import Credentials
    from tui_dicom.core.archive.transport import Transport, same_origin

    assert same_origin("http://h/a", "http://h:80/b") and same_origin("http://h/a", "https://h/b")
    assert not same_origin("https://h/a", "http://h/b"), "a downgrade to http"
    assert not same_origin("http://h:8042/a", "http://h:8043/b") and not same_origin(
        "http://h/a", "http://g/a"
    )

    seen: dict[str, str | None] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen[f"{self.headers['Host']}{self.path}"] = self.headers.get("Authorization")
            if self.path in ("/same", "/away"):
                target = (
                    "/landed"
                    if self.path == "/same"
                    else f"http://127.0.0.1:{other.server_address[1]}/landed"
                )
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: object) -> None:
            pass

    archive, other = (
        ThreadingHTTPServer(("127.0.0.1", 0), Handler),
        ThreadingHTTPServer(("127.0.0.1", 0), Handler),
    )
    for server in (archive, other):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    for key in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(key, raising=False)
    try:
        here, there = (f"127.0.0.1:{s.server_address[1]}" for s in (archive, other))
        base = f"http://{here}"
        transport = Transport(parse_address(base, config={}), Credentials("alice", "pw", source="test"), 5, 5)
        with transport.get(f"{base}/same", "application/json") as answer:
            assert answer.read() == b"[]"
        assert seen[f"{here}/landed"] == seen[f"{here}/same"]
        assert (seen[f"{here}/same"] or "").startswith("Basic ")
        with transport.get(f"{base}/away", "application/json") as answer:
            assert answer.read() == b"[]"
        assert f"{there}/landed" in seen
        assert seen[f"{there}/landed"] is None, "the password went to another origin"
        token = Transport(parse_address(base, config={}), Credentials(token="t0k", source="test"), 5, 5)
        with token.get(f"{base}/bearer", "application/json") as answer:
            assert answer.read() == b"[]"
        assert seen[f"{here}/bearer"] == "Bearer t0k"
    finally:
        archive.shutdown()
        other.shutdown()


def test_transport_failures_sort_into_what_a_user_can_act_on() -> None:
    """The exceptions ``urllib`` raises (wrapped in URLError while connecting, bare while reading) map to
    the kinds the one-line messages are made from."""
    import errno
    import http.client
    import socket
    import ssl
    import urllib.error

    from tui_dicom.core.archive.transport import failure_kind

    refused = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    assert failure_kind(refused) == ("refused", "")
    assert failure_kind(urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))) == (
        "resolve",
        "",
    )
    assert failure_kind(urllib.error.URLError(TimeoutError())) == ("connect-timeout", "")
    assert failure_kind(TimeoutError()) == ("timeout", "")
    assert failure_kind(urllib.error.URLError(OSError(errno.EHOSTUNREACH, "No route to host"))) == (
        "unreachable",
        "",
    )
    assert failure_kind(http.client.IncompleteRead(b"")) == ("lost", "")
    assert failure_kind(ConnectionResetError()) == ("lost", "")
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "self-signed certificate"
    assert failure_kind(urllib.error.URLError(verify)) == ("tls", "self-signed certificate")
    assert failure_kind(ValueError("x")) == ("", "")


def test_read_timeout_applies_once_connected() -> None:
    """The transport's connections take the connect timeout from the constructor and set the read
    timeout on the socket once connected: a server that accepts and then says nothing is given up on
    after the read timeout, not after the (longer) connect timeout."""
    import socket
    import threading
    import time

    from tui_dicom.core.archive.transport import _HTTPConnection

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    release = threading.Event()

    def silent() -> None:
        client, _ = server.accept()
        release.wait(10)
        client.close()

    threading.Thread(target=silent, daemon=True).start()
    conn = _HTTPConnection("127.0.0.1", port, timeout=30, read_timeout=0.5)
    try:
        conn.request("GET", "/")
        start = time.perf_counter()
        with pytest.raises(TimeoutError):
            conn.getresponse()
        assert time.perf_counter() - start < 10
    finally:
        release.set()
        conn.close()
        server.close()
