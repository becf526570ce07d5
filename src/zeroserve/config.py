"""One typed settings object, read once: CLI flag > environment variable > default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs


def _total_memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        return 8192


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("zeroserve"))


def default_cache_dir() -> Path:
    """Where rebuildable artifacts live (the trained default model, converted bundles for tests)."""
    return Path(os.environ.get("ZEROSERVE_CACHE_DIR") or platformdirs.user_cache_dir("zeroserve"))


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=default_data_dir)
    idle_timeout_s: float = 60.0
    memory_budget_mb: int = field(default_factory=lambda: int(_total_memory_mb() * 0.8))
    region: str = "us-east-1"
    account_id: str = "000000000000"
    # How long a request waits for a worker to become ready before ModelNotReadyException.
    model_wait_budget_s: float = 30.0
    # How long a worker may take to load its model and answer the warm-up (a big model on a slow disk).
    worker_start_timeout_s: float = 300.0
    # How long the zygote may take to acknowledge a spawn request before it is taken for hung and replaced.
    zygote_ack_timeout_s: float = 3.0
    # SageMaker's per-invocation model timeout.
    invocation_timeout_s: float = 60.0
    # The ceiling on a streamed generation's whole life (InvokeEndpointWithResponseStream, stream=true).
    stream_timeout_s: float = 600.0
    # The most new tokens one generation may ask for (workers read the same variable: runtimes/loader.py).
    max_new_tokens: int = 1024
    # Requests beyond MaxConcurrency that may wait for a slot before ThrottlingException.
    queue_per_endpoint: int = 0
    # Threads each worker's runtime may use (intra-op).
    worker_threads: int = 0
    # How long a variant's template (a process holding its loaded model, which forks its cold starts) is
    # kept after its last cold start; 0: no templates. See scheduler/templates.py.
    template_idle_timeout_s: float = 600.0
    # Refuse a non-loopback bind without auth unless this is set.
    insecure: bool = False
    # Access keys accepted for SigV4 ("AKID:SECRET,AKID2:SECRET2"); empty means signatures are not checked.
    access_keys: str = ""
    # API keys for the public /v1 route; empty means open.
    api_keys: str = ""
    # Local folders artifacts may be read from (os.pathsep-separated); empty: home, temp, data and cache dirs.
    allowed_paths: str = ""
    log_level: str = "info"
    # What the cost meter charges (USD): SageMaker Serverless Inference list prices by default.
    price_gb_second_usd: float = 0.0000200
    price_gb_data_usd: float = 0.016
    # Training jobs running at once; more wait in Starting. One per 8 cores: a job uses every core it gets.
    max_training_jobs: int = field(default_factory=lambda: max(1, (os.cpu_count() or 1) // 8))
    # A training process's data-segment limit (RLIMIT_DATA), MB; 0: none. Default: 60% of RAM.
    training_memory_mb: int = field(default_factory=lambda: int(_total_memory_mb() * 0.6))
    # After StopTrainingJob (or MaxRuntimeInSeconds), SIGTERM, then SIGKILL after this long.
    training_stop_grace_s: float = 10.0
    # Start a local S3 store (SeaweedFS) unless S3 is configured; see local_s3/choice.py for the rule.
    s3: bool = False
    # Its S3 port; 0: the one it had last time if free, else any free one.
    s3_port: int = 0
    # Go's soft memory limit for it (GOMEMLIMIT): back to ~26 MB private after traffic, small puts ~3x slower;
    # 0 leaves Go's default (no limit). Measured in bench/localstore.py.
    s3_memory_limit_mb: int = 64
    # Run on a Ray cluster (docs/cluster.md): its address ("HEAD:PORT" or "auto"); empty: one machine, and
    # ray is never imported.
    ray: str = ""
    # Where workers on other nodes connect to this server: the interface (default: this node's Ray IP, the
    # cluster's private one) and port (0: any free one; open it between the machines).
    cluster_host: str = ""
    cluster_port: int = 0
    # How often Ray's node table is read for joins, and how long an agent may miss pings before its node
    # is taken for lost.
    ray_poll_s: float = 1.0
    ray_node_lost_after_s: float = 3.0

    @property
    def db_path(self) -> Path:
        return self.data_dir / "zeroserve.sqlite3"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Environment `ZEROSERVE_<FIELD>` over defaults; non-None keyword overrides (CLI flags) over both."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            variable = f"ZEROSERVE_{f.name.upper()}"
            raw = env.get(variable)
            if raw is not None and raw != "":
                try:
                    values[f.name] = _coerce(f.type, raw)
                except ValueError:
                    kind = "an integer" if _type_name(f.type) == "int" else "a number"
                    raise SettingsError(f"{variable}={raw!r} is not {kind}") from None
        settings = cls(**values)
        chosen = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **chosen) if chosen else settings


class SettingsError(ValueError):
    """A ZEROSERVE_* variable holds a value its setting cannot take; the message names it."""


def _type_name(type_name: Any) -> str:
    return type_name if isinstance(type_name, str) else getattr(type_name, "__name__", str(type_name))


def _coerce(type_name: Any, raw: str) -> Any:
    name = _type_name(type_name)
    if name == "int":
        return int(raw)
    if name == "float":
        return float(raw)
    if name == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if name == "Path":
        return Path(raw).expanduser()
    return raw
