"""`zeroserve up`, the command behind `make run`: serves a model as endpoint `sentiment` and shows a real
answer to the example request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx

from models import make_tiny_bert
from server import pack_model
from zeroserve.commands.up import revision


def _up(model: Path, data_dir: Path) -> tuple[subprocess.Popen[str], str, str]:
    """Start `zeroserve up` and read its output until it says how to stop it: (process, output, url)."""
    port_file = data_dir.parent / "port"
    port_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "zeroserve", "up", "--model", str(model), "--port", "0"]
    command += ["--port-file", str(port_file), "--data-dir", str(data_dir)]
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    output: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if "Press Ctrl-C to stop" in line:
            break
    url = f"http://127.0.0.1:{port_file.read_text().strip()}" if port_file.is_file() else ""
    return process, "".join(output), url


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(30)


def _labels(url: str) -> set[str]:
    answer = httpx.post(f"{url}/endpoints/sentiment/invocations", json={"inputs": "I love this"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return {item["label"] for item in answer.json()}


def test_up_deploys_sentiment_and_prints_examples_with_an_answer(tmp_path: Path, tiny_tarball: Path) -> None:
    process, text, url = _up(tiny_tarball, tmp_path / "data")
    try:
        assert "Press Ctrl-C to stop" in text, text
        assert "curl -s -X POST" in text and "boto3.client" in text
        assert "first request" in text and '"label"' in text
        assert _labels(url) <= {"NEGATIVE", "POSITIVE"}
    finally:
        returncode = _stop(process)
    # uvicorn re-raises the signal after its graceful shutdown, as a well-behaved Unix program does.
    assert returncode in (0, 130, -signal.SIGINT)


def test_up_with_another_model_moves_the_endpoint_to_it(tmp_path: Path, tiny_tarball: Path) -> None:
    # The data dir keeps the endpoint across runs; a later `up` must serve the model it is given, not the
    # one an earlier run recorded (also: a retrained default model, same path, other bytes).
    other = pack_model(
        make_tiny_bert(tmp_path / "other", id2label={0: "BAD", 1: "GOOD"}, seed=1), tmp_path / "other.tar.gz"
    )
    data_dir = tmp_path / "data"
    process, text, url = _up(tiny_tarball, data_dir)
    try:
        assert _labels(url) <= {"NEGATIVE", "POSITIVE"}, text
    finally:
        _stop(process)
    process, text, url = _up(other, data_dir)
    try:
        assert "Press Ctrl-C to stop" in text, text
        assert _labels(url) <= {"BAD", "GOOD"}
        sm = boto3.client(
            "sagemaker",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        config = sm.describe_endpoint(EndpointName="sentiment")["EndpointConfigName"]
        assert config == revision(other)
        assert [m["ModelName"] for m in sm.list_models()["Models"]] == [config], "the old revision is gone"
    finally:
        _stop(process)


def test_up_with_a_missing_model_says_so_and_exits(tmp_path: Path) -> None:
    missing = tmp_path / "missing.tar.gz"
    command = [sys.executable, "-m", "zeroserve", "up", "--model", str(missing), "--data-dir", str(tmp_path)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=dict(os.environ, COLUMNS="200")
    )
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "--model" in done.stderr
