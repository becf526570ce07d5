"""`zeroserve deploy | invoke | ls | describe | rm`: the SageMaker workflow for people who do not want boto3.

Each command is a few boto3 calls against a running server (`--url`, env ZEROSERVE_URL), so what works here
works from any SageMaker client too. Credentials come from the usual AWS chain when the server checks
signatures (ZEROSERVE_ACCESS_KEYS), and are dummies otherwise. Tables for people, `--json` for scripts.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from zeroserve.cli import app, console

DEFAULT_URL = "http://127.0.0.1:8080"
VARIANT = "AllTraffic"
POLL_INTERVAL_S = 0.25
_REMOTE_SCHEMES = ("s3://", "file://", "https://", "http://")

UrlOpt = Annotated[str, typer.Option("--url", envvar="ZEROSERVE_URL", help="The zeroserve server to talk to")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


# --- talking to the server -----------------------------------------------------------------------------


def _client(service: str, url: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.Session()
    # Dummy credentials when none are configured: a server without ZEROSERVE_ACCESS_KEYS ignores signatures.
    keys = (
        {} if session.get_credentials() else {"aws_access_key_id": "zeroserve", "aws_secret_access_key": "x"}
    )
    return session.client(
        service,
        endpoint_url=url,
        region_name=session.region_name or "us-east-1",
        config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=120),
        **keys,
    )


@contextlib.contextmanager
def _reporting_errors(url: str) -> Iterator[None]:
    """An API error or an unreachable server ends the command with one red line and exit status 1."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        console.print(f"[red]{error.get('Code', 'Error')}: {error.get('Message', exc)}")
        raise typer.Exit(1) from None
    except BotoCoreError as exc:
        console.print(f"[red]cannot talk to zeroserve at {url}: {exc}")
        raise typer.Exit(1) from None


def _plain(document: Any) -> Any:
    """A boto3 answer as JSON: datetimes as ISO 8601, no ResponseMetadata."""
    if isinstance(document, dict):
        return {k: _plain(v) for k, v in document.items() if k != "ResponseMetadata"}
    if isinstance(document, list):
        return [_plain(v) for v in document]
    return document.isoformat() if isinstance(document, datetime) else document


def _print_json(document: Any) -> None:
    print(json.dumps(_plain(document), indent=2))


def _when(value: Any) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value)


def _model_data_url(path_or_url: str) -> str:
    if path_or_url.startswith(_REMOTE_SCHEMES):
        return path_or_url
    path = Path(path_or_url).expanduser()
    if not path.exists():
        console.print(f"[red]{path_or_url}: no such file or folder (or give an s3:// or file:// URL)")
        raise typer.Exit(2)
    return str(path.resolve())  # the server resolves it, so it must not depend on our working directory


# --- commands ----------------------------------------------------------------------------------------------


@app.command()
def deploy(
    path_or_url: Annotated[str, typer.Argument(help="model.tar.gz, a model folder, or an s3:// URL")],
    name: Annotated[str, typer.Option(help="Name of the model, endpoint config and endpoint")],
    memory: Annotated[int, typer.Option(help="MemorySizeInMB: 1024, 2048, ... 6144")] = 2048,
    max_concurrency: Annotated[int, typer.Option(help="MaxConcurrency, 1..200")] = 5,
    task: Annotated[str | None, typer.Option(help="HF_TASK [default: from config.json]")] = None,
    provisioned: Annotated[
        int | None, typer.Option(help="ProvisionedConcurrency (always-warm workers)")
    ] = None,
    timeout_s: Annotated[float, typer.Option(help="Give up waiting after this many seconds")] = 900.0,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
) -> None:
    """Create a model, a serverless endpoint config and an endpoint, all named NAME; wait until it serves."""
    model_data_url = _model_data_url(path_or_url)
    serverless: dict[str, int] = {"MemorySizeInMB": memory, "MaxConcurrency": max_concurrency}
    if provisioned:
        serverless["ProvisionedConcurrency"] = provisioned
    sm = _client("sagemaker", url)
    with _reporting_errors(url):
        sm.create_model(
            ModelName=name,
            PrimaryContainer={
                "ModelDataUrl": model_data_url,
                "Environment": {"HF_TASK": task} if task else {},
            },
        )
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[{"VariantName": VARIANT, "ModelName": name, "ServerlessConfig": serverless}],
        )
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        started = time.monotonic()
        with console.status(f"Deploying [bold]{name}[/] (fetch, convert, first load)...", spinner="dots"):
            described = _wait_while_busy(sm, name, timeout_s)
    if as_json:
        _print_json(described)
    status = described["EndpointStatus"]
    if status != "InService":
        console.print(f"[red]{name} is {status}: {described.get('FailureReason', 'still deploying')}")
        raise typer.Exit(1)
    if not as_json:
        console.print(f"[green]{name} is InService[/] after {time.monotonic() - started:.1f} s. Try:")
        console.print(f"  zeroserve invoke {name} 'I loved this movie' --url {url}")


def _wait_while_busy(sm: Any, name: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] not in ("Creating", "Updating") or time.monotonic() > deadline:
            return described
        time.sleep(POLL_INTERVAL_S)


@app.command()
def invoke(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    text: Annotated[str, typer.Argument(help="The text to send as {'inputs': TEXT}")],
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
) -> None:
    """Send TEXT to endpoint NAME and print the answer."""
    rt = _client("sagemaker-runtime", url)
    with _reporting_errors(url):
        answer = rt.invoke_endpoint(
            EndpointName=name,
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps({"inputs": text}),
        )
    body = answer["Body"].read()
    try:
        result = json.loads(body)
    except ValueError:
        print(body.decode(errors="replace"))
        return
    scores = result[0] if result and isinstance(result, list) and isinstance(result[0], list) else result
    if as_json or not (
        isinstance(scores, list) and all(isinstance(s, dict) and "label" in s for s in scores)
    ):
        _print_json(result)
        return
    table = Table(title=f"{name} ({answer['InvokedProductionVariant']})")
    table.add_column("label")
    table.add_column("score", justify="right")
    for score in scores:
        table.add_row(str(score["label"]), f"{score.get('score', 0):.4f}")
    console.print(table)


@app.command("ls")
def list_endpoints(as_json: JsonOpt = False, url: UrlOpt = DEFAULT_URL) -> None:
    """List endpoints, newest first."""
    sm = _client("sagemaker", url)
    with _reporting_errors(url):
        endpoints = [e for page in sm.get_paginator("list_endpoints").paginate() for e in page["Endpoints"]]
    if as_json:
        _print_json(endpoints)
        return
    table = Table(title=f"{len(endpoints)} endpoints at {url}")
    for header in ("name", "status", "created", "last modified"):
        table.add_column(header)
    for endpoint in endpoints:
        status = endpoint["EndpointStatus"]
        colour = {"InService": "green", "Failed": "red"}.get(status, "yellow")
        table.add_row(
            endpoint["EndpointName"],
            f"[{colour}]{status}",
            _when(endpoint["CreationTime"]),
            _when(endpoint["LastModifiedTime"]),
        )
    console.print(table)


@app.command()
def describe(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
) -> None:
    """Show endpoint NAME: status, config, and each variant's capacity."""
    sm = _client("sagemaker", url)
    with _reporting_errors(url):
        endpoint = sm.describe_endpoint(EndpointName=name)
    if as_json:
        _print_json(endpoint)
        return
    console.print(
        f"[bold]{endpoint['EndpointName']}[/]  {endpoint['EndpointStatus']}  {endpoint['EndpointArn']}"
    )
    console.print(
        f"config {endpoint.get('EndpointConfigName', '-')}, created {_when(endpoint['CreationTime'])}, "
        f"modified {_when(endpoint['LastModifiedTime'])}"
    )
    if reason := endpoint.get("FailureReason"):
        console.print(f"[red]{reason}")
    if pending := endpoint.get("PendingDeploymentSummary"):
        console.print(f"[yellow]updating to config {pending['EndpointConfigName']}")
    table = Table()
    for header in ("variant", "weight", "memory MB", "max concurrency", "provisioned", "instances"):
        table.add_column(header)
    for variant in endpoint.get("ProductionVariants", []):
        serverless = variant.get("CurrentServerlessConfig", {})
        table.add_row(
            variant["VariantName"],
            str(variant.get("CurrentWeight", "")),
            str(serverless.get("MemorySizeInMB", "-")),
            str(serverless.get("MaxConcurrency", "-")),
            str(serverless.get("ProvisionedConcurrency", "-")),
            str(variant.get("CurrentInstanceCount", "-")),
        )
    console.print(table)


@app.command("rm")
def remove(
    name: Annotated[str, typer.Argument(help="Name given to `deploy`")], url: UrlOpt = DEFAULT_URL
) -> None:
    """Delete the endpoint, endpoint config and model called NAME (whichever of them exist)."""
    from botocore.exceptions import ClientError

    sm = _client("sagemaker", url)
    deleted = []
    steps = (
        ("endpoint", sm.delete_endpoint, "EndpointName"),
        ("endpoint config", sm.delete_endpoint_config, "EndpointConfigName"),
        ("model", sm.delete_model, "ModelName"),
    )
    with _reporting_errors(url):
        for noun, delete, member in steps:
            try:
                delete(**{member: name})
            except ClientError as exc:
                if not exc.response["Error"].get("Message", "").startswith("Could not find"):
                    raise
                continue
            deleted.append(noun)
    if not deleted:
        console.print(f"[red]nothing called {name} at {url}")
        raise typer.Exit(1)
    console.print(f"deleted {name}: {', '.join(deleted)}")
