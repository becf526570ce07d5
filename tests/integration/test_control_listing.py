"""List* at scale: 1,000+ models and endpoints, walked with boto3 paginators, filtered and sorted.

A server of its own, so that a thousand resources do not slow the shared one down.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from server import ServerProcess

MODELS = 1_050
ENDPOINTS = 1_010


@pytest.fixture(scope="module")
def bulk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with ServerProcess(tmp_path_factory.mktemp("listing") / "data") as running:
        yield running.sagemaker()


def create_all(calls: list[Any]) -> None:
    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


@pytest.fixture(scope="module")
def models(bulk: Any) -> list[str]:
    names = [f"bulk-{i:04d}" for i in range(MODELS)]
    create_all(
        [
            lambda n=n: bulk.create_model(
                ModelName=n, PrimaryContainer={"ModelDataUrl": f"s3://b/{n}.tar.gz"}
            )
            for n in names
        ]
    )
    return names


@pytest.fixture(scope="module")
def endpoints(bulk: Any, models: list[str], tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """1,010 endpoints of one config whose artifact does not exist: each fails at once, cheaply."""
    missing = tmp_path_factory.mktemp("nothing") / "absent.tar.gz"
    bulk.create_model(ModelName="absent", PrimaryContainer={"ModelDataUrl": str(missing)})
    bulk.create_endpoint_config(
        EndpointConfigName="absent",
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": "absent",
                "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1},
            }
        ],
    )
    names = [f"ep-{i:04d}" for i in range(ENDPOINTS)]
    create_all([lambda n=n: bulk.create_endpoint(EndpointName=n, EndpointConfigName="absent") for n in names])
    return names


def walk(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    pages = client.get_paginator(operation).paginate(**params)
    return [item for page in pages for item in page[key]]


def test_paginator_walks_a_thousand_models_once_each(bulk: Any, models: list[str]) -> None:
    listed = walk(bulk, "list_models", "Models", NameContains="bulk", PaginationConfig={"PageSize": 100})
    assert len(listed) == MODELS
    assert sorted(m["ModelName"] for m in listed) == models
    times = [m["CreationTime"] for m in listed]
    assert times == sorted(times, reverse=True)  # default: CreationTime, Descending


def test_max_results_and_next_token_by_hand(bulk: Any, models: list[str]) -> None:
    first = bulk.list_models(NameContains="bulk", MaxResults=7, SortBy="Name", SortOrder="Ascending")
    assert [m["ModelName"] for m in first["Models"]] == models[:7]
    second = bulk.list_models(
        NameContains="bulk", MaxResults=7, SortBy="Name", SortOrder="Ascending", NextToken=first["NextToken"]
    )
    assert [m["ModelName"] for m in second["Models"]] == models[7:14]
    assert len(bulk.list_models(NameContains="bulk")["Models"]) == 10  # SageMaker's default page


def test_last_page_has_no_token(bulk: Any, models: list[str]) -> None:
    last = bulk.list_models(NameContains="bulk-104", MaxResults=100)
    assert len(last["Models"]) == 10
    assert "NextToken" not in last


def test_sort_by_name_both_ways(bulk: Any, models: list[str]) -> None:
    ascending = walk(
        bulk,
        "list_models",
        "Models",
        NameContains="bulk",
        SortBy="Name",
        SortOrder="Ascending",
        PaginationConfig={"PageSize": 100},
    )
    descending = walk(
        bulk,
        "list_models",
        "Models",
        NameContains="bulk",
        SortBy="Name",
        SortOrder="Descending",
        PaginationConfig={"PageSize": 100},
    )
    assert [m["ModelName"] for m in ascending] == models
    assert [m["ModelName"] for m in descending] == models[::-1]


def test_creation_time_before_and_after(bulk: Any, models: list[str]) -> None:
    listed = walk(bulk, "list_models", "Models", NameContains="bulk", PaginationConfig={"PageSize": 100})
    # botocore sends timestamps in whole seconds: a whole-second pivot makes the expected split exact.
    pivot: datetime = sorted(m["CreationTime"] for m in listed)[MODELS // 2].replace(microsecond=0)
    after = walk(
        bulk,
        "list_models",
        "Models",
        NameContains="bulk",
        CreationTimeAfter=pivot,
        PaginationConfig={"PageSize": 100},
    )
    before = walk(
        bulk,
        "list_models",
        "Models",
        NameContains="bulk",
        CreationTimeBefore=pivot,
        PaginationConfig={"PageSize": 100},
    )
    assert {m["ModelName"] for m in after} == {m["ModelName"] for m in listed if m["CreationTime"] > pivot}
    assert {m["ModelName"] for m in before} == {m["ModelName"] for m in listed if m["CreationTime"] < pivot}
    assert len(after) + len(before) == MODELS


def test_name_contains_is_a_substring_match(bulk: Any, models: list[str]) -> None:
    assert [
        m["ModelName"]
        for m in bulk.list_models(NameContains="k-100", SortBy="Name", SortOrder="Ascending", MaxResults=100)[
            "Models"
        ]
    ] == [f"bulk-100{i}" for i in range(10)]


def test_a_thousand_endpoints_by_status_with_the_paginator(bulk: Any, endpoints: list[str]) -> None:
    import time

    deadline = time.monotonic() + 120
    while bulk.list_endpoints(StatusEquals="Creating")["Endpoints"] and time.monotonic() < deadline:
        time.sleep(0.5)
    failed = walk(
        bulk,
        "list_endpoints",
        "Endpoints",
        StatusEquals="Failed",
        SortBy="Name",
        SortOrder="Ascending",
        PaginationConfig={"PageSize": 100},
    )
    assert [e["EndpointName"] for e in failed] == endpoints
    assert walk(bulk, "list_endpoints", "Endpoints", StatusEquals="InService") == []
    by_status = bulk.list_endpoints(SortBy="Status", MaxResults=3)["Endpoints"]
    assert {e["EndpointStatus"] for e in by_status} == {"Failed"}
    recent = bulk.list_endpoints(LastModifiedTimeAfter=failed[0]["CreationTime"], MaxResults=100)["Endpoints"]
    assert len(recent) == 100


def test_a_token_from_another_query_is_refused(bulk: Any, models: list[str]) -> None:
    token = bulk.list_models(NameContains="bulk", MaxResults=5)["NextToken"]
    with pytest.raises(ClientError) as caught:
        bulk.list_models(NameContains="bulk-1", MaxResults=5, NextToken=token)
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_paginating_while_models_are_created_neither_repeats_nor_skips(bulk: Any, models: list[str]) -> None:
    pages = bulk.get_paginator("list_models").paginate(
        NameContains="bulk", SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 100}
    )
    seen: list[str] = []
    for index, page in enumerate(pages):
        seen += [m["ModelName"] for m in page["Models"]]
        if index == 0:  # created behind the cursor: must not shift later pages
            bulk.create_model(
                ModelName=f"bulk-0000-{uuid.uuid4().hex[:6]}",
                PrimaryContainer={"ModelDataUrl": "s3://b/late.tar.gz"},
            )
    assert seen == models


def test_listing_a_thousand_is_quick(bulk: Any, models: list[str], tmp_path: Path) -> None:
    import time

    started = time.perf_counter()
    walk(bulk, "list_models", "Models", PaginationConfig={"PageSize": 100})
    assert time.perf_counter() - started < 10
