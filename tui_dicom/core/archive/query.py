"""Query filters, result records, and the hierarchy model built from query results.

One set of filters serves both protocols: C-FIND identifiers and QIDO-RS query parameters carry the
same attributes with the same matching rules (PS3.4 C.2.2.2): ``*`` and ``?`` wildcards in names and
descriptions, ``YYYYMMDD-YYYYMMDD`` date ranges (either end open). Queries are by level — studies first;
series and instances only when a study or series is opened — so a large archive is never walked.

Results become the shared model (:mod:`tui_dicom.core.hierarchy.model`): a study's series and a
series' instances are filled in when queried. Instances point at the file where a retrieve will put
them (``Instance.ref``), so the viewer reads them like any local file once they have arrived.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tui_dicom.core.archive.errors import AddressError

if TYPE_CHECKING:  # imported where used: ``tui-dicom get`` needs the records, not the model
    from tui_dicom.core.hierarchy.model import Hierarchy, Instance, Series

_DATE_RE = re.compile(r"^(\d{8})?(-)?(\d{8})?$")


def normalise_date(text: str) -> str:
    """``20240131``, ``2024-01-31``, ranges ``20240101-20240131`` / ``2024-01-01..2024-01-31``, either end
    open (``-20240131``, ``20240101-``) → the DICOM form ``YYYYMMDD`` or ``YYYYMMDD-YYYYMMDD``.

    Raises:
        AddressError: not a date or a date range.
    """
    text = text.strip()
    if not text:
        return ""
    iso = r"\d{4}-\d{2}-\d{2}"
    if ".." in text:
        lo, _, hi = text.partition("..")
        is_range = True
    elif re.fullmatch(iso, text):
        lo, hi, is_range = text, "", False
    else:
        m = _DATE_RE.match(text)
        if not m:
            lo = hi = "bad"
            is_range = False
        else:
            lo, hi, is_range = m.group(1) or "", m.group(3) or "", bool(m.group(2))
    lo, hi = (v.replace("-", "") if re.fullmatch(iso, v) else v for v in (lo, hi))
    ok = all(re.fullmatch(r"\d{8}", v) for v in (lo, hi) if v) and (lo or hi) and (is_range or not hi)
    if not ok:
        raise AddressError(
            f"--date {text!r}: use YYYYMMDD (or YYYY-MM-DD), or a range FROM-TO with either end left open"
        )
    return f"{lo}-{hi}" if is_range else lo


@dataclass(frozen=True)
class QueryFilters:
    """What the user asked for (empty string: no filter). Values are DICOM matching patterns."""

    patient_name: str = ""
    patient_id: str = ""
    study_date: str = ""
    modality: str = ""
    accession_number: str = ""
    study_description: str = ""
    study_uid: str = ""
    series_uid: str = ""

    def is_empty(self) -> bool:
        """True when no filter is set."""
        return not any(getattr(self, f) for f in self.__dataclass_fields__)


@dataclass
class StudyRecord:
    """One study-level match."""

    study_instance_uid: str
    patient_name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    study_id: str = ""
    modalities: list[str] = field(default_factory=list)
    series_count: int | None = None
    instance_count: int | None = None


@dataclass
class SeriesRecord:
    """One series-level match."""

    study_instance_uid: str
    series_instance_uid: str
    series_number: int | None = None
    modality: str = ""
    series_description: str = ""
    body_part: str = ""
    instance_count: int | None = None


@dataclass
class InstanceRecord:
    """One instance-level match."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str = ""
    instance_number: int | None = None
    frames: int = 1
    rows: int | None = None
    columns: int | None = None


@dataclass
class StudyPage:
    """One page of study results; ``cut`` says more matched than were returned."""

    studies: list[StudyRecord]
    cut: bool = False
    offset: int = 0


@dataclass(frozen=True)
class Retrieved:
    """One instance that arrived and was written to ``path`` (``nbytes`` on disk)."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    path: Path
    nbytes: int


class Destination(Protocol):
    """Where retrieved instances are written: the cache or a folder the user named."""

    def path_for(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """The file an instance goes to (inside the destination, whatever the UIDs contain)."""
        ...

    def stored(self, path: Path, nbytes: int) -> None:
        """Called after a file was written completely."""
        ...

    def staging_dir(self) -> Path:
        """A folder inside the destination, on its file system, for files still being received."""
        ...


class ArchiveClient(Protocol):
    """What both protocols offer. Every call blocks: run it in a worker thread."""

    display: str

    def find_studies(self, filters: QueryFilters, limit: int | None = None, offset: int = 0) -> StudyPage:
        """Study-level query; at most ``limit`` records after skipping ``offset``."""
        ...

    def find_series(self, study_uid: str, series_uid: str = "") -> list[SeriesRecord]:
        """The series of one study (optionally just one)."""
        ...

    def locate_series(self, series_uid: str) -> str:
        """The Study Instance UID of a series ("" when the archive does not know it)."""
        ...

    def find_instances(self, study_uid: str, series_uid: str) -> list[InstanceRecord]:
        """The instances of one series."""
        ...

    def retrieve(
        self,
        study_uid: str,
        series_uid: str,
        destination: Destination,
        expected: list[InstanceRecord] | None = None,
        cancel: threading.Event | None = None,
        sop_uid: str = "",
    ) -> Iterator[Retrieved]:
        """Retrieve a series (or the whole study when ``series_uid`` is empty, or one instance).

        Instances are yielded as they arrive. At the end, raises
        :class:`~tui_dicom.core.archive.errors.RetrieveIncomplete` when some did not arrive, or
        :class:`~tui_dicom.core.archive.errors.Cancelled` when ``cancel`` was set.
        """
        ...

    def close(self) -> None:
        """Release connections (idempotent)."""
        ...


# ------------------------------------------------------------------------------------ local matching


def matches(pattern: str, value: str) -> bool:
    """DICOM wildcard matching (``*``, ``?``), case-insensitive; empty pattern matches anything.

    Used to narrow results a server returned for a broadened query (see :mod:`.dicomweb`), so it only
    ever removes what does not match the user's own pattern.
    """
    if not pattern or pattern == "*":
        return True
    regex = fnmatch.translate(pattern.replace("[", "[[]").casefold())
    return re.match(regex, value.casefold()) is not None


def date_matches(pattern: str, value: str) -> bool:
    """Date-range matching on ``YYYYMMDD`` strings (``A-B``, ``A-``, ``-B`` or ``A``)."""
    if not pattern:
        return True
    if not value:
        return False
    if "-" not in pattern:
        return value[:8] == pattern
    lo, _, hi = pattern.partition("-")
    return (not lo or value[:8] >= lo) and (not hi or value[:8] <= hi)


def study_matches(filters: QueryFilters, st: StudyRecord) -> bool:
    """True when ``st`` satisfies every filter (the server's answer, checked again locally)."""
    return (
        matches(filters.patient_name, st.patient_name)
        and matches(filters.patient_id, st.patient_id)
        and matches(filters.accession_number, st.accession_number)
        and matches(filters.study_description, st.study_description)
        and date_matches(filters.study_date, st.study_date)
        and (not filters.study_uid or st.study_instance_uid in filters.study_uid.split("\\"))
        and (
            not filters.modality
            or not st.modalities
            or any(matches(filters.modality, m) for m in st.modalities)
        )
    )


# ------------------------------------------------------------------------------------------- model


def to_int(value: object) -> int | None:
    """An integer from a DICOM IS/US value (``"12"``, ``12``, ``[12]``) or None."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None or value == "":
        return None
    try:
        return int(float(str(value).strip()))
    except (TypeError, ValueError):
        return None


def hierarchy_from_studies(studies: list[StudyRecord]) -> Hierarchy:
    """Patients and studies (no series yet) in the order the archive returned them, grouped by patient."""
    from tui_dicom.core.hierarchy.model import Hierarchy, Patient, Study

    patients: dict[tuple[str, str], Patient] = {}
    for rec in studies:
        key = (rec.patient_id, rec.patient_name)
        patient = patients.get(key)
        if patient is None:
            patient = Patient(
                patient_id=rec.patient_id,
                patient_name=rec.patient_name,
                birth_date=rec.birth_date,
                sex=rec.sex,
            )
            patients[key] = patient
        patient.studies.append(
            Study(
                study_instance_uid=rec.study_instance_uid,
                study_date=rec.study_date,
                study_time=rec.study_time,
                study_description=rec.study_description,
                accession_number=rec.accession_number,
                study_id=rec.study_id,
            )
        )
    return Hierarchy(patients=list(patients.values()))


def series_from_records(records: list[SeriesRecord]) -> list[Series]:
    """Series model objects (no instances yet), ordered by series number."""
    from tui_dicom.core.hierarchy.model import Series

    out = [
        Series(
            series_instance_uid=r.series_instance_uid,
            series_number=r.series_number,
            modality=r.modality,
            series_description=r.series_description,
            body_part=r.body_part,
        )
        for r in records
    ]
    out.sort(
        key=lambda s: (s.series_number if s.series_number is not None else 1 << 31, s.series_instance_uid)
    )
    return out


def instances_from_records(
    records: list[InstanceRecord], path_for: Callable[[str, str, str], Path]
) -> list[Instance]:
    """Instance model objects pointing at where each file will be (``path_for(study, series, sop)``)."""
    from tui_dicom.core.dicom.source import FileRef
    from tui_dicom.core.hierarchy.model import Instance, sort_instances

    out = [
        Instance(
            ref=FileRef(str(path_for(r.study_instance_uid, r.series_instance_uid, r.sop_instance_uid))),
            sop_instance_uid=r.sop_instance_uid,
            sop_class_uid=r.sop_class_uid,
            instance_number=r.instance_number,
            rows=r.rows,
            columns=r.columns,
            frames=max(1, r.frames),
        )
        for r in records
    ]
    sort_instances(out)
    return out


# ------------------------------------------------------------------------------------ search box

#: words of the viewer's search box: ``key:value`` → the filter it sets
SEARCH_KEYS = {
    "patient": "patient_name",
    "name": "patient_name",
    "id": "patient_id",
    "date": "study_date",
    "mod": "modality",
    "modality": "modality",
    "acc": "accession_number",
    "desc": "study_description",
    "study": "study_uid",
    "series": "series_uid",
}


def parse_search(text: str) -> QueryFilters:
    """The viewer's search box: ``DOE* date:2024-01-01.. mod:CT id:123 acc:A1 desc:HEAD*``.

    A word without ``key:`` is (part of) the patient name: several such words join with a space.

    Raises:
        AddressError: an unknown key or a bad date.
    """
    values: dict[str, str] = {}
    names: list[str] = []
    for word in text.split():
        key, sep, value = word.partition(":")
        if not sep or key.lower() not in SEARCH_KEYS:
            if sep and key.isalpha() and key.lower() not in SEARCH_KEYS:
                raise AddressError(f"unknown search key {key!r}: use {', '.join(sorted(SEARCH_KEYS))}")
            names.append(word)
            continue
        target = SEARCH_KEYS[key.lower()]
        values[target] = normalise_date(value) if target == "study_date" else value
    if names:
        values["patient_name"] = " ".join(names)
    return QueryFilters(**values)
