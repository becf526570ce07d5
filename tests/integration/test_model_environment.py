"""A model Environment value zeroserve cannot use is refused at CreateModel, over the real API, and nothing
is created (on main it left the endpoint Creating forever)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError


def test_create_model_with_a_batch_size_of_big_is_a_validation_exception(sm: Any, tiny_tarball: Path) -> None:
    with pytest.raises(ClientError) as caught:
        sm.create_model(
            ModelName="big-batch",
            PrimaryContainer={
                "ModelDataUrl": str(tiny_tarball),
                "Environment": {"ZEROSERVE_MAX_BATCH_SIZE": "big"},
            },
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "ZEROSERVE_MAX_BATCH_SIZE" in error["Message"]
    assert "must be an integer from 1 to 1024" in error["Message"]
    with pytest.raises(ClientError):
        sm.describe_model(ModelName="big-batch")
