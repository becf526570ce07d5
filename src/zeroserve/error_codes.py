"""SageMaker's names for errors, as clients read them (`__type`, `x-amzn-ErrorType`, boto3's
`ClientError.response["Error"]["Code"]`).

One enum so that nothing compares error names as bare strings: `api/error_responses.py` maps each error
class to these, and metrics count throttles and model errors by them without importing the HTTP layer.
A StrEnum: each member is its wire value, so JSON bodies, headers and logs read the same as plain strings.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # the control plane (JSON 1.1)
    VALIDATION_EXCEPTION = "ValidationException"
    RESOURCE_NOT_FOUND = "ResourceNotFound"
    RESOURCE_IN_USE = "ResourceInUse"
    RESOURCE_LIMIT_EXCEEDED = "ResourceLimitExceeded"
    # the runtime (REST JSON)
    VALIDATION_ERROR = "ValidationError"
    MODEL_ERROR = "ModelError"
    MODEL_NOT_READY = "ModelNotReadyException"
    # CloudWatch Logs' own names
    INVALID_PARAMETER = "InvalidParameterException"
    RESOURCE_NOT_FOUND_EXCEPTION = "ResourceNotFoundException"
    # shared by every plane
    INVALID_SIGNATURE = "InvalidSignatureException"
    MISSING_AUTHENTICATION_TOKEN = "MissingAuthenticationTokenException"
    UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
    INCOMPLETE_SIGNATURE = "IncompleteSignatureException"
    THROTTLING = "ThrottlingException"
    INTERNAL_FAILURE = "InternalFailure"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
