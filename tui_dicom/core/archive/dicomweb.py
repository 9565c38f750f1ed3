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
as stored, no transcoding — and read the multipart stream part by part (dicomweb-client's decoder), so
each file is written and shown while the rest of the series is still on the wire. Files are the parts'
bytes, unchanged.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from collections.abc import Iterator
from typing import Any

from tui_dicom.core.archive.address import ArchiveAddress, Credentials
from tui_dicom.core.archive.diskcache import write_file
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
    session.verify = address.ca_bundle or address.verify_tls
    return session


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


def _part_uids(part: bytes | bytearray) -> tuple[str, str]:
    """(SOP Instance UID, Series Instance UID) of one multipart part (a DICOM file).

    The project's fast header reader first (pydicom's ``dcmread`` was 40% of a series' retrieve time),
    pydicom when it cannot.
    """
    from tui_dicom.core.hierarchy.header import Unsupported, read_header_from

    try:
        info = read_header_from(io.BytesIO(part), size=len(part))
        return info.sop_instance_uid or info.media_storage_sop_instance_uid, info.series_instance_uid
    except (Unsupported, DicomViewerError, ValueError):
        from pydicom import dcmread

        ds = dcmread(
            io.BytesIO(part), stop_before_pixels=True, specific_tags=["SOPInstanceUID", "SeriesInstanceUID"]
        )
        return str(ds.get("SOPInstanceUID", "") or ""), str(ds.get("SeriesInstanceUID", "") or "")


class DicomWebClient:
    """An :class:`~tui_dicom.core.archive.query.ArchiveClient` over QIDO-RS / WADO-RS."""

    #: WADO-RS retrieves a series without knowing its instances first
    needs_instance_list = False

    def __init__(self, address: ArchiveAddress, creds: Credentials, timeout: float = 30.0) -> None:
        import logging

        from dicomweb_client.api import DICOMwebClient

        lib_log = logging.getLogger("dicomweb_client")  # never to the terminal (see core.logging)
        if not lib_log.handlers:
            lib_log.addHandler(logging.NullHandler())
        lib_log.propagate = False

        self.address = address
        self.display = address.display
        self.creds = creds
        self.timeout = timeout
        self.session = _session(address, creds)
        self.client = DICOMwebClient(
            address.url, session=self.session, timeout=(min(timeout, 15.0), max(timeout, 60.0))
        )
        self.client.set_http_retry_params(retry=False)  # fail in one line, not after minutes of back-off

    # -- errors ---------------------------------------------------------------------------------------

    def _error(self, exc: BaseException, what: str) -> ArchiveError:
        """One line for a failed request (never the password)."""
        import requests

        where = f"{self.address.host}:{self.address.port}"
        if isinstance(exc, requests.exceptions.SSLError):
            reason = str(exc)
            m = re.search(r"certificate verify failed: ([^(\"')]+)", reason)
            detail = m.group(1).strip() if m else "the certificate could not be verified"
            return ConnectionFailed(
                f"TLS verification failed for {self.address.host}: {detail} (set ca_bundle in the config "
                "for a private CA)"
            )
        if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
            code = exc.response.status_code
            if code in (401, 403):
                how = (
                    f"credentials from {self.creds.source} refused"
                    if self.creds
                    else "no password given: set TUI_DICOM_PASSWORD (or TUI_DICOM_TOKEN), ~/.netrc or the config"
                )
                return AuthenticationFailed(f"authentication failed at {self.display} (HTTP {code}): {how}")
            if code == 404:
                return NotFound(f"not found at {self.display} (HTTP 404): {what}")
            return ArchiveError(
                f"{what} failed at {self.display}: HTTP {code} {exc.response.reason or ''}".rstrip()
            )
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return ConnectionFailed(f"no answer from {where} (timed out): host unreachable or filtered")
        if isinstance(exc, requests.exceptions.ConnectionError):
            text = str(exc)
            if "Connection refused" in text:
                return ConnectionFailed(
                    f"connection refused by {where}: nothing listens there (wrong port? archive down?)"
                )
            if (
                "Name or service not known" in text
                or "nodename nor servname" in text
                or "getaddrinfo" in text
            ):
                return ConnectionFailed(f"cannot resolve host {self.address.host!r}")
            if "unreachable" in text.lower():
                return ConnectionFailed(f"host unreachable: {where}")
            return ConnectionFailed(f"connection to {where} lost during {what}")
        if isinstance(exc, requests.exceptions.Timeout):
            return ConnectionFailed(f"{where} stopped answering during {what} (timed out)")
        if isinstance(exc, ArchiveError):
            return exc
        return ArchiveError(f"{what} failed at {self.display}: {exc}")

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line
            raise self._error(exc, what) from None

    # -- queries --------------------------------------------------------------------------------------

    def locate_series(self, series_uid: str) -> str:
        """The Study Instance UID of a series (QIDO-RS ``/series?SeriesInstanceUID=``), "" when unknown."""
        found = self._call(
            "series query",
            self.client.search_for_series,
            fields=["StudyInstanceUID"],
            search_filters={"SeriesInstanceUID": series_uid},
        )
        return "\\".join(sorted({_t(s, "StudyInstanceUID") for s in found} - {""}))

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
        """QIDO-RS ``/studies/{uid}/series``."""
        answer = self._call(
            "series query",
            self.client.search_for_series,
            study_uid,
            fields=list(SERIES_FIELDS),
            search_filters={"SeriesInstanceUID": series_uid} if series_uid else None,
        )
        return [
            SeriesRecord(
                study_instance_uid=study_uid,
                series_instance_uid=_t(s, "SeriesInstanceUID"),
                series_number=_i(s, "SeriesNumber"),
                modality=_t(s, "Modality"),
                series_description=_t(s, "SeriesDescription"),
                body_part=_t(s, "BodyPartExamined"),
                instance_count=_i(s, "NumberOfSeriesRelatedInstances"),
            )
            for s in answer
        ]

    def find_instances(self, study_uid: str, series_uid: str) -> list[InstanceRecord]:
        """QIDO-RS ``/studies/{uid}/series/{uid}/instances``."""
        answer = self._call(
            "instance query",
            self.client.search_for_instances,
            study_uid,
            series_uid,
            fields=list(INSTANCE_FIELDS),
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
        """WADO-RS: the study, series or instance as a multipart stream, each part written as it ends."""
        cancel = cancel or threading.Event()
        url = f"{self.address.url}/studies/{study_uid}"
        if series_uid:
            url += f"/series/{series_uid}"
            if sop_uid:
                url += f"/instances/{sop_uid}"
        if sop_uid and expected:
            expected = [r for r in expected if r.sop_instance_uid == sop_uid]
        series_of = {r.sop_instance_uid: r.series_instance_uid for r in expected or []}
        received: list[str] = []
        response = self._call(
            "retrieve", self.client._http_get, url, headers={"Accept": DICOM_ACCEPT}, stream=True
        )
        error: ArchiveError | None = None
        try:
            parts = self.client._decode_multipart_message(response, stream=True)
            for part in parts:
                if cancel.is_set():
                    break
                sop, part_series = _part_uids(part)
                series = series_of.get(sop) or part_series or series_uid
                if not sop or (expected is not None and series_of and sop not in series_of):
                    continue  # not what was asked for: never written
                path = destination.path_for(study_uid, series, sop)
                nbytes = write_file(path, (bytes(part),))
                destination.stored(path, nbytes)
                received.append(sop)
                yield Retrieved(study_uid, series, sop, path, nbytes)
        except ArchiveError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - the stream broke: keep what arrived, list the rest
            error = self._error(exc, "retrieve")
        finally:
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
        if failed:
            raise RetrieveIncomplete("the archive sent fewer instances than it listed", received, failed)

    def close(self) -> None:
        """Close the HTTP session's connections."""
        with contextlib.suppress(Exception):
            self.session.close()
