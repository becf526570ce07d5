"""UpdateEndpoint is blue/green: under a steady client loop, the endpoint answers from config A until config
B is ready, then from B, with no failed request; a failed update rolls back and A never stops answering."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from models import make_tiny_bert
from server import ServerProcess, deploy, model_and_config, pack_model, wait_for_endpoint

A_LABELS = {"NEGATIVE", "POSITIVE"}
B_LABELS = {"sad", "happy"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def b_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model-b")
    return pack_model(
        make_tiny_bert(folder / "model", id2label={0: "sad", 1: "happy"}, seed=1), folder / "model.tar.gz"
    )


@dataclass
class ClientLoop:
    """Clients invoking back to back; each answer's label (or error) is kept with the time it arrived."""

    server: ServerProcess
    endpoint: str
    clients: int = 2
    answers: list[tuple[float, int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self, index: int) -> None:
        rt = self.server.runtime()
        while not self._stop.is_set():
            try:
                answer = rt.invoke_endpoint(
                    EndpointName=self.endpoint,
                    ContentType="application/json",
                    Body=json.dumps({"inputs": "an ordinary film"}),
                )
                self.answers.append((time.monotonic(), index, json.loads(answer["Body"].read())[0]["label"]))
            except Exception as exc:  # every failure is a test failure, whatever its kind
                self.errors.append(f"{type(exc).__name__}: {exc}")

    @property
    def labels(self) -> set[str]:
        return {label for _, _, label in self.answers}

    def labels_of(self, index: int) -> list[str]:
        return [label for _, i, label in self.answers if i == index]

    def wait_for_answers(self, count: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        start = len(self.answers)
        while len(self.answers) < start + count and time.monotonic() < deadline:
            time.sleep(0.01)

    def __enter__(self) -> ClientLoop:
        self._threads = [
            threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def statuses_until_settled(
    sm: Any, name: str, timeout_s: float = 300.0
) -> Iterator[tuple[float, dict[str, Any]]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = sm.describe_endpoint(EndpointName=name)
        yield time.monotonic(), described
        if described["EndpointStatus"] != "Updating":
            return
        time.sleep(0.05)


def test_update_switches_to_the_new_model_with_zero_failed_requests(
    sm: Any, server: ServerProcess, tiny_tarball: Path, b_tarball: Path
) -> None:
    name = unique("bluegreen")
    assert (
        deploy(sm, name, str(tiny_tarball), memory_mb=2048, max_concurrency=10)["EndpointStatus"]
        == "InService"
    )
    config_b = model_and_config(sm, unique("config-b"), str(b_tarball), memory_mb=1024, max_concurrency=4)

    with ClientLoop(server, name) as loop:
        loop.wait_for_answers(20)
        updated_at = time.monotonic()
        sm.update_endpoint(EndpointName=name, EndpointConfigName=config_b)

        during = sm.describe_endpoint(EndpointName=name)
        assert during["EndpointStatus"] == "Updating"
        assert during["EndpointConfigName"] == name  # still serving A
        assert during["PendingDeploymentSummary"]["EndpointConfigName"] == config_b
        pending = during["PendingDeploymentSummary"]["ProductionVariants"][0]
        assert pending["DesiredServerlessConfig"] == {"MemorySizeInMB": 1024, "MaxConcurrency": 4}
        with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
            sm.update_endpoint(EndpointName=name, EndpointConfigName=name)

        history = list(statuses_until_settled(sm, name))
        in_service_at, final = history[-1]
        loop.wait_for_answers(20)

    assert loop.errors == []
    assert [d["EndpointStatus"] for _, d in history[:1]] == ["Updating"]
    assert final["EndpointStatus"] == "InService", final.get("FailureReason")
    assert final["EndpointConfigName"] == config_b
    assert "PendingDeploymentSummary" not in final and "FailureReason" not in final
    assert final["ProductionVariants"][0]["CurrentServerlessConfig"] == {
        "MemorySizeInMB": 1024,
        "MaxConcurrency": 4,
    }
    # A answered while B was being prepared, B answers after the switch, and the switch is atomic: once a
    # client has seen B, it never sees A again.
    assert any(label in A_LABELS and updated_at < at < in_service_at for at, _, label in loop.answers)
    assert loop.labels_of(0)[-1] in B_LABELS
    for index in range(loop.clients):
        labels = loop.labels_of(index)
        first_b = next(i for i, label in enumerate(labels) if label in B_LABELS)
        assert set(labels[:first_b]) <= A_LABELS and set(labels[first_b:]) <= B_LABELS


def test_a_failed_update_rolls_back_while_the_old_model_keeps_answering(
    sm: Any, server: ServerProcess, tiny_tarball: Path, b_tarball: Path, tmp_path: Path
) -> None:
    name = unique("rollback")
    assert deploy(sm, name, str(tiny_tarball))["EndpointStatus"] == "InService"
    corrupt = tmp_path / "model.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b not really gzip" * 64)
    config_bad = model_and_config(sm, unique("config-bad"), str(corrupt), memory_mb=1024, max_concurrency=4)

    with ClientLoop(server, name) as loop:
        loop.wait_for_answers(10)
        sm.update_endpoint(EndpointName=name, EndpointConfigName=config_bad)
        *_, (_, final) = statuses_until_settled(sm, name)
        loop.wait_for_answers(10)

    assert loop.errors == []
    assert loop.labels <= A_LABELS
    assert final["EndpointStatus"] == "InService"
    assert final["EndpointConfigName"] == name
    assert final["FailureReason"].startswith("UpdateEndpoint failed and was rolled back: ")
    assert "PendingDeploymentSummary" not in final

    # A later update that works clears the reason.
    config_b = model_and_config(sm, unique("config-b"), str(b_tarball), memory_mb=1024, max_concurrency=4)
    sm.update_endpoint(EndpointName=name, EndpointConfigName=config_b)
    recovered = wait_for_endpoint(sm, name)
    assert recovered["EndpointStatus"] == "InService"
    assert recovered["EndpointConfigName"] == config_b
    assert "FailureReason" not in recovered


def test_updating_to_a_missing_config_is_refused_and_changes_nothing(sm: Any, tiny_endpoint: str) -> None:
    before = sm.describe_endpoint(EndpointName=tiny_endpoint)
    with pytest.raises(ClientError) as caught:
        sm.update_endpoint(EndpointName=tiny_endpoint, EndpointConfigName="no-such-config")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    after = sm.describe_endpoint(EndpointName=tiny_endpoint)
    assert {k: v for k, v in after.items() if k != "ResponseMetadata"} == {
        k: v for k, v in before.items() if k != "ResponseMetadata"
    }


def test_updating_a_missing_endpoint_names_its_arn(sm: Any, tiny_endpoint: str) -> None:
    with pytest.raises(
        ClientError,
        match='Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/never-created"',
    ):
        sm.update_endpoint(EndpointName="never-created", EndpointConfigName=tiny_endpoint)
