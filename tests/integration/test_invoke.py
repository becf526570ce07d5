"""Deploy with boto3 exactly as the SageMaker workflow does, then invoke through sagemaker-runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from server import ServerProcess, deploy, invoke_json


def test_invoke_returns_one_label_per_input_from_config_id2label(rt: Any, tiny_endpoint: str) -> None:
    answer = invoke_json(rt, tiny_endpoint, {"inputs": "I love this movie"})
    assert isinstance(answer, list) and len(answer) == 1
    assert answer[0]["label"] in {"NEGATIVE", "POSITIVE"}
    assert 0.5 <= answer[0]["score"] <= 1.0

    many = invoke_json(rt, tiny_endpoint, {"inputs": ["great", "awful", "fine"]})
    assert [set(item) for item in many] == [{"label", "score"}] * 3


def test_response_names_the_invoked_variant(rt: Any, tiny_endpoint: str) -> None:
    answer = rt.invoke_endpoint(
        EndpointName=tiny_endpoint, ContentType="application/json", Body=json.dumps({"inputs": "ok"})
    )
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["ContentType"] == "application/json"


def test_endpoint_status_went_to_in_service_with_serverless_config(sm: Any, tiny_endpoint: str) -> None:
    described = sm.describe_endpoint(EndpointName=tiny_endpoint)
    assert described["EndpointStatus"] == "InService"
    variant = described["ProductionVariants"][0]
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 10}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "Expecting property name enclosed in double quotes"),
        (json.dumps({"texts": "neither inputs nor a text pair"}).encode(), "text_pair"),
        (json.dumps({"inputs": "x", "parameters": {"bogus": 1}}).encode(), "unexpected keyword argument"),
    ],
)
def test_bad_request_is_model_error_quoting_the_model_servers_error_body(
    rt: Any, tiny_endpoint: str, body: bytes, fragment: str
) -> None:
    with pytest.raises(ClientError) as caught:
        rt.invoke_endpoint(EndpointName=tiny_endpoint, ContentType="application/json", Body=body)
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    message = error["Error"]["Message"]
    # SageMaker's relay of the Hugging Face container's model server: its pretty-printed JSON, quoted.
    assert message.startswith('Received client error (400) from primary with message "{\n  "code": 400,\n')
    assert '}\n". See ' in message
    container_body = json.loads(error["OriginalMessage"])
    assert container_body["code"] == 400 and container_body["type"] == "InternalServerException"
    assert fragment in container_body["message"]


def test_a_body_without_inputs_is_the_inputs_as_on_sagemaker(rt: Any, tiny_endpoint: str) -> None:
    pair = invoke_json(rt, tiny_endpoint, {"text": "I love this movie", "text_pair": "So do I"})
    assert set(pair) == {"label", "score"}


def test_an_input_over_the_models_window_is_refused_unless_truncation_is_asked_for(
    rt: Any, tiny_endpoint: str
) -> None:
    long_text = "word " * 600
    with pytest.raises(ClientError) as caught:
        invoke_json(rt, tiny_endpoint, {"inputs": long_text})
    assert "512 tokens" in json.loads(caught.value.response["OriginalMessage"])["message"]
    answer = invoke_json(rt, tiny_endpoint, {"inputs": long_text, "parameters": {"truncation": True}})
    assert answer[0]["label"] in {"NEGATIVE", "POSITIVE"}


def test_unknown_endpoint_is_validation_error(rt: Any, server: ServerProcess) -> None:
    with pytest.raises(ClientError) as caught:
        invoke_json(rt, "no-such-endpoint", {"inputs": "x"})
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "no-such-endpoint" in caught.value.response["Error"]["Message"]


def test_payload_over_4_mb_is_rejected_before_reaching_a_worker(
    server: ServerProcess, tiny_endpoint: str
) -> None:
    big = json.dumps({"inputs": "x" * (4 * 1024 * 1024 + 10)})
    answer = httpx.post(
        f"{server.url}/endpoints/{tiny_endpoint}/invocations",
        content=big,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["__type"] == "ValidationError"
    assert "4 MB" in answer.json()["message"]


def test_ping_and_container_invocations_route(server: ServerProcess, tiny_endpoint: str) -> None:
    assert httpx.get(f"{server.url}/ping").json() == {"status": "healthy"}


@pytest.mark.parametrize(
    ("case", "reason_fragment"),
    [("missing", "no such file"), ("not-a-tarball", "tar"), ("no-config", "config.json")],
)
def test_bad_artifact_fails_its_endpoint_with_a_reason_and_touches_nothing_else(
    sm: Any, rt: Any, tmp_path: Path, tiny_endpoint: str, case: str, reason_fragment: str
) -> None:
    import tarfile

    artifact = tmp_path / "model.tar.gz"
    if case == "not-a-tarball":
        artifact.write_text("this is not a tarball")
    elif case == "no-config":
        readme = tmp_path / "README.md"
        readme.write_text("no model here")
        with tarfile.open(artifact, "w:gz") as archive:
            archive.add(readme, arcname="README.md")
    name = f"bad-{case}"
    described = deploy(sm, name, str(artifact))
    assert described["EndpointStatus"] == "Failed"
    assert reason_fragment in described["FailureReason"].lower()
    # The failed endpoint answers with a clear error; the healthy one keeps serving.
    with pytest.raises(ClientError) as caught:
        invoke_json(rt, name, {"inputs": "x"})
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert invoke_json(rt, tiny_endpoint, {"inputs": "still fine"})[0]["label"] in {"NEGATIVE", "POSITIVE"}
    # A failed endpoint can be deleted; its model and config are untouched.
    sm.delete_endpoint(EndpointName=name)
    assert sm.describe_model(ModelName=name)["ModelName"] == name
    assert sm.describe_endpoint_config(EndpointConfigName=name)["EndpointConfigName"] == name


def test_status_shows_what_the_fidelity_gate_chose_for_the_endpoint(
    server: ServerProcess, tiny_endpoint: str
) -> None:
    status = httpx.get(f"{server.url}/zeroserve/status").json()
    model = status["endpoints"][tiny_endpoint]["variants"][0]["model"]
    assert model["runtime"] == "onnx" and model["task"] == "text-classification"
    assert model["quantization"] == "gate" and model["weights"] in ("int8", "fp32")
    assert "text-classification probes" in model["reason"]
    if model["weights"] == "int8":
        assert model["scheme"] in ("dynamic", "blockwise")
    # The deploy log says the same, once per converted bundle.
    served = f"int8 ({model['scheme']})" if model["weights"] == "int8" else "fp32"
    assert f"serves onnx {served}: {model['reason']}" in server.log_path.read_text()
