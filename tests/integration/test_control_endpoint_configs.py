"""CreateEndpointConfig, DescribeEndpointConfig, ListEndpointConfigs, DeleteEndpointConfig through boto3."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

ARN = "arn:aws:sagemaker:us-east-1:000000000000:{}/{}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def model(sm: Any) -> str:
    name = unique("cfg-model")
    sm.create_model(ModelName=name, PrimaryContainer={"ModelDataUrl": "s3://models/m.tar.gz"})
    return name


def serverless(
    model: str, variant: str = "AllTraffic", memory_mb: int = 2048, **extra: int
) -> dict[str, Any]:
    return {
        "VariantName": variant,
        "ModelName": model,
        "ServerlessConfig": {"MemorySizeInMB": memory_mb, "MaxConcurrency": 10, **extra},
    }


def test_create_describe_list_delete_endpoint_config(sm: Any, model: str) -> None:
    name = unique("Config")
    created = sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[serverless(model)])
    assert created["EndpointConfigArn"] == ARN.format("endpoint-config", name.lower())

    described = sm.describe_endpoint_config(EndpointConfigName=name)
    assert described["EndpointConfigName"] == name
    assert described["ProductionVariants"] == [{**serverless(model), "InitialVariantWeight": 1.0}]
    assert described["CreationTime"].year >= 2024

    assert [
        c["EndpointConfigName"] for c in sm.list_endpoint_configs(NameContains=name)["EndpointConfigs"]
    ] == [name]
    sm.delete_endpoint_config(EndpointConfigName=name)
    with pytest.raises(ClientError) as caught:
        sm.describe_endpoint_config(EndpointConfigName=name)
    assert error(caught) == (
        "ValidationException",
        f'Could not find endpoint configuration "{ARN.format("endpoint-config", name.lower())}".',
    )


def test_instance_variants_and_provisioned_concurrency_are_accepted(sm: Any, model: str) -> None:
    name = unique("mixed")
    instance = {
        "VariantName": "Instances",
        "ModelName": model,
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1,
        "InitialVariantWeight": 0.25,
    }
    sm.create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=[serverless(model, ProvisionedConcurrency=2), instance]
    )
    variants = sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"]
    assert variants[0]["ServerlessConfig"]["ProvisionedConcurrency"] == 2
    assert variants[1]["InitialVariantWeight"] == 0.25


def test_a_config_naming_a_missing_model_is_rejected(sm: Any) -> None:
    name = unique("orphan")
    with pytest.raises(ClientError) as caught:
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[serverless("no-such-model")])
    assert error(caught) == (
        "ValidationException",
        f'Could not find model "{ARN.format("model", "no-such-model")}".',
    )
    assert sm.list_endpoint_configs(NameContains=name)["EndpointConfigs"] == []


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        (
            lambda m: [serverless(m, memory_mb=1500)],
            "Member must be one of [1024, 2048, 3072, 4096, 5120, 6144]",
        ),
        (lambda m: [serverless(m, memory_mb=8192)], "Member must have value less than or equal to 6144"),
        (lambda m: [serverless(m, ProvisionedConcurrency=11)], "must not exceed MaxConcurrency (10)"),
        (lambda m: [serverless(m), serverless(m)], "VariantName AllTraffic is used more than once"),
        (lambda m: [{"VariantName": "v", "ModelName": m}], "needs a ServerlessConfig, or an InstanceType"),
    ],
)
def test_bad_variants_are_rejected_and_nothing_is_stored(
    sm: Any, model: str, variants: Any, message: str
) -> None:
    name = unique("bad")
    with pytest.raises(ClientError) as caught:
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants(model))
    code, text = error(caught)
    assert code == "ValidationException"
    assert message in text
    assert sm.list_endpoint_configs(NameContains=name)["EndpointConfigs"] == []


def test_config_names_are_unique(sm: Any, model: str) -> None:
    name = unique("dup")
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[serverless(model)])
    with pytest.raises(ClientError) as caught:
        sm.create_endpoint_config(
            EndpointConfigName=name, ProductionVariants=[serverless(model, memory_mb=1024)]
        )
    assert error(caught)[1] == (
        f'Cannot create already existing endpoint configuration "{ARN.format("endpoint-config", name)}".'
    )
    memory = sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]["ServerlessConfig"]
    assert memory["MemorySizeInMB"] == 2048


def test_deleting_the_model_of_a_config_is_allowed_as_in_sagemaker(sm: Any) -> None:
    model, config = unique("gone"), unique("keeps")
    sm.create_model(ModelName=model, PrimaryContainer={"ModelDataUrl": "s3://models/m.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[serverless(model)])
    sm.delete_model(ModelName=model)
    assert (
        sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"] == model
    )


def test_deleting_a_missing_config_names_its_arn(sm: Any) -> None:
    with pytest.raises(ClientError) as caught:
        sm.delete_endpoint_config(EndpointConfigName="never-created")
    assert error(caught)[1] == (
        f'Could not find endpoint configuration "{ARN.format("endpoint-config", "never-created")}".'
    )
