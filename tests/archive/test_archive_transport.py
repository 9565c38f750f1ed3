"""``tui-dicom get`` over DICOMweb against small misbehaving servers made at test time (127.0.0.1 only):
secrets that must not be printed, proxies that must be named and must not leak, answers cut short.

Each server is a threaded ``http.server`` on a free port; ``get`` runs in this process (``get.run``), so
a test takes milliseconds. The environment's proxy variables are cleared first: a test names its own.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydicom
import pytest
from pydicom.data import get_testdata_file

from tui_dicom.cli import build_parser
from tui_dicom.commands import get as get_command

STUDY, SERIES = "1.2.3.4", "1.2.3.4.5"
BOUNDARY = b"tui-dicom-transport-test"
MULTIPART = f'multipart/related; type="application/dicom"; boundary={BOUNDARY.decode()}'


def _testdata(name: str) -> bytes:
    found = get_testdata_file(name, download=False)
    if not found:
        pytest.skip(f"pydicom's test file {name} is missing")
    return Path(str(found)).read_bytes()


@pytest.fixture(scope="module")
def ct() -> bytes:
    return _testdata("CT_small.dcm")


@pytest.fixture(scope="module")
def mr() -> bytes:
    return _testdata("MR_small.dcm")


def sop_of(data: bytes) -> str:
    from io import BytesIO

    return str(pydicom.dcmread(BytesIO(data), stop_before_pixels=True).SOPInstanceUID)


def multipart(parts: list[bytes]) -> bytes:
    body = b""
    for part in parts:
        body += b"--" + BOUNDARY + b"\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n"
    return body + b"--" + BOUNDARY + b"--\r\n"


def qido(count: int) -> bytes:
    return json.dumps([{
        "0020000D": {"vr": "UI", "Value": [STUDY]},
        "0020000E": {"vr": "UI", "Value": [SERIES]},
        "00201209": {"vr": "IS", "Value": [count]},
    }]).encode()  # fmt: skip


#: what a fake server does with one request: (handler) -> None
Behaviour = Callable[[BaseHTTPRequestHandler], None]


class Server:
    """A threaded HTTP server on 127.0.0.1 whose every request is logged and answered by ``behaviour``."""

    def __init__(self, behaviour: Behaviour, connect: Behaviour | None = None) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        log = self.requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                log.append(("GET", self.path, dict(self.headers)))
                behaviour(self)

            def do_CONNECT(self) -> None:  # noqa: N802 - http.server's name
                log.append(("CONNECT", self.path, dict(self.headers)))
                (connect or behaviour)(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def headers_seen(self) -> list[dict[str, str]]:
        return [h for _, _, h in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(behaviour: Behaviour, connect: Behaviour | None = None) -> Server:
        made.append(Server(behaviour, connect))
        return made[-1]

    yield make
    for server in made:
        server.close()


def send(h: BaseHTTPRequestHandler, code: int, body: bytes = b"", kind: str = "", **headers: str) -> None:
    h.send_response(code)
    if kind:
        h.send_header("Content-Type", kind)
    for key, value in headers.items():
        h.send_header(key.replace("_", "-"), value)
    if "Content_Length" not in headers:
        h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def archive(retrieve: Behaviour, count: int = 2) -> Behaviour:
    """A DICOMweb archive at ``/dicom-web``: the series query answers ``count`` instances, the series
    retrieve is ``retrieve``, the instance query lists nothing, anything else is a 404."""

    def behaviour(h: BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/dicom-web/series?"):
            send(h, 200, qido(count), "application/dicom+json")
        elif h.path.startswith(f"/dicom-web/studies/{STUDY}/series/{SERIES}/instances"):
            send(h, 200, b"[]", "application/dicom+json")
        elif h.path.startswith(f"/dicom-web/studies/{STUDY}/series/{SERIES}"):
            retrieve(h)
        else:
            send(h, 404)

    return behaviour


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No proxy, no credentials, no config, no netrc from the machine running the tests."""
    import os

    for key in list(os.environ):
        if key.lower().endswith("_proxy") or key.startswith("TUI_DICOM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    return monkeypatch


def run_get(url: str, out: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    """``tui-dicom get URL --series SERIES -o OUT -q`` in this process: (status, stdout, stderr)."""
    args = build_parser("get").parse_args([url, "--series", SERIES, "-o", str(out), "-q", *extra])
    status = get_command.run(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ------------------------------------------------------------------------------------------ secrets


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TUI_DICOM_TOKEN", "tok-SECRET\r"),
        ("TUI_DICOM_TOKEN", "tok-SECRET\n"),
        ("TUI_DICOM_TOKEN", "tok\x1b]0;SECRET\x07"),
        ("TUI_DICOM_PASSWORD", "pw-SECRET\r\n"),
    ],
)
def test_a_secret_with_control_characters_is_refused_naming_only_its_source(
    servers: Callable[..., Server],
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ct: bytes,
    variable: str,
    value: str,
) -> None:
    server = servers(archive(lambda h: send(h, 200, multipart([ct]), MULTIPART)))
    env.setenv(variable, value)
    status, out, err = run_get(server.url + "/dicom-web", tmp_path / "got", capsys)
    assert status == 1
    assert err.count("\n") == 1, err
    assert variable in err and "SECRET" not in err + out, err
    assert server.requests == [], "refused before anything is sent"


def test_an_invalid_header_never_shows_its_value(
    servers: Callable[..., Server], env: pytest.MonkeyPatch, tmp_path: Path, ct: bytes
) -> None:
    """Below the up-front check: http.client's and requests' "Invalid header value" errors hold the whole
    header; the message made from them must not."""
    from tui_dicom.core.archive.address import Credentials, parse_address
    from tui_dicom.core.archive.dicomweb import DicomWebClient
    from tui_dicom.core.archive.errors import ArchiveError
    from tui_dicom.core.archive.query import QueryFilters

    server = servers(archive(lambda h: send(h, 200, multipart([ct]), MULTIPART)))
    address = parse_address(server.url + "/dicom-web", config={})
    client = DicomWebClient(address, Credentials(token="tok-SECRET\r", source="TUI_DICOM_TOKEN"))
    with pytest.raises(ArchiveError) as err:  # the standard library's transport
        client.locate_series(SERIES)
    assert "SECRET" not in str(err.value) and "header" in str(err.value)
    with pytest.raises(ArchiveError) as err:  # requests, as the viewer and ls send their queries
        client.find_studies(QueryFilters())
    assert "SECRET" not in str(err.value) and "header" in str(err.value)
    client.close()
    assert server.requests == []


# ------------------------------------------------------------------------------------------ proxies


def forward(h: BaseHTTPRequestHandler) -> None:
    """A forwarding HTTP proxy's answer to ``GET http://host:port/path`` (the upstream answer, read whole)."""
    target = urlsplit(h.path)
    upstream = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=10)
    skip = {"proxy-connection", "connection", "host", "keep-alive", "proxy-authorization"}
    upstream.request(
        "GET",
        target.path + (f"?{target.query}" if target.query else ""),
        headers={k: v for k, v in h.headers.items() if k.lower() not in skip},
    )
    answer = upstream.getresponse()
    body = answer.read()
    upstream.close()
    kind = answer.getheader("Content-Type", "")
    extra = {k.replace("-", "_"): v for k, v in answer.getheaders() if k.lower() == "location"}
    send(h, answer.status, body, kind, **extra)


def tunnel(h: BaseHTTPRequestHandler) -> None:
    """A proxy's answer to ``CONNECT host:port``: bytes copied both ways until either side closes."""
    host, port = h.path.rsplit(":", 1)
    upstream = socket.create_connection((host, int(port)), timeout=10)
    h.send_response(200)
    h.end_headers()
    a, b = h.connection, upstream
    while True:
        ready, _, _ = select.select([a, b], [], [], 10)
        if not ready:
            break
        for s in ready:
            data = s.recv(65536)
            if not data:
                upstream.close()
                return
            (b if s is a else a).sendall(data)


def lower_keys(headers: dict[str, str]) -> set[str]:
    return {k.lower() for k in headers}


def test_the_proxy_password_is_not_sent_to_a_redirect_target(
    servers: Callable[..., Server],
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """urllib's ProxyHandler stores Proxy-Authorization as an ordinary header, which a redirect copies: a
    redirect target reached without the proxy (``no_proxy``) would receive the proxy's password."""
    sink = servers(lambda h: send(h, 404))
    target = servers(archive(lambda h: send(h, 302, Location=f"{sink.url}/elsewhere")))
    proxy = servers(forward)
    env.setenv("http_proxy", f"http://alice:proxy-SECRET@127.0.0.1:{proxy.port}")
    env.setenv("no_proxy", f"127.0.0.1:{sink.port}")
    status, _out, err = run_get(target.url + "/dicom-web", tmp_path / "got", capsys)
    assert status == 1
    assert any("proxy-authorization" in lower_keys(h) for h in proxy.headers_seen()), "went through it"
    assert sink.requests, "the redirect was followed, directly"
    assert all("proxy-authorization" not in lower_keys(h) for h in sink.headers_seen()), sink.requests
    assert "SECRET" not in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_https_proxy_is_refused_rather_than_spoken_to_in_clear_text(
    servers: Callable[..., Server],
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """urllib sends the CONNECT line and the proxy's password to an https:// proxy unencrypted."""
    proxy = servers(lambda h: send(h, 502))
    env.setenv("https_proxy", f"https://alice:proxy-SECRET@127.0.0.1:{proxy.port}")
    status, _out, err = run_get(f"https://127.0.0.1:{free_port()}/dicom-web", tmp_path / "got", capsys)
    assert status == 1 and err.count("\n") == 1, err
    assert "https:// proxy" in err and "only http:// proxies" in err
    assert "SECRET" not in err
    assert proxy.requests == [], "nothing sent to it, least of all in clear text"


def test_cidr_ranges_in_no_proxy_are_honoured(
    servers: Callable[..., Server],
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ct: bytes,
    mr: bytes,
) -> None:
    target = servers(archive(lambda h: send(h, 200, multipart([ct, mr]), MULTIPART)))
    proxy = servers(forward)
    env.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
    env.setenv("no_proxy", "10.0.0.0/8, 127.0.0.0/8")
    status, out, err = run_get(target.url + "/dicom-web", tmp_path / "got", capsys)
    assert status == 0, err
    assert proxy.requests == [], "127.0.0.1 is in 127.0.0.0/8: no proxy"
    assert sorted(p.read_bytes() for p in files(tmp_path / "got")) == sorted([ct, mr])

    from tui_dicom.core.archive.transport import proxy_for

    assert proxy_for(target.url) == ""
    env.setenv("no_proxy", "10.0.0.0/8,::1/128,example.org")
    assert proxy_for(target.url) == f"127.0.0.1:{proxy.port}"


def proxy_auth_required(h: BaseHTTPRequestHandler) -> None:
    send(h, 407, Proxy_Authenticate='Basic realm="corp"')


@pytest.mark.parametrize(
    ("proxy_kind", "expected"),
    [
        ("down", "connection refused by the proxy 127.0.0.1:"),
        ("unknown", "cannot resolve the proxy's host 'proxy.invalid'"),
        ("407", "proxy authentication failed (HTTP 407) at the proxy 127.0.0.1:"),
        ("407-tunnel", "proxy authentication failed (HTTP 407) at the proxy 127.0.0.1:"),
    ],
)
def test_proxy_failures_name_the_proxy_not_the_archive(
    servers: Callable[..., Server],
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    proxy_kind: str,
    expected: str,
) -> None:
    scheme = "https" if proxy_kind == "407-tunnel" else "http"
    archive_port = free_port()
    if proxy_kind == "down":
        proxy_url = f"http://127.0.0.1:{free_port()}"
    elif proxy_kind == "unknown":
        proxy_url = "http://proxy.invalid:3128"
    else:
        proxy_url = servers(proxy_auth_required).url
    env.setenv(f"{scheme}_proxy", proxy_url)
    status, _out, err = run_get(f"{scheme}://127.0.0.1:{archive_port}/dicom-web", tmp_path / "got", capsys)
    assert status == 1 and err.count("\n") == 1, err
    assert expected in err, err
    assert str(archive_port) not in err.split(":", 1)[1].replace(expected, ""), "the archive is not blamed"


def test_a_proxy_407_on_the_requests_path_names_the_proxy(
    servers: Callable[..., Server], env: pytest.MonkeyPatch
) -> None:
    """The viewer's and ``ls``'s study queries go through requests: the same line."""
    from tui_dicom.core.archive.address import Credentials, parse_address
    from tui_dicom.core.archive.dicomweb import DicomWebClient
    from tui_dicom.core.archive.errors import ArchiveError
    from tui_dicom.core.archive.query import QueryFilters

    proxy = servers(proxy_auth_required)
    env.setenv("https_proxy", proxy.url)
    client = DicomWebClient(
        parse_address(f"https://127.0.0.1:{free_port()}/dicom-web", config={}), Credentials()
    )
    with pytest.raises(
        ArchiveError, match=r"proxy authentication failed \(HTTP 407\) at the proxy 127\.0\.0\.1"
    ):
        client.find_studies(QueryFilters())
    client.close()


# ------------------------------------------------------------------------------------------ answers cut short


def cut_answer(body: bytes, length: int, kind: str) -> Behaviour:
    """Promise ``length`` bytes, send ``body`` (fewer), close the connection."""

    def behaviour(h: BaseHTTPRequestHandler) -> None:
        send(h, 200, b"", kind, Content_Length=str(length))
        h.wfile.write(body)
        h.wfile.flush()
        h.close_connection = True

    return behaviour


def test_a_single_part_answer_cut_short_is_never_kept(
    servers: Callable[..., Server],
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ct: bytes,
) -> None:
    """An answer of one bare instance (``application/dicom``) whose Content-Length is not reached."""
    from tui_dicom.core.archive.address import Credentials, parse_address
    from tui_dicom.core.archive.dicomweb import DicomWebClient
    from tui_dicom.core.archive.diskcache import DiskCache
    from tui_dicom.core.archive.errors import ArchiveError

    server = servers(archive(cut_answer(ct[: len(ct) // 2], len(ct), "application/dicom"), count=1))
    out = tmp_path / "got"
    status, _out, err = run_get(server.url + "/dicom-web", out, capsys)
    assert status == 1 and err.count("\n") == 1, err
    assert "ended inside an instance" in err
    assert files(out) == [], "nothing cut short is kept, not even a temporary file"

    # the viewer retrieves into its cache the same way
    client = DicomWebClient(parse_address(server.url + "/dicom-web", config={}), Credentials())
    cache = DiskCache("test", 1 << 30, root=tmp_path / "cache")
    with pytest.raises(ArchiveError, match="ended inside an instance"):
        list(client.retrieve(STUDY, SERIES, cache))
    client.close()
    assert files(tmp_path / "cache") == [] and cache.nbytes == 0


@pytest.mark.parametrize("after", [b"", b"\r\n"])
def test_an_answer_cut_right_after_a_delimiter_keeps_the_part_before_it(
    servers: Callable[..., Server],
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ct: bytes,
    mr: bytes,
    after: bytes,
) -> None:
    full = multipart([ct, mr])
    first = (
        b"--" + BOUNDARY + b"\r\nContent-Type: application/dicom\r\n\r\n" + ct + b"\r\n--" + BOUNDARY + after
    )
    server = servers(archive(cut_answer(first, len(full), MULTIPART)))
    out = tmp_path / "got"
    status, _out, err = run_get(server.url + "/dicom-web", out, capsys)
    assert status == 1, err
    assert [p.read_bytes() for p in files(out)] == [ct], "the whole first instance is kept, alone"
    assert "lost during retrieve" in err and "1 instances kept" in err, err


@pytest.mark.parametrize("how", ["204", "empty-200"])
def test_an_empty_answer_says_no_instances_came(
    servers: Callable[..., Server],
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    def empty(h: BaseHTTPRequestHandler) -> None:
        if how == "204":
            h.send_response(204)
            h.end_headers()
        else:
            send(h, 200)  # no Content-Type, no body

    server = servers(archive(empty))
    out = tmp_path / "got"
    status, _out, err = run_get(server.url + "/dicom-web", out, capsys)
    assert status == 1 and err.count("\n") == 1, err
    assert "the archive sent no instances" in err
    assert "DICOM" not in err, "not pydicom's complaint about an empty file"
    assert not out.exists()


# ------------------------------------------------------------------------------------------ counting


def test_an_instance_sent_twice_is_counted_once(
    servers: Callable[..., Server],
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ct: bytes,
    mr: bytes,
) -> None:
    server = servers(archive(lambda h: send(h, 200, multipart([ct, ct, mr]), MULTIPART)))
    out = tmp_path / "got"
    status, stdout, err = run_get(server.url + "/dicom-web", out, capsys)
    assert status == 0, err
    assert sorted(p.read_bytes() for p in files(out)) == sorted([ct, mr])
    megabytes = (len(ct) + len(mr)) / 1e6
    assert stdout.startswith(f"2 instances, {megabytes:.1f} MB written to "), stdout
    assert "sent 1 of them more than once" in stdout

    from tui_dicom.core.archive.errors import RetrieveIncomplete

    assert "1 instances kept" in str(RetrieveIncomplete("cut", ["1.2", "1.2"], []))


def test_a_uid_with_a_final_newline_is_not_used_as_a_file_name() -> None:
    from tui_dicom.core.archive.diskcache import uid_name

    assert uid_name("1.2.3") == "1.2.3"
    assert uid_name("1.2.3\n").startswith("x") and "\n" not in uid_name("1.2.3\n")


def test_a_redirect_loop_is_one_plain_line(
    servers: Callable[..., Server],
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = servers(lambda h: send(h, 302, Location=h.path))
    status, _out, err = run_get(server.url + "/dicom-web", tmp_path / "got", capsys)
    assert status == 1 and err.count("\n") == 1, err
    assert "too many redirects" in err


# ------------------------------------------------------------------------------------------ TLS


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """(key, certificate) of a self-signed certificate for 127.0.0.1."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def with_tls(server: Server, self_signed: tuple[Path, Path]) -> None:
    """Make ``server`` speak HTTPS with the self-signed certificate."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(self_signed[1], self_signed[0])
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    server.url = server.url.replace("http://", "https://")


def test_https_through_a_proxy_tunnel_keeps_the_proxy_password_for_the_proxy(
    servers: Callable[..., Server],
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    self_signed: tuple[Path, Path],
    ct: bytes,
    mr: bytes,
) -> None:
    """The CONNECT tunnel still works through the proxy handler: the proxy gets its password on the
    CONNECT, the archive (behind TLS) never sees it, and the instances arrive whole."""
    target = servers(archive(lambda h: send(h, 200, multipart([ct, mr]), MULTIPART)))
    with_tls(target, self_signed)
    proxy = servers(lambda h: send(h, 405), connect=tunnel)
    env.setenv("SSL_CERT_FILE", str(self_signed[1]))
    env.setenv("https_proxy", f"http://alice:proxy-SECRET@127.0.0.1:{proxy.port}")
    out = tmp_path / "got"
    status, _out, err = run_get(target.url + "/dicom-web", out, capsys)
    assert status == 0, err
    assert sorted(p.read_bytes() for p in files(out)) == sorted([ct, mr])
    assert [m for m, _, _ in proxy.requests] == ["CONNECT", "CONNECT"], proxy.requests
    assert all("proxy-authorization" in lower_keys(h) for h in proxy.headers_seen())
    assert target.requests and all("proxy-authorization" not in lower_keys(h) for h in target.headers_seen())


def test_the_requests_path_trusts_ssl_cert_file_like_the_transport(
    servers: Callable[..., Server], env: pytest.MonkeyPatch, self_signed: tuple[Path, Path]
) -> None:
    """``ls`` and the viewer query through requests, which reads certifi's bundle unless told otherwise:
    a private CA named by ``SSL_CERT_FILE`` must be trusted there too, as ``get`` trusts it."""
    from tui_dicom.core.archive.address import Credentials, parse_address
    from tui_dicom.core.archive.dicomweb import DicomWebClient
    from tui_dicom.core.archive.errors import ConnectionFailed
    from tui_dicom.core.archive.query import QueryFilters

    key, cert = self_signed
    server = servers(lambda h: send(h, 200, b"[]", "application/dicom+json"))
    with_tls(server, self_signed)
    address = parse_address(f"{server.url}/dicom-web", config={})
    for variable in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        env.delenv(variable, raising=False)

    client = DicomWebClient(address, Credentials())
    with pytest.raises(ConnectionFailed, match="TLS verification failed"):
        client.find_studies(QueryFilters())  # verification is on: the fake's certificate is not trusted
    client.close()

    env.setenv("SSL_CERT_FILE", str(self_signed[1]))
    client = DicomWebClient(address, Credentials())
    assert client.find_studies(QueryFilters()).studies == []  # the study query (requests)
    assert client.find_series("1.2.3") == []  # the series query, on the same session
    client.close()


def test_an_instance_listing_without_uids_lists_no_blank_missing_instance(
    servers: Callable[..., Server],
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ct: bytes,
) -> None:
    """The archive lists 2 instances, sends 1, and its instance query answers items without a SOP
    Instance UID: the retrieve is incomplete (not a success), and no blank "not retrieved:" line appears."""

    def behaviour(h: BaseHTTPRequestHandler) -> None:
        if "/instances" in h.path:
            send(h, 200, qido(2), "application/dicom+json")  # series attributes only: no (0008,0018)
        else:
            archive(lambda h: send(h, 200, multipart([ct]), MULTIPART))(h)

    server = servers(behaviour)
    status, _out, err = run_get(server.url + "/dicom-web", tmp_path / "got", capsys)
    assert status == 1, err
    assert "the archive sent 1 of the 2 instances it counted" in err, err
    assert "not retrieved:" not in err, err
