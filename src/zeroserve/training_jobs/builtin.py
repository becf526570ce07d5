"""The built-in trainer: `zeroserve train` as a training job (TrainingImage `zeroserve/sentiment-trainer`).

Run by the job as `python -m zeroserve.training_jobs.builtin --key value ...` with the job's hyperparameters,
which are `zeroserve train`'s options: `max_examples`, `max_length`, `epochs`, `batch_size`,
`learning_rate`, `seed`, `eval_imdb_limit`, `eval_rt_limit`, `full` (dashes or underscores). Writes the
model's files into SM_MODEL_DIR (the job packs them into model.tar.gz) and metrics.json into
SM_OUTPUT_DATA_DIR, and prints `name=value` lines for MetricDefinitions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from zeroserve.training_jobs.spec import MetricDefinition

#: What main() prints, as MetricDefinitions; used when a built-in trainer job defines none of its own.
BUILTIN_METRICS = (
    MetricDefinition("train:loss", r"train_loss=([0-9.eE+-]+)"),
    MetricDefinition("validation:accuracy", r"heldout_imdb_accuracy=([0-9.eE+-]+)"),
    MetricDefinition("test:accuracy", r"rotten_tomatoes_accuracy=([0-9.eE+-]+)"),
)

_OPTIONS = {
    "max_examples": int,
    "max_length": int,
    "epochs": int,
    "batch_size": int,
    "learning_rate": float,
    "seed": int,
    "eval_imdb_limit": int,
    "eval_rt_limit": int,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zeroserve/sentiment-trainer")
    for name, kind in _OPTIONS.items():
        parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name, type=kind)
    parser.add_argument("--full", type=lambda v: v.lower() in ("1", "true", "yes"), default=False)
    return parser


def main(argv: list[str]) -> int:
    args, unknown = _parser().parse_known_args(argv)
    if unknown:
        print(
            f"ValueError: unknown hyperparameters for the sentiment trainer: {' '.join(unknown)}",
            file=sys.stderr,
        )
        return 2
    from zeroserve.sentiment_trainer.finetune import train
    from zeroserve.sentiment_trainer.options import TrainOptions

    model_dir = Path(os.environ.get("SM_MODEL_DIR", "model"))
    output_dir = Path(os.environ.get("SM_OUTPUT_DATA_DIR", "output"))
    with tempfile.TemporaryDirectory() as scratch:
        preset = TrainOptions.full() if args.full else TrainOptions()
        overrides = {name: getattr(args, name) for name in _OPTIONS}
        options = preset.with_overrides(output=Path(scratch) / "model.tar.gz", **overrides)
        result = train(options, progress=False)
        with tarfile.open(result.artifact) as archive:
            archive.extractall(model_dir, filter="data")
        output_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(result.metrics_path, output_dir / "metrics.json")
    print(f"train_loss={result.fit.final_loss:.6f}")
    print(f"heldout_imdb_accuracy={result.heldout_imdb.accuracy:.6f}")
    if result.rotten_tomatoes.count:
        print(f"rotten_tomatoes_accuracy={result.rotten_tomatoes.accuracy:.6f}")
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
