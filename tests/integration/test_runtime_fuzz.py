"""The runtime over raw HTTP, as a hostile or buggy client would call it: random bodies, content types,
Accept and custom-attribute headers, huge and empty payloads, to InvokeEndpoint and the public /v1 route.
Only documented statuses in SageMaker's error shape; never an unhandled error; the endpoint still serves."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import httpx
import pytest

from server import ServerProcess

# Documented answers (DESIGN.md section 3): 200, 400 ValidationError, 424 ModelError (the container's client
# error relayed, as SageMaker does). Nothing here should throttle, time out or crash a worker.
ALLOWED = {200: None, 400: {"ValidationError"}, 424: {"ModelError"}}
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/csv",
    "text/plain",
    "application/jsonlines",
    "application/x-npy",
    "application/octet-stream",
    "image/png",
    "",
    "garbage",
    ";;;",
    "application/json; " + "x=" * 500,
    "*/*",
]
ACCEPTS = [
    "application/json",
    "*/*",
    "text/csv",
    "application/jsonlines",
    "image/png",
    "",
    "a/b/c",
    "x" * 300,
]
CUSTOM = ["", "a=b", "trace=1;x", "é".encode().decode("latin-1"), "a\tb", "k=" + "v" * 2000]


def bodies(rng: random.Random) -> Iterator[bytes]:
    texts = ["hello", "", "x" * 10_000, "\u00e9\u4e2d\U0001f600", "\x00"]
    shapes = [
        {"inputs": rng.choice(texts)},
        {"inputs": [rng.choice(texts) for _ in range(rng.randint(0, 5))]},
        {"inputs": None},
        {"inputs": 12},
        {"inputs": {"nested": [1, 2]}},
        {"inputs": "ok", "parameters": {"top_k": rng.choice([-1, 0, 3, "x", None, 10**9])}},
        {"parameters": {}},
        [],
        "text",
        None,
        {"inputs": "ok", "parameters": "not a dict"},
    ]
    while True:
        kind = rng.randrange(4)
        if kind == 0:
            yield json.dumps(rng.choice(shapes)).encode()
        elif kind == 1:
            yield rng.randbytes(rng.choice([0, 1, 10, 1000]))
        elif kind == 2:
            yield rng.choice([b"", b"{", b"[" * 10_000, b"a,b\n1,2\n", b'{"inputs": "x"}' * 3])
        else:
            raw = bytearray(json.dumps(rng.choice(shapes)).encode())
            if raw:
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            yield bytes(raw)


def check(answer: httpx.Response, where: str) -> None:
    assert answer.status_code in ALLOWED, (where, answer.status_code, answer.text[:300])
    if answer.status_code != 200:
        error = answer.json()
        assert error["__type"] in ALLOWED[answer.status_code], (where, error)
        assert error["message"] and "internal error" not in error["message"].lower(), (where, error)


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def test_random_invocations_get_only_documented_answers(client: httpx.Client, tiny_endpoint: str) -> None:
    rng = random.Random(20261201)
    stream = bodies(rng)
    seen: set[int] = set()
    for _ in range(300):
        headers = {"Content-Type": rng.choice(CONTENT_TYPES), "Accept": rng.choice(ACCEPTS)}
        if custom := rng.choice(CUSTOM):
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom
        raw = {k: v.encode("latin-1") for k, v in headers.items() if v}  # bytes: httpx sends them as they are
        body = next(stream)
        answer = client.post(f"/endpoints/{tiny_endpoint}/invocations", content=body, headers=raw)
        check(answer, f"{headers} {body[:80]!r}")
        seen.add(answer.status_code)
    assert 200 in seen and 400 in seen, "the fuzzing reaches both the model and the validation"
    assert (
        client.post(f"/endpoints/{tiny_endpoint}/invocations", json={"inputs": "still fine"}).status_code
        == 200
    )


def test_random_public_predictions_get_only_documented_answers(
    client: httpx.Client, tiny_endpoint: str
) -> None:
    rng = random.Random(7)
    stream = bodies(rng)
    for _ in range(150):
        body = (
            next(stream)
            if rng.random() < 0.7
            else json.dumps({"text": rng.choice(["good", "", 5, None])}).encode()
        )
        answer = client.post(
            f"/v1/{tiny_endpoint}/predict",
            content=body,
            headers={"Content-Type": rng.choice(CONTENT_TYPES) or "x"},
        )
        check(answer, f"{body[:80]!r}")
    assert client.post(f"/v1/{tiny_endpoint}/predict", json={"text": "great"}).status_code == 200


@pytest.mark.parametrize("size_mb", [0, 4, 7])
def test_empty_and_huge_payloads(client: httpx.Client, tiny_endpoint: str, size_mb: int) -> None:
    body = b"x" * (size_mb * 1024 * 1024 + (1 if size_mb else 0))
    answer = client.post(
        f"/endpoints/{tiny_endpoint}/invocations", content=body, headers={"Content-Type": "application/json"}
    )
    check(answer, f"{size_mb} MB")
    assert answer.status_code in (400, 424)
    if size_mb >= 4:
        assert answer.json()["__type"] == "ValidationError" and "exceeds" in answer.json()["message"]
    public = client.post(f"/v1/{tiny_endpoint}/predict", content=body)
    check(public, f"public {size_mb} MB")
    assert public.status_code == 400


def test_unknown_endpoints_and_variants(client: httpx.Client, tiny_endpoint: str) -> None:
    for path, headers in [
        ("/endpoints/no-such-endpoint/invocations", {}),
        ("/endpoints/bad_name!/invocations", {}),
        (f"/endpoints/{tiny_endpoint}/invocations", {"X-Amzn-SageMaker-Target-Variant": "nope"}),
        ("/v1/no-such-endpoint/predict", {}),
    ]:
        check(client.post(path, json={"inputs": "x", "text": "x"}, headers=headers), path)
