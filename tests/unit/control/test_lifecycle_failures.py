"""Whatever a deployment raises, the endpoint ends in a final state with a FailureReason: Failed for a
create, InService (rolled back) for an update; an unexpected error also logs its traceback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from zeroserve.config import Settings
from zeroserve.control.lifecycle import EndpointLifecycle
from zeroserve.database.repository import Repository
from zeroserve.database.sqlite import Database
from zeroserve.scheduler.pool import Pool
from zeroserve.scheduler.router import Router
from zeroserve.workers.hub import WorkerHub

CONFIG = {
    "EndpointConfigName": "c",
    "ProductionVariants": [
        {
            "VariantName": "v",
            "ModelName": "m",
            "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1},
        }
    ],
}


class Exploding:
    """An artifact cache with a bug in it."""

    def resolve(self, url: str, label: str) -> Any:
        raise RuntimeError("boom")


class Resolved:
    model_dir = Path("/nowhere")
    digest = "0" * 64
    fresh = False


class Fine:
    """An artifact cache and bundle builder that succeed without doing anything."""

    def resolve(self, url: str, label: str) -> Any:
        return Resolved()

    @contextlib.asynccontextmanager
    async def early_converter(self, options: Any) -> AsyncIterator[None]:
        yield None

    async def build(self, model_dir: Path, digest: str, options: Any, early: Any = None) -> Path:
        return Path("/nowhere/bundle")


def run_deploy(
    tmp_path: Path, status: str, models: dict[str, Any], *, updating: bool, stores: Any = None
) -> dict[str, Any]:
    async def scenario() -> dict[str, Any]:
        repo = Repository(Database(tmp_path / "db.sqlite3"))
        repo.insert(
            "endpoint", "e", {"EndpointName": "e", "EndpointStatus": status}, created_at=0, status=status
        )
        pool = Pool(cast(WorkerHub, None), idle_timeout_s=60, memory_budget_mb=4096, spawn_timeout_s=5)
        router = Router(pool, account_id="0", region="us-east-1", wait_budget_s=1, invocation_timeout_s=1)
        artifacts, bundles = stores or (Exploding(), Fine())
        lifecycle = EndpointLifecycle(repo, artifacts, bundles, router, Settings())
        lifecycle.start("e", CONFIG, models, updating=updating)
        await lifecycle.wait("e")
        row = repo.get("endpoint", "e")
        assert row is not None
        return {"status": row.status, **row.doc}

    return asyncio.run(scenario())


MODEL = {"m": {"PrimaryContainer": {"ModelDataUrl": "file:///nowhere"}}}


def test_an_unexpected_exception_fails_the_create_with_a_reason_and_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="zeroserve.lifecycle"):
        doc = run_deploy(tmp_path, "Creating", MODEL, updating=False)
    assert (doc["status"], doc["EndpointStatus"]) == ("Failed", "Failed")
    assert doc["FailureReason"] == "internal error while deploying: RuntimeError: boom"
    assert any(record.exc_info for record in caplog.records), "the traceback is logged"


def test_an_unexpected_exception_rolls_an_update_back(tmp_path: Path) -> None:
    doc = run_deploy(tmp_path, "Updating", MODEL, updating=True)
    assert doc["EndpointStatus"] == "InService"
    assert doc["FailureReason"].startswith("UpdateEndpoint failed and was rolled back: internal error")


def test_an_environment_value_stored_before_validation_fails_the_deploy(tmp_path: Path) -> None:
    container = {"ModelDataUrl": "file:///m", "Environment": {"ZEROSERVE_MAX_BATCH_SIZE": "big"}}
    doc = run_deploy(
        tmp_path, "Creating", {"m": {"PrimaryContainer": container}}, updating=False, stores=(Fine(), Fine())
    )
    assert doc["EndpointStatus"] == "Failed"
    assert doc["FailureReason"] == (
        "Environment variable ZEROSERVE_MAX_BATCH_SIZE='big' must be an integer from 1 to 1024"
    )
