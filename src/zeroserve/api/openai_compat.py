"""OpenAI-compatible shapes: `POST /v1/chat/completions` and `POST /v1/completions` bodies read into a neutral
request (the toolkit's `inputs` and `parameters`), and the answers built back: `chat.completion`,
`chat.completion.chunk` and `text_completion` objects, their server-sent events, and OpenAI's error body.

TGI's Messages API (a body with `messages` on `/invocations`, which SageMaker's LLM containers accept) is the
same chat request without a required `model`, answered with the same objects.

Every field a request may carry is honoured, accepted because it cannot change the answer (`user`), or refused
with a 400 naming it; nothing is silently ignored. As in OpenAI and TGI, sampling is the default and
`temperature: 0` is greedy.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from zeroserve import errors
from zeroserve.api.error_responses import rule_for
from zeroserve.api.tgi_stream import FinishReason

Kind = Literal["chat", "text"]
OpenAIFinishReason = Literal["stop", "length"]
log = logging.getLogger("zeroserve.api")

# Fields OpenAI defines that zeroserve cannot honour, with the value that asks for nothing (sent explicitly
# by some clients): any other value is refused.
_UNSUPPORTED_DEFAULTS: dict[str, object] = {
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "logprobs": False,
    "top_logprobs": 0,
    "logit_bias": {},
    "echo": False,
    "best_of": 1,
    "suffix": "",
    "tools": [],
    "tool_choice": "none",
    "parallel_tool_calls": False,
    "functions": [],
    "function_call": "none",
    "response_format": {"type": "text"},
    "modalities": ["text"],
    "audio": None,
    "prediction": None,
    "reasoning_effort": None,
    "service_tier": "auto",
    "store": False,
    "metadata": {},
}
_COMMON = frozenset({"model", "max_tokens", "temperature", "top_p", "n", "stop", "seed", "stream", "user"})
_CHAT_FIELDS = _COMMON | {"messages", "max_completion_tokens", "stream_options"}
_TEXT_FIELDS = _COMMON | {"prompt", "stream_options"}
_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "developer": "system"}
_MAX_STOP_SEQUENCES = 4  # OpenAI's limit
_MAX_CHOICES = 128  # OpenAI's limit on n


class OpenAIRequestError(errors.ValidationError):
    """A request the OpenAI-compatible routes refuse (400), with the field it is about."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass(frozen=True)
class GenerationRequest:
    """What a chat or completion request asks for, in the toolkit's terms: `inputs` is a message list
    (chat) or a prompt / list of prompts (text); `parameters` uses the toolkit's names."""

    kind: Kind
    model: str | None
    inputs: str | list[str] | list[dict[str, str]]
    parameters: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False

    def toolkit_body(self) -> bytes:
        """The same request as an InvokeEndpoint body, `{"inputs": ..., "parameters": ...}`."""
        return json.dumps({"inputs": self.inputs, "parameters": self.parameters}).encode()


def parse_chat_request(
    body: object, *, require_model: bool = True, max_new_tokens_limit: int | None = None
) -> GenerationRequest:
    """A `/v1/chat/completions` body (or TGI's Messages API body on `/invocations`, `require_model=False`)."""
    payload = _object(body, _CHAT_FIELDS)
    return GenerationRequest(
        kind="chat",
        model=_model(payload, require_model),
        inputs=_messages(payload.get("messages")),
        parameters=_parameters(payload, max_new_tokens_limit),
        stream=_stream(payload),
        include_usage=_include_usage(payload),
    )


def parse_completion_request(body: object, *, max_new_tokens_limit: int | None = None) -> GenerationRequest:
    """A `/v1/completions` body."""
    payload = _object(body, _TEXT_FIELDS)
    return GenerationRequest(
        kind="text",
        model=_model(payload, True),
        inputs=_prompt(payload.get("prompt")),
        parameters=_parameters(payload, max_new_tokens_limit),
        stream=_stream(payload),
        include_usage=_include_usage(payload),
    )


def is_messages_body(body: object) -> bool:
    """Whether an `/invocations` body is TGI's Messages API rather than the toolkit's `{"inputs": ...}`."""
    return isinstance(body, dict) and "messages" in body and "inputs" not in body


# ---- reading a request ----


def _object(body: object, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OpenAIRequestError("The request body must be a JSON object.", code="invalid_request_body")
    unsupported = [
        name
        for name, value in body.items()
        if name in _UNSUPPORTED_DEFAULTS and value is not None and value != _UNSUPPORTED_DEFAULTS[name]
    ]
    if unsupported:
        names = ", ".join(f"'{name}'" for name in unsupported)
        raise OpenAIRequestError(
            f"Unsupported parameter: {names} {'is' if len(unsupported) == 1 else 'are'} not supported by "
            "this server.",
            param=unsupported[0],
            code="unsupported_parameter",
        )
    unknown = [name for name in body if name not in allowed and name not in _UNSUPPORTED_DEFAULTS]
    if unknown:
        raise OpenAIRequestError(
            f"Unrecognized request argument supplied: {', '.join(unknown)}", param=unknown[0]
        )
    # OpenAI reads an explicit null as the field left out.
    return {name: value for name, value in body.items() if value is not None}


def _model(payload: dict[str, Any], required: bool) -> str | None:
    model = payload.get("model")
    if model is None and not required:
        return None
    if not isinstance(model, str) or not model:
        raise OpenAIRequestError("you must provide a model parameter", param="model")
    return model


def _text_of(content: object, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        texts: list[str] = []
        for i, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise OpenAIRequestError(
                    f"{where}[{i}]: only text content parts are supported.",
                    param=f"{where}[{i}]",
                    code="unsupported_value",
                )
            texts.append(part["text"])
        return "".join(texts)  # as TGI joins text chunks
    raise OpenAIRequestError(f"{where} must be a string or a list of text parts.", param=where)


def _messages(messages: object) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise OpenAIRequestError("messages must be a non-empty array.", param="messages")
    read: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise OpenAIRequestError(f"{where} must be an object.", param=where)
        extra = sorted(set(message) - {"role", "content"})
        if extra:
            raise OpenAIRequestError(
                f"Unsupported parameter: '{where}.{extra[0]}' is not supported by this server.",
                param=f"{where}.{extra[0]}",
                code="unsupported_parameter",
            )
        role = message.get("role")
        if role not in _ROLES:
            raise OpenAIRequestError(
                f"{where}.role must be one of {', '.join(_ROLES)}; got {role!r}.",
                param=f"{where}.role",
                code="unsupported_value" if isinstance(role, str) else None,
            )
        # `developer` is OpenAI's newer name for `system`; chat templates know only `system`.
        read.append({"role": _ROLES[role], "content": _text_of(message.get("content"), f"{where}.content")})
    return read


def _prompt(prompt: object) -> str | list[str]:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(item, str) for item in prompt):
        return list(prompt)
    if isinstance(prompt, list) and prompt:
        raise OpenAIRequestError(
            "prompt must be a string or an array of strings; token arrays are not supported.",
            param="prompt",
            code="unsupported_value",
        )
    raise OpenAIRequestError("prompt must be a string or a non-empty array of strings.", param="prompt")


def _number(payload: dict[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OpenAIRequestError(f"{name} must be a number.", param=name)
    return float(value)


def _integer(payload: dict[str, Any], name: str, low: int, high: int | None = None) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise OpenAIRequestError(f"{name} must be an integer.", param=name)
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise OpenAIRequestError(f"{name} must be {bound}; got {value}.", param=name, code="invalid_value")
    return value


def _max_new_tokens(payload: dict[str, Any], limit: int | None) -> int | None:
    given = {
        name: value
        for name in ("max_tokens", "max_completion_tokens")
        if (value := _integer(payload, name, 1, limit)) is not None
    }
    if len(set(given.values())) > 1:
        raise OpenAIRequestError(
            "max_tokens and max_completion_tokens disagree; send one of them.", param="max_tokens"
        )
    return next(iter(given.values()), None)


def _stop(payload: dict[str, Any]) -> str | list[str] | None:
    stop = payload.get("stop")
    if stop is None:
        return None
    sequences = [stop] if isinstance(stop, str) else stop
    if (
        not isinstance(sequences, list)
        or not 1 <= len(sequences) <= _MAX_STOP_SEQUENCES
        or not all(isinstance(item, str) and item for item in sequences)
    ):
        raise OpenAIRequestError(
            f"stop must be a non-empty string or an array of 1 to {_MAX_STOP_SEQUENCES} of them.",
            param="stop",
        )
    # One stop is the toolkit's `stop_sequence` as it is; several are a list the generation loop must take.
    return sequences[0] if len(sequences) == 1 else list(sequences)


def _parameters(payload: dict[str, Any], max_new_tokens_limit: int | None) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    max_new_tokens = _max_new_tokens(payload, max_new_tokens_limit)
    if max_new_tokens is not None:
        parameters["max_new_tokens"] = max_new_tokens
    temperature = _number(payload, "temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise OpenAIRequestError(
            f"temperature must be between 0 and 2; got {temperature:g}.",
            param="temperature",
            code="invalid_value",
        )
    top_p = _number(payload, "top_p")
    if top_p is not None and not 0 < top_p <= 1:
        raise OpenAIRequestError(
            f"top_p must be above 0 and at most 1; got {top_p:g}.", param="top_p", code="invalid_value"
        )
    if temperature == 0:
        # Greedy. top_p needs no passing on: the most likely token is inside every nucleus.
        parameters["do_sample"] = False
    else:
        parameters["do_sample"] = True  # OpenAI's default is sampling at temperature 1
        if temperature is not None:
            parameters["temperature"] = temperature
        if top_p is not None:
            parameters["top_p"] = top_p
    stop = _stop(payload)
    if stop is not None:
        parameters["stop_sequence"] = stop
    n = _integer(payload, "n", 1, _MAX_CHOICES)
    if n is not None and n != 1:
        parameters["num_return_sequences"] = n
    seed = _integer(payload, "seed", 0, 2**64 - 1)  # TGI's seed is a u64
    if seed is not None:
        parameters["seed"] = seed
    return parameters


def _stream(payload: dict[str, Any]) -> bool:
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise OpenAIRequestError("stream must be a boolean.", param="stream")
    return stream


def _include_usage(payload: dict[str, Any]) -> bool:
    options = payload.get("stream_options")
    if options is None:
        return False
    if not payload.get("stream"):
        raise OpenAIRequestError(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )
    if not isinstance(options, dict):
        raise OpenAIRequestError("stream_options must be an object.", param="stream_options")
    extra = sorted(set(options) - {"include_usage"})
    if extra:
        raise OpenAIRequestError(
            f"Unsupported parameter: 'stream_options.{extra[0]}' is not supported by this server.",
            param=f"stream_options.{extra[0]}",
            code="unsupported_parameter",
        )
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise OpenAIRequestError("stream_options.include_usage must be a boolean.", param="stream_options")
    return include


# ---- building an answer ----


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def as_json(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: FinishReason  # the generation loop's words, TGI's
    index: int = 0


def finish_reason(reason: FinishReason) -> OpenAIFinishReason:
    """TGI's finish reason in OpenAI's words: an end-of-sequence token and a stop sequence are both `stop`."""
    return "length" if reason == "length" else "stop"


def new_id(kind: Kind) -> str:
    return f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"


def _object_name(kind: Kind, chunk: bool) -> str:
    if kind == "text":
        return "text_completion"
    return "chat.completion.chunk" if chunk else "chat.completion"


def completion(
    kind: Kind,
    model: str,
    choices: list[Choice],
    usage: Usage,
    *,
    id_: str = "",
    created_s: int | None = None,
) -> dict[str, Any]:
    """A whole `chat.completion` or `text_completion` object."""
    rendered: list[dict[str, Any]] = []
    for choice in choices:
        if kind == "chat":
            rendered.append(
                {
                    "index": choice.index,
                    "message": {"role": "assistant", "content": choice.text},
                    "logprobs": None,
                    "finish_reason": finish_reason(choice.finish_reason),
                }
            )
        else:
            rendered.append(
                {
                    "text": choice.text,
                    "index": choice.index,
                    "logprobs": None,
                    "finish_reason": finish_reason(choice.finish_reason),
                }
            )
    return {
        "id": id_ or new_id(kind),
        "object": _object_name(kind, chunk=False),
        "created": int(time.time()) if created_s is None else created_s,
        "model": model,
        "system_fingerprint": None,
        "choices": rendered,
        "usage": usage.as_json(),
    }


class CompletionStream:
    """The server-sent events of one streamed completion, in OpenAI's order: for chat a first chunk with the
    assistant role, then one chunk per piece of text, a chunk with each choice's finish reason, then (when
    `include_usage`) a chunk with no choices and the usage, then `[DONE]`. With `include_usage` every chunk
    carries `"usage": null` until the last, as OpenAI's do.

    `prefix` is `data: ` as OpenAI writes it; TGI's Messages API writes `data:` (axum)."""

    def __init__(
        self,
        kind: Kind,
        model: str,
        *,
        include_usage: bool = False,
        id_: str = "",
        created_s: int | None = None,
        prefix: bytes = b"data: ",
    ) -> None:
        self.kind = kind
        self.model = model
        self.include_usage = include_usage
        self.id = id_ or new_id(kind)
        self.created_s = int(time.time()) if created_s is None else created_s
        self.prefix = prefix

    def _chunk(self, choices: list[dict[str, Any]], usage: Usage | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": _object_name(self.kind, chunk=True),
            "created": self.created_s,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None if usage is None else usage.as_json()
        return self.prefix + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"

    def _choice(
        self, index: int, text: str | None, reason: FinishReason | None, first: bool = False
    ) -> dict[str, Any]:
        openai_reason = None if reason is None else finish_reason(reason)
        if self.kind == "text":
            return {"text": text or "", "index": index, "logprobs": None, "finish_reason": openai_reason}
        delta: dict[str, str] = {"role": "assistant"} if first else {}
        if text is not None:
            delta["content"] = text
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": openai_reason}

    def start(self, index: int = 0) -> bytes:
        """Chat's first chunk, the assistant's role with empty content (nothing for text completions)."""
        return self._chunk([self._choice(index, "", None, first=True)]) if self.kind == "chat" else b""

    def delta(self, text: str, index: int = 0) -> bytes:
        return self._chunk([self._choice(index, text, None)])

    def finish(self, reason: FinishReason, index: int = 0) -> bytes:
        return self._chunk([self._choice(index, None, reason)])

    def end(self, usage: Usage | None = None) -> bytes:
        """The usage chunk (when asked for and known) and `[DONE]`."""
        tail = self._chunk([], usage) if self.include_usage and usage is not None else b""
        return tail + self.prefix + b"[DONE]\n\n"


# ---- errors ----

_AUTH_ERRORS = (errors.MissingAuthentication, errors.UnrecognizedClient)


def error_status(exc: BaseException) -> int:
    """The HTTP status an OpenAI client expects: 401 for a missing or wrong key, 404 for an unknown model and
    429 when throttled, which the client backs off and retries (SageMaker says 403, 400 and 400 there);
    otherwise the status SageMaker's runtime answers with."""
    if isinstance(exc, _AUTH_ERRORS):
        return 401
    if isinstance(exc, errors.ResourceNotFound):
        return 404
    if isinstance(exc, errors.Throttled):
        return 429
    return rule_for(exc).status


def error_body(exc: BaseException) -> dict[str, Any]:
    """OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`."""
    status = error_status(exc)
    param = exc.param if isinstance(exc, OpenAIRequestError) else None
    code: str | None = exc.code if isinstance(exc, OpenAIRequestError) else None
    if isinstance(exc, _AUTH_ERRORS):
        code = "invalid_api_key"
    elif isinstance(exc, errors.ResourceNotFound):
        code = "model_not_found"
    if status == 429:
        kind = "rate_limit_error"
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "invalid_request_error"
    if isinstance(exc, errors.ZeroserveError):
        message = exc.message
    else:
        log.exception("unexpected error", exc_info=exc)
        message = "An internal error occurred; see the server log."
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_event(exc: BaseException, prefix: bytes = b"data: ") -> bytes:
    """A stream that fails after its first chunk ends with OpenAI's error object as an event."""
    return prefix + json.dumps(error_body(exc), separators=(",", ":")).encode() + b"\n\n"
