"""Converted model bundles, built once per (artifact digest, runtime, task) and cached on disk.

Conversion (ONNX export + int8 quantization) imports torch, so it runs in a subprocess: the server never
loads the ML stack, and a conversion that crashes takes only itself down. Its last stderr line becomes the
endpoint's FailureReason. The subprocess is supervised: it dies with the server (workers/guard.py), is
killed when its deploy is cancelled or times out, and one killed by a signal from outside is run once more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zeroserve.control.environment import INT8_SCHEMES
from zeroserve.errors import ArtifactError

log = logging.getLogger("zeroserve.deploy")

# 2: int8 chosen by the fidelity gate, truncation off by default. 3: the gate also tries blockwise int8.
# 4: dynamic int8 smooths activation outliers first and keeps embeddings in fp16.
BUNDLE_FORMAT = 4


@dataclass(frozen=True)
class BundleOptions:
    runtime: str = "onnx"
    task: str | None = None
    # "auto": int8 only if a scheme passes the deploy-time fidelity gate; "true"/"false" force int8/fp32;
    # "dynamic"/"blockwise" force that int8 scheme (runtimes/convert.py).
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


class BundleBuilder:
    def __init__(self, root: Path, *, timeout_s: float = 900.0) -> None:
        self.root = root
        self.timeout_s = timeout_s
        self._locks: dict[str, asyncio.Lock] = {}
        # Conversions are CPU- and memory-heavy; one at a time keeps a burst of deploys from thrashing.
        self._slots = asyncio.Semaphore(1)

    def key(self, digest: str, options: BundleOptions) -> str:
        fingerprint = json.dumps({**dataclasses.asdict(options), "format": BUNDLE_FORMAT}, sort_keys=True)
        return f"{digest[:24]}-{hashlib.sha256(fingerprint.encode()).hexdigest()[:12]}"

    def cached(self, digest: str, options: BundleOptions) -> Path | None:
        bundle_dir = self.root / self.key(digest, options)
        return bundle_dir if (bundle_dir / "bundle.json").is_file() else None

    async def build(self, source_dir: Path, digest: str, options: BundleOptions) -> Path:
        key = self.key(digest, options)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if (found := self.cached(digest, options)) is not None:
                return found
            async with self._slots:
                return await self._convert(source_dir, self.root / key, options, digest)

    async def _convert(self, source_dir: Path, bundle_dir: Path, options: BundleOptions, digest: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "zeroserve.workers.guard", "zeroserve.runtimes.export"]
        command += [str(source_dir), str(bundle_dir)]
        command += ["--runtime", options.runtime]
        if options.task:
            command += ["--task", options.task]
        command += ["--quantize", options.quantize]
        if options.truncation:
            command.append("--truncation")
        for attempt in (1, 2):
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
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ZEROSERVE_SOURCE_DIGEST=digest)
        env["ZEROSERVE_SERVER_PID"] = str(os.getpid())
        if options.task:
            env["HF_TASK"] = options.task
        if options.program:
            env["SAGEMAKER_PROGRAM"] = options.program
        return env
