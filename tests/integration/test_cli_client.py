"""The `zeroserve` client commands (deploy, invoke, ls, describe, rm), run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest


def zeroserve(server: Any, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        ZEROSERVE_URL=server.url,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        COLUMNS="200",
    )
    done = subprocess.run(
        [sys.executable, "-m", "zeroserve", *args], env=env, capture_output=True, text=True, timeout=600
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def deployed(server: Any, tiny_tarball: Path) -> str:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    done = zeroserve(
        server,
        "deploy",
        str(tiny_tarball),
        "--name",
        name,
        "--memory",
        "1024",
        "--max-concurrency",
        "3",
        "--task",
        "text-classification",
    )
    assert f"{name} is InService" in done.stdout
    return name


def test_deploy_creates_model_config_and_endpoint(sm: Any, deployed: str) -> None:
    assert sm.describe_model(ModelName=deployed)["PrimaryContainer"]["Environment"] == {
        "HF_TASK": "text-classification"
    }
    variant = sm.describe_endpoint_config(EndpointConfigName=deployed)["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 1024, "MaxConcurrency": 3}
    assert sm.describe_endpoint(EndpointName=deployed)["EndpointStatus"] == "InService"


def test_invoke_prints_a_table_or_json(server: Any, deployed: str) -> None:
    table = zeroserve(server, "invoke", deployed, "a wonderful evening").stdout
    assert "label" in table and ("NEGATIVE" in table or "POSITIVE" in table)
    answer = json.loads(zeroserve(server, "invoke", deployed, "a wonderful evening", "--json").stdout)
    assert answer[0]["label"] in ("NEGATIVE", "POSITIVE")


def test_ls_lists_endpoints(server: Any, deployed: str) -> None:
    assert deployed in zeroserve(server, "ls").stdout
    listed = json.loads(zeroserve(server, "ls", "--json").stdout)
    mine = next(e for e in listed if e["EndpointName"] == deployed)
    assert mine["EndpointStatus"] == "InService"
    assert mine["CreationTime"].startswith("20")  # ISO 8601 for scripts


def test_describe_shows_the_variant(server: Any, deployed: str) -> None:
    text = zeroserve(server, "describe", deployed).stdout
    assert "InService" in text and "AllTraffic" in text and "1024" in text
    described = json.loads(zeroserve(server, "describe", deployed, "--json").stdout)
    assert described["ProductionVariants"][0]["CurrentServerlessConfig"]["MaxConcurrency"] == 3
    assert "ResponseMetadata" not in described


def test_errors_are_one_line_and_exit_1(server: Any) -> None:
    done = zeroserve(server, "describe", "never-created", check=False)
    assert done.returncode == 1
    assert "ValidationException: Could not find endpoint" in done.stdout


def test_an_unreachable_server_is_reported(server: Any) -> None:
    done = zeroserve(server, "ls", "--url", "http://127.0.0.1:9", check=False)
    assert done.returncode == 1
    assert "cannot talk to zeroserve at http://127.0.0.1:9" in done.stdout


def test_a_failed_deploy_exits_1_with_the_reason(server: Any, tmp_path: Path) -> None:
    corrupt = tmp_path / "model.tar.gz"
    corrupt.write_bytes(b"not a tarball")
    name = f"cli-bad-{uuid.uuid4().hex[:6]}"
    done = zeroserve(server, "deploy", str(corrupt), "--name", name, check=False)
    assert done.returncode == 1
    assert f"{name} is Failed" in done.stdout
    zeroserve(server, "rm", name)


def test_deploy_of_a_missing_path_exits_2(server: Any, tmp_path: Path) -> None:
    done = zeroserve(server, "deploy", str(tmp_path / "nothing.tar.gz"), "--name", "never", check=False)
    assert done.returncode == 2
    assert "no such file or folder" in done.stdout


def test_rm_deletes_endpoint_config_and_model(server: Any, sm: Any, tiny_tarball: Path) -> None:
    name = f"cli-rm-{uuid.uuid4().hex[:6]}"
    zeroserve(server, "deploy", str(tiny_tarball), "--name", name)
    assert f"deleted {name}: endpoint, endpoint config, model" in zeroserve(server, "rm", name).stdout
    assert sm.list_endpoints(NameContains=name)["Endpoints"] == []
    assert sm.list_models(NameContains=name)["Models"] == []
    again = zeroserve(server, "rm", name, check=False)
    assert again.returncode == 1
    assert f"nothing called {name}" in again.stdout
