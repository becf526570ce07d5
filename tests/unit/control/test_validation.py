"""Request validation read from botocore's service model: one test per rule class, with AWS's wording."""

from __future__ import annotations

from typing import Any

import pytest

from zeroserve.aws.validation import validate
from zeroserve.errors import ValidationError

SERVERLESS = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
VARIANT = {"VariantName": "AllTraffic", "ModelName": "m", "ServerlessConfig": SERVERLESS}


def problems(action: str, params: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        validate(action, params)
    return caught.value.message


def test_valid_requests_pass() -> None:
    validate("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [VARIANT]})
    validate("ListEndpoints", {})
    validate("ListEndpoints", {"MaxResults": 100, "SortBy": "Name", "CreationTimeAfter": 1.5})


def test_missing_required_member_is_null() -> None:
    assert problems("DescribeEndpoint", {}) == (
        "1 validation error detected: Value null at 'endpointName' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_missing_required_nested_member_names_its_path() -> None:
    variant = {"VariantName": "v", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 2048}}
    message = problems("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [variant]})
    assert "Value null at 'productionVariants.1.member.serverlessConfig.maxConcurrency'" in message


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"EndpointName": 5},
            "Value '5' at 'endpointName' failed to satisfy constraint: Member must be a string",
        ),
        ({"EndpointName": ["e"]}, "Member must be a string"),
        (
            {"EndpointName": "e", "EndpointConfigName": "c", "RetainAllVariantProperties": "yes"},
            "at 'retainAllVariantProperties' failed to satisfy constraint: Member must be a boolean",
        ),
    ],
)
def test_wrong_type_is_named(params: dict[str, Any], expected: str) -> None:
    action = "UpdateEndpoint" if "RetainAllVariantProperties" in params else "DescribeEndpoint"
    assert expected in problems(action, params)


def test_integers_reject_floats_strings_and_booleans() -> None:
    for bad in (1.5, "10", True):
        assert "at 'maxResults' failed to satisfy constraint: Member must be an integer" in problems(
            "ListModels", {"MaxResults": bad}
        )


def test_structure_list_and_map_types() -> None:
    assert "at 'productionVariants' failed to satisfy constraint: Member must be a list" in problems(
        "CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": {"a": 1}}
    )
    assert (
        "at 'productionVariants.1.member' failed to satisfy constraint: Member must be an object"
        in problems("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": ["v"]})
    )
    container = {"ModelDataUrl": "s3://b/k", "Environment": ["HF_TASK"]}
    assert "at 'primaryContainer.environment' failed to satisfy constraint: Member must be a map" in problems(
        "CreateModel", {"ModelName": "m", "PrimaryContainer": container}
    )


def test_length_maximum() -> None:
    name = "a" * 64
    assert problems("DescribeModel", {"ModelName": name}) == (
        f"1 validation error detected: Value '{name}' at 'modelName' failed to satisfy constraint: "
        "Member must have length less than or equal to 63"
    )


def test_length_minimum_of_a_list() -> None:
    message = problems("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": []})
    assert "at 'productionVariants' failed to satisfy constraint: " in message
    assert "Member must have length greater than or equal to 1" in message


def test_length_of_a_map() -> None:
    environment = {f"K{i}": "v" for i in range(101)}
    message = problems("CreateModel", {"ModelName": "m", "PrimaryContainer": {"Environment": environment}})
    assert "at 'primaryContainer.environment' failed to satisfy constraint: " in message
    assert "Member must have length less than or equal to 100" in message


def test_pattern() -> None:
    assert problems("DescribeEndpoint", {"EndpointName": "a_b"}) == (
        "1 validation error detected: Value 'a_b' at 'endpointName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )


def test_pattern_applies_to_map_keys() -> None:
    message = problems("CreateModel", {"ModelName": "m", "PrimaryContainer": {"Environment": {"1BAD": "x"}}})
    assert "Value '1BAD' at 'primaryContainer.environment.key' failed to satisfy constraint" in message


def test_model_data_url_pattern_is_widened_for_local_artifacts() -> None:
    validate("CreateModel", {"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": "/models/model.tar.gz"}})
    validate("CreateModel", {"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": "file:///m.tar.gz"}})


def test_enum() -> None:
    assert problems("ListEndpoints", {"SortBy": "Size"}) == (
        "1 validation error detected: Value 'Size' at 'sortBy' failed to satisfy constraint: "
        "Member must satisfy enum value set: [Name, CreationTime, Status]"
    )
    assert "at 'statusEquals' failed to satisfy constraint: Member must satisfy enum value set" in problems(
        "ListEndpoints", {"StatusEquals": "Running"}
    )


@pytest.mark.parametrize(
    ("serverless", "expected"),
    [
        (
            {"MemorySizeInMB": 512, "MaxConcurrency": 1},
            "Value '512' at 'productionVariants.1.member.serverlessConfig.memorySizeInMB' failed to satisfy "
            "constraint: Member must have value greater than or equal to 1024",
        ),
        ({"MemorySizeInMB": 1024, "MaxConcurrency": 201}, "Member must have value less than or equal to 200"),
        (
            {"MemorySizeInMB": 1024, "MaxConcurrency": 10**40},
            "Member must have value less than or equal to 200",
        ),
        ({"MemorySizeInMB": 1024, "MaxConcurrency": 0}, "Member must have value greater than or equal to 1"),
    ],
)
def test_range(serverless: dict[str, int], expected: str) -> None:
    variant = {"VariantName": "v", "ModelName": "m", "ServerlessConfig": serverless}
    assert expected in problems(
        "CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [variant]}
    )


def test_float_range() -> None:
    variant = {**VARIANT, "InitialVariantWeight": -1.0}
    message = problems("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [variant]})
    assert "at 'productionVariants.1.member.initialVariantWeight' failed to satisfy constraint: " in message


def test_unknown_member_at_top_level_and_nested() -> None:
    assert problems("DescribeEndpoint", {"EndpointName": "e", "Colour": "red"}) == (
        "1 validation error detected: Unknown parameter 'colour'"
    )
    variant = {**VARIANT, "Gpus": 2}
    message = problems("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [variant]})
    assert "Unknown parameter 'productionVariants.1.member.gpus'" in message


def test_timestamps_take_numbers_or_strings() -> None:
    validate("ListModels", {"CreationTimeBefore": 1700000000, "CreationTimeAfter": "2024-01-01T00:00:00Z"})
    assert "Member must be a timestamp" in problems("ListModels", {"CreationTimeBefore": [1]})


def test_several_problems_are_counted_and_the_first_five_shown() -> None:
    message = problems("ListEndpoints", {f"X{i}": 1 for i in range(7)})
    assert message.startswith("7 validation errors detected: Unknown parameter 'x0'; ")
    assert message.count("Unknown parameter") == 5


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert problems("ListModels", [1, 2]) == "Request body must be a JSON object."


def test_huge_values_are_shown_truncated() -> None:
    message = problems("DescribeModel", {"ModelName": "x" * 100_000})
    assert len(message) < 600
