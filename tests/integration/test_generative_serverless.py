"""Serverless semantics hold for generation, with real worker processes: an idle generative endpoint scales to
zero and its next cold start forks from a template; MaxConcurrency counts open streams; a client that leaves
mid-stream stops its generation and frees the slot; a worker killed with SIGKILL mid-stream ends the stream
with an error event (never a hang) and the endpoint serves again.

The mid-stream tests need a generation that lasts: a Llama wider and deeper than the tiny one (hidden 512,
8 layers; ~5 ms a token on one core), asked for 1,000 tokens with no early end, takes seconds, while what
the tests do between its first token and its end takes milliseconds.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from generative_models import generative_checkpoint
from processes import wait_until
from server import CREDENTIALS, ServerProcess, deploy, invoke_json, pack_model

IDLE_TIMEOUT_S = 1.5
PROMPT = "The movie was"
LONG = {"inputs": PROMPT, "parameters": {"max_new_tokens": 1000, "min_new_tokens": 1000}}
SHORT = {"inputs": PROMPT, "parameters": {"max_new_tokens": 2}}


def make_slow_llama(out_dir: Path) -> Path:
    """The tiny Llama's tokenizer and settings; a model big enough that a long generation takes seconds."""
    import torch
    import transformers

    source = generative_checkpoint("llama")
    out_dir.mkdir(parents=True)
    for path in source.iterdir():
        if path.name not in ("config.json", "model.safetensors"):
            shutil.copy(path, out_dir / path.name)
    config = transformers.LlamaConfig.from_pretrained(source)
    config.hidden_size, config.intermediate_size, config.num_hidden_layers = 512, 1024, 8
    config.max_position_embeddings = 2048
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def gen_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # A queue of one per endpoint: one request past MaxConcurrency waits, the next is throttled.
    env = {"ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S), "ZEROSERVE_QUEUE_PER_ENDPOINT": "1"}
    with ServerProcess(tmp_path_factory.mktemp("generative-serverless") / "data", env=env) as running:
        yield running


@pytest.fixture(scope="module")
def slow(gen_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    """MaxConcurrency 1; a provisioned worker, so that one worker serves a test from start to end."""
    folder = tmp_path_factory.mktemp("slow-llama")
    tarball = pack_model(make_slow_llama(folder / "model"), folder / "model.tar.gz")
    described = deploy(gen_server.sagemaker(), "slow", str(tarball), env={}, max_concurrency=1, provisioned=1)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    assert wait_until(lambda: len(workers_of(gen_server, "slow")) == 1, 30)
    return "slow"


def status(server: ServerProcess) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/zeroserve/status", timeout=10).json())


def variant_of(server: ServerProcess, endpoint: str) -> dict[str, Any]:
    variant: dict[str, Any] = status(server)["endpoints"][endpoint]["variants"][0]
    return variant


def workers_of(server: ServerProcess, endpoint: str) -> list[dict[str, Any]]:
    return list(variant_of(server, endpoint)["workers"])


def idle(server: ServerProcess, endpoint: str) -> bool:
    variant = variant_of(server, endpoint)
    return variant["inflight"] == 0 and all(worker["inflight"] == 0 for worker in variant["workers"])


def cpu_s(pid: int) -> float:
    """The CPU time a process has used, all its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runtime(server: ServerProcess) -> Any:
    """A sagemaker-runtime client that gives up on a silent stream after 60 s (a hang fails the test)."""
    import boto3

    config = Config(retries={"total_max_attempts": 1}, read_timeout=60)  # no retry of a throttled call
    return boto3.client("sagemaker-runtime", endpoint_url=server.url, config=config, **CREDENTIALS)


def open_stream(server: ServerProcess, endpoint: str) -> tuple[Any, Iterator[dict[str, Any]]]:
    """A boto3 response stream of LONG, after its first PayloadPart (the generation runs on)."""
    answer = runtime(server).invoke_endpoint_with_response_stream(
        EndpointName=endpoint, Body=json.dumps(LONG), ContentType="application/json"
    )
    events = iter(answer["Body"])
    assert next(events)["PayloadPart"]["Bytes"].startswith(b'data:{"index":1,')
    return answer["Body"], events


def test_an_idle_generative_endpoint_scales_to_zero_and_cold_starts_from_a_template(
    gen_server: ServerProcess, tmp_path: Path
) -> None:
    tarball = pack_model(generative_checkpoint("llama"), tmp_path / "llama.tar.gz")
    assert deploy(gen_server.sagemaker(), "zero", str(tarball), env={})["EndpointStatus"] == "InService"
    assert wait_until(lambda: workers_of(gen_server, "zero") == [], IDLE_TIMEOUT_S + 10)

    first = httpx.post(f"{gen_server.url}/endpoints/zero/invocations", json=SHORT, timeout=60)
    assert first.status_code == 200 and first.headers["X-Zeroserve-Cold-Start"] == "1"
    assert first.json()[0]["generated_text"].startswith(PROMPT)
    assert wait_until(
        lambda: any(t["endpoint"] == "zero" and t["ready"] for t in status(gen_server)["templates"]), 60
    )
    [template] = [t for t in status(gen_server)["templates"] if t["endpoint"] == "zero" and t["ready"]]
    assert wait_until(lambda: workers_of(gen_server, "zero") == [], IDLE_TIMEOUT_S + 10)

    events = list(
        runtime(gen_server).invoke_endpoint_with_response_stream(
            EndpointName="zero", Body=json.dumps(SHORT), ContentType="application/json"
        )["Body"]
    )
    last = json.loads(events[-1]["PayloadPart"]["Bytes"][len(b"data:") :])
    assert len(events) == 2 and last["generated_text"] == first.json()[0]["generated_text"][len(PROMPT) :]
    [worker] = workers_of(gen_server, "zero")
    assert worker["template_pid"] == template["pid"], "the cold start was forked from the template"
    assert wait_until(lambda: workers_of(gen_server, "zero") == [], IDLE_TIMEOUT_S + 10)


def test_max_concurrency_counts_an_open_stream_so_the_next_request_queues_and_the_one_after_is_throttled(
    gen_server: ServerProcess, slow: str
) -> None:
    body, _ = open_stream(gen_server, slow)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            waiting = pool.submit(invoke_json, runtime(gen_server), slow, SHORT)
            assert wait_until(lambda: variant_of(gen_server, slow)["queued"] == 1, 30)
            for call in ("invoke_endpoint_with_response_stream", "invoke_endpoint"):
                with pytest.raises(ClientError) as caught:
                    getattr(runtime(gen_server), call)(EndpointName=slow, Body=json.dumps(SHORT))
                assert caught.value.response["Error"]["Code"] == "ThrottlingException", call
                assert "MaxConcurrency of 1" in caught.value.response["Error"]["Message"]
            assert not waiting.done(), "the queued request waits for the stream's slot"
        finally:
            body.close()
        assert waiting.result(timeout=60)[0]["generated_text"].startswith(PROMPT)
    assert wait_until(lambda: idle(gen_server, slow), 30)


def test_a_client_that_leaves_mid_stream_stops_its_generation_and_frees_the_slot(
    gen_server: ServerProcess, slow: str
) -> None:
    rt = runtime(gen_server)
    assert invoke_json(rt, slow, SHORT)
    [worker] = workers_of(gen_server, slow)
    pid = worker["pid"]
    before = cpu_s(pid)
    hundred = {"inputs": PROMPT, "parameters": {"max_new_tokens": 100, "min_new_tokens": 100}}
    assert invoke_json(rt, slow, hundred)
    per_hundred_tokens_s = cpu_s(pid) - before

    started = cpu_s(pid)
    url = f"{gen_server.url}/endpoints/{slow}/invocations-response-stream"
    with httpx.stream("POST", url, json=LONG, timeout=60) as response:
        assert response.status_code == 200
        next(response.iter_raw())  # the first PayloadPart, then the client goes
    assert wait_until(lambda: idle(gen_server, slow), 30), "the slot is freed"
    # MaxConcurrency 1 admits the next request, and the same worker answers it once it has stopped the other.
    assert invoke_json(rt, slow, SHORT)[0]["generated_text"].startswith(PROMPT)
    assert [w["pid"] for w in workers_of(gen_server, slow)] == [pid]
    spent_s = cpu_s(pid) - started
    assert spent_s < 3 * per_hundred_tokens_s, (
        f"{spent_s:.2f} s of CPU since the stream began, {per_hundred_tokens_s:.2f} s per 100 tokens: "
        "the 1,000-token generation went on after its client left"
    )


def test_a_worker_killed_mid_stream_ends_the_stream_with_an_error_event_and_the_endpoint_serves_again(
    gen_server: ServerProcess, slow: str
) -> None:
    _, events = open_stream(gen_server, slow)
    [worker] = workers_of(gen_server, slow)
    os.kill(worker["pid"], signal.SIGKILL)
    with pytest.raises(EventStreamError) as caught:
        for _ in events:  # the tokens already sent, then the error event; a hang would time out the read
            pass
    assert caught.value.response["Error"]["Code"] in ("ModelStreamError", "InternalStreamFailure")
    assert wait_until(lambda: idle(gen_server, slow), 30)
    assert invoke_json(runtime(gen_server), slow, SHORT)[0]["generated_text"].startswith(PROMPT)
    assert worker["pid"] not in [w["pid"] for w in workers_of(gen_server, slow)]
