"""What SageMaker's Hugging Face LLM container (TGI) streams for one generation: a server-sent event per
token, the last one with the whole text, each the PayloadPart bytes of api/event_stream.py.

The shapes are TGI's (router/src/lib.rs `StreamResponse`, `Token`, `StreamDetails`; server.rs
`generate_stream`), serialised as serde and axum write them, so client code written against the LLM container
parses ours unchanged:

    data:{"index":1,"token":{"id":42,"text":" Hi","logprob":-0.3,"special":false},"generated_text":null,
    "details":null}   (one line)

with no space after `data:`, compact JSON in field order, and a blank line after each event. `index` counts
tokens from 1. The last event carries `generated_text` (the prompt in front when return_full_text was asked;
the caller decides) and `details` only when the request asked for them. A failure mid-stream is TGI's error
event, `data:{"error":"...","error_type":"generation"}`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

CONTENT_TYPE = "text/event-stream"
FinishReason = Literal["length", "eos_token", "stop_sequence"]
# TGI's InferError::error_type() names; "generation" is the model failing mid-stream.
ErrorType = Literal["generation", "overloaded", "validation", "incomplete_generation"]


@dataclass(frozen=True)
class StreamToken:
    id: int
    text: str
    logprob: float | None  # None (or NaN) is written as null, as serde writes a NaN f32
    special: bool = False

    def as_json(self) -> dict[str, Any]:
        logprob = None if self.logprob is None or math.isnan(self.logprob) else self.logprob
        return {"id": self.id, "text": self.text, "logprob": logprob, "special": self.special}


@dataclass(frozen=True)
class StreamDetails:
    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None = None  # the sampling seed; None when greedy
    # TGI >= 2.1 adds the prompt's length in tokens; None leaves it out, as older LLM containers do.
    input_length: int | None = None

    def as_json(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "finish_reason": self.finish_reason,
            "generated_tokens": self.generated_tokens,
            "seed": self.seed,
        }
        if self.input_length is not None:
            details["input_length"] = self.input_length
        return details


def _event(body: dict[str, Any]) -> bytes:
    # ensure_ascii=False: serde_json writes UTF-8, not \u escapes.
    return b"data:" + json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def token_event(index: int, token: StreamToken) -> bytes:
    """One generated token, before the last."""
    return _event({"index": index, "token": token.as_json(), "generated_text": None, "details": None})


def final_event(
    index: int, token: StreamToken, generated_text: str, details: StreamDetails | None = None
) -> bytes:
    """The last token, with the whole text, and `details` when the request asked for them."""
    return _event(
        {
            "index": index,
            "token": token.as_json(),
            "generated_text": generated_text,
            "details": None if details is None else details.as_json(),
        }
    )


def error_event(message: str, error_type: ErrorType = "generation") -> bytes:
    """TGI's event for a generation that failed after its first token."""
    return _event({"error": message, "error_type": error_type})
