"""The AWS event stream framing InvokeEndpointWithResponseStream answers with: the bytes of each message, and
the response headers that go with them.

A message is a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes), the headers, the
payload and a CRC32 of everything before it, all big-endian. botocore (`botocore/eventstream.py`) checks both
CRCs and parses the events by the `ResponseStream` shape of sagemaker-runtime's service model: a `PayloadPart`
event carries raw bytes; `ModelStreamError` (Message, ErrorCode) and `InternalStreamFailure` (Message) are
exceptions, which botocore raises as `EventStreamError` with that code and message.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator

from zeroserve import errors

CONTENT_TYPE = "application/vnd.amazon.eventstream"
# ModelStreamError's two codes, as the service model documents them.
MODEL_INVOCATION_TIME_EXCEEDED = "ModelInvocationTimeExceeded"
STREAM_BROKEN = "StreamBroken"

_STRING = 7  # the header value type botocore reads as a UTF-8 string (2-byte length, then the bytes)
_PRELUDE_BYTES = 12
_MAX_HEADERS_BYTES = 128 * 1024  # botocore refuses more
MAX_PAYLOAD_BYTES = 24 * 1024 * 1024  # botocore refuses more; payload_parts() splits below it
_MAX_MESSAGE_CHARS = 2048  # the service model's `Message` shape


def _header(name: str, value: str) -> bytes:
    name_bytes, value_bytes = name.encode(), value.encode()
    if len(name_bytes) > 255 or len(value_bytes) > 32767:
        raise ValueError(f"event stream header {name!r} is too long")
    return (
        struct.pack("!B", len(name_bytes))
        + name_bytes
        + struct.pack("!BH", _STRING, len(value_bytes))
        + value_bytes
    )


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event stream message with string headers."""
    header_bytes = b"".join(_header(name, value) for name, value in headers.items())
    if len(header_bytes) > _MAX_HEADERS_BYTES:
        raise ValueError(f"event stream headers exceed {_MAX_HEADERS_BYTES} bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"event stream payload exceeds {MAX_PAYLOAD_BYTES} bytes")
    total = _PRELUDE_BYTES + len(header_bytes) + len(payload) + 4
    prelude = struct.pack("!II", total, len(header_bytes))
    head = prelude + struct.pack("!I", zlib.crc32(prelude)) + header_bytes + payload
    return head + struct.pack("!I", zlib.crc32(head))


def payload_part(data: bytes) -> bytes:
    """A `PayloadPart` event: `data` as the part's Bytes, untouched."""
    return encode_message(
        {
            ":event-type": "PayloadPart",
            ":content-type": "application/octet-stream",
            ":message-type": "event",
        },
        data,
    )


def payload_parts(data: bytes, max_part_bytes: int = MAX_PAYLOAD_BYTES) -> Iterator[bytes]:
    """`data` as as many PayloadPart events as it needs (none when empty: an empty part says nothing)."""
    for start in range(0, len(data), max_part_bytes):
        yield payload_part(data[start : start + max_part_bytes])


def _exception(exception_type: str, body: dict[str, str]) -> bytes:
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps(body).encode(),
    )


def model_stream_error(message: str, error_code: str = STREAM_BROKEN) -> bytes:
    """A `ModelStreamError` exception: the model failed after the stream began."""
    return _exception("ModelStreamError", {"Message": message[:_MAX_MESSAGE_CHARS], "ErrorCode": error_code})


def internal_stream_failure(message: str) -> bytes:
    """An `InternalStreamFailure` exception: the server failed after the stream began."""
    return _exception("InternalStreamFailure", {"Message": message[:_MAX_MESSAGE_CHARS]})


def error_event(exc: BaseException) -> bytes:
    """The exception message that ends a stream which failed after its first part. (Before it, the failure
    is an ordinary SageMaker error response: see api/error_responses.py.) A timeout is the model running past
    its time, a model error is the model's side of the stream breaking, anything else is ours."""
    if isinstance(exc, TimeoutError):
        return model_stream_error(
            "The model did not finish its response within the allowed time.", MODEL_INVOCATION_TIME_EXCEEDED
        )
    if isinstance(exc, errors.ModelError):
        return model_stream_error(exc.message, STREAM_BROKEN)
    if isinstance(exc, errors.ZeroserveError):
        return internal_stream_failure(exc.message)
    return internal_stream_failure("An internal error occurred; see the server log.")


def response_headers(variant: str, content_type: str) -> dict[str, str]:
    """The headers SageMaker answers a stream with: the framing's media type, the variant that served it and
    the model's own content type (which botocore returns as the response's ContentType)."""
    return {
        "Content-Type": CONTENT_TYPE,
        "X-Amzn-Invoked-Production-Variant": variant,
        "X-Amzn-SageMaker-Content-Type": content_type,
    }
