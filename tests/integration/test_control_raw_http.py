"""The control plane over raw HTTP, as a hostile or buggy client would call it: malformed bodies, wrong
types, huge values, random mutations of valid requests. Never a 5xx, always SageMaker's error shape, and
stored state is the same after every rejected call."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from zeroserve.aws.service_model import service_model
from zeroserve.aws.validation import problems_in

ACTIONS = (
    "CreateModel",
    "DescribeModel",
    "ListModels",
    "DeleteModel",
    "CreateEndpointConfig",
    "DescribeEndpointConfig",
    "ListEndpointConfigs",
    "DeleteEndpointConfig",
    "CreateEndpoint",
    "DescribeEndpoint",
    "ListEndpoints",
    "UpdateEndpoint",
    "DeleteEndpoint",
    "CreateTrainingJob",
    "DescribeTrainingJob",
    "ListTrainingJobs",
    "StopTrainingJob",
)
# A value of the wrong type for each kind of member.
WRONG_TYPE = {
    "string": 12345,
    "integer": "12",
    "long": "12",
    "float": "1.5",
    "double": "1.5",
    "boolean": "yes",
    "timestamp": [1],
    "list": {"a": 1},
    "map": ["a"],
    "structure": "s",
}
JUNK: list[Any] = [
    None,
    True,
    False,
    -1,
    0,
    10**30,
    -(10**4000),
    1.5,
    "",
    "x" * 70_000,
    [],
    {},
    [{}],
    {"a": []},
    "a_b",
    "\u0000",
    "\U0001f600",
    [[[[[]]]]],
    "s3://",
    "../../etc/passwd",
]


def post(client: httpx.Client, action: str | None, body: bytes | str | Any, **headers: str) -> httpx.Response:
    if action is not None:
        headers.setdefault("X-Amz-Target", f"SageMaker.{action}")
    headers.setdefault("Content-Type", "application/x-amz-json-1.1")
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post("/", content=content, headers=headers)


@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def names(client: httpx.Client, action: str, key: str, name_key: str) -> list[str]:
    found, token = [], None
    while True:
        page = post(client, action, {"MaxResults": 100, **({"NextToken": token} if token else {})}).json()
        found += [item[name_key] for item in page[key]]
        if not (token := page.get("NextToken")):
            return sorted(found)


def state(client: httpx.Client, endpoint: str) -> Any:
    """Everything stored that a rejected call could have touched, in comparable form."""
    return (
        names(client, "ListModels", "Models", "ModelName"),
        names(client, "ListEndpointConfigs", "EndpointConfigs", "EndpointConfigName"),
        names(client, "ListEndpoints", "Endpoints", "EndpointName"),
        post(client, "DescribeEndpoint", {"EndpointName": endpoint}).json(),
        post(client, "DescribeEndpointConfig", {"EndpointConfigName": endpoint}).json(),
        post(client, "DescribeModel", {"ModelName": endpoint}).json(),
    )


def assert_rejected(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["__type"] == "ValidationException", body
    assert isinstance(body["message"], str) and body["message"]
    assert response.headers["x-amzn-RequestId"]


def valid_bodies(endpoint: str) -> dict[str, dict[str, Any]]:
    serverless = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    return {
        "CreateModel": {
            "ModelName": "fuzz-model",
            "PrimaryContainer": {
                "Image": "hf",
                "ModelDataUrl": "s3://b/k.tar.gz",
                "Environment": {"HF_TASK": "text-classification"},
            },
        },
        "CreateEndpointConfig": {
            "EndpointConfigName": "fuzz-config",
            "ProductionVariants": [
                {
                    "VariantName": "v",
                    "ModelName": endpoint,
                    "ServerlessConfig": serverless,
                    "InitialVariantWeight": 1.0,
                }
            ],
        },
        "CreateEndpoint": {"EndpointName": "fuzz-endpoint", "EndpointConfigName": "no-such-config"},
        "UpdateEndpoint": {"EndpointName": endpoint, "EndpointConfigName": "no-such-config"},
        "ListEndpoints": {
            "MaxResults": 5,
            "SortBy": "Name",
            "SortOrder": "Ascending",
            "NameContains": "t",
            "StatusEquals": "InService",
            "CreationTimeAfter": 0,
            "LastModifiedTimeBefore": 4e9,
        },
        "ListModels": {
            "MaxResults": 5,
            "SortBy": "CreationTime",
            "NameContains": "t",
            "CreationTimeBefore": 4e9,
        },
        "DescribeEndpoint": {"EndpointName": endpoint},
    }


MALFORMED: list[bytes] = [
    b"{",
    b"[]",
    b"[1, 2]",
    b"null",
    b'"text"',
    b"42",
    b"\xff\xfe\xfd",
    b"{'single': 'quotes'}",
    b'{"EndpointName": NaN}',
    b'{"EndpointName": Infinity}',
    b'{"MaxResults": 1e999}',
    b'{"MaxResults": ' + b"9" * 5000 + b"}",
    b"[" * 50_000 + b"]" * 50_000,
    b'{"a":' * 40 + b"1" + b"}" * 40,
    b'{"EndpointName": "tiny", "EndpointName": 5}',
    b"\x00" * 100,
]


@pytest.mark.parametrize("action", ["CreateModel", "CreateEndpoint", "UpdateEndpoint", "ListEndpoints"])
def test_malformed_bodies_are_validation_exceptions_and_change_nothing(
    client: httpx.Client, tiny_endpoint: str, action: str
) -> None:
    before = state(client, tiny_endpoint)
    for body in MALFORMED:
        assert_rejected(post(client, action, body))
    assert state(client, tiny_endpoint) == before


def test_wrong_types_for_every_member_of_every_action(client: httpx.Client, tiny_endpoint: str) -> None:
    before = state(client, tiny_endpoint)
    for action in ACTIONS:
        shape = service_model().operation_model(action).input_shape
        for member, member_shape in shape.members.items():
            response = post(client, action, {member: WRONG_TYPE[member_shape.type_name]})
            assert_rejected(response)
            assert f"'{member[0].lower()}{member[1:]}'" in response.json()["message"]
    assert state(client, tiny_endpoint) == before


def test_huge_values_are_refused(client: httpx.Client, tiny_endpoint: str) -> None:
    before = state(client, tiny_endpoint)
    variant = {
        "VariantName": "v",
        "ModelName": tiny_endpoint,
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
    }
    huge = [
        ("CreateModel", {"ModelName": "n" * 1_000_000}),
        (
            "CreateModel",
            {
                "ModelName": "huge-env",
                "PrimaryContainer": {
                    "ModelDataUrl": "s3://b/k",
                    "Environment": {f"K{i}": "v" * 1024 for i in range(1000)},
                },
            },
        ),
        (
            "CreateModel",
            {"ModelName": "huge-url", "PrimaryContainer": {"ModelDataUrl": "s3://b/" + "k" * 5000}},
        ),
        ("CreateEndpointConfig", {"EndpointConfigName": "many", "ProductionVariants": [variant] * 500}),
        (
            "CreateEndpointConfig",
            {
                "EndpointConfigName": "big-mem",
                "ProductionVariants": [
                    {**variant, "ServerlessConfig": {"MemorySizeInMB": 10**4000, "MaxConcurrency": 10**4000}}
                ],
            },
        ),
        ("ListEndpoints", {"MaxResults": 2**63}),
        ("ListEndpoints", {"NextToken": "t" * 9000}),
        ("ListEndpoints", {"CreationTimeAfter": "the day after tomorrow" * 1000}),
    ]
    for action, body in huge:
        assert_rejected(post(client, action, body))
    assert_rejected(post(client, "CreateModel", b'{"ModelName": "' + b"x" * (17 * 1024 * 1024) + b'"}'))
    assert state(client, tiny_endpoint) == before


@pytest.mark.parametrize(
    "target",
    ["", "SageMaker.", "SageMaker.DoesNotExist", "DynamoDB_20120810.ListTables", "sagemaker.ListModels"],
)
def test_bad_targets_are_validation_exceptions(client: httpx.Client, target: str) -> None:
    assert_rejected(post(client, None, {}, **({"X-Amz-Target": target} if target else {})))


def test_rejected_updates_leave_the_endpoint_serving_its_config(
    client: httpx.Client, tiny_endpoint: str
) -> None:
    before = state(client, tiny_endpoint)
    for body in (
        {"EndpointName": tiny_endpoint, "EndpointConfigName": "no-such-config"},
        {"EndpointName": tiny_endpoint},
        {"EndpointName": tiny_endpoint, "EndpointConfigName": tiny_endpoint, "DeploymentConfig": "fast"},
    ):
        assert_rejected(post(client, "UpdateEndpoint", body))
    assert state(client, tiny_endpoint) == before


def _mutations(document: Any, rng: random.Random) -> Any:
    """One random mutation: a value replaced by junk, a member dropped, or an unknown member added."""
    mutated = copy.deepcopy(document)
    containers = [mutated]
    stack = [mutated]
    while stack:
        node = stack.pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list) and child:
                containers.append(child)
                stack.append(child)
    target = rng.choice(containers)
    if isinstance(target, list):
        target[rng.randrange(len(target))] = rng.choice(JUNK)
        return mutated
    key = rng.choice(list(target))
    roll = rng.random()
    if roll < 0.7:
        target[key] = rng.choice(JUNK)
    elif roll < 0.85:
        del target[key]
    else:
        target[rng.choice(["Extra", "modelName", "x" * 300])] = rng.choice(JUNK)
    return mutated


def test_random_mutations_of_valid_requests_never_fail_the_server(
    client: httpx.Client, tiny_endpoint: str
) -> None:
    rng = random.Random(20240501)
    bodies = valid_bodies(tiny_endpoint)
    accepted = 0
    try:
        for _ in range(250):
            action = rng.choice(list(bodies))
            before = state(client, tiny_endpoint) if action.startswith(("Create", "Update")) else None
            response = post(client, action, _mutations(bodies[action], rng))
            assert response.status_code in (200, 400), (action, response.status_code, response.text)
            assert response.json().get("__type") in (None, "ValidationException"), response.text
            if response.status_code == 400 and before is not None:
                assert state(client, tiny_endpoint) == before, response.text
            accepted += response.status_code == 200
    finally:
        for action, member, name in (
            ("DeleteModel", "ModelName", "fuzz-model"),
            ("DeleteEndpointConfig", "EndpointConfigName", "fuzz-config"),
        ):
            post(client, action, {member: name})
    assert accepted > 0  # the mutations also produce some valid requests: the fuzzing is not all noise


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("DescribeModel", {"ModelName": "{e}"}),
        ("DescribeEndpointConfig", {"EndpointConfigName": "{e}"}),
        ("DescribeEndpoint", {"EndpointName": "{e}"}),
        ("ListModels", {}),
        ("ListEndpointConfigs", {}),
        ("ListEndpoints", {"MaxResults": 3}),
    ],
)
def test_answers_fit_botocore_output_shapes(
    client: httpx.Client, tiny_endpoint: str, action: str, body: dict[str, Any]
) -> None:
    request = (
        {k: v.format(e=tiny_endpoint) for k, v in body.items()} if action.startswith("Describe") else body
    )
    answer = post(client, action, request)
    assert answer.status_code == 200
    assert problems_in(service_model().operation_model(action).output_shape, answer.json()) == []
