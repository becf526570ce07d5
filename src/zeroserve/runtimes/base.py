"""The contract between a worker and whatever runs the model.

A worker receives invocations (raw body + content types), hands a batch of them to a `Handler`, and sends
back one outcome per invocation. Handlers never see sockets, processes or HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class Invocation:
    body: bytes
    content_type: str = "application/json"
    accept: str = "application/json"
    custom_attributes: str | None = None


@dataclass(frozen=True)
class Reply:
    body: bytes
    content_type: str = "application/json"


class ClientInputError(Exception):
    """The invocation itself is wrong (bad JSON, a parameter the task does not take): relayed as ModelError
    with OriginalStatusCode 400, as SageMaker relays a container's 4xx."""


class ModelServerError(ClientInputError):
    """What the Hugging Face container's model server answers when its handler raised, whatever raised:
    status 400 and a pretty-printed JSON body `{"code": 400, "type": "InternalServerException", "message":
    str(exception)}`. `str()` is that body, which is what SageMaker quotes inside ModelError's message."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return model_server_body(self.code, self.message)


def model_server_body(code: int, message: str) -> str:
    """multi-model-server's error body: Gson pretty printing (two-space indent, `": "`), HTML-safe escapes
    of <, >, &, =, ' as Gson writes them, non-ASCII kept, and a trailing newline."""
    fields = {"code": code, "type": "InternalServerException", "message": message}
    lines = [f"  {json.dumps(key)}: {_gson(value)}" for key, value in fields.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def as_model_server_error(exc: BaseException) -> ModelServerError:
    """The toolkit's `except Exception as e: raise PredictionException(str(e), 400)`."""
    if isinstance(exc, ModelServerError):
        return exc
    return ModelServerError(str(exc) if isinstance(exc, ClientInputError) else _exception_text(exc))


def _exception_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


_GSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "=": "\\u003d", "'": "\\u0027"}


def _gson(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    for char, escape in _GSON_ESCAPES.items():
        text = text.replace(char, escape)
    return text


Outcome = Reply | BaseException


class Handler(Protocol):
    """Runs one loaded model. Not thread-safe; one worker process owns one handler."""

    def warm_up(self) -> None:
        """Run one representative forward pass so the first real request pays no lazy init."""

    def handle_batch(self, invocations: Sequence[Invocation]) -> list[Outcome]:
        """One outcome per invocation, same order. A bad invocation yields an exception in its slot
        (ClientInputError for client mistakes) and does not fail its neighbours."""
        ...


# ---- generation: what a generative model's handler offers besides toolkit answers ----

FinishReason = Literal["length", "eos_token", "stop_sequence"]


@dataclass(frozen=True)
class GeneratedToken:
    """One generated token as a stream shows it: `index` counts from 1, `text` is what this token adds to the
    sequence's text (the pieces concatenate to the final text)."""

    index: int
    id: int
    text: str
    logprob: float | None
    special: bool
    # The sequence's last token: a stream may close its last event on it without waiting for more.
    last: bool = False


@dataclass(frozen=True)
class GeneratedSequence:
    text: str  # the new text only (no prompt), skip_special_tokens as the toolkit decodes
    finish_reason: FinishReason
    tokens: int


@dataclass(frozen=True)
class Generation:
    """A generation's outcome for the streaming and OpenAI-compatible routes: one sequence per returned
    sequence (several only when num_return_sequences > 1, never when streamed), and usage."""

    sequences: list[GeneratedSequence]
    prompt_tokens: int
    seed: int | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Generation:
        data = json.loads(raw)
        return cls(
            sequences=[GeneratedSequence(**s) for s in data["sequences"]],
            prompt_tokens=int(data["prompt_tokens"]),
            seed=data.get("seed"),
        )


# Called with each token as it is generated; returns False when the client has gone (generation stops).
TokenSink = Callable[[GeneratedToken], bool]


@runtime_checkable
class GenerativeHandler(Handler, Protocol):
    """A handler of a generative model. `generate` reads the same body as `handle_batch` (`{"inputs",
    "parameters"}`; `inputs` a prompt or chat messages) and answers a `Generation` with the new text only
    (what TGI and OpenAI answer). With `on_token` it streams: one prompt and one sequence only."""

    def generate(self, invocation: Invocation, on_token: TokenSink | None = None) -> Generation: ...
