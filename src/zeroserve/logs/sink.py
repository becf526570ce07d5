"""What producers of log lines (training jobs, workers, the request log) write to.

Timestamps are epoch milliseconds, as CloudWatch Logs carries them. A group or stream is created by its first
event. `put` must be cheap and thread-safe: it is called from the event loop with a batch of lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

LogEvent = tuple[int, str]  # (timestamp_ms, message)

TRAINING_JOBS_GROUP = "/aws/sagemaker/TrainingJobs"


def endpoint_group(endpoint: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint}"


class LogSink(Protocol):
    def put(self, group: str, stream: str, events: Sequence[LogEvent]) -> None: ...
