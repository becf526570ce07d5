"""Answers of the real toolkit, computed once per test session in the `.venv-parity` interpreter."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON_ENV = "ZEROSERVE_PARITY_PYTHON"
RUNNER = Path(__file__).with_name("toolkit_runner.py")


def parity_python() -> Path | None:
    """The reference interpreter: $ZEROSERVE_PARITY_PYTHON, else the repository's .venv-parity."""
    configured = os.environ.get(PYTHON_ENV)
    path = Path(configured) if configured else ROOT / ".venv-parity" / "bin" / "python"
    return path if path.is_file() else None


@dataclass(frozen=True)
class ToolkitAnswer:
    ok: bool
    content_type: str | None = None
    body: bytes = b""
    code: int | None = None
    message: str = ""


def encode_case(body: Any, content_type: str | None, accept: str | None) -> dict[str, Any]:
    return {
        "body_b64": base64.b64encode(body_bytes(body)).decode(),
        "content_type": content_type,
        "accept": accept,
    }


def body_bytes(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


def run_toolkit(
    python: Path, models: Sequence[Mapping[str, Any]], timeout_s: float = 300.0
) -> list[list[ToolkitAnswer]]:
    """`models`: [{"model_dir", "task", "cases": [(body, content_type, accept), ...]}]."""
    job = {
        "models": [
            {
                "model_dir": str(model["model_dir"]),
                "task": model["task"],
                "cases": [encode_case(*case) for case in model["cases"]],
            }
            for model in models
        ]
    }
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HF_TASK")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run(
        [str(python), str(RUNNER)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"the toolkit runner failed (exit {done.returncode}): {done.stderr[-2000:]}")
    answers = json.loads(done.stdout)["answers"]
    return [
        [
            ToolkitAnswer(
                ok=a["ok"],
                content_type=a.get("content_type"),
                body=base64.b64decode(a.get("body_b64", "")),
                code=a.get("code"),
                message=a.get("message", ""),
            )
            for a in per_model
        ]
        for per_model in answers
    ]
