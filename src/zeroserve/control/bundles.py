"""Converted model bundles, built once per (artifact digest, runtime, task) and cached on disk.

Conversion (ONNX export + int8 quantization) imports torch, so it runs in a subprocess: the server never
loads the ML stack, and a conversion that crashes takes only itself down. Its last stderr line becomes the
endpoint's FailureReason. The subprocess is supervised: it dies with the server (workers/guard.py), is
killed when its deploy is cancelled or times out, and one killed by a signal from outside is run once more.

Importing torch and transformers is ~2 s of a ~5 s conversion, and needs nothing from the artifact, so a
deploy starts its converter before it fetches the artifact (`early_converter`): the imports then overlap the
download and unpacking, and the converter reads what to convert from its stdin once that is done (measured
on 2 cores, the default sentiment model: 5.4 -> 4.95 s). A deploy whose bundle turns out to be cached kills
its converter unused, having spent only the fetch's time on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from zeroserve.control.environment import INT8_SCHEMES
from zeroserve.errors import ArtifactError

log = logging.getLogger("zeroserve.deploy")

# 2: int8 chosen by the fidelity gate, truncation off by default. 3: the gate also tries blockwise int8.
# 4: dynamic int8 smooths activation outliers first and keeps embeddings in fp16.
# 5: blockwise int8 keeps embeddings in fp16 too.
BUNDLE_FORMAT = 5


@dataclass(frozen=True)
class BundleOptions:
    runtime: str = "onnx"
    task: str | None = None
    # "auto": int8 only if a scheme passes the deploy-time fidelity gate; "true"/"false" force int8/fp32;
    # "dynamic"/"blockwise" force that int8 scheme (conversion/convert.py).
    quantize: str = "auto"
    # Truncate over-long inputs unless a request says otherwise (the toolkit refuses them: 400).
    truncation: bool = False
    # SAGEMAKER_PROGRAM: the custom inference script's name when it is not code/inference.py.
    program: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BundleOptions:
        """From the model's Environment. Unset, ZEROSERVE_QUANTIZE lets the fidelity gate choose int8 or
        fp32; true/false force one, dynamic/blockwise force that int8 scheme. ZEROSERVE_TRUNCATION=true
        truncates over-long inputs by default."""
        return cls(
            runtime=env.get("ZEROSERVE_RUNTIME") or os.environ.get("ZEROSERVE_RUNTIME") or "onnx",
            task=env.get("HF_TASK") or None,
            quantize=_quantize_setting(env.get("ZEROSERVE_QUANTIZE")),
            truncation=_switch(env.get("ZEROSERVE_TRUNCATION"), "false") == "true",
            program=env.get("SAGEMAKER_PROGRAM") or None,
        )


def _quantize_setting(value: str | None) -> str:
    """ZEROSERVE_QUANTIZE: an int8 scheme's name (checked at CreateModel, control/environment.py), else an
    on/off switch, else auto."""
    text = (value or "").strip().lower()
    return text if text in INT8_SCHEMES else _switch(value, "auto")


def _switch(value: str | None, default: str) -> str:
    """An Environment on/off switch: "true"/"false" (also 1/0, yes/no), else `default`."""
    text = (value or "").strip().lower()
    if text in ("1", "true", "yes", "on"):
        return "true"
    if text in ("0", "false", "no", "off"):
        return "false"
    return default


def _log_decision(bundle_dir: Path) -> None:
    """The deploy log's line on what the bundle serves, int8 or fp32 and why (the fidelity gate's verdict)."""
    try:
        manifest = json.loads((bundle_dir / "bundle.json").read_text())
    except (OSError, ValueError):
        return
    quantization = manifest.get("quantization") or {}
    if quantization:
        served = str(quantization.get("served"))
        if quantization.get("scheme") and served == "int8":
            served += f" ({quantization['scheme']})"
        log.info(
            "bundle %s serves %s %s: %s",
            bundle_dir.name,
            manifest.get("runtime"),
            served,
            quantization.get("reason"),
        )


@dataclass
class EarlyConverter:
    """A converter process started before its artifact was at hand (`python -m zeroserve.conversion.export
    --stdin`): it imports the conversion stack, then waits for one line naming what to convert."""

    options: BundleOptions
    process: asyncio.subprocess.Process
    used: bool = False

    async def discard(self) -> None:
        """Kill it (unused, or still running because its deploy was cancelled) and reap it."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await asyncio.shield(self.process.wait())


class BundleBuilder:
    def __init__(self, root: Path, *, timeout_s: float = 900.0) -> None:
        self.root = root
        self.timeout_s = timeout_s
        self._locks: dict[str, asyncio.Lock] = {}
        # Conversions are CPU- and memory-heavy; one at a time keeps a burst of deploys from thrashing.
        self._slots = asyncio.Semaphore(1)
        # At most one early converter waits beside the one converting: a burst of deploys starts no more.
        self._early: EarlyConverter | None = None

    @contextlib.asynccontextmanager
    async def early_converter(self, options: BundleOptions) -> AsyncIterator[EarlyConverter | None]:
        """A converter for a deploy that is about to fetch its artifact, to pass to `build`; None when
        another is already waiting (`build` then starts its own). Killed on exit unless `build` used it."""
        if self._early is not None:
            yield None
            return
        command = [*self._command(options), "--stdin"]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._environment(options, ""),
        )
        early = self._early = EarlyConverter(options, process)
        try:
            yield early
        finally:
            self._early = None
            await early.discard()

    def key(self, digest: str, options: BundleOptions) -> str:
        fingerprint = json.dumps({**dataclasses.asdict(options), "format": BUNDLE_FORMAT}, sort_keys=True)
        return f"{digest[:24]}-{hashlib.sha256(fingerprint.encode()).hexdigest()[:12]}"

    def cached(self, digest: str, options: BundleOptions) -> Path | None:
        bundle_dir = self.root / self.key(digest, options)
        return bundle_dir if (bundle_dir / "bundle.json").is_file() else None

    async def build(
        self, source_dir: Path, digest: str, options: BundleOptions, early: EarlyConverter | None = None
    ) -> Path:
        """The bundle of `source_dir` for `options`, converted unless cached; `early`: a converter from
        `early_converter` for these options, used for the conversion if one is needed."""
        if early is not None and early.options != options:
            raise ValueError("the early converter was started for other options")
        key = self.key(digest, options)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if (found := self.cached(digest, options)) is not None:
                return found
            async with self._slots:
                return await self._convert(source_dir, self.root / key, options, digest, early)

    def _command(self, options: BundleOptions) -> list[str]:
        command = [sys.executable, "-m", "zeroserve.workers.guard", "zeroserve.conversion.export"]
        command += ["--runtime", options.runtime]
        if options.task:
            command += ["--task", options.task]
        command += ["--quantize", options.quantize]
        if options.truncation:
            command.append("--truncation")
        return command

    async def _convert(
        self,
        source_dir: Path,
        bundle_dir: Path,
        options: BundleOptions,
        digest: str,
        early: EarlyConverter | None,
    ) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        request = {"source": str(source_dir), "bundle": str(bundle_dir), "digest": digest}
        command = [*self._command(options), str(source_dir), str(bundle_dir)]
        for attempt in (1, 2):
            if attempt == 1 and early is not None and not early.used:
                early.used = True
                returncode, stderr = await self._finish(early.process, (json.dumps(request) + "\n").encode())
            else:
                returncode, stderr = await self._run(command, self._environment(options, digest))
            if returncode >= 0 or attempt == 2:
                break
            log.warning("model conversion was killed by signal %d; running it once more", -returncode)
        if returncode != 0 or not (bundle_dir / "bundle.json").is_file():
            lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit status {returncode}"
            raise ArtifactError(f"model conversion failed: {reason}")
        _log_decision(bundle_dir)
        return bundle_dir

    async def _run(self, command: list[str], env: dict[str, str]) -> tuple[int, bytes]:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
        return await self._finish(process)

    async def _finish(
        self, process: asyncio.subprocess.Process, request: bytes | None = None
    ) -> tuple[int, bytes]:
        """Wait for a converter (after sending an early one its `request`), within the timeout."""
        if request is not None and process.stdin is not None and not process.stdin.is_closing():
            process.stdin.write(request)  # (one that died already has a closed pipe: its exit status tells)
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), self.timeout_s)
        except TimeoutError:
            raise ArtifactError(f"model conversion took longer than {self.timeout_s:.0f} s") from None
        finally:
            if process.returncode is None:  # timed out or the deploy was cancelled: it must not run on
                process.kill()
                await asyncio.shield(process.wait())
        assert process.returncode is not None
        return process.returncode, stderr

    @staticmethod
    def _environment(options: BundleOptions, digest: str) -> dict[str, str]:
        """`digest`: "" for an early converter, which reads it from its stdin."""
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ZEROSERVE_SOURCE_DIGEST=digest)
        env["ZEROSERVE_SERVER_PID"] = str(os.getpid())
        if options.task:
            env["HF_TASK"] = options.task
        if options.program:
            env["SAGEMAKER_PROGRAM"] = options.program
        return env
