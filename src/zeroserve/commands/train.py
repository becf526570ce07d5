"""`zeroserve train`: fine-tune the packaged MiniLM on the packaged IMDB reviews into a model.tar.gz."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zeroserve.cli import app, console


@app.command()
def train(
    output: Annotated[
        Path, typer.Option(help="Where to write model.tar.gz (metrics.json lands beside it)")
    ] = Path("model.tar.gz"),
    max_examples: Annotated[
        int | None, typer.Option(help="IMDB training reviews [default budget: 11000]")
    ] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per review [default 128]")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training reviews [default 1]")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Reviews per step [default 16]")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak AdamW learning rate")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for sampling, init and shuffling [default 0]")
    ] = None,
    full: Annotated[bool, typer.Option(help="The long recipe (256 tokens, 12,000 reviews, ~25 min)")] = False,
) -> None:
    """Fine-tune MiniLM as a 2-label sentiment classifier; report held-out IMDB and RT accuracy."""
    from zeroserve.sentiment_trainer.finetune import train as run_training
    from zeroserve.sentiment_trainer.options import TrainOptions

    preset = TrainOptions.full() if full else TrainOptions()
    options = preset.with_overrides(
        output=output,
        max_examples=max_examples,
        max_length=max_length,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    )
    result = run_training(options, progress=True)
    console.print(
        f"[green]wrote {result.artifact}[/] in {result.total_duration_s:.0f} s: held-out IMDB accuracy "
        f"{result.heldout_imdb.accuracy:.2%}, Rotten Tomatoes {result.rotten_tomatoes.accuracy:.2%} "
        f"(details in {result.metrics_path})"
    )
