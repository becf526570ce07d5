"""The generation routes on a real server (tests/generation_server.py: the real routes, Router and Pool; the
workers run a fake generative handler in threads), read by real clients: boto3's
invoke_endpoint_with_response_stream, the official openai client, plain HTTP for TGI's Messages API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore.exceptions import ClientError, EventStreamError

from generation_server import GenerationServer, generation_server


@pytest.fixture(scope="module")
def server() -> Iterator[GenerationServer]:
    with generation_server() as running:
        yield running


def runtime_client(url: str) -> Any:
    return boto3.client(
        "sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x",
    )


def sse_lines(parts: list[bytes]) -> list[dict[str, Any]]:
    text = b"".join(parts).decode()
    assert text.endswith("\n\n")
    return [json.loads(event.removeprefix("data:")) for event in text.strip().split("\n\n")]


def stream_parts(url: str, body: dict[str, Any]) -> list[bytes]:
    answer = runtime_client(url).invoke_endpoint_with_response_stream(
        EndpointName="gen", Body=json.dumps(body), ContentType="application/json"
    )
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    return [event["PayloadPart"]["Bytes"] for event in answer["Body"]]


def test_boto3_streams_one_tgi_event_per_token_and_the_whole_text_last(server: GenerationServer) -> None:
    body = {"inputs": "one two three", "parameters": {"details": True}, "stream": True}
    parts = stream_parts(server.url, body)
    events = sse_lines(parts)
    assert len(parts) == 3, "one PayloadPart per event"
    assert events[0] == {
        "index": 1, "token": {"id": 101, "text": "one", "logprob": -0.5, "special": False},
        "generated_text": None, "details": None,
    }
    assert [e["token"]["text"] for e in events] == ["one", " two", " three"]
    assert events[-1]["generated_text"] == "one two three"
    assert events[-1]["details"] == {
        "finish_reason": "eos_token", "generated_tokens": 3, "seed": None, "input_length": 3
    }
    record = server.records.records[-1]
    assert record.status_code == 200 and record.tokens_generated == 3 and record.time_to_first_token_ms > 0
    assert record.model_ms == 1.0, "the worker's time for the whole stream is what is billed"


def test_an_error_before_the_first_token_is_sagemakers_model_error(server: GenerationServer) -> None:
    with pytest.raises(ClientError) as caught:
        stream_parts(server.url, {"inputs": "refuse"})
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError" and error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert "bogus" in error["Error"]["Message"]
    with pytest.raises(ClientError) as unknown:
        runtime_client(server.url).invoke_endpoint_with_response_stream(EndpointName="nope", Body=b"{}")
    assert unknown.value.response["Error"]["Code"] == "ValidationError"


def test_an_error_after_the_first_token_is_a_model_stream_error_event_and_the_stream_ends(
    server: GenerationServer,
) -> None:
    answer = runtime_client(server.url).invoke_endpoint_with_response_stream(
        EndpointName="gen", Body=json.dumps({"inputs": "a b boom c"}), ContentType="application/json"
    )
    received = []
    with pytest.raises(EventStreamError) as caught:
        for event in answer["Body"]:
            received.append(event["PayloadPart"]["Bytes"])
    texts = [e["token"]["text"] for e in sse_lines(received)]
    assert texts == ["a", " b"], "every token before the failure was sent as it came"
    assert caught.value.response["Error"]["Code"] == "ModelStreamError"
    assert "mid-stream" in caught.value.response["Error"]["Message"]
    assert server.records.records[-1].error_code == "ModelError"
    assert server.router.endpoints["gen"][0].gate.inflight == 0


def test_a_client_that_leaves_mid_stream_stops_its_generation_within_a_token_and_frees_its_slot() -> None:
    with generation_server(max_concurrency=1) as server:
        runtime_client(server.url).invoke_endpoint(EndpointName="gen", Body=b'{"inputs": "warm"}')
        worker = server.hub.workers[0]
        worker.hold_after_tokens = 2  # token 3 waits for the cancel
        body = json.dumps({"inputs": " ".join(f"w{i}" for i in range(1000))})
        url = f"{server.url}/endpoints/gen/invocations-response-stream"
        with httpx.stream("POST", url, content=body, timeout=30) as response:
            assert response.status_code == 200
            next(response.iter_raw())  # the first PayloadPart, then the client goes
        assert worker.generation_ended.wait(timeout=30)
        # Token 3 waits for the cancel; token 2 may already see it if the client was quick.
        assert list(worker.stopped_at_token.values()) in ([2], [3]), "stopped at the token after the cancel"
        worker.hold_after_tokens = None
        assert len(stream_parts(server.url, {"inputs": "slot free"})) == 2, "MaxConcurrency 1 admits again"
        leaver = server.records.records[-2]
        assert leaver.status_code == 200 and 1 <= leaver.tokens_generated <= 3


def openai_client(server: GenerationServer, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def test_openai_chat_completion_whole_and_streamed(server: GenerationServer) -> None:
    client = openai_client(server)
    messages: Any = [{"role": "user", "content": "hello there"}]
    answer = client.chat.completions.create(model="gen", messages=messages, temperature=0)
    assert answer.choices[0].message.content == "hello there" and answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens == 2
    chunks = list(
        client.chat.completions.create(
            model="gen", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "hello there" and chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 4


def test_openai_text_completion_and_its_errors(server: GenerationServer) -> None:
    client = openai_client(server)
    answer = client.completions.create(model="gen", prompt="a b c d", max_tokens=2)
    assert answer.choices[0].text == "a b" and answer.choices[0].finish_reason == "length"
    chunks = client.completions.create(model="gen", prompt="x y", stream=True)
    streamed = "".join(c.choices[0].text for c in chunks)
    assert streamed == "x y"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="x")
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="gen", prompt="x", frequency_penalty=1.0)
    assert "frequency_penalty" in str(refused.value)


def test_bearer_keys_guard_the_openai_routes_when_configured() -> None:
    with generation_server(api_keys="sekrit") as server:
        with pytest.raises(openai.AuthenticationError):
            openai_client(server, "wrong").completions.create(model="gen", prompt="x")
        answer = openai_client(server, "sekrit").completions.create(model="gen", prompt="x")
        assert answer.choices[0].text == "x"


def test_a_messages_body_on_invocations_answers_a_chat_completion(server: GenerationServer) -> None:
    client = runtime_client(server.url)
    body = {"messages": [{"role": "user", "content": "hi you"}], "max_tokens": 1}
    answer = json.loads(client.invoke_endpoint(EndpointName="gen", Body=json.dumps(body))["Body"].read())
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["content"] == "hi"
    assert answer["choices"][0]["finish_reason"] == "length"
    toolkit = client.invoke_endpoint(EndpointName="gen", Body=json.dumps({"inputs": "messages"}))
    assert json.loads(toolkit["Body"].read()) == [{"generated_text": "batch"}], "a toolkit body is untouched"
    streamed = httpx.post(f"{server.url}/endpoints/gen/invocations", json={**body, "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text.startswith("data:{") and streamed.text.endswith("data:[DONE]\n\n")


def test_a_messages_body_streams_chat_chunks_through_the_response_stream(server: GenerationServer) -> None:
    parts = stream_parts(server.url, {"messages": [{"role": "user", "content": "p q"}], "stream": True})
    text = b"".join(parts).decode()
    chunks = [json.loads(e.removeprefix("data:")) for e in text.strip().split("\n\n") if e != "data:[DONE]"]
    assert chunks[0]["object"] == "chat.completion.chunk"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "p q"


def test_the_public_predict_route_still_answers(server: GenerationServer) -> None:
    answer = httpx.post(f"{server.url}/v1/gen/predict", json={"text": "fine"})
    assert answer.status_code == 400 and "did not answer like a text classifier" in answer.text
