"""The toolkit's own generation, timed token by token: run with `.venv-parity-gen/bin/python` (transformers
4.51.3 + sagemaker-huggingface-inference-toolkit 2.6.0), never imported by zeroserve or the bench.

Usage: python toolkit_generation.py JOB_JSON, where the job is
`{"model_dir", "threads", "inputs", "parameters", "started_at"}` (`started_at`: the parent's time.time()
just before it started this process). The pipeline is the toolkit's (`get_pipeline`, as its handler builds
it: fp32 on CPU) and each call is what its `predict` does, `pipeline(inputs, **parameters)`, with a streamer
added to see when each new token comes out of `generate`. The first call is the cold one: it prints
`{"load_s", "cold_first_token_ms" (from process start, as a fresh container would answer), "text"}`. Then
each line read on stdin is one warm call, answered by a line `{"token_ms" (each token's time from the
call's start), "text"}`; end of input ends the process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class TokenClock:
    """A transformers streamer that notes when each generated token is produced. `put` first receives the
    prompt ids (skipped), then the new tokens one step at a time."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def timed_call(pipe: Any, inputs: Any, parameters: dict[str, Any]) -> tuple[float, list[float], Any]:
    """(start, token times, answer) of one toolkit predict call."""
    clock = TokenClock()
    started = time.perf_counter()
    answer = pipe(inputs, streamer=clock, **parameters)
    return started, clock.times, answer


def _text(answer: Any) -> str:
    generated = answer[0]["generated_text"]
    return str(generated[-1]["content"] if isinstance(generated, list) else generated)


def main() -> None:
    job = json.loads(sys.argv[1])
    import torch

    torch.set_num_threads(int(job["threads"]))
    from sagemaker_huggingface_inference_toolkit.transformers_utils import get_pipeline

    loading = time.perf_counter()
    pipe = get_pipeline("text-generation", -1, job["model_dir"])
    load_s = time.perf_counter() - loading
    inputs, parameters = job["inputs"], job["parameters"]
    _, times, answer = timed_call(pipe, inputs, parameters)
    cold_ms = (time.time() - (time.perf_counter() - times[0]) - job["started_at"]) * 1000
    print(json.dumps({"load_s": load_s, "cold_first_token_ms": cold_ms, "text": _text(answer)}), flush=True)
    for _ in sys.stdin:  # one warm call per line, so the bench can interleave them with zeroserve's
        started, times, answer = timed_call(pipe, inputs, parameters)
        token_ms = [(t - started) * 1000 for t in times]
        print(json.dumps({"token_ms": token_ms, "text": _text(answer)}), flush=True)


if __name__ == "__main__":
    main()
