"""botocore's service model for `sagemaker`, the one source of the API's shapes: request validation and the
members of list summaries are read from it rather than written out a second time."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def service_model() -> Any:
    # Imported lazily: loading the gzipped model takes ~100 ms, paid once, on the first control-plane call.
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def input_shape(action: str) -> Any:
    return service_model().operation_model(action).input_shape


@functools.cache
def summary_members(action: str, list_member: str) -> tuple[str, ...]:
    """The members of one item of a List* answer, e.g. ListModels/Models -> ModelSummary's members."""
    output = service_model().operation_model(action).output_shape
    return tuple(output.members[list_member].member.members)
