"""SigV4 verification against signatures made by botocore itself, and API keys for the public route."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from zeroserve.api.auth import SignedRequest, SigV4Verifier, check_api_key, parse_keys
from zeroserve.errors import AuthError, IncompleteSignature, MissingAuthentication, UnrecognizedClient

KEYS = {"AKIDTEST": "s3cr3t/with+chars"}
BODY = b'{"EndpointName": "e"}'


def signed(
    key_id: str = "AKIDTEST",
    secret: str = KEYS["AKIDTEST"],
    *,
    path: str = "/",
    body: bytes = BODY,
    service: str = "sagemaker",
    region: str = "us-east-1",
    extra: dict[str, str] | None = None,
) -> SignedRequest:
    request = AWSRequest(
        method="POST",
        url=f"http://127.0.0.1:8080{path}",
        data=body,
        headers={"X-Amz-Target": "SageMaker.DescribeEndpoint", **(extra or {})},
    )
    SigV4Auth(Credentials(key_id, secret), service, region).add_auth(request)
    headers = [("host", "127.0.0.1:8080")] + [(k.lower(), v) for k, v in request.headers.items()]
    return SignedRequest("POST", path, "", headers, body)


def error_of(request: SignedRequest, clock: float | None = None) -> AuthError:
    verifier = SigV4Verifier(KEYS, clock=(lambda: clock) if clock else time.time)
    with pytest.raises(AuthError) as caught:
        verifier.verify(request)
    return caught.value


def test_a_botocore_signature_is_accepted() -> None:
    assert SigV4Verifier(KEYS).verify(signed()) == "AKIDTEST"


def test_percent_encoded_runtime_paths_verify() -> None:
    assert SigV4Verifier(KEYS).verify(signed(path="/endpoints/my%2Dep/invocations")) == "AKIDTEST"


def test_a_wrong_secret_is_an_invalid_signature() -> None:
    error = error_of(signed(secret="wrong"))
    assert type(error) is AuthError
    assert error.message.startswith("The request signature we calculated does not match")


def test_an_unknown_access_key_is_unrecognized() -> None:
    assert isinstance(error_of(signed(key_id="AKIDOTHER")), UnrecognizedClient)


def test_a_changed_body_breaks_the_signature() -> None:
    assert "does not match" in error_of(replace(signed(), body=b'{"EndpointName": "other"}')).message


def test_a_changed_signed_header_breaks_the_signature() -> None:
    request = signed()
    headers = [(k, "SageMaker.DeleteEndpoint" if k == "x-amz-target" else v) for k, v in request.headers]
    assert "does not match" in error_of(replace(request, headers=headers)).message


def test_a_declared_payload_hash_must_be_the_body_hash() -> None:
    request = signed(extra={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert "unsigned payload" in error_of(request).message


def test_a_signature_older_than_five_minutes_has_expired() -> None:
    message = error_of(signed(), clock=time.time() + 301).message
    assert message.startswith("Signature expired: ")
    assert message.endswith(" - 5 min.)")


def test_a_signature_from_the_future_is_not_yet_current() -> None:
    assert error_of(signed(), clock=time.time() - 301).message.startswith("Signature not yet current: ")


def test_within_the_skew_a_signature_is_accepted() -> None:
    assert SigV4Verifier(KEYS, clock=lambda: time.time() + 250).verify(signed()) == "AKIDTEST"


def test_another_service_scope_is_refused() -> None:
    assert "scoped to correct service" in error_of(signed(service="s3")).message


def test_no_authorization_is_missing_authentication() -> None:
    request = replace(signed(), headers=[(k, v) for k, v in signed().headers if k != "authorization"])
    assert isinstance(error_of(request), MissingAuthentication)


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dXNlcjpwYXNz",
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20240101/us-east-1/sagemaker/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20240101, SignedHeaders=host;x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 garbage",
    ],
)
def test_malformed_authorization_is_incomplete(authorization: str) -> None:
    request = signed()
    headers = [(k, authorization if k == "authorization" else v) for k, v in request.headers]
    assert isinstance(error_of(replace(request, headers=headers)), IncompleteSignature)


def test_parse_keys() -> None:
    assert parse_keys("A:x, B:y:z") == {"A": "x", "B": "y:z"}
    assert parse_keys("") == {}
    with pytest.raises(ValueError, match="AKID:SECRET"):
        parse_keys("justakey")


def test_api_keys() -> None:
    check_api_key(None, "")  # no keys configured: open
    check_api_key("k2", "k1, k2")
    with pytest.raises(MissingAuthentication):
        check_api_key(None, "k1")
    with pytest.raises(UnrecognizedClient):
        check_api_key("k3", "k1,k2")


def test_a_logs_signature_verifies_for_the_logs_service_only() -> None:
    request = signed(service="logs", extra={"X-Amz-Target": "Logs_20140328.DescribeLogGroups"})
    assert SigV4Verifier(KEYS).verify(request, "logs") == "AKIDTEST"
    error = error_of(request)  # checked as a SageMaker request: scoped to the wrong service
    assert error.message == "Credential should be scoped to correct service: 'sagemaker'."


def test_a_signature_for_another_region_is_refused_when_the_server_has_one() -> None:
    verifier = SigV4Verifier(KEYS, region="us-east-1")
    assert verifier.verify(signed()) == "AKIDTEST"
    with pytest.raises(AuthError) as caught:
        verifier.verify(signed(region="eu-west-1"))
    assert type(caught.value) is AuthError
    assert caught.value.message == "Credential should be scoped to a valid region, not 'eu-west-1'."
