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
from zeroserve.api.openai_requests import OpenAIRequestError
from zeroserve.error_codes import ErrorCode

Plane = Literal["control", "runtime", "logs"]
log = logging.getLogger("zeroserve.api")


@dataclass(frozen=True)
class ErrorRule:
    status: int
    control_code: ErrorCode
    runtime_code: ErrorCode
    logs_code: ErrorCode | None = None  # None: the control plane's code

    def code(self, plane: Plane) -> ErrorCode:
        if plane == "runtime":
            return self.runtime_code
        if plane == "logs":
            return self.logs_code or self.control_code
        return self.control_code


# Every ZeroserveError subclass has a row here or a line in NOT_ANSWERED (tests/unit/test_error_contract.py).
# A subclass without its own row answers as its nearest listed base class.
ERROR_TABLE: dict[type[errors.ZeroserveError], ErrorRule] = {
    errors.ValidationError: ErrorRule(
        400, ErrorCode.VALIDATION_EXCEPTION, ErrorCode.VALIDATION_ERROR, ErrorCode.INVALID_PARAMETER
    ),
    errors.ResourceNotFound: ErrorRule(
        400, ErrorCode.RESOURCE_NOT_FOUND, ErrorCode.VALIDATION_ERROR, ErrorCode.RESOURCE_NOT_FOUND_EXCEPTION
    ),
    errors.ResourceInUse: ErrorRule(400, ErrorCode.RESOURCE_IN_USE, ErrorCode.VALIDATION_ERROR),
    errors.ResourceLimitExceeded: ErrorRule(
        400, ErrorCode.RESOURCE_LIMIT_EXCEEDED, ErrorCode.VALIDATION_ERROR
    ),
    errors.AuthError: ErrorRule(403, ErrorCode.INVALID_SIGNATURE, ErrorCode.INVALID_SIGNATURE),
    errors.MissingAuthentication: ErrorRule(
        403, ErrorCode.MISSING_AUTHENTICATION_TOKEN, ErrorCode.MISSING_AUTHENTICATION_TOKEN
    ),
    errors.UnrecognizedClient: ErrorRule(403, ErrorCode.UNRECOGNIZED_CLIENT, ErrorCode.UNRECOGNIZED_CLIENT),
    errors.IncompleteSignature: ErrorRule(
        400, ErrorCode.INCOMPLETE_SIGNATURE, ErrorCode.INCOMPLETE_SIGNATURE
    ),
    errors.ArtifactError: ErrorRule(400, ErrorCode.VALIDATION_EXCEPTION, ErrorCode.VALIDATION_ERROR),
    errors.EndpointUnavailable: ErrorRule(400, ErrorCode.VALIDATION_EXCEPTION, ErrorCode.VALIDATION_ERROR),
    errors.RequestTooLarge: ErrorRule(400, ErrorCode.VALIDATION_EXCEPTION, ErrorCode.VALIDATION_ERROR),
    errors.Throttled: ErrorRule(400, ErrorCode.THROTTLING, ErrorCode.THROTTLING),
    errors.ModelError: ErrorRule(424, ErrorCode.MODEL_ERROR, ErrorCode.MODEL_ERROR),
    errors.ModelNotReady: ErrorRule(429, ErrorCode.MODEL_NOT_READY, ErrorCode.MODEL_NOT_READY),
    errors.InternalFailure: ErrorRule(500, ErrorCode.INTERNAL_FAILURE, ErrorCode.INTERNAL_FAILURE),
    errors.ServiceUnavailable: ErrorRule(503, ErrorCode.SERVICE_UNAVAILABLE, ErrorCode.SERVICE_UNAVAILABLE),
}
# Errors that never reach a client, each with the reason it has no row. Should one escape to a handler
# anyway, it answers as an unexpected error (500 InternalFailure).
NOT_ANSWERED: dict[type[errors.ZeroserveError], str] = {
    errors.TrainingJobFailed: "caught by the training job's task and recorded as its FailureReason",
    errors.UnsupportedArchitecture: "raised by the deploy-time converter: the endpoint's FailureReason",
    OpenAIRequestError: "answered in OpenAI's error shape by the /v1 routes (api/openai_responses.py)",
}
_UNEXPECTED = ErrorRule(500, ErrorCode.INTERNAL_FAILURE, ErrorCode.INTERNAL_FAILURE)


def rule_for(exc: BaseException) -> ErrorRule:
    for kind in type(exc).__mro__:
        found = ERROR_TABLE.get(kind)  # type: ignore[call-overload]
        if found is not None:
            return found
    return _UNEXPECTED


def error_code(exc: BaseException, plane: Plane) -> ErrorCode:
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
