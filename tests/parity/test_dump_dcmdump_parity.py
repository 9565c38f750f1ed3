"""Parity of ``tui-dicom dump`` with DCMTK's ``dcmdump +U8 +L -Un`` on every file dcmdump reads.

For each file in pydicom's test files (incl. charset_files and dicomdirtests) and ``../shared/data``:
every top-level element dcmdump lists (except Pixel Data and group lengths) must appear in our dump
with the same tag, VR and value, after normalising whitespace, number formatting and character set.
Differences that are understood are listed in :data:`KNOWN` with their reason; the test prints every
difference and fails on any that is not explained.

When DCMTK cannot convert a character set to UTF-8 (its iconv lacks ISO 2022 IR 87/149/58), the file is
dumped without ``+U8`` and the raw values are decoded with Python's own ``iso2022_jp``/``euc_kr``/...
codecs, which pydicom does not use for them (an independent reference).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tui_dicom.commands import dump as dump_cmd

DCMDUMP = shutil.which("dcmdump")
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

#: (file name, tag) or (None, tag) for every file -> reason why our value differs from dcmdump's.
KNOWN: dict[tuple[str | None, int], str] = {}
#: differences that follow from how dcmdump is run, checked by rule in :func:`known_reason`
U8_CHARSET = "dcmdump +U8 converts the data set to UTF-8 and sets/adds SpecificCharacterSet 'ISO_IR 192'"
PN_TRAILING = "pydicom drops an empty trailing PN component group ('Name=' -> 'Name')"

_DCM_LINE = re.compile(r"^\(([0-9a-f]{4}),([0-9a-f]{4})\) (\w\w) (.*?)\s*#\s*(\S+), (\d+) (\S+)$")
_OUR_LINE = re.compile(r"^\(([0-9A-F]{4}),([0-9A-F]{4})\) (\S+) (\S+)  (.*)$")
_NUMERIC = {"US", "SS", "UL", "SL", "SV", "UV", "FL", "FD", "DS", "IS", "OF", "OD", "OL", "OV"}
_BINARY = {"OB", "OW", "UN", "OL", "OV", "OD", "OF"}


# the whole module is slow (measured in the quick loop: 457 files, each through dcmdump and dump)
pytestmark = pytest.mark.slow


def _files() -> list[Path]:
    import pydicom.data

    roots = [
        Path(pydicom.data.__file__).parent / "test_files",
        Path(pydicom.data.__file__).parent / "charset_files",
    ]
    if SHARED.is_dir():
        roots.append(SHARED)
    out = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix.lower() in {
                ".txt",
                ".md",
                ".json",
                ".gz",
                ".icc",
                ".dump",
                ".py",
            }:
                continue
            if path.name in {"LICENSE", "README", "FileInfo.txt"} or path.name.startswith("."):
                continue
            out.append(path)
    return out


def _id(path: Path) -> str:
    for root in (SHARED,):
        if path.is_relative_to(root):
            return f"shared/{path.relative_to(root)}"
    return (
        path.name
        if path.parent.name in ("test_files", "charset_files")
        else f"{path.parent.name}/{path.name}"
    )


_PY_CODECS = {
    "ISO 2022 IR 87": "iso2022_jp",
    "ISO 2022 IR 13": "iso2022_jp",
    "ISO 2022 IR 159": "iso2022_jp_2",
    "ISO 2022 IR 149": "iso2022_kr",
    "ISO 2022 IR 58": "iso2022_jp_2",
}


def _decode_raw(raw: bytes, charsets: list[str]) -> str:
    """Decode a raw (not +U8) dcmdump line with Python's stdlib codecs."""
    if any("IR 149" in c for c in charsets):
        # ISO 2022 IR 149 in DICOM is EUC-KR with escape sequences ESC $ ) C
        return raw.replace(b"\x1b$)C", b"").decode("euc_kr", "replace")
    if any("IR 58" in c for c in charsets):
        return raw.replace(b"\x1b$)A", b"").decode("gb2312", "replace")
    # JIS X 0201 katakana (ISO 2022 IR 13 in G1, ESC ) I): bytes 0xA1-0xDF are half-width katakana
    text = raw.replace(b"\x1b)I", b"")
    out = []
    for part in re.split(rb"(\x1b\$B.*?(?=\x1b|$))", text):
        if part.startswith(b"\x1b$B"):
            out.append((part + b"\x1b(B").decode("iso2022_jp", "replace"))
        else:
            out.append(part.replace(b"\x1b(B", b"").replace(b"\x1b(J", b"").decode("cp932", "replace"))
    return "".join(out)


def _dcmdump(path: Path) -> tuple[list[tuple[int, str, str]], str] | None:
    """Top-level elements dcmdump lists: (tag, VR, value) and how it was run; None if it cannot read."""
    assert DCMDUMP is not None  # its one caller is skipped without dcmdump
    base = [DCMDUMP, "-q", "+L", "-Un", "+uc"]
    proc = subprocess.run([*base, "+U8", str(path)], capture_output=True, timeout=60)
    mode = "+U8"
    raw_bytes = None
    if proc.returncode != 0 and b"onver" in proc.stderr + proc.stdout:
        proc = subprocess.run([*base, str(path)], capture_output=True, timeout=60)
        mode = "raw+python-codecs"
        raw_bytes = proc.stdout
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    text_lines = proc.stdout.split(b"\n")
    charsets: list[str] = []
    elements: list[tuple[int, str, str]] = []
    lines: list[bytes] = []
    for line in text_lines:  # join continuation lines of values holding CR/LF
        if re.match(rb"^\s*(\(|#|$)", line) or not lines:
            lines.append(line)
        else:
            lines[-1] += b"\n" + line
    for line in lines:
        decoded = _decode_raw(line, charsets) if raw_bytes is not None else line.decode("utf-8", "replace")
        decoded = decoded.replace("\r", "")
        m = _DCM_LINE.match(decoded.replace("\n", "\x00"))
        if not m:
            continue
        tag = (int(m.group(1), 16) << 16) | int(m.group(2), 16)
        value = m.group(4).replace("\x00", "\n")
        if tag == 0x00080005:
            charsets = [c.strip() for c in value.strip("[]").split("\\")]
        elements.append((tag, m.group(3), value))
    return elements, mode


def _ours(path: Path) -> tuple[dict[int, tuple[str, str]], int, str]:
    out, err = io.StringIO(), io.StringIO()
    # a DICOMDIR named as a file is dumped itself (its records), like dcmdump
    args = argparse.Namespace(paths=[str(path)], tag=[], json=False, no_private=False, depth=None)
    code = dump_cmd.dump(args, out, err)
    found: dict[int, tuple[str, str]] = {}
    for line in out.getvalue().splitlines():
        m = _OUR_LINE.match(line)
        if not m:
            continue
        tag = (int(m.group(1), 16) << 16) | int(m.group(2), 16)
        rest = m.group(5)
        value = rest.rsplit("  # ", 1)[0] if "  # " in rest else rest
        found[tag] = (m.group(3), value)
    return found, code, err.getvalue()


def _unescape(text: str) -> str:
    return re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def _norm_ws(text: str) -> str:
    return " ".join(text.split())


def _split(value: str) -> list[str]:
    return [_norm_ws(v) for v in value.split("\\")]


def _numbers_equal(a: list[str], b: list[str], vr: str) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        try:
            fx, fy = float(x), float(y)
        except ValueError:
            return False
        tol = 1e-6 if vr in ("FL", "OF") else 1e-9
        if not (math.isclose(fx, fy, rel_tol=tol, abs_tol=1e-30) or (math.isnan(fx) and math.isnan(fy))):
            return False
    return True


def known_reason(tag: int, mode: str, dcm_vr: str, dcm_value: str, our_value: str | None) -> str | None:
    """The documented reason for a difference, or None if it is not a known one."""
    if tag == 0x00080005 and mode == "+U8":
        return U8_CHARSET
    if dcm_vr == "PN" and our_value is not None:
        theirs = dcm_value.strip("[]").rstrip()
        if theirs.endswith("=") and theirs.rstrip("=") == _unescape(our_value).rstrip():
            return PN_TRAILING
    return None


def compare(dcm_vr: str, dcm_value: str, our_vr: str, our_value: str) -> str | None:
    """Return None when equal, else a reason."""
    if dcm_vr == "up":  # DCMTK's internal VR for DICOMDIR offsets, UL in the standard
        dcm_vr = "UL"
    if dcm_vr != our_vr:
        return f"VR {dcm_vr} vs ours {our_vr}"
    if dcm_vr == "SQ":
        return None
    theirs = dcm_value
    if theirs == "(no value available)":
        theirs = ""
    elif theirs.startswith("[") and theirs.endswith("]"):
        theirs = theirs[1:-1]
    ours = _unescape(our_value)
    cut = re.search(r"… \(([\d,]+) (bytes|chars|values)\)$", ours)
    if cut:
        ours = ours[: cut.start()]
        theirs = theirs[: len(ours)]
    if dcm_vr in _BINARY and dcm_vr not in ("OF", "OD", "OL", "OV"):
        a, b = theirs.lower().replace(" ", ""), ours.lower().replace(" ", "")
        if cut:
            a = a[: len(b)]
        return None if a == b else f"bytes {theirs[:60]!r} vs ours {ours[:60]!r}"
    t, o = _split(theirs.rstrip("\x00")), _split(ours.rstrip("\x00"))
    if t == o:
        return None
    if dcm_vr in _NUMERIC:
        if cut:
            t, o = t[: len(o) - 1], o[:-1]
        return None if _numbers_equal(t, o, dcm_vr) else f"numbers {theirs[:80]!r} vs ours {ours[:80]!r}"
    if dcm_vr == "AT":
        return None if [x.lower() for x in t] == [x.lower() for x in o] else f"AT {theirs!r} vs {ours!r}"
    # DCMTK strips trailing NUL/space padding differently; compare without trailing whitespace
    if [x.rstrip() for x in t] == [x.rstrip() for x in o]:
        return None
    return f"value {theirs[:80]!r} vs ours {ours[:80]!r}"


FILES = _files()


@pytest.mark.skipif(DCMDUMP is None, reason="DCMTK's dcmdump is not installed")
@pytest.mark.parametrize("path", FILES, ids=[_id(p) for p in FILES])
def test_dump_matches_dcmdump(path: Path) -> None:
    """Every top-level element dcmdump lists appears in our dump with the same tag, VR and value."""
    reference = _dcmdump(path)
    if reference is None:
        pytest.skip("dcmdump cannot read this file")
    elements, mode = reference
    ours, code, err = _ours(path)
    assert ours, f"we dumped nothing for a file dcmdump reads (exit {code}): {err.strip()}"
    problems: list[str] = []
    explained: list[str] = []
    compared = 0
    for tag, vr, value in elements:
        if tag & 0xFFFF == 0 or tag in (0x7FE00010,) or tag >> 16 == 0xFFFE:
            continue
        compared += 1
        known = (
            KNOWN.get((path.name, tag))
            or KNOWN.get((None, tag))
            or known_reason(tag, mode, vr, value, ours[tag][1] if tag in ours else None)
        )
        if tag not in ours:
            reason = f"({tag >> 16:04x},{tag & 0xFFFF:04x}) {vr} missing from our dump"
        else:
            our_vr, our_value = ours[tag]
            diff = compare(vr, value, our_vr, our_value)
            if diff is None:
                continue
            reason = f"({tag >> 16:04x},{tag & 0xFFFF:04x}) {diff}"
        (explained if known else problems).append(f"{reason}" + (f"  [known: {known}]" if known else ""))
    assert compared, "dcmdump listed no comparable element"
    print(f"{compared} elements compared with dcmdump ({mode}), {len(explained)} known differences")
    for line in explained:
        print("explained:", line)
    for line in problems:
        print("MISMATCH:", line)
    assert not problems, f"{len(problems)} unexplained difference(s) from dcmdump ({mode}): " + "; ".join(
        problems[:5]
    )


def test_compare_detects_differences() -> None:
    """The comparison is not vacuous: wrong values, VRs and numbers are reported; equivalent forms are not."""
    assert compare("LO", "[abc]", "LO", "abd") is not None
    assert compare("LO", "[abc]", "SH", "abc") is not None
    assert compare("DS", "[1.5]", "DS", "1.6") is not None
    assert compare("US", "1\\2", "US", "1") is not None
    assert compare("OB", "00\\01", "OB", "00\\02") is not None
    assert compare("DS", "[1.0]", "DS", "1") is None
    assert compare("LT", "[a  b\nc]", "LT", "a b\\x0d\\x0ac") is None
    assert compare("SH", "(no value available)", "SH", "") is None
    assert known_reason(0x00100010, "+U8", "PN", "[Wang^X=]", "Wang^X") == PN_TRAILING
    assert known_reason(0x00100010, "+U8", "PN", "[Wang^Y=]", "Wang^X") is None


def test_parity_covers_files() -> None:
    """The parity run really has files to compare (pydicom's test files at least)."""
    assert len(FILES) > 100
    assert os.path.isfile(FILES[0])
