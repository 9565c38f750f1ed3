"""The hierarchy every part of tui-dicom shares: Patient → Study → Series → Instance (→ frames).

The index (:mod:`tui_dicom.core.hierarchy.index`) fills it from a DICOMDIR, a folder scan, a ZIP archive or single
files. Values are plain Python strings/numbers already decoded with SpecificCharacterSet; they are
untrusted text: show them through :func:`tui_dicom.core.safe.safe_text`.

A *slice* is one displayable frame: ``SliceRef(instance, frame)``; a multi-frame instance contributes
one slice per frame. :meth:`Series.slices` returns them in display order (along the slice normal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tui_dicom.core.dicom.source import FileRef

Vec3 = tuple[float, float, float]


@dataclass
class Instance:
    """One SOP instance (a file). Values not known (e.g. absent from a DICOMDIR record) are None."""

    ref: FileRef
    sop_instance_uid: str = ""
    sop_class_uid: str = ""
    transfer_syntax_uid: str = ""
    instance_number: int | None = None
    rows: int | None = None
    columns: int | None = None
    frames: int = 1
    position: Vec3 | None = None
    orientation: tuple[float, float, float, float, float, float] | None = None
    #: per-frame positions (enhanced multi-frame), len == frames when known
    frame_positions: list[Vec3 | None] | None = None
    slice_location: float | None = None
    slice_thickness: float | None = None
    pixel_spacing: tuple[float, float] | None = None
    #: True when the values above came from the file's own header (not only a DICOMDIR record)
    header_read: bool = False

    @property
    def size_text(self) -> str:
        """``"512×512"`` or ``"?"``."""
        if self.rows and self.columns:
            return f"{self.columns}×{self.rows}"
        return "?"


@dataclass(frozen=True)
class SliceRef:
    """One displayable frame: ``frame`` is 0-based within ``instance``."""

    instance: Instance
    frame: int = 0

    @property
    def key(self) -> tuple[FileRef, int]:
        """Hashable identity used for caches: (file, frame)."""
        return (self.instance.ref, self.frame)

    @property
    def position(self) -> Vec3 | None:
        """The frame's ImagePositionPatient, if known."""
        inst = self.instance
        if inst.frame_positions and self.frame < len(inst.frame_positions):
            return inst.frame_positions[self.frame]
        return inst.position


@dataclass
class Series:
    """A series: instances in display order."""

    series_instance_uid: str
    series_number: int | None = None
    modality: str = ""
    series_description: str = ""
    body_part: str = ""
    instances: list[Instance] = field(default_factory=list)

    @property
    def frame_count(self) -> int:
        """Number of slices (frames of all instances)."""
        return sum(max(1, i.frames) for i in self.instances)

    def slices(self) -> list[SliceRef]:
        """Every frame of every instance, in display order."""
        return [SliceRef(inst, f) for inst in self.instances for f in range(max(1, inst.frames))]

    def label(self) -> str:
        """``"MR #3 T2 AX (17)"``: modality, number, description and image count (untrusted text)."""
        parts = [self.modality or "?"]
        if self.series_number is not None:
            parts.append(f"#{self.series_number}")
        if self.series_description:
            parts.append(self.series_description)
        count = len(self.instances)
        frames = self.frame_count
        parts.append(f"({count})" if frames == count else f"({count} img, {frames} fr)")
        return " ".join(parts)


@dataclass
class Study:
    """A study and its series."""

    study_instance_uid: str
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    study_id: str = ""
    series: list[Series] = field(default_factory=list)


@dataclass
class Patient:
    """A patient and their studies."""

    patient_id: str = ""
    patient_name: str = ""
    birth_date: str = ""
    sex: str = ""
    studies: list[Study] = field(default_factory=list)


@dataclass(frozen=True)
class IndexProblem:
    """A file (or record) that could not be used, with a plain-language reason."""

    path: str
    reason: str


@dataclass
class Hierarchy:
    """The result of indexing: patients in display order, plus every problem found."""

    patients: list[Patient] = field(default_factory=list)
    errors: list[IndexProblem] = field(default_factory=list)
    #: files passed over rather than reported in ``errors``: not DICOM, with a name that says so
    #: (README, ``.txt``, ``.html``, hidden files); ``ls`` still counts them, so an empty result is explained
    skipped: list[IndexProblem] = field(default_factory=list)

    def all_series(self) -> list[Series]:
        """Every series in display order."""
        return [se for p in self.patients for st in p.studies for se in st.series]

    def instance_count(self) -> int:
        """Number of instances in the hierarchy."""
        return sum(len(se.instances) for se in self.all_series())


# ---------------------------------------------------------------------------------------------- order


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else math.inf


def slice_normal(orientation: tuple[float, ...] | None) -> Vec3 | None:
    """The normal of ImageOrientationPatient (row × column direction), or None."""
    if not orientation or len(orientation) != 6:
        return None
    r = orientation[:3]
    c = orientation[3:]
    n = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    norm = math.sqrt(sum(x * x for x in n))
    if not norm or not math.isfinite(norm):
        return None
    return (n[0] / norm, n[1] / norm, n[2] / norm)


def sort_instances(instances: list[Instance]) -> None:
    """Sort in place: along the slice normal, then InstanceNumber, then file name."""
    normal = None
    for inst in instances:
        normal = slice_normal(inst.orientation)
        if normal:
            break

    def key(inst: Instance) -> tuple[float, float, str, str]:
        distance = math.inf
        position = inst.position
        if position is None and inst.frame_positions:  # enhanced multi-frame: its first frame
            position = next((p for p in inst.frame_positions if p is not None), None)
        if normal and position:
            distance = sum(p * n for p, n in zip(position, normal, strict=False))
        return (distance, _num(inst.instance_number), inst.ref.name, inst.ref.display)

    instances.sort(key=key)


def sort_hierarchy(patients: list[Patient]) -> None:
    """Sort in place: patients by name, studies by date/time, series by number, instances by position."""
    patients.sort(key=lambda p: (p.patient_name.casefold(), p.patient_id))
    for p in patients:
        p.studies.sort(key=lambda s: (s.study_date or "99999999", s.study_time, s.study_instance_uid))
        for st in p.studies:
            st.series.sort(key=lambda s: (_num(s.series_number), s.series_description, s.series_instance_uid))
            for se in st.series:
                sort_instances(se.instances)
