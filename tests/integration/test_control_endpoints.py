"""CreateEndpoint, DescribeEndpoint, ListEndpoints, DeleteEndpoint and boto3's waiters, with a real model."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError

from server import deploy, invoke_json, model_and_config, wait_for_endpoint
from zeroserve.aws.service_model import service_model
from zeroserve.aws.validation import problems_in

ARN = "arn:aws:sagemaker:us-east-1:000000000000:{}/{}"
FAST = {"Delay": 1, "MaxAttempts": 300}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_endpoint_lifecycle_with_waiters(sm: Any, rt: Any, server: Any, tiny_tarball: Path) -> None:
    import httpx

    name = unique("Endpoint")
    model_and_config(sm, name, str(tiny_tarball), memory_mb=1024, max_concurrency=3)
    created = sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    assert created["EndpointArn"] == ARN.format("endpoint", name.lower())
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] in ("Creating", "InService")

    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST)
    described = sm.describe_endpoint(EndpointName=name)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == name
    assert described["LastModifiedTime"] >= described["CreationTime"]
    (variant,) = described["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert (
        variant["CurrentServerlessConfig"]
        == variant["DesiredServerlessConfig"]
        == {"MemorySizeInMB": 1024, "MaxConcurrency": 3}
    )
    assert (variant["CurrentWeight"], variant["DesiredWeight"]) == (1.0, 1.0)
    assert "FailureReason" not in described and "PendingDeploymentSummary" not in described

    # The raw answer fits botocore's output shape exactly: no member it does not know, none missing.
    raw = httpx.post(
        server.url, headers={"X-Amz-Target": "SageMaker.DescribeEndpoint"}, json={"EndpointName": name}
    )
    assert problems_in(service_model().operation_model("DescribeEndpoint").output_shape, raw.json()) == []

    summary = sm.list_endpoints(NameContains=name)["Endpoints"]
    assert [(e["EndpointName"], e["EndpointStatus"]) for e in summary] == [(name, "InService")]
    assert invoke_json(rt, name, {"inputs": "a fine film"})[0]["label"] in ("NEGATIVE", "POSITIVE")

    sm.delete_endpoint(EndpointName=name)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=FAST)
    with pytest.raises(ClientError) as caught:
        invoke_json(rt, name, {"inputs": "gone"})
    assert error(caught)[0] == "ValidationError"
    assert sm.describe_endpoint_config(EndpointConfigName=name)["EndpointConfigName"] == name


def test_an_endpoint_needs_an_existing_config(sm: Any) -> None:
    name = unique("noconfig")
    with pytest.raises(ClientError) as caught:
        sm.create_endpoint(EndpointName=name, EndpointConfigName="no-such-config")
    assert error(caught) == (
        "ValidationException",
        f'Could not find endpoint configuration "{ARN.format("endpoint-config", "no-such-config")}".',
    )
    assert sm.list_endpoints(NameContains=name)["Endpoints"] == []


def test_an_endpoint_whose_model_was_deleted_cannot_be_created(sm: Any) -> None:
    name = unique("nomodel")
    model_and_config(sm, name, "s3://models/m.tar.gz", memory_mb=1024, max_concurrency=3)
    sm.delete_model(ModelName=name)
    with pytest.raises(ClientError) as caught:
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    assert error(caught) == ("ValidationException", f'Could not find model "{ARN.format("model", name)}".')


def test_endpoint_names_are_unique(sm: Any, tiny_endpoint: str) -> None:
    with pytest.raises(ClientError) as caught:
        sm.create_endpoint(EndpointName=tiny_endpoint, EndpointConfigName=tiny_endpoint)
    assert error(caught) == (
        "ValidationException",
        f'Cannot create already existing endpoint "{ARN.format("endpoint", tiny_endpoint)}".',
    )
    assert sm.describe_endpoint(EndpointName=tiny_endpoint)["EndpointStatus"] == "InService"


def test_a_bad_artifact_fails_the_endpoint_which_can_then_be_deleted(sm: Any, tmp_path: Path) -> None:
    corrupt = tmp_path / "model.tar.gz"
    corrupt.write_bytes(b"this is not a gzip file" * 100)
    name = unique("corrupt")
    model_and_config(sm, name, str(corrupt), memory_mb=1024, max_concurrency=3)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    with pytest.raises(WaiterError, match="Waiter encountered a terminal failure state"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST)
    described = sm.describe_endpoint(EndpointName=name)
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"]
    assert [
        e["EndpointName"] for e in sm.list_endpoints(StatusEquals="Failed", NameContains=name)["Endpoints"]
    ] == [name]

    with pytest.raises(ClientError) as caught:
        sm.update_endpoint(EndpointName=name, EndpointConfigName=name)
    assert error(caught) == (
        "ValidationException",
        f'Cannot update failed endpoint "{ARN.format("endpoint", name)}".',
    )

    sm.delete_endpoint(EndpointName=name)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=FAST)


def test_a_missing_artifact_fails_with_a_reason_naming_it(sm: Any, tmp_path: Path) -> None:
    name = unique("missing")
    described = deploy(sm, name, str(tmp_path / "nowhere.tar.gz"))
    assert described["EndpointStatus"] == "Failed"
    assert "nowhere.tar.gz" in described["FailureReason"]


def test_deleting_a_missing_endpoint_names_its_arn(sm: Any) -> None:
    with pytest.raises(ClientError) as caught:
        sm.delete_endpoint(EndpointName="never-created")
    assert error(caught) == (
        "ValidationException",
        f'Could not find endpoint "{ARN.format("endpoint", "never-created")}".',
    )


def test_an_endpoint_keeps_serving_after_its_model_and_config_are_deleted(
    sm: Any, rt: Any, tiny_tarball: Path
) -> None:
    name = unique("orphaned")
    assert deploy(sm, name, str(tiny_tarball))["EndpointStatus"] == "InService"
    sm.delete_model(ModelName=name)
    sm.delete_endpoint_config(EndpointConfigName=name)
    assert invoke_json(rt, name, {"inputs": "still here"})[0]["label"] in ("NEGATIVE", "POSITIVE")
    assert wait_for_endpoint(sm, name)["EndpointStatus"] == "InService"
    sm.delete_endpoint(EndpointName=name)
