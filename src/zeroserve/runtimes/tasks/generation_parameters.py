"""A generation's `GenerationSettings`, resolved as transformers 4.51.3's pipelines and `generate()` resolve
them: the checkpoint's generation config (generation_config.json, else the generation fields of config.json),
then config.json's task_specific_params for the pipeline's task, the tokenizer's pad token, then the request's
parameters, then generate()'s own length and special-token rules. Request parameters are checked here: a value
the pipeline would refuse, or one zeroserve cannot honour, is a ClientInputError naming it.

Two ceilings that transformers does not have: `max_new_tokens` above the server's ceiling
(ZEROSERVE_MAX_NEW_TOKENS) is refused, and a budget that came from the checkpoint's defaults (no length in the
request) is cut to that ceiling and to the model's position window instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.generation.settings import GenerationSettings

# GenerationConfig's defaults for the fields zeroserve reads (transformers 4.51.3).
_DEFAULTS: dict[str, Any] = {
    "max_length": 20,
    "max_new_tokens": None,
    "min_length": 0,
    "min_new_tokens": None,
    "do_sample": False,
    "early_stopping": False,
    "num_beams": 1,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "num_return_sequences": 1,
    "length_penalty": 1.0,
    "bad_words_ids": None,
    "bos_token_id": None,
    "eos_token_id": None,
    "pad_token_id": None,
    "decoder_start_token_id": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
}
DEFAULT_MAX_LENGTH = 20

# Generation-config fields that change the answer and that the decoding loop does not implement, with the
# value that means "off". A checkpoint that sets one is refused at load; a request that sets one gets a 400.
_UNSUPPORTED: dict[str, Any] = {
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "min_p": None,
    "encoder_repetition_penalty": 1.0,
    "encoder_no_repeat_ngram_size": 0,
    "force_words_ids": None,
    "renormalize_logits": False,
    "constraints": None,
    "exponential_decay_length_penalty": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "sequence_bias": None,
    "guidance_scale": None,
    "penalty_alpha": None,
    "dola_layers": None,
    "stop_strings": None,
    "max_time": None,
    "watermarking_config": None,
    "remove_invalid_values": False,
    "forced_decoder_ids": None,
}

# What the request may set, by the type it must have.
_INT_PARAMETERS = frozenset(
    {"max_new_tokens", "max_length", "min_length", "min_new_tokens", "top_k", "no_repeat_ngram_size",
     "num_beams", "num_return_sequences", "seed"}
)  # fmt: skip
_FLOAT_PARAMETERS = frozenset({"temperature", "top_p", "repetition_penalty", "length_penalty"})
_BOOL_PARAMETERS = frozenset({"do_sample"})
GENERATE_PARAMETERS = _INT_PARAMETERS | _FLOAT_PARAMETERS | _BOOL_PARAMETERS | {"early_stopping"}


class UnsupportedCheckpoint(ValueError):
    """The checkpoint's generation config asks for something the decoding loop does not do."""


@dataclass(frozen=True)
class CheckpointGeneration:
    """What a checkpoint says about generating, for one pipeline task, resolved once at load."""

    is_encoder_decoder: bool
    # GenerationConfig fields after task_specific_params and the tokenizer's pad token.
    defaults: Mapping[str, Any]
    # The pipeline's `prefix` (config.prefix, or task_specific_params' "prefix": T5's "summarize: ").
    prefix: str | None = None
    # Positions the model has (config.json max_position_embeddings / n_positions / ...), None if unbounded.
    max_positions: int | None = None
    # `getattr(config, "max_position_embeddings")` as generate() reads it to cap its default length.
    max_position_embeddings: int | None = None

    @classmethod
    def from_configs(
        cls,
        config: Mapping[str, Any],
        generation_config: Mapping[str, Any] | None,
        task: str,
        tokenizer_pad_token_id: int | None,
    ) -> CheckpointGeneration:
        """`task`: the pipeline's task name as given (`translation_en_to_de` picks T5's params for that
        pair)."""
        values = dict(_DEFAULTS)
        source = generation_config if generation_config is not None else _generation_fields_of(config)
        for name, value in source.items():
            if name in values:
                values[name] = value
            elif name in _UNSUPPORTED and value != _UNSUPPORTED[name] and value is not None:
                raise UnsupportedCheckpoint(
                    f"the generation config sets {name}={value!r}, which zeroserve does not do"
                )
        prefix = config.get("prefix") if isinstance(config.get("prefix"), str) else None
        task_params = (config.get("task_specific_params") or {}).get(task)
        if isinstance(task_params, dict):
            task_params = dict(task_params)
            if "prefix" in task_params:
                prefix = task_params.pop("prefix")
            for name, value in task_params.items():
                if name in values:
                    values[name] = value
                elif name in _UNSUPPORTED and value != _UNSUPPORTED[name]:
                    raise UnsupportedCheckpoint(
                        f"task_specific_params[{task!r}] sets {name}={value!r}, which zeroserve does not do"
                    )
        if values["pad_token_id"] is None and tokenizer_pad_token_id is not None:
            values["pad_token_id"] = tokenizer_pad_token_id
        positions = _first_int(config, ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len"))
        embeddings = _first_int(config, ("n_positions",) if config.get("model_type") == "gpt2" else ())
        return cls(
            is_encoder_decoder=bool(config.get("is_encoder_decoder")),
            defaults=values,
            prefix=prefix,
            max_positions=positions,
            max_position_embeddings=_first_int(config, ("max_position_embeddings",)) or embeddings,
        )


def _generation_fields_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """GenerationConfig.from_model_config: the config's non-null generation fields."""
    return {k: v for k, v in config.items() if v is not None and (k in _DEFAULTS or k in _UNSUPPORTED)}


def _first_int(config: Mapping[str, Any], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = config.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


# --- request parameters ------------------------------------------------------------------------


def check_generate_parameter(name: str, value: Any) -> Any:
    """A generate() keyword from the request, type-checked (null means unset, as transformers reads it)."""
    if value is None:
        return None
    if name in _INT_PARAMETERS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ClientInputError(f"parameter `{name}` must be an integer")
    elif name in _FLOAT_PARAMETERS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ClientInputError(f"parameter `{name}` must be a number")
        value = float(value)
    elif name in _BOOL_PARAMETERS:
        if not isinstance(value, bool):
            raise ClientInputError(f"parameter `{name}` must be true or false")
    elif name == "early_stopping" and not (isinstance(value, bool) or value == "never"):
        raise ClientInputError('parameter `early_stopping` must be true, false or "never"')
    return value


def unknown_parameter(name: str) -> ClientInputError:
    if name in _UNSUPPORTED:
        return ClientInputError(f"parameter `{name}` is not supported by zeroserve")
    # generate()'s own words for a keyword it does not know.
    return ClientInputError(
        f"The following `model_kwargs` are not used by the model: ['{name}'] (note: typos in the generate "
        "arguments will also show up in this list)"
    )


@dataclass(frozen=True)
class Limits:
    """The server's ceiling on new tokens (ZEROSERVE_MAX_NEW_TOKENS)."""

    max_new_tokens: int = 1024


def resolve_settings(
    checkpoint: CheckpointGeneration,
    generate_kwargs: Mapping[str, Any],
    *,
    input_length: int,
    limits: Limits,
    eos_override: tuple[int, ...] | None = None,
    prefix_length: int = 0,
) -> GenerationSettings:
    """The settings for one prompt. `generate_kwargs`: the request's generate() parameters, checked.
    `input_length`: the decoder's input (the prompt for a decoder-only model, its start token for an
    encoder-decoder). `eos_override`: stop_sequence's ids, which replace the eos ids. `prefix_length`: tokens
    of the text-generation pipeline's prefix, which it adds to max_length / min_length."""
    given = {k: v for k, v in generate_kwargs.items() if v is not None}
    values = {**checkpoint.defaults, **given}
    if eos_override is not None:
        values["eos_token_id"] = list(eos_override)
    _check_values(values, given, limits)
    max_length, min_length, from_request = _generated_length(
        checkpoint, values, given, input_length=input_length, prefix_length=prefix_length
    )
    max_length = _bounded_max_length(
        checkpoint, limits, max_length, input_length=input_length, from_request=from_request
    )
    return _settings(checkpoint, values, max_length=max_length, min_length=min_length, seed=given.get("seed"))


def _generated_length(
    checkpoint: CheckpointGeneration,
    values: Mapping[str, Any],
    given: Mapping[str, Any],
    *,
    input_length: int,
    prefix_length: int,
) -> tuple[int, int, bool]:
    """(max_length, min_length, whether the request set the length): generate()'s
    _prepare_generated_length, after TextGenerationPipeline._forward's prefix adjustment (the prefix's tokens
    do not count against the asked lengths)."""
    max_new: int | None = values["max_new_tokens"]
    max_length: int = values["max_length"]
    min_length: int = values["min_length"]
    length_is_default = "max_length" not in given
    if prefix_length and max_new is None:
        max_length = (given.get("max_length") or checkpoint.defaults["max_length"]) + prefix_length
        length_is_default = False
    if prefix_length and values["min_new_tokens"] is None and "min_length" in given:
        min_length = given["min_length"] + prefix_length
    if max_new is not None:
        max_length = max_new + input_length
        from_request = "max_new_tokens" in given
    else:
        from_request = "max_length" in given
        if length_is_default and max_length == DEFAULT_MAX_LENGTH:
            max_length += input_length
            if checkpoint.max_position_embeddings is not None:
                max_length = min(max_length, checkpoint.max_position_embeddings)
    if values["min_new_tokens"] is not None:
        min_length = values["min_new_tokens"] + input_length
    return max_length, min_length, from_request


def _bounded_max_length(
    checkpoint: CheckpointGeneration,
    limits: Limits,
    max_length: int,
    *,
    input_length: int,
    from_request: bool,
) -> int:
    """generate()'s max_length, checked as generate() checks it, then never past the server's ceiling or the
    model's positions: a length the request asked for above the ceiling is refused, a default one is cut."""
    new_tokens = max_length - input_length
    if from_request and new_tokens > limits.max_new_tokens:
        raise ClientInputError(
            f"this request asks for up to {new_tokens} new tokens, more than this server's ceiling of "
            f"{limits.max_new_tokens} (ZEROSERVE_MAX_NEW_TOKENS)"
        )
    if input_length >= max_length:
        # generate()'s _validate_generated_length.
        name = "decoder_input_ids" if checkpoint.is_encoder_decoder else "input_ids"
        raise ClientInputError(
            f"Input length of {name} is {input_length}, but `max_length` is set to {max_length}. This can "
            "lead to unexpected behavior. You should consider increasing `max_length` or, better yet, "
            "setting "
            "`max_new_tokens`."
        )
    budget = min(new_tokens, limits.max_new_tokens)
    if checkpoint.max_positions is not None:
        budget = min(budget, checkpoint.max_positions - input_length)
    if budget < 1:
        raise ClientInputError(
            f"the input is {input_length} tokens long and fills this model's window of "
            f"{checkpoint.max_positions} tokens, leaving no room to generate"
        )
    return input_length + budget


def _settings(
    checkpoint: CheckpointGeneration,
    values: Mapping[str, Any],
    *,
    max_length: int,
    min_length: int,
    seed: int | None,
) -> GenerationSettings:
    """The resolved values as the decoding loop reads them, with generate()'s special-token defaults."""
    eos_ids, pad, start = _special_tokens(checkpoint, values)
    bad_words = values["bad_words_ids"] or ()
    return GenerationSettings(
        max_length=max_length,
        max_new_tokens=None,
        min_length=min_length,
        min_new_tokens=None,
        do_sample=bool(values["do_sample"]),
        temperature=float(values["temperature"]),
        top_k=int(values["top_k"]),
        top_p=float(values["top_p"]),
        repetition_penalty=float(values["repetition_penalty"]),
        no_repeat_ngram_size=int(values["no_repeat_ngram_size"]),
        num_beams=int(values["num_beams"]),
        num_return_sequences=int(values["num_return_sequences"]),
        early_stopping=values["early_stopping"],
        length_penalty=float(values["length_penalty"]),
        eos_token_ids=eos_ids,
        pad_token_id=pad,
        bos_token_id=values["bos_token_id"],
        decoder_start_token_id=start,
        forced_bos_token_id=values["forced_bos_token_id"],
        forced_eos_token_id=values["forced_eos_token_id"],
        bad_words_ids=tuple(tuple(int(i) for i in words) for words in bad_words),
        seed=seed,
    )


def _special_tokens(
    checkpoint: CheckpointGeneration, values: Mapping[str, Any]
) -> tuple[tuple[int, ...], int | None, int | None]:
    """(eos ids, pad id, decoder start id) as generate()'s _prepare_special_tokens defaults them: pad falls
    back to the first eos, an encoder-decoder's start token to bos."""
    eos = values["eos_token_id"]
    eos_ids = tuple(eos) if isinstance(eos, list) else (() if eos is None else (int(eos),))
    pad = values["pad_token_id"]
    if pad is None and eos_ids:
        pad = eos_ids[0]
    start = values["decoder_start_token_id"]
    if checkpoint.is_encoder_decoder:
        if isinstance(start, list):
            raise UnsupportedCheckpoint("a decoder_start_token_id per batch row is not supported")
        start = start if start is not None else values["bos_token_id"]
        if start is None:
            raise ClientInputError(
                "`decoder_start_token_id` or `bos_token_id` has to be defined for encoder-decoder generation."
            )
    return eos_ids, pad, start


def _check_values(values: Mapping[str, Any], given: Mapping[str, Any], limits: Limits) -> None:
    """What transformers refuses (GenerationConfig.validate, the logits processors' constructors), plus the
    server's ceiling on max_new_tokens."""
    max_new = given.get("max_new_tokens")
    if max_new is not None and not 0 < max_new <= limits.max_new_tokens:
        raise ClientInputError(
            f"parameter `max_new_tokens` must be between 1 and {limits.max_new_tokens} "
            f"(ZEROSERVE_MAX_NEW_TOKENS), got {max_new}"
        )
    for name in ("max_length", "num_beams", "num_return_sequences"):
        if name in given and given[name] < 1:
            raise ClientInputError(f"parameter `{name}` must be a positive integer, got {given[name]}")
    for name in ("min_length", "min_new_tokens", "top_k", "no_repeat_ngram_size"):
        if name in given and given[name] < 0:
            raise ClientInputError(f"parameter `{name}` must be a non-negative integer, got {given[name]}")
    if values["do_sample"] and values["temperature"] <= 0:
        raise ClientInputError(
            f"`temperature` (={values['temperature']}) has to be a strictly positive float, otherwise your "
            "next token scores will be invalid. If you're looking for greedy decoding strategies, set "
            "`do_sample=False`."
        )
    if values["do_sample"] and not 0 <= values["top_p"] <= 1:
        raise ClientInputError(f"`top_p` has to be a float > 0 and < 1, but is {values['top_p']}")
    if values["repetition_penalty"] <= 0:
        raise ClientInputError(
            f"`penalty` has to be a strictly positive float, but is {values['repetition_penalty']}"
        )
    returns, beams = values["num_return_sequences"], values["num_beams"]
    if returns != 1:
        if beams == 1 and not values["do_sample"]:
            raise ClientInputError(
                "Greedy methods without beam search do not support `num_return_sequences` different than 1 "
                f"(got {returns})."
            )
        if beams > 1 and returns > beams:
            raise ClientInputError(
                f"`num_return_sequences` ({returns}) has to be smaller or equal to `num_beams` ({beams})."
            )
