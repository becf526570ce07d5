"""OpenAI-compatible requests: `POST /v1/chat/completions` and `POST /v1/completions` bodies read into a
neutral request (the toolkit's `inputs` and `parameters`). TGI's Messages API (a body with `messages` on
`/invocations`, which SageMaker's LLM containers accept) is the same chat request without a required `model`.

Every field a request may carry is honoured, accepted because it cannot change the answer (`user`), or refused
with a 400 naming it; nothing is silently ignored. As in OpenAI and TGI, sampling is the default and
`temperature: 0` is greedy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from zeroserve import errors

Kind = Literal["chat", "text"]

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
        if (value := _integer(payload, name, 1)) is not None
    }
    for name, value in given.items():
        if limit is not None and value > limit:
            raise OpenAIRequestError(
                f"{name} must be at most {limit}, this server's ceiling (ZEROSERVE_MAX_NEW_TOKENS); "
                f"got {value}.",
                param=name,
                code="invalid_value",
            )
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
