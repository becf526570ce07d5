"""Status transitions of a training job document, as DescribeTrainingJob reports them."""

from __future__ import annotations

from zeroserve.training_jobs import status


def test_secondary_transitions_are_closed_in_order_and_billing_is_whole_seconds() -> None:
    doc = status.new_document({"TrainingJobName": "j"}, now=100.0)
    doc = status.advance(doc, "Downloading", 101.0)
    doc = status.advance(doc, "Training", 102.0)
    doc = status.finish(doc, "Completed", 104.5)
    assert doc["TrainingJobStatus"] == "Completed" and doc["SecondaryStatus"] == "Completed"
    assert [(t["Status"], t["StartTime"], t["EndTime"]) for t in doc["SecondaryStatusTransitions"]] == [
        ("Starting", 100.0, 101.0), ("Downloading", 101.0, 102.0), ("Training", 102.0, 104.5),
        ("Completed", 104.5, 104.5),
    ]  # fmt: skip
    assert doc["TrainingStartTime"] == 101.0 and doc["TrainingEndTime"] == 104.5
    assert doc["BillableTimeInSeconds"] == 4 == doc["TrainingTimeInSeconds"]


def test_stopping_sets_the_primary_status_and_max_runtime_is_a_stopped_job() -> None:
    doc = status.advance(status.new_document({}, 0.0), "Downloading", 1.0)
    doc = status.advance(doc, "Stopping", 2.0)
    assert doc["TrainingJobStatus"] == "Stopping"
    doc = status.finish(doc, "Stopped", 3.0, secondary="MaxRuntimeExceeded")
    assert (doc["TrainingJobStatus"], doc["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


def test_failure_reason_is_kept_within_sagemakers_limit() -> None:
    doc = status.finish(status.new_document({}, 0.0), "Failed", 1.0, failure_reason="x" * 5000)
    assert len(doc["FailureReason"]) == 1024
    assert "BillableTimeInSeconds" not in doc  # it never started
