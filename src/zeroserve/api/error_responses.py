"""The one table from domain errors to HTTP status and SageMaker error name, and the response builder.

The control plane (JSON 1.1) says ValidationException where the runtime (REST JSON) says ValidationError;
both come from this table. CloudWatch Logs (JSON 1.1 on the same port, the `logs` plane) names a few errors
its own way (InvalidParameterException, ResourceNotFoundException); the rest it shares with the control plane.
boto3 reads the name from `__type` and raises ClientError with it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Literal

from starlette.responses import Response

from zeroserve import errors

Plane = Literal["control", "runtime", "logs"]
log = logging.getLogger("zeroserve.api")


@dataclass(frozen=True)
class ErrorRule:
    status: int
    control_code: str
    runtime_code: str
    logs_code: str = ""  # empty: the control plane's code

    def code(self, plane: Plane) -> str:
        if plane == "runtime":
            return self.runtime_code
        if plane == "logs":
            return self.logs_code or self.control_code
        return self.control_code


ERROR_TABLE: dict[type[errors.ZeroserveError], ErrorRule] = {
    errors.ValidationError: ErrorRule(
        400, "ValidationException", "ValidationError", "InvalidParameterException"
    ),
    errors.ResourceNotFound: ErrorRule(
        400, "ResourceNotFound", "ValidationError", "ResourceNotFoundException"
    ),
    errors.ResourceInUse: ErrorRule(400, "ResourceInUse", "ValidationError"),
    errors.ResourceLimitExceeded: ErrorRule(400, "ResourceLimitExceeded", "ValidationError"),
    errors.AuthError: ErrorRule(403, "InvalidSignatureException", "InvalidSignatureException"),
    errors.MissingAuthentication: ErrorRule(
        403, "MissingAuthenticationTokenException", "MissingAuthenticationTokenException"
    ),
    errors.UnrecognizedClient: ErrorRule(403, "UnrecognizedClientException", "UnrecognizedClientException"),
    errors.IncompleteSignature: ErrorRule(
        400, "IncompleteSignatureException", "IncompleteSignatureException"
    ),
    errors.ArtifactError: ErrorRule(400, "ValidationException", "ValidationError"),
    errors.EndpointUnavailable: ErrorRule(400, "ValidationException", "ValidationError"),
    errors.RequestTooLarge: ErrorRule(400, "ValidationException", "ValidationError"),
    errors.Throttled: ErrorRule(400, "ThrottlingException", "ThrottlingException"),
    errors.ModelError: ErrorRule(424, "ModelError", "ModelError"),
    errors.ModelNotReady: ErrorRule(429, "ModelNotReadyException", "ModelNotReadyException"),
    errors.InternalFailure: ErrorRule(500, "InternalFailure", "InternalFailure"),
    errors.ServiceUnavailable: ErrorRule(503, "ServiceUnavailable", "ServiceUnavailable"),
}
_UNEXPECTED = ErrorRule(500, "InternalFailure", "InternalFailure")


def rule_for(exc: BaseException) -> ErrorRule:
    for kind in type(exc).__mro__:
        found = ERROR_TABLE.get(kind)  # type: ignore[call-overload]
        if found is not None:
            return found
    return _UNEXPECTED


def error_code(exc: BaseException, plane: Plane) -> str:
    return rule_for(exc).code(plane)


def _container_body(message: str) -> str:
    """What the container answered, as SageMaker's OriginalMessage carries it: the part its ModelError
    message quotes (`Received client error (400) from primary with message "<body>". See ...`)."""
    head, tail = ' with message "', '". See '
    start, end = message.find(head), message.rfind(tail)
    return message[start + len(head) : end] if 0 <= start < end else message


def error_response(exc: BaseException, plane: Plane) -> Response:
    rule = rule_for(exc)
    code = rule.code(plane)
    if isinstance(exc, errors.ZeroserveError):
        message = exc.message
    else:
        log.exception("unexpected error", exc_info=exc)
        message = "An internal error occurred; see the server log."
    body: dict[str, object] = {"__type": code, "message": message}
    if isinstance(exc, errors.ModelError):
        body.update(
            OriginalStatusCode=exc.original_status,
            OriginalMessage=_container_body(message),
            LogStreamArn=exc.log_stream,
        )
    content_type = "application/json" if plane == "runtime" else "application/x-amz-json-1.1"
    return Response(
        json.dumps(body), status_code=rule.status, media_type=content_type, headers={"x-amzn-ErrorType": code}
    )
