"""api/tgi_stream.py: TGI's stream events byte for byte, and read through the SageMaker SDK's
`predictor.predict_stream(..., iterator=LineIterator)` from a real server, as LLM-container client code
does."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import EventStreamError
from live_app import serving
from sagemaker.iterators import LineIterator
from sagemaker.predictor import Predictor
from sagemaker.serializers import JSONSerializer
from sagemaker.session import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from zeroserve.api import event_stream, tgi_stream
from zeroserve.api.tgi_stream import StreamDetails, StreamToken


def test_a_token_event_is_tgis_bytes() -> None:
    event = tgi_stream.token_event(1, StreamToken(id=42, text=" caf\u00e9", logprob=-0.25))
    assert (
        event
        == (
            'data:{"index":1,"token":{"id":42,"text":" caf\u00e9","logprob":-0.25,"special":false},'
            '"generated_text":null,"details":null}\n\n'
        ).encode()
    )


def test_the_final_event_carries_the_text_and_the_details_asked_for() -> None:
    token = StreamToken(id=2, text="</s>", logprob=math.nan, special=True)
    event = tgi_stream.final_event(3, token, "Hello world", StreamDetails("eos_token", 3, seed=7))
    assert event == (
        b'data:{"index":3,"token":{"id":2,"text":"</s>","logprob":null,"special":true},'
        b'"generated_text":"Hello world",'
        b'"details":{"finish_reason":"eos_token","generated_tokens":3,"seed":7}}\n\n'
    )
    without = json.loads(tgi_stream.final_event(3, token, "Hello world")[len(b"data:") :])
    assert without["details"] is None
    with_length = StreamDetails("length", 3, input_length=5).as_json()
    assert list(with_length) == ["finish_reason", "generated_tokens", "seed", "input_length"]


def test_an_error_event_is_tgis_error_shape() -> None:
    assert tgi_stream.error_event("Request failed during generation") == (
        b'data:{"error":"Request failed during generation","error_type":"generation"}\n\n'
    )


TOKENS = [StreamToken(15496, "Hello", -0.5), StreamToken(198, "\n", -1.0), StreamToken(995, " world", -0.1)]


def _generation_events() -> list[bytes]:
    events = [tgi_stream.token_event(i, token) for i, token in enumerate(TOKENS[:-1], start=1)]
    events.append(
        tgi_stream.final_event(len(TOKENS), TOKENS[-1], "Hello\n world", StreamDetails("length", len(TOKENS)))
    )
    # SageMaker does not promise one event per part: split one event across two parts, join two in one.
    joined = b"".join(events)
    cut = len(events[0]) // 2
    return [
        joined[:cut],
        joined[cut : len(events[0]) + len(events[1])],
        joined[len(events[0]) + len(events[1]) :],
    ]


def _app(parts: list[bytes]) -> Starlette:
    async def invoke(request: Request) -> StreamingResponse:
        await request.body()

        async def body() -> AsyncIterator[bytes]:
            for part in parts:
                yield event_stream.payload_part(part)

        headers = event_stream.response_headers("AllTraffic", tgi_stream.CONTENT_TYPE)
        return StreamingResponse(body(), headers=headers)

    return Starlette(
        routes=[Route("/endpoints/{name}/invocations-response-stream", invoke, methods=["POST"])]
    )


def _predictor(url: str) -> Predictor:
    boto_session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    session = Session(
        boto_session=boto_session,
        sagemaker_client=boto_session.client("sagemaker", endpoint_url=url),
        sagemaker_runtime_client=boto_session.client("sagemaker-runtime", endpoint_url=url),
    )
    return Predictor("gen", sagemaker_session=session, serializer=JSONSerializer())


def test_the_sdks_line_iterator_reads_one_event_per_data_line() -> None:
    with serving(_app(_generation_events())) as url:
        lines = list(
            _predictor(url).predict_stream(
                {"inputs": "Hi", "parameters": {"max_new_tokens": 3}, "stream": True}, iterator=LineIterator
            )
        )
    # What client code written for the LLM container does with each line.
    events: list[dict[str, Any]] = [
        json.loads(line[len(b"data:") :]) for line in lines if line.startswith(b"data:")
    ]
    assert [line for line in lines if not line.startswith(b"data:")] == [b""] * 3  # the blank line after each
    assert [event["index"] for event in events] == [1, 2, 3]
    assert "".join(event["token"]["text"] for event in events) == "Hello\n world"
    assert [event["generated_text"] for event in events] == [None, None, "Hello\n world"]
    assert events[-1]["details"] == {"finish_reason": "length", "generated_tokens": 3, "seed": None}


def test_a_model_stream_error_mid_stream_surfaces_from_the_sdks_iterator() -> None:
    first = tgi_stream.token_event(1, TOKENS[0])

    async def invoke(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield event_stream.payload_part(first)
            yield event_stream.model_stream_error("worker died", event_stream.STREAM_BROKEN)

        return StreamingResponse(
            body(), headers=event_stream.response_headers("AllTraffic", "text/event-stream")
        )

    app = Starlette(routes=[Route("/endpoints/{name}/invocations-response-stream", invoke, methods=["POST"])])
    with serving(app) as url:
        lines = _predictor(url).predict_stream({"inputs": "Hi"}, iterator=LineIterator)
        assert next(lines) == first[:-2]
        assert next(lines) == b""
        # botocore raises the exception event itself, before the SDK's own handle_stream_errors sees it.
        with pytest.raises(EventStreamError) as raised:
            next(lines)
    assert raised.value.response["Error"] == {"Code": "ModelStreamError", "Message": "worker died"}
