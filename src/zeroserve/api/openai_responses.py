"""OpenAI-compatible answers: `chat.completion`, `chat.completion.chunk` and `text_completion` objects, their
server-sent events, and OpenAI's error body (for chat and completion requests read by openai_requests.py).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from zeroserve import errors
from zeroserve.api.error_responses import rule_for
from zeroserve.api.openai_requests import Kind, OpenAIRequestError
from zeroserve.api.tgi_stream import FinishReason
from zeroserve.runtimes.base import Generation

OpenAIFinishReason = Literal["stop", "length"]
log = logging.getLogger("zeroserve.api")


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


def completion_of(kind: Kind, model: str, generation: Generation) -> dict[str, Any]:
    """The whole object answering a worker's `Generation`: a choice per sequence, usage in tokens."""
    choices = [Choice(s.text, s.finish_reason, i) for i, s in enumerate(generation.sequences)]
    usage = Usage(generation.prompt_tokens, sum(s.tokens for s in generation.sequences))
    return completion(kind, model, choices, usage)


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
    400 for a request the model refused as bad input (SageMaker's 424 would make the client raise a bare
    APIStatusError rather than BadRequestError); otherwise the status SageMaker's runtime answers with."""
    if isinstance(exc, _AUTH_ERRORS):
        return 401
    if isinstance(exc, errors.ResourceNotFound):
        return 404
    if isinstance(exc, errors.Throttled):
        return 429
    if isinstance(exc, errors.ModelError) and exc.original_status == 400:
        return 400
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
