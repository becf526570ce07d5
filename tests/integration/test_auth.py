"""Authentication on a server started with ZEROSERVE_ACCESS_KEYS (SigV4) and ZEROSERVE_API_KEYS (public
route), and the rule that a non-loopback bind needs authentication or --insecure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from server import ServerProcess, deploy

KEY_ID, SECRET = "AKIDZEROSERVE", "zeroserve/secret+key"
API_KEY = "public-key-1"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Bound to every interface: allowed without --insecure because signatures are checked.
    env = {"ZEROSERVE_ACCESS_KEYS": f"OTHERKEY:other,{KEY_ID}:{SECRET}", "ZEROSERVE_API_KEYS": API_KEY}
    with ServerProcess(
        tmp_path_factory.mktemp("secured") / "data", env=env, args=["--host", "0.0.0.0"]
    ) as running:
        yield running


def client(server: ServerProcess, service: str, key_id: str = KEY_ID, secret: str = SECRET) -> Any:
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def code_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    return caught.value.response["ResponseMetadata"]["HTTPStatusCode"], caught.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def endpoint(secured: ServerProcess, tiny_tarball: Path) -> str:
    described = deploy(client(secured, "sagemaker"), "guarded", str(tiny_tarball))
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return "guarded"


def test_correct_keys_are_accepted_on_the_control_plane(secured: ServerProcess, endpoint: str) -> None:
    listed = client(secured, "sagemaker").list_endpoints()["Endpoints"]
    assert [e["EndpointName"] for e in listed] == [endpoint]


def test_correct_keys_are_accepted_on_the_runtime(secured: ServerProcess, endpoint: str) -> None:
    answer = client(secured, "sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint,
        ContentType="application/json",
        Body=json.dumps({"inputs": "signed and sealed"}),
    )
    assert json.loads(answer["Body"].read())[0]["label"] in ("NEGATIVE", "POSITIVE")


def test_a_wrong_secret_is_an_invalid_signature(secured: ServerProcess, endpoint: str) -> None:
    with pytest.raises(ClientError) as caught:
        client(secured, "sagemaker", secret="not-the-secret").list_endpoints()
    assert code_of(caught) == (403, "InvalidSignatureException")
    with pytest.raises(ClientError) as caught:
        client(secured, "sagemaker-runtime", secret="not-the-secret").invoke_endpoint(
            EndpointName=endpoint, ContentType="application/json", Body=b'{"inputs": "x"}'
        )
    assert code_of(caught) == (403, "InvalidSignatureException")


def test_an_unknown_access_key_is_unrecognized(secured: ServerProcess) -> None:
    with pytest.raises(ClientError) as caught:
        client(secured, "sagemaker", key_id="AKIDUNKNOWN").list_models()
    assert code_of(caught) == (403, "UnrecognizedClientException")


def test_a_rejected_create_stores_nothing(secured: ServerProcess) -> None:
    with pytest.raises(ClientError):
        client(secured, "sagemaker", secret="wrong").create_model(
            ModelName="sneaky", PrimaryContainer={"ModelDataUrl": "s3://b/k.tar.gz"}
        )
    assert client(secured, "sagemaker").list_models(NameContains="sneaky")["Models"] == []


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/", {"X-Amz-Target": "SageMaker.ListEndpoints", "Content-Type": "application/x-amz-json-1.1"}),
        ("/endpoints/guarded/invocations", {"Content-Type": "application/json"}),
        ("/invocations", {"Content-Type": "application/json"}),
    ],
)
def test_unsigned_requests_are_rejected(
    secured: ServerProcess, endpoint: str, path: str, headers: dict[str, str]
) -> None:
    response = httpx.post(secured.url + path, headers=headers, content=b'{"inputs": "x"}')
    assert response.status_code == 403
    assert response.json()["__type"] == "MissingAuthenticationTokenException"
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_a_replayed_request_with_another_body_is_rejected(secured: ServerProcess, endpoint: str) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{secured.url}/endpoints/{endpoint}/invocations"
    request = AWSRequest(
        "POST", url, data=b'{"inputs": "original"}', headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(KEY_ID, SECRET), "sagemaker", "us-east-1").add_auth(request)
    signed = dict(request.headers.items())
    assert httpx.post(url, headers=signed, content=b'{"inputs": "original"}').status_code == 200
    tampered = httpx.post(url, headers=signed, content=b'{"inputs": "tampered"}')
    assert (tampered.status_code, tampered.json()["__type"]) == (403, "InvalidSignatureException")


def test_a_stale_signature_has_expired(secured: ServerProcess) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b"{}"
    headers = {
        "X-Amz-Target": "SageMaker.ListModels",
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Date": "20200101T000000Z",
    }
    request = AWSRequest("POST", secured.url + "/", data=body, headers=headers)
    signer = SigV4Auth(Credentials(KEY_ID, SECRET), "sagemaker", "us-east-1")
    request.context["timestamp"] = "20200101T000000Z"
    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    signed_headers = signer.signed_headers(signer.headers_to_sign(request))
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders={signed_headers}, "
        f"Signature={signature}"
    )
    response = httpx.post(
        secured.url + "/", headers={**headers, "Authorization": authorization}, content=body
    )
    assert response.status_code == 403
    assert response.json()["__type"] == "InvalidSignatureException"
    assert response.json()["message"].startswith("Signature expired: 20200101T000000Z is now earlier than ")


def test_ping_stays_open(secured: ServerProcess) -> None:
    assert httpx.get(secured.url + "/ping").status_code == 200


def test_the_public_route_takes_api_keys_not_signatures(secured: ServerProcess, endpoint: str) -> None:
    url = f"{secured.url}/v1/{endpoint}/predict"
    missing = httpx.post(url, json={"text": "hello"})
    assert (missing.status_code, missing.json()["__type"]) == (403, "MissingAuthenticationTokenException")
    wrong = httpx.post(url, json={"text": "hello"}, headers={"x-api-key": "guess"})
    assert (wrong.status_code, wrong.json()["__type"]) == (403, "UnrecognizedClientException")
    right = httpx.post(url, json={"text": "hello"}, headers={"x-api-key": API_KEY})
    assert right.status_code == 200
    assert right.json()["label"] in ("negative", "positive")


def test_a_public_bind_without_auth_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ZEROSERVE_ACCESS_KEYS", "ZEROSERVE_INSECURE")}
    command = [
        sys.executable,
        "-m",
        "zeroserve",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path / "data"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without authentication" in done.stdout + done.stderr


def test_a_public_bind_with_insecure_starts(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", args=["--host", "0.0.0.0", "--insecure"]) as running:
        assert httpx.get(running.url + "/ping").status_code == 200
        assert running.sagemaker().list_models()["Models"] == []  # no signature needed: nothing configured


def test_cloudwatch_logs_requests_are_signed_as_the_logs_service(secured: ServerProcess) -> None:
    answer = client(secured, "logs").describe_log_groups()  # raises unless the signature verified
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as caught:
        client(secured, "logs", secret="not-the-secret").describe_log_groups()
    assert code_of(caught) == (403, "InvalidSignatureException")
    with pytest.raises(ClientError) as caught:
        client(secured, "logs").describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/none")
    assert code_of(caught) == (400, "ResourceNotFoundException")  # past the signature check
