"""Cross-check against an independent de-identifier: Orthanc's ``POST /instances/{id}/anonymize``.

Orthanc (Debian's 1.10.1) implements the Basic Profile of the 2021b edition with no options. For real
files, every public attribute Orthanc removes or replaces — at any sequence depth — must be removed or
replaced by ours too (our bare Basic Profile, 2024b). Where the two differ, the difference is listed
below with its reason, and the test fails on any difference not listed (so a new one is looked at).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from conftest import PYDICOM_CHARSETS, PYDICOM_FILES, SHARED_DATA
from orthanc import OrthancServer
from pydicom.dataset import Dataset

from tui_dicom.core.deid.engine import Deidentifier, Settings

#: (keyword of the attribute Orthanc changes and we keep) -> why ours is right
EXPLAINED: dict[str, str] = {
    # Orthanc 1.10.1 writes its own de-identification attributes; ours add to them per PS3.15 E.1.1
    "DeidentificationMethod": "both write it; the texts differ (ours names the 2024b profile and options)",
    "PatientIdentityRemoved": "both set YES",
    "LongitudinalTemporalInformationModified": "both write it (Orthanc: MODIFIED by default; ours: REMOVED "
    "without a date option, as PS3.3 C.7.1.1 defines for removed dates)",
    "DeidentificationMethodCodeSequence": "ours writes CID 7050 codes; Orthanc 1.10.1 does not",
    "SpecificCharacterSet": "Orthanc re-encodes the pseudonymised dataset (to ISO_IR 100/192); ours keeps "
    "the file's character set, which still encodes every kept value",
    "PatientName": "both replace it with a pseudonym",
    "PatientID": "both replace it with a pseudonym",
    "StudyID": "Z in Table E.1-1: Orthanc empties it, ours writes a dummy (Z allows one) because the "
    "DICOMDIR study record needs a value (Type 1, PS3.3 F.5)",
}

CASES = [
    ("pydicom", "CT_small.dcm"),
    ("pydicom", "MR_small.dcm"),
    ("pydicom", "rtplan.dcm"),
    ("pydicom", "rtstruct.dcm"),
    ("pydicom", "test-SR.dcm"),
    ("pydicom", "waveform_ecg.dcm"),
    ("charsets", "chrH31.dcm"),
    ("charsets", "chrX1.dcm"),
    ("shared", "taichi_mri_cd/DCMDT/D0000000"),
    ("shared", "ge_ct_head/01.dcm"),
]


def _path(kind: str, name: str) -> Path:
    base = {"pydicom": PYDICOM_FILES, "charsets": PYDICOM_CHARSETS, "shared": SHARED_DATA}[kind]
    return base / name


def _elements(ds: Dataset, prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, keyword, value) of every public element at any depth; items by index."""
    for elem in ds:
        if elem.tag.group & 1 or elem.tag.group in (0x0002, 0xFFFE) or elem.tag.element == 0:
            continue
        key = f"{prefix}{elem.keyword or elem.tag}"
        if elem.VR == "SQ":
            yield key, elem.keyword, len(elem.value or [])
            for n, item in enumerate(elem.value or []):
                yield from _elements(item, f"{key}[{n}].")
        else:
            yield key, elem.keyword, elem.value


def _state(before: Any, after: dict[str, Any], key: str) -> str:
    if key not in after:
        return "removed"
    return "kept" if after[key] == before else "replaced"


@pytest.mark.parametrize(("kind", "name"), CASES, ids=[n for _k, n in CASES])
def test_what_orthanc_removes_we_remove_too(orthanc: OrthancServer, kind: str, name: str) -> None:
    path = _path(kind, name)
    if not path.is_file():
        pytest.skip(f"{path} missing")
    original = pydicom.dcmread(path, force=True)
    uploaded = orthanc.upload(path)
    raw = orthanc.rest("POST", f"/instances/{uploaded['ID']}/anonymize", {"Force": True})
    theirs = pydicom.dcmread(io.BytesIO(raw))
    ours = Deidentifier(Settings(secret=b"x", options=frozenset())).deidentify(
        pydicom.dcmread(path, force=True)
    )

    before = {k: v for k, _kw, v in _elements(original)}
    keywords = {k: kw for k, kw, _v in _elements(original)}
    after_theirs = {k: v for k, _kw, v in _elements(theirs)}
    after_ours = {k: v for k, _kw, v in _elements(ours)}
    differences = []
    for key, value in before.items():
        t, o = _state(value, after_theirs, key), _state(value, after_ours, key)
        if t != "kept" and o == "kept":
            keyword = keywords[key]
            top = keyword
            if "[" in key:  # an element inside a sequence that we keep while Orthanc removed its parent
                top = key.split("[")[0]
            if keyword not in EXPLAINED and top not in EXPLAINED:
                differences.append(f"{key}: Orthanc {t}, ours kept ({str(value)[:40]!r})")
    assert not differences, "unexplained differences from Orthanc:\n" + "\n".join(differences)
    # and both agree the result is de-identified
    assert theirs.PatientIdentityRemoved == ours.PatientIdentityRemoved == "YES"
