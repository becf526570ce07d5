"""api/openai_requests.py and openai_responses.py: request bodies read into the toolkit's terms, and answers
built from a fake generator served by a real server, read back by the official `openai` client (streamed and
not)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from live_app import serving
from openai.types.chat import ChatCompletion
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from zeroserve import errors
from zeroserve.api import openai_requests as oreq
from zeroserve.api import openai_responses as oresp
from zeroserve.api.auth import check_bearer_key
from zeroserve.api.tgi_stream import FinishReason

# ---- reading requests ----

CHAT = {"model": "gen", "messages": [{"role": "user", "content": "Hi"}]}


def _refused(body: dict[str, Any], **options: Any) -> oreq.OpenAIRequestError:
    with pytest.raises(oreq.OpenAIRequestError) as raised:
        oreq.parse_chat_request(body, **options)
    return raised.value


def test_temperature_zero_is_greedy_and_needs_no_top_p() -> None:
    request = oreq.parse_chat_request({**CHAT, "temperature": 0, "top_p": 0.5, "max_tokens": 8})
    assert request.parameters == {"max_new_tokens": 8, "do_sample": False}
    assert request.inputs == [{"role": "user", "content": "Hi"}]


def test_sampling_is_the_default_and_every_honoured_field_maps_to_the_toolkits_name() -> None:
    assert oreq.parse_chat_request(CHAT).parameters == {"do_sample": True}
    body = {
        **CHAT,
        "max_completion_tokens": 16,
        "temperature": 0.7,
        "top_p": 0.9,
        "n": 2,
        "stop": ["\n", "User:"],
        "seed": 42,
    }
    assert oreq.parse_chat_request(body).parameters == {
        "max_new_tokens": 16,
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop_sequence": ["\n", "User:"],
        "num_return_sequences": 2,
        "seed": 42,
    }
    assert oreq.parse_chat_request({**CHAT, "stop": "###"}).parameters["stop_sequence"] == "###"


def test_a_null_field_is_read_as_left_out() -> None:
    request = oreq.parse_chat_request(
        {**CHAT, "temperature": None, "frequency_penalty": None, "logprobs": None}
    )
    assert request.parameters == {"do_sample": True}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"presence_penalty": -1}, "presence_penalty"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"tools": [{"type": "function"}]}, "tools"),
    ],
)
def test_a_field_zeroserve_cannot_honour_is_refused_by_name(extra: dict[str, Any], param: str) -> None:
    refused = _refused({**CHAT, **extra})
    assert (refused.param, refused.code) == (param, "unsupported_parameter")
    assert f"'{param}'" in refused.message


def test_a_field_left_at_the_value_that_asks_for_nothing_is_accepted() -> None:
    body = {**CHAT, "frequency_penalty": 0, "presence_penalty": 0.0, "logprobs": False, "user": "u-1"}
    assert oreq.parse_chat_request(body).parameters == {"do_sample": True}


def test_an_unknown_field_is_refused_by_name() -> None:
    refused = _refused({**CHAT, "temprature": 0.5})
    assert refused.param == "temprature"
    assert refused.message == "Unrecognized request argument supplied: temprature"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 2000}, "max_tokens"),  # above the server's ceiling (1024 here)
        ({"max_tokens": 5, "max_completion_tokens": 6}, "max_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 0}, "n"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"seed": "7"}, "seed"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),  # without stream
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x", "name": "bob"}]}, "messages[0].name"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages[0].content[0]",
        ),
        ({"model": ""}, "model"),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(extra: dict[str, Any], param: str) -> None:
    assert _refused({**CHAT, **extra}, max_new_tokens_limit=1024).param == param


def test_text_parts_join_and_developer_is_the_system_role() -> None:
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "you"}]},
    ]
    assert oreq.parse_chat_request({**CHAT, "messages": messages}).inputs == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello, you"},
    ]


def test_a_messages_body_on_invocations_needs_no_model_and_becomes_a_toolkit_body() -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    assert oreq.is_messages_body(body)
    assert not oreq.is_messages_body({"inputs": [{"role": "user", "content": "Hi"}]})
    request = oreq.parse_chat_request(body, require_model=False)
    assert request.model is None
    assert json.loads(request.toolkit_body()) == {
        "inputs": [{"role": "user", "content": "Hi"}],
        "parameters": {"max_new_tokens": 4, "do_sample": True},
    }


def test_a_completion_prompt_is_the_toolkits_inputs() -> None:
    request = oreq.parse_completion_request({"model": "gen", "prompt": ["a", "b"], "max_tokens": 3})
    assert (request.kind, request.inputs, request.parameters["max_new_tokens"]) == ("text", ["a", "b"], 3)
    with pytest.raises(oreq.OpenAIRequestError) as raised:
        oreq.parse_completion_request({"model": "gen", "prompt": [[1, 2, 3]]})
    assert raised.value.param == "prompt"
    with pytest.raises(oreq.OpenAIRequestError):
        oreq.parse_completion_request({"model": "gen", "messages": CHAT["messages"]})


def test_bearer_keys_guard_only_when_configured() -> None:
    check_bearer_key(None, "")
    check_bearer_key("Bearer anything", "")
    check_bearer_key("Bearer k2", "k1, k2")
    with pytest.raises(errors.MissingAuthentication):
        check_bearer_key(None, "k1")
    with pytest.raises(errors.MissingAuthentication):
        check_bearer_key("Basic k1", "k1")
    with pytest.raises(errors.UnrecognizedClient):
        check_bearer_key("Bearer k3", "k1,k2")


def test_error_bodies_use_openais_shape_and_statuses() -> None:
    refused = oreq.OpenAIRequestError(
        "Unsupported parameter: 'logprobs'", "logprobs", "unsupported_parameter"
    )
    assert (oresp.error_status(refused), oresp.error_body(refused)) == (
        400,
        {
            "error": {
                "message": "Unsupported parameter: 'logprobs'",
                "type": "invalid_request_error",
                "param": "logprobs",
                "code": "unsupported_parameter",
            }
        },
    )
    assert oresp.error_status(errors.UnrecognizedClient("bad key")) == 401
    assert oresp.error_status(errors.ResourceNotFound("no such endpoint")) == 404
    assert oresp.error_body(errors.Throttled("busy"))["error"]["type"] == "rate_limit_error"
    assert oresp.error_body(RuntimeError("detail"))["error"]["type"] == "server_error"


# ---- answers, read by the openai client from a real server ----

TOKENS = ["Hel", "lo", " there"]
API_KEY = "k-test"


def _generate(request: oreq.GenerationRequest) -> tuple[list[list[str]], FinishReason, int]:
    """A fake generator: each choice is TOKENS, cut at max_new_tokens; the prompt counts a token a word."""
    limit = request.parameters.get("max_new_tokens", len(TOKENS))
    tokens = TOKENS[:limit]
    reason: FinishReason = "length" if limit < len(TOKENS) else "eos_token"
    if request.kind == "chat":
        prompt_tokens = sum(len(str(m["content"]).split()) for m in request.inputs if isinstance(m, dict))
    else:
        prompt_tokens = len(str(request.inputs).split())
    n = request.parameters.get("num_return_sequences", 1)
    return [tokens] * n, reason, prompt_tokens


def _answer(request: oreq.GenerationRequest, model: str) -> Response:
    choices, reason, prompt_tokens = _generate(request)
    usage = oresp.Usage(prompt_tokens, len(choices[0]))
    if not request.stream:
        built = [oresp.Choice("".join(tokens), reason, i) for i, tokens in enumerate(choices)]
        return JSONResponse(oresp.completion(request.kind, model, built, usage))
    stream = oresp.CompletionStream(request.kind, model, include_usage=request.include_usage)

    async def events() -> AsyncIterator[bytes]:
        for i in range(len(choices)):
            yield stream.start(i)
        for i, tokens in enumerate(choices):
            for token in tokens:
                if model == "broken":
                    yield oresp.error_event(errors.ModelError("the worker died mid-stream"))
                    return
                yield stream.delta(token, i)
            yield stream.finish(reason, i)
        yield stream.end(usage)

    return StreamingResponse(events(), media_type="text/event-stream")


def _route(parse: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            check_bearer_key(request.headers.get("authorization"), API_KEY)
            parsed: oreq.GenerationRequest = parse(await request.json(), max_new_tokens_limit=1024)
            if parsed.model not in ("gen", "broken"):
                raise errors.ResourceNotFound(f"The model '{parsed.model}' does not exist")
        except errors.ZeroserveError as exc:
            return JSONResponse(oresp.error_body(exc), status_code=oresp.error_status(exc))
        return _answer(parsed, parsed.model or "gen")

    return endpoint


async def _invocations(request: Request) -> Response:
    body = await request.json()
    assert oreq.is_messages_body(body)
    return _answer(oreq.parse_chat_request(body, require_model=False), "tgi")


APP = Starlette(
    routes=[
        Route("/v1/chat/completions", _route(oreq.parse_chat_request), methods=["POST"]),
        Route("/v1/completions", _route(oreq.parse_completion_request), methods=["POST"]),
        Route("/invocations", _invocations, methods=["POST"]),
    ]
)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serving(APP) as base:
        yield base


@pytest.fixture(scope="module")
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0)


MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


def test_a_chat_completion_parses_in_the_openai_client(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="gen", messages=MESSAGES, temperature=0)
    assert answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-")
    [choice] = answer.choices
    assert (choice.message.role, choice.message.content, choice.finish_reason) == (
        "assistant",
        "Hello there",
        "stop",
    )
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (
        2,
        3,
        5,
    )


def test_n_chat_choices_come_back_indexed(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="gen", messages=MESSAGES, n=2, max_tokens=2)
    assert [(c.index, c.message.content, c.finish_reason) for c in answer.choices] == [
        (0, "Hello", "length"),
        (1, "Hello", "length"),
    ]


def test_a_streamed_chat_gives_role_then_deltas_then_finish_then_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gen", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Hello there"
    reasons = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert reasons == [None, None, None, None, "stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 5
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_a_streamed_chat_without_usage_ends_at_done(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gen", messages=MESSAGES, stream=True, max_tokens=1))
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(chunk.usage is None for chunk in chunks)


def test_a_text_completion_parses_in_the_openai_client(client: openai.OpenAI) -> None:
    answer = client.completions.create(model="gen", prompt="Say hello", max_tokens=2)
    assert answer.object == "text_completion"
    assert answer.id.startswith("cmpl-")
    assert [(c.text, c.finish_reason) for c in answer.choices] == [("Hello", "length")]
    assert answer.usage is not None and answer.usage.completion_tokens == 2


def test_a_streamed_text_completion_joins_to_the_text(client: openai.OpenAI) -> None:
    chunks = list(
        client.completions.create(
            model="gen", prompt="Say hello", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Hello there"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 2


def test_an_unsupported_parameter_is_a_400_the_client_raises_with_its_name(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="gen", messages=MESSAGES, frequency_penalty=0.5)
    assert raised.value.status_code == 400
    assert raised.value.param == "frequency_penalty"
    assert raised.value.code == "unsupported_parameter"


def test_an_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="nope", messages=MESSAGES)
    assert raised.value.code == "model_not_found"


def test_a_wrong_key_is_a_401(url: str) -> None:
    wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="guess", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        wrong.chat.completions.create(model="gen", messages=MESSAGES)
    assert raised.value.code == "invalid_api_key"


def test_an_error_mid_stream_raises_in_the_client_after_the_text_so_far(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="broken", messages=MESSAGES, stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    with pytest.raises(openai.APIError, match="the worker died mid-stream"):
        list(stream)


def test_tgis_messages_api_on_invocations_answers_a_chat_completion(url: str) -> None:
    body = {"messages": MESSAGES, "max_tokens": 2, "temperature": 0}
    answer = httpx.post(f"{url}/invocations", json=body, timeout=10)
    parsed = ChatCompletion.model_validate(answer.json())  # the openai client's own model of the object
    assert parsed.model == "tgi"
    assert (parsed.choices[0].message.content, parsed.choices[0].finish_reason) == ("Hello", "length")


def test_tgis_streamed_chat_writes_data_without_a_space_as_axum_does() -> None:
    stream = oresp.CompletionStream("chat", "tgi", id_="chatcmpl-1", created_s=0, prefix=b"data:")
    first = stream.start()
    assert first.startswith(b'data:{"id":"chatcmpl-1","object":"chat.completion.chunk"')
    assert json.loads(first[len(b"data:") :])["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert stream.end() == b"data:[DONE]\n\n"
    assert oresp.CompletionStream("text", "gen").start() == b""  # text completions have no role chunk
