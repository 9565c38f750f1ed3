"""The pydicom-free data dictionary, in its compact cached form, against pydicom's own dictionaries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom._dicom_dict import DicomDictionary, RepeatersDictionary
from pydicom._private_dict import private_dictionaries
from pydicom.datadict import get_entry, get_private_entry, tag_for_keyword

from tui_dicom.core.dicom import dictionary

_CACHED = (dictionary._compact_public, dictionary._compact_private, dictionary._masks)


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache folder, and no compact form kept in memory from an earlier test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for fn in _CACHED:
        fn.cache_clear()
    yield tmp_path / "tui-dicom"
    for fn in _CACHED:
        fn.cache_clear()


def _check_everything() -> None:
    for tag, entry in DicomDictionary.items():
        assert dictionary.public_entry(tag) == entry
        if entry[4] and "x" not in entry[4]:
            assert dictionary.tag_for_keyword(entry[4]) == tag_for_keyword(entry[4])
    for tag in (0x60003000, 0x60223000, 0x50020010, 0x00290010):
        try:
            public: tuple[str, ...] | None = tuple(get_entry(tag))
        except KeyError:
            public = None
        assert dictionary.public_entry(tag) == public
    for creator, table in private_dictionaries.items():
        for key in table:
            tag = int(key.replace("x", "0"), 16)
            try:
                private: tuple[str, ...] | None = tuple(get_private_entry(tag, creator)[:4])
            except KeyError:  # keys with "x" where pydicom does not look ("001110xx"): not found there
                private = None
            assert dictionary.private_entry(tag, creator) == private, (creator, key)
    assert dictionary.private_entry(0x00191002, "NO SUCH CREATOR") is None
    assert dictionary.tag_for_keyword("NoSuchKeyword") is None
    assert dictionary.tag_for_keyword("Patient") is None  # a prefix of keywords is not a keyword
    assert dictionary.public_entry(0x00110010) is None


def test_compact_form_is_built_then_read_and_matches_pydicom(fresh_cache: Path) -> None:
    assert len(RepeatersDictionary) > 0
    _check_everything()  # built on first use and written
    files = sorted(p.name for p in fresh_cache.iterdir())
    assert len(files) == 2 and all(f.startswith("dict-") and f.endswith(".bin") for f in files)
    for fn in _CACHED:
        fn.cache_clear()
    _check_everything()  # now read back from the files


def test_unwritable_cache_still_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go: nothing can be written under it")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    for fn in _CACHED:
        fn.cache_clear()
    try:
        assert dictionary.public_entry(0x00100010) == DicomDictionary[0x00100010]
        assert dictionary.tag_for_keyword("PatientName") == 0x00100010
        assert dictionary.private_entry(0x00191002, "GEMS_ACQU_01") == tuple(
            get_private_entry(0x00191002, "GEMS_ACQU_01")[:4]
        )
        assert blocker.is_file()
    finally:
        for fn in _CACHED:
            fn.cache_clear()


def test_corrupt_cache_file_is_rebuilt(fresh_cache: Path) -> None:
    assert dictionary.tag_for_keyword("PatientID") == 0x00100020
    for path in fresh_cache.iterdir():
        path.write_bytes(b"not marshal data")
    for fn in _CACHED:
        fn.cache_clear()
    assert dictionary.tag_for_keyword("PatientID") == 0x00100020
    assert dictionary.private_entry(0x00191002, "GEMS_ACQU_01") == tuple(
        get_private_entry(0x00191002, "GEMS_ACQU_01")[:4]
    )
