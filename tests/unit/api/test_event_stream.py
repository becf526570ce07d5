"""api/event_stream.py: the bytes it writes, read back by boto3's own invoke_endpoint_with_response_stream
against a real server, and by botocore's event stream decoder."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import EventStreamError
from live_app import serving
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from zeroserve import errors
from zeroserve.api import event_stream

PARTS = [b'{"outputs": ["Hel', b'lo"]}\n', "caf\u00e9 \u2615".encode()[:4], bytes(range(256))]


def _app(events: list[bytes]) -> Starlette:
    async def invoke(request: Request) -> StreamingResponse:
        await request.body()

        async def body() -> AsyncIterator[bytes]:
            for event in events:
                yield event

        return StreamingResponse(
            body(), headers=event_stream.response_headers("AllTraffic", "application/jsonlines")
        )

    return Starlette(
        routes=[Route("/endpoints/{name}/invocations-response-stream", invoke, methods=["POST"])]
    )


def _invoke(url: str) -> dict[str, Any]:
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    answer: dict[str, Any] = client.invoke_endpoint_with_response_stream(
        EndpointName="gen", Body=b'{"inputs": "hi"}', ContentType="application/json"
    )
    return answer


def test_payload_parts_reach_boto3_byte_for_byte_with_sagemakers_headers() -> None:
    with serving(_app([event_stream.payload_part(part) for part in PARTS])) as url:
        answer = _invoke(url)
        events = list(answer["Body"])
    assert [event["PayloadPart"]["Bytes"] for event in events] == PARTS
    assert answer["ContentType"] == "application/jsonlines"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"


def test_model_stream_error_raises_botocores_error_with_its_code_and_message() -> None:
    events = [
        event_stream.payload_part(b"first"),
        event_stream.model_stream_error("worker died", event_stream.STREAM_BROKEN),
    ]
    with serving(_app(events)) as url:
        stream = iter(_invoke(url)["Body"])
        assert next(stream) == {"PayloadPart": {"Bytes": b"first"}}
        with pytest.raises(EventStreamError) as raised:
            next(stream)
    assert raised.value.response["Error"] == {"Code": "ModelStreamError", "Message": "worker died"}


def test_internal_stream_failure_raises_botocores_error_with_its_message() -> None:
    app = _app([event_stream.internal_stream_failure("lost the worker")])
    with serving(app) as url, pytest.raises(EventStreamError) as raised:
        list(_invoke(url)["Body"])
    assert raised.value.response["Error"] == {"Code": "InternalStreamFailure", "Message": "lost the worker"}


def _decoded(data: bytes) -> list[Any]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


def test_model_stream_error_carries_the_service_models_members_in_its_payload() -> None:
    # botocore's EventStreamError keeps only Code and Message; ErrorCode is in the payload for clients that
    # read it (the SageMaker SDK's handle_stream_errors expects it).
    [message] = _decoded(
        event_stream.model_stream_error("too slow", event_stream.MODEL_INVOCATION_TIME_EXCEEDED)
    )
    assert message.headers == {
        ":exception-type": "ModelStreamError",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    assert json.loads(message.payload) == {"Message": "too slow", "ErrorCode": "ModelInvocationTimeExceeded"}


def test_a_flipped_byte_fails_botocores_checksum() -> None:
    data = bytearray(event_stream.payload_part(b"payload"))
    data[-6] ^= 0xFF  # inside the payload: only the message CRC can notice
    with pytest.raises(ChecksumMismatch):
        _decoded(bytes(data))


def test_a_long_payload_is_split_into_parts_that_join_back() -> None:
    data = bytes(range(256)) * 10
    messages = _decoded(b"".join(event_stream.payload_parts(data, max_part_bytes=1000)))
    assert [len(message.payload) for message in messages] == [1000, 1000, 560]
    assert b"".join(message.payload for message in messages) == data
    assert list(event_stream.payload_parts(b"")) == []


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), ("ModelStreamError", "ModelInvocationTimeExceeded")),
        (errors.ModelError("the model failed"), ("ModelStreamError", "StreamBroken")),
        (errors.InternalFailure("no worker"), ("InternalStreamFailure", None)),
        (RuntimeError("secret detail"), ("InternalStreamFailure", None)),
    ],
)
def test_a_failure_after_the_first_part_becomes_the_matching_exception_event(
    exc: BaseException, expected: tuple[str, str | None]
) -> None:
    [message] = _decoded(event_stream.error_event(exc))
    payload = json.loads(message.payload)
    assert (message.headers[":exception-type"], payload.get("ErrorCode")) == expected
    assert "secret detail" not in payload["Message"]  # an unexpected error's text stays in the server log
