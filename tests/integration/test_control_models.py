"""CreateModel, DescribeModel, ListModels, DeleteModel through boto3 against the real server."""

from __future__ import annotations

import tempfile
import uuid
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::000000000000:role/test"
ARN = "arn:aws:sagemaker:us-east-1:000000000000:model/{}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def container(url: str = "s3://models/sentiment/model.tar.gz") -> dict[str, Any]:
    return {"Image": "hf-inference", "ModelDataUrl": url, "Environment": {"HF_TASK": "text-classification"}}


def error(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_create_describe_list_delete_model(sm: Any) -> None:
    name = unique("Model")
    created = sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container())
    assert created["ModelArn"] == ARN.format(name.lower())

    described = sm.describe_model(ModelName=name)
    assert described["ModelName"] == name
    assert described["ModelArn"] == created["ModelArn"]
    assert described["PrimaryContainer"] == container()
    assert described["ExecutionRoleArn"] == ROLE
    assert described["EnableNetworkIsolation"] is False
    assert isinstance(described["CreationTime"], datetime)

    listed = sm.list_models(NameContains=name)["Models"]
    assert listed == [
        {"ModelName": name, "ModelArn": created["ModelArn"], "CreationTime": described["CreationTime"]}
    ]

    sm.delete_model(ModelName=name)
    assert sm.list_models(NameContains=name)["Models"] == []
    with pytest.raises(ClientError) as caught:
        sm.describe_model(ModelName=name)
    assert error(caught) == ("ValidationException", f'Could not find model "{ARN.format(name.lower())}".')


def test_containers_list_is_accepted_like_primary_container(sm: Any) -> None:
    name = unique("containers")
    sm.create_model(ModelName=name, Containers=[container()])
    assert sm.describe_model(ModelName=name)["Containers"] == [container()]


def test_a_local_path_is_a_valid_model_data_url(sm: Any) -> None:
    name = unique("local")
    path = f"{tempfile.gettempdir()}/models/model.tar.gz"  # inside the default ZEROSERVE_ALLOWED_PATHS
    sm.create_model(ModelName=name, PrimaryContainer=container(path))
    assert sm.describe_model(ModelName=name)["PrimaryContainer"]["ModelDataUrl"] == path


def test_model_names_are_unique(sm: Any) -> None:
    name = unique("dup")
    sm.create_model(ModelName=name, PrimaryContainer=container("s3://a/first.tar.gz"))
    with pytest.raises(ClientError) as caught:
        sm.create_model(ModelName=name, PrimaryContainer=container("s3://a/second.tar.gz"))
    assert error(caught) == (
        "ValidationException",
        f'Cannot create already existing model "{ARN.format(name)}".',
    )
    assert sm.describe_model(ModelName=name)["PrimaryContainer"]["ModelDataUrl"] == "s3://a/first.tar.gz"


def test_a_model_needs_a_container_with_an_artifact(sm: Any) -> None:
    name = unique("empty")
    with pytest.raises(ClientError) as caught:
        sm.create_model(ModelName=name)
    assert error(caught)[0] == "ValidationException"
    with pytest.raises(ClientError) as caught:
        sm.create_model(ModelName=name, PrimaryContainer={"Image": "hf-inference"})
    assert "ModelDataUrl is required" in error(caught)[1]
    assert sm.list_models(NameContains=name)["Models"] == []


def test_deleting_a_missing_model_names_its_arn(sm: Any) -> None:
    with pytest.raises(ClientError) as caught:
        sm.delete_model(ModelName="never-created")
    assert error(caught) == ("ValidationException", f'Could not find model "{ARN.format("never-created")}".')


def test_a_bad_name_is_refused_by_the_server_not_only_by_botocore(server: Any) -> None:
    import httpx

    response = httpx.post(
        server.url,
        headers={"X-Amz-Target": "SageMaker.CreateModel", "Content-Type": "application/x-amz-json-1.1"},
        json={"ModelName": "bad_name", "PrimaryContainer": container()},
    )
    assert response.status_code == 400
    assert response.json()["__type"] == "ValidationException"
    assert "Value 'bad_name' at 'modelName' failed to satisfy constraint" in response.json()["message"]
