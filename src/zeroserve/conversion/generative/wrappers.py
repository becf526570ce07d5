"""The torch modules that get traced: flat tensors in, flat tensors out, transformers' cache objects inside.

ONNX graphs take and return plain tensors, while transformers' models take and return `Cache` objects. Each
wrapper builds the cache from the past key/value tensors it is given, calls the model with eager attention,
and returns the logits of the last position and the cache's tensors, in the order `metadata.py` names them.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from transformers.cache_utils import DynamicCache, EncoderDecoderCache


def cache_keyword(model: Any) -> str:
    """The forward argument that takes the cache: `cache` from transformers 5.x (`past_key_values`, its old
    name, is deprecated there and goes in 5.40), `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def output_cache(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _flat(cache: Any) -> list[torch.Tensor]:
    return [tensor for layer in cache.layers for tensor in (layer.keys, layer.values)]


def _pairs(flat: tuple[torch.Tensor, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


class DecoderOnlyStep(torch.nn.Module):
    """One forward of a causal LM over S new tokens after P cached ones (P = 0 at prefill)."""

    def __init__(self, model: Any, *, uses_position_ids: bool) -> None:
        super().__init__()
        self.model = model
        self.uses_position_ids = uses_position_ids
        # A new Module starts in training mode, and export restores that mode afterwards, which would switch
        # the model's dropout on for any later comparison with torch.
        self.eval()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        *past: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        cache = DynamicCache(_pairs(past))
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids if self.uses_position_ids else None,
            use_cache=True,
            **{cache_keyword(self.model): cache},
            # Only the last position's logits are used: skip the LM head for the rest of the prompt.
            logits_to_keep=1,
        )
        return (out.logits[:, -1, :], *_flat(output_cache(out)))


class CrossAttentionKeys(torch.nn.Module):
    """The encoder, and from its output every decoder layer's cross-attention keys and values.

    They are computed by one decoder pass on a dummy token through an empty cache, which fills the cross
    cache; everything that does not lead to those tensors (the dummy token's self-attention, the LM head) is
    dead code that the exporter drops, so the graph holds only the encoder and the cross K/V projections."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        encoder_out = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
        dummy = torch.zeros_like(input_ids[:, :1])
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        self.model(
            encoder_outputs=(encoder_out.last_hidden_state,),
            attention_mask=attention_mask,
            decoder_input_ids=dummy,
            use_cache=True,
            **{cache_keyword(self.model): cache},
        )
        return tuple(_flat(cache.cross_attention_cache))


class Seq2SeqDecoderStep(torch.nn.Module):
    """One decoder forward over S new tokens after P cached ones, reusing the cross-attention K/V."""

    def __init__(self, model: Any, num_layers: int) -> None:
        super().__init__()
        self.model = model
        self.num_layers = num_layers
        self.eval()

    def forward(
        self, decoder_input_ids: torch.Tensor, encoder_attention_mask: torch.Tensor, *caches: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        n = 2 * self.num_layers
        self_cache = DynamicCache(_pairs(caches[:n]))
        cross_cache = DynamicCache(_pairs(caches[n:]))
        cache = EncoderDecoderCache(self_cache, cross_cache)
        # The encoder's output is not needed once the cross K/V are cached, but the model wants its shape.
        batch, source_length = encoder_attention_mask.shape
        hidden = torch.zeros(
            batch, source_length, 1, dtype=caches[n].dtype
        ).expand(-1, -1, self.model.config.d_model)
        out = self.model(
            encoder_outputs=(hidden,),
            attention_mask=encoder_attention_mask,
            decoder_input_ids=decoder_input_ids,
            use_cache=True,
            **{cache_keyword(self.model): cache},
        )
        return (out.logits[:, -1, :], *_flat(output_cache(out).self_attention_cache))
