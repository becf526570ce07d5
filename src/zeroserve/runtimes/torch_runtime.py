"""The PyTorch fallback model, for bundles whose ONNX export failed or was declined.

Same `forward` as the ONNX model. Imported only when a manifest says "torch": importing torch costs
seconds and hundreds of MB, which ONNX workers must never pay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zeroserve.runtimes.torch_model import load_torch_model


class TorchModel:
    def __init__(self, checkpoint: Path, task: str, output_names: Sequence[str], threads: int) -> None:
        torch.set_num_threads(threads)
        self.model: Any = load_torch_model(checkpoint, task)
        self.output_names = list(output_names)

    def forward(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = self.model(
                **{name: torch.from_numpy(array) for name, array in inputs.items()}, return_dict=True
            )
        return {name: out[name].float().numpy() for name in self.output_names}
