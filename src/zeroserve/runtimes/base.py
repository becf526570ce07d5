"""The contract between a worker and whatever runs the model.

A worker receives invocations (raw body + content types), hands a batch of them to a `Handler`, and sends
back one outcome per invocation. Handlers never see sockets, processes or HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


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
