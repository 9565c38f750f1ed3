"""DICOMweb archives through dicomweb-client: QIDO-RS to query, WADO-RS to retrieve.

Query strings: dicomweb-client percent-encodes filter values (``*`` → ``%2A``, ``^`` → ``%5E``, ``,`` →
``%2C``, space → ``+``), which is correct, but some servers (Orthanc 1.10) do not decode query strings
and then silently match nothing for a wildcard, a name with ``^`` or a UID list. :class:`QueryAdapter`
rewrites each filter value before it is sent: characters that are legal in a query string (``*``,
``,``, ``-``, ``?``) go raw; those that are not (``^``, space, non-ASCII) become the single-character
wildcard ``?`` (one byte of UTF-8 each, so a multi-byte character becomes ``*``). The server then
answers a superset at worst, and :func:`~tui_dicom.core.archive.query.study_matches` checks every
answer against the user's own pattern, so the result is exact on both kinds of server.

Retrieves ask for ``multipart/related; type="application/dicom"; transfer-syntax=*`` — each instance
as stored, no transcoding — in one request per series or study, read as a stream: python-multipart's
streaming parser splits it, and each part's bytes go straight to a temporary file in the destination
while they arrive (memory stays flat in series length), which is renamed to ``SERIES/SOP.dcm`` once
complete. The two UIDs that name it are read from the part's first bytes, kept in memory as they pass
(the program's element reader, :mod:`tui_dicom.core.dicom.elements`), so the file is not read again;
the fast header reader, then pydicom, read the file only when those bytes do not suffice. Files are
the parts' bytes, unchanged. Nothing cut short is kept: a part is complete only when its closing
delimiter arrived (a stream cut right after a delimiter keeps the part before it), and a single-part
answer only when its Content-Length was reached; an empty answer (204) says that no instance came.

What costs what (a 120-instance series from a local Orthanc, which ``curl`` fetches in ~0.2 s):
``import dicomweb_client`` imports pydicom, numpy and every pixel decoder plugin (~0.5 s), and
``import requests`` alone ~0.17 s. So the requests ``tui-dicom get`` makes — the series-level QIDO
query that finds a series' study and count, the instance-level one that names what did not arrive,
and the WADO-RS retrieve — go through :mod:`~tui_dicom.core.archive.transport` (the standard
library's ``urllib.request``: TLS verified, proxies from the environment, the same credentials), and
dicomweb-client with its ``requests`` session is made only for the study-level query (the viewer and
``ls``, which import pydicom anyway); once that session exists, the series and instance queries go
through it too, reusing its pooled connection.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from tui_dicom.core.archive.address import ArchiveAddress, Credentials
from tui_dicom.core.archive.diskcache import StagedFile
from tui_dicom.core.archive.errors import (
    ArchiveError,
    AuthenticationFailed,
    Cancelled,
    ConnectionFailed,
    NotFound,
    RetrieveIncomplete,
)
from tui_dicom.core.archive.query import (
    Destination,
    InstanceRecord,
    QueryFilters,
    Retrieved,
    SeriesRecord,
    StudyPage,
    StudyRecord,
    study_matches,
    to_int,
)
from tui_dicom.core.archive.transport import Transport, failure_kind, proxy_for
from tui_dicom.core.errors import DicomViewerError

STUDY_FIELDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "AccessionNumber",
    "StudyID",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SERIES_FIELDS = (
    "SeriesInstanceUID",
    "SeriesNumber",
    "Modality",
    "SeriesDescription",
    "BodyPartExamined",
    "NumberOfSeriesRelatedInstances",
)
#: no Rows/Columns: an archive may have to open every file to answer them (Orthanc does)
INSTANCE_FIELDS = ("SOPInstanceUID", "SOPClassUID", "InstanceNumber", "NumberOfFrames")
#: the filter parameters the adapter rewrites (includefield, limit, offset are left alone)
FILTER_KEYS = frozenset(STUDY_FIELDS + SERIES_FIELDS + INSTANCE_FIELDS)
DICOM_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
JSON_ACCEPT = "application/dicom+json"
#: the most bytes read from the socket at once while streaming a retrieve (one ``recv``: a slow
#: archive's bytes are handed on as they come, a fast one's in few system calls)
CHUNK = 1024 * 1024
#: the first bytes of each part kept in memory to name it (a CT header is ~2 KB; more is read from
#: the file when a header is longer)
HEAD_BYTES = 64 * 1024

_RAW = {"%2A": "*", "%2C": ",", "%2D": "-", "%3F": "?", "%5E": "?", "+": "?", "%20": "?"}
_ESCAPE_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+|\+")


def loosen_query_value(value: str) -> str:
    """One percent-encoded filter value → what a server that does not decode still matches (see above)."""

    def repl(m: re.Match[str]) -> str:
        run = m.group()
        if run == "+":
            return "?"
        out = []
        codes = [run[i : i + 3].upper() for i in range(0, len(run), 3)]
        i = 0
        while i < len(codes):
            code = codes[i]
            byte = int(code[1:], 16)
            if code in _RAW:
                out.append(_RAW[code])
            elif byte >= 0x80:  # a UTF-8 sequence: one character, any length → '*'
                while i + 1 < len(codes) and 0x80 <= int(codes[i + 1][1:], 16) < 0xC0:
                    i += 1
                out.append("*")
            elif chr(byte) in "&=#%;":
                out.append(code)  # would break the query string itself: stays encoded
            else:
                out.append("?")
            i += 1
        return "".join(out)

    return _ESCAPE_RUN.sub(repl, value)


def loosen_query_string(url: str) -> str:
    """Apply :func:`loosen_query_value` to every filter parameter of ``url``."""
    base, sep, query = url.partition("?")
    if not sep:
        return url
    parts = []
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        if eq and key in FILTER_KEYS:
            value = loosen_query_value(value)
        parts.append(f"{key}{eq}{value}")
    return base + "?" + "&".join(parts)


def _session(address: ArchiveAddress, creds: Credentials) -> Any:
    import requests
    from requests.adapters import HTTPAdapter

    class QueryAdapter(HTTPAdapter):
        """Rewrites QIDO filter values just before sending (after requests has quoted the URL)."""

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            if request.method == "GET" and request.url and "?" in request.url:
                request.url = loosen_query_string(request.url)
            return super().send(request, *args, **kwargs)

    class Session(requests.Session):
        """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's own ``verify`` (a CA
        bundle from the config would be ignored); here the archive's setting wins."""

        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> Any:
            settings = super().merge_environment_settings(*args, **kwargs)
            settings["verify"] = self.verify
            return settings

    session = Session()
    adapter = QueryAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = True  # proxies from the environment; .netrc is handled by credentials()
    if creds.token:
        session.headers["Authorization"] = f"Bearer {creds.token}"
    elif creds.password:
        session.auth = (creds.user, creds.password)
    session.verify = _requests_verify(address)
    return session


def _requests_verify(address: ArchiveAddress) -> bool | str:
    """``requests``' ``verify`` for ``address``, trusting what the transport's TLS context trusts.

    ``requests`` verifies against certifi's bundle and ignores ``SSL_CERT_FILE``/``SSL_CERT_DIR``, which
    OpenSSL (hence the transport, and ``curl``) honours: a private CA named there would be trusted by
    ``get`` and refused by ``ls`` and the viewer. The archive's ``ca_bundle`` still comes first, and
    ``verify_tls = false`` still turns verification off.
    """
    import os

    if address.ca_bundle:
        return address.ca_bundle
    if not address.verify_tls:
        return False
    cert_file, cert_dir = os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", "")
    if cert_file and os.path.isfile(cert_file):
        return cert_file
    if cert_dir and os.path.isdir(cert_dir):
        return cert_dir
    return True


def _value(item: dict[str, Any], keyword_tag: str) -> Any:
    element = item.get(keyword_tag)
    if not isinstance(element, dict):
        return None
    values = element.get("Value")
    if not values:
        return None
    return values


def _text(item: dict[str, Any], tag: str) -> str:
    values = _value(item, tag)
    if not values:
        return ""
    first = values[0]
    if isinstance(first, dict):  # PN: {"Alphabetic": ...}
        return str(first.get("Alphabetic", "") or first.get("Ideographic", "") or "")
    return "\\".join(str(v) for v in values)


_TAGS = {
    "PatientName": "00100010",
    "PatientID": "00100020",
    "PatientBirthDate": "00100030",
    "PatientSex": "00100040",
    "StudyInstanceUID": "0020000D",
    "StudyDate": "00080020",
    "StudyTime": "00080030",
    "StudyDescription": "00081030",
    "AccessionNumber": "00080050",
    "StudyID": "00200010",
    "ModalitiesInStudy": "00080061",
    "NumberOfStudyRelatedSeries": "00201206",
    "NumberOfStudyRelatedInstances": "00201208",
    "SeriesInstanceUID": "0020000E",
    "SeriesNumber": "00200011",
    "Modality": "00080060",
    "SeriesDescription": "0008103E",
    "BodyPartExamined": "00180015",
    "NumberOfSeriesRelatedInstances": "00201209",
    "SOPInstanceUID": "00080018",
    "SOPClassUID": "00080016",
    "InstanceNumber": "00200013",
    "NumberOfFrames": "00280008",
    "Rows": "00280010",
    "Columns": "00280011",
}


def _t(item: dict[str, Any], keyword: str) -> str:
    return _text(item, _TAGS[keyword])


def _i(item: dict[str, Any], keyword: str) -> int | None:
    values = _value(item, _TAGS[keyword])
    return to_int(values[0]) if values else None


def _head_uids(head: bytes, complete: bool) -> tuple[str, str] | None:
    """(SOP Instance UID, Series Instance UID) from the first bytes of a part, or None when the fast
    walk cannot tell (no DICM file meta, an encoding it does not handle, or ``head`` too short).

    Walks the file meta and the dataset up to (0020,000E) — both UIDs precede it in a valid file,
    whose elements are in tag order — with the program's element reader's unpackers, jumping over
    sequences with its :func:`~tui_dicom.core.dicom.elements.skip_sequence` (one loop, no call per
    element: this runs once per received instance).
    """
    from tui_dicom.core.dicom.elements import (
        DEFLATED,
        EXPLICIT,
        IMPLICIT,
        KNOWN_VRS,
        LONG_VRS,
        U32,
        UNDEFINED,
        ascii_value,
        read_meta,
        skip_sequence,
        syntax_encoding,
    )

    sop = series = ""
    try:
        pos, meta = read_meta(head, complete)
        if not pos or 0x00020010 not in meta:
            return None
        ts = ascii_value(meta[0x00020010][1])
        if ts == DEFLATED:
            return None
        little, explicit = syntax_encoding(ts)
        n = len(head)
        if pos + 6 <= n:  # trust the bytes over the declared syntax, as pydicom does
            vr = head[pos + 4 : pos + 6]
            if (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90) != explicit:
                return None
        header = EXPLICIT[little] if explicit else IMPLICIT[little]
        u32 = U32[little]
        vr = b""
        while pos + 12 <= n:
            if explicit:
                group, elem, vr, length = header(head, pos)
                if vr in LONG_VRS:
                    length = u32(head, pos + 8)[0]
                    vpos = pos + 12
                elif vr in KNOWN_VRS:
                    vpos = pos + 8
                else:
                    return None
            else:
                group, elem, length = header(head, pos)
                vpos = pos + 8
            tag = group << 16 | elem
            if tag > 0x0020000E:
                break
            if length == UNDEFINED:
                pos = skip_sequence(head, vpos, little, explicit, complete, 0, vr)
                continue
            pos = vpos + length
            if tag == 0x00080018 or tag == 0x0020000E:
                if pos > n:
                    return None
                if tag == 0x0020000E:
                    series = ascii_value(head[vpos:pos])
                    break
                sop = ascii_value(head[vpos:pos])
        else:
            if not complete:
                return None  # the head ended before (0020,000E): the file may hold it
    except Exception:  # noqa: BLE001 - NeedMore, Unsupported, struct.error...: the slower readers decide
        return None
    if not sop and 0x00020003 in meta:
        sop = ascii_value(meta[0x00020003][1])
    return sop, series


def _file_uids(path: Path, size: int) -> tuple[str, str]:
    """(SOP Instance UID, Series Instance UID) of a received file (one multipart part).

    The project's fast header reader first (reads the first kilobytes, from the page cache), pydicom only
    when it cannot (pydicom's import alone costs more than a whole series' retrieve).
    """
    from tui_dicom.core.hierarchy.header import Unsupported, read_header_from

    try:
        with open(path, "rb") as fh:
            info = read_header_from(fh, size=size)
        return info.sop_instance_uid or info.media_storage_sop_instance_uid, info.series_instance_uid
    except (Unsupported, DicomViewerError, ValueError):
        from pydicom import dcmread

        ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID", "SeriesInstanceUID"])
        return str(ds.get("SOPInstanceUID", "") or ""), str(ds.get("SeriesInstanceUID", "") or "")


def part_uids(staged: StagedFile, head: bytes) -> tuple[str, str]:
    """(SOP Instance UID, Series Instance UID) of a complete part: from its first bytes ``head`` when
    they suffice, else from the file."""
    found = _head_uids(head, complete=staged.size <= len(head))
    if found is not None:
        return found
    return _file_uids(staged.tmp, staged.size)


class _PartFiles:
    """python-multipart callbacks that write each part's body to its own :class:`StagedFile` as it comes.

    ``finished`` holds the complete parts (with their first :data:`HEAD_BYTES`) until the caller names
    and moves them; ``current`` is the part being received (incomplete while not None).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.current: StagedFile | None = None
        self.head = bytearray()
        self.finished: list[tuple[StagedFile, bytes]] = []

    def begin(self) -> None:
        self.current = StagedFile(self.folder)
        self.head = bytearray()

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.current is not None:
            view = memoryview(data)[start:end]
            if len(self.head) < HEAD_BYTES:
                self.head += view[: HEAD_BYTES - len(self.head)]
            self.current.write(view)

    def end(self) -> None:
        if self.current is not None:
            self.current.close()
            self.finished.append((self.current, bytes(self.head)))
            self.current = None

    def discard(self) -> None:
        for staged in [*(f for f, _ in self.finished), *([self.current] if self.current else [])]:
            staged.discard()
        self.finished, self.current = [], None


def multipart_boundary(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/related`` Content-Type, None for a single-part answer."""
    media, params = parse_options_header(content_type)
    if not media.startswith(b"multipart/"):
        return None
    for key, value in params.items():
        if key.strip().lower() == b"boundary" and value:
            return value
    return None


class DicomWebClient:
    """An :class:`~tui_dicom.core.archive.query.ArchiveClient` over QIDO-RS / WADO-RS."""

    #: WADO-RS retrieves a series without knowing its instances first
    needs_instance_list = False

    def __init__(self, address: ArchiveAddress, creds: Credentials, timeout: float = 30.0) -> None:
        self.address = address
        self.display = address.display
        self.creds = creds
        self.timeout = timeout
        self.timeouts = (min(timeout, 15.0), max(timeout, 60.0))  # (connect, read)
        self.transport = Transport(address, creds, *self.timeouts)
        self._session: Any = None
        self._client: Any = None
        #: series records from :meth:`locate_series`, so ``find_series`` right after it sends nothing
        self._located: dict[str, SeriesRecord] = {}

    @property
    def session(self) -> Any:
        """The ``requests`` session dicomweb-client uses, made (and imported) on first use."""
        if self._session is None:
            self._session = _session(self.address, self.creds)
        return self._session

    @property
    def client(self) -> Any:
        """dicomweb-client's ``DICOMwebClient`` on our session, made (and imported) on first use."""
        if self._client is None:
            import logging

            from dicomweb_client.api import DICOMwebClient

            lib_log = logging.getLogger("dicomweb_client")  # never to the terminal (see core.logging)
            if not lib_log.handlers:
                lib_log.addHandler(logging.NullHandler())
            lib_log.propagate = False
            client = DICOMwebClient(self.address.url, session=self.session, timeout=self.timeouts)
            client.set_http_retry_params(retry=False)  # fail in one line, not after minutes of back-off
            self._client = client
        return self._client

    # -- errors ---------------------------------------------------------------------------------------

    @staticmethod
    def _requests_failure(exc: BaseException) -> tuple[str, str]:
        """:func:`~.transport.failure_kind` for an exception from ``requests`` (dicomweb-client's calls);
        ``("", "")`` when ``requests`` was never imported (then it cannot have raised)."""
        requests = sys.modules.get("requests")
        if requests is None:
            return "", ""
        errors = requests.exceptions
        if isinstance(exc, errors.TooManyRedirects):
            return "redirect", ""
        if isinstance(exc, errors.InvalidHeader):  # its text holds the header's value (the secret)
            return "header", ""
        if isinstance(exc, errors.SSLError):
            m = re.search(r"certificate verify failed: ([^(\"')]+)", str(exc))
            return "tls", m.group(1).strip() if m else "the certificate could not be verified"
        if isinstance(exc, errors.HTTPError) and exc.response is not None:
            return "http", f"{exc.response.status_code} {exc.response.reason or ''}".rstrip()
        if isinstance(exc, errors.ConnectTimeout):
            return "connect-timeout", ""
        if isinstance(exc, errors.ConnectionError):
            text = str(exc)
            m = re.search(r"Tunnel connection failed: (\d{3}[^'\"()]*)", text)
            if m:
                return "proxy-http", m.group(1).strip()
            if "Connection refused" in text:
                return "refused", ""
            if (
                "Name or service not known" in text
                or "nodename nor servname" in text
                or "getaddrinfo" in text
            ):
                return "resolve", ""
            if "unreachable" in text.lower():
                return "unreachable", ""
            return "lost", ""
        if isinstance(exc, errors.Timeout):
            return "timeout", ""
        return "", ""

    def _error(self, exc: BaseException, what: str) -> ArchiveError:
        """One line for a failed request, from either HTTP stack (never the password)."""
        if isinstance(exc, ArchiveError):
            return exc
        kind, detail = self._requests_failure(exc)
        if kind:
            proxy = proxy_for(self.address.url)
        else:
            kind, detail = failure_kind(exc)
            proxy = self.transport.proxy
        where = f"{self.address.host}:{self.address.port}"
        if proxy:
            failed = self._proxy_error(kind, detail, proxy, where, what)
            if failed is not None:
                return failed
        if kind == "tls":
            return ConnectionFailed(
                f"TLS verification failed for {self.address.host}: {detail} (set ca_bundle in the config "
                "for a private CA)"
            )
        if kind == "redirect":
            return ArchiveError(f"{what} failed at {self.display}: too many redirects (a redirect loop?)")
        if kind == "header":
            return ArchiveError(
                f"{what} not sent to {self.display}: a request header holds a character HTTP does not allow "
                "(check the credentials)"
            )
        if kind == "http":
            code = int(detail.split(" ", 1)[0])
            if code in (401, 403):
                how = (
                    f"credentials from {self.creds.source} refused"
                    if self.creds
                    else "no password given: set TUI_DICOM_PASSWORD (or TUI_DICOM_TOKEN), ~/.netrc or the config"
                )
                return AuthenticationFailed(f"authentication failed at {self.display} (HTTP {code}): {how}")
            if code == 404:
                return NotFound(f"not found at {self.display} (HTTP 404): {what}")
            return ArchiveError(f"{what} failed at {self.display}: HTTP {detail}")
        if kind == "connect-timeout":
            return ConnectionFailed(f"no answer from {where} (timed out): host unreachable or filtered")
        if kind == "refused":
            return ConnectionFailed(
                f"connection refused by {where}: nothing listens there (wrong port? archive down?)"
            )
        if kind == "resolve":
            return ConnectionFailed(f"cannot resolve host {self.address.host!r}")
        if kind == "unreachable":
            return ConnectionFailed(f"host unreachable: {where}")
        if kind == "lost":
            return ConnectionFailed(f"connection to {where} lost during {what}")
        if kind == "timeout":
            return ConnectionFailed(f"{where} stopped answering during {what} (timed out)")
        return ArchiveError(f"{what} failed at {self.display}: {exc}")

    @staticmethod
    def _proxy_error(kind: str, detail: str, proxy: str, where: str, what: str) -> ArchiveError | None:
        """The line for a request that went through ``proxy`` and failed there (None: the archive's
        failure, the proxy only carried it). Through a proxy, the archive's host is resolved and
        connected to by the proxy: a refused, unresolved or unreachable connection is the proxy's."""
        if kind == "proxy-http" or (kind == "http" and detail.startswith("407")):
            if detail.startswith("407"):
                return ConnectionFailed(
                    f"proxy authentication failed (HTTP 407) at the proxy {proxy}: give its user and "
                    "password in the proxy URL"
                )
            return ConnectionFailed(f"the proxy {proxy} did not connect to {where} (HTTP {detail})")
        if kind == "refused":
            return ConnectionFailed(f"connection refused by the proxy {proxy}: is the proxy running?")
        if kind == "resolve":
            return ConnectionFailed(f"cannot resolve the proxy's host {proxy.rpartition(':')[0]!r}")
        if kind == "connect-timeout":
            return ConnectionFailed(f"no answer from the proxy {proxy} (timed out)")
        if kind == "unreachable":
            return ConnectionFailed(f"proxy unreachable: {proxy}")
        if kind == "lost":
            return ConnectionFailed(f"connection to {where} through the proxy {proxy} lost during {what}")
        return None

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line
            raise self._error(exc, what) from None

    def _url(self, path: str, params: list[tuple[str, str]] | None = None) -> str:
        """``root + path`` with its query string, filter values loosened (see the module docstring)."""
        url = self.address.url + path
        if params:
            from urllib.parse import urlencode

            url = loosen_query_string(f"{url}?{urlencode(params)}")
        return url

    def _get(self, what: str, path: str, accept: str, params: list[tuple[str, str]] | None = None) -> Any:
        """GET ``root + path`` through the :class:`~.transport.Transport`; returns the response, its body
        unread; an HTTP error status raises (as one line)."""
        return self._call(what, self.transport.get, self._url(path, params), accept)

    def _search(self, what: str, path: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """A QIDO-RS query as DICOM JSON objects (``[]`` for 204 or an empty body).

        Through the ``requests`` session when this process already has one (the viewer and ``ls``, after
        their study query): its pooled connection saves a TCP and TLS handshake per query, which a
        remote archive feels each time a study is expanded. Otherwise (``get``) through the transport.
        """
        if self._session is not None:

            def fetch() -> tuple[int, bytes]:
                answer = self._session.get(
                    self._url(path, params), headers={"Accept": JSON_ACCEPT}, timeout=self.timeouts
                )
                answer.raise_for_status()
                return int(answer.status_code), bytes(answer.content)

            status, body = self._call(what, fetch)
        else:
            response = self._get(what, path, JSON_ACCEPT, params)
            try:
                body = self._call(what, response.read)
            finally:
                response.close()
            status = response.status
        if status == 204 or not body.strip():
            return []
        try:
            answer = json.loads(body)
        except ValueError:
            raise ArchiveError(f"{what} failed at {self.display}: the answer is not JSON") from None
        if not isinstance(answer, list):
            raise ArchiveError(f"{what} failed at {self.display}: the answer is not a list")
        return [item for item in answer if isinstance(item, dict)]

    def _search_series(
        self, study_uid: str, series_uid: str, fields: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        """QIDO-RS series level (``/series`` or ``/studies/{uid}/series``) as DICOM JSON objects."""
        path = f"/studies/{study_uid}/series" if study_uid else "/series"
        params: list[tuple[str, str]] = [("includefield", _TAGS[f]) for f in fields]
        if series_uid:
            params.append(("SeriesInstanceUID", series_uid))
        return self._search("series query", path, params)

    @staticmethod
    def _series_record(study_uid: str, s: dict[str, Any]) -> SeriesRecord:
        return SeriesRecord(
            study_instance_uid=study_uid,
            series_instance_uid=_t(s, "SeriesInstanceUID"),
            series_number=_i(s, "SeriesNumber"),
            modality=_t(s, "Modality"),
            series_description=_t(s, "SeriesDescription"),
            body_part=_t(s, "BodyPartExamined"),
            instance_count=_i(s, "NumberOfSeriesRelatedInstances"),
        )

    # -- queries --------------------------------------------------------------------------------------

    def locate_series(self, series_uid: str) -> str:
        """The Study Instance UID of a series (QIDO-RS ``/series?SeriesInstanceUID=``), "" when unknown.

        The same query asks for the series' attributes, so a :meth:`find_series` for it right after
        (as ``get --series`` does) is answered without another request.
        """
        found = self._search_series("", series_uid, ("StudyInstanceUID", *SERIES_FIELDS))
        studies = {_t(s, "StudyInstanceUID") for s in found} - {""}
        if len(studies) == 1:
            study = next(iter(studies))
            records = [self._series_record(study, s) for s in found]
            if len(records) == 1 and records[0].series_instance_uid == series_uid:
                self._located[series_uid] = records[0]
        return "\\".join(sorted(studies))

    def find_studies(self, filters: QueryFilters, limit: int | None = None, offset: int = 0) -> StudyPage:
        """QIDO-RS ``/studies`` with every filter; asks for ``limit + 1`` to know whether results were cut."""
        study_uid = filters.study_uid
        if filters.series_uid and not study_uid:
            study_uid = self.locate_series(filters.series_uid)
            if not study_uid:
                return StudyPage([], False, offset)
        search: dict[str, str] = {}
        for keyword, value in (
            ("PatientName", filters.patient_name),
            ("PatientID", filters.patient_id),
            ("StudyDate", filters.study_date),
            ("ModalitiesInStudy", filters.modality),
            ("AccessionNumber", filters.accession_number),
            ("StudyDescription", filters.study_description),
            ("StudyInstanceUID", study_uid.replace("\\", ",")),
        ):
            if value:
                search[keyword] = value
        answer = self._call(
            "study query",
            self.client.search_for_studies,
            fields=list(STUDY_FIELDS),
            search_filters=search,
            limit=None if limit is None else limit + 1,
            offset=offset or None,
        )
        records = [self._study(item) for item in answer]
        cut = limit is not None and len(records) > limit
        if limit is not None:
            records = records[:limit]
        exact = QueryFilters(**{**vars(filters), "study_uid": study_uid})
        return StudyPage([r for r in records if study_matches(exact, r)], cut, offset)

    @staticmethod
    def _study(item: dict[str, Any]) -> StudyRecord:
        mods = _value(item, _TAGS["ModalitiesInStudy"]) or []
        return StudyRecord(
            study_instance_uid=_t(item, "StudyInstanceUID"),
            patient_name=_t(item, "PatientName"),
            patient_id=_t(item, "PatientID"),
            birth_date=_t(item, "PatientBirthDate"),
            sex=_t(item, "PatientSex"),
            study_date=_t(item, "StudyDate"),
            study_time=_t(item, "StudyTime"),
            study_description=_t(item, "StudyDescription"),
            accession_number=_t(item, "AccessionNumber"),
            study_id=_t(item, "StudyID"),
            modalities=[str(m) for m in mods],
            series_count=_i(item, "NumberOfStudyRelatedSeries"),
            instance_count=_i(item, "NumberOfStudyRelatedInstances"),
        )

    def find_series(self, study_uid: str, series_uid: str = "") -> list[SeriesRecord]:
        """QIDO-RS ``/studies/{uid}/series`` (one series: what :meth:`locate_series` found, if it did)."""
        located = self._located.pop(series_uid, None) if series_uid else None
        if located is not None and located.study_instance_uid == study_uid:
            return [located]
        return [
            self._series_record(study_uid, s)
            for s in self._search_series(study_uid, series_uid, SERIES_FIELDS)
        ]

    def find_instances(self, study_uid: str, series_uid: str) -> list[InstanceRecord]:
        """QIDO-RS ``/studies/{uid}/series/{uid}/instances``."""
        answer = self._search(
            "instance query",
            f"/studies/{study_uid}/series/{series_uid}/instances",
            [("includefield", _TAGS[f]) for f in INSTANCE_FIELDS],
        )
        return [
            InstanceRecord(
                study_instance_uid=study_uid,
                series_instance_uid=series_uid,
                sop_instance_uid=_t(i, "SOPInstanceUID"),
                sop_class_uid=_t(i, "SOPClassUID"),
                instance_number=_i(i, "InstanceNumber"),
                frames=_i(i, "NumberOfFrames") or 1,
                rows=_i(i, "Rows"),
                columns=_i(i, "Columns"),
            )
            for i in answer
        ]

    # -- retrieve ---------------------------------------------------------------------------------

    def retrieve(
        self,
        study_uid: str,
        series_uid: str,
        destination: Destination,
        expected: list[InstanceRecord] | None = None,
        cancel: threading.Event | None = None,
        sop_uid: str = "",
    ) -> Iterator[Retrieved]:
        """WADO-RS: the study, series or instance as one multipart stream, each part written as it arrives
        and yielded once complete (see the module docstring)."""
        cancel = cancel or threading.Event()
        path = f"/studies/{study_uid}"
        if series_uid:
            path += f"/series/{series_uid}"
            if sop_uid:
                path += f"/instances/{sop_uid}"
        if sop_uid and expected:
            expected = [r for r in expected if r.sop_instance_uid == sop_uid]
        series_of = {r.sop_instance_uid: r.series_instance_uid for r in expected or []}
        received: list[str] = []
        response = self._get("retrieve", path, DICOM_ACCEPT)
        parts = _PartFiles(destination.staging_dir())
        error: ArchiveError | None = None

        def settle() -> Iterator[Retrieved]:
            """Name and move the parts completed so far (one at a time: a failure leaves the rest to
            ``parts.discard``)."""
            while parts.finished:
                item = self._keep(
                    parts.finished.pop(0), study_uid, series_uid, series_of, expected, destination
                )
                if item is not None:
                    received.append(item.sop_instance_uid)
                    yield item

        try:
            boundary = multipart_boundary(response.getheader("Content-Type", ""))
            parser: Any = None
            if boundary is None:  # a single instance sent as is
                parts.begin()
            else:
                parser = MultipartParser(
                    boundary,
                    {"on_part_begin": parts.begin, "on_part_data": parts.data, "on_part_end": parts.end},
                )
            read = response.read1
            # a delimiter ending the stream closes the part before it (python-multipart waits for the
            # bytes after it to call on_part_end): the stream's last bytes tell whether it came
            delimiter = b"\r\n--" + (boundary or b"")
            tail = b""
            while chunk := read(CHUNK):
                if cancel.is_set():
                    break
                if parser is None:
                    parts.data(chunk, 0, len(chunk))
                else:
                    parser.write(chunk)
                    tail = (tail + chunk[-len(delimiter) - 1 :])[-len(delimiter) - 1 :]
                yield from settle()
            else:
                # the connection closed before the Content-Length was read: whatever was being
                # received is cut short (http.client's read1 returns b"" then, it does not raise)
                short = bool(response.length)
                if parser is None:
                    if parts.current is not None and parts.current.size == 0 and not short:
                        parts.discard()  # 204 or an empty body: no instance at all
                    elif not short:
                        parts.end()
                else:
                    parser.finalize()
                    current = parts.current
                    after = (b"", b"\r", b"-")
                    if current is not None and current.size == 0:
                        current.discard()  # a part begun after a delimiter, none of its bytes came
                        parts.current = None
                    elif current is not None and any(tail.endswith(delimiter + a) for a in after):
                        parts.end()  # cut right after a delimiter: the part before it is whole
                yield from settle()
                if parts.current is not None:
                    error = ArchiveError(f"the answer from {self.display} ended inside an instance")
                elif short:
                    error = self._error(ConnectionResetError(), "retrieve")
        except ArchiveError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - the stream broke: keep what arrived, list the rest
            error = self._error(exc, "retrieve")
        finally:
            parts.discard()  # an incomplete part is never kept
            with contextlib.suppress(Exception):
                response.close()  # cancels the transfer when we stop early
        failed = sorted(set(series_of) - set(received))
        if cancel.is_set():
            raise Cancelled(
                f"retrieve cancelled: {len(received)} instances kept, {len(failed)} not retrieved"
            )
        if error is not None:
            if not received and not isinstance(error, ConnectionFailed):
                raise error
            raise RetrieveIncomplete(str(error), received, failed)
        if not received and not failed:
            raise NotFound(f"the archive sent no instances ({self.display}, {path})")
        if failed:
            raise RetrieveIncomplete("the archive sent fewer instances than it listed", received, failed)

    @staticmethod
    def _keep(
        part: tuple[StagedFile, bytes],
        study_uid: str,
        series_uid: str,
        series_of: dict[str, str],
        expected: list[InstanceRecord] | None,
        destination: Destination,
    ) -> Retrieved | None:
        """Name a complete part from its header and move it into place; None when it is not wanted."""
        staged, head = part
        try:
            sop, part_series = part_uids(staged, head)
        except BaseException:
            staged.discard()  # not DICOM: the retrieve stops with what arrived so far
            raise
        series = series_of.get(sop) or part_series or series_uid
        if not sop or (expected is not None and series_of and sop not in series_of):
            staged.discard()  # not what was asked for: never written
            return None
        path = destination.path_for(study_uid, series, sop)
        nbytes = staged.commit(path)
        destination.stored(path, nbytes)
        return Retrieved(study_uid, series, sop, path, nbytes)

    def close(self) -> None:
        """Close the ``requests`` session's connections (the transport keeps none open)."""
        if self._session is not None:
            with contextlib.suppress(Exception):
                self._session.close()
