"""SageMaker's wording for the data plane's errors, kept beside the error classes (errors.py) and their HTTP
table (api/error_responses.py): the router says what happened, these functions say it the way SageMaker does,
so a change of wording never touches scheduling code.
"""

from __future__ import annotations

from zeroserve.errors import (
    EndpointUnavailable,
    InternalFailure,
    ModelError,
    ModelNotReady,
    RequestTooLarge,
    ServiceUnavailable,
    Throttled,
)

_MB = 1024 * 1024


def log_stream(region: str, account_id: str, endpoint: str) -> str:
    """The CloudWatch log group SageMaker points at in a ModelError (LogStreamArn)."""
    return f"arn:aws:logs:{region}:{account_id}:log-group:/aws/sagemaker/Endpoints/{endpoint}"


def endpoint_not_found(endpoint: str, account_id: str) -> EndpointUnavailable:
    return EndpointUnavailable(f"Endpoint {endpoint} of account {account_id} not found.")


def variant_not_found(variant: str, endpoint: str) -> EndpointUnavailable:
    return EndpointUnavailable(f"Variant {variant} not found for endpoint {endpoint}.")


def payload_too_large(size_bytes: int, limit_bytes: int, variant: str | None = None) -> RequestTooLarge:
    of = f" of variant {variant}" if variant else ""
    return RequestTooLarge(
        f"Request payload of {size_bytes} bytes exceeds the {limit_bytes // _MB} MB limit{of}."
    )


def max_concurrency_reached(endpoint: str, max_concurrency: int) -> Throttled:
    return Throttled(
        f"Endpoint {endpoint} is at its MaxConcurrency of {max_concurrency} and its queue is full. "
        "Retry with backoff."
    )


def server_draining() -> ServiceUnavailable:
    return ServiceUnavailable("The server is shutting down; retry on another instance.")


def container_error(original_status: int, error: str, stream: str) -> ModelError:
    kind = "client" if original_status < 500 else "server"
    return ModelError(
        f'Received {kind} error ({original_status}) from primary with message "{error}". '
        f"See {stream} for more information.",
        original_status,
        stream,
    )


def invocation_timed_out(timeout_s: float, stream: str) -> ModelError:
    return ModelError(
        'Received server error (0) from primary with message "Your invocation timed out while waiting '
        f'for a response from container primary after {timeout_s:.0f} s."',
        408,
        stream,
    )


def worker_exited() -> InternalFailure:
    return InternalFailure("The worker serving the request exited; it has been replaced.")


def over_memory(rss_mb: float, memory_mb: int) -> InternalFailure:
    return InternalFailure(
        f"The worker used {rss_mb:.0f} MB, over the variant's MemorySizeInMB of {memory_mb}; it was stopped "
        "and will be replaced."
    )


def model_could_not_load(error: str) -> ModelNotReady:
    return ModelNotReady(f"the model could not be loaded: {error}")


def model_still_loading() -> ModelNotReady:
    return ModelNotReady("the model is still loading; no worker became ready in time")


def memory_budget_exhausted() -> Throttled:
    return Throttled("the machine's memory budget is exhausted by busy endpoints; retry later")
