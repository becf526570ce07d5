"""What every task shares: the plan a request turns into, the rows it gets back, and input checks.

A task never runs the model. `Task.plan` validates one request and says which sequences to encode;
the pipeline encodes the sequences of every planned request together, runs one forward pass, and hands
each plan its own rows. That is what lets N invocations share one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from tokenizers import Encoding

from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.tokenizer import LONGEST_FIRST, TextEncoder, TextInput


@dataclass(frozen=True)
class Rows:
    """One plan's share of the batch: its encodings and the model outputs for them, in plan order.
    Token-level outputs keep the batch's padded width; use each encoding's length."""

    encodings: list[Encoding]
    outputs: dict[str, np.ndarray]
    # Rows per sequence of the plan, for a task that reads long inputs in windows (else one each).
    windows: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    sequences: list[TextInput]
    # Turns this request's rows into its JSON-ready answer.
    finish: Callable[[Rows], Any]
    # False when the client asked for `truncation: false`: an over-long input is then an error.
    allow_truncation: bool = True


@dataclass(frozen=True)
class TaskContext:
    """Facts about the loaded model that pre/post-processing needs (all from bundle.json)."""

    encoder: TextEncoder
    labels: list[str] = field(default_factory=list)
    problem_type: str | None = None
    mask_token: str | None = None
    mask_token_id: int | None = None
    unk_token_id: int | None = None
    # The model Environment's ZEROSERVE_TRUNCATION: truncate over-long inputs when the request does not say.
    # Off by default, as the toolkit: an input over the model's window is then a 400.
    truncate_by_default: bool = False


class Task(Protocol):
    # Which side of a text pair gives way when a pair is too long.
    truncation_strategy: str
    # Whether the model outputs one row per token (so chunks must be re-padded to a common width).
    token_level: bool
    # Upper bound on padded tokens per forward pass; token-level vocab outputs need a smaller one.
    max_batch_tokens: int
    # Read over-long inputs in windows of this many tokens sharing `window_stride` (None: one window).
    window_length: int | None
    window_stride: int

    def plan(self, inputs: Any, parameters: Mapping[str, Any]) -> Plan: ...

    def example(self) -> tuple[Any, dict[str, Any]]: ...


# About 16 tokens: the size of request the latency target is set for.
WARM_UP_TEXT = "The service warmed up quickly and answered the very first request without delay."


class TaskBase:
    truncation_strategy = LONGEST_FIRST
    token_level = False
    max_batch_tokens = 8192
    window_length: int | None = None
    window_stride = 0

    def __init__(self, context: TaskContext) -> None:
        self.context = context

    def plan(self, inputs: Any, parameters: Mapping[str, Any]) -> Plan:
        raise NotImplementedError

    def example(self) -> tuple[Any, dict[str, Any]]:
        """A typical request (inputs, parameters) for the warm-up pass."""
        return WARM_UP_TEXT, {}


# --- input checks ------------------------------------------------------------------------------


def text_or_texts(inputs: Any, what: str = "inputs") -> tuple[list[str], bool]:
    """(texts, was_list) for a string or a list of strings."""
    if isinstance(inputs, str):
        return [inputs], False
    if isinstance(inputs, list) and all(isinstance(x, str) for x in inputs):
        return list(inputs), True
    raise ClientInputError(f"`{what}` must be a string or a list of strings")


def int_param(parameters: Mapping[str, Any], name: str, default: int, minimum: int = 1) -> int:
    """An integer parameter; null counts as absent, as the pipelines test `is not None`."""
    value = parameters.get(name)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ClientInputError(f"parameter `{name}` must be an integer >= {minimum}")
    return value


def bool_param(parameters: Mapping[str, Any], name: str, default: bool) -> bool:
    value = parameters.get(name, default)
    if not isinstance(value, bool):
        raise ClientInputError(f"parameter `{name}` must be true or false")
    return value


# Every pipeline's __call__ takes these (they steer its DataLoader); for one request they change nothing.
PIPELINE_PARAMETERS = frozenset({"batch_size", "num_workers"})


def check_parameters(parameters: Mapping[str, Any], accepted: frozenset[str], task: str) -> None:
    """Fail on a parameter the task's pipeline would refuse, as Python refuses an unknown keyword (the
    toolkit passes `parameters` to the pipeline as keyword arguments)."""
    for name in parameters:
        if name not in accepted and name not in PIPELINE_PARAMETERS:
            raise ClientInputError(f"the {task} pipeline got an unexpected keyword argument '{name}'")


def unsupported_parameter(name: str, note: str = "") -> ClientInputError:
    return ClientInputError(
        f"parameter `{name}` is not supported by zeroserve" + (f" ({note})" if note else "")
    )


def truncation_param(parameters: Mapping[str, Any], default: bool, name: str = "truncation") -> bool:
    """transformers' `truncation`: true/false or a strategy name (any strategy name but do_not_truncate
    means truncate). Absent, the model's default (the toolkit's: no truncation)."""
    value = parameters.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in {"longest_first", "only_first", "only_second", "do_not_truncate"}:
        return value != "do_not_truncate"
    raise ClientInputError(f"parameter `{name}` must be true, false or a truncation strategy name")


def tokenizer_kwargs_param(parameters: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A dict of tokenizer arguments (`tokenizer_kwargs`, `tokenize_kwargs`); of those only truncation
    and padding change what zeroserve does (padding never changes an answer)."""
    value = parameters.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ClientInputError(f"parameter `{name}` must be a JSON object")
    for key in value:
        if key not in ("truncation", "padding"):
            raise unsupported_parameter(f"{name}.{key}", "only truncation and padding are")
    return value


# --- numerics ---------------------------------------------------------------------------------


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    result: np.ndarray = shifted / shifted.sum(axis=axis, keepdims=True)
    return result


def sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


def sequence_length(encoding: Encoding) -> int:
    """Real tokens in a padded encoding (padding is always on the right)."""
    return int(sum(encoding.attention_mask))


def unwrap_single(results: Sequence[Any], was_list: bool) -> Any:
    return list(results) if was_list else results[0]
