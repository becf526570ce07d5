"""MetricDefinitions: the last match of each regex is the metric's final value."""

from __future__ import annotations

import pytest

from zeroserve.errors import ValidationError
from zeroserve.training_jobs.metrics import MetricScanner
from zeroserve.training_jobs.spec import MetricDefinition


def test_last_value_of_each_metric_is_final_and_non_numbers_are_skipped() -> None:
    scanner = MetricScanner(
        [MetricDefinition("loss", r"loss=(\S+)"), MetricDefinition("acc", r"acc: ([0-9.]+)")]
    )
    for t, line in enumerate(["loss=0.9", "loss=nan", "step acc: 0.5", "loss=0.4 acc: 0.75", "loss=oops"]):
        scanner.scan(line, float(t))
    assert scanner.final() == [
        {"MetricName": "loss", "Value": 0.4, "Timestamp": 3.0},
        {"MetricName": "acc", "Value": 0.75, "Timestamp": 3.0},
    ]


@pytest.mark.parametrize("regex", ["((", "loss=[0-9.]+"])
def test_a_regex_that_cannot_capture_a_value_is_a_validation_error(regex: str) -> None:
    with pytest.raises(ValidationError, match="Regex"):
        MetricScanner([MetricDefinition("loss", regex)])
