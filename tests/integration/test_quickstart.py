"""`zeroserve up`, the command behind `make run`: serves a model as endpoint `sentiment` and shows a real
answer to the example request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_up_deploys_sentiment_and_prints_examples_with_an_answer(tmp_path: Path, tiny_tarball: Path) -> None:
    port_file = tmp_path / "port"
    command = [
        sys.executable,
        "-m",
        "zeroserve",
        "up",
        "--model",
        str(tiny_tarball),
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--data-dir",
        str(tmp_path / "data"),
    ]
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    output: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Press Ctrl-C to stop" in line:
                break
        text = "".join(output)
        assert "Press Ctrl-C to stop" in text, text
        assert "curl -s -X POST" in text and "boto3.client" in text
        assert "first request" in text and '"label"' in text
        url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        answer = httpx.post(
            f"{url}/endpoints/sentiment/invocations", json={"inputs": "I love this"}, timeout=30
        )
        assert answer.status_code == 200 and answer.json()[0]["label"] in {"NEGATIVE", "POSITIVE"}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    # uvicorn re-raises the signal after its graceful shutdown, as a well-behaved Unix program does.
    assert process.returncode in (0, 130, -signal.SIGINT)
