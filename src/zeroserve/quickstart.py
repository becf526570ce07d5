"""`zeroserve up`: the packaged sentiment model served as endpoint `sentiment`, with examples to copy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel

from zeroserve.errors import ValidationError
from zeroserve.services import Services

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


async def deploy_default(services: Services, url: str, artifact: Path, console: Console) -> None:
    """Create model, config and endpoint `sentiment` (unless they exist), wait for InService, show usage."""
    control = services.control
    calls: list[tuple[str, dict[str, Any]]] = [
        (
            "CreateModel",
            {
                "ModelName": ENDPOINT,
                "ExecutionRoleArn": "arn:aws:iam::000000000000:role/zeroserve",
                "PrimaryContainer": {
                    "Image": "zeroserve/huggingface-onnx",
                    "ModelDataUrl": artifact.resolve().as_uri(),
                    "Environment": {"HF_TASK": "text-classification"},
                },
            },
        ),
        (
            "CreateEndpointConfig",
            {
                "EndpointConfigName": ENDPOINT,
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": ENDPOINT,
                        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 20},
                    }
                ],
            },
        ),
        ("CreateEndpoint", {"EndpointName": ENDPOINT, "EndpointConfigName": ENDPOINT}),
    ]
    for action, params in calls:
        try:
            control.handle(action, params)
        except ValidationError as exc:
            if "already existing" not in exc.message:
                raise
    with console.status(f"deploying endpoint [bold]{ENDPOINT}[/] (export + int8 quantization on first run)"):
        while True:
            status = control.handle("DescribeEndpoint", {"EndpointName": ENDPOINT})
            if status["EndpointStatus"] not in ("Creating", "Updating"):
                break
            await asyncio.sleep(0.2)
    if status["EndpointStatus"] != "InService":
        console.print(
            f"[red]endpoint {ENDPOINT} is {status['EndpointStatus']}: {status.get('FailureReason')}"
        )
        return
    curl, boto = _examples(url)
    console.print(Panel.fit(f"zeroserve is serving [bold]{ENDPOINT}[/] at {url}", style="green"))
    # soft_wrap: examples are printed whole, never cropped or re-wrapped, so they can be copied as they are.
    console.print("[bold]curl[/]")
    console.print(curl, soft_wrap=True, markup=False, highlight=False)
    console.print("[bold]boto3[/]")
    console.print(boto, soft_wrap=True, markup=False, highlight=False)
    await _show_example_answer(url, console)


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
