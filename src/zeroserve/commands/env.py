"""`zeroserve env`: the environment that points boto3, the AWS CLI and the SageMaker Python SDK at a running
server, as shell `export` lines (`eval "$(zeroserve env)"`) or JSON.

- `AWS_ENDPOINT_URL_SAGEMAKER`, `..._SAGEMAKER_RUNTIME`, `..._CLOUDWATCH_LOGS`: the server's URL.
- `AWS_ENDPOINT_URL_S3`: the S3 the server uses, from its `/zeroserve/status` (its local store under `--s3`,
  or the endpoint it was configured with); nothing when the server uses AWS S3 itself.
- Dummy credentials and a region, only when this shell has none.
- `SAGEMAKER_USER_CONFIG_OVERRIDE`: a SageMaker SDK config file written here with the default bucket (so
  `Session().default_bucket()` never calls STS for an account id), telemetry off, and a role ARN for
  training jobs and models (so estimators and models need no `role=` and no IAM call).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import platformdirs
import typer

from zeroserve.aws.client_env import configured_region, defaults_for_missing
from zeroserve.cli import app

DEFAULT_URL = "http://127.0.0.1:8080"
ROLE_NAME = "zeroserve"

UrlOpt = Annotated[
    str, typer.Option("--url", envvar="ZEROSERVE_URL", help="The zeroserve server to point at")
]


def default_bucket(region: str, account_id: str) -> str:
    """The name the SDK itself would pick (`sagemaker-{region}-{account}`), so code that expects it works."""
    return f"sagemaker-{region}-{account_id}"


def sdk_config(bucket: str, role_arn: str) -> dict[str, Any]:
    """The SageMaker Python SDK's "intelligent defaults" (sagemaker/config/config_schema.py)."""
    return {
        "SchemaVersion": "1.0",
        "SageMaker": {
            "PythonSDK": {"Modules": {"Session": {"DefaultS3Bucket": bucket}, "TelemetryOptOut": True}},
            "TrainingJob": {"RoleArn": role_arn},
            "Model": {"ExecutionRoleArn": role_arn},
        },
    }


def default_config_path(url: str) -> Path:
    """One file per server address under the user's zeroserve config dir, so shells for two servers agree."""
    netloc = httpx.URL(url).netloc.decode()
    return (
        Path(platformdirs.user_config_dir("zeroserve"))
        / "sagemaker"
        / re.sub(r"[^A-Za-z0-9.-]", "_", netloc)
        / "config.yaml"
    )


def environment(url: str, status: dict[str, Any], config_path: Path) -> dict[str, str]:
    region = configured_region() or str(status.get("region") or "us-east-1")
    values = {
        "AWS_ENDPOINT_URL_SAGEMAKER": url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": url,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": url,
    }
    s3_endpoint = (status.get("s3") or {}).get("endpoint_url")
    if s3_endpoint:
        values["AWS_ENDPOINT_URL_S3"] = str(s3_endpoint)
    values.update(defaults_for_missing(region))
    values["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(config_path)
    return values


def write_config(path: Path, config: dict[str, Any]) -> None:
    """JSON is YAML: the SDK's yaml.safe_load reads it. Written atomically, since shells may share it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# Written by `zeroserve env`; rewritten each time it runs.\n" + json.dumps(config, indent=2) + "\n"
    )
    fd, temp = tempfile.mkstemp(prefix=".config-", dir=path.parent)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(temp, path)


def shell_lines(values: dict[str, str]) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())


@app.command("env")
def env_command(
    url: UrlOpt = DEFAULT_URL,
    output: Annotated[
        str, typer.Option("--format", help="sh: export lines for eval; json: one object")
    ] = "sh",
    config_file: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the SageMaker SDK config [default: under the zeroserve config dir]"
        ),
    ] = None,
    bucket: Annotated[
        str | None, typer.Option(help="The SDK's default bucket [default: sagemaker-{region}-{account}]")
    ] = None,
) -> None:
    """Print the environment for boto3 and the SageMaker SDK to use this server: eval "$(zeroserve env)"."""
    if output not in ("sh", "json"):
        _fail(f"--format must be sh or json, not {output!r}")
    url = url.rstrip("/")
    status = _status(url)
    config_path = config_file or default_config_path(url)
    values = environment(url, status, config_path)
    account_id = str(status.get("account_id") or "000000000000")
    region = configured_region() or values.get("AWS_DEFAULT_REGION") or "us-east-1"
    role_arn = f"arn:aws:iam::{account_id}:role/{ROLE_NAME}"
    write_config(config_path, sdk_config(bucket or default_bucket(region, account_id), role_arn))
    if output == "json":
        print(json.dumps(values, indent=2))
    else:
        sys.stdout.write(shell_lines(values))


def _status(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(f"{url}/zeroserve/status", timeout=10)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach zeroserve at {url}: {exc}")
    if response.status_code != 200:
        _fail(f"zeroserve at {url} answered {response.status_code} to /zeroserve/status")
    answer: dict[str, Any] = response.json()
    return answer


def _fail(message: str) -> NoReturn:
    # stderr, and nothing on stdout: `eval "$(zeroserve env)"` must not run half an answer.
    print(f"zeroserve env: {message}", file=sys.stderr)
    raise typer.Exit(1)
