"""The real AWS CLI (`aws`, from PyPI's awscli) against the server: list, create, describe, invoke."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from server import aws_cli_env

AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
pytestmark = pytest.mark.skipif(AWS is None, reason="the aws CLI is not installed (pip install awscli)")


def aws(server: Any, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(AWS), *args, "--endpoint-url", server.url, "--output", "json"],
        env=aws_cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_list_endpoints(server: Any, tiny_endpoint: str) -> None:
    listed = json.loads(aws(server, "sagemaker", "list-endpoints").stdout)
    assert tiny_endpoint in {e["EndpointName"] for e in listed["Endpoints"]}


def test_create_and_describe_model(server: Any) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    container = json.dumps(
        {
            "Image": "hf-inference",
            "ModelDataUrl": "s3://models/model.tar.gz",
            "Environment": {"HF_TASK": "text-classification"},
        }
    )
    created = json.loads(
        aws(
            server,
            "sagemaker",
            "create-model",
            "--model-name",
            name,
            "--primary-container",
            container,
            "--execution-role-arn",
            "arn:aws:iam::000000000000:role/test",
        ).stdout
    )
    assert created["ModelArn"].endswith(f":model/{name}")
    described = json.loads(aws(server, "sagemaker", "describe-model", "--model-name", name).stdout)
    assert described["PrimaryContainer"]["ModelDataUrl"] == "s3://models/model.tar.gz"


def test_errors_reach_the_cli_with_their_code(server: Any) -> None:
    done = aws(server, "sagemaker", "describe-endpoint", "--endpoint-name", "never-created", check=False)
    assert done.returncode != 0
    assert "(ValidationException)" in done.stderr
    assert (
        'Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/never-created"'
        in done.stderr
    )


def test_invoke_endpoint_writes_the_answer_to_a_file(server: Any, tiny_endpoint: str, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    meta = json.loads(
        aws(
            server,
            "sagemaker-runtime",
            "invoke-endpoint",
            "--endpoint-name",
            tiny_endpoint,
            "--content-type",
            "application/json",
            "--body",
            '{"inputs": "what a lovely day"}',
            str(out),
        ).stdout
    )
    assert meta["ContentType"] == "application/json"
    assert meta["InvokedProductionVariant"] == "AllTraffic"
    answer = json.loads(out.read_text())
    assert answer[0]["label"] in ("NEGATIVE", "POSITIVE")
    assert 0.0 <= answer[0]["score"] <= 1.0
