"""The de-identification engine: Table E.1-1 applied to one dataset, at every sequence depth.

:class:`Deidentifier` holds what must stay consistent across a whole export — the UID map, the
per-patient pseudonyms and date shifts — all derived from one secret with a keyed hash (HMAC-SHA256),
so the same input gives the same output within an export and, with the same secret, across exports.

How each action is carried out (PS3.15 E.1.1):

- ``X`` removes; ``Z`` empties (an empty sequence for SQ); ``D`` writes a dummy value of the VR
  (``ANONYMIZED``, ``19000101``, ``0`` ...) and empties a sequence (its items can hold free text the
  table does not list, such as an SR's Text Value; Orthanc does the same);
  ``K`` keeps (a sequence's items are cleaned); ``U`` maps each UID to ``2.25.<keyed hash>``.
- ``C``: dates and date-times are shifted by the patient's offset (Retain Longitudinal Temporal
  Information with Modified Dates); times of day are kept (a whole-day shift does not change them);
  text is kept with every identifying value of the same dataset (name components, IDs, birth date,
  institution ...) replaced by ``*``; other VRs get a dummy.
- Combinations keep the IOD valid without an IOD table: the first choice (``X``, or ``Z`` for
  ``Z/D``) unless :data:`CONFORMANCE` names the attribute as Type 1 or 2 where it occurs (PS3.3); a
  ``X/Z/U*`` reference sequence is kept with its UIDs replaced, so references still resolve.
- Attributes the table does not list are kept, except three kinds that identify wherever they are: a
  date or time (treated like Study Date), a person name (removed), and any private attribute (removed
  unless Retain Safe Private keeps it). Overlay groups (60xx) go whole when their data goes: an
  overlay header without its bits would be shown as an empty overlay.

Values that are no DICOM value at all — control characters in names and codes, a text value many
times longer than its VR allows — make the file refused (:class:`DeidError`): a hostile or broken file
is left out, never passed through.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tui_dicom.core.deid.table import (
    BASIC_PROFILE_CODE,
    DATE_OPTIONS,
    Option,
    Rule,
    Table,
    load_table,
    resolve_option_action,
    safe_private,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

#: the options a second opinion needs: dates kept in step (shifted), age/sex/size/weight kept
SECOND_OPINION = frozenset({Option.RETAIN_LONG_MODIFIED_DATES, Option.RETAIN_PATIENT_CHARACTERISTICS})

TEMPORAL_VRS = frozenset({"DA", "DT", "TM"})
TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "PN"})
_STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"})
#: longest value a VR allows (PS3.5 Table 6.2-1); PN counts its three component groups
_MAX_CHARS = {
    "AE": 16,
    "AS": 4,
    "CS": 16,
    "DA": 18,
    "DS": 16,
    "DT": 54,
    "IS": 12,
    "LO": 64,
    "LT": 10240,
    "PN": 3 * 64 + 2,
    "SH": 16,
    "ST": 1024,
    "TM": 28,
    "UI": 64,
}
#: a value this many times longer than its VR allows is no sloppy writer's value: the file is refused
_TOO_LONG_FACTOR = 16
#: text VRs may hold TAB, LF, FF, CR and ESC (ISO 2022); no other C0 control and no DEL
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")
_CONTROL_CODE = re.compile("[\x00-\x1a\x1c-\x1f\x7f]")  # names and codes: only ESC (ISO 2022) allowed

_DUMMY_TEXT = "ANONYMIZED"
_DUMMY = {
    "AE": _DUMMY_TEXT,
    "AS": "000Y",
    "CS": _DUMMY_TEXT,
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": _DUMMY_TEXT,
    "LT": _DUMMY_TEXT,
    "PN": _DUMMY_TEXT,
    "SH": _DUMMY_TEXT,
    "ST": _DUMMY_TEXT,
    "TM": "000000",
    "UC": _DUMMY_TEXT,
    "UR": "urn:x-anonymized",
    "UT": _DUMMY_TEXT,
}

_SR_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
_RT_PLAN_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.481.5", "1.2.840.10008.5.1.4.1.1.481.8"})

#: Combination rows whose weaker action an IOD needs (PS3.3): tag -> (action, where). Every other
#: combination resolves to its first choice. "enhanced": the Enhanced General Equipment, Enhanced
#: image and Acquisition Context modules of multi-frame IODs (Type 1/2 there, Type 3 elsewhere).
CONFORMANCE: dict[int, tuple[str, str]] = {
    0x00181000: ("D", "enhanced"),  # Device Serial Number: Type 1 in Enhanced General Equipment
    0x0008002A: ("D", "enhanced"),  # Acquisition DateTime: Type 1C in enhanced image modules
    0x00080023: ("D", "enhanced-or-sr"),  # Content Date: Type 1 in enhanced images and SR documents
    0x00080033: ("D", "enhanced-or-sr"),  # Content Time: likewise
    0x00400555: ("Z", "always"),  # Acquisition Context Sequence: Type 2 where its module is used
    0x300A00B2: ("Z", "always"),  # Treatment Machine Name: Type 2 in RT beams
    0x00102203: ("Z", "always"),  # Patient's Sex Neutered: Type 2C (non-human subjects)
    0x300E0008: ("Z", "always"),  # Reviewer Name: Type 2C in RT approval
    0x300A0006: ("D", "rt-plan"),  # RT Plan Date: Type 2 in RT General Plan
    0x300A0007: ("D", "rt-plan"),  # RT Plan Time: likewise
    0x00081140: ("U*", "always"),  # Referenced Image Sequence: kept, its UIDs replaced
    0x00082112: ("U*", "always"),  # Source Image Sequence: likewise
}

#: values whose text identifies: their content is blanked out of any descriptor Clean keeps
_IDENTIFYING_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "AccessionNumber",
    "StudyID",
    "PatientBirthDate",
    "InstitutionName",
    "InstitutionAddress",
    "StationName",
    "DeviceSerialNumber",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
    "IssuerOfPatientID",
    "RequestedProcedureID",
    "PerformedProcedureStepID",
    "ScheduledProcedureStepID",
    "AdmissionID",
    "ClinicalTrialSubjectID",
    "InstitutionalDepartmentName",
)

PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020


class DeidError(Exception):
    """A file that cannot be de-identified; ``str(err)`` is a one-line reason without any value."""


@dataclass(frozen=True)
class Settings:
    """What the user chose: options, the secret and the pseudonym overrides."""

    secret: bytes
    options: frozenset[Option] = SECOND_OPINION
    #: a fixed date shift in days for every patient (negative: earlier); None: derived per patient
    shift_days: int | None = None
    patient_name: str | None = None
    patient_id: str | None = None

    def __post_init__(self) -> None:
        if all(o in self.options for o in DATE_OPTIONS):
            raise ValueError("the Full Dates and Modified Dates options exclude each other")


@dataclass
class _Context:
    """Per-dataset facts the rules need."""

    enhanced: bool
    sr: bool
    rt_plan: bool
    shift: int
    tokens: list[str] = field(default_factory=list)


def _keyed(secret: bytes, purpose: str, text: str) -> bytes:
    return hmac.new(
        secret, purpose.encode() + b"\0" + text.encode("utf-8", "surrogatepass"), hashlib.sha256
    ).digest()


class Deidentifier:
    """Apply the profile to datasets; one instance per export keeps UIDs and pseudonyms consistent.

    Thread-safety: not thread-safe (the UID cache is a plain dict); use one per worker thread.
    """

    def __init__(self, settings: Settings, table: Table | None = None) -> None:
        self.settings = settings
        self.table = table if table is not None else load_table()
        self._uids: dict[str, str] = {}
        self._safe_private = safe_private() if Option.RETAIN_SAFE_PRIVATE in settings.options else frozenset()

    # -------------------------------------------------------------------------- consistent mappings

    def new_uid(self, uid: str) -> str:
        """The replacement of ``uid``: ``2.25.`` and a 128-bit keyed hash (the same for the same secret)."""
        uid = uid.strip("\0 ")
        found = self._uids.get(uid)
        if found is None:
            digest = _keyed(self.settings.secret, "uid", uid)
            found = "2.25." + str(int.from_bytes(digest[:16], "big"))
            self._uids[uid] = found
        return found

    @staticmethod
    def patient_key(ds: Dataset) -> str:
        """What identifies a patient across files: Patient ID, else Patient Name (as the index groups them)."""
        pid = str(ds.get("PatientID", "") or "").strip()
        if pid:
            return "id:" + pid
        return "name:" + str(ds.get("PatientName", "") or "").strip()

    def pseudonym(self, key: str) -> tuple[str, str]:
        """(Patient Name, Patient ID) for a patient: the overrides, else a stable keyed pseudonym."""
        digest = _keyed(self.settings.secret, "patient", key).hex().upper()
        name = self.settings.patient_name or f"ANONYMOUS^{digest[:8]}"
        pid = self.settings.patient_id or f"ANON{digest[8:20]}"
        return name, pid

    def date_shift(self, key: str) -> int:
        """Days to add to every date of this patient: ``--shift-days``, else between -3650 and -366."""
        if self.settings.shift_days is not None:
            return self.settings.shift_days
        digest = _keyed(self.settings.secret, "shift", key)
        return -(366 + int.from_bytes(digest[:4], "big") % 3285)

    # ------------------------------------------------------------------------------------- the walk

    def deidentify(self, ds: Dataset) -> Dataset:
        """De-identify ``ds`` in place (file meta included) and return it.

        Raises:
            DeidError: a value makes the file unfit to export (the reason names the attribute only).
        """
        try:
            validate(ds)
            key = self.patient_key(ds)
            ctx = _Context(
                enhanced=0x52009230 in ds,
                sr=str(ds.get("SOPClassUID", "")).startswith(_SR_CLASS_PREFIX),
                rt_plan=str(ds.get("SOPClassUID", "")) in _RT_PLAN_CLASSES,
                shift=self.date_shift(key),
                tokens=identifying_tokens(ds) if Option.CLEAN_DESCRIPTORS in self.settings.options else [],
            )
            name, pid = self.pseudonym(key)
            self._walk(ds, ctx)
            self._mark(ds, name, pid)
            self._file_meta(ds)
        except DeidError:
            raise
        except RecursionError:
            raise DeidError("sequences are nested too deeply") from None
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types on values it cannot convert
            raise DeidError(f"a value cannot be read or written ({type(exc).__name__})") from exc
        return ds

    def action_for(self, rule: Rule | None, tag: int, vr: str, ctx: _Context) -> str:
        """The single action (``X``, ``Z``, ``D``, ``K``, ``C``, ``U`` or ``U*``) for one element."""
        options = self.settings.options
        temporal = vr in TEMPORAL_VRS
        if rule is None:
            if temporal:  # a date anywhere identifies: treated as Study Date is
                if Option.RETAIN_LONG_FULL_DATES in options:
                    return "K"
                return "C" if Option.RETAIN_LONG_MODIFIED_DATES in options else "X"
            if vr == "PN":
                return "X"
            return "K"
        action = resolve_option_action(rule, options, temporal=temporal)
        if "/" not in action:
            return action
        need = CONFORMANCE.get(tag)
        if need is not None:
            weaker, where = need
            if (
                where == "always"
                or (where == "enhanced" and ctx.enhanced)
                or (where == "enhanced-or-sr" and (ctx.enhanced or ctx.sr))
                or (where == "rt-plan" and ctx.rt_plan)
            ):
                return weaker
        return action.split("/")[0]

    def _walk(self, ds: Dataset, ctx: _Context) -> None:
        private_kept: set[tuple[int, int]] = set()  # (group, block) of kept private attributes
        for key in list(ds.keys()):
            tag = int(key)
            group, elem_no = tag >> 16, tag & 0xFFFF
            if group in (0x0000, 0x0002) or elem_no == 0x0000 or group == 0xFFFE:
                del ds[tag]  # command group, misplaced meta, group lengths: none belongs in a stored dataset
                continue
            if group & 1:
                if 0x0010 <= elem_no <= 0x00FF:
                    continue  # private creators: decided after their blocks
                if self._keep_private(ds, tag):
                    private_kept.add((group, elem_no >> 8))
                else:
                    del ds[tag]
                continue
            if 0x6000 <= group <= 0x601E and not group & 1:
                del ds[tag]  # overlay: its data and comments are X, the rest is nothing without them
                continue
            elem = ds[tag]
            vr = elem.VR
            action = self.action_for(self.table.rule_for(tag), tag, vr, ctx)
            self._apply(ds, tag, elem, vr, action, ctx)
        for key in list(ds.keys()):
            tag = int(key)
            group, elem_no = tag >> 16, tag & 0xFFFF
            if group & 1 and 0x0010 <= elem_no <= 0x00FF and (group, elem_no) not in private_kept:
                del ds[tag]

    def _keep_private(self, ds: Dataset, tag: int) -> bool:
        if not self._safe_private:
            return False
        group, elem_no = tag >> 16, tag & 0xFFFF
        creator_tag = (group << 16) | (elem_no >> 8)
        if creator_tag not in ds:
            return False
        creator = str(ds[creator_tag].value).strip()
        return (creator, group, elem_no & 0xFF) in self._safe_private

    def _apply(self, ds: Dataset, tag: int, elem: Any, vr: str, action: str, ctx: _Context) -> None:
        if action == "X":
            del ds[tag]
        elif vr == "SQ":
            if action in ("Z", "D"):
                # D on a sequence (Content Sequence, Verifying Observer Sequence ...): its items hold
                # free text the table does not list (Text Value); Clean Structured Content is not offered
                elem.value = []
            else:  # K, C, U*: keep the sequence, clean every item
                for item in elem.value:
                    self._walk(item, ctx)
        elif action == "K":
            pass
        elif action == "Z":
            elem.value = None if vr not in _STRING_VRS else ""
        elif action in ("U", "U*"):
            if vr == "UI":
                elem.value = _map_values(elem.value, self.new_uid)
            else:
                elem.value = _dummy(vr)
        elif action == "D":
            elem.value = self.new_uid(str(elem.value)) if vr == "UI" else _dummy(vr)
        elif action == "C":
            self._clean(elem, vr, ctx)
        else:  # pragma: no cover - parse_rules refuses unknown actions
            raise DeidError(f"unknown action {action}")

    def _clean(self, elem: Any, vr: str, ctx: _Context) -> None:
        if vr in ("DA", "DT"):
            if Option.RETAIN_LONG_MODIFIED_DATES in self.settings.options:
                elem.value = _map_values(elem.value, lambda v: shift_date(v, vr, ctx.shift))
            else:
                elem.value = ""
        elif vr == "TM":
            if Option.RETAIN_LONG_MODIFIED_DATES not in self.settings.options:
                elem.value = ""
        elif vr in TEXT_VRS:
            elem.value = _map_values(elem.value, lambda v: scrub(str(v), ctx.tokens))
        else:
            elem.value = _dummy(vr)

    def _mark(self, ds: Dataset, name: str, pid: str) -> None:
        """Pseudonyms and the De-identification Method attributes (PS3.15 E.1.1, PS3.3 C.7.1.1)."""
        from pydicom.dataset import Dataset as _Dataset

        for tag in (PATIENT_NAME, PATIENT_ID):
            if tag in ds:
                del ds[tag]  # a value read as UN keeps that VR if only its value is set
        ds.PatientName = name
        ds.PatientID = pid
        if "StudyID" in ds and not str(ds.StudyID or ""):
            uid = str(ds.get("StudyInstanceUID", "") or "")
            ds.StudyID = "S" + hashlib.sha256(uid.encode()).hexdigest()[:7].upper() if uid else "S1"
        ds.PatientIdentityRemoved = "YES"
        options = sorted(self.settings.options, key=lambda o: o.code)
        methods = [BASIC_PROFILE_CODE[1]] + [o.meaning for o in options]
        previous = list(ds.get("DeidentificationMethod", []) or []) if "DeidentificationMethod" in ds else []
        if isinstance(previous, str):
            previous = [previous]
        ds.DeidentificationMethod = [str(p) for p in previous] + methods
        seq = list(ds.get("DeidentificationMethodCodeSequence", []) or [])
        for code, meaning in [BASIC_PROFILE_CODE] + [(o.code, o.meaning) for o in options]:
            item = _Dataset()
            item.CodeValue = code
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            seq.append(item)
        ds.DeidentificationMethodCodeSequence = seq
        if Option.RETAIN_LONG_FULL_DATES in self.settings.options:
            ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
        elif Option.RETAIN_LONG_MODIFIED_DATES in self.settings.options:
            ds.LongitudinalTemporalInformationModified = "MODIFIED"
        else:
            ds.LongitudinalTemporalInformationModified = "REMOVED"

    def _file_meta(self, ds: Dataset) -> None:
        """File meta in step with the dataset; nothing of the sender's kept."""
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import (
            ExplicitVRBigEndian,
            ExplicitVRLittleEndian,
            ImplicitVRLittleEndian,
        )

        old = getattr(ds, "file_meta", None)
        meta = FileMetaDataset()
        ts = old.get("TransferSyntaxUID") if old is not None else None
        if not ts:
            implicit, little = getattr(ds, "original_encoding", (False, True))
            if implicit:
                ts = ImplicitVRLittleEndian
            else:
                ts = ExplicitVRLittleEndian if little is not False else ExplicitVRBigEndian
        meta.TransferSyntaxUID = ts
        if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
            raise DeidError("no SOP Class UID or SOP Instance UID")
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta = meta


def _map_values(value: Any, fn: Any) -> Any:
    """Apply ``fn`` to each value of a possibly multi-valued element; an empty value stays empty."""
    if value is None or value == "":
        return value
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [fn(v) for v in value]
    return fn(value)


def _dummy(vr: str) -> Any:
    if vr in _DUMMY:
        return _DUMMY[vr]
    if vr in _NUMERIC_VRS:
        return 0
    if vr == "AT":
        return None
    return b"\0\0"  # OB, OW, UN, ...: two zero bytes, an even length


_DA = re.compile(r"^(\d{4})\.?(\d{2})\.?(\d{2})$")


def shift_date(value: Any, vr: str, days: int) -> str:
    """``value`` (DA or DT, or a range ``A-B``) moved by ``days``; "" when it is not a full date."""
    text = str(value).strip()
    if not text:
        return ""
    if vr == "DA" and "-" in text:
        return "-".join(shift_date(part, vr, days) if part else "" for part in text.split("-", 1))
    if vr == "DA":
        m = _DA.match(text)
        if not m:
            return ""
        head, rest = m.group(1) + m.group(2) + m.group(3), ""
    else:
        if len(text) < 8 or not text[:8].isdigit():
            return ""
        head, rest = text[:8], text[8:]
    try:
        day = _dt.date(int(head[:4]), int(head[4:6]), int(head[6:8]))
        shifted = day + _dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return ""
    return f"{shifted.year:04d}{shifted.month:02d}{shifted.day:02d}" + rest


def scrub(text: str, tokens: Iterable[str]) -> str:
    """``text`` with every token (case-insensitive) replaced by ``*``."""
    for token in tokens:
        text = re.sub(re.escape(token), "*", text, flags=re.IGNORECASE)
    return text


def identifying_tokens(ds: Dataset) -> list[str]:
    """Every identifying piece of text of ``ds``: person-name components at any depth and ID-like values.

    Longest first (a name is replaced before its parts). ASCII pieces shorter than 3 characters are
    left out (they would blank unrelated letters); a 2-character CJK family name is kept.
    """
    found: set[str] = set()

    def add(text: str) -> None:
        text = text.strip()
        if len(text) >= 3 or (len(text) == 2 and not text.isascii()):
            found.add(text)

    def walk(item: Dataset) -> None:
        for tag in list(item.keys()):
            if _removed_whatever(int(tag)):
                continue
            elem = item[tag]
            if elem.VR == "SQ":
                for sub in elem.value or []:
                    walk(sub)
            elif elem.VR == "PN" and elem.value:
                values = elem.value if elem.VM > 1 else [elem.value]
                for pn in values:
                    for part in re.split(r"[\^=]", str(pn)):
                        add(part)
                        for word in part.split():
                            add(word)

    walk(ds)
    for keyword in _IDENTIFYING_KEYWORDS:
        value = ds.get(keyword)
        if value:
            for v in (
                value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
            ):
                add(str(v))
    birth = str(ds.get("PatientBirthDate", "") or "")
    if len(birth) == 8 and birth.isdigit():
        y, m, d = birth[:4], birth[4:6], birth[6:]
        for form in (f"{y}-{m}-{d}", f"{d}.{m}.{y}", f"{m}/{d}/{y}", f"{d}/{m}/{y}", f"{y}.{m}.{d}"):
            found.add(form)
    return sorted(found, key=lambda t: (-len(t), t))


def _removed_whatever(tag: int) -> bool:
    """Private, curve (50xx) and overlay (60xx) attributes, and group lengths: gone whatever they hold."""
    group = tag >> 16
    return bool(group & 1) or 0x5000 <= group <= 0x60FF or group in (0x0000, 0x0002) or not tag & 0xFFFF


def validate(ds: Dataset) -> None:
    """Refuse values no DICOM writer produces: control characters, text many times its VR's length.

    Raises:
        DeidError: naming the attribute, never its value.
    """
    from pydicom.datadict import dictionary_VR, keyword_for_tag

    def name(tag: int) -> str:
        return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"

    def check(item: Dataset, depth: int) -> None:
        for tag in list(item.keys()):
            if _removed_whatever(int(tag)):
                continue  # private, curve and overlay attributes are removed whatever they hold
            elem = item[tag]
            vr = elem.VR
            if vr == "SQ":
                for sub in elem.value or []:
                    check(sub, depth + 1)
                continue
            if vr == "UN":  # a value too long for its VR's length field is read as UN: judge it as its VR
                try:
                    vr = dictionary_VR(int(tag)).split(" or ")[0]
                except KeyError:
                    continue
            if vr not in _STRING_VRS:
                continue
            value = elem.value
            if isinstance(value, (bytes, bytearray)):
                values: list[Any] = [bytes(value).decode("latin-1")]
            else:
                values = list(value) if elem.VM > 1 else [value]
            limit = _MAX_CHARS.get(vr)
            for one in values:
                if one is None:
                    continue
                text = str(one)
                if limit is not None and len(text) > limit * _TOO_LONG_FACTOR:
                    raise DeidError(
                        f"{name(int(elem.tag))} is {len(text):,} characters long ({vr} allows {limit})"
                    )
                pattern = _CONTROL if vr in ("LT", "ST", "UT", "UC") else _CONTROL_CODE
                if pattern.search(text):
                    raise DeidError(f"{name(int(elem.tag))} contains control characters")

    check(ds, 0)
