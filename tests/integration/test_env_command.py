"""`zeroserve env` against a server without --s3 whose S3 is configured (moto as that S3): what it prints,
that a shell reads it back exactly (quoting), and that it adds credentials and a region only when missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from s3server import s3_server
from server import ServerProcess


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with s3_server() as endpoint_url:
        yield endpoint_url


@pytest.fixture(scope="module")
def configured_server(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # s3_server() put dummy credentials in os.environ: the server starts with AWS_ENDPOINT_URL_S3 and keys.
    env = {"AWS_ENDPOINT_URL_S3": moto_url}
    with ServerProcess(tmp_path_factory.mktemp("env-command") / "data", env=env) as running:
        yield running


def run_env(url: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zeroserve", "env", "--url", url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def evaluated(url: str, env: dict[str, str]) -> dict[str, str]:
    script = f'eval "$({sys.executable} -m zeroserve env --url {url})" && env -0'
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, check=True, timeout=60)
    return dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)


def test_env_exports_the_servers_endpoints_and_its_configured_s3(
    configured_server: ServerProcess, moto_url: str, tmp_path: Path
) -> None:
    # A config dir with a space and a quote in its name: the exported path must survive the shell intact.
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "it's a dir"))
    done = run_env(configured_server.url, env)
    assert done.returncode == 0, done.stderr
    names = [line.split("=", 1)[0] for line in done.stdout.splitlines()]
    assert names == [
        "export AWS_ENDPOINT_URL_SAGEMAKER",
        "export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
        "export AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
        "export AWS_ENDPOINT_URL_S3",
        "export SAGEMAKER_USER_CONFIG_OVERRIDE",
    ]  # credentials and region are configured here (moto's dummies): none added

    shell = evaluated(configured_server.url, env)
    assert shell["AWS_ENDPOINT_URL_SAGEMAKER"] == configured_server.url
    assert shell["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] == configured_server.url
    assert shell["AWS_ENDPOINT_URL_S3"] == moto_url
    config_path = Path(shell["SAGEMAKER_USER_CONFIG_OVERRIDE"])
    assert config_path.is_relative_to(tmp_path / "it's a dir" / "zeroserve")
    config = json.loads(
        "".join(line for line in config_path.read_text().splitlines() if not line.startswith("#"))
    )
    sdk = config["SageMaker"]
    assert sdk["PythonSDK"]["Modules"]["Session"]["DefaultS3Bucket"] == "sagemaker-us-east-1-000000000000"
    assert sdk["PythonSDK"]["Modules"]["TelemetryOptOut"] is True
    assert sdk["TrainingJob"]["RoleArn"] == sdk["Model"]["ExecutionRoleArn"]


def test_env_adds_dummy_credentials_and_a_region_only_when_none_are_set(
    configured_server: ServerProcess, tmp_path: Path
) -> None:
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k in ("AWS_CA_BUNDLE",)}
    bare.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    bare["XDG_CONFIG_HOME"] = str(tmp_path)
    done = run_env(configured_server.url, bare, "--format", "json")
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout)
    assert values["AWS_ACCESS_KEY_ID"] == "zeroserve" and values["AWS_SECRET_ACCESS_KEY"] == "zeroserve"
    assert values["AWS_DEFAULT_REGION"] == "us-east-1"

    mine = dict(bare, AWS_ACCESS_KEY_ID="AKIAMINE", AWS_SECRET_ACCESS_KEY="secret", AWS_REGION="eu-west-1")
    values = json.loads(run_env(configured_server.url, mine, "--format", "json").stdout)
    assert "AWS_ACCESS_KEY_ID" not in values and "AWS_DEFAULT_REGION" not in values
    config = Path(values["SAGEMAKER_USER_CONFIG_OVERRIDE"]).read_text()
    assert "sagemaker-eu-west-1-000000000000" in config  # the bucket follows the shell's region


def test_env_prints_nothing_to_eval_when_the_server_is_unreachable(tmp_path: Path) -> None:
    done = run_env("http://127.0.0.1:9", dict(os.environ, XDG_CONFIG_HOME=str(tmp_path)))
    assert done.returncode == 1
    assert done.stdout == ""
    assert "cannot reach zeroserve" in done.stderr


def test_s3_flag_uses_the_configured_s3_instead_of_a_local_store_and_says_so(
    moto_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(tmp_path / "data", env={"AWS_ENDPOINT_URL_S3": moto_url}, args=["--s3"])
    with server:
        status = httpx.get(f"{server.url}/zeroserve/status", timeout=5).json()["s3"]
        log = server.log()
    assert status["local"] is False and status["pid"] is None
    assert status["endpoint_url"] == moto_url
    assert f"AWS_ENDPOINT_URL_S3 is set ({moto_url}): using it instead of a local S3 store" in log
    assert not (tmp_path / "data" / "s3").exists()
