"""The CloudWatch Logs API on the server's port, driven by real clients: boto3's `logs` client, the SageMaker
SDK v2's log reader (`Session.logs_for_job`'s own functions), and the AWS CLI.

The TrainingJobs group is written through LogStore on the data dir before the server starts (training jobs
write it through the same store at run time); endpoint groups fill from real invocations.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from test_awscli import AWS, aws

from server import CREDENTIALS, ServerProcess, deploy, invoke_json
from zeroserve.logs.log_store import LOGS_DB_NAME, LogStore
from zeroserve.logs.sink import TRAINING_JOBS_GROUP, endpoint_group

JOB = "hf-train-2026-12-01"
STREAM = f"{JOB}/algo-1-1764580000"
T0_MS = 1_764_580_000_000
# Three lines share a timestamp, as a burst of training output does: the SDK's reader must neither repeat
# nor drop them (it re-reads from the last timestamp and skips what it already printed).
JOB_LINES = [(T0_MS + i // 3, f"step {i} loss={1 / (i + 1):.3f}") for i in range(30)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("logs-server") / "data"
    store = LogStore(folder / LOGS_DB_NAME)
    store.put(TRAINING_JOBS_GROUP, STREAM, JOB_LINES)
    store.put(TRAINING_JOBS_GROUP, "other-job/algo-1-1764580001", [(T0_MS, "not this job")])
    store.close()
    return folder


@pytest.fixture(scope="module")
def served(data_dir: Path) -> Iterator[ServerProcess]:
    with ServerProcess(data_dir) as running:
        yield running


@pytest.fixture(scope="module")
def logs(served: ServerProcess) -> Any:
    return served.logs()


@pytest.fixture(scope="module")
def endpoint(served: ServerProcess, tiny_tarball: Path) -> str:
    described = deploy(served.sagemaker(), "logged", str(tiny_tarball))
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return "logged"


def wait_for(check: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


# --- boto3 ----------------------------------------------------------------------------------------------


def test_describe_log_groups_and_streams(logs: Any) -> None:
    groups = logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/")["logGroups"]
    assert TRAINING_JOBS_GROUP in [g["logGroupName"] for g in groups]
    streams = logs.describe_log_streams(
        logGroupName=TRAINING_JOBS_GROUP, logStreamNamePrefix=f"{JOB}/", orderBy="LogStreamName"
    )
    [stream] = streams["logStreams"]
    assert stream["logStreamName"] == STREAM
    assert stream["firstEventTimestamp"] == JOB_LINES[0][0]
    assert stream["lastEventTimestamp"] == JOB_LINES[-1][0]
    assert "nextToken" not in streams  # the SDK loops on nextToken without passing it back
    paginated = logs.get_paginator("describe_log_streams").paginate(logGroupName=TRAINING_JOBS_GROUP, limit=1)
    assert [s["logStreamName"] for page in paginated for s in page["logStreams"]] == [
        "hf-train-2026-12-01/algo-1-1764580000",
        "other-job/algo-1-1764580001",
    ]


def test_get_log_events_pages_forward_and_backward_until_the_token_repeats(logs: Any) -> None:
    ask = {"logGroupName": TRAINING_JOBS_GROUP, "logStreamName": STREAM, "limit": 7}
    forward: list[str] = []
    answer = logs.get_log_events(**ask, startFromHead=True)
    while True:
        forward += [e["message"] for e in answer["events"]]
        following = logs.get_log_events(**ask, nextToken=answer["nextForwardToken"])
        if following["nextForwardToken"] == answer["nextForwardToken"]:
            break
        answer = following
    assert forward == [message for _, message in JOB_LINES]

    backward: list[str] = []
    answer = logs.get_log_events(**ask)  # the newest 7
    while True:
        backward = [e["message"] for e in answer["events"]] + backward
        previous = logs.get_log_events(**ask, nextToken=answer["nextBackwardToken"])
        if previous["nextBackwardToken"] == answer["nextBackwardToken"]:
            break
        answer = previous
    assert backward == forward


def test_filter_log_events_with_the_paginator(logs: Any) -> None:
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=TRAINING_JOBS_GROUP, filterPattern='loss -"step 1 "', PaginationConfig={"PageSize": 4}
    )
    found = [(e["logStreamName"], e["message"]) for page in pages for e in page["events"]]
    assert [message for _, message in found] == [m for _, m in JOB_LINES if not m.startswith("step 1 ")]
    assert {stream for stream, _ in found} == {STREAM}
    searched = logs.filter_log_events(logGroupName=TRAINING_JOBS_GROUP, logStreamNames=[STREAM], limit=1)
    assert searched["searchedLogStreams"] == [{"logStreamName": STREAM, "searchedCompletely": False}]


def test_missing_group_and_stream_answer_resource_not_found(logs: Any) -> None:
    with pytest.raises(ClientError) as caught:
        logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/never")
    error = caught.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as caught:
        logs.get_log_events(logGroupName=TRAINING_JOBS_GROUP, logStreamName="never/algo-1-1")
    error = caught.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )


def test_bad_parameters_answer_invalid_parameter(served: ServerProcess) -> None:
    import boto3

    # boto3 validates parameters before sending; a client that does not shows what the server answers.
    raw = boto3.client(
        "logs", endpoint_url=served.url, config=Config(parameter_validation=False), **CREDENTIALS
    )
    with pytest.raises(ClientError) as caught:
        raw.get_log_events(logGroupName=TRAINING_JOBS_GROUP, logStreamName=STREAM, limit=0)
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert "Value '0' at 'limit' failed to satisfy constraint" in error["Message"]
    with pytest.raises(ClientError) as caught:
        raw.describe_log_streams(
            logGroupName=TRAINING_JOBS_GROUP, orderBy="LastEventTime", logStreamNamePrefix="x"
        )
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"


def test_an_unknown_target_prefix_is_refused(served: ServerProcess) -> None:
    answer = httpx.post(served.url, headers={"X-Amz-Target": "Kinesis_20131202.ListStreams"}, content=b"{}")
    assert answer.status_code == 400
    assert answer.json()["__type"] == "ValidationException"


# --- the SageMaker SDK v2 -------------------------------------------------------------------------------


def sdk_session(served: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What `_logs_for_job` reads from a Session: a boto session (the SDK makes its logs client from it,
    pointed here by AWS_ENDPOINT_URL_CLOUDWATCH_LOGS as `zeroserve env` sets it) and a SageMaker client.
    DescribeTrainingJob is another part of this issue, so that one answer is given here."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", served.url)
    description = {
        "TrainingJobName": JOB,
        "TrainingJobStatus": "Completed",
        "SecondaryTransitions": [],
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.p3.2xlarge"},
    }
    sagemaker_client = types.SimpleNamespace(describe_training_job=lambda **_: description)
    return types.SimpleNamespace(
        boto_session=boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"),
        sagemaker_client=sagemaker_client,
    )


def test_sdk_logs_for_job_prints_every_line_of_the_job_once(
    served: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagemaker.session import _logs_for_job

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        _logs_for_job(sdk_session(served, monkeypatch), JOB, wait=False)
    shown = [line for line in printed.getvalue().splitlines() if line.startswith("step ")]
    assert shown == [message for _, message in JOB_LINES]


def test_sdk_log_reader_prints_only_new_lines_when_it_polls_again(
    served: ServerProcess, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_flush_log_streams` as `logs_for_job(wait=True)` calls it on each poll, with positions that carry the
    last timestamp and how many lines at it were printed."""
    import sagemaker.logs
    from sagemaker.session import _flush_log_streams, _logs_init

    session = sdk_session(served, monkeypatch)
    job = "streaming-job"
    stream = f"{job}/algo-1-1764580002"
    description = {"ResourceConfig": {"InstanceCount": 1}}
    instance_count, names, positions, client, group, dot, color = _logs_init(
        session.boto_session, description, job="Training"
    )
    writer = LogStore(data_dir / LOGS_DB_NAME, batch_window_s=0.01)  # a second writer, as a job would be
    try:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            _flush_log_streams(names, instance_count, client, group, job, positions, dot, color)
            assert printed.getvalue() == "."  # no stream yet: the SDK prints a dot and waits
            writer.put(TRAINING_JOBS_GROUP, stream, [(T0_MS, "epoch 1"), (T0_MS + 5, "a"), (T0_MS + 5, "b")])
            writer.flush()
            _flush_log_streams(names, instance_count, client, group, job, positions, dot, color)
            writer.put(TRAINING_JOBS_GROUP, stream, [(T0_MS + 5, "c"), (T0_MS + 9, "epoch 2")])
            writer.flush()
            _flush_log_streams(names, instance_count, client, group, job, positions, dot, color)
            _flush_log_streams(names, instance_count, client, group, job, positions, dot, color)
    finally:
        writer.close()
    # The SDK's dot has no newline after it (it drops the flag it would print one for): so does the output.
    assert printed.getvalue() == ".epoch 1\na\nb\nc\nepoch 2\n"
    assert positions[stream] == sagemaker.logs.Position(timestamp=T0_MS + 9, skip=1)


# --- endpoint groups and the AWS CLI --------------------------------------------------------------------


def request_lines(logs: Any, endpoint: str) -> list[dict[str, Any]]:
    try:
        events = logs.filter_log_events(logGroupName=endpoint_group(endpoint))["events"]
    except ClientError:
        return []
    return [json.loads(e["message"]) for e in events if e["message"].startswith("{")]


def test_an_invoked_endpoint_has_its_request_lines_in_a_variant_stream(
    served: ServerProcess, logs: Any, endpoint: str
) -> None:
    invoke_json(served.runtime(), endpoint, {"inputs": "log me"})
    lines = wait_for(lambda: request_lines(logs, endpoint))
    assert lines and lines[-1]["endpoint"] == endpoint and lines[-1]["status"] == 200
    [stream] = logs.describe_log_streams(logGroupName=endpoint_group(endpoint))["logStreams"]
    assert stream["logStreamName"].startswith("AllTraffic/i-")
    events = logs.get_log_events(logGroupName=endpoint_group(endpoint), logStreamName=stream["logStreamName"])
    assert any(e["message"].startswith("zeroserve worker started") for e in events["events"])


def test_log_delivery_delay_from_answer_to_get_log_events(
    served: ServerProcess, logs: Any, endpoint: str
) -> None:
    """Measures (and prints) how long after the answer the request's line is readable: the bench number."""
    runtime = served.runtime()
    [stream] = logs.describe_log_streams(logGroupName=endpoint_group(endpoint))["logStreams"]
    ask = {"logGroupName": endpoint_group(endpoint), "logStreamName": stream["logStreamName"]}
    token = logs.get_log_events(**ask)["nextForwardToken"]
    delays_ms = []
    for index in range(10):
        invoke_json(runtime, endpoint, {"inputs": f"delay probe {index}"})
        answered = time.perf_counter()
        found = wait_for(lambda at=token: logs.get_log_events(**ask, nextToken=at)["events"], timeout_s=5)
        delays_ms.append((time.perf_counter() - answered) * 1000)
        assert found, "the request line never became visible"
        token = logs.get_log_events(**ask, nextToken=token)["nextForwardToken"]
    delays_ms.sort()
    print(f"log delivery delay ms: p50={delays_ms[5]:.1f} max={delays_ms[-1]:.1f}")
    assert delays_ms[-1] < 1000  # the issue's budget


@pytest.mark.skipif(AWS is None, reason="the aws CLI is not installed (pip install awscli)")
def test_the_aws_cli_reads_an_endpoint_group(served: ServerProcess, logs: Any, endpoint: str) -> None:
    invoke_json(served.runtime(), endpoint, {"inputs": "seen by the cli"})
    assert wait_for(lambda: request_lines(logs, endpoint))
    group = endpoint_group(endpoint)
    groups = json.loads(aws(served, "logs", "describe-log-groups", "--log-group-name-prefix", group).stdout)
    assert [g["logGroupName"] for g in groups["logGroups"]] == [group]
    # The CLI pages filter-log-events itself (following nextToken) and merges the pages.
    filtered = json.loads(
        aws(
            served,
            "logs",
            "filter-log-events",
            "--log-group-name",
            group,
            "--filter-pattern",
            '"\\"status\\": 200"',
            "--page-size",
            "1",
        ).stdout
    )
    assert len(filtered["events"]) >= 1
    assert all(json.loads(e["message"])["status"] == 200 for e in filtered["events"])
    [stream] = json.loads(aws(served, "logs", "describe-log-streams", "--log-group-name", group).stdout)[
        "logStreams"
    ]
    got = json.loads(
        aws(
            served,
            "logs",
            "get-log-events",
            "--log-group-name",
            group,
            "--log-stream-name",
            stream["logStreamName"],
            "--start-from-head",
        ).stdout
    )
    assert any(e["message"].startswith("{") for e in got["events"])
    missing = aws(
        served,
        "logs",
        "describe-log-streams",
        "--log-group-name",
        "/aws/sagemaker/Endpoints/none",
        check=False,
    )
    assert missing.returncode != 0
    assert "(ResourceNotFoundException)" in missing.stderr
    assert "The specified log group does not exist." in missing.stderr


def test_tail_follow_shows_a_line_that_arrives_while_it_follows(
    served: ServerProcess, logs: Any, endpoint: str
) -> None:
    """`aws logs tail <group> --follow` (AWS CLI v2; the v1 CLI on PyPI has no `tail`) is this loop:
    FilterLogEvents(interleaved, startTime=now-10m) page by page; at the last page, startTime becomes the
    newest timestamp seen, nextToken is dropped, and eventIds already shown at that timestamp are skipped."""
    group = endpoint_group(endpoint)
    ask: dict[str, Any] = {
        "logGroupName": group,
        "interleaved": True,
        "startTime": int((time.time() - 600) * 1000),
    }
    seen: dict[int, set[str]] = {}
    shown: list[str] = []

    def poll() -> None:
        nonlocal seen
        while True:
            answer = logs.filter_log_events(**ask)
            for event in answer["events"]:
                if event["eventId"] not in seen.setdefault(event["timestamp"], set()):
                    seen[event["timestamp"]].add(event["eventId"])
                    shown.append(event["message"])
            if seen:
                newest = max(seen)
                seen = {newest: seen[newest]}
            if "nextToken" in answer:
                ask["nextToken"] = answer["nextToken"]
                continue
            ask.pop("nextToken", None)
            if seen:
                ask["startTime"] = max(seen)
            return

    poll()
    before = len(shown)
    invoke_json(served.runtime(), endpoint, {"inputs": "arrives while following"})
    deadline = time.monotonic() + 10
    while len(shown) == before and time.monotonic() < deadline:
        time.sleep(0.05)  # the CLI sleeps 5 s between polls
        poll()
    new = [json.loads(message) for message in shown[before:]]
    assert len(new) == 1 and new[0]["status"] == 200  # the new line, once, and nothing shown before again
    poll()
    assert len(shown) == before + 1


def test_a_request_answered_just_before_shutdown_has_its_line_in_the_store(
    tmp_path: Path, tiny_tarball: Path
) -> None:
    data = tmp_path / "data"
    with ServerProcess(data) as served:
        assert deploy(served.sagemaker(), "brief", str(tiny_tarball))["EndpointStatus"] == "InService"
        invoke_json(served.runtime(), "brief", {"inputs": "the last words"})
    # Stopped (SIGTERM) right after the answer, usually while the line is still queued: stop() writes it on
    # the way out, where the next server (see `served` above, started on a written data dir) reads it.
    store = LogStore(data / LOGS_DB_NAME)
    try:
        group = store.group(endpoint_group("brief"))
        assert group is not None
        [stream] = store.streams(group.id)
        requests = [e for e in store.events(stream.id) if e.message.startswith("{")]
        assert [json.loads(e.message)["status"] for e in requests] == [200]
    finally:
        store.close()
