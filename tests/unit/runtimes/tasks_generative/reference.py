"""Run with the `.venv-parity-gen` interpreter (transformers 4.51.3): builds tiny random checkpoints with a
trained byte-level BPE tokenizer, and answers cases through the real pipelines, recording what reached
generate().

stdin: {"command": "build", "root": dir} or {"command": "run", "model": dir, "task": str, "cases": [...]}.
stdout: JSON.
"""

import json
import sys

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

SENTENCES = [
    f"The {a} {b} {c} the {d} near the {e}."
    for a in ("quick", "lazy", "small", "old", "bright")
    for b in ("fox", "dog", "cat", "bird")
    for c in ("saw", "chased", "liked", "found")
    for d in ("ball", "tree", "river")
    for e in ("house", "road")
]
CHAT = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tokenizer(bos, eos, pad, template=None, post=None):
    specials = ["<unk>", bos, eos, pad, "<|im_start|>", "<|im_end|>"]
    specials = list(dict.fromkeys(specials))
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(SENTENCES, trainers.BpeTrainer(vocab_size=300, special_tokens=specials))
    if post == "bos":
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    elif post == "eos":
        tok.post_processor = processors.TemplateProcessing(
            single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, tok.token_to_id(eos))]
        )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=64,
    )
    if template:
        fast.chat_template = template
    return fast


def build(root):
    torch.manual_seed(0)
    made = {}
    small = dict(vocab_size=320)
    specs = {
        "gpt2": (
            tokenizer("<|endoftext|>", "<|endoftext|>", "<|endoftext|>"),
            transformers.GPT2LMHeadModel,
            transformers.GPT2Config(
                n_layer=1, n_head=2, n_embd=16, n_positions=64, bos_token_id=1, eos_token_id=1, **small
            ),
        ),
        "llama": (
            tokenizer("<s>", "</s>", "<pad>", CHAT, post="bos"),
            transformers.LlamaForCausalLM,
            transformers.LlamaConfig(
                num_hidden_layers=1,
                hidden_size=16,
                intermediate_size=32,
                num_attention_heads=2,
                num_key_value_heads=1,
                max_position_embeddings=64,
                bos_token_id=1,
                eos_token_id=2,
                pad_token_id=3,
                **small,
            ),
        ),
        "t5": (
            tokenizer("<pad>", "</s>", "<pad>", post="eos"),
            transformers.T5ForConditionalGeneration,
            transformers.T5Config(
                num_layers=1,
                num_decoder_layers=1,
                d_model=16,
                d_ff=32,
                num_heads=2,
                d_kv=8,
                decoder_start_token_id=1,
                pad_token_id=1,
                eos_token_id=2,
                task_specific_params={
                    "summarization": {
                        "prefix": "summarize: ",
                        "max_length": 12,
                        "min_length": 3,
                        "num_beams": 2,
                        "no_repeat_ngram_size": 2,
                        "length_penalty": 2.0,
                    },
                    "translation_en_to_de": {"prefix": "translate English to German: "},
                },
                **small,
            ),
        ),
        "bart": (
            tokenizer("<s>", "</s>", "<pad>", post="eos"),
            transformers.BartForConditionalGeneration,
            transformers.BartConfig(
                encoder_layers=1,
                decoder_layers=1,
                d_model=16,
                encoder_ffn_dim=32,
                decoder_ffn_dim=32,
                encoder_attention_heads=2,
                decoder_attention_heads=2,
                max_position_embeddings=64,
                bos_token_id=1,
                eos_token_id=2,
                pad_token_id=3,
                decoder_start_token_id=2,
                forced_eos_token_id=2,
                **small,
            ),
        ),
    }
    for name, (tok, cls, config) in specs.items():
        model = cls(config)
        model.generation_config = transformers.GenerationConfig.from_model_config(config)
        if name == "bart":
            model.generation_config.update(max_length=15, num_beams=2)
        path = f"{root}/{name}"
        model.save_pretrained(path)
        tok.save_pretrained(path)
        made[name] = path
    return made


def run(model_dir, task, cases):
    pipe = transformers.pipeline(task, model=model_dir, tokenizer=model_dir, device=-1)
    model = pipe.model
    seen = {}
    original_generate = model.generate
    original_length = model._prepare_generated_length

    def generate(*args, **kwargs):
        seen.setdefault("input_ids", []).append(
            kwargs["input_ids"].tolist() if kwargs.get("input_ids") is not None else None
        )
        out = original_generate(*args, **kwargs)
        seen.setdefault("output", []).append(out.tolist())
        return out

    def prepare_length(generation_config, *args, **kwargs):
        result = original_length(generation_config, *args, **kwargs)
        fields = (
            "max_length",
            "min_length",
            "do_sample",
            "num_beams",
            "temperature",
            "top_k",
            "top_p",
            "repetition_penalty",
            "no_repeat_ngram_size",
            "num_return_sequences",
            "early_stopping",
            "length_penalty",
            "eos_token_id",
            "pad_token_id",
            "decoder_start_token_id",
            "forced_eos_token_id",
            "bad_words_ids",
        )
        seen.setdefault("settings", []).append({f: getattr(result, f) for f in fields})
        return result

    model.generate = generate
    model._prepare_generated_length = prepare_length
    results = []
    for case in cases:
        seen.clear()
        try:
            answer = pipe(case["inputs"], **case.get("parameters", {}))
            results.append({"answer": answer, **seen})
        except Exception as exc:  # the error is the answer
            results.append({"error": f"{type(exc).__name__}: {exc}"})
    return results


def _plain(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


if __name__ == "__main__":
    request = json.load(sys.stdin)
    transformers.logging.set_verbosity_error()
    if request["command"] == "build":
        print(json.dumps(build(request["root"])))
    else:
        print(json.dumps(_plain(run(request["model"], request["task"], request["cases"]))))
