"""The resource budget: parsing ``--resource-limit``/``TUI_DICOM_LIMITS``, the one-line refusal message."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import pytest

from tui_dicom.core import limits
from tui_dicom.core.errors import DicomViewerError


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    saved = limits.current()
    yield
    limits.set_limits(saved)


def test_defaults_open_real_studies_and_refuse_known_bombs() -> None:
    lim = limits.Limits()
    mammogram = 4096 * 4096 * 2  # 16-bit 4,096²
    assert mammogram <= lim.frame_bytes
    assert lim.frame_bytes < 11_000 * 11_000 * 2  # the sparse 16-bit bomb of issue 19
    assert lim.frame_bytes < 16_000 * 16_000
    assert lim.dicomdir_records >= 30_000
    assert lim.element_values < 1_000_000


def test_spec_units_and_dashes() -> None:
    lim = limits.parse_spec(
        ["frame-bytes=256M,element_values=2000000", "decode-seconds=1.5"], limits.Limits()
    )
    assert lim.frame_bytes == 256 * 1024**2
    assert lim.element_values == 2_000_000
    assert lim.decode_seconds == 1.5
    assert limits.parse_spec(["inflated-bytes=1G"], limits.Limits()).inflated_bytes == 1024**3


@pytest.mark.parametrize(
    "item", ["nonsense=1", "frame-bytes", "frame-bytes=-1", "frame-bytes=1Q", "element-values=5M"]
)
def test_bad_spec_is_a_value_error(item: str) -> None:
    with pytest.raises(ValueError, match="limit"):
        limits.parse_spec([item], limits.Limits())


def test_configure_env_then_options_and_export() -> None:
    lim = limits.configure(["frame-bytes=128M"], {limits.ENV_VAR: "frame-bytes=32M,lut-entries=4096"})
    assert lim.frame_bytes == 128 * 1024**2
    assert lim.lut_entries == 4096
    assert limits.current() == lim
    import os

    exported = limits.parse_spec([os.environ[limits.ENV_VAR]], limits.Limits())
    assert exported == lim


def test_message_is_one_line_naming_file_dimension_limit() -> None:
    err = limits.LimitExceeded("scan.dcm", "frame_bytes", 242_000_000, 64 * 1024**2)
    text = str(err)
    assert "\n" not in text
    assert text.startswith("scan.dcm: ")
    assert "decoded frame" in text and "64 MB" in text and "242,000,000" in text
    assert "--resource-limit frame-bytes=" in text
    assert isinstance(err, DicomViewerError)
    again = pickle.loads(pickle.dumps(err))  # crosses process boundaries (decoder children)
    assert str(again) == text


def test_check_uses_current_limits() -> None:
    limits.set_limits(limits.Limits(element_values=10))
    limits.check("f", "element_values", 10)
    with pytest.raises(limits.LimitExceeded, match="values in one multi-valued element"):
        limits.check("f", "element_values", 11)
