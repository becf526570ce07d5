"""What the data plane needs to run one production variant: resolved, converted, ready to fork."""

from __future__ import annotations

from dataclasses import dataclass, field

from zeroserve.workers.spec import WorkerSpec


@dataclass(frozen=True)
class VariantDeployment:
    endpoint: str
    variant: str
    bundle_dir: str
    memory_mb: int
    max_concurrency: int
    min_workers: int = 0  # ProvisionedConcurrency, or InitialInstanceCount for an instance variant
    weight: float = 1.0
    serverless: bool = True
    env: dict[str, str] = field(default_factory=dict)
    max_batch_size: int = 16
    max_batch_wait_ms: float = 0.0
    max_workers: int = 1
    # Runtime threads per worker (0: the pool's default); with max_workers, how the cores are shared.
    threads: int = 0
    # Distinguishes the blue and green copies of a variant while an UpdateEndpoint is in progress.
    generation: int = 0

    @property
    def key(self) -> str:
        return f"{self.endpoint}/{self.variant}#{self.generation}"

    @property
    def max_payload_bytes(self) -> int:
        # SageMaker: 4 MB for serverless variants, 6 MB for instance-based ones.
        return (4 if self.serverless else 6) * 1024 * 1024

    def worker_spec(self, worker_id: str, default_threads: int) -> WorkerSpec:
        """What the zygote is told to fork for one of this variant's workers."""
        return WorkerSpec(
            worker_id=worker_id,
            bundle_dir=self.bundle_dir,
            memory_mb=self.memory_mb,
            threads=self.threads or default_threads,
            max_batch_size=self.max_batch_size,
            max_batch_wait_ms=self.max_batch_wait_ms,
            env=self.env,
            endpoint=self.endpoint,
            variant=self.variant,
        )
