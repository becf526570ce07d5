"""A worker's own stdout and stderr land in its endpoint's log group, read back with boto3's logs client:
print() in a custom inference.py on each request, the traceback of a model_fn that raises, and the traceback a
worker prints just before it os._exit()s, even after it flooded past its rate cap."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from server import ServerProcess, deploy, invoke_json, pack_model
from zeroserve.logs.sink import endpoint_group

TALKATIVE_INFERENCE = """
import os
import sys
import traceback


def predict_fn(data, model):
    text = data["inputs"]
    print(f"stdout says {text}")  # no flush: the worker's stdout is line-buffered
    print(f"stderr says {text}", file=sys.stderr)
    if text.startswith("flood"):
        for i in range(20000):
            print(f"spam {i}")
    if text.startswith("die") or text.startswith("flood"):
        try:
            raise RuntimeError(f"last words of {text}")
        except RuntimeError:
            traceback.print_exc()
        os._exit(5)
    return [{"echo": text}]
"""

LAST_FLOOD_LINE = "RuntimeError: last words of flood then die"

BROKEN_INFERENCE = """
def model_fn(model_dir):
    raise ValueError("the weights in " + model_dir + " are broken beyond repair")
"""


def artifact(tiny_model_dir: Path, folder: Path, code: str) -> Path:
    shutil.copytree(tiny_model_dir, folder / "model")
    (folder / "model" / "code").mkdir()
    (folder / "model" / "code" / "inference.py").write_text(code)
    return pack_model(folder / "model", folder / "model.tar.gz")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("output-server") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def talkative(served: ServerProcess, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    tarball = artifact(tiny_model_dir, tmp_path_factory.mktemp("talkative"), TALKATIVE_INFERENCE)
    described = deploy(served.sagemaker(), "talkative", str(tarball))
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return "talkative"


def messages(logs: Any, endpoint: str, pattern: str = "") -> list[str]:
    try:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=endpoint_group(endpoint), filterPattern=pattern
        )
        return [event["message"] for page in pages for event in page["events"]]
    except ClientError:
        return []  # the group is created by its first line


def wait_for_lines(logs: Any, endpoint: str, wanted: list[str], timeout_s: float = 10.0) -> list[str]:
    """The group's lines once each wanted text is in one of them (or whatever is there at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = messages(logs, endpoint)
        if all(any(text in line for line in found) for text in wanted) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_print_to_stdout_and_stderr_on_each_request_lands_in_the_endpoint_group(
    served: ServerProcess, talkative: str
) -> None:
    logs = served.logs()
    for index in range(3):
        assert invoke_json(served.runtime(), talkative, {"inputs": f"request {index}"}) == [
            {"echo": f"request {index}"}
        ]
    wanted = [f"{stream} says request {i}" for i in range(3) for stream in ("stdout", "stderr")]
    found = wait_for_lines(logs, talkative, wanted)
    printed = [line for line in found if " says request " in line]
    # Each line once, prefixed with the worker's id, in the order the worker wrote them.
    assert [line.split("] ", 1)[1] for line in printed] == wanted
    assert all(line.startswith("[w") for line in printed)
    # In the variant's stream, with the request lines: each request's prints come before its request line.
    [stream] = logs.describe_log_streams(logGroupName=endpoint_group(talkative))["logStreams"]
    assert stream["logStreamName"].startswith("AllTraffic/i-")
    events = logs.get_log_events(
        logGroupName=endpoint_group(talkative), logStreamName=stream["logStreamName"], startFromHead=True
    )["events"]
    order = [e["message"] for e in events if "says request 0" in e["message"] or e["message"].startswith("{")]
    assert "says request 0" in order[0] and "says request 0" in order[1] and order[2].startswith("{")
    # The filter pattern finds them as any other line.
    assert messages(logs, talkative, '"stderr says request 1"') == [printed[3]]


def invoke_until_it_dies(served: ServerProcess, endpoint: str, text: str) -> None:
    with pytest.raises(ClientError) as caught:
        invoke_json(served.runtime(), endpoint, {"inputs": text})
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_the_traceback_a_worker_prints_before_os_exit_is_in_the_group(
    served: ServerProcess, talkative: str
) -> None:
    invoke_until_it_dies(served, talkative, "die young")
    found = wait_for_lines(logs := served.logs(), talkative, ["RuntimeError: last words of die young"])
    tail = [line.split("] ", 1)[1] for line in found if line.startswith("[w")]
    at = tail.index("stderr says die young")
    end = tail.index("RuntimeError: last words of die young")
    # The whole traceback, frames and all, right after the worker's last print.
    assert tail[at + 1] == "Traceback (most recent call last):"
    assert any("in predict_fn" in line for line in tail[at + 2 : end])
    assert any(line.startswith("zeroserve worker crashed") for line in messages(logs, talkative))


def test_a_worker_that_floods_its_output_is_capped_and_its_dying_traceback_still_lands(
    served: ServerProcess, talkative: str
) -> None:
    invoke_until_it_dies(served, talkative, "flood then die")
    logs = served.logs()
    # The request is retried once on a fresh worker, which floods and dies too: look at each worker alone,
    # once each one that began has its last line in.
    deadline = time.monotonic() + 10
    while True:
        found = messages(logs, talkative)
        began = {line.split("] ", 1)[0] for line in found if line.endswith("] stderr says flood then die")}
        ended = {line.split("] ", 1)[0] for line in found if line.endswith("] " + LAST_FLOOD_LINE)}
        if (began and began == ended) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    workers = began
    assert workers
    for worker in workers:
        own = [line.split("] ", 1)[1] for line in found if line.startswith(worker + "] ")]
        spam = [line for line in own if line.startswith("spam ")]
        assert 0 < len(spam) < 20000  # capped: the store did not take all 20000
        assert any("lines of this worker's output were dropped" in line for line in own)
        # Its last words all landed: the whole traceback, after the note of what was dropped before it.
        last = own[own.index("Traceback (most recent call last):") :]
        assert any("in predict_fn" in line for line in last)
        assert last[-1] == LAST_FLOOD_LINE


def test_a_model_fn_that_raises_leaves_its_traceback_in_the_group(
    served: ServerProcess, tiny_model_dir: Path, tmp_path: Path
) -> None:
    tarball = artifact(tiny_model_dir, tmp_path, BROKEN_INFERENCE)
    described = deploy(served.sagemaker(), "broken", str(tarball))
    assert described["EndpointStatus"] == "Failed"
    found = wait_for_lines(served.logs(), "broken", ["are broken beyond repair"])
    texts = [line.split("] ", 1)[1] for line in found if line.startswith("[w")]
    assert "Traceback (most recent call last):" in texts
    assert any(line.startswith("ValueError: the weights in ") for line in texts)
    assert any("line 3, in model_fn" in line for line in texts)  # the user's own frame, not just the message
