"""Generative endpoints end to end: a real `zeroserve serve`, tiny seeded checkpoints (a Llama deployed
without HF_TASK, a T5 for summarization) deployed serverless with boto3 and read by the clients people use:
boto3's invoke_endpoint and invoke_endpoint_with_response_stream, the SageMaker SDK's predict_stream, the
official openai client. Every answer is checked against the generative handler run in this process on a
bundle built from the same checkpoint, so the server adds nothing and loses nothing on the way. Bad input is
refused with a clear error, and a model the converter cannot handle fails its endpoint, naming why.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from botocore.exceptions import ClientError

from generative_models import generative_checkpoint
from models import make_tiny_bert
from server import ServerProcess, deploy, invoke_json, pack_model
from zeroserve.conversion.export import build_bundle
from zeroserve.runtimes.base import Handler, Invocation, Reply
from zeroserve.runtimes.loader import load_handler

MAX_NEW_TOKENS = 40  # the server's ZEROSERVE_MAX_NEW_TOKENS
API_KEY = "sk-zeroserve-test"
PROMPT = "The movie was"
CHAT = [{"role": "system", "content": "You are kind."}, {"role": "user", "content": "Tell me a story."}]
SOURCE = "The film is a quiet story about a family that moves to the sea and finds its way again."


@pytest.fixture(scope="module")
def gen_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"ZEROSERVE_MAX_NEW_TOKENS": str(MAX_NEW_TOKENS), "ZEROSERVE_API_KEYS": API_KEY}
    with ServerProcess(tmp_path_factory.mktemp("generative") / "data", env=env) as running:
        yield running


def _deployed(server: ServerProcess, name: str, checkpoint: str, env: dict[str, str], tmp: Path) -> str:
    tarball = pack_model(generative_checkpoint(checkpoint), tmp / f"{name}.tar.gz")
    described = deploy(server.sagemaker(), name, str(tarball), env=env)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return name


@pytest.fixture(scope="module")
def llama(gen_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Llama deployed with no HF_TASK at all: the task is inferred from LlamaForCausalLM."""
    return _deployed(gen_server, "llama", "llama", {}, tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="module")
def t5(gen_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _deployed(gen_server, "t5", "t5", {"HF_TASK": "summarization"}, tmp_path_factory.mktemp("t5"))


def _in_process(checkpoint: str, task: str | None, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Handler:
    """The handler a worker runs, loaded here from a bundle the deploy-time converter builds."""
    manifest = build_bundle(generative_checkpoint(checkpoint), tmp / "bundle", task=task, env={})
    assert manifest.task in ("text-generation", "summarization")
    monkeypatch.setenv("ZEROSERVE_MAX_NEW_TOKENS", str(MAX_NEW_TOKENS))
    return load_handler(tmp / "bundle", threads=1)


@pytest.fixture(scope="module")
def llama_here(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Handler]:
    with pytest.MonkeyPatch.context() as patch:
        yield _in_process("llama", None, tmp_path_factory.mktemp("llama-here"), patch)


@pytest.fixture(scope="module")
def t5_here(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Handler]:
    with pytest.MonkeyPatch.context() as patch:
        yield _in_process("t5", "summarization", tmp_path_factory.mktemp("t5-here"), patch)


def answer_here(handler: Handler, body: dict[str, Any]) -> Any:
    (outcome,) = handler.handle_batch([Invocation(json.dumps(body).encode())])
    assert isinstance(outcome, Reply), outcome
    return json.loads(outcome.body)


def new_text(handler: Handler, body: dict[str, Any]) -> str:
    """The toolkit answer's new text: return_full_text false, in this process."""
    parameters = {**body.get("parameters", {}), "return_full_text": False}
    [first] = answer_here(handler, {**body, "parameters": parameters})
    text: str = first["generated_text"]
    return text


def stream_events(server: ServerProcess, name: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """boto3's response stream, each PayloadPart one TGI `data:` line, parsed."""
    answer = server.runtime().invoke_endpoint_with_response_stream(
        EndpointName=name, Body=json.dumps(body), ContentType="application/json"
    )
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    parts = [event["PayloadPart"]["Bytes"] for event in answer["Body"]]
    events = []
    for part in parts:
        assert part.startswith(b"data:{") and part.endswith(b"}\n\n"), part
        events.append(json.loads(part[len(b"data:") :]))
    return events


def test_llama_without_hf_task_answers_as_its_handler_does_in_process(
    gen_server: ServerProcess, llama: str, llama_here: Handler
) -> None:
    status = httpx.get(f"{gen_server.url}/zeroserve/status").json()
    assert status["endpoints"][llama]["variants"][0]["model"]["task"] == "text-generation"
    bodies: list[dict[str, Any]] = [
        {"inputs": PROMPT},
        {"inputs": PROMPT, "parameters": {"max_new_tokens": 12, "return_full_text": False}},
        {"inputs": [PROMPT, "A second one"], "parameters": {"max_new_tokens": 5}},
        {"inputs": PROMPT, "parameters": {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 6}},
        {"inputs": CHAT, "parameters": {"max_new_tokens": 8}},
    ]
    for body in bodies:
        assert invoke_json(gen_server.runtime(), llama, body) == answer_here(llama_here, body), body
    chat = invoke_json(gen_server.runtime(), llama, bodies[-1])
    assert chat[0]["generated_text"][:2] == CHAT and chat[0]["generated_text"][2]["role"] == "assistant"


def test_t5_summarization_answers_as_its_handler_does_in_process(
    gen_server: ServerProcess, t5: str, t5_here: Handler
) -> None:
    for body in (
        {"inputs": SOURCE},
        {"inputs": [SOURCE, "A second, shorter text."], "parameters": {"max_new_tokens": 6}},
    ):
        answer = invoke_json(gen_server.runtime(), t5, body)
        assert answer == answer_here(t5_here, body) and "summary_text" in answer[0]


def test_boto3_response_stream_carries_tgi_lines_that_add_up_to_the_non_streamed_new_text(
    gen_server: ServerProcess, llama: str, llama_here: Handler
) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 12, "details": True}, "stream": True}
    events = stream_events(gen_server, llama, body)
    expected = new_text(llama_here, {"inputs": PROMPT, "parameters": {"max_new_tokens": 12}})
    assert [event["index"] for event in events] == list(range(1, len(events) + 1))
    assert all(event["generated_text"] is None and event["details"] is None for event in events[:-1])
    assert "".join(event["token"]["text"] for event in events) == events[-1]["generated_text"] == expected
    details = events[-1]["details"]
    assert details["generated_tokens"] == len(events) and details["finish_reason"] in ("length", "eos_token")
    asked_full = {**body, "parameters": {"max_new_tokens": 12, "return_full_text": True}}
    full = stream_events(gen_server, llama, asked_full)
    assert full[-1]["generated_text"] == PROMPT + expected, "return_full_text puts the prompt in front"


def test_t5_streams_its_beam_search_summary_as_a_plain_invocation_answers_it(
    gen_server: ServerProcess, t5: str, t5_here: Handler
) -> None:
    # t5's summarization settings ask for 4 beams: the stream carries the beam-search answer, once found.
    events = stream_events(gen_server, t5, {"inputs": SOURCE})
    [expected] = answer_here(t5_here, {"inputs": SOURCE})
    assert "".join(event["token"]["text"] for event in events) == events[-1]["generated_text"]
    assert events[-1]["generated_text"] == expected["summary_text"]
    body = {"inputs": SOURCE, "parameters": {"max_new_tokens": 8, "num_beams": 1}}
    greedy = stream_events(gen_server, t5, body)
    [expected_greedy] = answer_here(t5_here, body)
    assert greedy[-1]["generated_text"] == expected_greedy["summary_text"]


def _predictor(server: ServerProcess, name: str) -> Any:
    import boto3
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer
    from sagemaker.session import Session

    boto_session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    session = Session(
        boto_session=boto_session,
        sagemaker_client=server.sagemaker(),
        sagemaker_runtime_client=server.runtime(),
    )
    return Predictor(name, sagemaker_session=session, serializer=JSONSerializer())


def test_sdk_predict_stream_line_iterator_yields_the_lines_boto3_streams(
    gen_server: ServerProcess, llama: str
) -> None:
    from sagemaker.iterators import LineIterator

    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 10}, "stream": True}
    lines = list(_predictor(gen_server, llama).predict_stream(body, iterator=LineIterator))
    assert lines[1::2] == [b""] * (len(lines) // 2), "a blank line after each event"
    from_sdk = [json.loads(line[len(b"data:") :]) for line in lines[::2]]
    from_boto3 = stream_events(gen_server, llama, body)
    for event in from_sdk + from_boto3:  # logprobs are floats from two runs of the same graph
        event["token"]["logprob"] = round(event["token"]["logprob"], 4)
    assert from_sdk == from_boto3 and len(from_sdk) == 10


def _openai(server: ServerProcess, key: str = API_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def test_openai_chat_at_temperature_zero_is_the_toolkit_chats_new_text_whole_and_streamed(
    gen_server: ServerProcess, llama: str, llama_here: Handler
) -> None:
    client = _openai(gen_server)
    messages: Any = CHAT
    [toolkit] = answer_here(llama_here, {"inputs": CHAT, "parameters": {"max_new_tokens": 8}})
    expected = toolkit["generated_text"][-1]["content"]
    whole = client.chat.completions.create(model=llama, messages=messages, temperature=0, max_tokens=8)
    assert whole.choices[0].message.content == expected and whole.choices[0].message.role == "assistant"
    assert whole.usage is not None and whole.usage.completion_tokens == 8
    chunks = list(
        client.chat.completions.create(
            model=llama, messages=messages, temperature=0, max_tokens=8, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8


def test_a_messages_body_answers_the_toolkit_chats_new_text_whole_and_streamed(
    gen_server: ServerProcess, llama: str, llama_here: Handler
) -> None:
    [toolkit] = answer_here(llama_here, {"inputs": CHAT, "parameters": {"max_new_tokens": 8}})
    expected = toolkit["generated_text"][-1]["content"]
    body = {"messages": CHAT, "max_tokens": 8, "temperature": 0}
    whole = invoke_json(gen_server.runtime(), llama, body)
    assert whole["object"] == "chat.completion" and whole["choices"][0]["message"]["content"] == expected
    answer = gen_server.runtime().invoke_endpoint_with_response_stream(
        EndpointName=llama, Body=json.dumps({**body, "stream": True}), ContentType="application/json"
    )
    text = b"".join(event["PayloadPart"]["Bytes"] for event in answer["Body"]).decode()
    assert text.endswith("data:[DONE]\n\n")
    chunks = [json.loads(e.removeprefix("data:")) for e in text.strip().split("\n\n")[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == expected


def test_openai_completion_at_temperature_zero_is_the_toolkit_answers_new_text(
    gen_server: ServerProcess, llama: str, t5: str, llama_here: Handler, t5_here: Handler
) -> None:
    client = _openai(gen_server)
    expected = new_text(llama_here, {"inputs": PROMPT, "parameters": {"max_new_tokens": 9}})
    whole = client.completions.create(model=llama, prompt=PROMPT, max_tokens=9, temperature=0)
    assert whole.choices[0].text == expected
    streamed = client.completions.create(model=llama, prompt=PROMPT, max_tokens=9, temperature=0, stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed) == expected
    [summary] = answer_here(t5_here, {"inputs": SOURCE, "parameters": {"max_new_tokens": 7}})
    summarized = client.completions.create(model=t5, prompt=SOURCE, max_tokens=7, temperature=0)
    assert summarized.choices[0].text == summary["summary_text"]


def test_openai_routes_take_only_the_configured_bearer_key(gen_server: ServerProcess, llama: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        _openai(gen_server, "sk-wrong").completions.create(model=llama, prompt=PROMPT, max_tokens=2)
    missing = httpx.post(f"{gen_server.url}/v1/completions", json={"model": llama, "prompt": PROMPT})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    assert _openai(gen_server).completions.create(model=llama, prompt=PROMPT, max_tokens=2).choices[0].text


def _refusal(server: ServerProcess, name: str, body: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    rt = server.runtime()
    call = rt.invoke_endpoint_with_response_stream if stream else rt.invoke_endpoint
    with pytest.raises(ClientError) as caught:
        call(EndpointName=name, Body=json.dumps(body), ContentType="application/json")
    response: dict[str, Any] = caught.value.response
    return response


def test_an_unknown_parameter_is_a_model_error_naming_it_as_the_toolkit_relays_a_400(
    gen_server: ServerProcess, llama: str
) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 4, "frobnicate": 1}}
    for stream in (False, True):
        refused = _refusal(gen_server, llama, body, stream)
        assert refused["ResponseMetadata"]["HTTPStatusCode"] == 424
        assert refused["Error"]["Code"] == "ModelError" and refused["OriginalStatusCode"] == 400
        assert "frobnicate" in refused["Error"]["Message"]


def test_max_new_tokens_above_the_servers_ceiling_is_refused(gen_server: ServerProcess, llama: str) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": MAX_NEW_TOKENS + 1}}
    for stream in (False, True):
        refused = _refusal(gen_server, llama, body, stream)
        assert refused["Error"]["Code"] == "ModelError" and refused["OriginalStatusCode"] == 400
        assert "ZEROSERVE_MAX_NEW_TOKENS" in refused["Error"]["Message"]
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(gen_server).completions.create(model=llama, prompt=PROMPT, max_tokens=MAX_NEW_TOKENS + 1)
    assert "ZEROSERVE_MAX_NEW_TOKENS" in str(caught.value)
    assert invoke_json(gen_server.runtime(), llama, {"inputs": PROMPT, "parameters": {"max_new_tokens": 2}})


def test_chat_messages_to_a_model_without_a_chat_template_are_refused_clearly(
    gen_server: ServerProcess, t5: str
) -> None:
    messages: Any = [{"role": "user", "content": "Hello"}]
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(gen_server).chat.completions.create(model=t5, messages=messages)
    assert "chat" in str(caught.value)
    for body in ({"messages": messages}, {"inputs": messages}):
        refused = _refusal(gen_server, t5, body)
        assert refused["Error"]["Code"] == "ModelError" and refused["OriginalStatusCode"] == 400
        assert "chat" in refused["Error"]["Message"], refused["Error"]["Message"]


def test_an_architecture_the_converter_cannot_handle_fails_the_endpoint_naming_it(
    gen_server: ServerProcess, tmp_path: Path
) -> None:
    sm = gen_server.sagemaker()
    bert = pack_model(make_tiny_bert(tmp_path / "bert"), tmp_path / "bert.tar.gz")
    described = deploy(sm, "bert-generates", str(bert), env={"HF_TASK": "text-generation"})
    assert described["EndpointStatus"] == "Failed"
    assert "bert" in described["FailureReason"]
    unknown = tmp_path / "unknown"
    shutil.copytree(generative_checkpoint("llama"), unknown)
    config = json.loads((unknown / "config.json").read_text())
    config.update(model_type="frobnicator", architectures=["FrobnicatorForCausalLM"])
    (unknown / "config.json").write_text(json.dumps(config))
    described = deploy(sm, "unknown-type", str(pack_model(unknown, tmp_path / "unknown.tar.gz")), env={})
    assert described["EndpointStatus"] == "Failed"
    assert "frobnicator" in described["FailureReason"], described["FailureReason"]
