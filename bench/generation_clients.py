"""The three ways the generation section asks SmolLM2 for a stream, each timed token by token: zeroserve's
streaming route over HTTP, zeroserve's handler in this process, and the toolkit's pipeline in a
`.venv-parity-gen` process (bench/peers/toolkit_generation.py) that answers one call per line, so that the
section can interleave all of them in the same rounds."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from botocore.eventstream import EventStreamBuffer

from bench import inprocess

TOOLKIT_SCRIPT = Path(__file__).parent / "peers" / "toolkit_generation.py"


@dataclass
class StreamTiming:
    """One generation seen token by token: when it was asked and when each token arrived (perf_counter s)."""

    started: float
    token_times: list[float] = field(default_factory=list)
    text: str = ""

    @property
    def first_token_ms(self) -> float:
        return (self.token_times[0] - self.started) * 1000 if self.token_times else float("nan")

    @property
    def tokens_per_s(self) -> float:
        """Decode speed: the tokens after the first over the time they took (prefill excluded)."""
        if len(self.token_times) < 2:
            return float("nan")
        return (len(self.token_times) - 1) / (self.token_times[-1] - self.token_times[0])


def stream_over_http(http: httpx.Client, url: str, body: bytes, chat: bool) -> StreamTiming:
    """One InvokeEndpointWithResponseStream, each token's arrival timed as the client reads it. `chat`: the
    body is TGI's Messages API (OpenAI chunks), else the toolkit's body (TGI token events)."""
    events, pending = EventStreamBuffer(), b""
    timing = StreamTiming(time.perf_counter())
    with http.stream("POST", url, content=body, headers={"Content-Type": "application/json"}) as response:
        if response.status_code != 200:
            raise RuntimeError(f"stream answered {response.status_code}: {response.read()[:300]!r}")
        for chunk in response.iter_raw():
            events.add_data(chunk)
            for message in events:
                if message.headers.get(":event-type") != "PayloadPart":
                    raise RuntimeError(f"stream event {message.headers}: {message.payload[:300]!r}")
                pending += message.payload
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    _read_line(line, chat, timing)
    return timing


def _read_line(line: bytes, chat: bool, timing: StreamTiming) -> None:
    if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
        return
    event = json.loads(line[5:])
    now = time.perf_counter()
    if chat:
        for choice in event.get("choices", []):
            if choice.get("delta", {}).get("content"):
                timing.token_times.append(now)
                timing.text += choice["delta"]["content"]
        return
    timing.token_times.append(now)  # a TGI event per token; the last one also carries the whole text
    if event.get("generated_text") is not None:
        timing.text = event["generated_text"]


class InProcess:
    """zeroserve's handler for a bundle, loaded and warmed up here as a worker does, streaming `body`."""

    def __init__(self, bundle: Path, threads: int, body: bytes) -> None:
        from zeroserve.runtimes.base import Invocation

        self.handler, self.load_s = inprocess.load(bundle, threads=threads)
        self.invocation = Invocation(body)
        self.prompt_tokens = 0

    def stream(self) -> StreamTiming:
        from zeroserve.runtimes.base import GeneratedToken

        timing = StreamTiming(time.perf_counter())

        def on_token(token: GeneratedToken) -> bool:
            timing.token_times.append(time.perf_counter())
            return True

        generation = self.handler.generate(self.invocation, on_token)
        timing.text = generation.sequences[0].text
        self.prompt_tokens = generation.prompt_tokens
        return timing


class ToolkitProcess:
    """The toolkit's pipeline in its own process: started (and timed from process start to its first
    token) on creation, then one warm call per `stream()`."""

    def __init__(self, python: Path, job: dict[str, Any]) -> None:
        job = {**job, "started_at": time.time()}
        self.process = subprocess.Popen(
            [str(python), str(TOOLKIT_SCRIPT), json.dumps(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
        )
        ready = self._answer()
        self.cold_first_token_ms = float(ready["cold_first_token_ms"])
        self.text = str(ready["text"])

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError(f"the toolkit's process ended (exit {self.process.returncode})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stream(self) -> StreamTiming:
        assert self.process.stdin is not None
        self.process.stdin.write("call\n")
        self.process.stdin.flush()
        answer = self._answer()
        self.text = str(answer["text"])
        return StreamTiming(0.0, [ms / 1000 for ms in answer["token_ms"]], self.text)

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
