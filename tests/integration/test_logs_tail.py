"""The real AWS CLI v2 (Debian's `awscli`; `.ci/run` installs it) tailing zeroserve's log groups:
`aws logs tail /aws/sagemaker/TrainingJobs --follow` while a job prints, and an endpoint's group."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from server import ServerProcess, aws_cli_env, invoke_json, wait_for_training_job

AWS_V2 = Path("/usr/bin/aws")
pytestmark = pytest.mark.skipif(
    not AWS_V2.exists(), reason="AWS CLI v2 not installed (apt-get install awscli)"
)
# Prints a numbered line every 200 ms, so some arrive while the CLI follows.
TICKING_SCRIPT = """
import time
for i in range(25):
    print(f"tick {i}", flush=True)
    time.sleep(0.2)
print("done ticking", flush=True)
"""


def tail(server: ServerProcess, group: str, *extra: str, timeout_s: float = 60.0) -> subprocess.Popen[str]:
    command = [str(AWS_V2), "logs", "tail", group, "--endpoint-url", server.url, "--format", "short", *extra]
    return subprocess.Popen(
        command, env=aws_cli_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )


def read_until(process: subprocess.Popen[str], needle: str, timeout_s: float) -> list[str]:
    """Lines the CLI printed, up to the one containing `needle` (the CLI is stopped either way)."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in stdout], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
            if needle in seen[-1]:
                return seen
        raise AssertionError(f"{needle!r} not printed in {timeout_s} s; got {seen}")
    finally:
        process.kill()
        process.wait()


def test_aws_logs_tail_follows_a_running_training_job(server: ServerProcess, tmp_path: Path) -> None:
    code, data = tmp_path / "code", tmp_path / "data"
    code.mkdir()
    data.mkdir()
    (code / "train.py").write_text(TICKING_SCRIPT)
    (data / "rows.csv").write_text("x\n")
    sm: Any = server.sagemaker()
    follower = tail(server, "/aws/sagemaker/TrainingJobs", "--follow", "--since", "1m")
    sm.create_training_job(
        TrainingJobName="ticking",
        RoleArn="arn:aws:iam::000000000000:role/t",
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        HyperParameters={
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(code.as_uri()),
        },
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data.as_uri()}},
            }
        ],
        OutputDataConfig={"S3OutputPath": (tmp_path / "out").as_uri()},
    )
    lines = read_until(follower, "done ticking", timeout_s=60)
    ticks = [line.split("tick ", 1)[1] for line in lines if "tick " in line]
    assert ticks == [str(i) for i in range(25)]  # each line once, in order
    assert wait_for_training_job(sm, "ticking")["TrainingJobStatus"] == "Completed"


def test_aws_logs_tail_shows_an_endpoints_requests(server: ServerProcess, tiny_endpoint: str) -> None:
    invoke_json(server.runtime(), tiny_endpoint, {"inputs": "tail me"})
    done = subprocess.run(
        [str(AWS_V2), "logs", "tail", f"/aws/sagemaker/Endpoints/{tiny_endpoint}", "--since", "1h",
         "--endpoint-url", server.url],
        env=aws_cli_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f'"endpoint": "{tiny_endpoint}"' in done.stdout or tiny_endpoint in done.stdout
    assert "AllTraffic/" in done.stdout  # the stream, named per variant as SageMaker does
