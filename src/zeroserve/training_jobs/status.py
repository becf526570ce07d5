"""The training job document's status fields, changed only through these functions: TrainingJobStatus,
SecondaryStatus and its transitions, times and billing, as DescribeTrainingJob reports them."""

from __future__ import annotations

import math
from typing import Any

Document = dict[str, Any]
FINAL_STATUSES = ("Completed", "Failed", "Stopped")

_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Stopping": "Stopping the training job",
    "Stopped": "The training job was stopped",
    "MaxRuntimeExceeded": "Training job runtime exceeded MaxRuntimeInSeconds provided",
    "Failed": "Training job failed",
}


def new_document(base: Document, now: float) -> Document:
    doc = dict(base)
    doc.update(
        TrainingJobStatus="InProgress",
        SecondaryStatus="Starting",
        CreationTime=now,
        LastModifiedTime=now,
        SecondaryStatusTransitions=[
            {"Status": "Starting", "StartTime": now, "StatusMessage": _MESSAGES["Starting"]}
        ],
    )
    return doc


def advance(doc: Document, secondary: str, now: float, message: str | None = None) -> Document:
    """Close the current secondary status and open `secondary`."""
    updated = dict(doc)
    transitions = [dict(t) for t in doc.get("SecondaryStatusTransitions", [])]
    if transitions and "EndTime" not in transitions[-1]:
        transitions[-1]["EndTime"] = now
    transitions.append(
        {
            "Status": secondary,
            "StartTime": now,
            "StatusMessage": message or _MESSAGES.get(secondary, secondary),
        }
    )
    updated.update(SecondaryStatus=secondary, SecondaryStatusTransitions=transitions, LastModifiedTime=now)
    if secondary == "Downloading" and "TrainingStartTime" not in updated:
        updated["TrainingStartTime"] = now
    if secondary == "Stopping":
        updated["TrainingJobStatus"] = "Stopping"
    return updated


def finish(
    doc: Document,
    status: str,
    now: float,
    *,
    secondary: str | None = None,
    failure_reason: str | None = None,
    message: str | None = None,
) -> Document:
    updated = advance(doc, secondary or status, now, message)
    transitions = updated["SecondaryStatusTransitions"]
    transitions[-1]["EndTime"] = now
    updated["TrainingJobStatus"] = status
    updated["TrainingEndTime"] = now
    if failure_reason:
        updated["FailureReason"] = failure_reason[:1024]  # botocore's FailureReason max length
    started = updated.get("TrainingStartTime")
    if started is not None:
        seconds = max(1, math.ceil(now - started))
        updated["TrainingTimeInSeconds"] = seconds
        updated["BillableTimeInSeconds"] = seconds
    return updated
