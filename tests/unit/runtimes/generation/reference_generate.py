"""transformers 4.51.3's generate() on the tiny models (reference side): run with `.venv-parity-gen`'s
interpreter, never imported. Reads `{"model_dir", "cases": [{"prompt": [ids], "kwargs": {...}}]}` on stdin,
prints one `{"sequences": [[ids]], "scores": [floats] | null}` per case, each prompt generated alone (as the
toolkit's pipelines do)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, GenerationConfig

    transformers.logging.set_verbosity_error()
    job = json.load(sys.stdin)
    path = Path(job["model_dir"])
    loader = AutoModelForSeq2SeqLM if path.name in ("t5", "bart") else AutoModelForCausalLM
    model = loader.from_pretrained(path).eval()
    answers = []
    for case in job["cases"]:
        # Only the special tokens as model defaults; everything else comes from the case.
        model.generation_config = GenerationConfig(**job["special_tokens"])
        input_ids = torch.tensor([case["prompt"]])
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                return_dict_in_generate=True,
                output_scores=True,
                **case["kwargs"],
            )
        scores = getattr(out, "sequences_scores", None)
        answers.append(
            {"sequences": out.sequences.tolist(), "scores": None if scores is None else scores.tolist()}
        )
    print(json.dumps({"transformers": transformers.__version__, "answers": answers}))


if __name__ == "__main__":
    main()
