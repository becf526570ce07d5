"""Faults inside a worker, for real: a worker that stops answering (SIGSTOP, an endless loop) hits the
invocation timeout and is killed and replaced; MemorySizeInMB holds both ways, as an address-space cap that
refuses an allocation (the worker lives on) and as an RSS limit that gets the worker killed and replaced."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from processes import wait_all_dead
from server import ServerProcess, deploy

TIMEOUT_S = 2


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"ZEROSERVE_INVOCATION_TIMEOUT_S": str(TIMEOUT_S)}
    with ServerProcess(tmp_path_factory.mktemp("faults") / "data", env=env) as running:
        yield running


def ask(server: ServerProcess, endpoint: str, text: str) -> httpx.Response:
    return httpx.post(f"{server.url}/endpoints/{endpoint}/invocations", json={"inputs": text}, timeout=30)


def pid_of(server: ServerProcess, endpoint: str) -> int:
    answer = ask(server, endpoint, "hello")
    assert answer.status_code == 200, answer.text
    return int(answer.json()[0]["pid"])


def deployed(server: ServerProcess, name: str, tarball: Path, **options: Any) -> str:
    assert deploy(server.sagemaker(), name, str(tarball), **options)["EndpointStatus"] == "InService"
    return name


def test_a_stopped_worker_times_out_is_killed_and_replaced(
    faulty: ServerProcess, misbehaving_tarball: Path
) -> None:
    name = deployed(faulty, "stopped", misbehaving_tarball)
    frozen = pid_of(faulty, name)
    os.kill(frozen, signal.SIGSTOP)
    answer = ask(faulty, name, "hello")
    assert answer.status_code == 424 and "timed out" in answer.json()["message"], answer.text
    assert not wait_all_dead({frozen}, 5), "the stopped worker was killed"
    assert pid_of(faulty, name) != frozen


def test_an_endless_loop_in_inference_code_times_out_and_the_worker_is_replaced(
    faulty: ServerProcess, misbehaving_tarball: Path
) -> None:
    name = deployed(faulty, "spinning", misbehaving_tarball)
    before = pid_of(faulty, name)
    answer = ask(faulty, name, "spin")
    assert answer.status_code == 424 and "timed out" in answer.json()["message"], answer.text
    assert not wait_all_dead({before}, 5)
    assert pid_of(faulty, name) != before


def test_an_allocation_past_the_address_space_cap_is_refused_and_the_worker_lives_on(
    faulty: ServerProcess, misbehaving_tarball: Path
) -> None:
    name = deployed(faulty, "capped", misbehaving_tarball, memory_mb=1024)
    before = pid_of(faulty, name)
    refused = ask(faulty, name, "alloc:2100")
    assert refused.status_code == 424, refused.text
    assert "MemoryError" in refused.json()["message"]
    assert pid_of(faulty, name) == before, "a refused allocation is the model's error, not a dead worker"


def test_a_worker_whose_rss_passes_its_memory_size_is_killed_and_replaced(
    faulty: ServerProcess, misbehaving_tarball: Path
) -> None:
    name = deployed(faulty, "resident", misbehaving_tarball, memory_mb=1024)
    before = pid_of(faulty, name)
    over = ask(faulty, name, "touch:1100")  # under the address-space cap (2x), over 1024 MB resident
    assert over.status_code == 500, over.text
    assert over.json()["__type"] == "InternalFailure"
    assert "over the variant's MemorySizeInMB of 1024" in over.json()["message"]
    assert not wait_all_dead({before}, 5), "the worker over its memory was killed"
    assert pid_of(faulty, name) != before
