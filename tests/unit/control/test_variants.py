"""Variant rules SageMaker enforces beyond botocore's shapes."""

from __future__ import annotations

from typing import Any

import pytest

from zeroserve.control.variants import check_variants, pending_summary
from zeroserve.errors import ValidationError


def serverless(memory_mb: int = 2048, max_concurrency: int = 5, **extra: int) -> dict[str, Any]:
    return {
        "VariantName": "v",
        "ModelName": "m",
        "ServerlessConfig": {"MemorySizeInMB": memory_mb, "MaxConcurrency": max_concurrency, **extra},
    }


def test_weight_defaults_to_one() -> None:
    assert check_variants([serverless()])[0]["InitialVariantWeight"] == 1.0
    assert check_variants([{**serverless(), "InitialVariantWeight": 0.5}])[0]["InitialVariantWeight"] == 0.5


def test_memory_comes_in_whole_gigabytes() -> None:
    with pytest.raises(
        ValidationError, match=r"Member must be one of \[1024, 2048, 3072, 4096, 5120, 6144\]"
    ):
        check_variants([serverless(memory_mb=1500)])


def test_provisioned_concurrency_may_not_exceed_max_concurrency() -> None:
    check_variants([serverless(max_concurrency=4, ProvisionedConcurrency=4)])
    with pytest.raises(ValidationError, match=r"ProvisionedConcurrency \(5\) of variant v must not exceed"):
        check_variants([serverless(max_concurrency=4, ProvisionedConcurrency=5)])


def test_a_variant_needs_capacity_of_one_kind() -> None:
    with pytest.raises(ValidationError, match="needs a ServerlessConfig, or an InstanceType"):
        check_variants([{"VariantName": "v", "ModelName": "m"}])
    with pytest.raises(ValidationError, match="cannot have both"):
        check_variants([{**serverless(), "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    check_variants(
        [{"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}]
    )


def test_variant_names_are_unique_and_models_named() -> None:
    with pytest.raises(ValidationError, match="VariantName v is used more than once"):
        check_variants([serverless(), serverless()])
    with pytest.raises(ValidationError, match=r"'productionVariants\.1\.member\.modelName'"):
        check_variants(
            [{"VariantName": "v", "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}]
        )


def test_pending_summary_shows_the_desired_capacity() -> None:
    instance = {
        "VariantName": "i",
        "ModelName": "m",
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 2,
    }
    summary = pending_summary(
        {"EndpointConfigName": "b", "ProductionVariants": [serverless(), instance]}, 42.0
    )
    assert summary["EndpointConfigName"] == "b"
    assert summary["StartTime"] == 42.0
    first, second = summary["ProductionVariants"]
    assert first["DesiredServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert first["VariantStatus"] == [{"Status": "Creating", "StartTime": 42.0}]
    assert (second["InstanceType"], second["DesiredInstanceCount"]) == ("ml.m5.large", 2)
