"""The friendly public route, POST /v1/{endpoint}/predict with {"text": ...}, on the shared server."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from models import make_tiny_bert
from server import deploy, pack_model

MESSAGE = re.compile(r"^(Negative|Positive) sentiment, Probability: (\d{1,3})%$")


def predict(server: Any, endpoint: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/{endpoint}/predict", json=body, timeout=60, **kwargs)


def test_predict_answers_label_probability_and_message(server: Any, tiny_endpoint: str) -> None:
    response = predict(server, tiny_endpoint, {"text": "I loved every minute of it"})
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"label", "probability", "message"}
    assert answer["label"] in ("negative", "positive")  # the model's NEGATIVE/POSITIVE, lower-cased
    assert 0.0 <= answer["probability"] <= 1.0
    assert answer["probability"] == round(answer["probability"], 2)
    shown = MESSAGE.match(answer["message"])
    assert shown is not None, answer["message"]
    assert shown.group(1).lower() == answer["label"]
    assert int(shown.group(2)) == round(answer["probability"] * 100)


def test_a_review_longer_than_the_models_window_is_truncated_not_refused(
    server: Any, tiny_endpoint: str
) -> None:
    long_review = "a long and winding review of a film " * 120  # ~1,000 tokens, over BERT's 512
    refused = httpx.post(f"{server.url}/endpoints/{tiny_endpoint}/invocations", json={"inputs": long_review})
    assert refused.status_code == 424  # InvokeEndpoint refuses it, as SageMaker's container does
    answer = predict(server, tiny_endpoint, {"text": long_review})
    assert answer.status_code == 200 and answer.json()["label"] in ("negative", "positive")


def test_unnamed_labels_map_to_negative_and_positive(sm: Any, server: Any, tmp_path: Path) -> None:
    tarball = pack_model(make_tiny_bert(tmp_path / "model", num_labels=2, seed=3), tmp_path / "model.tar.gz")
    name = f"unnamed-{uuid.uuid4().hex[:8]}"
    assert deploy(sm, name, str(tarball))["EndpointStatus"] == "InService"
    raw = httpx.post(f"{server.url}/endpoints/{name}/invocations", json={"inputs": "fine"}).json()
    assert raw[0]["label"] in ("LABEL_0", "LABEL_1")
    answer = predict(server, name, {"text": "fine"}).json()
    assert answer["label"] == {"LABEL_0": "negative", "LABEL_1": "positive"}[raw[0]["label"]]
    assert MESSAGE.match(answer["message"])


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"inputs": "wrong member"},
        {"text": 42},
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 100_001},
    ],
)
def test_bad_bodies_get_a_sagemaker_validation_error(server: Any, tiny_endpoint: str, body: Any) -> None:
    response = predict(server, tiny_endpoint, body)
    assert response.status_code == 400
    assert response.json()["__type"] == "ValidationError"
    assert "text" in response.json()["message"]


def test_a_body_that_is_not_json_is_a_validation_error(server: Any, tiny_endpoint: str) -> None:
    response = httpx.post(f"{server.url}/v1/{tiny_endpoint}/predict", content=b"\xff{not json")
    assert (response.status_code, response.json()["__type"]) == (400, "ValidationError")


def test_an_unknown_endpoint_is_a_validation_error(server: Any) -> None:
    response = predict(server, "no-such-endpoint", {"text": "hello"})
    assert response.status_code == 400
    assert response.json() == {
        "__type": "ValidationError",
        "message": "Endpoint no-such-endpoint of account 000000000000 not found.",
    }


def test_no_api_key_is_needed_when_none_is_configured(server: Any, tiny_endpoint: str) -> None:
    assert (
        predict(server, tiny_endpoint, {"text": "open"}, headers={"x-api-key": "anything"}).status_code == 200
    )
