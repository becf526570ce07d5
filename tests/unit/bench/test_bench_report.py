"""The benchmark's statistics and report helpers: pure functions, checked against hand-computed values."""

from __future__ import annotations

import math

from bench.report import Section, Table, Target
from bench.stats import Summary, fmt, fmt_ratio, percentile, ratio


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10], 99) == 10
    assert percentile([3, 1, 2], 0) == 1
    assert percentile([3, 1, 2], 100) == 3
    assert math.isnan(percentile([], 50))


def test_summary_of_samples() -> None:
    summary = Summary.of([float(v) for v in range(1, 101)])
    assert summary.n == 100
    assert summary.p50 == 50.5
    assert math.isclose(summary.p99, 99.01)
    assert summary.min == 1 and summary.max == 100


def test_ratio_and_formatting_handle_missing_values() -> None:
    assert ratio(10, 4) == 2.5
    assert math.isnan(ratio(1, 0))
    assert fmt(math.nan) == "-"
    assert fmt(1234.5) == "1,234"
    assert fmt_ratio(2.5) == "2.50x"
    assert fmt_ratio(41.2) == "41x"


def test_table_renders_markdown_with_right_aligned_numbers() -> None:
    text = Table(["name", "ms"], [["a", "1.0"]], title="T").markdown()
    assert text.splitlines() == ["**T**", "", "| name | ms |", "|---|---:|", "| a | 1.0 |"]


def test_section_lists_its_targets_and_findings() -> None:
    from pathlib import Path

    section = Section("x", "X", findings=["f"], targets=[Target("cold", "<= 1", "2", False)])
    text = section.markdown(Path("."))
    assert text.startswith("## X") and "- f" in text
