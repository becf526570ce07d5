"""Domain errors. Raised anywhere in zeroserve; only `api/error_responses.py` knows how they map to HTTP."""

from __future__ import annotations


class ZeroserveError(Exception):
    """Base class: `message` is what the client sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- control plane -----------------------------------------------------------------------------


class ValidationError(ZeroserveError):
    """A request member is missing or breaks a constraint, or a named resource does not exist
    (SageMaker answers ValidationException for both)."""


class ResourceNotFound(ZeroserveError):
    """Used by the few actions where SageMaker answers ResourceNotFound."""


class ResourceInUse(ZeroserveError):
    """The resource is busy (e.g. an endpoint that is still Creating or Updating)."""


class ResourceLimitExceeded(ZeroserveError):
    """A quota would be exceeded (endpoints, total concurrency)."""


class AuthError(ZeroserveError):
    """The request signature or API key did not check out."""


class MissingAuthentication(AuthError):
    """Authentication is required and the request carries none (no Authorization header, no API key)."""


class UnrecognizedClient(AuthError):
    """The access key id or API key is not one the server knows."""


class IncompleteSignature(AuthError):
    """The Authorization header is malformed or lacks a required part."""


# --- artifacts ---------------------------------------------------------------------------------


class ArtifactError(ZeroserveError):
    """A model artifact could not be fetched, unpacked or converted; becomes an endpoint FailureReason."""


class UnsupportedArchitecture(ArtifactError):
    """The checkpoint's architecture has no generative exporter; the message names it."""


# --- data plane --------------------------------------------------------------------------------


class EndpointUnavailable(ZeroserveError):
    """The endpoint does not exist or is not InService (runtime ValidationError)."""


class RequestTooLarge(ZeroserveError):
    """Payload above the variant's limit (runtime ValidationError)."""


class Throttled(ZeroserveError):
    """MaxConcurrency reached and the wait queue is full."""


class ModelError(ZeroserveError):
    """The model container answered an error; `original_status` is what it answered
    (400 for bad input, 500 for a model that raised)."""

    def __init__(self, message: str, original_status: int = 500, log_stream: str = "") -> None:
        super().__init__(message)
        self.original_status = original_status
        self.log_stream = log_stream


class ModelNotReady(ZeroserveError):
    """No worker became ready within the wait budget."""


class InternalFailure(ZeroserveError):
    """A worker died while handling the request."""


class ServiceUnavailable(ZeroserveError):
    """The server is shutting down."""


# --- training jobs -----------------------------------------------------------------------------


class TrainingJobFailed(ZeroserveError):
    """A training job could not run or finish; `message` becomes its FailureReason (never an HTTP answer)."""


def one_line(text: str, limit: int = 500) -> str:
    """`text` as one line of at most `limit` characters: a FailureReason, a manifest's reason."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
