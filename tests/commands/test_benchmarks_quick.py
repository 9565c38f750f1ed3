"""``python -m benchmarks --quick`` keeps working and writes the JSON shape of issue 8 (timings are not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any  # parsed JSON

import pytest

REPO = Path(__file__).resolve().parents[2]
ROW_KEYS = {"name", "unit", "ours", "reference", "reference_value", "ratio", "goal", "pass"}
GROUP_WORDS = ("[dicomdir]", "[scan]", "[first image]", "[step]", "[decode]", "[rss]", "[dump]", "[archive]")


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """Run the quick benchmarks once in a subprocess; returns (JSON, printed table)."""
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.exists(), "no JSON written"
    return json.loads(out.read_text(encoding="utf-8")), proc.stdout


@pytest.mark.slow
def test_top_level_shape(quick_results: tuple[dict[str, Any], str]) -> None:
    data, _ = quick_results
    assert set(data) == {"machine", "rows"}
    assert isinstance(data["machine"], str) and data["machine"]
    assert isinstance(data["rows"], list) and data["rows"]


@pytest.mark.slow
def test_every_row_has_exactly_the_keys_and_types(quick_results: tuple[dict[str, Any], str]) -> None:
    data, _ = quick_results
    for row in data["rows"]:
        assert set(row) == ROW_KEYS, row
        assert isinstance(row["name"], str) and isinstance(row["unit"], str)
        assert isinstance(row["reference"], str) and isinstance(row["goal"], str) and row["goal"]
        for key in ("ours", "reference_value", "ratio"):
            assert row[key] is None or isinstance(row[key], (int, float)), (key, row)
        assert isinstance(row["pass"], bool), row
        if row["ours"] is None:
            assert row["pass"] is False, f"an unmeasured row cannot pass: {row}"


@pytest.mark.slow
def test_every_group_has_rows_and_the_table_lists_them(quick_results: tuple[dict[str, Any], str]) -> None:
    data, table = quick_results
    names = [row["name"] for row in data["rows"]]
    for word in GROUP_WORDS:
        assert any(word in name for name in names), f"no row for {word}: {names}"
    for name in names:
        assert name in table, f"row missing from the printed table: {name}"


@pytest.mark.slow
def test_ratio_is_ours_over_reference(quick_results: tuple[dict[str, Any], str]) -> None:
    data, _ = quick_results
    for row in data["rows"]:
        if row["ratio"] is not None and row["ours"] and row["reference_value"]:
            expected = row["ours"] / row["reference_value"]
            assert row["ratio"] == pytest.approx(expected, rel=0.05, abs=0.01), row
