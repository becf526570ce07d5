"""What the serve side needs to know about exported generative graphs: `GenerativeGraphs`, saved as
generation.json beside them. Pure data, no torch: workers read it.

Tensor names (the contract between the exporter and runtimes/generation/onnx_model.py):

decoder.onnx, decoder-only models (one graph for prefill and decode steps)
    in:  input_ids [B,S] int64, attention_mask [B,P+S] int64, position_ids [B,S] int64 (ignored by models
         with no use for them, but always fed), past.{i}.key / past.{i}.value [B,kv_heads,P,head_dim] float32
    out: logits [B,V] (the last position's), present.{i}.key / present.{i}.value [B,kv_heads,P+S,head_dim]
encoder.onnx, encoder-decoder models
    in:  input_ids [B,T], attention_mask [B,T]
    out: cross.{i}.key / cross.{i}.value [B,heads,T,head_dim]: each decoder layer's cross-attention K/V
decoder.onnx, encoder-decoder models
    in:  decoder_input_ids [B,S], encoder_attention_mask [B,T], past.{i}.key / past.{i}.value, cross.{i}.*
    out: logits [B,V], present.{i}.key / present.{i}.value
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

METADATA_FILE = "generation.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
FORMAT = 1


def past_names(num_layers: int, prefix: str = "past") -> list[str]:
    return [f"{prefix}.{layer}.{kind}" for layer in range(num_layers) for kind in ("key", "value")]


@dataclass(frozen=True)
class GraphFile:
    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class GenerativeGraphs:
    architecture: str
    model_type: str
    is_encoder_decoder: bool
    num_layers: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    decoder: GraphFile
    encoder: GraphFile | None = None
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    decoder_start_token_id: int | None = None
    # The longest sequence the position embeddings cover (None: relative positions, no fixed limit).
    max_positions: int | None = None
    export_s: float = 0.0
    format: int = FORMAT

    @property
    def past_inputs(self) -> list[str]:
        return past_names(self.num_layers, "past")

    @property
    def present_outputs(self) -> list[str]:
        return past_names(self.num_layers, "present")

    @property
    def cross_names(self) -> list[str]:
        return past_names(self.num_layers, "cross") if self.is_encoder_decoder else []


def write_graphs_metadata(directory: Path, graphs: GenerativeGraphs) -> None:
    (directory / METADATA_FILE).write_text(json.dumps(asdict(graphs), indent=2) + "\n")


def read_graphs_metadata(directory: Path) -> GenerativeGraphs:
    raw: dict[str, Any] = json.loads((directory / METADATA_FILE).read_text())
    if raw.get("format") != FORMAT:
        found = raw.get("format")
        raise ValueError(f"{directory / METADATA_FILE}: format {found!r}, this version reads {FORMAT}")

    def graph(value: dict[str, Any]) -> GraphFile:
        return GraphFile(value["file"], tuple(value["inputs"]), tuple(value["outputs"]))

    decoder = graph(raw.pop("decoder"))
    encoder = raw.pop("encoder", None)
    raw["eos_token_ids"] = tuple(raw.get("eos_token_ids", ()))
    return GenerativeGraphs(**raw, decoder=decoder, encoder=None if encoder is None else graph(encoder))
