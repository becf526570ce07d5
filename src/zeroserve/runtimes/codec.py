"""Invocation bodies in and out: content types, the `{"inputs", "parameters"}` envelope, JSON replies.

Shared by the default handler and by custom inference scripts that keep the default input_fn/output_fn,
so both answer a bad body with the same ClientInputError.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np

from zeroserve.runtimes.base import ClientInputError, Reply

JSON = "application/json"
CSV = "text/csv"
TEXT = "text/plain"


def media_type(header: str) -> str:
    """ "application/json; charset=utf-8" -> "application/json"."""
    return header.split(";", 1)[0].strip().lower()


def decode_body(body: bytes, content_type: str) -> Any:
    """The request as Python data: JSON as is; text/plain as one input; text/csv as a list of inputs."""
    media = media_type(content_type) or JSON
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClientInputError(f"request body is not valid UTF-8: {exc.reason} at byte {exc.start}") from exc
    if media == JSON or media.endswith("+json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ClientInputError(
                f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
    if media == TEXT:
        return {"inputs": text}
    if media == CSV:
        return {"inputs": _csv_inputs(text)}
    raise ClientInputError(f"content type {content_type!r} is not supported; use {JSON}, {CSV} or {TEXT}")


def split_request(data: Any) -> tuple[Any, dict[str, Any]]:
    """(`inputs`, `parameters`) from the toolkit's envelope."""
    if not isinstance(data, dict):
        raise ClientInputError('request body must be a JSON object like {"inputs": ..., "parameters": {...}}')
    if "inputs" not in data:
        raise ClientInputError('request body has no "inputs" field')
    parameters = data.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ClientInputError('"parameters" must be a JSON object')
    return data["inputs"], parameters


def encode_reply(result: Any, accept: str) -> Reply:
    media = media_type(accept)
    if media in ("", "*/*", JSON, "application/*") or media.endswith("+json"):
        return Reply(body=to_json(result), content_type=JSON)
    raise ClientInputError(f"accept type {accept!r} is not supported; use {JSON}")


def to_json(result: Any) -> bytes:
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"), default=_numpy_default).encode()


def reply_from_user(response: Any, accept: str) -> Reply:
    """Whatever a user's output_fn/transform_fn returned: bytes or str are sent as is, a (body,
    content_type) tuple sets the type, anything else is encoded as JSON."""
    content_type = media_type(accept) or JSON
    if isinstance(response, tuple) and len(response) == 2 and isinstance(response[1], str):
        response, content_type = response
    if isinstance(response, bytes | bytearray):
        return Reply(body=bytes(response), content_type=content_type)
    if isinstance(response, str):
        return Reply(body=response.encode(), content_type=content_type)
    return Reply(body=to_json(response), content_type=JSON)


def _numpy_default(value: Any) -> Any:
    # User predict_fns often return numpy scalars or arrays.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _csv_inputs(text: str) -> list[str]:
    """First column of each row, skipping an `inputs` header row as the toolkit's CSV format has one."""
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if rows and rows[0][0].strip().lower() == "inputs":
        rows = rows[1:]
    return [row[0] for row in rows]
