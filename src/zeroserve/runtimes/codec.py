"""Invocation bodies in and out, as the SageMaker Hugging Face inference toolkit 2.6.0 reads and writes them.

Request: `application/json` (any JSON) or `text/csv` (a header row naming `inputs`, or `question` and
`context`); anything else is the toolkit's "Content type ... is not supported". The decoded body is split as
the toolkit's default predict_fn does: `inputs` is `body.pop("inputs", body)`, so a body without `inputs`
(`{"question": ..., "context": ...}`) is itself the inputs. Reply: JSON (Accept empty, `*/*` or
`application/json`), CSV (a list of flat objects, one row each) or NPY (numeric answers).

Shared by the default handler and by custom inference scripts that keep the default input_fn/output_fn.
Media types are compared without parameters (`application/json; charset=utf-8` is JSON), where the toolkit
compares the header verbatim: see docs/api-coverage.md, "Differences from the Hugging Face container".
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
NPY = "application/x-npy"
ANY = "*/*"

# The toolkit looks for one of these in the CSV header line before reading it as a table.
_CSV_HEADERS = ("question", "context", "inputs")


def media_type(header: str) -> str:
    """ "application/json; charset=utf-8" -> "application/json"."""
    return header.split(";", 1)[0].strip().lower()


def unsupported(content_type: str) -> ClientInputError:
    """sagemaker-inference's UnsupportedFormatError, which the toolkit relays as a 400."""
    return ClientInputError(
        f"Content type {content_type} is not supported by this framework. Please implement input_fn to "
        "deserialize the request data or an output_fn to serialize the response."
    )


def decode_body(body: bytes, content_type: str) -> Any:
    """The request as Python data: JSON as is; CSV as `{"inputs": [...]}`."""
    media = media_type(content_type) or JSON
    if media not in (JSON, CSV):
        raise unsupported(content_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClientInputError(f"request body is not valid UTF-8: {exc.reason} at byte {exc.start}") from exc
    if media == CSV:
        return _decode_csv(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # json.loads' own message, as the toolkit relays it.
        raise ClientInputError(str(exc)) from exc


def split_request(data: Any) -> tuple[Any, dict[str, Any]]:
    """(`inputs`, `parameters`) as the toolkit's predict_fn takes them apart: `inputs` defaults to the
    body itself (without its `parameters`), and a null `parameters` means none."""
    if not isinstance(data, dict):
        raise ClientInputError(
            f'request body must be a JSON object like {{"inputs": ..., "parameters": {{...}}}}, '
            f"not {_json_kind(data)}"
        )
    rest = dict(data)
    parameters = rest.pop("parameters", None)
    inputs = rest.pop("inputs") if "inputs" in rest else rest
    if parameters is None:
        return inputs, {}
    if not isinstance(parameters, dict):
        raise ClientInputError(f'"parameters" must be a JSON object, not {_json_kind(parameters)}')
    return inputs, parameters


def check_accept(accept: str) -> str:
    """The reply's media type for an Accept header, or the toolkit's unsupported-format error."""
    media = media_type(accept)
    if media in ("", ANY):
        return JSON
    if media in (JSON, CSV, NPY):
        return media
    raise unsupported(accept)


def encode_reply(result: Any, accept: str) -> Reply:
    media = check_accept(accept)
    if media == CSV:
        return Reply(body=_to_csv(result), content_type=CSV)
    if media == NPY:
        return Reply(body=_to_npy(result), content_type=NPY)
    return Reply(body=to_json(result), content_type=JSON)


def to_json(result: Any) -> bytes:
    # allow_nan=False as the toolkit: a NaN score is an error, not the invalid JSON token NaN.
    try:
        text = json.dumps(
            result, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_numpy_default
        )
    except ValueError as exc:
        raise ClientInputError(str(exc)) from exc
    return text.encode()


def reply_from_user(response: Any, accept: str) -> Reply:
    """Whatever a user's output_fn/transform_fn returned: bytes or str are sent as is, a (body,
    content_type) tuple sets the type, anything else is encoded as JSON."""
    content_type = media_type(accept) or JSON
    if content_type == ANY:
        content_type = JSON
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
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _decode_csv(text: str) -> dict[str, Any]:
    lines = text.splitlines()
    if not lines or not any(header in lines[0].lower() for header in _CSV_HEADERS):
        raise ClientInputError(
            "You need to provide the correct CSV with Header columns to use it with the inference toolkit "
            "default handler."
        )
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ClientInputError("the CSV body has a header row but no rows of inputs")
    if "inputs" in rows[0]:
        return {"inputs": [row["inputs"] for row in rows]}
    return {"inputs": [dict(row) for row in rows]}


def _to_csv(result: Any) -> bytes:
    """The toolkit's encode_csv: a header from the first object's keys, then one row per object."""
    rows = result if isinstance(result, list) else []
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise ClientInputError("this answer cannot be written as CSV: it is not a list of flat objects")
    stream = io.StringIO()
    writer = csv.DictWriter(stream, list(rows[0]))
    writer.writeheader()
    try:
        writer.writerows(rows)
    except ValueError as exc:
        raise ClientInputError(str(exc)) from exc
    return stream.getvalue().encode()


def _to_npy(result: Any) -> bytes:
    try:
        array = np.asarray(result, dtype=np.float64 if _is_float_tree(result) else None)
    except ValueError as exc:
        raise ClientInputError(f"this answer cannot be written as NPY: {exc}") from exc
    if array.dtype == object:
        raise ClientInputError("this answer cannot be written as NPY: it is not a numeric array")
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _is_float_tree(value: Any) -> bool:
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, float)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a number" if isinstance(value, int | float) and not isinstance(value, bool) else "true/false"
