"""What the server tells the zygote about a worker to fork: plain data that crosses a socket as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class WorkerSpec:
    worker_id: str
    bundle_dir: str
    memory_mb: int
    threads: int = 0
    max_batch_size: int = 16
    max_batch_wait_ms: float = 0.0
    # Extra environment for the worker (the model's Environment from CreateModel).
    env: dict[str, str] = field(default_factory=dict)
    # Whose log group the worker's output lands in (workers/output.py); empty: only the server log.
    endpoint: str = ""
    variant: str = ""
    # The template (workers/template.py) to fork from, by key; empty, or none alive: the zygote's plain path.
    template: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerSpec:
        return cls(**data)
