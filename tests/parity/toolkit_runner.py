"""Runs the real sagemaker-huggingface-inference-toolkit handler on a batch of requests (reference side).

Executed with the test-only `.venv-parity` interpreter (transformers 4.x + the toolkit), never imported by
zeroserve or by the main test process. Reads a JSON job on stdin::

    {"models": [{"model_dir": ..., "task": ..., "cases": [{"body_b64", "content_type", "accept"}]}]}

and prints one JSON answer per case, in order: `{"ok": true, "content_type", "body_b64"}` or, when the
toolkit raised (the model server then answers with its error body), `{"ok": false, "code", "message"}`.
It calls `HuggingFaceHandlerService.handle` exactly as multi-model-server's Python worker does (raw bytes,
request headers from a context), so decoding, parameters and encoding are the toolkit's own.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
logging.disable(logging.WARNING)


class _Metrics:
    def add_time(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Request:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self.headers


class _Context:
    """The parts of mms.context.Context the toolkit's handler reads."""

    def __init__(self, model_dir: str) -> None:
        self.system_properties = {"model_dir": model_dir, "batch_size": 1, "gpu_id": 0}
        self.request_processor: list[_Request] = []
        self.metrics = _Metrics()
        self.response_content_type: str | None = None

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.response_content_type = value


def _answer(service: Any, context: _Context, case: dict[str, Any]) -> dict[str, Any]:
    from mms.service import PredictionException

    headers = {}
    if case.get("content_type") is not None:
        headers["Content-Type"] = case["content_type"]
    if case.get("accept") is not None:
        headers["Accept"] = case["accept"]
    context.request_processor = [_Request(headers)]
    body = bytearray(base64.b64decode(case["body_b64"]))
    try:
        (response,) = service.handle([{"body": body}], context)
    except PredictionException as exc:
        return {"ok": False, "code": exc.error_code, "message": exc.message}
    raw = response.encode() if isinstance(response, str) else bytes(response)
    return {
        "ok": True,
        "content_type": context.response_content_type,
        "body_b64": base64.b64encode(raw).decode(),
    }


def main() -> None:
    job = json.load(sys.stdin)
    from sagemaker_huggingface_inference_toolkit.handler_service import HuggingFaceHandlerService

    answers = []
    for model in job["models"]:
        os.environ["HF_TASK"] = model["task"]
        for name, value in model.get("env", {}).items():
            os.environ[name] = value
        service = HuggingFaceHandlerService()
        context = _Context(model["model_dir"])
        service.initialize(context)
        answers.append([_answer(service, context, case) for case in model["cases"]])
        # A container serves one model: forget this one's code/ (on sys.path, `inference` imported).
        sys.path[:] = [p for p in sys.path if p != os.path.join(model["model_dir"], "code")]
        sys.modules.pop("inference", None)
    json.dump({"answers": answers}, sys.stdout)


if __name__ == "__main__":
    main()
