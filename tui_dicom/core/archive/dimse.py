"""DIMSE archives through pynetdicom: C-FIND to query, C-GET or C-MOVE to retrieve.

C-GET (the default) brings instances back on the association we opened, so it works behind NAT and
through ``ssh -L``; C-MOVE (``--retrieve move``) makes the archive open a new association to a Storage
SCP we run on ``--move-port`` for the duration of the retrieve — many archives offer only that.

Every pynetdicom timeout is set (its ``connection_timeout`` defaults to none: a silent host would hang
the worker). Instances are written as the archive sent them: the dataset bytes of each C-STORE
untouched, behind the file meta information pynetdicom builds from the negotiated context. Several
presentation contexts per SOP class, one transfer syntax each, let the archive send each file in its
stored syntax instead of transcoding it.

Cancelling sends C-CANCEL, then aborts the association if the archive keeps sending.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pydicom.dataset import Dataset

from tui_dicom.core.archive.address import ArchiveAddress
from tui_dicom.core.archive.diskcache import write_file
from tui_dicom.core.archive.errors import (
    ArchiveError,
    AssociationRejected,
    Cancelled,
    ConnectionFailed,
    MoveDestinationUnknown,
    RetrieveIncomplete,
    RetrieveUnsupported,
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

LOG = logging.getLogger("tui_dicom.archive")

FIND_MODEL = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve Information Model - FIND
GET_MODEL = "1.2.840.10008.5.1.4.1.2.2.3"
MOVE_MODEL = "1.2.840.10008.5.1.4.1.2.2.2"

#: offered one per context so the archive can send each instance in its stored syntax
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
)
MAX_CONTEXTS = 127  # PS3.8: presentation context IDs are odd numbers 1..255
#: when the SOP classes of a series are not known yet (the retrieve starts before the instance list
#: arrives): the common image classes, one context per syntax for the usual ones...
COMMON_IMAGE_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray (for presentation)
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.20",  # Nuclear Medicine
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography (for presentation)
)
COMMON_SYNTAXES = TRANSFER_SYNTAXES[:5] + (
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.5",
)

STUDY_KEYS = (
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
SERIES_KEYS = (
    "SeriesInstanceUID",
    "SeriesNumber",
    "Modality",
    "SeriesDescription",
    "BodyPartExamined",
    "NumberOfSeriesRelatedInstances",
)
#: no Rows/Columns: an archive may have to open every file to answer them (Orthanc does)
INSTANCE_KEYS = ("SOPInstanceUID", "SOPClassUID", "InstanceNumber", "NumberOfFrames")

_PENDING = (0xFF00, 0xFF01)
_REASONS_AET = {3: "calling", 7: "called"}


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _values(ds: Dataset, keyword: str) -> list[str]:
    value = ds.get(keyword, None)
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value if str(v)]
    return [v for v in str(value).split("\\") if v]


def study_record(ds: Dataset) -> StudyRecord:
    """A C-FIND study-level answer as a record."""
    return StudyRecord(
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        patient_name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        birth_date=_text(ds, "PatientBirthDate"),
        sex=_text(ds, "PatientSex"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_description=_text(ds, "StudyDescription"),
        accession_number=_text(ds, "AccessionNumber"),
        study_id=_text(ds, "StudyID"),
        modalities=_values(ds, "ModalitiesInStudy"),
        series_count=to_int(ds.get("NumberOfStudyRelatedSeries")),
        instance_count=to_int(ds.get("NumberOfStudyRelatedInstances")),
    )


def _silence_pynetdicom() -> None:
    """pynetdicom logs every association at INFO and failures at ERROR: never to the terminal (the
    viewer's screen); :func:`tui_dicom.core.logging.setup_log` routes it to ``--log``, else nowhere."""
    logger = logging.getLogger("pynetdicom")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False


def network_error(host: str, port: int, exc: BaseException) -> ConnectionFailed:
    """One line for a failed TCP connection."""
    where = f"{host}:{port}"
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionFailed(
            f"connection refused by {where}: nothing listens there (wrong port? archive down?)"
        )
    if isinstance(exc, socket.gaierror):
        return ConnectionFailed(f"cannot resolve host {host!r}")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return ConnectionFailed(f"no answer from {where} (timed out): host unreachable or filtered")
    if isinstance(exc, OSError) and exc.strerror:
        return ConnectionFailed(f"cannot connect to {where}: {exc.strerror.lower()}")
    return ConnectionFailed(f"cannot connect to {where}: {exc}")


def _uids_of(data: bytes) -> tuple[str, str]:
    """(Study, Series Instance UID) of an encoded file, read with the project's fast header reader."""
    import io

    from tui_dicom.core.hierarchy.header import read_header_from

    try:
        info = read_header_from(io.BytesIO(data), size=len(data))
    except Exception:  # noqa: BLE001 - pydicom then, below
        from pydicom import dcmread

        ds = dcmread(
            io.BytesIO(data), stop_before_pixels=True, specific_tags=["StudyInstanceUID", "SeriesInstanceUID"]
        )
        return str(ds.get("StudyInstanceUID", "") or ""), str(ds.get("SeriesInstanceUID", "") or "")
    return info.study_instance_uid, info.series_instance_uid


class DimseClient:
    """An :class:`~tui_dicom.core.archive.query.ArchiveClient` over DIMSE (one association per operation)."""

    #: C-GET / C-MOVE can start before the instance list is known (contexts for the common classes)
    needs_instance_list = False

    def __init__(self, address: ArchiveAddress, timeout: float = 30.0) -> None:
        self.address = address
        self.display = address.display
        self.timeout = timeout
        _silence_pynetdicom()

    # -- associations ---------------------------------------------------------------------------------

    def _ae(self) -> Any:
        from pynetdicom import AE

        ae = AE(ae_title=self.address.calling_aet)
        ae.connection_timeout = min(self.timeout, 15.0)  # TCP connect (none by default: would hang)
        ae.acse_timeout = self.timeout  # association negotiation
        ae.dimse_timeout = max(self.timeout, 60.0)  # between DIMSE messages (C-GET sends one per instance)
        ae.network_timeout = max(self.timeout, 60.0)  # silence on the connection
        ae.maximum_associations = 4
        return ae

    def _associate(self, ae: Any, **kwargs: Any) -> Any:
        """Open an association or raise the one-line reason it failed."""
        a = self.address
        assoc = ae.associate(a.host, a.port, ae_title=a.called_aet, **kwargs)
        if assoc.is_established:
            return assoc
        where = f"{a.host}:{a.port}"
        if assoc.is_rejected:
            rsp = getattr(assoc.acceptor, "primitive", None)
            reason = getattr(rsp, "diagnostic", None)
            source = getattr(rsp, "result_source", None)
            if source == 1 and reason == 7:
                raise AssociationRejected(
                    f"association rejected by {where}: called AE title {a.called_aet!r} not recognised "
                    "(check the AET in dicom://AET@host:port)"
                )
            if source == 1 and reason == 3:
                raise AssociationRejected(
                    f"association rejected by {where}: our AE title {a.calling_aet!r} is not known there "
                    "(register it in the archive or use --aet)"
                )
            text = getattr(rsp, "reason_str", "") if rsp is not None else ""
            raise AssociationRejected(f"association rejected by {where} (called AE {a.called_aet!r}): {text}")
        # not rejected: find out whether the TCP connection itself failed
        try:
            with socket.create_connection((a.host, a.port), timeout=min(self.timeout, 15.0)):
                pass
        except OSError as exc:
            raise network_error(a.host, a.port, exc) from None
        if assoc.is_aborted:
            raise ArchiveError(f"{where} aborted the association: it accepted none of the services asked for")
        raise ConnectionFailed(
            f"no association with {where}: the archive did not answer in {self.timeout:g} s"
        )

    def echo(self) -> None:
        """C-ECHO (verification); raises like any operation."""
        ae = self._ae()
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = self._associate(ae)
        try:
            status = assoc.send_c_echo()
            if not status or status.get("Status") != 0:
                raise ArchiveError(f"C-ECHO to {self.display} failed")
        finally:
            assoc.release()

    # -- queries --------------------------------------------------------------------------------------

    def _find(self, identifier: Dataset, limit: int | None = None) -> tuple[list[Dataset], bool]:
        """All answers (or ``limit`` and whether more existed; the rest is cut by aborting)."""
        ae = self._ae()
        ae.add_requested_context(FIND_MODEL)
        assoc = self._associate(ae)
        out: list[Dataset] = []
        cut = False
        try:
            for status, ds in assoc.send_c_find(identifier, FIND_MODEL):
                if not status or "Status" not in status:
                    raise ConnectionFailed(f"{self.display} closed the connection during the query")
                code = int(status.Status)
                if code in _PENDING:
                    if limit is not None and len(out) >= limit:
                        cut = True
                        assoc.abort()  # C-CANCEL would make some archives send the rest anyway
                        break
                    if ds is not None:
                        out.append(ds)
                elif code == 0 or code == 0xFE00:
                    break
                else:
                    raise ArchiveError(f"C-FIND failed at {self.display}: status 0x{code:04X}")
        finally:
            if assoc.is_established:
                assoc.release()
        return out, cut

    def locate_series(self, series_uid: str) -> str:
        """The Study Instance UID of a series (one series-level C-FIND), "" when unknown."""
        ident = Dataset()
        ident.QueryRetrieveLevel = "SERIES"
        ident.SeriesInstanceUID = series_uid
        ident.StudyInstanceUID = None
        found, _ = self._find(ident)
        return "\\".join(sorted({_text(d, "StudyInstanceUID") for d in found if d} - {""}))

    def find_studies(self, filters: QueryFilters, limit: int | None = None, offset: int = 0) -> StudyPage:
        """Study-level C-FIND with every filter; ``offset`` skips answers (C-FIND has no paging)."""
        study_uid = filters.study_uid
        if filters.series_uid and not study_uid:
            study_uid = self.locate_series(filters.series_uid)
            if not study_uid:
                return StudyPage([], False, offset)
        ident = Dataset()
        ident.QueryRetrieveLevel = "STUDY"
        for key in STUDY_KEYS:
            setattr(ident, key, None)
        ident.PatientName = filters.patient_name
        ident.PatientID = filters.patient_id
        ident.StudyDate = filters.study_date
        ident.AccessionNumber = filters.accession_number
        ident.StudyDescription = filters.study_description
        ident.ModalitiesInStudy = filters.modality
        ident.StudyInstanceUID = study_uid
        found, cut = self._find(ident, None if limit is None else offset + limit)
        records = [study_record(d) for d in found]
        records = [
            r for r in records if study_matches(QueryFilters(**{**vars(filters), "study_uid": study_uid}), r)
        ]
        return StudyPage(records[offset:], cut, offset)

    def find_series(self, study_uid: str, series_uid: str = "") -> list[SeriesRecord]:
        """Series-level C-FIND within one study."""
        ident = Dataset()
        ident.QueryRetrieveLevel = "SERIES"
        ident.StudyInstanceUID = study_uid
        for key in SERIES_KEYS:
            setattr(ident, key, None)
        ident.SeriesInstanceUID = series_uid
        found, _ = self._find(ident)
        return [
            SeriesRecord(
                study_instance_uid=study_uid,
                series_instance_uid=_text(d, "SeriesInstanceUID"),
                series_number=to_int(d.get("SeriesNumber")),
                modality=_text(d, "Modality"),
                series_description=_text(d, "SeriesDescription"),
                body_part=_text(d, "BodyPartExamined"),
                instance_count=to_int(d.get("NumberOfSeriesRelatedInstances")),
            )
            for d in found
        ]

    def find_instances(self, study_uid: str, series_uid: str) -> list[InstanceRecord]:
        """Instance-level C-FIND within one series."""
        ident = Dataset()
        ident.QueryRetrieveLevel = "IMAGE"
        ident.StudyInstanceUID = study_uid
        ident.SeriesInstanceUID = series_uid
        for key in INSTANCE_KEYS:
            setattr(ident, key, None)
        found, _ = self._find(ident)
        return [
            InstanceRecord(
                study_instance_uid=study_uid,
                series_instance_uid=series_uid,
                sop_instance_uid=_text(d, "SOPInstanceUID"),
                sop_class_uid=_text(d, "SOPClassUID"),
                instance_number=to_int(d.get("InstanceNumber")),
                frames=to_int(d.get("NumberOfFrames")) or 1,
                rows=to_int(d.get("Rows")),
                columns=to_int(d.get("Columns")),
            )
            for d in found
        ]

    # -- retrieve ---------------------------------------------------------------------------------

    def _storage_contexts(self, expected: list[InstanceRecord] | None) -> list[tuple[str, list[str]]]:
        """(SOP class, transfer syntaxes) per context, at most 126 (the 127th is the C-GET model).

        Known classes (from the instance list): one context per syntax, so each file comes as stored.
        Unknown (the retrieve starts before the list): the common image classes with one context per
        usual syntax, then every other storage class with one context offering the uncompressed syntaxes
        (the archive converts the rare file in another syntax).
        """
        classes = sorted({r.sop_class_uid for r in expected or [] if r.sop_class_uid})
        if classes and len(classes) * len(TRANSFER_SYNTAXES) < MAX_CONTEXTS - 1:
            return [(c, [ts]) for c in classes for ts in TRANSFER_SYNTAXES]
        from pynetdicom import StoragePresentationContexts

        common = list(dict.fromkeys(classes + list(COMMON_IMAGE_CLASSES)))
        per_syntax = common[: (MAX_CONTEXTS - 1) // len(COMMON_SYNTAXES)]
        out = [(c, [ts]) for c in per_syntax for ts in COMMON_SYNTAXES]
        rest = [str(cx.abstract_syntax) for cx in StoragePresentationContexts]
        for c in dict.fromkeys(common[len(per_syntax) :] + rest):
            if len(out) >= MAX_CONTEXTS - 1:
                break
            if c not in per_syntax:
                out.append((c, list(TRANSFER_SYNTAXES[:2])))
        return out

    def _identifier(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        ident = Dataset()
        ident.QueryRetrieveLevel = "IMAGE" if sop_uid else "SERIES" if series_uid else "STUDY"
        ident.StudyInstanceUID = study_uid
        if series_uid:
            ident.SeriesInstanceUID = series_uid
        if sop_uid:
            ident.SOPInstanceUID = sop_uid
        return ident

    def _store_handler(
        self,
        study_uid: str,
        series_uid: str,
        destination: Destination,
        expected: list[InstanceRecord] | None,
        arrived: queue.Queue[Retrieved | BaseException | None],
        cancel: threading.Event,
    ) -> Callable[[Any], int]:
        series_of = {r.sop_instance_uid: r.series_instance_uid for r in expected or []}
        wanted = set(series_of) if expected else None

        def handle(event: Any) -> int:
            if cancel.is_set():
                return 0xC000  # cancelled: refuse what still comes
            sop = str(event.request.AffectedSOPInstanceUID)
            if wanted is not None and sop not in wanted:
                return 0xC000  # not part of what was asked for: never written
            try:
                data = event.encoded_dataset(include_meta=True)
                got_study, got_series = _uids_of(data)
                # only what was asked for is written (a C-MOVE SCP port is open to anyone meanwhile)
                if (got_study and got_study != study_uid) or (
                    series_uid and got_series and got_series != series_uid
                ):
                    return 0xC000
                series = series_of.get(sop) or series_uid or got_series or "unknown-series"
                path = destination.path_for(study_uid, series, sop)
                nbytes = write_file(path, (data,))
                destination.stored(path, nbytes)
            except Exception as exc:  # noqa: BLE001 - a full disk must fail the sub-operation, not the SCP
                arrived.put(exc)
                return 0xA700  # out of resources
            arrived.put(Retrieved(study_uid, series, sop, path, nbytes))
            return 0x0000

        return handle

    def retrieve(
        self,
        study_uid: str,
        series_uid: str,
        destination: Destination,
        expected: list[InstanceRecord] | None = None,
        cancel: threading.Event | None = None,
        sop_uid: str = "",
    ) -> Iterator[Retrieved]:
        """C-GET (or C-MOVE when the address says ``retrieve="move"``); yields instances as they arrive."""
        cancel = cancel or threading.Event()
        if sop_uid and expected:
            expected = [r for r in expected if r.sop_instance_uid == sop_uid]
        arrived: queue.Queue[Retrieved | BaseException | None] = queue.Queue()
        handler = self._store_handler(study_uid, series_uid, destination, expected, arrived, cancel)
        outcome: dict[str, Any] = {}
        ident = self._identifier(study_uid, series_uid, sop_uid)
        if self.address.retrieve == "move":
            operation = self._start_move(ident, handler, arrived, outcome, expected)
        else:
            operation = self._start_get(ident, handler, arrived, outcome, expected)
        received: list[str] = []
        finished = False
        try:
            while True:
                try:
                    item = arrived.get(timeout=0.1)
                except queue.Empty:
                    if cancel.is_set():
                        operation.cancel()
                    continue
                if item is None:
                    break
                if isinstance(item, BaseException):
                    outcome.setdefault("store_error", item)
                    continue
                received.append(item.sop_instance_uid)
                yield item
            finished = True
        finally:
            if not finished:  # the consumer stopped early (closed the generator) or failed
                cancel.set()
                operation.cancel()
            operation.join()
        error = outcome.get("error")
        store_error = outcome.get("store_error")
        if isinstance(store_error, BaseException):  # our side failed: say so, not the archive's status
            error = ArchiveError(f"cannot write a retrieved file: {store_error}")
        if isinstance(error, BaseException) and not received:
            raise error
        failed = sorted({r.sop_instance_uid for r in expected or []} - set(received))
        if cancel.is_set():
            raise Cancelled(
                f"retrieve cancelled: {len(received)} instances kept, {len(failed)} not retrieved"
            )
        if isinstance(error, BaseException):
            raise RetrieveIncomplete(str(error), received, failed)
        if failed or outcome.get("failed_subops"):
            reason = outcome.get("reason") or "the archive sent fewer instances than it listed"
            raise RetrieveIncomplete(str(reason), received, failed)

    def _start_get(
        self,
        ident: Dataset,
        handler: Callable[[Any], int],
        arrived: queue.Queue[Retrieved | BaseException | None],
        outcome: dict[str, Any],
        expected: list[InstanceRecord] | None,
    ) -> _Operation:
        from pynetdicom import build_role, evt

        ae = self._ae()
        ae.add_requested_context(GET_MODEL)
        contexts = self._storage_contexts(expected)
        for sop_class, syntaxes in contexts:
            ae.add_requested_context(sop_class, syntaxes)
        roles = [build_role(c, scp_role=True) for c in dict.fromkeys(c for c, _ in contexts)]
        assoc = self._associate(ae, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, handler)])
        if not any(str(cx.abstract_syntax) == GET_MODEL for cx in assoc.accepted_contexts):
            assoc.release()
            raise RetrieveUnsupported(f"{self.display} does not offer C-GET: use --retrieve move")
        op = _Operation(assoc, GET_MODEL)

        def run() -> None:
            try:
                self._responses(assoc.send_c_get(ident, GET_MODEL), outcome, "C-GET")
            except Exception as exc:  # noqa: BLE001 - reported to the consumer as the outcome
                outcome["error"] = exc
            finally:
                with contextlib.suppress(Exception):
                    if assoc.is_established:
                        assoc.release()
                arrived.put(None)

        op.start(run)
        return op

    def _start_move(
        self,
        ident: Dataset,
        handler: Callable[[Any], int],
        arrived: queue.Queue[Retrieved | BaseException | None],
        outcome: dict[str, Any],
        expected: list[InstanceRecord] | None,
    ) -> _Operation:
        from pynetdicom import StoragePresentationContexts, evt

        scp_ae = self._ae()
        classes = {r.sop_class_uid for r in expected or [] if r.sop_class_uid}
        for sop_class in dict.fromkeys(
            [*sorted(classes), *(str(cx.abstract_syntax) for cx in StoragePresentationContexts)]
        ):
            scp_ae.add_supported_context(sop_class, list(TRANSFER_SYNTAXES))
        port = self.address.move_port
        try:
            server = scp_ae.start_server(("", port), block=False, evt_handlers=[(evt.EVT_C_STORE, handler)])
        except OSError as exc:
            raise ArchiveError(
                f"cannot listen on port {port} for C-MOVE ({exc.strerror or exc}): choose another --move-port"
            ) from None
        ae = self._ae()
        ae.add_requested_context(MOVE_MODEL)
        try:
            assoc = self._associate(ae)
        except BaseException:
            server.shutdown()
            raise
        if not any(str(cx.abstract_syntax) == MOVE_MODEL for cx in assoc.accepted_contexts):
            assoc.release()
            server.shutdown()
            raise RetrieveUnsupported(f"{self.display} does not offer C-MOVE: use --retrieve get")
        op = _Operation(assoc, MOVE_MODEL, server)
        dest = self.address.calling_aet

        def run() -> None:
            try:
                self._responses(assoc.send_c_move(ident, dest, MOVE_MODEL), outcome, "C-MOVE")
            except Exception as exc:  # noqa: BLE001 - reported to the consumer as the outcome
                outcome["error"] = exc
            finally:
                with contextlib.suppress(Exception):
                    if assoc.is_established:
                        assoc.release()
                server.shutdown()
                arrived.put(None)

        op.start(run)
        return op

    def _responses(
        self, responses: Iterator[tuple[Dataset, Any]], outcome: dict[str, Any], what: str
    ) -> None:
        """Follow C-GET/C-MOVE responses; record the final status in ``outcome``."""
        completed = 0
        for status, _ident in responses:
            if not status or "Status" not in status:
                outcome["error"] = ConnectionFailed(f"{self.display} closed the connection during the {what}")
                return
            code = int(status.Status)
            completed = int(status.get("NumberOfCompletedSuboperations", completed) or completed)
            if code in _PENDING:
                continue
            failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
            if code == 0x0000:
                return
            if code == 0xFE00:
                outcome["cancelled"] = True
                return
            if code == 0xB000:
                outcome["failed_subops"] = failed
                outcome["reason"] = f"the archive reported {failed} instances it could not send"
                return
            if what == "C-MOVE" and (code == 0xA801 or (code == 0xC000 and completed == 0)):
                dest = self.address.calling_aet
                outcome["error"] = MoveDestinationUnknown(
                    f"{self.display} refused C-MOVE to AE title {dest!r} (status 0x{code:04X}): register "
                    f"{dest!r} in the archive with this machine's address and port {self.address.move_port}"
                )
                return
            if code == 0x0122 and what == "C-GET":
                outcome["error"] = RetrieveUnsupported(
                    f"{self.display} does not offer C-GET: use --retrieve move"
                )
                return
            if code in (0xA701, 0xA702):
                outcome["error"] = ArchiveError(
                    f"{what} failed at {self.display}: the archive is out of resources"
                )
                return
            outcome["error"] = ArchiveError(f"{what} failed at {self.display}: status 0x{code:04X}")
            return

    def close(self) -> None:
        """Nothing is kept open between operations."""


class _Operation:
    """A C-GET/C-MOVE running in its own thread; :meth:`cancel` sends C-CANCEL, then aborts."""

    def __init__(self, assoc: Any, model: str, server: Any = None) -> None:
        self.assoc = assoc
        self.model = model
        self.server = server
        self.thread: threading.Thread | None = None
        self._cancel_sent = 0.0

    def start(self, target: Callable[[], None]) -> None:
        self.thread = threading.Thread(target=target, name="tui-dicom-retrieve", daemon=True)
        self.thread.start()

    def cancel(self) -> None:
        import time

        now = time.monotonic()
        if not self._cancel_sent:
            self._cancel_sent = now
            with contextlib.suppress(Exception):
                self.assoc.send_c_cancel(1, query_model=self.model)
        elif now - self._cancel_sent > 2.0 and self.assoc.is_established:
            self.assoc.abort()  # the archive ignored C-CANCEL

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=5.0)
            if self.thread.is_alive():
                self.assoc.abort()
                self.thread.join(timeout=5.0)
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.shutdown()
