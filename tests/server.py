"""A real zeroserve server process for tests and benchmarks: `python -m zeroserve serve` on a free port.

Plain functions and a class, no pytest import, so benchmarks can use it too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}


def aws_cli_env() -> dict[str, str]:
    """This process's environment for the AWS CLI: dummy credentials, a region, no user config, no pager."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_PAGER="",
    )
    return env


class ServerProcess:
    def __init__(
        self, data_dir: Path, env: Mapping[str, str] | None = None, args: list[str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.env = dict(env or {})
        self.args = list(args or [])
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log_path = data_dir / "server.log"

    def start(self, timeout_s: float = 60.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port_file = self.data_dir / "port"
        port_file.unlink(missing_ok=True)
        env = dict(os.environ, **self.env)
        command = [
            sys.executable,
            "-m",
            "zeroserve",
            "serve",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--data-dir",
            str(self.data_dir),
            *self.args,
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it until stop()
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log()}")
            if port_file.exists() and port_file.read_text().strip():
                self.url = f"http://127.0.0.1:{port_file.read_text().strip()}"
                try:
                    if httpx.get(f"{self.url}/ping", timeout=1).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not come up in {timeout_s} s: {self.log()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def sagemaker(self) -> Any:
        import boto3

        return boto3.client("sagemaker", endpoint_url=self.url, **CREDENTIALS)

    def runtime(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "sagemaker-runtime",
            endpoint_url=self.url,
            config=Config(retries={"max_attempts": 1}),
            **CREDENTIALS,
        )

    def logs(self) -> Any:
        """A CloudWatch Logs client (`logs`), as the SDK and `aws logs` make one."""
        import boto3

        return boto3.client("logs", endpoint_url=self.url, **CREDENTIALS)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pack_model(model_dir: Path, tarball: Path) -> Path:
    """A SageMaker-layout model.tar.gz: the checkpoint's files at the top level."""
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "w:gz") as archive:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=str(path.relative_to(model_dir)))
    return tarball


def model_and_config(
    sm: Any,
    name: str,
    model_data_url: str,
    *,
    env: Mapping[str, str] | None = None,
    memory_mb: int = 2048,
    max_concurrency: int = 10,
    provisioned: int | None = None,
) -> str:
    """CreateModel + a one-variant serverless CreateEndpointConfig, both called `name`; returns the name."""
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::000000000000:role/test",
        PrimaryContainer={
            "Image": "hf-inference",
            "ModelDataUrl": model_data_url,
            "Environment": dict(env if env is not None else {"HF_TASK": "text-classification"}),
        },
    )
    serverless: dict[str, int] = {"MemorySizeInMB": memory_mb, "MaxConcurrency": max_concurrency}
    if provisioned:
        serverless["ProvisionedConcurrency"] = provisioned
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name, "ServerlessConfig": serverless}],
    )
    return name


def deploy(
    sm: Any,
    name: str,
    model_data_url: str,
    *,
    env: Mapping[str, str] | None = None,
    memory_mb: int = 2048,
    max_concurrency: int = 10,
    provisioned: int | None = None,
    wait: bool = True,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """The SageMaker workflow with boto3: model, serverless config, endpoint; wait for a final status."""
    model_and_config(
        sm,
        name,
        model_data_url,
        env=env,
        memory_mb=memory_mb,
        max_concurrency=max_concurrency,
        provisioned=provisioned,
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return wait_for_endpoint(sm, name, timeout_s) if wait else sm.describe_endpoint(EndpointName=name)


def wait_for_endpoint(sm: Any, name: str, timeout_s: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] not in ("Creating", "Updating") or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


def invoke_json(rt: Any, name: str, payload: Any) -> Any:
    answer = rt.invoke_endpoint(EndpointName=name, ContentType="application/json", Body=json.dumps(payload))
    return json.loads(answer["Body"].read())


def wait_for_training_job(sm: Any, name: str, timeout_s: float = 120.0) -> dict[str, Any]:
    """DescribeTrainingJob until the job is Completed, Failed or Stopped (or the time is up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = sm.describe_training_job(TrainingJobName=name)
        final = described["TrainingJobStatus"] in ("Completed", "Failed", "Stopped")
        if final or time.monotonic() > deadline:
            return described
        time.sleep(0.05)
