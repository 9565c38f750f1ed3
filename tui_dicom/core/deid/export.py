"""Write a de-identified copy of DICOM files as a CD-like file-set (``DICOMDIR`` + ``DICOM/...``) or a ZIP.

The output is built under a temporary name beside OUT and renamed into place only when complete, so
a failure or an interruption leaves nothing behind, and an existing OUT is replaced only with
``force``. Inputs are only read. A file that cannot be de-identified (unreadable, truncated pixel data,
hostile values, no SOP Instance UID ...) is left out and reported with its reason — it is never copied
as it was. Pixel data is written byte for byte as read.

The DICOMDIR is written by pydicom's :class:`~pydicom.fileset.FileSet` (PATIENT/STUDY/SERIES/leaf
records, File IDs of 8-character upper-case components under one ``DICOM`` folder, as on a CD).
Record keys come from the de-identified instance, so with the bare profile a STUDY record's
Study Date and Time are empty like the instance's (the profile's Z); Study ID gets the instance's dummy.
pydicom stages each file in a temporary folder before ``write`` copies it into place, so an export needs
about twice its size in free space while it runs. Burned-in annotation is checked before anything is written: images of modalities that carry text in
their pixels (US, SC, XA and the secondary-capture SOP classes) whose Burned In Annotation is ``YES``
or absent stop the export unless the caller allows them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import secrets
import shutil
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_dicom.core.deid.engine import Deidentifier, DeidError, Settings
from tui_dicom.core.deid.mask import Mask, apply_masks
from tui_dicom.core.deid.table import BASIC_PROFILE_CODE, CLEAN_PIXEL_DATA_CODE, EDITION, Option
from tui_dicom.core.dicom.reading import read_dataset
from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.errors import DicomViewerError
from tui_dicom.core.logging import log_exception

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
    from pydicom.fileset import FileSet, RecordNode

REPORT_NAME = "DEIDENTIFICATION.txt"
#: modalities whose images often carry text burned into the pixels
BURNED_IN_MODALITIES = frozenset({"US", "SC", "XA", "ES", "XC", "OT"})
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_US_CLASSES = ("1.2.840.10008.5.1.4.1.1.6.", "1.2.840.10008.5.1.4.1.1.3.")
_XA_CLASS = "1.2.840.10008.5.1.4.1.1.12."

ProgressFn = Callable[[int, int], None]


class ExportRefused(Exception):
    """The export cannot start or finish (OUT exists, OUT inside an input, burned-in text ...)."""


class OutputRefused(ExportRefused):
    """OUT cannot be used: it exists (without force), is inside an input, or holds one."""


class BurnedInRefused(ExportRefused):
    """Images that may carry burned-in text; the export stops before writing anything."""

    def __init__(self, refs: list[FileRef]) -> None:
        super().__init__(
            f"{len(refs)} image(s) may have text burned into the pixels (Burned In Annotation is YES or "
            "absent on an ultrasound, X-ray angiography or secondary-capture image)"
        )
        self.refs = refs


@dataclass(frozen=True)
class Dropped:
    """A file left out, with a one-line reason."""

    ref: FileRef | None
    path: str
    reason: str


@dataclass
class ExportResult:
    """What was written."""

    out: Path
    instances: int = 0
    patients: int = 0
    studies: int = 0
    series: int = 0
    dropped: list[Dropped] = field(default_factory=list)
    burned_in: list[FileRef] = field(default_factory=list)
    masked: int = 0
    report_path: Path | None = None


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
    except ValueError:
        return False
    return True


def check_output(
    out: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]], *, force: bool
) -> Path:
    """Validate OUT before any work: absolute path returned.

    Raises:
        OutputRefused: OUT exists (without ``force``), is inside an input, or contains an input.
    """
    target = Path(os.path.abspath(out))
    real_target = Path(os.path.realpath(target))
    for item in inputs:
        real_in = Path(os.path.realpath(item))
        if real_in == real_target or (real_in.is_dir() and _inside(real_target, real_in)):
            raise OutputRefused("the output must not be inside an input (inputs are never written)")
        if _inside(real_in, real_target):
            raise OutputRefused("an input is inside the output; replacing it would delete the input")
    if os.path.lexists(target) and not force:
        raise OutputRefused("the output already exists (use --force to replace it)")
    if not target.parent.is_dir():
        raise OutputRefused("the output's folder does not exist")
    return target


def may_have_burned_in(ds: Dataset) -> bool:
    """True when ``ds`` is an image of a kind that carries burned-in text and does not say it has none."""
    if "PixelData" not in ds and 0x7FE00010 not in ds and "Rows" not in ds:
        return False
    modality = str(ds.get("Modality", "") or "").strip().upper()
    sop_class = str(ds.get("SOPClassUID", "") or "")
    kind = (
        modality in BURNED_IN_MODALITIES
        or sop_class.startswith(_SECONDARY_CAPTURE)
        or sop_class.startswith(_US_CLASSES)
        or sop_class.startswith(_XA_CLASS)
    )
    if not kind:
        return False
    return str(ds.get("BurnedInAnnotation", "") or "").strip().upper() != "NO"


def check_pixel_data(ds: Dataset) -> None:
    """Refuse pixel data shorter than its header declares or whose fragments do not parse.

    Raises:
        DeidError: why.
    """
    from pydicom.tag import Tag

    raw = ds._dict.get(Tag(0x7FE00010))
    if raw is None:
        return
    length = getattr(raw, "length", None)
    value = raw.value
    if value is None:
        return
    if not isinstance(value, (bytes, bytearray)):
        return
    if isinstance(length, int) and length != 0xFFFFFFFF and len(value) < length:
        raise DeidError(f"pixel data is truncated: {len(value):,} of {length:,} bytes present")
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    from pydicom.uid import UID

    if ts and UID(str(ts)).is_encapsulated:
        from pydicom.encaps import generate_fragments

        try:
            count = sum(1 for _ in generate_fragments(bytes(value)))
        except (ValueError, KeyError, IndexError) as exc:
            raise DeidError(f"encapsulated pixel data is broken: {exc}") from None
        if count == 0:
            raise DeidError("encapsulated pixel data has no fragments")
        return
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits = int(ds.BitsAllocated)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        raise DeidError("pixel data without usable Rows, Columns or Bits Allocated") from None
    pixels = rows * cols * spp * max(frames, 1)
    expected = (pixels * bits + 7) // 8
    if len(value) < expected:
        raise DeidError(f"pixel data is truncated: {len(value):,} of {expected:,} bytes present")


def _cd_patient_node_class() -> type[RecordNode]:
    from pydicom.fileset import RecordNode

    class CdPatientNode(RecordNode):
        """A PATIENT record whose File ID component sits under one ``DICOM`` folder, as on a CD."""

        @property
        def component(self) -> str:
            return os.path.join("DICOM", super().component)

    return CdPatientNode


#: STUDY record keys of Type 1 (PS3.3 F.5) that the profile may empty (Z), each with the attributes of
#: the (already de-identified) file tried in turn, as DCMTK's ``dcmmkdir +I`` does, and a fixed dummy
#: for when none has a value: 1900-01-01 00:00, not the export date, so that two exports agree.
_STUDY_TYPE1: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("StudyDate", ("SeriesDate", "AcquisitionDate", "ContentDate"), "19000101"),
    ("StudyTime", ("SeriesTime", "AcquisitionTime", "ContentTime"), "000000"),
)


class _Inventions:
    """Numbers for record keys of Type 1 that a file leaves empty (the bare profile empties Study ID;
    some files have no Series or Instance Number), one per study/series/instance of this export, as
    DCMTK's ``dcmmkdir +I`` invents them: a DICOMDIR with an empty Type 1 key is not valid."""

    def __init__(self) -> None:
        self._numbers: dict[tuple[str, str], int] = {}
        self._counts: dict[str, int] = {}

    def number(self, kind: str, key: str, scope: str = "") -> int:
        """The same number for the same ``key`` of ``kind``; numbered 1, 2, ... within ``scope``."""
        found = self._numbers.get((kind, key))
        if found is None:
            counter = f"{kind}\0{scope}"
            found = self._counts[counter] = self._counts.get(counter, 0) + 1
            self._numbers[(kind, key)] = found
        return found


def _records(ds: Dataset, patient_node: type[RecordNode], invent: _Inventions) -> RecordNode:
    """PATIENT → STUDY → SERIES → leaf directory records for ``ds`` (PS3.3 F.5); returns the leaf."""
    import pydicom.fileset
    from pydicom.dataset import Dataset as _Dataset
    from pydicom.fileset import DIRECTORY_RECORDERS, RecordNode

    # pydicom's own choice of leaf record (IMAGE, RT DOSE, SR DOCUMENT ...); IMAGE if it is ever renamed
    leaf_type_of: Callable[[Dataset], str] = getattr(
        pydicom.fileset, "_four_level_record_type", lambda _ds: "IMAGE"
    )

    charset = ds.get("SpecificCharacterSet")

    def record(kind: str, keywords: Sequence[str]) -> _Dataset:
        rec = _Dataset()
        rec.DirectoryRecordType = kind
        if charset:
            rec.SpecificCharacterSet = charset
        for kw in keywords:
            setattr(rec, kw, ds.get(kw, None))
        return rec

    patient = patient_node(record("PATIENT", ["PatientName", "PatientID"]))
    study_record = record(
        "STUDY",
        ["StudyDate", "StudyTime", "StudyDescription", "StudyInstanceUID", "StudyID", "AccessionNumber"],
    )
    for keyword, alternatives, dummy in _STUDY_TYPE1:
        if not str(study_record.get(keyword, "") or ""):
            found = (str(ds.get(kw, "") or "") for kw in alternatives)
            setattr(study_record, keyword, next((v for v in found if v), dummy))
    study_uid, series_uid = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
    if not str(study_record.get("StudyID", "") or ""):
        study_record.StudyID = f"STUDY{invent.number('study', study_uid)}"
    study = RecordNode(study_record)
    series_record = record("SERIES", ["Modality", "SeriesInstanceUID", "SeriesNumber"])
    if not str(series_record.get("Modality", "") or ""):
        series_record.Modality = "OT"
    if series_record.get("SeriesNumber", None) in (None, ""):
        series_record.SeriesNumber = invent.number("series", series_uid, study_uid)
    series = RecordNode(series_record)
    kind = leaf_type_of(ds)
    try:
        leaf_record = DIRECTORY_RECORDERS[kind](ds)
    except (KeyError, ValueError, AttributeError):
        leaf_record = _Dataset()
        if "InstanceNumber" in ds:
            leaf_record.InstanceNumber = ds.InstanceNumber
    leaf_record.DirectoryRecordType = kind
    if kind == "IMAGE" and leaf_record.get("InstanceNumber", None) in (None, ""):
        leaf_record.InstanceNumber = invent.number("instance", str(ds.SOPInstanceUID), series_uid)
    leaf_record.ReferencedSOPClassUIDInFile = ds.SOPClassUID
    leaf_record.ReferencedSOPInstanceUIDInFile = ds.SOPInstanceUID
    leaf_record.ReferencedTransferSyntaxUIDInFile = ds.file_meta.TransferSyntaxUID
    if charset:
        leaf_record.SpecificCharacterSet = charset
    leaf = RecordNode(leaf_record)
    study.parent = patient
    series.parent = study
    leaf.parent = series
    return leaf


def _add(fs: FileSet, ds: Dataset, leaf: RecordNode) -> None:
    """Stage ``ds`` in the file-set; if writing it fails, unstage it (records and partial file) and re-raise.

    pydicom's ``add_custom`` puts the records in the tree before it writes the file; a value that cannot
    be encoded would otherwise leave a record pointing at nothing.
    """
    try:
        fs.add_custom(ds, leaf)
    except Exception:
        uid = str(ds.get("SOPInstanceUID", ""))
        staged = next((inst for inst in fs if inst.SOPInstanceUID == uid), None)
        if staged is not None:
            fs.remove(staged)
        raise


def _note_clean_pixel_data(ds: Dataset) -> None:
    """Record that rectangles of this image's pixels were blacked out (CID 7050 Clean Pixel Data)."""
    from pydicom.dataset import Dataset as _Dataset

    item = _Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = (
        CLEAN_PIXEL_DATA_CODE[0],
        "DCM",
        CLEAN_PIXEL_DATA_CODE[1],
    )
    ds.DeidentificationMethodCodeSequence.append(item)
    methods = ds.DeidentificationMethod
    methods = [methods] if isinstance(methods, str) else list(methods)
    ds.DeidentificationMethod = [*methods, CLEAN_PIXEL_DATA_CODE[1]]


def _ensure_uids(ds: Dataset, deid: Deidentifier) -> None:
    """Files without Study/Series Instance UID get one derived from how the index groups them."""
    if not str(ds.get("StudyInstanceUID", "") or ""):
        key = f"{deid.patient_key(ds)}\0{ds.get('StudyDate', '')}\0{ds.get('StudyID', '')}"
        ds.StudyInstanceUID = deid.new_uid("study-without-uid\0" + key)
    if not str(ds.get("SeriesInstanceUID", "") or ""):
        key = f"{ds.StudyInstanceUID}\0{ds.get('SeriesNumber', '')}\0{ds.get('Modality', '')}"
        ds.SeriesInstanceUID = deid.new_uid("series-without-uid\0" + key)


class Exporter:
    """One export: refs in, a file-set or ZIP out. Call :meth:`run` once.

    Args:
        refs: The files to export, in order (the first of two files with one SOP Instance UID wins).
        out: The folder or ``.zip`` to create.
        settings: Options, secret and pseudonyms.
        inputs: The paths the user gave (OUT must not be inside one).
        force: Replace an existing OUT.
        allow_burned_in: Export images that may carry burned-in text.
        report: Where to write the report (default ``OUT/DEIDENTIFICATION.txt``, inside the ZIP too).
        prior_errors: Files the index could not use, listed as left out.
        progress: Called with (done, total) from the calling thread.
        cancel: Set it to stop; nothing is left behind.
    """

    def __init__(
        self,
        refs: Sequence[FileRef],
        out: str | os.PathLike[str],
        settings: Settings,
        *,
        inputs: Sequence[str | os.PathLike[str]] = (),
        force: bool = False,
        allow_burned_in: bool = False,
        report: str | os.PathLike[str] | None = None,
        prior_errors: Sequence[tuple[str, str]] = (),
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        secret_given: bool = True,
        masks: Sequence[Mask] = (),
    ) -> None:
        self.refs = list(refs)
        self.out = check_output(out, list(inputs), force=force)
        self.settings = settings
        self.force = force
        self.allow_burned_in = allow_burned_in
        self.report = Path(os.path.abspath(report)) if report is not None else None
        self.prior_errors = list(prior_errors)
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.secret_given = secret_given
        self.as_zip = self.out.suffix.lower() == ".zip"
        self.masks = list(masks)
        self._flagged: set[FileRef] = set()

    def _tick(self, done: int, total: int) -> None:
        if self.cancel.is_set():
            raise ExportRefused("cancelled")
        if self.progress is not None:
            self.progress(done, total)

    def scan_burned_in(self) -> tuple[list[FileRef], list[FileRef]]:
        """(files that may carry burned-in text, those of them no mask covers), from headers only."""
        flagged: list[FileRef] = []
        uncovered: list[FileRef] = []
        for i, ref in enumerate(self.refs):
            self._tick(i, len(self.refs) * 3)
            try:
                ds = read_dataset(ref, stop_before_pixels=True)
            except (DicomViewerError, OSError, ValueError):
                continue  # reported by the export pass
            if may_have_burned_in(ds):
                flagged.append(ref)
                if not any(m.selects(ds, ref, True) for m in self.masks):
                    uncovered.append(ref)
        self._flagged = set(flagged)
        return flagged, uncovered

    def run(self) -> ExportResult:
        """Export. Raises :class:`ExportRefused` (nothing written) or returns what was written."""
        result = ExportResult(out=self.out)
        result.dropped = [Dropped(None, path, reason) for path, reason in self.prior_errors]
        flagged, uncovered = self.scan_burned_in()
        if uncovered and not self.allow_burned_in:
            raise BurnedInRefused(uncovered)
        result.burned_in = uncovered
        tag = secrets.token_hex(4)
        work = self.out.parent / f".{self.out.name}.partial-{tag}"
        staged_zip = self.out.parent / f".{self.out.name}.partial-{tag}.zip"
        old = self.out.parent / f".{self.out.name}.old-{tag}"
        try:
            work.mkdir()
            self._write_fileset(work, result)
            if result.instances == 0:
                raise ExportRefused("no file could be de-identified; nothing written")
            report_text = self._report_text(result, in_output=True)
            (work / REPORT_NAME).write_text(report_text, encoding="utf-8")
            if self.report is not None:
                self.report.write_text(self._report_text(result, in_output=False), encoding="utf-8")
                result.report_path = self.report
            else:
                result.report_path = self.out / REPORT_NAME if not self.as_zip else None
            final = work
            if self.as_zip:
                _zip_folder(work, staged_zip)
                final = staged_zip
            self._tick(1, 1)
            if os.path.lexists(self.out):  # --force: the new output replaces the old one only now
                os.rename(self.out, old)
            os.rename(final, self.out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                staged_zip.unlink()
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            elif os.path.lexists(old):
                old.unlink()
        return result

    def _write_fileset(self, root: Path, result: ExportResult) -> None:
        from pydicom.fileset import FileSet

        deid = Deidentifier(self.settings)
        fs = FileSet()
        fs.ID = "DEIDENTIFIED"
        node_class = _cd_patient_node_class()
        invent = _Inventions()
        seen: set[str] = set()
        patients: set[str] = set()
        studies: set[str] = set()
        series: set[str] = set()
        total = len(self.refs)
        for i, ref in enumerate(self.refs):
            self._tick(total + 2 * i, total * 3)
            try:
                ds = read_dataset(ref, stop_before_pixels=False)
                check_pixel_data(ds)
                sop = str(ds.get("SOPInstanceUID", "") or "").strip()
                if not sop:
                    raise DeidError("no SOP Instance UID")
                if sop in seen:
                    raise DeidError("another file has the same SOP Instance UID (the first was kept)")
                _ensure_uids(ds, deid)
                chosen = [m for m in self.masks if m.selects(ds, ref, ref in self._flagged)]
                if chosen:
                    apply_masks(ds, chosen)
                deid.deidentify(ds)
                if chosen:
                    _note_clean_pixel_data(ds)
                    result.masked += 1
                _add(fs, ds, _records(ds, node_class, invent))
            except (DeidError, DicomViewerError) as exc:
                result.dropped.append(Dropped(ref, ref.display, str(exc)))
                continue
            except OSError as exc:
                result.dropped.append(Dropped(ref, ref.display, f"cannot read: {exc.strerror or exc}"))
                continue
            except Exception as exc:  # noqa: BLE001 - never copy what could not be processed
                log_exception(f"anonymize: {ref.display} left out")
                result.dropped.append(Dropped(ref, ref.display, f"cannot be written ({type(exc).__name__})"))
                continue
            seen.add(sop)
            patients.add(str(ds.PatientID))
            studies.add(str(ds.StudyInstanceUID))
            series.add(str(ds.SeriesInstanceUID))
        result.instances = len(seen)
        result.patients, result.studies, result.series = len(patients), len(studies), len(series)
        if seen:
            self._tick(total * 3 - 1, total * 3)
            fs.write(root)

    def _report_text(self, result: ExportResult, *, in_output: bool) -> str:
        """The report; inside the output it names no input path (a path can name the patient)."""
        from tui_dicom import __version__

        opts = sorted(self.settings.options, key=lambda o: o.code)
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            f"De-identified copy written by tui-dicom {__version__} on {now}.",
            "",
            "Profile: DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile",
            f"  (Table E.1-1, standard edition {EDITION}), CID 7050 code {BASIC_PROFILE_CODE[0]}.",
            "Options:" if opts else "Options: none.",
        ]
        lines += [f"  {o.code} {o.meaning}" for o in opts]
        if Option.RETAIN_LONG_MODIFIED_DATES in self.settings.options:
            how = (
                f"every date moved by {self.settings.shift_days} days"
                if self.settings.shift_days is not None
                else "every date of a patient moved by the same number of days, derived from the secret "
                "(not recorded here)"
            )
            lines.append(f"Dates: {how}; times of day kept.")
        elif Option.RETAIN_LONG_FULL_DATES in self.settings.options:
            lines.append("Dates: kept as they were.")
        else:
            lines.append("Dates: removed or emptied.")
        lines += [
            "UIDs: "
            + (
                "kept."
                if Option.RETAIN_UIDS in self.settings.options
                else "replaced by 2.25 UIDs from a keyed hash: references between the files still resolve; "
                + (
                    "the same secret gives the same UIDs in every export."
                    if self.secret_given
                    else "a random secret was used: another export gets other UIDs."
                )
            ),
            "Patient names and IDs: replaced by pseudonyms.",
            "Private attributes: removed"
            + (
                " except the safe ones of PS3.15 Table E.3.10-1 that tui-dicom lists."
                if Option.RETAIN_SAFE_PRIVATE in self.settings.options
                else "."
            ),
            "Pixel data: unchanged"
            + (
                f", except {result.masked} image(s) with rectangles blacked out (Clean Pixel Data, "
                f"{CLEAN_PIXEL_DATA_CODE[0]}; stored uncompressed)."
                if result.masked
                else "."
            ),
        ]
        if result.burned_in:
            lines.append(
                f"Burned-in text: {len(result.burned_in)} image(s) may show text in their pixels "
                "(exported as asked); check them before sharing."
            )
        lines += [
            "",
            f"Written: {result.patients} patient(s), {result.studies} study(ies), {result.series} series, "
            f"{result.instances} instance(s).",
            f"Left out: {len(result.dropped)} file(s).",
        ]
        for n, d in enumerate(result.dropped, 1):
            where = f"file {n}" if in_output else d.path
            lines.append(f"  {where}: {d.reason}")
        return "\n".join(lines) + "\n"


def _zip_folder(folder: Path, target: Path) -> None:
    """ZIP ``folder``'s content (paths relative to it) into ``target``."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())


def export(
    refs: Sequence[FileRef], out: str | os.PathLike[str], settings: Settings, **kwargs: Any
) -> ExportResult:
    """One-call form of :class:`Exporter`."""
    return Exporter(refs, out, settings, **kwargs).run()
