"""`zeroserve up`: the packaged sentiment model served as endpoint `sentiment`, with examples to copy."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel

from zeroserve.control.bundles import BUNDLE_FORMAT
from zeroserve.errors import ValidationError
from zeroserve.wiring import Services

ENDPOINT = "sentiment"


def _examples(url: str) -> tuple[str, str]:
    curl = (
        f"curl -s -X POST {url}/endpoints/{ENDPOINT}/invocations \\\n"
        "  -H 'Content-Type: application/json' -d '{\"inputs\": \"I love this movie\"}'"
    )
    boto = f"""import boto3, json
rt = boto3.client("sagemaker-runtime", endpoint_url="{url}", region_name="us-east-1",
                  aws_access_key_id="x", aws_secret_access_key="x")
answer = rt.invoke_endpoint(EndpointName="{ENDPOINT}", ContentType="application/json",
                            Body=json.dumps({{"inputs": "I love this movie"}}))
print(json.loads(answer["Body"].read()))"""
    return curl, boto


def revision(artifact: Path) -> str:
    """The model and endpoint config name for `artifact` as this version converts it. An `up` with another
    model, a retrained default model (same path, other bytes) or a zeroserve whose conversion changed gets
    a new name, so the endpoint moves to it instead of serving what an earlier run recorded."""
    with artifact.open("rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    return f"{ENDPOINT}-{digest[:12]}-f{BUNDLE_FORMAT}"


async def deploy_default(services: Services, url: str, artifact: Path, console: Console) -> None:
    """Serve `artifact` as endpoint `sentiment`: create its model and config (unless they exist), then create
    the endpoint or move it to them (UpdateEndpoint: the old revision serves until the new one is ready),
    wait for InService, drop the revision it replaced, and show usage."""
    control = services.control
    name = revision(artifact)
    _create_revision(control, name, artifact)
    previous = _current_config(control)
    if previous is None:
        control.handle("CreateEndpoint", {"EndpointName": ENDPOINT, "EndpointConfigName": name})
    elif previous != name:
        control.handle("UpdateEndpoint", {"EndpointName": ENDPOINT, "EndpointConfigName": name})
    status = await _settled_status(control, console)
    if not _serves(status, name, console):
        return
    if previous not in (None, name):
        _drop_revision(control, previous)
    curl, boto = _examples(url)
    console.print(Panel.fit(f"zeroserve is serving [bold]{ENDPOINT}[/] at {url}", style="green"))
    # soft_wrap: examples are printed whole, never cropped or re-wrapped, so they can be copied as they are.
    console.print("[bold]curl[/]")
    console.print(curl, soft_wrap=True, markup=False, highlight=False)
    console.print("[bold]boto3[/]")
    console.print(boto, soft_wrap=True, markup=False, highlight=False)
    await _show_example_answer(url, console)


def _create_revision(control: Any, name: str, artifact: Path) -> None:
    """The model and endpoint config named `name`, serving `artifact`; kept as they are if they exist."""
    model = {
        "ModelName": name,
        "ExecutionRoleArn": "arn:aws:iam::000000000000:role/zeroserve",
        "PrimaryContainer": {
            "Image": "zeroserve/huggingface-onnx",
            "ModelDataUrl": artifact.resolve().as_uri(),
            "Environment": {"HF_TASK": "text-classification"},
        },
    }
    config = {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 20},
            }
        ],
    }
    if not _exists(control, "DescribeModel", {"ModelName": name}):
        control.handle("CreateModel", model)
    if not _exists(control, "DescribeEndpointConfig", {"EndpointConfigName": name}):
        control.handle("CreateEndpointConfig", config)


def _exists(control: Any, describe: str, key: dict[str, Any]) -> bool:
    """Whether `describe` finds the resource. Asked first, because SageMaker refuses a duplicate Create* with
    the same ValidationException as a bad request: only the message would tell them apart."""
    try:
        control.handle(describe, key)
    except ValidationError:  # SageMaker's answer for a resource it cannot find
        return False
    return True


async def _settled_status(control: Any, console: Console) -> dict[str, Any]:
    """DescribeEndpoint once the endpoint is no longer Creating or Updating."""
    with console.status(f"deploying endpoint [bold]{ENDPOINT}[/] (export + int8 quantization on first run)"):
        while True:
            status: dict[str, Any] = control.handle("DescribeEndpoint", {"EndpointName": ENDPOINT})
            if status["EndpointStatus"] not in ("Creating", "Updating"):
                return status
            await asyncio.sleep(0.2)


def _serves(status: dict[str, Any], name: str, console: Console) -> bool:
    """Whether the endpoint is InService with revision `name`; if not, say why."""
    if status["EndpointStatus"] != "InService":
        reason = status.get("FailureReason")
        console.print(f"[red]endpoint {ENDPOINT} is {status['EndpointStatus']}: {reason}")
        return False
    if status.get("EndpointConfigName") != name:  # the update failed and was rolled back
        console.print(
            f"[red]endpoint {ENDPOINT} still serves {status.get('EndpointConfigName')}: "
            f"{status.get('FailureReason')}"
        )
        return False
    return True


def _current_config(control: Any) -> str | None:
    """The endpoint's config, or None when there is no endpoint to move (none, or a Failed one, which
    UpdateEndpoint refuses: it is deleted and created anew)."""
    try:
        described = control.handle("DescribeEndpoint", {"EndpointName": ENDPOINT})
    except ValidationError:
        return None
    if described["EndpointStatus"] == "Failed":
        control.handle("DeleteEndpoint", {"EndpointName": ENDPOINT})
        return None
    return str(described["EndpointConfigName"])


def _drop_revision(control: Any, config_name: str) -> None:
    """Delete the endpoint config the endpoint no longer uses, and its models (an earlier `up`'s)."""
    try:
        config = control.handle("DescribeEndpointConfig", {"EndpointConfigName": config_name})
        control.handle("DeleteEndpointConfig", {"EndpointConfigName": config_name})
        for variant in config["ProductionVariants"]:
            control.handle("DeleteModel", {"ModelName": variant["ModelName"]})
    except ValidationError:  # already gone, or shared with something else: leave it
        pass


async def _show_example_answer(url: str, console: Console) -> None:
    """Send the curl example's request over HTTP, as a user would, and show what came back."""
    import time

    import httpx

    body = {"inputs": ["I love this movie", "What a waste of two hours."]}
    async with httpx.AsyncClient(timeout=60) as client:
        for label in ("first request", "second request"):
            started = time.perf_counter()
            answer = await client.post(f"{url}/endpoints/{ENDPOINT}/invocations", json=body)
            elapsed_ms = (time.perf_counter() - started) * 1000
            console.print(
                f"[bold]{label}[/] ({elapsed_ms:.1f} ms): {json.dumps(body)} -> {answer.text}", soft_wrap=True
            )
    console.print("Press Ctrl-C to stop.")
