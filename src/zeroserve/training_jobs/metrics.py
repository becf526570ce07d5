"""MetricDefinitions: regexes over the job's log lines; the last value of each metric is its final value
(FinalMetricDataList), as SageMaker reports it."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from zeroserve.errors import ValidationError
from zeroserve.training_jobs.spec import MetricDefinition


@dataclass(frozen=True)
class MetricValue:
    name: str
    value: float
    timestamp_s: float


def compile_definitions(definitions: Sequence[MetricDefinition]) -> list[tuple[str, re.Pattern[str]]]:
    compiled = []
    for definition in definitions:
        try:
            pattern = re.compile(definition.regex)
        except re.error as err:
            raise ValidationError(
                f"MetricDefinitions {definition.name!r}: Regex {definition.regex!r} is not valid ({err})."
            ) from None
        if pattern.groups < 1:
            raise ValidationError(
                f"MetricDefinitions {definition.name!r}: Regex must capture the value in a group, e.g. "
                "'loss=([0-9.]+)'."
            )
        compiled.append((definition.name, pattern))
    return compiled


class MetricScanner:
    """Feeds on log lines; remembers the latest value of each defined metric."""

    def __init__(self, definitions: Sequence[MetricDefinition]) -> None:
        self._patterns = compile_definitions(definitions)
        self._latest: dict[str, MetricValue] = {}

    def scan(self, line: str, timestamp_s: float) -> None:
        for name, pattern in self._patterns:
            match = pattern.search(line)
            if match is None:
                continue
            try:
                value = float(match.group(1))
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                self._latest[name] = MetricValue(name, value, timestamp_s)

    def final(self) -> list[dict[str, object]]:
        return [
            {"MetricName": m.name, "Value": m.value, "Timestamp": m.timestamp_s}
            for m in self._latest.values()
        ]
