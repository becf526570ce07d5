"""Tiny generative checkpoints for tests: GPT-2, Llama, Qwen2, T5, BART and Marian, random weights, seeded.

Each is a `save_pretrained` folder (config.json, model.safetensors, generation_config.json) with a byte-level
BPE tokenizer trained here on the packaged calibration text, whose tokenizer.json + tokenizer_config.json load
with AutoTokenizer under both transformers 5 (.venv) and 4.51.3 (.venv-parity-gen). The special tokens, ids
and generation settings mimic the real model each one stands for (SmolLM2 for llama, Qwen2-Instruct,
t5-small, distilbart-cnn, opus-mt), so that code reading them meets the same shapes. Models are tiny
(hidden 32-48, 2 layers, vocab ~500) so export and a test take seconds.

`generative_checkpoint(name)` builds once into the cache and reuses it; the cache key hashes this file, so a
changed builder never serves a stale checkpoint. Plain functions, no pytest import.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARCHITECTURES = ("gpt2", "llama", "qwen2", "t5", "bart", "marian")
DECODER_ONLY = ("gpt2", "llama", "qwen2")
ENCODER_DECODER = ("t5", "bart", "marian")

_VOCAB_SIZE = 500
_MAX_POSITIONS = 256

# ChatML, the template SmolLM2-Instruct and Qwen2-Instruct ship (Qwen2's adds a default system turn).
_CHATML = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


_QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


@dataclass(frozen=True)
class _Tokens:
    """The special tokens of one family, in id order (they get ids 0..n-1, except `last`)."""

    specials: tuple[str, ...]
    roles: dict[str, str]  # bos_token, eos_token, pad_token, unk_token -> token
    append_eos: bool = False  # seq2seq tokenizers end every text with eos
    prepend_bos: bool = False  # BART: <s> text </s>
    last: tuple[str, ...] = ()  # tokens added after the trained vocabulary (Marian's pad is the last id)
    extra: dict[str, Any] = field(default_factory=dict)


_TOKENS: dict[str, _Tokens] = {
    "gpt2": _Tokens(
        ("<|endoftext|>",),
        {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"},
    ),
    "llama": _Tokens(
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        {
            "bos_token": "<|im_start|>",
            "eos_token": "<|im_end|>",
            "pad_token": "<|im_end|>",
            "unk_token": "<|endoftext|>",
        },
        extra={"chat_template": _CHATML},
    ),
    "qwen2": _Tokens(
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
        extra={"chat_template": _CHATML},
    ),
    "t5": _Tokens(
        ("<pad>", "</s>", "<unk>"),
        {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"},
        append_eos=True,
    ),
    "bart": _Tokens(
        ("<s>", "<pad>", "</s>", "<unk>"),
        {
            "bos_token": "<s>",
            "eos_token": "</s>",
            "pad_token": "<pad>",
            "unk_token": "<unk>",
            "sep_token": "</s>",
            "cls_token": "<s>",
        },
        append_eos=True,
        prepend_bos=True,
        last=("<mask>",),
        extra={"mask_token": "<mask>"},
    ),
    "marian": _Tokens(
        ("</s>", "<unk>"),
        {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
        append_eos=True,
        last=("<pad>",),
    ),
}


def corpus_text() -> str:
    """The packaged text the tokenizers are trained on."""
    import zeroserve.conversion

    return (Path(zeroserve.conversion.__file__).parent / "calibration.txt").read_text()


def _train_tokenizer(name: str) -> Any:
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    spec = _TOKENS[name]
    tokenizer = Tokenizer(models.BPE())
    if name == "qwen2":
        # Qwen2's own pipeline: transformers 5 rebuilds a Qwen2 tokenizer with it whatever tokenizer.json
        # says, so the file must hold the same for 4.51 to tokenize alike.
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE - len(spec.last),
        special_tokens=list(spec.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus_text().splitlines(), trainer=trainer)
    tokenizer.add_special_tokens(list(spec.last))
    if spec.append_eos:
        eos = spec.roles["eos_token"]
        single = [f"{spec.roles['bos_token']}:0"] if spec.prepend_bos else []
        single += ["$A:0", f"{eos}:0"]
        pair = [*single, "$B:1", f"{eos}:1"]
        specials = {spec.roles["eos_token"], *([spec.roles["bos_token"]] if spec.prepend_bos else [])}
        tokenizer.post_processor = processors.TemplateProcessing(
            single=single,
            pair=pair,
            special_tokens=[(token, tokenizer.token_to_id(token)) for token in sorted(specials)],
        )
    else:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def _token_ids(tokenizer: Any, name: str) -> dict[str, int]:
    roles = _TOKENS[name].roles
    return {role + "_id": tokenizer.token_to_id(token) for role, token in roles.items()}


def _config(name: str, vocab_size: int, ids: dict[str, int]) -> Any:
    import transformers

    # Wider than the usual 0.02 so that a random model's next-token scores are far apart: comparisons between
    # runtimes then never hinge on a near-tie.
    init = 0.2
    decoder = {"vocab_size": vocab_size, "initializer_range": init}
    if name == "gpt2":
        return transformers.GPT2Config(
            n_embd=32, n_layer=2, n_head=2, n_positions=_MAX_POSITIONS, **decoder,
            bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"],
        )  # fmt: skip
    if name in ("llama", "qwen2"):
        config_class = transformers.LlamaConfig if name == "llama" else transformers.Qwen2Config
        return config_class(
            hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            # Grouped-query attention as in SmolLM2 / Qwen2, so the KV cache has fewer heads than the queries.
            num_key_value_heads=2, max_position_embeddings=_MAX_POSITIONS, tie_word_embeddings=True,
            rope_theta=10000.0, **decoder, **{k: v for k, v in ids.items() if k != "unk_token_id"},
        )  # fmt: skip
    seq2seq = {"vocab_size": vocab_size, "is_encoder_decoder": True}
    if name == "t5":
        return transformers.T5Config(
            d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
            relative_attention_num_buckets=16, relative_attention_max_distance=32, initializer_factor=1.0,
            feed_forward_proj="relu", tie_word_embeddings=True, decoder_start_token_id=ids["pad_token_id"],
            pad_token_id=ids["pad_token_id"], eos_token_id=ids["eos_token_id"], **seq2seq,
            task_specific_params={
                "summarization": {
                    "early_stopping": True, "length_penalty": 2.0, "max_length": 40, "min_length": 10,
                    "no_repeat_ngram_size": 3, "num_beams": 4, "prefix": "summarize: ",
                },
                "translation_en_to_de": {
                    "early_stopping": True, "max_length": 40, "num_beams": 4,
                    "prefix": "translate English to German: ",
                },
            },
        )  # fmt: skip
    shared = {
        "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
        "decoder_attention_heads": 4, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
        "max_position_embeddings": _MAX_POSITIONS, "init_std": init, **seq2seq,
    }  # fmt: skip
    if name == "bart":
        return transformers.BartConfig(
            **shared, bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"],
            pad_token_id=ids["pad_token_id"], decoder_start_token_id=ids["eos_token_id"],
            forced_bos_token_id=ids["bos_token_id"], forced_eos_token_id=ids["eos_token_id"],
        )  # fmt: skip
    if name == "marian":
        return transformers.MarianConfig(
            **shared, eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"],
            decoder_start_token_id=ids["pad_token_id"], forced_eos_token_id=ids["eos_token_id"],
            scale_embedding=True, share_encoder_decoder_embeddings=True,
        )  # fmt: skip
    raise ValueError(f"no tiny builder for {name!r}; use one of {', '.join(ARCHITECTURES)}")


_ARCHITECTURE_CLASSES = {
    "gpt2": "GPT2LMHeadModel",
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "t5": "T5ForConditionalGeneration",
    "bart": "BartForConditionalGeneration",
    "marian": "MarianMTModel",
}


def _generation_config(name: str, ids: dict[str, int]) -> dict[str, Any]:
    """What the real model's generation_config.json holds (lengths scaled down to the tiny models)."""
    if name == "gpt2":
        return {"bos_token_id": ids["bos_token_id"], "eos_token_id": ids["eos_token_id"]}
    if name == "llama":
        return {"bos_token_id": ids["bos_token_id"], "eos_token_id": ids["eos_token_id"],
                "pad_token_id": ids["pad_token_id"]}  # fmt: skip
    if name == "qwen2":
        # Qwen2-Instruct ends on either <|im_end|> or <|endoftext|>, and samples by default.
        return {"eos_token_id": [ids["eos_token_id"], ids["pad_token_id"]],
                "pad_token_id": ids["pad_token_id"], "do_sample": True, "temperature": 0.7, "top_p": 0.8,
                "top_k": 20, "repetition_penalty": 1.05}  # fmt: skip
    if name == "t5":
        return {"decoder_start_token_id": ids["pad_token_id"], "eos_token_id": ids["eos_token_id"],
                "pad_token_id": ids["pad_token_id"]}  # fmt: skip
    if name == "bart":
        return {"bos_token_id": ids["bos_token_id"], "decoder_start_token_id": ids["eos_token_id"],
                "eos_token_id": ids["eos_token_id"], "forced_bos_token_id": ids["bos_token_id"],
                "forced_eos_token_id": ids["eos_token_id"], "pad_token_id": ids["pad_token_id"],
                "early_stopping": True, "length_penalty": 2.0, "max_length": 40, "min_length": 8,
                "no_repeat_ngram_size": 3, "num_beams": 4}  # fmt: skip
    return {"bad_words_ids": [[ids["pad_token_id"]]], "decoder_start_token_id": ids["pad_token_id"],
            "eos_token_id": ids["eos_token_id"], "forced_eos_token_id": ids["eos_token_id"],
            "pad_token_id": ids["pad_token_id"], "max_length": 64, "num_beams": 4}  # fmt: skip


def make_generative_checkpoint(name: str, out_dir: Path, *, seed: int = 0) -> Path:
    """Save a tiny random `name` checkpoint (one of ARCHITECTURES) with its tokenizer into `out_dir`."""
    import torch
    import transformers

    if name not in _TOKENS:
        raise ValueError(f"no tiny builder for {name!r}; use one of {', '.join(ARCHITECTURES)}")
    tokenizer = _train_tokenizer(name)
    ids = _token_ids(tokenizer, name)
    vocab_size = tokenizer.get_vocab_size()
    config = _config(name, vocab_size, ids)
    config.architectures = [_ARCHITECTURE_CLASSES[name]]
    torch.manual_seed(seed)
    model = getattr(transformers, _ARCHITECTURE_CLASSES[name])(config).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    # generation_config.json is written by hand, so it holds exactly what the real model's does.
    (out_dir / "generation_config.json").write_text(json.dumps(_generation_config(name, ids), indent=2))
    tokenizer.save(str(out_dir / "tokenizer.json"))
    spec = _TOKENS[name]
    tokenizer_config = {
        # The plain fast tokenizer: both transformers 4.51 and 5 build it straight from tokenizer.json.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 512 if name == "t5" else _MAX_POSITIONS,
        "clean_up_tokenization_spaces": name in ("t5", "bart", "marian"),
        **spec.roles,
        **spec.extra,
    }
    if name in ("t5", "bart", "marian"):
        tokenizer_config["padding_side"] = "right"
    else:
        tokenizer_config["padding_side"] = "left" if name == "qwen2" else "right"
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    special_map = {role: token for role, token in spec.roles.items()}
    if "mask_token" in spec.extra:
        special_map["mask_token"] = spec.extra["mask_token"]
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2))
    return out_dir


def _builder_fingerprint() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def cache_root() -> Path:
    from zeroserve.config import default_cache_dir

    return default_cache_dir() / "test-generative"


def generative_checkpoint(name: str, *, cache_dir: Path | None = None) -> Path:
    """The cached tiny checkpoint of `name`, built on first use."""
    root = cache_dir or cache_root()
    target = root / f"{name}-{_builder_fingerprint()}"
    if (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Built aside and renamed so that a concurrent test process never sees half a checkpoint.
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    make_generative_checkpoint(name, scratch)
    try:
        os.rename(scratch, target)
    except OSError:  # another process won the race
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _exporter_fingerprint() -> str:
    import zeroserve.conversion.generative as package

    digest = hashlib.sha256()
    for path in sorted(Path(package.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def exported_generative(name: str, *, cache_dir: Path | None = None) -> Path:
    """The graphs `export_generative` writes for the tiny `name` checkpoint, exported once and cached under
    a key of this builder and the exporter's sources."""
    from zeroserve.conversion.generative.exporter import export_generative
    from zeroserve.runtimes.generation.graphs import METADATA_FILE

    root = cache_dir or cache_root()
    target = root / f"{name}-{_builder_fingerprint()}-onnx-{_exporter_fingerprint()}"
    if (target / METADATA_FILE).is_file():
        return target
    source = generative_checkpoint(name, cache_dir=cache_dir)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-onnx.", dir=root))
    export_generative(source, scratch)
    try:
        os.rename(scratch, target)
    except OSError:  # another process won the race
        shutil.rmtree(scratch, ignore_errors=True)
    return target
