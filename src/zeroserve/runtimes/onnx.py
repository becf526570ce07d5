"""The ONNX Runtime model: one session on the bundle's pre-optimized graph, one `run` per batch.

The session is created in the worker after fork (thread pools do not survive fork) with graph
optimization disabled, because export already saved the optimized graph.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

THREADS_ENV = "ZEROSERVE_WORKER_THREADS"


def worker_threads(env: Mapping[str, str] | None = None) -> int:
    """Intra-op threads: ZEROSERVE_WORKER_THREADS when set above 0, else every core this process may use."""
    raw = (os.environ if env is None else env).get(THREADS_ENV, "")
    if raw.strip().isdigit() and int(raw) > 0:
        return int(raw)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class OnnxModel:
    def __init__(
        self, path: Path, output_names: Sequence[str], threads: int | None = None, *, optimize: bool = False
    ) -> None:
        """`optimize=True` for a graph not optimized at deploy (the exporter's own comparisons)."""
        options = ort.SessionOptions()
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if optimize
            else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        )
        options.intra_op_num_threads = threads or worker_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle workers must cost no CPU: without this, pool threads spin after each run.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.output_names = list(output_names)

    def forward(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.output_names, dict(inputs))
        return dict(zip(self.output_names, outputs, strict=True))
