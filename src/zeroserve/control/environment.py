"""The model `Environment` variables zeroserve reads, parsed in one place.

CreateModel calls `check_environment` so a value the server cannot use is a ValidationException naming the
variable and what it accepts, instead of a deploy that fails later (or never ends). The deployer reads the
same typed values through `ModelEnvironment`, so the rule that validates is the rule that is used. Variables
zeroserve does not read pass through untouched: they are the model's own (os.environ in the worker).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from zeroserve.errors import ValidationError
from zeroserve.runtimes.task_names import TASKS, UnknownTask, normalize_task

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
MAX_BATCH_SIZE = 1024
MAX_BATCH_WAIT_MS = 10_000.0
MAX_WORKERS = 256
MAX_THREADS = 1024


class BadValue(ValueError):
    """The value is not one the variable accepts; the message says what it accepts."""


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise BadValue(f"an integer from {low} to {high}")
        return value

    return parse


def _float_in(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            value = float("nan")
        if not low <= value <= high:  # also rejects nan
            raise BadValue(f"a number from {low:g} to {high:g}")
        return value

    return parse


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadValue(f"one of {', '.join(_TRUE + _FALSE)}")


INT8_SCHEMES = ("dynamic", "blockwise")  # conversion/convert.py INT8_SCHEMES


def _quantize(raw: str) -> str:
    """auto (the fidelity gate decides), an int8 scheme forcing it, or a boolean forcing int8 / fp32."""
    lowered = raw.strip().lower()
    if lowered == "auto" or lowered in INT8_SCHEMES:
        return lowered
    try:
        return "true" if _boolean(raw) else "false"
    except BadValue:
        raise BadValue(f"auto, {', '.join(INT8_SCHEMES)} or one of {', '.join(_TRUE + _FALSE)}") from None


def _runtime(raw: str) -> str:
    if raw not in ("onnx", "torch"):
        raise BadValue("onnx or torch")
    return raw


def _task(raw: str) -> str:
    try:
        return normalize_task(raw)
    except UnknownTask:
        raise BadValue(f"one of {', '.join(TASKS)} (or the aliases sentiment-analysis, ner)") from None


def _program(raw: str) -> str:
    path = PurePosixPath(raw)
    if not raw or path.is_absolute() or len(path.parts) != 1 or raw in (".", ".."):
        raise BadValue("a file name in the artifact's code/ folder, such as inference.py")
    return raw


# name -> parser. Each parser returns the typed value or raises BadValue saying what it accepts. An empty
# value means unset, as it always has for these variables.
PARSERS: dict[str, Callable[[str], object]] = {
    "HF_TASK": _task,
    "SAGEMAKER_PROGRAM": _program,
    "ZEROSERVE_RUNTIME": _runtime,
    "ZEROSERVE_QUANTIZE": _quantize,
    "ZEROSERVE_TRUNCATION": _boolean,
    "ZEROSERVE_MAX_BATCH_SIZE": _int_in(1, MAX_BATCH_SIZE),
    "ZEROSERVE_MAX_BATCH_WAIT_MS": _float_in(0.0, MAX_BATCH_WAIT_MS),
    "ZEROSERVE_MAX_WORKERS": _int_in(1, MAX_WORKERS),
    "ZEROSERVE_WORKER_THREADS": _int_in(0, MAX_THREADS),
}


def problems(env: Mapping[str, object], where: str) -> list[str]:
    """AWS-worded problems with the variables zeroserve reads; `where` is the member path of the map."""
    found = []
    for name, parse in PARSERS.items():
        if name not in env:
            continue
        raw = env[name]
        if raw == "":
            continue
        try:
            parse(str(raw))
        except BadValue as exc:
            found.append(
                f"Value '{raw}' at '{where}.{name}' failed to satisfy constraint: "
                f"Environment variable {name} must be {exc}"
            )
    return found


def check_environment(params: Mapping[str, object]) -> None:
    """Raise ValidationError for every bad value zeroserve would read from a CreateModel request's
    PrimaryContainer or Containers Environment."""
    found: list[str] = []
    primary = params.get("PrimaryContainer")
    containers = [primary] if isinstance(primary, Mapping) else params.get("Containers") or []
    for index, container in enumerate(containers if isinstance(containers, list) else []):
        env = container.get("Environment") if isinstance(container, Mapping) else None
        if isinstance(env, Mapping):
            where = "primaryContainer" if isinstance(primary, Mapping) else f"containers.{index + 1}"
            found += problems(env, f"{where}.environment")
    if found:
        noun = "error" if len(found) == 1 else "errors"
        raise ValidationError(f"{len(found)} validation {noun} detected: {'; '.join(found)}")


@dataclass(frozen=True)
class ModelEnvironment:
    """The typed values the deployer uses; absent variables take zeroserve's defaults."""

    max_batch_size: int = 16
    max_batch_wait_ms: float = 0.0
    max_workers: int | None = None

    @classmethod
    def parse(cls, env: Mapping[str, str]) -> ModelEnvironment:
        """Raises BadValue (a ValueError) for a value check_environment would have refused: a model stored
        before validation existed fails its deploy with that reason instead of hanging."""

        def value(name: str) -> object | None:
            raw = env.get(name)
            if raw is None or raw == "":
                return None
            try:
                return PARSERS[name](raw)
            except BadValue as exc:
                raise BadValue(f"Environment variable {name}={raw!r} must be {exc}") from None

        batch = value("ZEROSERVE_MAX_BATCH_SIZE")
        wait = value("ZEROSERVE_MAX_BATCH_WAIT_MS")
        workers = value("ZEROSERVE_MAX_WORKERS")
        return cls(
            max_batch_size=batch if isinstance(batch, int) else cls.max_batch_size,
            max_batch_wait_ms=wait if isinstance(wait, float) else cls.max_batch_wait_ms,
            max_workers=workers if isinstance(workers, int) else None,
        )
