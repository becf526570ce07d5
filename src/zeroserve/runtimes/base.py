"""The contract between a worker and whatever runs the model.

A worker receives invocations (raw body + content types), hands a batch of them to a `Handler`, and sends
back one outcome per invocation. Handlers never see sockets, processes or HTTP.
"""

from __future__ import annotations

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
    """The invocation itself is wrong (bad JSON, no `inputs`): relayed as ModelError with
    OriginalStatusCode 400, as SageMaker relays a container's 4xx."""


Outcome = Reply | BaseException


class Handler(Protocol):
    """Runs one loaded model. Not thread-safe; one worker process owns one handler."""

    def warm_up(self) -> None:
        """Run one representative forward pass so the first real request pays no lazy init."""

    def handle_batch(self, invocations: Sequence[Invocation]) -> list[Outcome]:
        """One outcome per invocation, same order. A bad invocation yields an exception in its slot
        (ClientInputError for client mistakes) and does not fail its neighbours."""
        ...
